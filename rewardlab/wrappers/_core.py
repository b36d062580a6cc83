"""Shared pieces of the reward wrappers: the reward mix, the checked ``RewardFn`` call, batch helpers.

Every wrapper in this subpackage scores the transitions of one env step with ONE batched
``RewardFn`` call (``fn(obs, acts, next_obs, dones) -> np.ndarray[N] float32``, see
``rewardlab._types.RewardFn``) and mixes the learned reward r_learned with the env's reward
r_env:

* ``"replace"``:  r = r_learned
* ``"add"``:      r = r_env + weight · r_learned
* ``"weighted"``: r = env_weight · r_env + weight · r_learned
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from rewardlab._checks import NonFiniteError
from rewardlab._types import RewardFn

REWARD_MODES = ("replace", "add", "weighted")
"""A wrapper's ``mode``: r = r_learned, r_env + weight·r_learned or env_weight·r_env + weight·r_learned."""


class NonFiniteRewardError(NonFiniteError):
    """The reward function returned NaN or ±inf for some env, or got them as inputs (a ``ValueError`` and a ``FloatingPointError``)."""


@dataclasses.dataclass(frozen=True)
class RewardMix:
    """How the learned reward r_learned and the env reward r_env make the reward the agent sees.

    ``"replace"``: r = r_learned; ``"add"``: r = r_env + weight·r_learned;
    ``"weighted"``: r = env_weight·r_env + weight·r_learned. The combination is computed in
    float64 and cast to the env's reward dtype.

    Attributes:
        mode: one of ``REWARD_MODES``.
        weight: coefficient of r_learned (``"add"`` and ``"weighted"``; must stay 1.0 for ``"replace"``).
        env_weight: coefficient of r_env (``"weighted"`` only, required there; None otherwise).

    Raises:
        ValueError: unknown ``mode``, a non-finite weight, ``weight`` != 1 with ``"replace"``,
            or ``env_weight`` missing with ``"weighted"`` / given with another mode.

    Example:
        >>> import numpy as np
        >>> RewardMix("weighted", weight=2.0, env_weight=0.5).combine(np.array([2.0, -2.0]), np.array([0.25, 1.0], np.float32), np.float32)
        array([1.5, 1. ], dtype=float32)
    """

    mode: str = "replace"
    weight: float = 1.0
    env_weight: float | None = None

    def __post_init__(self) -> None:
        if self.mode not in REWARD_MODES:
            raise ValueError(f"mode: expected one of {REWARD_MODES}, got {self.mode!r}")
        _check_finite_float("weight", self.weight)
        if self.mode == "replace" and self.weight != 1.0:
            raise ValueError(
                f"weight: mode='replace' uses r = r_learned, weight must stay 1.0, got {self.weight!r}; "
                "use mode='weighted' with env_weight=0.0 to scale"
            )
        if self.mode == "weighted":
            if self.env_weight is None:
                raise ValueError(
                    "env_weight: mode='weighted' (r = env_weight·r_env + weight·r_learned) needs a float env_weight, got None"
                )
            _check_finite_float("env_weight", self.env_weight)
        elif self.env_weight is not None:
            raise ValueError(
                f"env_weight: only used by mode='weighted', got env_weight={self.env_weight!r} with mode={self.mode!r}"
            )
        object.__setattr__(self, "weight", float(self.weight))
        if self.env_weight is not None:
            object.__setattr__(self, "env_weight", float(self.env_weight))

    def combine(self, env_rewards: np.ndarray, learned_rewards: np.ndarray, dtype: Any) -> np.ndarray:
        """r per env (a new array of the inputs' shape and ``dtype``) from r_env and r_learned."""
        if self.mode == "replace":
            return learned_rewards.astype(dtype)
        env64 = np.asarray(env_rewards, np.float64)
        learned64 = learned_rewards.astype(np.float64)
        if self.mode == "add":
            return (env64 + self.weight * learned64).astype(dtype)
        assert self.env_weight is not None  # mode='weighted' requires it (__post_init__)
        return (self.env_weight * env64 + self.weight * learned64).astype(dtype)

    def combine_scalar(self, env_reward: float, learned_reward: float) -> float:
        """r of one transition as a Python float."""
        if self.mode == "replace":
            return float(learned_reward)
        if self.mode == "add":
            return float(env_reward) + self.weight * float(learned_reward)
        assert self.env_weight is not None  # mode='weighted' requires it (__post_init__)
        return self.env_weight * float(env_reward) + self.weight * float(learned_reward)


def _check_finite_float(argument: str, value: Any) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not math.isfinite(value)
    ):
        raise ValueError(f"{argument}: expected a finite float, got {value!r}")


def describe_reward_fn(reward_fn: RewardFn) -> str:
    """A short name of a reward function for error messages."""
    name = getattr(reward_fn, "__qualname__", None) or getattr(reward_fn, "__name__", None)
    return repr(name) if isinstance(name, str) else type(reward_fn).__name__


