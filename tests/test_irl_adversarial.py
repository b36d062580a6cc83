"""AIRL/GAIL: discriminator maths, demonstration files, a tiny end-to-end run; the full run is slow."""

import dataclasses
from typing import NamedTuple

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rewardlab import Transitions
from rewardlab.irl import (
    AdversarialCallback,
    AdversarialConfig,
    DiscriminatorBatch,
    discriminator_logits,
    discriminator_loss,
    load_demonstrations,
    make_discriminator,
    policy_log_prob,
    save_demonstrations,
    train_adversarial,
    train_expert,
)
from rewardlab.rewards import CheckpointError, as_reward_fn
from rewardlab.rl import EpisodeReturns, evaluate_policy, make_agent, make_env, make_task_env, rollout
from rewardlab.wrappers import RewardVecEnvWrapper

OBS = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
ACT = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)


def _batch(n=6, seed=0, log_policy=None):
    rng = np.random.default_rng(seed)
    return DiscriminatorBatch(
        rng.normal(size=(n, 3)).astype(np.float32),
        rng.normal(size=(n, 1)).astype(np.float32),
        rng.normal(size=(n, 3)).astype(np.float32),
        np.zeros(n, np.float32),
        np.zeros(n, np.float32) if log_policy is None else log_policy,
    )


def test_airl_logit_is_shaped_reward_minus_log_policy():
    config = AdversarialConfig(method="airl", hidden_sizes=(8,), discount=0.9)
    model = make_discriminator(OBS, ACT, config)
    params = model.init(0)
    log_policy = np.linspace(-2.0, 1.0, 6).astype(np.float32)
    batch = _batch(log_policy=log_policy)
    logits = discriminator_logits(model, params, batch, "airl")
    g = model.base_reward(params, batch.obs, batch.acts, batch.next_obs, batch.dones)[0]
    h = model.potential(params, batch.obs)[0]
    h_next = model.potential(params, batch.next_obs)[0]
    np.testing.assert_allclose(logits, g + 0.9 * h_next - h - log_policy, rtol=1e-5, atol=1e-5)
    # GAIL: no potential, no policy term
    gail = make_discriminator(OBS, ACT, AdversarialConfig(method="gail", hidden_sizes=(8,)))
    gail_params = gail.init(0)
    np.testing.assert_allclose(
        discriminator_logits(gail, gail_params, batch, "gail"),
        gail.apply(gail_params, batch.obs, batch.acts, batch.next_obs, batch.dones)[0],
        rtol=1e-6,
    )


def test_discriminator_loss_hand_computed_and_gradient_finite():
    model = make_discriminator(OBS, ACT, AdversarialConfig(method="airl", hidden_sizes=(8,)))
    params = model.init(1)
    expert, generator = _batch(seed=1), _batch(seed=2)
    loss, metrics = discriminator_loss(model, params.net, params, expert, generator, "airl")
    expert_logits = np.asarray(discriminator_logits(model, params, expert, "airl"))
    generator_logits = np.asarray(discriminator_logits(model, params, generator, "airl"))
    expected = np.mean(np.logaddexp(0, -expert_logits)) + np.mean(np.logaddexp(0, generator_logits))
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    assert float(metrics["expert_accuracy"]) == pytest.approx(np.mean(expert_logits > 0))
    grads = jax.grad(lambda net: discriminator_loss(model, net, params, expert, generator, "airl")[0])(params.net)
    leaves = jax.tree.leaves(grads)
    assert leaves and all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in leaves)
    assert sum(float(jnp.abs(leaf).sum()) for leaf in leaves) > 0


