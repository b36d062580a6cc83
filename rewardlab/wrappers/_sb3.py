"""``RewardVecEnvWrapper``: a learned reward for Stable-Baselines3 VecEnvs, one batched call per step."""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn

from rewardlab._types import RewardFn, Transitions
from rewardlab.wrappers._core import RewardFnSlot, replace_rows


class RewardVecEnvWrapper(RewardFnSlot, VecEnvWrapper):
    """Scores the N transitions of every SB3 VecEnv step with ONE batched ``RewardFn`` call.

    r per env, as ``RewardWrapper``: ``"replace"`` r = r_learned, ``"add"`` r = r_env +
    weight·r_learned, ``"weighted"`` r = env_weight·r_env + weight·r_learned.

    SB3 VecEnvs auto-reset: at an episode end the returned observation is already the next
    episode's first one, so s' of that env is ``infos[i]["terminal_observation"]`` (one copy
    of the observation batch is made, only at steps where some env is done). ``dones`` are
    SB3's (terminated or truncated); SB3's ``infos[i]["TimeLimit.truncated"]`` splits them
    into the ``terminated`` and ``truncated`` of ``last_transitions``. ``infos[i]["true_reward"]`` keeps the env reward (an
    inner reward wrapper's value is kept), ``infos[i]["reward_components"]`` the unweighted
    terms ``{"env": r_env, name: r_learned}``.

    ``last_transitions`` is the ``Transitions(obs, acts, next_obs, terminated, truncated, rews)`` of the last
    step, ``rews`` the true rewards (float32 ``[num_envs]``); callbacks that collect
    transitions read it in ``_on_step``. Its arrays are the very arrays the VecEnv returned and
    the agent passed (SB3's VecEnvs return fresh arrays every step), so they are not copied:
    treat them as read-only and copy what you keep.

    Wrap the raw VecEnv (before ``VecNormalize``) when the reward model was trained on raw
    observations: the reward function sees what this wrapper's inner VecEnv returns.

    Learned rewards as in Christiano et al., "Deep reinforcement learning from human
    preferences", NeurIPS 2017 (the agent trains on r_learned while the true reward is logged).

    Args:
        venv: the SB3 VecEnv to wrap.
        reward_fn: a ``RewardFn``, or None to set one later with ``set_reward_fn`` (stepping
            without one raises).
        mode: ``"replace"``, ``"add"`` or ``"weighted"``.
        weight: coefficient of r_learned (``"add"``, ``"weighted"``).
        env_weight: coefficient of r_env (``"weighted"`` only).
        name: key of r_learned in ``infos[i]["reward_components"]``.

    Raises:
        ValueError: bad ``venv``, ``mode`` or weights, or a reward model whose observation or
            action space does not match the VecEnv's.

    Example:
        >>> import gymnasium as gym, numpy as np
        >>> from stable_baselines3.common.vec_env import DummyVecEnv
        >>> def stay_up(obs, acts, next_obs, dones):  # cos(θ') of Pendulum
        ...     return next_obs[:, 0].astype(np.float32)
        >>> venv = RewardVecEnvWrapper(DummyVecEnv([lambda: gym.make("Pendulum-v1")] * 2), stay_up)
        >>> obs = venv.reset()
        >>> obs, rewards, dones, infos = venv.step(np.zeros((2, 1), np.float32))
        >>> bool(np.allclose(rewards, obs[:, 0])), "true_reward" in infos[0]
        (True, True)
        >>> venv.last_transitions.next_obs.shape
        (2, 3)
    """

    def __init__(
        self,
        venv: VecEnv,
        reward_fn: RewardFn | None = None,
        *,
        mode: str = "replace",
        weight: float = 1.0,
        env_weight: float | None = None,
        name: str = "learned",
    ) -> None:
        if not isinstance(venv, VecEnv):
            raise ValueError(f"venv: expected a stable_baselines3 VecEnv, got {type(venv).__name__}")
        name = self.check_name(name)
        super().__init__(venv)
        self._actions: Any = None
        self.last_transitions: Transitions | None = None
        self.init_slot(reward_fn, mode, weight, env_weight, name)

    def reset(self) -> VecEnvObs:
        obs = self.venv.reset()
        self._obs = obs
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions
        self.venv.step_async(actions)

    def step_wait(self) -> VecEnvStepReturn:
        if self._obs is None:
            raise RuntimeError("RewardVecEnvWrapper.step: call reset() before step()")
        obs, env_rewards, dones, infos = self.venv.step_wait()
        next_obs = obs
        terminated = truncated = dones  # all False unless some env is done
        if True in dones.tolist():  # several times cheaper than dones.any() for a few envs
            rows = np.flatnonzero(dones)
            truncated = np.zeros_like(dones)
            truncated[rows] = [bool(infos[row].get("TimeLimit.truncated", False)) for row in rows]
            terminated = dones & ~truncated
            try:
                terminal = [infos[row]["terminal_observation"] for row in rows]
            except KeyError:
                raise ValueError(
                    "venv: an episode ended without infos[i]['terminal_observation']; the wrapped VecEnv must follow "
                    "SB3's auto-reset convention (DummyVecEnv, SubprocVecEnv)"
                ) from None
            next_obs = replace_rows(obs, rows, terminal)
        learned = self._reward_fn(self._obs, self._actions, next_obs, dones)
        # ``learned`` is a fresh float32 array (CheckedRewardFn) that nothing else keeps: "replace" returns it as is.
        rewards = learned if self.mix.mode == "replace" else self.mix.combine(env_rewards, learned, np.float32)
        env_list, learned_list = env_rewards.tolist(), learned.tolist()
        inner_true = "true_reward" in infos[0]
        name = self.name
        if not inner_true and "reward_components" not in infos[0]:
            # No inner reward wrapper: the common case, in one tight loop.
            for info, env_reward, learned_reward in zip(infos, env_list, learned_list, strict=True):
                info["true_reward"] = env_reward
                info["reward_components"] = {"env": env_reward, name: learned_reward}
            self.last_transitions = Transitions(
                self._obs, self._actions, next_obs, terminated, truncated, np.asarray(env_rewards, np.float32)
            )
            self._obs = obs
            return obs, rewards, dones, infos
        for info, env_reward, learned_reward in zip(infos, env_list, learned_list, strict=True):
            if not inner_true:
                info["true_reward"] = env_reward
            components = info.get("reward_components")
            components = {"env": env_reward} if components is None else {"env": env_reward, **components}
            components[name] = learned_reward
            info["reward_components"] = components
        true_rewards = (
            np.array([info["true_reward"] for info in infos], np.float32)
            if inner_true
            else np.asarray(env_rewards, np.float32)
        )
        self.last_transitions = Transitions(self._obs, self._actions, next_obs, terminated, truncated, true_rewards)
        self._obs = obs
        return obs, rewards, dones, infos
