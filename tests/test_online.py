"""Online preference-based RL with SB3: PPO and SAC loops, relabelling, schedules, the quickstart study."""

import dataclasses
import json

import jax
import numpy as np
import pytest
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.env_util import make_vec_env

from rewardlab.preferences import make_teacher
from rewardlab.rewards import RewardModel, RewardNetConfig
from rewardlab.rl import (
    PbRLConfig,
    labels_per_round,
    make_agent,
    relabel_replay_buffer,
    train_pbrl,
)
from rewardlab.wrappers import RewardVecEnvWrapper


def _setup(num_envs: int):
    venv = RewardVecEnvWrapper(make_vec_env("Pendulum-v1", n_envs=num_envs, seed=0), mode="replace")
    model = RewardModel(
        RewardNetConfig(inputs=("obs", "act"), hidden_sizes=(32, 32), ensemble_size=2),
        venv.observation_space,
        venv.action_space,
    )
    return venv, model, model.init(jax.random.key(0))


@pytest.mark.parametrize("schedule", ["constant", "decaying", "front_loaded"])
@pytest.mark.parametrize(("total", "rounds"), [(0, 1), (7, 3), (200, 10), (5, 9)])
def test_labels_per_round_sums_to_budget(schedule, total, rounds):
    counts = labels_per_round(total, rounds, schedule)
    assert counts.shape == (rounds,)
    assert counts.sum() == total
    assert (counts >= 0).all()


def test_labels_per_round_decaying_asks_more_first():
    counts = labels_per_round(100, 5, "decaying")
    assert (np.diff(counts) <= 0).all() and counts[0] > counts[-1]


def test_labels_per_round_rejects_bad_schedule():
    with pytest.raises(ValueError, match="schedule"):
        labels_per_round(10, 2, "sometimes")


def test_config_names_bad_field():
    with pytest.raises(ValueError, match="fragment_length"):
        PbRLConfig(fragment_length=0)
    with pytest.raises(ValueError, match="query_schedule"):
        PbRLConfig(query_schedule="weekly")


def test_ppo_loop_collects_labels_and_changes_reward():
    venv, model, params = _setup(num_envs=2)
    agent = PPO("MlpPolicy", venv, n_steps=64, batch_size=64, n_epochs=1, seed=0, device="cpu")
    config = PbRLConfig(
        labels=12, num_rounds=3, first_feedback_step=200, fragment_length=10, reward_epochs=3, candidate_multiplier=2
    )
    result = train_pbrl(agent, model, params, make_teacher("oracle"), 1024, config, seed=0)
    assert [r.queries_asked for r in result.feedback] == [4, 4, 4]
    assert result.feedback[-1].labels_used == 12
    assert result.preferences.labels.shape == (12,)
    # Reward training moved the parameters away from their initial values.
    before = jax.tree.leaves(params.net)
    after = jax.tree.leaves(result.params.net)
    assert any(not np.allclose(np.asarray(a), np.asarray(b)) for a, b in zip(before, after, strict=True))
    # Episodes of Pendulum last 200 steps; both returns are logged per episode.
    assert len(result.episodes["true_return"]) >= 4
    assert np.all(result.episodes["true_return"] <= 0)  # Pendulum's true reward is never positive


def test_feedback_rounds_compile_query_scoring_and_reward_training_once():
    from rewardlab.rl import PreferenceFeedbackCallback

    venv, model, params = _setup(num_envs=2)
    agent = PPO("MlpPolicy", venv, n_steps=64, batch_size=64, n_epochs=1, seed=0, device="cpu")
    config = PbRLConfig(
        labels=12, num_rounds=3, first_feedback_step=200, fragment_length=10, reward_epochs=2, candidate_multiplier=2
    )
    feedback = PreferenceFeedbackCallback(venv, model, params, make_teacher("oracle"), config, 1024, seed=0)
    agent.learn(1024, callback=feedback)
    assert len(feedback.feedback) == 3
    # The callback keeps its scorer and trainer: three rounds of disagreement scoring, held-out
    # accuracy and training (the label budget pads the dataset) are one compilation each.
    assert feedback.scorer.chunk_probabilities._cache_size() == 1
    assert feedback.trainer.epoch._cache_size() == 1


def test_sac_replay_buffer_is_relabelled_with_the_learned_reward():
    venv, model, params = _setup(num_envs=1)
    agent = SAC("MlpPolicy", venv, learning_starts=100, buffer_size=2000, batch_size=32, seed=0, device="cpu")
    config = PbRLConfig(
        labels=6,
        num_rounds=2,
        first_feedback_step=150,
        fragment_length=10,
        reward_epochs=2,
        candidate_multiplier=2,
        last_feedback_fraction=1.0,
    )
    train_pbrl(agent, model, params, make_teacher("oracle"), 400, config, seed=0)
    replay = agent.replay_buffer
    size = replay.pos
    current = venv.reward_fn
    obs = replay.observations[:size, 0]
    acts = agent.policy.unscale_action(replay.actions[:size, 0])
    expected = current(obs, acts, replay.next_observations[:size, 0], replay.dones[:size, 0])
    # Transitions stored after the last update were scored by the same reward fn at step time,
    # those before were relabelled: all agree with the current learned reward.
    np.testing.assert_allclose(replay.rewards[:size, 0], expected, rtol=1e-4, atol=1e-4)


