"""``rewardlab vlm train-clip`` and ``rewardlab vlm train``: a small CLIP from an env's frames, PPO on its reward."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

vlm_app = typer.Typer(
    help="Vision-language rewards: train a small CLIP on an env's frames, train PPO on a sentence.",
    no_args_is_help=True,
    add_completion=False,
)


@vlm_app.command("train-clip")
def train_clip_command(
    env_id: str = typer.Option(
        "CartPole-v1", "--env", help="gymnasium id with captions: CartPole, Pendulum, Hopper, Walker2d."
    ),
    out: Path = typer.Option(None, help="Checkpoint folder (default: runs/clip_<env>)."),
    image_size: int = typer.Option(48, min=8, help="Frame side in pixels."),
    frames: int = typer.Option(1200, min=10, help="Frames to train on (10 % more are held out)."),
    epochs: int = typer.Option(60, min=1, help="Passes over the frames."),
    seed: int = typer.Option(0, help="Seed of states, weights and batches."),
) -> None:
    """Train a small CLIP contrastively on rendered frames and captions of their states; save it in the HF format."""
    import torch

    torch.set_num_threads(1)
    from rewardlab.cli._common import check_env_id, one_line_errors

    with one_line_errors():
        check_env_id(env_id)
        from rewardlab.vlm import ClipTrainConfig, save_clip, train_clip

        config = ClipTrainConfig(
            image_size=image_size,
            patch_size=8 if image_size % 8 == 0 else image_size,
            width=32,
            layers=1,
            projection_dim=32,
            num_frames=frames,
            epochs=epochs,
            seed=seed,
        )
        embedder, result = train_clip(env_id, config)
        path = save_clip(embedder, out or Path("runs") / f"clip_{env_id}", env_id=env_id, accuracy=result["accuracy"])
    typer.echo(f"saved {path} (held-out caption accuracy {result['accuracy']:.2f}; captions: {result['captions']})")


@vlm_app.command("train")
def train_command(
    env_id: str = typer.Option("CartPole-v1", "--env", help="gymnasium id."),
    goal: list[str] = typer.Option(None, help="Goal prompt (repeat for several; default: the checkpoint's)."),
    baseline: list[str] = typer.Option(None, help="Baseline prompt (repeat for several; default: the checkpoint's)."),
    clip: Path = typer.Option(None, help="CLIP checkpoint folder (default: runs/clip_<env>)."),
    alpha: float = typer.Option(0.5, min=0.0, max=1.0, help="Weight of the goal-baseline direction."),
    total_timesteps: int = typer.Option(20_000, min=1, help="PPO env steps."),
    num_envs: int = typer.Option(
        4, min=1, help="Parallel envs (frames of all are rendered and embedded in one batch)."
    ),
    relabel: bool = typer.Option(True, help="Score each PPO rollout in one batch at its end (else every step)."),
    render_workers: int = typer.Option(
        1,
        min=1,
        help="Processes that render frames (MuJoCo and classic control; the number of cores is a good choice).",
    ),
    eval_episodes: int = typer.Option(5, min=1, help="Episodes of the final true-return evaluation."),
    seed: int = typer.Option(0, help="Seed of agent and envs."),
) -> None:
    """Train PPO on the CLIP reward of a goal sentence; report the true return."""
    import torch

    torch.set_num_threads(1)
    from rewardlab.cli._common import check_env_id, one_line_errors

    with one_line_errors():
        check_env_id(env_id)
        from rewardlab.rl import evaluate_policy, make_agent, make_env, make_task_env
        from rewardlab.vlm import CLIPReward, RolloutRelabelCallback, frame_source, load_clip, read_metadata
        from rewardlab.wrappers import RewardVecEnvWrapper

        folder = clip or Path("runs") / f"clip_{env_id}"
        metadata = read_metadata(folder)
        goals = list(goal or metadata.get("goal") or [])
        baselines = list(baseline or metadata.get("baseline") or []) or None
        if not goals:
            raise ValueError(f"goal: expected a goal prompt (--goal), none given and none in {folder}")
        embedder = load_clip(folder)
        reward = CLIPReward(
            embedder,
            frame_source(env_id, embedder.image_size, workers=render_workers),
            goals,
            baselines,
            alpha=alpha if baselines else 0.0,
        )
        venv = make_task_env(env_id, num_envs, seed)
        callbacks: list[Any] = []
        if relabel:
            callbacks.append(RolloutRelabelCallback(reward))
        else:
            venv = RewardVecEnvWrapper(venv, reward)
        agent = make_agent("ppo", venv, env_id, seed=seed)
        agent.learn(total_timesteps, callback=callbacks)
        evaluation = evaluate_policy(agent, make_env(env_id), eval_episodes, seed=10_000, reward_fn=reward)
    typer.echo(
        json.dumps(
            {
                "env_id": env_id,
                "goal": goals,
                "baseline": baselines,
                "alpha": reward.alpha,
                "true_return": evaluation.true_return,
                "vlm_return": evaluation.reward_return,
            }
        )
    )
