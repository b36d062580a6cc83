"""Reward distances: hand-computed values, invariances (hypothesis), extreme inputs, numpy references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rewardlab_envs
from rewardlab.distances import (
    dard_distance,
    epic_canonicalize,
    epic_distance,
    lp_distance,
    pearson_distance,
    starc_distance,
)

NORMS = (1, 2, "inf")


def _shape(reward, potential, discount):
    return reward + discount * potential[None, None, :] - potential[:, None, None]


def _redistribute(reward, transitions, noise):
    """Add noise with zero expectation under T(s, a, ·): an S'-redistribution of the reward."""
    return reward + noise - np.einsum("sat,sat->sa", transitions, noise)[:, :, None]


def _numpy_epic(reward_a, reward_b, discount):
    """EPIC straight from the definition, with loops, uniform D_S, D_A and coverage."""

    def canonical(r):
        num_states, num_actions, _ = r.shape
        c = np.zeros_like(r, dtype=np.float64)
        total = r.mean()
        for s in range(num_states):
            for a in range(num_actions):
                for t in range(num_states):
                    c[s, a, t] = r[s, a, t] + discount * r[t].mean() - r[s].mean() - discount * total
        return c.ravel()

    rho = np.corrcoef(canonical(np.float64(reward_a)), canonical(np.float64(reward_b)))[0, 1]
    return np.sqrt((1 - rho) / 2)


@pytest.fixture(scope="module")
def mdp():
    return rewardlab_envs.random_mdp(7, 3, seed=0, discount=0.9)


def test_epic_matches_numpy_reference(mdp):
    other = rewardlab_envs.random_mdp(7, 3, seed=1, discount=0.9).reward
    expected = _numpy_epic(np.asarray(mdp.reward), np.asarray(other), 0.9)
    assert 0.3 < expected < 0.9
    np.testing.assert_allclose(epic_distance(mdp.reward, other, 0.9), expected, atol=1e-5)


def test_epic_hand_computed_two_state():
    # R_A rewards landing in state 1, R_B rewards being in state 1: with γ = 1 they differ by
    # the potential Φ(s) = 1[s = 1], so EPIC is 0; with γ = 0 they are not equivalent.
    r_a = np.zeros((2, 1, 2), np.float32)
    r_a[:, :, 1] = 1.0
    r_b = np.zeros((2, 1, 2), np.float32)
    r_b[1] = 1.0
    assert float(epic_distance(r_a, r_b, 1.0)) == pytest.approx(0.0, abs=1e-6)
    # γ = 0: C(R) = R − E[R(s, A, S')]; C(R_A) = ±½ by s', C(R_B) = 0: one degenerate side
    assert float(epic_distance(r_a, r_b, 0.0)) == pytest.approx(np.sqrt(0.5), abs=1e-6)


def test_pearson_distance_extremes():
    x = jnp.array([1.0, -2.0, 0.5, 3.0])
    assert float(pearson_distance(x, 5.0 * x + 2.0)) == pytest.approx(0.0, abs=1e-6)
    assert float(pearson_distance(x, -x)) == pytest.approx(1.0, abs=1e-6)
    assert float(pearson_distance(jnp.zeros(4), jnp.zeros(4))) == 0.0
    assert float(pearson_distance(jnp.zeros(4), x)) == pytest.approx(np.sqrt(0.5))
    # weights restrict the correlation to the support
    y = x.at[0].set(-100.0)
    assert float(pearson_distance(x, y, jnp.array([0.0, 1.0, 1.0, 1.0]))) == pytest.approx(0.0, abs=1e-6)
    assert float(pearson_distance(x, y)) > 0.1


def test_lp_distance_hand_computed():
    x, y = jnp.array([0.0, 1.0, 2.0]), jnp.array([1.0, 1.0, 0.0])
    assert float(lp_distance(x, y, 1)) == pytest.approx(3.0)
    assert float(lp_distance(x, y, 2)) == pytest.approx(np.sqrt(5.0))
    assert float(lp_distance(x, y, "inf")) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="p: expected 1, 2 or 'inf'"):
        lp_distance(x, y, 3)


@settings(max_examples=8, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    scale=st.floats(0.01, 100.0),
    potential_scale=st.floats(0.0, 10.0),
    discount=st.sampled_from([0.0, 0.5, 0.9, 0.99]),
)
def test_shaping_and_positive_scaling_leave_every_distance_at_zero(seed, scale, potential_scale, discount):
    mdp = rewardlab_envs.random_mdp(6, 3, seed=seed % 50, discount=discount)
    rng = np.random.default_rng(seed)
    potential = potential_scale * rng.normal(size=6).astype(np.float32)
    shaped = _shape(scale * np.asarray(mdp.reward), potential, discount)
    assert float(epic_distance(mdp.reward, shaped, discount)) < 2e-3
    assert float(dard_distance(mdp.reward, shaped, mdp.transitions, discount)) < 2e-3
    for canonicalization in ("value", "epic", "minimal"):
        for norm in NORMS:
            distance = starc_distance(
                mdp.reward, shaped, mdp.transitions, discount, canonicalization=canonicalization, norm=norm, metric=norm
            )
            assert float(distance) < 2e-3, (canonicalization, norm)


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 10_000), discount=st.sampled_from([0.0, 0.9, 0.99]))
def test_negation_is_at_maximal_distance(seed, discount):
    mdp = rewardlab_envs.random_mdp(6, 3, seed=seed % 50, discount=discount)
    assert float(epic_distance(mdp.reward, -mdp.reward, discount)) == pytest.approx(1.0, abs=1e-5)
    assert float(dard_distance(mdp.reward, -mdp.reward, mdp.transitions, discount)) == pytest.approx(1.0, abs=1e-5)
    for canonicalization in ("value", "epic", "minimal"):
        for norm in NORMS:
            distance = starc_distance(
                mdp.reward,
                -mdp.reward,
                mdp.transitions,
                discount,
                canonicalization=canonicalization,
                norm=norm,
                metric=norm,
            )
            assert float(distance) == pytest.approx(2.0, abs=1e-4), (canonicalization, norm)