def test_relabel_rejects_memory_optimized_buffer():
    venv, _model, _params = _setup(num_envs=1)
    agent = SAC(
        "MlpPolicy",
        venv,
        buffer_size=100,
        optimize_memory_usage=True,
        replay_buffer_kwargs=dict(handle_timeout_termination=False),
        device="cpu",
    )
    agent.replay_buffer.pos = 5
    with pytest.raises(ValueError, match="optimize_memory_usage"):
        relabel_replay_buffer(agent.replay_buffer, lambda *a: np.zeros(5, np.float32), agent)


def test_train_pbrl_requires_reward_wrapper():
    venv = make_vec_env("Pendulum-v1", n_envs=1, seed=0)
    _, model, params = _setup(num_envs=1)
    agent = PPO("MlpPolicy", venv, n_steps=64, device="cpu")
    with pytest.raises(ValueError, match="RewardVecEnvWrapper"):
        train_pbrl(agent, model, params, make_teacher("oracle"), 64)


def test_make_agent_runs_adam_fused_with_sb3_settings():
    ppo = make_agent("ppo", make_vec_env("Pendulum-v1", n_envs=2, seed=0), "Pendulum-v1")
    assert ppo.policy.optimizer.defaults["fused"] is True
    assert ppo.policy.optimizer.defaults["eps"] == 1e-5  # SB3's on-policy default is kept
    assert ppo.batch_size == 256 and ppo.n_steps == 1024
    sac = make_agent("sac", make_vec_env("Pendulum-v1", n_envs=1, seed=0), "Pendulum-v1")
    assert sac.actor.optimizer.defaults["fused"] is True and sac.actor.optimizer.defaults["eps"] == 1e-8
    # A caller's optimizer settings win.
    custom = make_agent(
        "ppo",
        make_vec_env("Pendulum-v1", n_envs=2, seed=0),
        "Pendulum-v1",
        policy_kwargs={"optimizer_kwargs": {"eps": 1e-3}},
    )
    assert custom.policy.optimizer.defaults["eps"] == 1e-3 and not custom.policy.optimizer.defaults["fused"]
    with pytest.raises(ValueError, match="algo"):
        make_agent("dqn", make_vec_env("Pendulum-v1", n_envs=1, seed=0), "Pendulum-v1")


def test_quickstart_smoke_writes_summary_and_plot(tmp_path):
    from experiments.quickstart import Args, main
    from rewardlab.rewards import load_reward_model
    from rewardlab.sweeps import read_metrics

    args = Args(total_timesteps=2048, labels=10, eval_episodes=2, ensemble_size=2, out_dir=tmp_path)
    assert args.name == "quickstart-Pendulum-v1-ppo-pbrl-oracle-10labels-seed0"
    summary = main(args)
    run_dir = tmp_path / args.name
    assert summary["run_dir"] == str(run_dir)
    written = json.loads((run_dir / "summary.json").read_text())
    for key in (
        "return_learned",
        "return_true",
        "return_random",
        "normalized_return",
        "pearson_transition",
        "pearson_segment",
        "labels_used",
        "wall_s",
    ):
        assert key in written, key
        assert written[key] == pytest.approx(summary[key], nan_ok=True)
    assert written["labels_used"] == 10
    span = written["return_true"] - written["return_random"]
    if span > 0:
        assert written["normalized_return"] == pytest.approx(
            (written["return_learned"] - written["return_random"]) / span
        )
        assert written["normalized_return_note"] == ""
    else:  # a short budget: the true-reward agent may not beat the random policy
        assert np.isnan(written["normalized_return"]) and "undefined" in written["normalized_return_note"]
    assert -1.0 <= written["pearson_transition"] <= 1.0
    assert (run_dir / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    model, _ = load_reward_model(run_dir / "reward_model.rlab")
    assert model.config.ensemble_size == 2
    assert any((run_dir / "tensorboard").rglob("events.out.tfevents*"))
    curves = np.load(run_dir / "curves.npz")
    assert len(curves["learned_returns"]) == len(curves["learned_timesteps"]) > 0
    assert {"true_return", "true_reward_agent_return", "labels_used"} <= set(read_metrics(run_dir)["name"])
    # The true-reward agent trained in a second process is the same agent as one trained in this one.
    serial = main(dataclasses.replace(args, parallel=False, run_name="serial"))
    assert serial["return_true"] == pytest.approx(summary["return_true"])
    assert serial["return_random"] == summary["return_random"]  # the same evaluation episodes
