"""Checks and standardisation shared by the exact and sample-based distances."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rewardlab._types import Transitions, batch_size

Array = Any

ROUNDOFF_ULPS = 4
"""Units in the last place allowed per rounded term of a canonicalisation (``roundoff_tolerance``)."""
_NORM_NAMES = {1: 1, 2: 2, "inf": jnp.inf, float("inf"): jnp.inf}


def norm_order(name: str, value: Any) -> float:
    """The order p of an L_p norm named 1, 2 or ``"inf"``.

    Raises:
        ValueError: any other value (the message names the argument ``name``).
    """
    if isinstance(value, bool) or value not in _NORM_NAMES:
        raise ValueError(f"{name}: expected 1, 2 or 'inf' (L1, L2, L∞), got {value!r}")
    return _NORM_NAMES[value]


def check_distribution(name: str, dist: Array | None, size: int) -> jax.Array:
    """``dist`` [size] normalised to sum 1; uniform when None.

    Raises:
        ValueError: ``dist`` is not of shape ``(size,)`` (the message names the argument ``name``).
    """
    if dist is None:
        return jnp.full((size,), 1.0 / size)
    dist = jnp.asarray(dist)
    if dist.shape != (size,):
        raise ValueError(f"{name}: expected shape ({size},), got {dist.shape}")
    return dist / jnp.sum(dist)


def check_transitions(transitions: Transitions) -> int:
    """The number of coverage transitions (at least 2) in ``transitions``.

    Raises:
        ValueError: ``transitions`` is not a ``rewardlab.Transitions`` or holds fewer than 2.
    """
    if not isinstance(transitions, Transitions):
        raise ValueError(
            f"transitions: expected rewardlab.Transitions (the coverage data), got {type(transitions).__name__}"
        )
    size = batch_size((transitions.obs, transitions.acts, transitions.next_obs, transitions.dones))
    if size < 2:
        raise ValueError(f"transitions: expected at least 2 coverage transitions, got {size}")
    return size


def flat_norm(x: jax.Array, order: float) -> jax.Array:
    """‖x‖_p over every entry of ``x``."""
    return jnp.linalg.norm(jnp.ravel(x), ord=order)


def roundoff_tolerance(canonical: jax.Array, reward: jax.Array) -> jax.Array:
    """The largest |c(R)| that float round-off alone can leave when R is trivial (c(R) = 0 exactly).

    A canonicalisation adds four terms, each a weighted mean of at most n = ``reward.size``
    entries of R, and every entry is at most max|R|; summed pairwise, each mean rounds to within
    ⌈log₂ n⌉ ulps of max|R|. The tolerance is that bound with ``ROUNDOFF_ULPS`` ulps per term:

        tol = ROUNDOFF_ULPS · ε · max|R| · (4 + ⌈log₂ n⌉),

    ε the machine epsilon of the canonical reward's dtype. It is absolute in the scale of the
    input: a real reward hidden under a shaping term 10⁴ times larger (|c(R)| ≈ 10⁻⁴ max|R|) stays
    well above it in float32 (tol ≈ 5·10⁻⁶ max|R| for a 5-state, 2-action MDP).
    """
    eps = jnp.finfo(jnp.result_type(canonical, float)).eps
    size = max(int(jnp.size(reward)), 2)
    terms = 4 + int(np.ceil(np.log2(size)))
    return ROUNDOFF_ULPS * eps * terms * jnp.max(jnp.abs(reward)) + 1e-30


def snap_zero(canonical: jax.Array, reward: jax.Array) -> jax.Array:
    """c(R), set to exactly 0 where it is no larger than round-off (R trivial; ``roundoff_tolerance``)."""
    zero = jnp.max(jnp.abs(canonical)) <= roundoff_tolerance(canonical, reward)
    return jnp.where(zero, jnp.zeros_like(canonical), canonical)


def standardize(canonical: jax.Array, order: float, reward: jax.Array) -> jax.Array:
    """s(R) = c(R)/‖c(R)‖_p, and 0 when c(R) = 0 up to round-off (R is trivial)."""
    norm = flat_norm(canonical, order)
    zero = jnp.max(jnp.abs(canonical)) <= roundoff_tolerance(canonical, reward)
    return jnp.where(zero, jnp.zeros_like(canonical), canonical / jnp.where(zero, 1.0, norm))