@pytest.mark.parametrize("canonicalization", ["value", "minimal"])
def test_starc_is_zero_exactly_on_the_equivalence_class(mdp, canonicalization):
    rng = np.random.default_rng(3)
    transitions, reward = np.asarray(mdp.transitions), np.asarray(mdp.reward)
    potential = rng.normal(size=7).astype(np.float32)
    noise = rng.normal(size=reward.shape).astype(np.float32)
    equivalent = _redistribute(_shape(2.5 * reward, potential, 0.9), transitions, noise)
    assert float(starc_distance(reward, equivalent, transitions, 0.9, canonicalization=canonicalization)) < 1e-3
    # leaving the class in any direction other than shaping/redistribution gives a positive distance
    for seed in range(5):
        direction = np.random.default_rng(seed).normal(size=(7, 3)).astype(np.float32)
        outside = equivalent + 0.1 * direction[:, :, None]
        assert float(starc_distance(reward, outside, transitions, 0.9, canonicalization=canonicalization)) > 1e-2
    # negative scaling is not in the class
    assert float(starc_distance(reward, -equivalent, transitions, 0.9, canonicalization=canonicalization)) > 1.9


def test_epic_canonicalisation_does_not_quotient_redistribution(mdp):
    rng = np.random.default_rng(4)
    redistributed = _redistribute(
        np.asarray(mdp.reward), np.asarray(mdp.transitions), rng.normal(size=mdp.reward.shape).astype(np.float32)
    )
    assert float(starc_distance(mdp.reward, redistributed, mdp.transitions, 0.9, canonicalization="value")) < 1e-3
    assert float(starc_distance(mdp.reward, redistributed, mdp.transitions, 0.9, canonicalization="epic")) > 0.1
    assert float(epic_distance(mdp.reward, redistributed, 0.9)) > 0.1


def test_trivial_rewards_have_zero_starc_distance(mdp):
    constant = np.full(mdp.reward.shape, 3.0, np.float32)
    for canonicalization in ("value", "epic", "minimal"):
        assert (
            float(
                starc_distance(
                    constant, np.zeros_like(constant), mdp.transitions, 0.9, canonicalization=canonicalization
                )
            )
            == 0.0
        )
        # one trivial reward and one non-trivial one: the distance is the unit norm of the other
        assert float(
            starc_distance(constant, mdp.reward, mdp.transitions, 0.9, canonicalization=canonicalization)
        ) == pytest.approx(1.0, abs=1e-5)
    assert float(epic_distance(constant, np.zeros_like(constant), 0.9)) == 0.0


def test_state_and_state_action_rewards_broadcast(mdp):
    state_reward = np.arange(7, dtype=np.float32)
    full = np.broadcast_to(state_reward[:, None, None], mdp.reward.shape)
    assert float(epic_distance(state_reward, mdp.reward, 0.9, transitions=mdp.transitions)) == pytest.approx(
        float(epic_distance(full, mdp.reward, 0.9)), abs=1e-6
    )
    assert float(starc_distance(state_reward, mdp.reward, mdp.transitions, 0.9)) == pytest.approx(
        float(starc_distance(full, mdp.reward, mdp.transitions, 0.9)), abs=1e-6
    )
    state_action = np.asarray(mdp.reward).mean(-1)
    assert float(epic_distance(state_action, state_action * 2.0, 0.9)) < 1e-3


def test_delivery_true_reward_versus_perturbed_weights():
    true_mdp = rewardlab_envs.delivery_mdp(discount=0.9)
    weights = np.asarray(true_mdp.true_weights).copy()
    close = true_mdp.features @ (weights * 1.05)
    flipped = true_mdp.features @ (weights * np.array([1, -1, 1, 1, 1, 1], np.float32))  # goal is bad
    for distance in (
        lambda r: epic_distance(true_mdp.reward, r, 0.9),
        lambda r: starc_distance(true_mdp.reward, r, true_mdp.transitions, 0.9),
    ):
        assert float(distance(close)) < 0.05
        assert float(distance(flipped)) > 0.2