def test_demonstrations_round_trip_and_corruption(tmp_path):
    demos = Transitions(
        np.arange(12, dtype=np.float32).reshape(4, 3),
        np.ones((4, 1), np.float32),
        np.arange(12, dtype=np.float32).reshape(4, 3) + 1,
        np.array([0, 1, 0, 0], bool),
        np.array([0, 0, 0, 1], bool),
        np.arange(4, dtype=np.float32),
    )
    path = save_demonstrations(tmp_path / "demos.rlab", demos, {"env_id": "Pendulum-v1", "expert_return": -150.0})
    loaded, metadata = load_demonstrations(path)
    for a, b in zip(loaded, demos, strict=True):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype
    assert metadata == {"env_id": "Pendulum-v1", "expert_return": -150.0}
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "bad.rlab").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="checksum"):
        load_demonstrations(tmp_path / "bad.rlab")
    (tmp_path / "short.rlab").write_bytes(path.read_bytes()[:40])
    with pytest.raises(CheckpointError):
        load_demonstrations(tmp_path / "short.rlab")
    with pytest.raises(CheckpointError, match="not found"):
        load_demonstrations(tmp_path / "missing.rlab")
    with pytest.raises(ValueError, match="leading length"):
        save_demonstrations(tmp_path / "x.rlab", demos._replace(rews=np.zeros(3, np.float32)))


def test_demonstrations_written_with_one_dones_array_still_load(tmp_path, monkeypatch):
    """A file from before terminated/truncated were apart loads under the stated assumption, with a warning."""
    import rewardlab.irl._demo_io as demo_io

    class OldTransitions(NamedTuple):  # the container's fields before the split
        obs: np.ndarray
        acts: np.ndarray
        next_obs: np.ndarray
        dones: np.ndarray
        rews: np.ndarray

    old = OldTransitions(
        np.zeros((3, 2), np.float32), np.zeros((3, 1), np.float32), np.ones((3, 2), np.float32),
        np.array([0, 1, 1], bool), np.zeros(3, np.float32),
    )  # fmt: skip
    monkeypatch.setattr(demo_io, "Transitions", OldTransitions)
    path = save_demonstrations(tmp_path / "old.rlab", old)
    monkeypatch.undo()
    with pytest.warns(UserWarning, match="read as terminated"):
        loaded, _ = load_demonstrations(path)
    assert loaded.terminated.tolist() == [False, True, True] and not loaded.truncated.any()
    np.testing.assert_array_equal(loaded.dones, old.dones)
    with pytest.warns(UserWarning, match="read as truncated"):
        loaded, _ = load_demonstrations(path, legacy_dones="truncated")
    assert loaded.truncated.tolist() == [False, True, True] and not loaded.terminated.any()
    with pytest.raises(ValueError, match="legacy_dones"):
        load_demonstrations(path, legacy_dones="both")


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="method"):
        AdversarialConfig(method="gan")
    with pytest.raises(ValueError, match="generator_reward"):
        AdversarialConfig(generator_reward="logit")
    with pytest.raises(ValueError, match="generator_reward: 'shaped'"):
        AdversarialConfig(method="gail", generator_reward="shaped")
    with pytest.raises(ValueError, match="batch_size"):
        AdversarialConfig(batch_size=0)


@pytest.mark.parametrize("generator_reward", ["log_odds", "shaped"])
def test_airl_generator_trains_on_the_log_odds_by_default(generator_reward):
    """Fu et al.'s generator reward log D − log(1 − D) = f − log π(a|s); "shaped" gives f alone."""
    config = AdversarialConfig(hidden_sizes=(8,), batch_size=8, generator_reward=generator_reward)
    assert AdversarialConfig().generator_reward == "log_odds"
    agent = _generator("ppo", config, n_steps=32, batch_size=32, n_epochs=1)
    venv = agent.get_env()
    demos = rollout(None, make_env("Pendulum-v1", fixed_horizon=20), 1, seed=0).transitions
    model = make_discriminator(venv.observation_space, venv.action_space, config)
    callback = AdversarialCallback(venv, model, model.init(0), demos, config)
    callback.init_callback(agent)
    obs, acts, next_obs, dones = demos.obs, demos.acts, demos.next_obs, demos.dones
    shaped = as_reward_fn(model, callback.params)(obs, acts, next_obs, dones)
    log_pi = policy_log_prob(agent, obs, acts)
    assert np.abs(log_pi).max() > 0.1  # the entropy term is not negligible here
    expected = shaped - log_pi if generator_reward == "log_odds" else shaped
    np.testing.assert_allclose(venv.reward_fn(obs, acts, next_obs, dones), expected, rtol=1e-5, atol=1e-5)
    # the discriminator's logit is the same log-odds: the generator's reward is log D − log(1 − D) by default
    batch = DiscriminatorBatch(obs, acts, next_obs, dones.astype(np.float32), log_pi)
    logits = np.asarray(discriminator_logits(model, callback.params, batch, "airl"))
    if generator_reward == "log_odds":
        np.testing.assert_allclose(venv.reward_fn(obs, acts, next_obs, dones), logits, rtol=1e-5, atol=1e-5)


