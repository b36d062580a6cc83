"""A fast, deterministic stand-in for ``rewardlab.search.train_candidate`` in the search tests.

Instead of training an agent it scores the candidate's reward on fixed transitions of random
Pendulum play: ``fitness`` is the Pearson correlation of the candidate's reward with the env's
own reward on them (NaN-free: a constant reward scores 0), ``components`` are each component's
mean on two halves of the batch. The search's bookkeeping sees the same record shape as from a
real training run, and every rerun gives the same numbers, so recorded replies stay valid.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rewardlab.llm import CodeReward
from rewardlab.rl import make_env


def transitions(env_id: str, size: int = 64, seed: int = 0) -> tuple[np.ndarray, ...]:
    env = make_env(env_id)
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    rows = []
    for _ in range(size):
        act = env.action_space.sample()
        next_obs, reward, terminated, truncated, _ = env.step(act)
        rows.append((obs, act, next_obs, bool(terminated), float(reward)))
        obs = env.reset()[0] if terminated or truncated else next_obs
    env.close()
    return tuple(np.asarray([row[i] for row in rows]) for i in range(5))


def correlation_trainer(code: str, env_id: str, config: Any) -> dict[str, Any]:
    obs, act, next_obs, dones, true = transitions(env_id)
    with CodeReward(code) as reward:
        output = reward.evaluate(obs, act, next_obs, dones)
    values = np.asarray(output.reward, float)
    fitness = 0.0 if values.std() == 0 else float(np.corrcoef(values, true)[0, 1])
    half = len(values) // 2
    components = {
        name: [round(float(np.mean(v[:half])), 6), round(float(np.mean(v[half:])), 6)]
        for name, v in output.components.items()
    }
    return {
        "status": "trained",
        "errors": [],
        "fitness": round(fitness, 6),
        "fitness_std": 0.0,
        "components": components,
        "returns_along": [round(float(true[:half].sum()), 4), round(float(true[half:].sum()), 4)],
        "curve": {"timesteps": [], "returns": []},
        "behaviour": {
            "episode_length": len(values),
            "obs_mean": np.round(obs.mean(0), 4).tolist(),
            "obs_std": np.round(obs.std(0), 4).tolist(),
            "true_return": round(float(true.sum()), 4),
        },
    }
