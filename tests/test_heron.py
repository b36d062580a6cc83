"""HERON's hierarchical comparator: crafted factor pairs, ties, margins, the teacher, the online loop."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardlab.preferences import (
    HERON_SIGMAS,
    HeronTeacher,
    compose,
    factor_combination,
    heron_compare,
    heron_decisions,
    heron_margins,
    label,
    make_teacher,
    oracle,
    synthetic_pairs,
)
from rewardlab_envs import factor_spec

SIGNS = jnp.array([1.0, -1.0, -1.0])  # progress (higher better), cost, risk (lower better)
ORDER = jnp.array([0, 1, 2])
NO_MARGIN = jnp.zeros(3)


def decide(z1, z2, signs=SIGNS, order=ORDER, margins=NO_MARGIN):
    label_value, decided, level = heron_compare(
        jnp.asarray(z1, jnp.float32), jnp.asarray(z2, jnp.float32), signs, order, margins
    )
    return float(label_value), bool(decided), int(level)


def factor_pairs(segment_factors: np.ndarray) -> object:
    """FragmentPairs (L = 1) whose factors are the given ``[B, 2, K]`` segment factors."""
    segment_factors = np.asarray(segment_factors, np.float32)
    pairs = synthetic_pairs(np.zeros(segment_factors.shape[:2]), length=1)
    return pairs._replace(factors=segment_factors[:, :, None, :])


def test_first_level_decides_when_outside_its_margin():
    assert decide([2.0, 9.0, 9.0], [1.0, 0.0, 0.0]) == (1.0, True, 0)  # better progress wins despite costs
    assert decide([1.0, 0.0, 0.0], [2.0, 9.0, 9.0]) == (0.0, True, 0)


def test_ties_fall_through_to_the_next_level_with_its_sign():
    assert decide([1.0, 3.0, 0.0], [1.0, 5.0, 0.0]) == (1.0, True, 1)  # equal progress, σ¹ costs less
    assert decide([1.0, 5.0, 0.0], [1.0, 3.0, 0.0]) == (0.0, True, 1)
    assert decide([1.0, 3.0, 7.0], [1.0, 3.0, 2.0]) == (0.0, True, 2)  # decided at the last level
    assert decide([1.0, 3.0, 2.0], [1.0, 3.0, 2.0]) == (0.5, False, 3)  # identical: undecided


def test_margins_turn_small_differences_into_ties():
    margins = jnp.array([0.5, 1.0, 0.0])
    # progress 1.4 vs 1.0 is within δ = 0.5; cost 3 vs 3.8 within δ = 1; risk decides
    assert decide([1.4, 3.0, 1.0], [1.0, 3.8, 2.0], margins=margins) == (1.0, True, 2)
    # a difference equal to the margin is not enough (strict inequality)
    assert decide([1.5, 3.0, 2.0], [1.0, 3.0, 2.0], margins=margins) == (0.5, False, 3)
    assert decide([1.6, 3.0, 2.0], [1.0, 3.0, 2.0], margins=margins) == (1.0, True, 0)


def test_ranking_order_changes_the_decision():
    z1, z2 = [2.0, 9.0, 0.0], [1.0, 0.0, 0.0]
    assert decide(z1, z2, order=jnp.array([0, 1, 2]))[0] == 1.0
    assert decide(z1, z2, order=jnp.array([1, 0, 2]))[0] == 0.0  # cost first: σ² costs less


def test_margins_are_sigma_times_std_over_the_batch():
    segments = np.array([[0.0, 10.0], [2.0, 10.0], [4.0, 10.0], [6.0, 10.0]])  # std 2.236, 0
    np.testing.assert_allclose(
        heron_margins(segments, jnp.array([0.5, 3.0])), [0.5 * np.std(segments[:, 0]), 0.0], rtol=1e-6
    )
    # batch of 2 pairs: factor-0 sums 0, 2 | 4, 6 → std ≈ 2.236; σ = 1 makes |Δ| = 2 a tie
    factors = jnp.asarray(segments.reshape(2, 2, 2))
    decision = heron_decisions(factors, jnp.array([1.0, 1.0]), jnp.array([0, 1]), jnp.array([1.0, 0.0]))
    assert decision.decided.tolist() == [False, False]
    decision = heron_decisions(factors, jnp.array([1.0, 1.0]), jnp.array([0, 1]), jnp.array([0.5, 0.0]))
    assert decision.labels.tolist() == [0.0, 0.0] and decision.decided.tolist() == [True, True]
    fixed = heron_decisions(
        factors, jnp.array([1.0, 1.0]), jnp.array([0, 1]), jnp.array([1.0, 0.0]), factor_std=jnp.array([1.0, 1.0])
    )
    assert fixed.decided.tolist() == [True, True]


def test_segment_factors_are_summed_over_time():
    per_step = np.zeros((1, 2, 3, 2), np.float32)
    per_step[0, 0, :, 0] = [1.0, 1.0, 1.0]  # Σ = 3
    per_step[0, 1, :, 0] = [0.0, 0.0, 2.5]  # Σ = 2.5
    decision = heron_decisions(per_step, jnp.array([1.0, 1.0]), jnp.array([0, 1]), jnp.zeros(2))
    assert decision.labels.tolist() == [1.0] and decision.level.tolist() == [0]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-5, 5, allow_nan=False, width=32), min_size=6, max_size=6), st.permutations([0, 1, 2]))
def test_swapping_a_pair_flips_a_decided_label(values, order):
    z1, z2 = values[:3], values[3:]
    order = jnp.array(order)
    forward, backward = decide(z1, z2, order=order), decide(z2, z1, order=order)
    assert forward[1] == backward[1] and forward[2] == backward[2]
    if forward[1]:
        assert forward[0] == 1.0 - backward[0]


def test_heron_teacher_drops_undecided_pairs_and_uses_the_env_spec():
    spec = factor_spec("Pendulum-v1")  # θ², θ̇², u², all lower-better, in that order
    teacher = make_teacher("heron", spec=spec, sigmas=(0.0, 0.0, 0.0))
    assert isinstance(teacher, HeronTeacher) and teacher.signs == (-1, -1, -1)
    pairs = factor_pairs(
        [
            [[1.0, 0.0, 0.0], [2.0, 0.0, 0.0]],  # smaller angle error wins
            [[1.0, 5.0, 0.0], [1.0, 4.0, 9.0]],  # equal angle, σ² spins less
            [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]],  # identical: dropped
        ]
    )
    labels = teacher(pairs, np.random.default_rng(0))
    np.testing.assert_array_equal(labels, [1.0, 0.0, np.nan])
    prefs = label(pairs, teacher, np.random.default_rng(0))
    np.testing.assert_array_equal(prefs.labels, [1.0, 0.0])
    assert prefs.pairs.factors.shape == (2, 2, 1, 3)
    assert set(HERON_SIGMAS) == {"Pendulum-v1", "MountainCarContinuous-v0", "HalfCheetah-v5"}


def test_heron_teacher_rejects_bad_input():
    with pytest.raises(ValueError, match="spec"):
        HeronTeacher()
    with pytest.raises(ValueError, match="signs"):
        HeronTeacher(signs=(1, 0), importance=(0, 1))
    with pytest.raises(ValueError, match="importance"):
        HeronTeacher(signs=(1, 1), importance=(0, 0))
    with pytest.raises(ValueError, match="sigmas"):
        HeronTeacher(signs=(1, 1), importance=(0, 1), sigmas=(0.1, -1.0))
    with pytest.raises(ValueError, match="factors"):
        HeronTeacher(signs=(1, 1), importance=(0, 1))(synthetic_pairs(np.zeros((1, 2))), np.random.default_rng(0))
    with pytest.raises(ValueError, match="factors"):
        HeronTeacher(signs=(1, 1, 1), importance=(0, 1, 2))(factor_pairs(np.zeros((1, 2, 2))), np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown HeronTeacher"):
        make_teacher("heron", spec=factor_spec("Pendulum-v1"), rationality=1.0)


def test_factor_combination_baselines():
    pairs = factor_pairs([[[3.0, 1.0], [1.0, 0.0]], [[3.0, 4.0], [1.0, 0.0]]])  # progress, cost
    factor_sum = compose(factor_combination((1.0, -1.0)), oracle())
    np.testing.assert_array_equal(factor_sum(pairs, np.random.default_rng(0)), [1.0, 0.0])  # 2 vs 1; −1 vs 1
    cost_heavy = compose(factor_combination((1.0, -0.1)), oracle())
    np.testing.assert_array_equal(cost_heavy(pairs, np.random.default_rng(0)), [1.0, 1.0])
    with pytest.raises(ValueError, match="factors"):
        compose(factor_combination((1.0, 1.0, 1.0)), oracle())(pairs, np.random.default_rng(0))


def test_heron_teacher_in_the_online_loop_with_env_factors():
    import gymnasium as gym  # noqa: F401
    import jax
    from stable_baselines3.common.vec_env import DummyVecEnv

    from rewardlab.rewards import RewardModel, RewardNetConfig
    from rewardlab.rl import PbRLConfig, make_agent, train_pbrl
    from rewardlab.wrappers import RewardVecEnvWrapper
    from rewardlab_envs import make

    venv = RewardVecEnvWrapper(DummyVecEnv([lambda: make("Pendulum-v1")] * 2))
    model = RewardModel(RewardNetConfig(hidden_sizes=(16,), ensemble_size=1), venv.observation_space, venv.action_space)
    agent = make_agent("ppo", venv, "Pendulum-v1", seed=0, n_steps=128, batch_size=64, n_epochs=1)
    config = PbRLConfig(
        labels=20, num_rounds=2, first_feedback_step=256, fragment_length=10, reward_epochs=2, query_method="uniform"
    )
    teacher = make_teacher("heron", spec=factor_spec("Pendulum-v1"), sigmas=HERON_SIGMAS["Pendulum-v1"])
    result = train_pbrl(agent, model, model.init(jax.random.key(0)), teacher, 512, config, seed=0)
    assert result.preferences is not None and result.preferences.pairs.factors.shape[1:] == (2, 10, 3)
    assert 0 < len(result.preferences.labels) <= 20
    assert set(np.unique(result.preferences.labels)) <= {0.0, 1.0}


@pytest.mark.slow
def test_heron_experiment_smoke():
    from experiments.heron import Args, main

    with pytest.raises(ValueError, match="sigmas"):
        Args(sigmas=(0.1,))
    for method in ("heron", "hand_tuned"):
        result = main(
            Args(
                method=method,
                total_timesteps=600,
                labels=10,
                num_rounds=2,
                first_feedback_step=300,
                fragment_length=20,
                eval_episodes=1,
            )
        )
        assert np.isfinite(result["final_return"]) and result["episodes"] >= 1


def test_heron_sweep_file_and_arguments():
    from experiments.heron import Args
    from rewardlab.sweeps import load_sweep, parse_args

    for name in ("heron", "heron_halfcheetah"):  # 4 methods × 5 seeds
        runs = load_sweep(f"experiments/{name}.toml").runs()
        assert len(runs) == 20 and {run.seed for run in runs} == set(range(5))
    args = parse_args(Args, ["--env-id", "HalfCheetah-v5", "--method", "factor_sum", "--sigmas", "[0.5, 0.1]"])
    assert args.sigmas == (0.5, 0.1) and args.method == "factor_sum"
    with pytest.raises(ValueError, match="method"):
        Args(method="oracle")


def test_label_diagnostics_measure_where_the_plain_factor_sum_disagrees_with_the_env_return():
    from experiments.heron import label_diagnostics
    from rewardlab._types import FragmentPairs

    def pairs_of(factors, weights):
        factors = np.asarray(factors, np.float64)[:, :, None, :]  # [B, 2, L=1, K]
        zeros = np.zeros(factors.shape[:3])
        return FragmentPairs(
            zeros, zeros, zeros, zeros.astype(bool), rews=factors @ np.asarray(weights), factors=factors
        )

    pendulum = factor_spec("Pendulum-v1")
    # σ¹: θ² = 1, θ̇² = 5; σ²: θ² = 2, θ̇² = 0. Env return −1.5 vs −2 prefers σ¹; the plain sum −6 vs −2 prefers σ².
    pairs = pairs_of([[[1.0, 5.0, 0.0], [2.0, 0.0, 0.0]]], pendulum.weights)
    figures = label_diagnostics(pairs, np.array([1.0]), pendulum.signs, pendulum.names)
    assert figures["label_agreement"] == 1.0 and figures["factor_sum_agreement"] == 0.0
    assert figures["dominant_angular_velocity_squared"] == 1.0 and figures["dominant_angle_squared"] == 0.0
    # HalfCheetah's plain signed sum is its env reward (forward − control): it always agrees
    cheetah = factor_spec("HalfCheetah-v5")
    factors = np.abs(np.random.default_rng(0).normal(size=(50, 2, 2)))
    figures = label_diagnostics(pairs_of(factors, cheetah.weights), np.zeros(50), cheetah.signs, cheetah.names)
    assert figures["factor_sum_agreement"] == 1.0


def test_on_random_pendulum_segments_the_plain_sum_mostly_disagrees_and_heron_agrees():
    from experiments.heron import random_segment_diagnostics

    figures = random_segment_diagnostics("Pendulum-v1", num_pairs=200, fragment_length=50, episodes=4)
    assert figures["factor_sum"]["factor_sum_agreement"] < 0.5 < 0.8 < figures["heron"]["label_agreement"]
    assert figures["factor_sum"]["dominant_angular_velocity_squared"] > 0.8  # θ̇² decides the plain sum