def _generator(algo, config, **overrides):
    """An SB3 generator on fixed 20-step Pendulum episodes, as the callers of train_adversarial build it."""
    venv = RewardVecEnvWrapper(make_task_env("Pendulum-v1", 1, 0, fixed_horizon=20))
    return make_agent(algo, venv, "Pendulum-v1", seed=0, gamma=config.discount, **overrides)


@pytest.mark.parametrize(("method", "algo"), [("airl", "sac"), ("gail", "ppo")])
def test_tiny_adversarial_run_end_to_end(method, algo):
    recorded = rollout(None, make_env("Pendulum-v1", fixed_horizon=20), 1, seed=0)
    demos = recorded.transitions
    assert demos.obs.shape == (20, 3) and recorded.returns.shape == (1,) and bool(demos.dones[-1])
    config = AdversarialConfig(method=method, hidden_sizes=(8,), batch_size=16, updates_per_round=2, round_steps=20)
    overrides = (
        {"learning_starts": 20, "batch_size": 16} if algo == "sac" else {"n_steps": 32, "batch_size": 32, "n_epochs": 1}
    )
    agent = _generator(algo, config, **overrides)
    seen = EpisodeReturns()
    result = train_adversarial(agent, demos, 64, config, callbacks=[seen])
    assert agent.num_timesteps == 64 and seen.timesteps  # the caller's callbacks run alongside
    assert len(result.history) >= 1
    assert np.isfinite(result.history[-1]["loss"])
    reward = as_reward_fn(result.model, result.params, use="base_reward")(
        demos.obs, demos.acts, demos.next_obs, demos.dones
    )
    assert reward.shape == (20,) and reward.dtype == np.float32
    assert np.isfinite(evaluate_policy(agent, make_env("Pendulum-v1", fixed_horizon=20), 1).true_return)
    with pytest.raises(ValueError, match="expert"):
        train_adversarial(_generator(algo, config, **overrides), demos._replace(obs=demos.obs[:, :2]), 8, config)
    with pytest.raises(ValueError, match="total_timesteps"):
        train_adversarial(agent, demos, 0, config)
    with pytest.raises(ValueError, match="agent: expected an agent whose env is a RewardVecEnvWrapper"):
        train_adversarial(
            make_agent(algo, make_task_env("Pendulum-v1", 1, 0, fixed_horizon=20), "Pendulum-v1", **overrides),
            demos,
            8,
            config,
        )


def test_cli_irl_expert_writes_loadable_demonstrations(tmp_path):
    from typer.testing import CliRunner

    from rewardlab.cli import app

    runner = CliRunner()
    path = tmp_path / "demos.rlab"
    result = runner.invoke(
        app, ["irl-expert", "--total-timesteps", "30", "--episodes", "2", "--horizon", "10", "--out", str(path)]
    )
    assert result.exit_code == 0, result.output
    demos, metadata = load_demonstrations(path)
    assert demos.obs.shape == (20, 3) and metadata["env_id"] == "Pendulum-v1" and metadata["fixed_horizon"] == 10
    bad = runner.invoke(app, ["irl-expert", "--algo", "dqn", "--out", str(path)])
    assert bad.exit_code == 2 and "algo" in bad.output


