"""VLM-RM with a self-trained CLIP: does a sentence reward the task?

1. A small CLIP is trained contrastively on frames of ``env_id`` and captions of their states
   (``rewardlab.vlm.train_clip``), or loaded from ``clip_path``.
2. The goal-baseline reward (goal and baseline prompts of ``rewardlab.vlm.TASK_PROMPTS``, or
   ``goal``) scores the next observations of random and trained-policy rollouts; its Pearson
   correlation with the task reward is measured for each α of ``alphas`` (the goal-baseline
   effect). The task reward: CartPole cos θ' (its env reward is 1 on every step, constant);
   Hopper/Walker2d the env reward 1[healthy] + v_x − 10⁻³‖a‖² computed from s' and a.
3. PPO is trained on the VLM reward (α = ``alpha``; the rollout relabelled in one batch at its
   end with ``relabel``) and on the true env reward, for ``total_timesteps`` each; both are
   scored by their true return.
4. The sample-based EPIC distance between the VLM reward and the task reward, on the
   rollouts' transitions.

Run: ``python -m experiments.vlm_rm --env-id CartPole-v1``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab._io import atomic_write_json
from rewardlab._types import Transitions
from rewardlab.distances import sample_epic_distance
from rewardlab.rewards import FunctionReward, as_reward_fn
from rewardlab.rl import EpisodeReturns, evaluate_policy, make_agent, make_env, make_task_env, rollout
from rewardlab.sweeps import Logger, parse_args
from rewardlab.vlm import (
    TASK_PROMPTS,
    CLIPReward,
    ClipTrainConfig,
    RolloutRelabelCallback,
    env_name,
    frame_source,
    load_clip,
    save_clip,
    train_clip,
)
from rewardlab.wrappers import RewardVecEnvWrapper


@dataclasses.dataclass(frozen=True)
class Args:
    """Arguments of the VLM-RM study.

    Attributes:
        env_id: CartPole-v1, Pendulum-v1, Hopper-v5 or Walker2d-v5 (envs with captions).
        goal: goal prompt ("" = the env's TASK_PROMPTS goal); baselines are the env's.
        clip_path: a CLIP checkpoint folder to use ("" = train one).
        image_size: frame side of the trained CLIP.
        clip_frames: frames it is trained on.
        clip_epochs: passes over them.
        alphas: α values of the sweep.
        alpha: α of the reward PPO trains on.
        rollout_episodes: episodes of each policy (random, trained) scored.
        total_timesteps: PPO env steps on each reward (0 = no PPO; the trained policy is then random).
        num_envs: PPO's parallel envs.
        relabel: PPO on the VLM reward relabels each rollout in one batch at its end (else per step).
        render_workers: processes rendering the frames (``frame_source``'s ``workers``).
        epic_samples: transitions and samples of the EPIC estimate.
        eval_episodes: episodes of each final evaluation.
        seed: seed of CLIP training, agents and envs.
        out_dir: parent of the run folder.
    """

    env_id: str = "CartPole-v1"
    goal: str = ""
    clip_path: str = ""
    image_size: int = 48
    clip_frames: int = 600
    clip_epochs: int = 20
    alphas: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
    alpha: float = 0.5
    rollout_episodes: int = 3
    total_timesteps: int = 20_000
    num_envs: int = 4
    relabel: bool = True
    render_workers: int = 1
    epic_samples: int = 256
    eval_episodes: int = 5
    seed: int = 0
    out_dir: Path = Path("runs/vlm_rm")

    def __post_init__(self) -> None:
        if env_name(self.env_id) not in TASK_PROMPTS:
            raise ValueError(
                f"env_id: expected one of {sorted(TASK_PROMPTS)} (envs with captions), got {self.env_id!r}"
            )
        if not all(0.0 <= a <= 1.0 for a in (*self.alphas, self.alpha)):
            raise ValueError(f"alphas, alpha: expected values in [0, 1], got {self.alphas}, {self.alpha}")

    @property
    def run_name(self) -> str:
        return f"{self.env_id}_vlm-alpha{self.alpha}_seed{self.seed}"


def task_reward(env_id: str, next_obs: Any, acts: Any) -> np.ndarray:
    """The task reward the VLM reward is compared with (module docstring), float32 ``[N]``."""
    next_obs = np.asarray(next_obs, np.float64)
    name = env_name(env_id)
    if name == "CartPole":
        return np.cos(next_obs[:, 2]).astype(np.float32)
    if name == "Pendulum":
        return next_obs[:, 0].astype(np.float32)
    height, angle = next_obs[:, 0], next_obs[:, 1]
    low, high = (0.7, 0.2) if name == "Hopper" else (0.8, 1.0)
    healthy = (height > low) & (np.abs(angle) < high) & (height < 2.0)
    velocity = next_obs[:, 5] if name == "Hopper" else next_obs[:, 8]
    control = 1e-3 * np.sum(np.square(np.asarray(acts, np.float64).reshape(len(next_obs), -1)), axis=1)
    return (healthy + velocity - control).astype(np.float32)


# SB3's defaults (2,048 steps per env per rollout) leave CartPole one update in a short budget; the
# RL Zoo's CartPole settings, with rollouts of 64 steps per env.
PPO_OVERRIDES: dict[str, dict[str, Any]] = {
    "CartPole-v1": dict(
        n_steps=64, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20, ent_coef=0.0, learning_rate=1e-3
    )
}


def _ppo(args: Args, reward: CLIPReward | None) -> tuple[float, list[int], list[float], Any]:
    """PPO on the VLM reward (or the env's when None): final true return, its training curve, the agent."""
    venv: Any = make_task_env(args.env_id, args.num_envs, args.seed)
    callbacks: list[Any] = [EpisodeReturns()]
    if reward is not None:
        if args.relabel:
            callbacks.append(RolloutRelabelCallback(reward))
        else:
            venv = RewardVecEnvWrapper(venv, reward)
    agent = make_agent("ppo", venv, args.env_id, seed=args.seed, **PPO_OVERRIDES.get(args.env_id, {}))
    agent.learn(args.total_timesteps, callback=callbacks)
    final = evaluate_policy(agent, make_env(args.env_id), args.eval_episodes, seed=10_000).true_return
    return final, callbacks[0].timesteps, callbacks[0].returns, agent


def _frame_strip(reward: CLIPReward, data: Transitions, path: Path, count: int = 8) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = np.linspace(0, len(data.dones) - 1, count).astype(int)
    frames = reward.render(data.next_obs[rows])
    rewards = reward.from_frames(frames)
    fig, axes = plt.subplots(1, count, figsize=(1.6 * count, 2.0))
    for ax, frame, value, row in zip(axes, frames, rewards, rows, strict=True):
        ax.imshow(frame)
        ax.set_title(f"t={row}\nR={value:.3f}", fontsize=8)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(args: Args, logger: Logger | None = None) -> dict[str, Any]:
    """Train (or load) the CLIP, measure correlations, the α sweep, PPO and EPIC; write ``results.json``."""
    import torch

    torch.set_num_threads(1)
    start = time.perf_counter()
    run_dir = (
        Path(logger.run_dir) if logger is not None and logger.run_dir is not None else args.out_dir / args.run_name
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"env_id": args.env_id}
    if args.clip_path:
        embedder = load_clip(args.clip_path)
    else:
        config = ClipTrainConfig(
            image_size=args.image_size,
            patch_size=8,
            width=32,
            layers=1,
            projection_dim=32,
            num_frames=args.clip_frames,
            epochs=args.clip_epochs,
            seed=args.seed,
        )
        embedder, training = train_clip(args.env_id, config)
        save_clip(embedder, run_dir / "clip", env_id=args.env_id, accuracy=training["accuracy"])
        results["clip_heldout_accuracy"] = training["accuracy"]
        results["clip_loss"] = training["loss"][-1]
    goals, baselines = TASK_PROMPTS[env_name(args.env_id)]
    goal = [args.goal] if args.goal else list(goals)
    reward = CLIPReward(
        embedder,
        frame_source(args.env_id, embedder.image_size, workers=args.render_workers),
        goal,
        list(baselines),
        alpha=args.alpha,
    )
    results.update(goal=goal, baseline=list(baselines))

    # PPO on the true reward gives the trained policy; PPO on the VLM reward is scored the same way.
    trained: Any = None
    if args.total_timesteps > 0:
        true_final, true_steps, true_curve, trained = _ppo(args, None)
        vlm_final, vlm_steps, vlm_curve, _ = _ppo(args, reward)
        results.update(ppo_true_reward_return=true_final, ppo_vlm_reward_return=vlm_final)
        results["random_return"] = evaluate_policy(
            None, make_env(args.env_id), args.eval_episodes, seed=10_000
        ).true_return
        curves = {"true": (true_steps, true_curve), "vlm": (vlm_steps, vlm_curve)}
        atomic_write_json(run_dir / "curves.json", {k: {"steps": s, "returns": r} for k, (s, r) in curves.items()})

    # Correlation along rollouts, for every α (the frames are embedded once).
    correlations: dict[str, dict[str, float]] = {}
    pooled = []
    for label, policy in (("random", None), ("trained", trained)):
        if label == "trained" and policy is None:
            continue
        data = rollout(policy, make_env(args.env_id), args.rollout_episodes, seed=args.seed + 1).transitions
        pooled.append(data)
        embeddings = embedder.embed_images(reward.render(data.next_obs))
        target = task_reward(args.env_id, data.next_obs, data.acts)
        correlations[label] = {
            f"{alpha:g}": float(np.corrcoef(reward.with_alpha(alpha).from_embeddings(embeddings), target)[0, 1])
            for alpha in args.alphas
        }
        if label == "random":
            _frame_strip(reward, data, run_dir / "frames.png")
    results["correlation"] = correlations

    # EPIC distance to the task reward on the rollouts' transitions (rewards of s' alone: cache the frames).
    transitions = Transitions(*(np.concatenate([getattr(d, f) for d in pooled]) for f in Transitions._fields))
    env_id = args.env_id
    truth = as_reward_fn(FunctionReward(lambda s, a, t, d: _jax_task_reward(env_id, t, a)))
    epic = sample_epic_distance(
        CLIPReward(embedder, reward.frames, goal, list(baselines), alpha=args.alpha, cache=True),
        truth,
        transitions,
        0.99,
        num_transitions=args.epic_samples,
        num_samples=args.epic_samples,
        num_seeds=2,
        seed=args.seed,
    )
    results["epic_distance"] = float(epic.mean)
    results["epic_distance_interval"] = [float(epic.low), float(epic.high)]
    results["seconds"] = time.perf_counter() - start
    if logger is not None:
        logger.log(0, **{k: float(v) for k, v in results.items() if isinstance(v, (int, float))})
    atomic_write_json(run_dir / "results.json", results)
    return results


def _jax_task_reward(env_id: str, next_obs: Any, acts: Any) -> Any:
    """:func:`task_reward` in jax.numpy (traceable, for the EPIC estimate)."""
    import jax.numpy as jnp

    name = env_name(env_id)
    if name == "CartPole":
        return jnp.cos(next_obs[:, 2])
    if name == "Pendulum":
        return next_obs[:, 0]
    height, angle = next_obs[:, 0], next_obs[:, 1]
    low, high = (0.7, 0.2) if name == "Hopper" else (0.8, 1.0)
    healthy = ((height > low) & (jnp.abs(angle) < high) & (height < 2.0)).astype(jnp.float32)
    velocity = next_obs[:, 5] if name == "Hopper" else next_obs[:, 8]
    return healthy + velocity - 1e-3 * jnp.sum(jnp.square(acts.reshape(acts.shape[0], -1)), axis=1)


if __name__ == "__main__":
    print(json.dumps(main(parse_args(Args)), indent=1))