def test_jit_and_vmap_agree_with_eager(mdp):
    rewards = jnp.stack([mdp.reward, -mdp.reward, 2.0 * mdp.reward, rewardlab_envs.random_mdp(7, 3, seed=5).reward])
    eager = [float(starc_distance(mdp.reward, r, mdp.transitions, 0.9)) for r in rewards]
    batched = jax.jit(jax.vmap(lambda r: starc_distance(mdp.reward, r, mdp.transitions, 0.9)))(rewards)
    np.testing.assert_allclose(batched, eager, atol=1e-5)
    eager_epic = [float(epic_distance(mdp.reward, r, 0.9)) for r in rewards]
    np.testing.assert_allclose(jax.vmap(lambda r: epic_distance(mdp.reward, r, 0.9))(rewards), eager_epic, atol=1e-5)


def test_epic_canonicalisation_is_linear_and_idempotent(mdp):
    uniform_s, uniform_a = jnp.ones(7) / 7, jnp.ones(3) / 3
    c = epic_canonicalize(mdp.reward, 0.9, uniform_s, uniform_a)
    np.testing.assert_allclose(epic_canonicalize(c, 0.9, uniform_s, uniform_a), c, atol=1e-5)


def test_bad_inputs_raise_value_errors(mdp):
    with pytest.raises(ValueError, match="reward_b: expected the shape of reward_a"):
        epic_distance(mdp.reward, np.zeros((7, 2, 7)), 0.9)
    with pytest.raises(ValueError, match="canonicalization: expected one of"):
        starc_distance(mdp.reward, mdp.reward, mdp.transitions, 0.9, canonicalization="dard")
    with pytest.raises(ValueError, match="norm: expected 1, 2 or 'inf'"):
        starc_distance(mdp.reward, mdp.reward, mdp.transitions, 0.9, norm=3)
    with pytest.raises(ValueError, match="state_dist: expected shape"):
        epic_distance(mdp.reward, mdp.reward, 0.9, state_dist=np.ones(3))
    with pytest.raises(ValueError, match="policy: expected shape"):
        starc_distance(mdp.reward, mdp.reward, mdp.transitions, 0.9, policy=np.ones((7, 2)))
    with pytest.raises(ValueError, match="needs transitions or action_dist"):
        epic_distance(np.ones(7), np.ones(7), 0.9)


# --------------------------------------------------------------------------- sample-based EPIC

from rewardlab import Transitions  # noqa: E402
from rewardlab.distances import pure_reward, sample_epic_distance  # noqa: E402
from rewardlab.rewards import FunctionReward, as_reward_fn  # noqa: E402


def _uniform_coverage(num_states, num_actions, size, seed):
    rng = np.random.default_rng(seed)
    return Transitions(
        rng.integers(0, num_states, size),
        rng.integers(0, num_actions, size),
        rng.integers(0, num_states, size),
        np.zeros(size, bool),
        np.zeros(size, bool),
        np.zeros(size, np.float32),
    )


def _pure(fn):
    """A pure JAX reward function as the RewardFn whose ``pure_fn`` the distances trace."""
    return as_reward_fn(FunctionReward(fn))


def _lookup(table):
    table = jnp.asarray(table)
    return _pure(lambda s, a, t, d: table[s, a, t])


@pytest.mark.parametrize("seed", [0, 1])
def test_sample_epic_agrees_with_exact_within_its_confidence_interval(seed):
    # the exact distance under the data's empirical coverage, D_S (obs and next_obs pooled) and D_A
    reward_a = np.asarray(rewardlab_envs.random_mdp(5, 2, seed=seed).reward)
    reward_b = 0.5 * reward_a + np.asarray(rewardlab_envs.random_mdp(5, 2, seed=seed + 100).reward)
    data = _uniform_coverage(5, 2, 20_000, seed)
    coverage = np.zeros((5, 2, 5))
    np.add.at(coverage, (data.obs, data.acts, data.next_obs), 1.0)
    state_dist = np.bincount(np.concatenate([data.obs, data.next_obs]), minlength=5).astype(np.float32)
    action_dist = np.bincount(data.acts, minlength=2).astype(np.float32)
    exact = float(
        epic_distance(reward_a, reward_b, 0.9, state_dist=state_dist, action_dist=action_dist, coverage=coverage)
    )
    estimate = sample_epic_distance(
        _lookup(reward_a),
        _lookup(reward_b),
        data,
        0.9,
        num_transitions=4096,
        num_samples=1024,
        num_seeds=8,
        seed=seed,
    )
    assert estimate.low <= exact <= estimate.high, (exact, estimate)
    assert estimate.high - estimate.low < 0.05


def test_host_reward_fn_and_pure_reward_give_the_same_estimate():
    reward = np.asarray(rewardlab_envs.random_mdp(5, 2, seed=3).reward)
    other = np.asarray(rewardlab_envs.random_mdp(5, 2, seed=4).reward)
    data = _uniform_coverage(5, 2, 1000, 0)
    kwargs = dict(num_transitions=256, num_samples=64, num_seeds=2)
    pure = sample_epic_distance(_lookup(reward), _lookup(other), data, 0.9, **kwargs)
    host = sample_epic_distance(_lookup(reward), lambda s, a, t, d: other[s, a, t], data, 0.9, **kwargs)
    np.testing.assert_allclose(pure.per_seed, host.per_seed, atol=1e-5)


