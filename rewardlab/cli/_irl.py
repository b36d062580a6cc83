"""``rewardlab irl-expert``: train an SB3 expert on the true reward and save its demonstrations."""

from __future__ import annotations

from pathlib import Path

import typer


def irl_expert(
    env_id: str = typer.Option(
        "Pendulum-v1", "--env", help="Fixed-horizon task: Pendulum-v1 or HalfCheetah-v5 (any gymnasium id works)."
    ),
    algo: str = typer.Option("sac", help="SB3 expert trained on the true reward: sac or ppo."),
    total_timesteps: int = typer.Option(10_000, min=1, help="Env steps of expert training."),
    episodes: int = typer.Option(10, min=1, help="Expert episodes saved as demonstrations."),
    horizon: int = typer.Option(
        0, min=0, help="Fixed episode length (0 = the task's default: 200 Pendulum, 1000 HalfCheetah)."
    ),
    seed: int = typer.Option(0, help="Seed of training and of the recorded episodes."),
    out: Path = typer.Option(
        Path("runs/demos/demos.rlab"), help="Demonstration file to write (checksummed, no pickle)."
    ),
) -> None:
    """Train an expert with tuned settings, record its deterministic episodes, save them for AIRL/GAIL."""
    import torch

    torch.set_num_threads(1)
    import gymnasium as gym
    from rich.console import Console

    from rewardlab._io import check_file
    from rewardlab.cli._common import RUNTIME_ERROR, check_env_id, fail
    from rewardlab.irl import save_demonstrations, train_expert
    from rewardlab.rl import DEFAULT_HORIZONS, make_env, rollout

    console = Console()
    if algo not in ("sac", "ppo"):
        fail(f"algo: expected 'sac' or 'ppo', got {algo!r}")
    fixed_horizon = horizon or None
    try:
        check_env_id(env_id)
        check_file(out, "out")  # before the expert's training, not after
        expert = train_expert(env_id, algo, total_timesteps, seed=seed, fixed_horizon=fixed_horizon)
        recorded = rollout(
            expert,
            make_env(env_id, fixed_horizon=fixed_horizon or DEFAULT_HORIZONS.get(env_id)),
            episodes,
            seed=seed + 1,
        )
        demos, returns = recorded.transitions, recorded.returns
    except (ValueError, gym.error.Error) as error:  # gymnasium raises its own error types for unknown ids
        fail(str(error))
    metadata = {
        "env_id": env_id,
        "expert_algo": algo,
        "expert_total_timesteps": total_timesteps,
        "seed": seed,
        "demo_return": float(returns.mean()),
        "fixed_horizon": fixed_horizon,
    }
    try:
        path = save_demonstrations(out, demos, metadata)
    except OSError as error:
        fail(str(error), RUNTIME_ERROR)
    console.print(
        f"{len(demos.dones)} transitions from {episodes} episodes, mean true return {returns.mean():.1f}: {path}"
    )