def spaces_compatible(env_space: gym.Space, model_space: gym.Space) -> bool:
    """True when batches of ``env_space`` are valid inputs of a model built for ``model_space``.

    Structural comparison: the same space type; Box: same shape and both float dtypes or the
    same dtype (bounds are ignored: they do not change the inputs); Discrete: same n and start;
    MultiDiscrete: same nvec; MultiBinary: same n; Dict: same keys, compatible values; Tuple:
    same length, compatible items; any other space: equality.

    Example:
        >>> import gymnasium as gym, numpy as np
        >>> spaces_compatible(gym.spaces.Box(-np.inf, np.inf, (17,), np.float64), gym.spaces.Box(-1, 1, (17,), np.float32))
        True
        >>> spaces_compatible(gym.spaces.Discrete(3), gym.spaces.Discrete(4))
        False
    """
    if type(env_space) is not type(model_space):
        return False
    if isinstance(env_space, gym.spaces.Box) and isinstance(model_space, gym.spaces.Box):
        same_dtype = env_space.dtype == model_space.dtype
        both_float = np.issubdtype(env_space.dtype, np.floating) and np.issubdtype(model_space.dtype, np.floating)
        return env_space.shape == model_space.shape and (same_dtype or both_float)
    if isinstance(env_space, gym.spaces.Discrete) and isinstance(model_space, gym.spaces.Discrete):
        return int(env_space.n) == int(model_space.n) and int(env_space.start) == int(model_space.start)
    if isinstance(env_space, gym.spaces.MultiDiscrete) and isinstance(model_space, gym.spaces.MultiDiscrete):
        return env_space.nvec.shape == model_space.nvec.shape and bool(np.all(env_space.nvec == model_space.nvec))
    if isinstance(env_space, gym.spaces.MultiBinary) and isinstance(model_space, gym.spaces.MultiBinary):
        return np.shape(env_space.n) == np.shape(model_space.n) and bool(
            np.all(np.asarray(env_space.n) == np.asarray(model_space.n))
        )
    if isinstance(env_space, gym.spaces.Dict) and isinstance(model_space, gym.spaces.Dict):
        return env_space.spaces.keys() == model_space.spaces.keys() and all(
            spaces_compatible(env_space[key], model_space[key]) for key in env_space.spaces
        )
    if isinstance(env_space, gym.spaces.Tuple) and isinstance(model_space, gym.spaces.Tuple):
        return len(env_space) == len(model_space) and all(
            spaces_compatible(a, b) for a, b in zip(env_space, model_space, strict=True)
        )
    return env_space == model_space


def check_reward_fn(reward_fn: RewardFn, observation_space: gym.Space, action_space: gym.Space) -> None:
    """Validate a ``RewardFn`` against an env's single-env spaces.

    Raises:
        ValueError: ``reward_fn`` is not callable, or it has a ``.model`` whose observation
            (or action) space does not match the env's (the message names both spaces).
    """
    if not callable(reward_fn):
        raise ValueError(
            f"reward_fn: expected a RewardFn callable fn(obs, acts, next_obs, dones) -> np.ndarray[N], got {type(reward_fn).__name__}"
        )
    model = getattr(reward_fn, "model", None)
    for kind, env_space in (("observation", observation_space), ("action", action_space)):
        model_space = getattr(model, f"{kind}_space", None)
        if isinstance(model_space, gym.Space) and not spaces_compatible(env_space, model_space):
            raise ValueError(
                f"reward_fn: {kind}-space mismatch between the env and the reward model of {describe_reward_fn(reward_fn)}: "
                f"env {kind}_space={env_space}, reward model {kind}_space={model_space}"
            )