def _continuous_coverage(size=2048, seed=0):
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(size, 3)).astype(np.float32)
    return Transitions(
        obs,
        rng.uniform(-1, 1, (size, 2)).astype(np.float32),
        obs + 0.1 * rng.normal(size=(size, 3)).astype(np.float32),
        np.zeros(size, bool),
        np.zeros(size, bool),
        np.zeros(size, np.float32),
    )


def _base_reward(s, a, t, d):
    return -jnp.sum(t**2, axis=-1) - 0.3 * jnp.sum(a**2, axis=-1) + jnp.sin(s[:, 0]) * a[:, 1]


@settings(max_examples=4, deadline=None)
@given(
    scale=st.floats(0.05, 20.0),
    weights=st.lists(st.floats(-3, 3), min_size=3, max_size=3),
    discount=st.sampled_from([0.5, 0.99]),
)
def test_sample_epic_is_zero_under_shaping_and_scaling_and_one_under_negation(scale, weights, discount):
    weights = jnp.asarray(weights, jnp.float32)

    def potential(s):
        return jnp.tanh(s @ weights) + 0.1 * jnp.sum(s**2, axis=-1)

    shaped = _pure(lambda s, a, t, d: scale * _base_reward(s, a, t, d) + discount * potential(t) - potential(s))
    data = _continuous_coverage()
    kwargs = dict(num_transitions=512, num_samples=256, num_seeds=2)
    assert sample_epic_distance(_pure(_base_reward), shaped, data, discount, **kwargs).mean < 0.01
    for metric in (1, 2, "inf"):
        assert sample_epic_distance(_pure(_base_reward), shaped, data, discount, metric=metric, **kwargs).mean < 0.02
    negated = _pure(lambda s, a, t, d: -_base_reward(s, a, t, d))
    assert sample_epic_distance(_pure(_base_reward), negated, data, discount, **kwargs).mean == pytest.approx(
        1.0, abs=1e-5
    )


def test_sample_epic_takes_reward_models_through_their_pure_function_or_the_host():
    import gymnasium as gym

    from rewardlab.rewards import RewardModel, RewardNetConfig

    model = RewardModel(
        RewardNetConfig(hidden_sizes=(16,), ensemble_size=2), gym.spaces.Box(-5, 5, (3,)), gym.spaces.Box(-1, 1, (2,))
    )
    params_a, params_b = model.init(0), model.init(1)
    reward_a, reward_b = as_reward_fn(model, params_a), as_reward_fn(model, params_b, host_batch_limit=0)
    assert pure_reward(reward_a) is not None
    data = _continuous_coverage(512)
    kwargs = dict(num_transitions=128, num_samples=32, num_seeds=2)
    assert sample_epic_distance(reward_a, as_reward_fn(model, params_a), data, 0.99, **kwargs).mean < 1e-3
    different = sample_epic_distance(reward_a, reward_b, data, 0.99, **kwargs)
    # A host-only RewardFn (no pure_fn) takes the chunked host path and agrees with the jitted one.
    host = sample_epic_distance(reward_a, lambda o, a, n, d: reward_b(o, a, n, d), data, 0.99, **kwargs)
    assert pure_reward(lambda o, a, n, d: reward_b(o, a, n, d)) is None
    assert 0.05 < different.mean < 0.95
    np.testing.assert_allclose(different.per_seed, host.per_seed, atol=1e-4)
    with pytest.raises(ValueError, match="reward: expected a RewardFn"):
        pure_reward((model, params_a))


def test_sample_epic_rejects_bad_arguments():
    data = _continuous_coverage(64)
    with pytest.raises(ValueError, match="num_samples: expected a positive integer"):
        sample_epic_distance(_pure(_base_reward), _pure(_base_reward), data, 0.9, num_samples=0)
    with pytest.raises(ValueError, match=r"transitions: expected rewardlab.Transitions"):
        sample_epic_distance(_pure(_base_reward), _pure(_base_reward), (1, 2), 0.9)
    with pytest.raises(ValueError, match="metric: expected 1, 2 or 'inf'"):
        sample_epic_distance(_pure(_base_reward), _pure(_base_reward), data, 0.9, metric="spearman")


# --------------------------------------------------------------------------- distance matrix

from rewardlab.distances import distance_matrix, plot_distance_matrix  # noqa: E402


def _reward_stack(mdp, shape):
    rng = np.random.default_rng(0)
    base = [np.asarray(mdp.reward).mean(-1) if shape == "sa" else np.asarray(mdp.reward)]
    base.append(rng.normal(size=base[0].shape).astype(np.float32))
    base.append(3.0 * base[0])
    base.append(-base[0])
    base.append(np.zeros_like(base[0]))  # trivial reward
    base.append(base[0] + 0.5 * base[1])
    return np.stack(base)


@pytest.mark.parametrize("shape", ["sa", "sas"])
def test_epic_matrix_matches_pairwise_calls(mdp, shape):
    rewards = _reward_stack(mdp, shape)
    matrix = np.asarray(distance_matrix(rewards, 0.9, transitions=mdp.transitions))
    expected = _all_pairs(lambda a, b: epic_distance(a, b, 0.9), jnp.asarray(rewards))
    np.testing.assert_allclose(matrix, expected, atol=2e-4)
    np.testing.assert_allclose(matrix, matrix.T, atol=1e-6)


