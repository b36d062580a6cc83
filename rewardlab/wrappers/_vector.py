"""``VectorRewardWrapper``: a learned reward for a gymnasium vector env, aware of its autoreset mode."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv, VectorWrapper

from rewardlab._types import RewardFn
from rewardlab.wrappers._core import RewardFnSlot, copy_batch, replace_rows, take_rows


def _autoreset_mode(env: VectorEnv) -> AutoresetMode:
    mode = (env.metadata or {}).get("autoreset_mode", AutoresetMode.NEXT_STEP)
    return mode if isinstance(mode, AutoresetMode) else AutoresetMode(mode)


class VectorRewardWrapper(RewardFnSlot, VectorWrapper):
    """Scores the N transitions of every vector-env step with ONE batched ``RewardFn`` call.

    r per env, as ``RewardWrapper``: ``"replace"`` r = r_learned, ``"add"`` r = r_env +
    weight·r_learned, ``"weighted"`` r = env_weight·r_env + weight·r_learned, with
    done = terminated | truncated.

    Autoreset (``env.metadata["autoreset_mode"]``, NEXT_STEP when absent, as gymnasium):

    * ``NEXT_STEP``: an env that ended at step t returns its terminal observation (the s' of
      that last transition); at step t+1 it ignores the action and resets. That reset step
      is not a transition: it is not passed to ``reward_fn`` (the call covers only the envs
      that stepped), its reward is 0 (as the env's), and its ``_true_reward`` /
      ``_reward_components`` masks are False.
    * ``SAME_STEP``: the returned observation is already the next episode's first one;
      s' = ``info["final_obs"][i]`` where ``info["_final_obs"][i]``.
    * ``DISABLED``: s' is the returned observation; ``reset(options={"reset_mask": m})``
      restarts the ended envs.

    ``info["true_reward"]`` holds the env rewards ``[num_envs]`` (an inner reward wrapper's
    are kept), ``info["reward_components"]`` the unweighted terms ``{"env": r_env,
    name: r_learned}`` (arrays ``[num_envs]``, merged into components already there), each
    with gymnasium's boolean ``_key`` mask (``info["_true_reward"]``, ``components["_env"]``, ...)
    so ``DictInfoToList`` and friends handle them. Observations are copied once per step
    (s of the next step), since vector envs created with ``copy=False`` reuse their buffers.

    Learned rewards as in Christiano et al., "Deep reinforcement learning from human
    preferences", NeurIPS 2017 (the agent trains on r_learned while the true reward is logged).

    Args:
        env: a ``gymnasium.vector.VectorEnv``.
        reward_fn: a ``RewardFn``, or None to set one later with ``set_reward_fn``.
        mode: ``"replace"``, ``"add"`` or ``"weighted"``.
        weight: coefficient of r_learned (``"add"``, ``"weighted"``).
        env_weight: coefficient of r_env (``"weighted"`` only).
        name: key of r_learned in ``info["reward_components"]``.

    Raises:
        ValueError: bad ``env``, ``mode`` or weights, or a reward model whose observation or
            action space does not match the env's single-env spaces.

    Example:
        >>> import gymnasium as gym, numpy as np
        >>> def stay_up(obs, acts, next_obs, dones):  # cos(θ') of Pendulum
        ...     return next_obs[:, 0].astype(np.float32)
        >>> envs = VectorRewardWrapper(gym.make_vec("Pendulum-v1", num_envs=2, vectorization_mode="sync"), stay_up)
        >>> _ = envs.reset(seed=0)
        >>> obs, rewards, terminated, truncated, info = envs.step(np.zeros((2, 1), np.float32))
        >>> bool(np.allclose(rewards, obs[:, 0])), info["true_reward"].shape
        (True, (2,))
    """

    def __init__(
        self,
        env: VectorEnv,
        reward_fn: RewardFn | None = None,
        *,
        mode: str = "replace",
        weight: float = 1.0,
        env_weight: float | None = None,
        name: str = "learned",
    ) -> None:
        if not isinstance(env, VectorEnv):
            raise ValueError(f"env: expected a gymnasium.vector.VectorEnv, got {type(env).__name__}")
        name = self.check_name(name, no_leading_underscore=True)
        super().__init__(env)
        self.autoreset_mode = _autoreset_mode(env)
        self._resetting = np.zeros(self.num_envs, bool)  # NEXT_STEP: envs whose next step is a reset step
        self.init_slot(reward_fn, mode, weight, env_weight, name)

    def transition_spaces(self) -> tuple[gym.Space, gym.Space]:
        """The single-env spaces: ``observation_space`` and ``action_space`` are the batched ones."""
        return self.single_observation_space, self.single_action_space

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        # Read the mask first: SyncVectorEnv pops it from ``options``.
        mask = None
        if options is not None and options.get("reset_mask") is not None:
            mask = np.array(options["reset_mask"], bool)
        # gymnasium types VectorEnv.reset's seed as an int only; its vector envs also take a list.
        obs, info = self.env.reset(seed=seed, options=options)  # type: ignore[arg-type]
        self._obs = copy_batch(obs)
        if mask is None:
            self._resetting[:] = False
        else:
            self._resetting[mask] = False
        return obs, info

    # VectorWrapper subclasses VectorEnv unparameterised, leaving free TypeVars in its step() signature.
    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:  # type: ignore[override]
        if self._obs is None:
            raise RuntimeError("VectorRewardWrapper.step: call reset() before step()")
        obs, env_rewards, terminated, truncated, info = self.env.step(actions)
        num_envs = self.num_envs
        dones = np.logical_or(terminated, truncated)
        next_obs = obs
        if self.autoreset_mode == AutoresetMode.SAME_STEP and "_final_obs" in info and np.any(info["_final_obs"]):
            rows = np.flatnonzero(info["_final_obs"])
            next_obs = replace_rows(obs, rows, [info["final_obs"][row] for row in rows])
        stepped = ~self._resetting if self.autoreset_mode == AutoresetMode.NEXT_STEP else np.ones(num_envs, bool)
        if stepped.all():
            learned = self._reward_fn(self._obs, actions, next_obs, dones)
        else:
            learned = np.zeros(num_envs, np.float32)
            rows = np.flatnonzero(stepped)
            if rows.size:  # score only the envs that took a real step
                learned[rows] = self._reward_fn(
                    take_rows(self._obs, rows),
                    take_rows(actions, rows),
                    take_rows(next_obs, rows),
                    dones[rows],
                    env_indices=rows,
                )
        env_rewards = np.asarray(env_rewards)
        dtype = env_rewards.dtype if env_rewards.dtype.kind == "f" else np.float64
        rewards = self.mix.combine(env_rewards, learned, dtype)
        rewards[~stepped] = 0.0
        if "true_reward" not in info:
            info["true_reward"] = env_rewards.astype(dtype, copy=True)
            info["_true_reward"] = stepped.copy()
        components = dict(info.get("reward_components", {}))
        if "env" not in components:
            components["env"], components["_env"] = env_rewards.astype(dtype, copy=True), stepped.copy()
        components[self.name], components[f"_{self.name}"] = learned, stepped.copy()
        info["reward_components"] = components
        info["_reward_components"] = stepped.copy()
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            self._resetting = dones & stepped
        self._obs = copy_batch(obs)
        return obs, rewards, terminated, truncated, info