@pytest.mark.slow
def test_airl_pendulum_imitates_expert():
    expert = train_expert("Pendulum-v1", "sac", 10_000, seed=0)
    recorded = rollout(expert, make_env("Pendulum-v1", fixed_horizon=200), 10, seed=1)
    random_return = evaluate_policy(None, make_env("Pendulum-v1", fixed_horizon=200), 10, seed=10_000).true_return
    config = AdversarialConfig(generator_reward="shaped")  # the benchmark's setting (benchmarks/airl_pendulum.py)
    venv = RewardVecEnvWrapper(make_task_env("Pendulum-v1", 1, 0, fixed_horizon=200))
    agent = make_agent("sac", venv, "Pendulum-v1", seed=0, gamma=config.discount)
    train_adversarial(agent, recorded.transitions, 15_000, config, seed=0)
    learned = evaluate_policy(agent, make_env("Pendulum-v1", fixed_horizon=200), 10, seed=10_000).true_return
    assert (learned - random_return) / (recorded.returns.mean() - random_return) > 0.7


def test_adversarial_experiment_smoke(tmp_path):
    from experiments.adversarial_irl import Args, main

    args = Args(
        expert_total_timesteps=50,
        total_timesteps=120,
        demo_episodes=1,
        eval_episodes=1,
        round_steps=50,
        updates_per_round=1,
        hidden_sizes=(8,),
        transfer_total_timesteps=16,
        transfer_mass_scale=1.5,
        out_dir=str(tmp_path),
        demos_cache=str(tmp_path / "demos"),
    )
    assert args.reward_inputs == ("obs",)  # AIRL's transferable reward is state-only
    summary = main(args)
    assert {"normalized_return", "transfer_normalized_return", "expert_return", "random_return"} <= set(summary)
    assert {"transfer_oracle_return", "transfer_random_return"} <= set(summary)
    # the transfer score is measured against the changed env's own reference agents
    assert summary["transfer_random_return"] != summary["random_return"]
    run = tmp_path / args.run_name
    demos, metadata = load_demonstrations(run / "demos.rlab")
    assert demos.obs.shape == (200, 3) and metadata["env_id"] == "Pendulum-v1"
    assert (run / "results.json").exists()
    # a second run of the same expert settings reuses the cached demonstrations, expert return included
    again = main(dataclasses.replace(args, method="gail", transfer_total_timesteps=0, out_dir=""))
    assert again["expert_return"] == summary["expert_return"] and len(list((tmp_path / "demos").iterdir())) == 1
    with pytest.raises(ValueError, match="env_id"):
        Args(env_id="CartPole-v1")
    with pytest.raises(ValueError, match="transfer_mass_scale"):
        Args(transfer_mass_scale=0.0)
    with pytest.raises(ValueError, match="reward_inputs"):
        Args(reward_inputs=("state",))


def test_airl_discriminator_keeps_the_potential_at_a_time_limit_cut():
    """d in γ(1 − d)h(s') is terminated: a truncated step (s' not terminal) keeps γh(s')."""
    config = AdversarialConfig(method="airl", hidden_sizes=(8,), batch_size=4)
    venv = RewardVecEnvWrapper(make_task_env("Pendulum-v1", 1, 0, fixed_horizon=20))
    model = make_discriminator(venv.observation_space, venv.action_space, config)
    rng = np.random.default_rng(0)
    obs, acts = rng.normal(size=(3, 3)).astype(np.float32), rng.normal(size=(3, 1)).astype(np.float32)
    terminated, truncated = np.array([False, True, False]), np.array([False, False, True])
    batch = Transitions(obs, acts, obs, terminated, truncated, np.zeros(3, np.float32))
    callback = AdversarialCallback(venv, model, model.init(jax.random.key(0)), batch, config)
    callback._store(batch)
    assert callback._buffer is not None
    assert callback._buffer["dones"][:3].tolist() == [False, True, False]
    venv.close()