class CheckedRewardFn:
    """Holds the current ``RewardFn`` and calls it with output checks (shape [N], float, finite)."""

    __slots__ = ("fn", "name")

    def __init__(self, reward_fn: RewardFn | None) -> None:
        self.fn = reward_fn
        self.name = describe_reward_fn(reward_fn) if reward_fn is not None else "None"

    def __call__(
        self, obs: Any, acts: Any, next_obs: Any, dones: np.ndarray, env_indices: np.ndarray | None = None
    ) -> np.ndarray:
        """r_learned ``[N]`` float32; ``env_indices[k]`` is the env of row k (all envs in order when None)."""
        if self.fn is None:
            raise RuntimeError(
                "reward_fn: no reward function set; pass reward_fn= to the wrapper or call set_reward_fn(fn) before stepping"
            )
        n = dones.shape[0]
        try:
            rewards = self.fn(obs, acts, next_obs, dones)
        except FloatingPointError as error:
            rows = "" if env_indices is None else f" (batch rows are envs {env_indices.tolist()})"
            raise NonFiniteRewardError(f"reward_fn {self.name} failed on non-finite values{rows}: {error}") from error
        if getattr(self.fn, "returns_checked_rewards", False):
            # The fn already guarantees a fresh finite float32 [N] array (as_reward_fn's adapter does).
            return rewards
        rewards = np.asarray(rewards)
        if rewards.shape != (n,) or rewards.dtype.kind != "f":
            raise ValueError(
                f"reward_fn {self.name}: expected rewards of shape [num_envs] = ({n},) with a float dtype (float32), "
                f"got shape {rewards.shape} dtype {rewards.dtype}"
            )
        if not np.isfinite(rewards).all():
            row = int(np.flatnonzero(~np.isfinite(rewards))[0])
            env_index = row if env_indices is None else int(env_indices[row])
            raise NonFiniteRewardError(
                f"reward_fn {self.name} returned a non-finite reward {rewards[row]} for env index {env_index}; "
                "check its inputs (observations) and its parameters for divergence"
            )
        return np.array(rewards, np.float32)  # a fresh array: the reward fn may reuse its output buffer


# Batch helpers over observations/actions: arrays, or dicts (Dict spaces) / tuples (Tuple spaces) of them.
def add_batch_axis(value: Any) -> Any:
    """A batch of one: a copy of ``value`` with a leading axis of length 1 on every leaf."""
    if isinstance(value, Mapping):
        return {key: add_batch_axis(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return tuple(add_batch_axis(item) for item in value)
    return np.array(value)[None]


def copy_batch(value: Any) -> Any:
    """A copy of every leaf (the env may reuse its output buffers)."""
    if isinstance(value, Mapping):
        return {key: copy_batch(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return tuple(copy_batch(item) for item in value)
    return np.array(value)


def take_rows(value: Any, rows: np.ndarray) -> Any:
    """Rows ``rows`` (integer indices) of every leaf."""
    if isinstance(value, Mapping):
        return {key: take_rows(item, rows) for key, item in value.items()}
    if isinstance(value, tuple):
        return tuple(take_rows(item, rows) for item in value)
    return np.asarray(value)[rows]


def replace_rows(batch: Any, rows: np.ndarray, values: list[Any]) -> Any:
    """A copy of ``batch`` whose row ``rows[k]`` is ``values[k]`` (an unbatched observation)."""
    if isinstance(batch, Mapping):
        return {key: replace_rows(item, rows, [value[key] for value in values]) for key, item in batch.items()}
    if isinstance(batch, tuple):
        return tuple(replace_rows(item, rows, [value[i] for value in values]) for i, item in enumerate(batch))
    out = np.array(batch)
    for row, value in zip(rows.tolist(), values, strict=True):
        out[row] = value
    return out


class RewardFnSlot:
    """Mixin of the reward wrappers: holds the current checked ``RewardFn`` and swaps it."""

    _reward_fn: CheckedRewardFn

    @staticmethod
    def check_name(name: Any, *, no_leading_underscore: bool = False) -> str:
        """The component name of the wrapped reward in ``info["reward_components"]``.

        Raises:
            ValueError: ``name`` is empty, not a string, ``"env"`` (the environment's own
                component) or, with ``no_leading_underscore``, starts with ``_`` (gymnasium's
                vector infos use such keys as masks).
        """
        if not isinstance(name, str) or not name or name == "env" or (no_leading_underscore and name.startswith("_")):
            rule = ", not starting with '_'" if no_leading_underscore else ""
            raise ValueError(f"name: expected a non-empty string other than 'env'{rule}, got {name!r}")
        return name

    def init_slot(
        self, reward_fn: RewardFn | None, mode: str, weight: float, env_weight: float | None, name: str
    ) -> None:
        """Set up the mix of env and wrapped reward and an empty slot; then ``set_reward_fn`` if given."""
        self.mix = RewardMix(mode, weight, env_weight)
        self.name = name
        self._reward_fn = CheckedRewardFn(None)
        self._obs: Any = None  # s of the next step, with a batch axis
        if reward_fn is not None:
            self.set_reward_fn(reward_fn)

    @property
    def reward_fn(self) -> RewardFn | None:
        """The current ``RewardFn`` (None until set)."""
        return self._reward_fn.fn

    def set_reward_fn(self, reward_fn: RewardFn) -> None:
        """Swap in a new ``RewardFn``; the next step uses it.

        Raises:
            ValueError: ``reward_fn`` is not callable or its model's spaces do not match the env's.
        """
        check_reward_fn(reward_fn, *self.transition_spaces())
        self._reward_fn = CheckedRewardFn(reward_fn)

    def transition_spaces(self) -> tuple[gym.Space, gym.Space]:
        """(observation space, action space) of one transition: the spaces a reward model must be built for."""
        return self.observation_space, self.action_space  # type: ignore[attr-defined]
