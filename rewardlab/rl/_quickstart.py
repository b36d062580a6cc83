"""The quickstart study: a reward learned from synthetic preferences vs the true reward.

On one environment (Pendulum-v1 by default): learn a reward online from simulated
preferences while PPO trains on it; train PPO on the true reward with the same budget;
evaluate both and a random policy on the true reward; correlate the learned reward with
the true one on fresh rollouts of all three policies. Writes a run folder with
``summary.json``, ``curves.npz``, ``learning_curve.png``, the reward-model checkpoint
and TensorBoard logs.
"""

from __future__ import annotations

import dataclasses
import io
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import jax
import numpy as np
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env

from rewardlab._io import atomic_write_bytes, atomic_write_figure, atomic_write_json
from rewardlab.preferences import TEACHER_PRESETS, make_teacher
from rewardlab.rewards import RewardModel, RewardNetConfig, as_reward_fn, save_reward_model
from rewardlab.rl._agents import default_num_envs, make_agent
from rewardlab.rl._episodes import EpisodeReturns
from rewardlab.rl._online import PbRLConfig, train_pbrl
from rewardlab.wrappers import RewardVecEnvWrapper


@dataclasses.dataclass(frozen=True)
class QuickstartArgs:
    """Arguments of the quickstart study.

    Attributes:
        env_id: gymnasium environment id.
        total_timesteps: PPO env steps for each of the learned-reward and true-reward agents.
        total_labels: preference labels the simulated teacher gives.
        teacher: simulated teacher: ``oracle``, ``stochastic``, ``myopic``, ``skip``, ``equal``, ``mistake``.
        seed: seed of everything (agents, envs, queries, teacher).
        eval_episodes: episodes per policy for the final true-return evaluation.
        ensemble_size: reward-model ensemble members (queries picked by their disagreement).
        feedback_until: fraction of ``total_timesteps`` by which every label is asked
            (``PbRLConfig.last_feedback_fraction``). On Pendulum, 0.3 leaves PPO 70k steps on
            a reward that no longer changes, and seeds 0–2 reach the true-reward agent's return;
            with 0.6, seeds 0 and 2 fell short (docs/benchmarks.md has the figures).
        out_dir: parent folder of the run folder.
        run_name: run folder name (default encodes env, design and seed).
        parallel: train the true-reward agent in a second process while the learned-reward
            agent trains here (on 2 cores this halves the wall time; results are the same).
    """

    env_id: str = "Pendulum-v1"
    total_timesteps: int = 100_000
    total_labels: int = 200
    teacher: str = "oracle"
    seed: int = 0
    eval_episodes: int = 10
    ensemble_size: int = 3
    feedback_until: float = 0.3
    out_dir: Path = Path("runs")
    run_name: str | None = None
    parallel: bool = True

    def __post_init__(self) -> None:
        for name in ("total_timesteps", "eval_episodes", "ensemble_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
        if not isinstance(self.total_labels, int) or self.total_labels < 0:
            raise ValueError(f"total_labels: expected an integer >= 0, got {self.total_labels!r}")
        if self.teacher not in TEACHER_PRESETS:
            raise ValueError(f"teacher: expected one of {tuple(TEACHER_PRESETS)}, got {self.teacher!r}")
        if isinstance(self.feedback_until, bool) or not isinstance(self.feedback_until, (int, float)) or not 0.0 < self.feedback_until <= 1.0:
            raise ValueError(f"feedback_until: expected a fraction in (0, 1], got {self.feedback_until!r}")
        if not isinstance(self.parallel, bool):
            raise ValueError(f"parallel: expected True or False, got {self.parallel!r}")

    @property
    def name(self) -> str:
        return self.run_name or f"quickstart-{self.env_id}-ppo-pbrl-{self.teacher}-{self.total_labels}labels-seed{self.seed}"


def _rollouts(env_id: str, act: Callable[[np.ndarray], np.ndarray], episodes: int, seed: int) -> dict[str, np.ndarray]:
    """Roll ``act`` out for whole episodes; returns flat transitions with episode ids."""
    env = gym.make(env_id)
    parts: dict[str, list[Any]] = {"obs": [], "acts": [], "next_obs": [], "dones": [], "rews": [], "episode": []}
    returns = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        total, done = 0.0, False
        while not done:
            action = act(obs)
            next_obs, reward, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
            for key, value in zip(parts, (obs, action, next_obs, done, reward, episode)):
                parts[key].append(value)
            total += float(reward)
            obs = next_obs
        returns.append(total)
    env.close()
    out = {key: np.asarray(value) for key, value in parts.items()}
    out["returns"] = np.asarray(returns)
    return out


def _segment_sums(values: np.ndarray, episode: np.ndarray, length: int) -> np.ndarray:
    """Sums over consecutive, non-overlapping ``length``-step segments inside each episode."""
    sums = []
    for ep in np.unique(episode):
        ep_values = values[episode == ep]
        usable = (len(ep_values) // length) * length
        sums.append(ep_values[:usable].reshape(-1, length).sum(axis=1))
    return np.concatenate(sums) if sums else np.zeros(0)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2 or np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def _plot(path: Path, curves: dict[str, tuple[np.ndarray, np.ndarray]], random_return: float, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for label, (steps, returns) in curves.items():
        if len(steps):
            window = max(1, len(returns) // 20)
            smooth = np.convolve(returns, np.ones(window) / window, mode="valid")
            ax.plot(steps[window - 1 :], smooth, label=label)
    ax.axhline(random_return, color="grey", linestyle="--", label="random policy")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("true episode return")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    atomic_write_figure(path, fig, close=True)


def _train_true_agent(env_id: str, seed: int, total_timesteps: int, run_dir: str, progress: bool) -> tuple[list[int], list[float]]:
    """PPO on the true reward; saves the agent to ``run_dir/ppo_true_reward.zip``; returns its learning curve."""
    import torch

    torch.set_num_threads(1)  # one core per agent: two threads each slow SB3 down on 2 cores
    agent = make_agent(
        "ppo", make_vec_env(env_id, n_envs=default_num_envs("ppo", env_id), seed=seed), env_id, seed=seed,
        tensorboard_log=str(Path(run_dir) / "tensorboard"),
    )
    curve = EpisodeReturns()
    agent.learn(total_timesteps, callback=curve, progress_bar=progress, tb_log_name="PPO_true_reward")
    agent.save(Path(run_dir) / "ppo_true_reward.zip")
    return list(curve.timesteps), list(curve.returns)


def main(args: QuickstartArgs, progress: bool = True, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the quickstart study and return its summary (also written to ``summary.json``)."""
    start = time.perf_counter()
    run_dir = Path(args.out_dir) / args.name
    run_dir.mkdir(parents=True, exist_ok=True)
    num_envs = default_num_envs("ppo", args.env_id)

    true_job = (args.env_id, args.seed, args.total_timesteps, str(run_dir))
    pool = None
    if args.parallel:
        # A spawned process (not forked: this one has JAX's threads running) trains the true-reward agent.
        pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        true_future = pool.submit(_train_true_agent, *true_job, False)
        log(f"[1/3] PPO on the true reward ({args.total_timesteps} steps), in a second process")
    log(f"[{2 if args.parallel else 1}/3] PPO on a reward learned from {args.total_labels} {args.teacher} preferences ({args.total_timesteps} steps)")
    venv = RewardVecEnvWrapper(make_vec_env(args.env_id, n_envs=num_envs, seed=args.seed), mode="replace")
    model = RewardModel(
        RewardNetConfig(inputs=("obs", "act"), hidden_sizes=(64, 64), ensemble_size=args.ensemble_size),
        venv.observation_space,
        venv.action_space,
    )
    params = model.init(jax.random.key(args.seed))
    learned_agent = make_agent("ppo", venv, args.env_id, seed=args.seed, tensorboard_log=str(run_dir / "tensorboard"))
    learned_curve = EpisodeReturns()
    try:
        result = train_pbrl(
            learned_agent,
            model,
            params,
            make_teacher(args.teacher),
            args.total_timesteps,
            PbRLConfig(total_labels=args.total_labels, last_feedback_fraction=float(args.feedback_until)),
            seed=args.seed,
            progress_bar=progress,
            callbacks=[learned_curve],
        )
        save_reward_model(run_dir / "reward_model.rlab", model, result.params)
        if pool is None:
            log(f"[2/3] PPO on the true reward ({args.total_timesteps} steps)")
            true_timesteps, true_returns = _train_true_agent(*true_job, progress)
        else:
            log("      waiting for PPO on the true reward")
            true_timesteps, true_returns = true_future.result()
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    true_agent = PPO.load(run_dir / "ppo_true_reward.zip", device="cpu")
    true_curve = EpisodeReturns()
    true_curve.timesteps, true_curve.returns = true_timesteps, true_returns

    log(f"[3/3] Evaluating each policy on the true reward ({args.eval_episodes} episodes)")
    action_space = venv.action_space
    action_space.seed(args.seed)
    policies = {
        "learned": lambda obs: learned_agent.predict(obs, deterministic=True)[0],
        "true": lambda obs: true_agent.predict(obs, deterministic=True)[0],
        "random": lambda obs: action_space.sample(),
    }
    eval_seed = 10_000 + 1000 * args.seed
    rollouts = {name: _rollouts(args.env_id, act, args.eval_episodes, eval_seed) for name, act in policies.items()}

    reward_fn = as_reward_fn(model, result.params)
    learned_r, true_r, segments_learned, segments_true = [], [], [], []
    for rollout in rollouts.values():
        predicted = reward_fn(rollout["obs"], rollout["acts"], rollout["next_obs"], rollout["dones"])
        learned_r.append(predicted)
        true_r.append(rollout["rews"])
        segments_learned.append(_segment_sums(predicted, rollout["episode"], 50))
        segments_true.append(_segment_sums(rollout["rews"], rollout["episode"], 50))

    summary = {
        "env_id": args.env_id,
        "seed": args.seed,
        "teacher": args.teacher,
        "total_timesteps": args.total_timesteps,
        "feedback_until": args.feedback_until,
        "return_learned": float(rollouts["learned"]["returns"].mean()),
        "return_true": float(rollouts["true"]["returns"].mean()),
        "return_random": float(rollouts["random"]["returns"].mean()),
        "pearson_transition": _pearson(np.concatenate(learned_r), np.concatenate(true_r)),
        "pearson_segment": _pearson(np.concatenate(segments_learned), np.concatenate(segments_true)),
        "labels_used": 0 if result.preferences is None else int(len(result.preferences.labels)),
        "wall_s": 0.0,
    }
    span = summary["return_true"] - summary["return_random"]
    summary["normalized_return"] = float((summary["return_learned"] - summary["return_random"]) / span) if span else float("nan")

    curves = {
        "PPO on learned reward": (np.asarray(learned_curve.timesteps), np.asarray(learned_curve.returns)),
        "PPO on true reward": (np.asarray(true_curve.timesteps), np.asarray(true_curve.returns)),
    }
    _plot(run_dir / "learning_curve.png", curves, summary["return_random"], f"{args.env_id}: preference-learned vs true reward")
    buffer = io.BytesIO()
    np.savez(
        buffer,
        learned_timesteps=curves["PPO on learned reward"][0], learned_returns=curves["PPO on learned reward"][1],
        true_timesteps=curves["PPO on true reward"][0], true_returns=curves["PPO on true reward"][1],
        feedback_timestep=np.asarray([r.timestep for r in result.feedback]),
        feedback_labels=np.asarray([r.labels_used for r in result.feedback]),
        feedback_loss=np.asarray([r.loss for r in result.feedback]),
    )
    atomic_write_bytes(run_dir / "curves.npz", buffer.getvalue())
    summary["wall_s"] = float(time.perf_counter() - start)
    summary["run_dir"] = str(run_dir)
    atomic_write_json(run_dir / "summary.json", summary)
    return summary

