"""``FunctionReward``: a parameter-free pure JAX reward function as a reward model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


class FunctionReward:
    """A pure JAX reward ``fn(obs, acts, next_obs, dones)`` as a ``RewardModelLike`` with no parameters.

    ``apply(params, ...)`` ignores ``params`` (``()``, see ``init``) and returns the
    function's rewards as ``[E, N]`` member rewards, so ``as_reward_fn(FunctionReward(fn))``
    is a ``RewardFn`` whose ``pure_fn()`` distances and shaping can trace. ``fn`` must be
    traceable (``jax.numpy`` operations on its inputs, no host callbacks).

    Args:
        fn: pure JAX ``(obs [N, ...], acts [N, ...], next_obs [N, ...], dones [N]) -> [N]``
            for ``ensemble_size=1``, or ``-> [E, N]`` member rewards for ``ensemble_size=E > 1``.
        ensemble_size: E.

    Raises:
        ValueError: ``fn`` is not callable or ``ensemble_size`` is not a positive integer;
            at call time, ``fn`` returns rewards of another shape.

    Example:
        >>> import numpy as np
        >>> from rewardlab.rewards import as_reward_fn
        >>> distance_to_goal = FunctionReward(lambda s, a, t, d: -jnp.abs(t[:, 0] - 1.0))
        >>> fn = as_reward_fn(distance_to_goal)
        >>> fn(np.zeros((2, 1)), np.zeros((2, 1)), np.array([[0.0], [1.5]]), np.zeros(2, bool)).tolist()
        [-1.0, -0.5]
    """

    def __init__(self, fn: Callable[[Any, Any, Any, Any], Any], ensemble_size: int = 1) -> None:
        if not callable(fn):
            raise ValueError(
                f"fn: expected a pure JAX function (obs, acts, next_obs, dones) -> [N], got {type(fn).__name__}"
            )
        if isinstance(ensemble_size, bool) or not isinstance(ensemble_size, (int, np.integer)) or ensemble_size < 1:
            raise ValueError(f"ensemble_size: expected an integer >= 1, got {ensemble_size!r}")
        self.fn = fn
        self.ensemble_size = int(ensemble_size)

    def __repr__(self) -> str:
        name = getattr(self.fn, "__qualname__", type(self.fn).__name__)
        return f"FunctionReward({name}, ensemble_size={self.ensemble_size})"

    def init(self, key: Any = None) -> tuple:
        """The (empty) parameters ``()``."""
        return ()

    def apply(self, params: Any, obs: Any, acts: Any, next_obs: Any, dones: Any) -> jax.Array:
        """Member rewards ``[E, N]`` of ``fn`` (``params`` is ignored)."""
        del params
        rewards = jnp.asarray(self.fn(obs, acts, next_obs, dones))
        if self.ensemble_size == 1:
            if rewards.ndim != 1:
                raise ValueError(f"fn: expected rewards of shape [N], got {rewards.shape}")
            return rewards[None]
        if rewards.ndim != 2 or rewards.shape[0] != self.ensemble_size:
            raise ValueError(
                f"fn: expected member rewards of shape [ensemble_size, N] = [{self.ensemble_size}, N], got {rewards.shape}"
            )
        return rewards
