"""Data containers shared by every part of rewardlab.

All containers are NamedTuples, hence JAX pytrees: they pass through ``jit``,
``vmap`` and ``jax.tree.map`` unchanged. Observations may be arrays or dicts of
arrays (``gymnasium.spaces.Dict``); every leaf carries the leading axes given in
the field comments. Arrays may be NumPy (host side) or JAX (device side).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np

Array = Any  # np.ndarray | jax.Array
Obs = Any  # Array, or a dict of Arrays for Dict observation spaces
# A pure JAX reward (obs [N, ...], acts [N, ...], next_obs [N, ...], dones [N]) -> jax.Array [N],
# traceable under jit/vmap: what ``RewardFn.pure_fn()`` of ``as_reward_fn``'s adapter returns.
PureReward = Callable[[Obs, Array, Obs, Array], Any]


class Transitions(NamedTuple):
    """A flat batch of N transitions (s, a, s') with how each one ended and the true reward.

    ``terminated`` and ``truncated`` stay apart, as gymnasium reports them: a TD or LSTD target
    stops at a terminated step (s' is terminal, nothing follows it) and bootstraps through a
    truncated one (a time limit cut the episode; s' still has a value). ``dones`` is their
    union, the episode end a ``RewardFn`` receives.
    """

    obs: Obs  # [N, *obs_shape] s_t
    acts: Array  # [N, *act_shape] a_t (int for Discrete)
    next_obs: Obs  # [N, *obs_shape] s_{t+1}; the terminal observation at episode ends
    terminated: Array  # [N] bool: s_{t+1} is terminal (the MDP ended after this step)
    truncated: Array  # [N] bool: the episode was cut after this step (time limit) with s_{t+1} not terminal
    rews: Array  # [N] float32 true environment reward r_t (NaN where unknown)

    @property
    def dones(self) -> Array:
        """``[N]`` bool: the episode ended after this step (terminated or truncated)."""
        return _either(self.terminated, self.truncated)


class Trajectory(NamedTuple):
    """One episode (or a chunk of one) of T steps."""

    obs: Obs  # [T + 1, *obs_shape] s_0 .. s_T
    acts: Array  # [T, *act_shape] a_0 .. a_{T-1}
    rews: Array  # [T] float32 true reward r_0 .. r_{T-1}
    terminated: bool  # s_T is terminal (not a time-limit truncation)


class FragmentPairs(NamedTuple):
    """B pairs of equal-length segments σ¹, σ² of L steps each; axis 1 picks the segment."""

    obs: Obs  # [B, 2, L, *obs_shape]
    acts: Array  # [B, 2, L, *act_shape]
    next_obs: Obs  # [B, 2, L, *obs_shape]
    dones: Array  # [B, 2, L] bool
    rews: Array  # [B, 2, L] float32 true reward (used by simulated teachers and metrics only)
    factors: Array | None = None  # [B, 2, L, K] named reward factors when the env reports them
    terminated: Array | None = None  # [B, 2, L] bool s' terminal (not a time limit); None: every done is terminal

    def terminal(self) -> Array:
        """``[B, 2, L]`` bool: s' is terminal; ``dones`` where ``terminated`` was not recorded."""
        return self.dones if self.terminated is None else self.terminated


class Preferences(NamedTuple):
    """Labelled fragment pairs: ``labels[b]`` = P(σ¹ ≻ σ²); 0.5 is a tie."""

    pairs: FragmentPairs  # B pairs
    labels: Array  # [B] float32 in [0, 1]


@runtime_checkable
class RewardFn(Protocol):
    """The one contract at the host boundary: a batched reward over N transitions.

    Everything that produces a reward (a learned network, a teacher, a shaped or
    composed reward) ends as a ``RewardFn``; wrappers never care where it came from. A pure
    JAX reward source is written as a :class:`RewardModelLike` and turned into a
    ``RewardFn`` by ``rewardlab.rewards.as_reward_fn``; that adapter also exposes the pure
    function behind it (``pure_fn()``: ``(obs, acts, next_obs, dones) -> jax.Array [N]``,
    traceable under ``jit``/``vmap``), which distances and shaping use in place of the host
    call. A ``RewardFn`` without ``pure_fn`` is called on the host.

    Called as ``fn(obs, acts, next_obs, dones)`` with

    * ``obs``: ``[N, *obs_shape]`` s_t (or a dict of such arrays),
    * ``acts``: ``[N, *act_shape]`` a_t,
    * ``next_obs``: ``[N, *obs_shape]`` s_{t+1},
    * ``dones``: ``[N]`` bool,

    it returns an ``np.ndarray`` of shape ``[N]``, dtype float32.
    """

    def __call__(self, obs: Obs, acts: Array, next_obs: Obs, dones: Array) -> np.ndarray: ...


@runtime_checkable
class RewardModelLike(Protocol):
    """A pure JAX reward source: the rewards of E ensemble members from explicit parameters.

    ``apply`` must be a pure function of its arguments (no state kept between calls, no host
    callbacks, no Python branching on array values), so that it traces under ``jit``,
    ``vmap`` and ``grad``; the parameters are any pytree of arrays (``()`` for a reward
    without any). Reward networks (``rewardlab.rewards.RewardModel``), the continuous regret
    model, tabular rewards and a plain function (``rewardlab.rewards.FunctionReward``) are
    reward models; ``rewardlab.rewards.as_reward_fn`` turns any of them into a ``RewardFn``.
    Models may offer other methods of the same signature (``advantage``, ``base_reward``)
    that ``as_reward_fn(..., use=...)`` picks instead of ``apply``.

    Attributes:
        ensemble_size: E, the number of members (1 for a single reward).

    ``apply(params, obs, acts, next_obs, dones)``:
        params: the model's parameters (a pytree).
        obs: ``[N, *obs_shape]`` s_t (or a dict of such arrays).
        acts: ``[N, *act_shape]`` a_t.
        next_obs: ``[N, *obs_shape]`` s_{t+1}.
        dones: ``[N]`` bool or float: the episode ended after the transition.
        Returns ``jax.Array [E, N]``: the reward of every member on every transition.
    """

    ensemble_size: int

    def apply(self, params: Any, obs: Obs, acts: Array, next_obs: Obs, dones: Array) -> Any: ...


def _either(a: Array, b: Array) -> Array:
    """a ∨ b elementwise: NumPy for host arrays, the arrays' own ``|`` for JAX ones (traceable)."""
    host = (np.ndarray, list, tuple, bool, np.bool_)
    if isinstance(a, host) and isinstance(b, host):
        return np.logical_or(a, b)
    return a | b


def batch_size(tree: Any) -> int:
    """Leading-axis length of a pytree of arrays (all leaves must agree)."""
    import jax

    leaves = jax.tree.leaves(tree)
    if not leaves:
        raise ValueError("batch_size: empty pytree, expected at least one array leaf")
    sizes = {np.shape(leaf)[0] if np.ndim(leaf) else None for leaf in leaves}
    if len(sizes) != 1 or None in sizes:
        raise ValueError(f"batch_size: leaves disagree on the leading axis, got sizes {sorted(map(str, sizes))}")
    size = sizes.pop()
    assert size is not None  # excluded above
    return size
