"""Checks and standardisation shared by the exact and sample-based distances."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from rewardlab._types import Transitions, batch_size

Array = Any

ZERO_TOLERANCE = 1e-4  # relative to max |R|: float32 round-off of a canonicalisation stays well below
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


def snap_zero(canonical: jax.Array, reward: jax.Array) -> jax.Array:
    """c(R) with round-off residue of a trivial reward (c(R) ≈ 0 relative to R) set to exactly 0."""
    zero = jnp.max(jnp.abs(canonical)) <= ZERO_TOLERANCE * jnp.max(jnp.abs(reward)) + 1e-30
    return jnp.where(zero, jnp.zeros_like(canonical), canonical)


def standardize(canonical: jax.Array, order: float, reward: jax.Array) -> jax.Array:
    """s(R) = c(R)/‖c(R)‖_p, and 0 when c(R) = 0 up to round-off (R is trivial)."""
    norm = flat_norm(canonical, order)
    zero = jnp.max(jnp.abs(canonical)) <= ZERO_TOLERANCE * jnp.max(jnp.abs(reward)) + 1e-30
    return jnp.where(zero, jnp.zeros_like(canonical), canonical / jnp.where(zero, 1.0, norm))
