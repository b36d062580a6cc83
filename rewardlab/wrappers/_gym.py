"""``RewardWrapper``: a learned reward for one gymnasium env (replace, add or weight the env's reward)."""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np

from rewardlab._types import RewardFn
from rewardlab.wrappers._core import RewardFnSlot, add_batch_axis


class RewardWrapper(RewardFnSlot, gym.Wrapper):
    """Scores every transition (s, a, s', done) of a gymnasium env with a ``RewardFn``.

    ``step`` is overridden (a ``gym.RewardWrapper`` cannot see s, a, s'): the wrapper keeps
    s from the previous ``reset``/``step``, calls ``reward_fn`` on a batch of one and returns

    * ``mode="replace"``:  r = r_learned
    * ``mode="add"``:      r = r_env + weight · r_learned
    * ``mode="weighted"``: r = env_weight · r_env + weight · r_learned

    with done = terminated or truncated (the ``Transitions`` convention), and s' the
    observation ``step`` returns (a single env does not auto-reset, so at an episode end it
    is the terminal observation). ``info["true_reward"]`` keeps the env's reward (an inner
    reward wrapper's value is kept) and ``info["reward_components"]`` the unweighted terms
    ``{"env": r_env, name: r_learned}`` merged into any components already there.

    Learned rewards as in Christiano et al., "Deep reinforcement learning from human
    preferences", NeurIPS 2017; added bonuses as in Ng, Harada & Russell, "Policy invariance
    under reward transformations", ICML 1999.

    Args:
        env: the env to wrap.
        reward_fn: a ``RewardFn`` ``fn(obs, acts, next_obs, dones) -> np.ndarray[N] float32``,
            or None to set one later with ``set_reward_fn`` (stepping without one raises).
        mode: ``"replace"``, ``"add"`` or ``"weighted"``.
        weight: coefficient of r_learned (``"add"``, ``"weighted"``).
        env_weight: coefficient of r_env (``"weighted"`` only).
        name: key of r_learned in ``info["reward_components"]``.

    Raises:
        ValueError: bad ``env``, ``mode``, weights, or a reward model whose observation or
            action space does not match the env's.

    Example:
        >>> import gymnasium as gym, numpy as np
        >>> def torque_cost(obs, acts, next_obs, dones):
        ...     return -np.square(acts[:, 0]).astype(np.float32)
        >>> env = RewardWrapper(gym.make("Pendulum-v1"), torque_cost, mode="add", weight=0.5)
        >>> _ = env.reset(seed=0)
        >>> obs, reward, terminated, truncated, info = env.step(np.array([2.0], np.float32))
        >>> bool(np.isclose(reward, info["true_reward"] - 0.5 * 4.0))
        True
        >>> info["reward_components"]["learned"]
        -4.0
    """

    def __init__(
        self,
        env: gym.Env,
        reward_fn: RewardFn | None = None,
        *,
        mode: str = "replace",
        weight: float = 1.0,
        env_weight: float | None = None,
        name: str = "learned",
    ) -> None:
        if not isinstance(env, gym.Env):
            raise ValueError(f"env: expected a gymnasium.Env, got {type(env).__name__}")
        name = self.check_name(name)
        super().__init__(env)
        self.init_slot(reward_fn, mode, weight, env_weight, name)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        self._obs = add_batch_axis(obs)
        return obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        if self._obs is None:
            raise RuntimeError("RewardWrapper.step: call reset() before step()")
        obs, env_reward, terminated, truncated, info = self.env.step(action)
        next_obs = add_batch_axis(obs)
        dones = np.array([bool(terminated or truncated)])
        learned = float(self._reward_fn(self._obs, add_batch_axis(action), next_obs, dones)[0])
        env_reward = float(env_reward)
        info["true_reward"] = info.get("true_reward", env_reward)
        components = dict(info.get("reward_components", {}))
        components.setdefault("env", env_reward)
        components[self.name] = learned
        info["reward_components"] = components
        self._obs = next_obs
        return obs, self.mix.combine_scalar(env_reward, learned), terminated, truncated, info