def _all_pairs(pair_fn, rewards):
    return jax.jit(jax.vmap(jax.vmap(pair_fn, (None, 0)), (0, None)))(rewards, rewards)


def test_dard_and_starc_matrices_match_pairwise_calls(mdp):
    rewards = jnp.asarray(_reward_stack(mdp, "sas"))
    dard = distance_matrix(rewards, 0.9, distance="dard", transitions=mdp.transitions)
    expected = _all_pairs(lambda a, b: dard_distance(a, b, mdp.transitions, 0.9), rewards)
    np.testing.assert_allclose(dard, expected, atol=2e-4)
    for canonicalization, norm in (("value", 2), ("minimal", 1), ("epic", "inf")):
        kwargs = dict(canonicalization=canonicalization, norm=norm, metric=norm)
        starc = distance_matrix(rewards, 0.9, distance="starc", transitions=mdp.transitions, **kwargs)
        expected = _all_pairs(lambda a, b: starc_distance(a, b, mdp.transitions, 0.9, **kwargs), rewards)  # noqa: B023 - traced at once
        np.testing.assert_allclose(starc, expected, atol=2e-4)


def test_gram_path_matches_exact_pairs(mdp, monkeypatch):
    from rewardlab.distances import _matrix

    rewards = _reward_stack(mdp, "sa")
    exact = np.asarray(distance_matrix(rewards, 0.9, distance="starc", transitions=mdp.transitions))
    monkeypatch.setattr(_matrix, "_EXACT_PAIR_LIMIT", 0)
    jax.clear_caches()
    gram = np.asarray(distance_matrix(rewards, 0.9, distance="starc", transitions=mdp.transitions))
    jax.clear_caches()
    np.testing.assert_allclose(gram, exact, atol=2e-3)


def test_distance_matrix_rejects_bad_arguments(mdp):
    with pytest.raises(ValueError, match="distance: expected one of"):
        distance_matrix(np.zeros((2, 7, 3)), 0.9, distance="l2")
    with pytest.raises(ValueError, match="transitions: required"):
        distance_matrix(np.zeros((2, 7, 3)), 0.9, distance="starc")
    with pytest.raises(ValueError, match="rewards: expected"):
        distance_matrix(np.zeros((2, 7, 2)), 0.9, transitions=mdp.transitions)


def test_plot_distance_matrix_writes_a_file(tmp_path):
    path = tmp_path / "matrix.png"
    plot_distance_matrix(np.array([[0.0, 0.3], [0.3, 0.0]]), ["true", "learned"], title="EPIC", path=path)
    assert path.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="labels: expected 2 names"):
        plot_distance_matrix(np.zeros((2, 2)), ["a"])


# --------------------------------------------------------------------------- command line


def test_distance_command_compares_two_saved_models(tmp_path):
    import json

    import gymnasium as gym
    from typer.testing import CliRunner

    from rewardlab.cli import app
    from rewardlab.rewards import RewardModel, RewardNetConfig, save_reward_model

    model = RewardModel(RewardNetConfig(hidden_sizes=(8,)), gym.spaces.Box(-1, 1, (3,)), gym.spaces.Box(-1, 1, (1,)))
    save_reward_model(tmp_path / "a.rlab", model, model.init(0))
    save_reward_model(tmp_path / "b.rlab", model, model.init(1))
    runner = CliRunner()
    options = ["--transitions", "128", "--samples", "32", "--seeds", "2", "--rollout-steps", "256", "--json"]
    same = runner.invoke(app, ["distance", str(tmp_path / "a.rlab"), str(tmp_path / "a.rlab"), *options])
    assert same.exit_code == 0, same.output
    assert json.loads(same.output.strip().splitlines()[-1])["distance"] < 1e-3
    different = runner.invoke(app, ["distance", str(tmp_path / "a.rlab"), str(tmp_path / "b.rlab"), *options])
    result = json.loads(different.output.strip().splitlines()[-1])
    assert 0.05 < result["distance"] <= 1.0 and result["low"] <= result["distance"] <= result["high"]
    missing = runner.invoke(app, ["distance", str(tmp_path / "a.rlab"), str(tmp_path / "nope.rlab")])
    assert missing.exit_code == 2 and "checkpoint file not found" in missing.output


# --------------------------------------------------------------------------- sample-based DARD

from rewardlab.distances import sample_dard_distance  # noqa: E402


