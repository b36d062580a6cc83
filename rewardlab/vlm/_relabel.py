"""``RolloutRelabelCallback``: a PPO rollout's rewards replaced in one batch at the rollout's end."""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback

from rewardlab._types import RewardFn


class RolloutRelabelCallback(BaseCallback):
    """Rewards of a whole on-policy rollout from one ``RewardFn`` call at its end (VLM-RM's batching).

    While the rollout is collected the callback keeps each step's next observations (the
    ``terminal_observation`` at episode ends), dones and the env's rewards. At the rollout's
    end it calls ``reward_fn`` once on all T·n_envs transitions, writes r + (what SB3 added to
    the stored reward: γ·V(s_T) at time-limit truncations) into the buffer and recomputes
    returns and advantages (GAE) with SB3's own last values. The agent steps its env at full
    speed; an expensive reward (render and embed) runs once per rollout, as a batch.

    Args:
        reward_fn: any ``RewardFn``; called with ``[T·n_envs, ...]`` arrays in step-major order.

    Attributes:
        last_rewards: the relabelled rewards ``[T, n_envs]`` of the last rollout (float32).
    """

    def __init__(self, reward_fn: RewardFn, verbose: int = 0) -> None:
        super().__init__(verbose)
        if not callable(reward_fn):
            raise ValueError(f"reward_fn: expected a RewardFn, got {type(reward_fn).__name__}")
        self.reward_fn = reward_fn
        self._next_obs: list[np.ndarray] = []
        self._dones: list[np.ndarray] = []
        self._env_rewards: list[np.ndarray] = []
        self.last_rewards: np.ndarray | None = None

    def _on_rollout_start(self) -> None:
        self._next_obs, self._dones, self._env_rewards = [], [], []

    def _on_step(self) -> bool:
        new_obs = np.array(self.locals["new_obs"], copy=True)
        dones = np.asarray(self.locals["dones"], bool)
        for row in np.flatnonzero(dones):
            terminal = self.locals["infos"][row].get("terminal_observation")
            if terminal is not None:
                new_obs[row] = terminal
        self._next_obs.append(new_obs)
        self._dones.append(dones.copy())
        # SB3 adds γ·V(s_T) to the stored reward of truncated steps after this hook: keep the env's own.
        self._env_rewards.append(np.array(self.locals["rewards"], np.float32, copy=True))
        return True

    def _on_rollout_end(self) -> None:
        buffer: Any = getattr(self.model, "rollout_buffer", None)
        if not isinstance(buffer, RolloutBuffer):
            raise ValueError(
                f"model: expected an on-policy agent with a RolloutBuffer, got {type(self.model).__name__}"
            )
        steps = len(self._next_obs)
        if steps != buffer.buffer_size:
            return  # the rollout stopped early (training ended); SB3 does not train on it
        n_envs = buffer.n_envs
        flat = steps * n_envs
        obs = buffer.observations.reshape(flat, *buffer.observations.shape[2:])
        acts = buffer.actions.reshape(flat, *buffer.actions.shape[2:])
        next_obs = np.stack(self._next_obs).reshape(flat, *self._next_obs[0].shape[1:])
        dones = np.stack(self._dones).reshape(flat)
        rewards = np.asarray(self.reward_fn(obs, acts, next_obs, dones), np.float32).reshape(steps, n_envs)
        bootstrap = buffer.rewards - np.stack(self._env_rewards)
        buffer.rewards[:] = rewards + bootstrap
        self.last_rewards = rewards
        buffer.compute_returns_and_advantage(last_values=self.locals["values"], dones=self.locals["dones"])
