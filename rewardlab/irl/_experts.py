"""Experts for imitation and IRL on fixed-horizon gymnasium tasks.

The expert is an SB3 agent (PPO or SAC, tuned settings from :func:`rewardlab.rl.make_agent`)
trained on the true reward; nothing is downloaded. Its demonstrations are the
``transitions`` of :func:`rewardlab.rl.rollout`, saved with :func:`save_demonstrations`;
:func:`train_adversarial` runs AIRL or GAIL from them.
"""

from __future__ import annotations

from typing import Any

from rewardlab.rl import DEFAULT_HORIZONS, default_num_envs, make_agent, make_task_env


def train_expert(
    env_id: str,
    algo: str = "sac",
    total_timesteps: int = 20_000,
    seed: int = 0,
    fixed_horizon: int | None = None,
    **overrides: Any,
) -> Any:
    """An SB3 ``algo`` agent trained on the true reward of the fixed-horizon task ``env_id``.

    Args:
        env_id: a gymnasium id.
        algo: ``"sac"`` or ``"ppo"`` (tuned settings from :func:`rewardlab.rl.make_agent`).
        total_timesteps: env steps of training.
        seed: seed of the agent and its envs.
        fixed_horizon: episode length T; None for the task's default (``rewardlab.rl.DEFAULT_HORIZONS``,
            or the env's own episode ends where it has none).
        **overrides: the agent's hyperparameters that replace the tuned ones.

    Raises:
        ValueError: ``total_timesteps`` is not an integer ≥ 1, or an unknown ``algo``.
    """
    if isinstance(total_timesteps, bool) or not isinstance(total_timesteps, int) or total_timesteps < 1:
        raise ValueError(f"total_timesteps: expected an integer >= 1, got {total_timesteps!r}")
    horizon = DEFAULT_HORIZONS.get(env_id) if fixed_horizon is None else fixed_horizon
    venv = make_task_env(env_id, default_num_envs(algo, env_id), seed, fixed_horizon=horizon)
    agent = make_agent(algo, venv, env_id, seed=seed, **overrides)
    agent.learn(total_timesteps)
    return agent