def test_sample_dard_agrees_with_exact_within_its_confidence_interval():
    mdp = rewardlab_envs.random_mdp(6, 2, seed=0, branching=3)
    transitions = jnp.asarray(mdp.transitions)
    reward_a = np.asarray(mdp.reward)
    reward_b = 0.5 * reward_a + np.asarray(rewardlab_envs.random_mdp(6, 2, seed=100, branching=3).reward)
    rng = np.random.default_rng(0)
    size = 20_000
    states, actions = rng.integers(0, 6, size), rng.integers(0, 2, size)
    cumulative = np.cumsum(np.asarray(mdp.transitions, np.float64)[states, actions], axis=1)
    successors = np.minimum((rng.random(size)[:, None] * cumulative[:, -1:] > cumulative).sum(1), 5)
    data = Transitions(
        states, actions, successors, np.zeros(size, bool), np.zeros(size, bool), np.zeros(size, np.float32)
    )

    def dynamics(key, s, a):
        return jax.random.categorical(key, jnp.log(transitions[s, a] + 1e-30))

    estimate = sample_dard_distance(
        _lookup(reward_a), _lookup(reward_b), data, 0.9, dynamics, num_transitions=2048, num_samples=128, num_seeds=6
    )
    coverage = np.zeros((6, 2, 6))
    np.add.at(coverage, (states, actions, successors), 1.0)
    exact = float(
        dard_distance(
            reward_a,
            reward_b,
            mdp.transitions,
            0.9,
            action_dist=np.bincount(actions, minlength=2).astype(np.float32),
            coverage=coverage,
        )
    )
    assert estimate.low <= exact <= estimate.high, (exact, estimate)
    with pytest.raises(ValueError, match="reward_b: sample-based DARD needs a pure JAX reward"):
        sample_dard_distance(_lookup(reward_a), lambda s, a, t, d: reward_b[s, a, t], data, 0.9, dynamics)


# --------------------------------------------------------------------------- sample-based STARC

from rewardlab.distances import random_fourier_features, sample_starc_distance  # noqa: E402


def test_sample_starc_matches_exact_value_starc_on_a_deterministic_mdp():
    mdp = rewardlab_envs.random_mdp(8, 3, seed=2, branching=1, discount=0.9)  # deterministic: one s' per (s, a)
    successor = np.argmax(np.asarray(mdp.transitions), axis=-1)
    reward_a = np.asarray(mdp.reward).mean(-1)  # state-action rewards
    reward_b = 0.3 * reward_a + np.random.default_rng(1).normal(size=reward_a.shape)
    rng = np.random.default_rng(0)
    states, actions = rng.integers(0, 8, 50_000), rng.integers(0, 3, 50_000)
    data = Transitions(
        states, actions, successor[states, actions], np.zeros(50_000, bool), np.zeros(50_000, bool), np.zeros(50_000)
    )
    estimate = sample_starc_distance(
        lambda s, a, t, d: reward_a[s, a],
        lambda s, a, t, d: reward_b[s, a],
        data,
        0.9,
        features=lambda s: np.eye(8)[s],
        num_transitions=20_000,
        num_seeds=3,
    )
    exact = float(starc_distance(reward_a, reward_b, mdp.transitions, 0.9, canonicalization="value"))
    assert 0.3 < exact < 1.8
    assert estimate.mean == pytest.approx(exact, abs=0.03)


@pytest.mark.parametrize("norm", NORMS)
def test_sample_starc_is_zero_under_shaping_in_the_feature_span_and_two_under_negation(norm):
    data = _continuous_coverage(1024)
    features = random_fourier_features(np.concatenate([data.obs, data.next_obs]), 32, seed=0)
    theta = np.random.default_rng(0).normal(size=features(data.obs[:1]).shape[1])

    def reward(s, a, t, d):
        return np.asarray(_base_reward(jnp.asarray(s), jnp.asarray(a), jnp.asarray(t), d), np.float64)

    def shaped(s, a, t, d):
        return 4.0 * reward(s, a, t, d) + 0.95 * features(t) @ theta - features(s) @ theta

    kwargs = dict(features=features, num_transitions=512, num_seeds=2, norm=norm, metric=norm)
    assert sample_starc_distance(reward, shaped, data, 0.95, **kwargs).mean < 1e-3
    negated = sample_starc_distance(reward, lambda *args: -reward(*args), data, 0.95, **kwargs)
    assert negated.mean == pytest.approx(2.0, abs=1e-6)
    other = sample_starc_distance(
        reward, lambda s, a, t, d: np.asarray(s[:, 1] * a[:, 0], np.float64), data, 0.95, **kwargs
    )
    assert 0.1 < other.mean < 2.0
    with pytest.raises(ValueError, match="discount: expected a finite number in \\[0, 1\\)"):
        sample_starc_distance(reward, reward, data, 1.0)


def test_sample_starc_bootstraps_through_truncation_and_stops_at_termination():
    """A time limit does not end the MDP: shaping γΦ(s') − Φ(s) stays trivial at truncated steps."""
    data = _continuous_coverage(1024)
    cut = np.random.default_rng(3).random(1024) < 0.2  # a fifth of the steps end an episode
    features = random_fourier_features(np.concatenate([data.obs, data.next_obs]), 32, seed=0)
    theta = np.random.default_rng(0).normal(size=features(data.obs[:1]).shape[1])

    def reward(s, a, t, d):
        return np.asarray(_base_reward(jnp.asarray(s), jnp.asarray(a), jnp.asarray(t), d), np.float64)

    def shaped(s, a, t, d):  # Φ(s') kept at episode ends: potential shaping of the MDP without terminal states
        return reward(s, a, t, d) + 5.0 * (0.95 * features(t) @ theta - features(s) @ theta)

    kwargs = dict(features=features, num_transitions=1024, num_seeds=1)
    truncated = data._replace(truncated=cut)
    assert bool(truncated.dones.any()) and not truncated.terminated.any()
    assert sample_starc_distance(reward, shaped, truncated, 0.95, **kwargs).mean < 1e-3
    # the same ends read as terminations make Φ(s') count where V(s') = 0: no longer shaping
    terminated = data._replace(terminated=cut)
    assert sample_starc_distance(reward, shaped, terminated, 0.95, **kwargs).mean > 0.03


