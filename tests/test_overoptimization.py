"""Over-optimisation harness: MMD, evaluation bookkeeping, the callback's checkpoints, the experiment's smoke run."""

import json
from pathlib import Path

import gymnasium as gym
import jax.numpy as jnp
import numpy as np
import pytest
from stable_baselines3.common.env_util import make_vec_env

from rewardlab.rl import (
    OveroptimizationCallback,
    evaluate_policy,
    make_agent,
    measure_overoptimization,
    median_bandwidth,
    plot_overoptimization,
    visitation_mmd,
)


def _pendulum_reward(obs, acts, next_obs, dones):
    """Pendulum's own reward from (s, a): −(θ² + 0.1 θ̇² + 0.001 u²)."""
    theta = np.arctan2(obs[:, 1], obs[:, 0])
    torque = np.clip(np.asarray(acts).reshape(len(obs), -1)[:, 0], -2.0, 2.0)
    return -(theta**2 + 0.1 * obs[:, 2] ** 2 + 0.001 * torque**2).astype(np.float32)


def test_mmd_hand_computed_and_monotone_in_the_shift():
    x = jnp.array([[0.0], [1.0]])
    # k = exp(−d²/2): E k(x,x) = (1 + e^{-1/2})/2 and y = x gives 0
    assert float(visitation_mmd(x, x, 1.0)) == pytest.approx(0.0, abs=1e-7)
    y = jnp.array([[0.0], [0.0]])
    expected = (1 + np.exp(-0.5)) / 2 + 1.0 - 2 * (1 + np.exp(-0.5)) / 2
    assert float(visitation_mmd(x, y, 1.0)) == pytest.approx(expected, abs=1e-6)
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(300, 3)).astype(np.float32)
    shifts = [
        float(visitation_mmd(rng.normal(size=(300, 3)).astype(np.float32) + shift, reference, 1.5))
        for shift in (0.0, 0.5, 2.0)
    ]
    assert shifts[0] < 0.02 < shifts[1] < shifts[2]
    assert median_bandwidth(np.array([[0.0, 0.0], [3.0, 4.0]])) == pytest.approx(5.0)


def test_evaluation_of_a_proxy_equal_to_the_true_reward_gives_equal_returns():
    env = gym.make("Pendulum-v1")
    agent = make_agent("ppo", make_vec_env("Pendulum-v1", n_envs=1, seed=0), "Pendulum-v1", n_steps=16, batch_size=16)
    result = evaluate_policy(agent, env, 2, seed=3, seed_every_episode=True, reward_fn=_pendulum_reward)
    assert result.reward_return == pytest.approx(result.true_return, rel=1e-4)
    flipped = evaluate_policy(
        agent, env, 2, seed=3, seed_every_episode=True, reward_fn=lambda *args: -_pendulum_reward(*args)
    )
    assert flipped.reward_return == pytest.approx(-result.true_return, rel=1e-4)
    assert flipped.true_return == result.true_return  # the same seeded episodes


def test_callback_checkpoints_and_measure_overoptimization():
    reference = np.random.default_rng(0).normal(size=(100, 3)).astype(np.float32)
    result = measure_overoptimization(
        "Pendulum-v1",
        _pendulum_reward,
        reference,
        total_timesteps=256,
        num_checkpoints=2,
        eval_episodes=1,
        num_envs=2,
        agent_kwargs=dict(n_steps=32, batch_size=64, n_epochs=1),
    )
    assert result.timesteps.tolist() == [0, 128, 256]
    np.testing.assert_allclose(result.proxy_return, result.true_return, rtol=1e-4)
    assert np.all(result.visitation_mmd >= 0.0)
    with pytest.raises(ValueError, match="reference_obs: expected \\[M, D\\]"):
        OveroptimizationCallback(gym.make("Pendulum-v1"), _pendulum_reward, np.zeros(5), 10)


def test_plot_overoptimization_writes_a_png(tmp_path):
    from rewardlab.rl import OveroptimizationResult

    result = OveroptimizationResult(
        np.array([0, 10]), np.array([1.0, 5.0]), np.array([-3.0, -4.0]), np.array([0.0, 0.1])
    )
    plot_overoptimization({"single": result, "ensemble": result}, path=tmp_path / "plot.png")
    assert (tmp_path / "plot.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="results: expected at least one"):
        plot_overoptimization({})


def test_overoptimization_experiment_smoke(tmp_path):
    from experiments.overoptimization import Args, main

    args = Args(
        total_timesteps=128,
        num_checkpoints=1,
        eval_episodes=1,
        data_episodes=2,
        labels=16,
        reward_epochs=2,
        ensemble_size=2,
        noise_levels=(0.25,),
        designs=("ensemble",),
        ppo_n_steps=32,
        out_dir=tmp_path,
    )
    summary = main(args)
    assert set(summary) >= {
        "ensemble-noise25/final_true_return",
        "ensemble-noise25/final_proxy_return",
        "ensemble-noise25/final_visitation_mmd",
    }
    run_dir = Path(tmp_path) / args.name
    saved = json.loads((run_dir / "summary.json").read_text())
    assert saved["runs"]["ensemble-noise25"]["timesteps"] == [0, 128]
    assert (run_dir / "overoptimization.png").exists()
    with pytest.raises(ValueError, match="designs: expected one of"):
        Args(designs=("median",))
    with pytest.raises(ValueError, match="designs: expected a non-empty subset"):
        Args(designs=())


def test_overoptimization_ppo_overrides():
    from experiments.overoptimization import Args, ppo_kwargs

    assert ppo_kwargs(Args()) == {}
    assert ppo_kwargs(Args(ppo_n_steps=8)) == {"n_steps": 8, "batch_size": 32}
    assert ppo_kwargs(Args(ppo_n_steps=32, ppo_batch_size=16)) == {"n_steps": 32, "batch_size": 16}
    with pytest.raises(ValueError, match="ppo_batch_size: expected None or an integer >= 1"):
        Args(ppo_batch_size=0)
