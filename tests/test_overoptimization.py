"""Over-optimisation harness: MMD, evaluation bookkeeping, the callback's checkpoints, the experiment's smoke run."""

import json
import types
from pathlib import Path

import gymnasium as gym
import jax.numpy as jnp
import numpy as np
import pytest
from stable_baselines3.common.env_util import make_vec_env

from rewardlab.rl import (
    OveroptimizationCallback,
    action_distribution,
    evaluate_policy,
    make_agent,
    mean_kl,
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
    assert result.policy_kl[0] == 0.0 and result.policy_kl[-1] > 0.0  # π₀ is the policy before training
    with pytest.raises(ValueError, match="reference_obs: expected \\[M, D\\]"):
        OveroptimizationCallback(gym.make("Pendulum-v1"), _pendulum_reward, np.zeros(5), 10)


def test_plot_overoptimization_writes_a_png(tmp_path):
    from rewardlab.rl import OveroptimizationResult

    result = OveroptimizationResult(
        np.array([0, 10]), np.array([1.0, 5.0]), np.array([-3.0, -4.0]), np.array([0.0, 0.1]), np.array([0.0, 0.3])
    )
    plot_overoptimization({"single": result, "ensemble": result}, path=tmp_path / "plot.png")
    assert (tmp_path / "plot.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="results: expected at least one"):
        plot_overoptimization({})


def test_mean_kl_of_gaussians_is_hand_computed():
    import torch

    zeros, ones = torch.zeros(3, 2), torch.ones(3, 2)
    # KL(N(0,1) ‖ N(1,1)) = 1/2 per coordinate, two coordinates
    assert mean_kl(torch.distributions.Normal(zeros, ones), torch.distributions.Normal(ones, ones)) == pytest.approx(
        1.0
    )
    # KL(N(0,1) ‖ N(0,2²)) = log 2 + 1/8 − 1/2 per coordinate
    expected = 2 * (np.log(2.0) + 1 / 8 - 1 / 2)
    assert mean_kl(
        torch.distributions.Normal(zeros, ones), torch.distributions.Normal(zeros, 2 * ones)
    ) == pytest.approx(expected, rel=1e-6)
    logits = torch.tensor([[0.0, 0.0], [0.0, np.log(3.0)]])
    categorical = torch.distributions.Categorical(logits=logits)
    uniform = torch.distributions.Categorical(logits=torch.zeros(2, 2))
    # second state: (1/4, 3/4) against (1/2, 1/2)
    second = 0.25 * np.log(0.5) + 0.75 * np.log(1.5)
    assert mean_kl(categorical, uniform) == pytest.approx(second / 2, rel=1e-6)


def test_policy_kl_from_an_sb3_policy_equals_the_gaussian_formula():
    import torch

    states = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    venv = make_vec_env("Pendulum-v1", n_envs=1, seed=0)
    agent = make_agent("ppo", venv, "Pendulum-v1", use_sde=False, n_steps=16, batch_size=16)
    initial = action_distribution(agent, states)
    assert mean_kl(action_distribution(agent, states), initial) == 0.0
    with torch.no_grad():
        agent.policy.action_net.bias += 0.5  # every mean moves by 0.5, std stays exp(0) = 1
    assert mean_kl(action_distribution(agent, states), initial) == pytest.approx(0.5**2 / 2, rel=1e-5)
    sac = make_agent("sac", make_vec_env("Pendulum-v1", n_envs=1, seed=0), "Pendulum-v1", learning_starts=0)
    before = action_distribution(sac, states)
    with torch.no_grad():
        sac.policy.actor.mu.bias += 1.0
    assert mean_kl(action_distribution(sac, states), before) > 0.1
    with pytest.raises(TypeError, match="agent: expected a policy with an action distribution"):
        action_distribution(types.SimpleNamespace(policy=object()), states)


def test_overoptimization_experiment_smoke(tmp_path):
    from experiments.overoptimization import Args, main, reward_cache_path

    tiny = dict(
        total_timesteps=128,
        num_checkpoints=1,
        eval_episodes=1,
        data_episodes=2,
        labels=16,
        reward_epochs=2,
        ensemble_size=2,
        noise=0.25,
        ppo_n_steps=32,
        out_dir=tmp_path,
        reward_cache=str(tmp_path / "cache"),
    )
    first = main(Args(reward_design="min", **tiny))
    assert reward_cache_path(Args(reward_design="mean", **tiny)).is_file()  # the ensemble, trained once
    assert reward_cache_path(Args(reward_design="single", **tiny)) != reward_cache_path(
        Args(reward_design="mean", **tiny)
    )
    second = main(Args(reward_design="uncertainty_weighted", **tiny))
    # the same labels, the same ensemble and the same initial policy: only the aggregation differs
    for name in ("train_accuracy", "label_agreement_with_truth", "start_true_return"):
        assert first[name] == second[name]
    assert first["penalty_scale"] > 0.0
    assert main(Args(reward_design="mean", **tiny))["penalty_scale"] == 0.0
    assert first["final_policy_kl"] > 0.0
    assert first["peak_true_return"] - first["final_true_return"] == pytest.approx(first["overoptimization"])
    run_dir = Path(tmp_path) / Args(reward_design="min", **tiny).name
    saved = json.loads((run_dir / "summary.json").read_text())
    assert saved["checkpoints"]["timesteps"] == [0, 128]
    assert saved["checkpoints"]["policy_kl"][0] == 0.0
    assert (run_dir / "overoptimization.png").exists()
    with pytest.raises(ValueError, match="reward_design: expected one of"):
        Args(reward_design="median")
    with pytest.raises(ValueError, match="ensemble_size: expected >= 2 for reward_design 'min'"):
        Args(reward_design="min", ensemble_size=1)
    with pytest.raises(ValueError, match=r"noise: expected a probability in \[0, 0.5\)"):
        Args(noise=0.5)


def test_overoptimization_ppo_overrides():
    from experiments.overoptimization import Args, ppo_kwargs

    assert ppo_kwargs(Args()) == {}
    assert ppo_kwargs(Args(ppo_n_steps=8)) == {"n_steps": 8, "batch_size": 32}
    assert ppo_kwargs(Args(ppo_n_steps=32, ppo_batch_size=16)) == {"n_steps": 32, "batch_size": 16}
    with pytest.raises(ValueError, match="ppo_batch_size: expected None or an integer >= 1"):
        Args(ppo_batch_size=0)


def _fake_sweep_tables():
    """A results table and its checkpoint metrics: 2 designs × 3 seeds at one noise level, hand-made."""
    import pandas as pd

    rows, metrics = [], []
    for design, offset in (("mean", 0.0), ("min", 50.0)):
        for seed in range(3):
            run = f"{design}-{seed}"
            final = -500.0 + offset + 10.0 * seed
            rows.append(
                dict(run=run, status="ok", seed=seed, noise=0.25, reward_design=design, final_true_return=final)
            )
            for step, kl, value in ((0, 0.0, -900.0), (10, 0.5 + seed, final)):
                metrics.append(dict(run=run, step=step, name="true_return", value=value))
                metrics.append(dict(run=run, step=step, name="policy_kl", value=kl))
    return pd.DataFrame(rows), pd.DataFrame(metrics)


def test_overoptimization_report_tables_and_curves(tmp_path):
    from experiments.overoptimization_report import (
        cell_table,
        checkpoint_curves,
        paired_differences,
        plot_kl_curves,
        returns_at_kl,
    )

    results, metrics = _fake_sweep_tables()
    table = cell_table(results, metrics=("final_true_return",)).set_index("reward_design")
    assert table.loc["mean", "runs"] == 3
    assert table.loc["mean", "mean"] == pytest.approx(-490.0)
    assert table.loc["min", "iqm"] == pytest.approx(-440.0)
    assert table.loc["min", "iqm_low"] <= table.loc["min", "iqm"] <= table.loc["min", "iqm_high"]

    paired = paired_differences(results).iloc[0]
    assert (paired.reward_design, paired.seeds, paired.wins) == ("min", 3, 3)
    assert paired.low == paired.difference == paired.high == pytest.approx(50.0)  # every seed differs by 50
    curves = checkpoint_curves(results, metrics)
    np.testing.assert_allclose(curves[(0.25, "min")]["policy_kl"], [[0.0, 0.5], [0.0, 1.5], [0.0, 2.5]])
    assert curves[(0.25, "mean")]["true_return"].shape == (3, 2)
    at_kl = returns_at_kl(results, metrics, (0.25, 10.0)).set_index("run")
    assert at_kl.loc["min-0", "true_return_at_kl0.25"] == pytest.approx((-900.0 - 450.0) / 2)  # halfway to KL 0.5
    assert at_kl["true_return_at_kl10"].isna().all()  # no run gets that far
    plot_kl_curves(curves, tmp_path / "kl.png")
    assert (tmp_path / "kl.png").read_bytes()[:4] == b"\x89PNG"