@pytest.mark.parametrize("distance", ["epic", "dard", "starc-value", "starc-minimal"])
def test_real_reward_under_a_large_shaping_term_is_not_zeroed(distance):
    """A real reward 10⁴ times smaller than its shaping term keeps its true distances (float32 inputs)."""
    mdp = rewardlab_envs.random_mdp(5, 2, seed=3)
    transitions = jnp.asarray(mdp.transitions, jnp.float32)
    real = jnp.asarray(np.random.default_rng(0).normal(size=(5, 2, 5)), jnp.float32)
    potential = jnp.asarray(np.random.default_rng(1).normal(size=5), jnp.float32)
    zero = jnp.zeros_like(real)
    potential = potential * 1e4 * jnp.max(jnp.abs(real)) / jnp.max(jnp.abs(_shape(zero, potential, 0.9)))
    hidden = _shape(real, potential, 0.9)  # max |shaping| = 10⁴ max |real|
    if distance == "epic":
        measure = lambda a, b: epic_distance(a, b, 0.9)  # noqa: E731
    elif distance == "dard":
        measure = lambda a, b: dard_distance(a, b, transitions, 0.9)  # noqa: E731
    else:
        canonicalization = distance.split("-")[1]
        measure = lambda a, b: starc_distance(a, b, transitions, 0.9, canonicalization=canonicalization)  # noqa: E731
    # to the zero reward: EPIC/DARD give sqrt(1/2) (no correlation), STARC gives ‖s(R)‖ = 1
    expected_to_zero = 1.0 if distance.startswith("starc") else np.sqrt(0.5)
    assert float(measure(hidden, zero)) == pytest.approx(expected_to_zero, abs=1e-3)
    assert float(measure(hidden, real)) < 0.05  # the same class as the real reward, up to float32 round-off
    # a pure shaping term of the same size is still trivial: round-off is snapped to zero
    assert float(measure(_shape(zero, potential, 0.9), zero)) == pytest.approx(0.0, abs=1e-6)


# --------------------------------------------------------------------------- bad inputs: errors, never NaN

from rewardlab import NonFiniteError  # noqa: E402


def _tabular_measures(mdp):
    """Every exact distance as (name of the reward argument, f(reward_a, reward_b, discount, **kwargs))."""

    def matrix(distance):
        def measure(a, b, discount, **kw):
            return distance_matrix(np.stack([a, b]), discount, distance=distance, transitions=mdp.transitions, **kw)

        return measure

    return {
        "epic": ("reward_b", lambda a, b, discount, **kw: epic_distance(a, b, discount, **kw)),
        "dard": ("reward_b", lambda a, b, discount, **kw: dard_distance(a, b, mdp.transitions, discount, **kw)),
        "starc": ("reward_b", lambda a, b, discount, **kw: starc_distance(a, b, mdp.transitions, discount, **kw)),
        "matrix-epic": ("rewards", matrix("epic")),
        "matrix-dard": ("rewards", matrix("dard")),
        "matrix-starc": ("rewards", matrix("starc")),
    }


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_exact_distances_reject_non_finite_rewards(mdp, bad):
    # They used to return NaN.
    for argument, measure in _tabular_measures(mdp).values():
        broken = np.array(mdp.reward)
        broken[2, 1, 3] = bad
        with pytest.raises(NonFiniteError, match=rf"^{argument}: expected finite values, got 1 NaN or infinite entry"):
            measure(mdp.reward, broken, 0.9)


@pytest.mark.parametrize(
    ("discount", "error", "message"),
    [
        (-0.1, ValueError, r"discount: expected a finite number in \[0, 1\], got -0.1"),
        (1.5, ValueError, r"discount: expected a finite number in \[0, 1\], got 1.5"),
        (np.nan, ValueError, r"discount: expected a finite number in \[0, 1\], got nan"),
        (np.inf, ValueError, r"discount: expected a finite number"),
        ("0.9", TypeError, r"discount: expected a real number, got str"),
        (None, TypeError, r"discount: expected a real number, got NoneType"),
    ],
)
def test_exact_distances_reject_discounts_outside_the_unit_interval(mdp, discount, error, message):
    for _, measure in _tabular_measures(mdp).values():
        with pytest.raises(error, match=message):
            measure(mdp.reward, 2.0 * mdp.reward, discount)
    # the edges are valid: γ = 0 (myopic) and γ = 1
    assert np.isfinite(float(epic_distance(mdp.reward, 2.0 * mdp.reward, 0.0)))
    assert np.isfinite(float(epic_distance(mdp.reward, 2.0 * mdp.reward, np.float32(1.0))))


@pytest.mark.parametrize(
    ("state_dist", "error", "message"),
    [
        (
            np.array([0.5, 0.5, -0.2, 0.2, 0, 0, 0]),
            ValueError,
            r"state_dist: expected non-negative weights, got a minimum of -0.2",
        ),
        (np.array([0.5, np.nan, 0, 0, 0, 0, 0.5]), NonFiniteError, r"state_dist: expected finite values"),
        (np.zeros(7), ValueError, r"state_dist: expected weights with a positive sum"),
        (np.ones(3), ValueError, r"state_dist: expected shape \(7,\), got \(3,\)"),
        (np.array(["a"] * 7), TypeError, r"state_dist: expected a numeric"),
    ],
)
def test_exact_distances_reject_invalid_distributions(mdp, state_dist, error, message):
    with pytest.raises(error, match=message):
        epic_distance(mdp.reward, 2.0 * mdp.reward, 0.9, state_dist=state_dist)
    with pytest.raises(error, match=message):
        distance_matrix(np.stack([mdp.reward, -mdp.reward]), 0.9, state_dist=state_dist)
    bad = state_dist[:3] if state_dist.shape == (7,) else np.ones(5)
    with pytest.raises(
        error, match=message.replace("state_dist", "action_dist").split(", got")[0].replace(r"\(7,\)", r"\(3,\)")
    ):
        dard_distance(mdp.reward, 2.0 * mdp.reward, mdp.transitions, 0.9, action_dist=bad)
    with pytest.raises(ValueError, match=r"coverage: expected non-negative weights"):
        epic_distance(mdp.reward, mdp.reward, 0.9, coverage=-np.ones((7, 3, 7)))
    with pytest.raises(ValueError, match=r"policy: expected non-negative weights"):
        starc_distance(mdp.reward, mdp.reward, mdp.transitions, 0.9, policy=-np.ones((7, 3)))
    # weights that do not sum to 1 (counts) are divided by their sum, as documented
    counts = np.arange(1.0, 8.0)
    assert float(epic_distance(mdp.reward, -mdp.reward, 0.9, state_dist=counts)) == pytest.approx(
        float(epic_distance(mdp.reward, -mdp.reward, 0.9, state_dist=counts / counts.sum())), abs=1e-6
    )


def test_exact_distances_still_trace_under_jit_and_vmap(mdp):
    # Value checks are skipped for traced arguments; the traced results equal the eager ones.
    rewards = jnp.stack([mdp.reward, -mdp.reward, 2.0 * mdp.reward])
    traced = jax.jit(jax.vmap(lambda r, g: epic_distance(mdp.reward, r, g)))(rewards, jnp.full(3, 0.9))
    np.testing.assert_allclose(traced, [0.0, 1.0, 0.0], atol=1e-5)


def test_sample_distances_reject_non_finite_rewards_and_data():
    data = _continuous_coverage(64)
    good = _pure(_base_reward)

    def nan_reward(s, a, t, d):
        out = np.zeros(len(d))
        out[5] = np.nan
        return out

    nan_pure = as_reward_fn(FunctionReward(lambda s, a, t, d: jnp.log(s[:, 0] - 10.0)))  # NaN for these states
    kwargs = dict(num_transitions=16, num_samples=8, num_seeds=1)
    for reward in (nan_reward, nan_pure):
        with pytest.raises(NonFiniteError, match=r"^reward_b: expected finite rewards on the coverage transitions"):
            sample_epic_distance(good, reward, data, 0.9, **kwargs)
    with pytest.raises(NonFiniteError, match=r"^reward_a: expected finite rewards"):
        sample_starc_distance(nan_reward, good, data, 0.9, num_transitions=16, num_seeds=1, num_features=4)
    with pytest.raises(NonFiniteError, match=r"^reward_b: expected finite rewards"):
        sample_dard_distance(good, nan_pure, data, 0.9, lambda key, s, a: s, **kwargs)
    inf_obs = data._replace(obs=np.where(np.arange(64)[:, None] == 3, np.inf, data.obs))
    with pytest.raises(NonFiniteError, match=r"^transitions.obs: expected finite values"):
        sample_epic_distance(good, good, inf_obs, 0.9, **kwargs)
    with pytest.raises(TypeError, match=r"^transitions.acts: expected a numeric"):
        sample_epic_distance(good, good, data._replace(acts=data.acts.astype(complex)), 0.9, **kwargs)
    for discount in (1.5, -0.5, np.nan):
        with pytest.raises(ValueError, match=r"^discount: expected a finite number in \[0, 1\]"):
            sample_epic_distance(good, good, data, discount, **kwargs)
        with pytest.raises(ValueError, match=r"^discount: expected a finite number in \[0, 1\]"):
            sample_dard_distance(good, good, data, discount, lambda key, s, a: s, **kwargs)
    with pytest.raises(ValueError, match=r"^confidence: expected a finite number in \(0, 1\)"):
        sample_epic_distance(good, good, data, 0.9, confidence=1.0, **kwargs)
    with pytest.raises(TypeError, match=r"^seed: expected an integer, got str"):
        sample_starc_distance(good, good, data, 0.9, seed="0")
