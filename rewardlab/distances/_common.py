"""Checks and standardisation shared by the exact and sample-based distances."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rewardlab._checks import (
    NonFiniteError,
    as_numeric_array,
    check_finite_array,
    check_int,
    check_numeric_dtype,
    check_real,
    is_concrete,
)
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


def check_discount(discount: Any, *, below_one: bool = False) -> Any:
    """``discount`` after checking that γ is a real number in [0, 1] ([0, 1) with ``below_one``).

    γ = 0 is allowed (a myopic comparison: C(R) = R − E[R(s, A, S')] for EPIC). A traced γ
    (inside ``jit``/``vmap``) is returned unchecked.

    Raises:
        TypeError: not a real number (a string, None, an array of several values).
        ValueError: NaN, ±inf, negative, above 1 (or equal to 1 with ``below_one``).
    """
    if not is_concrete(discount):
        return discount
    if isinstance(discount, (np.ndarray, jax.Array)) and np.ndim(discount) == 0:
        discount = np.asarray(discount)
    check_real("discount", discount, low=0.0, high=1.0, high_open=below_one)
    return discount


def check_table(name: str, table: Array) -> Array:
    """A tabular reward (or weight) array: numeric and, outside ``jit``, finite.

    Raises:
        TypeError: a string, object or complex array (names ``name``).
        rewardlab.NonFiniteError: NaN or ±inf entries (names ``name``).
    """
    if not is_concrete(table):
        return table
    array = np.asarray(table) if isinstance(table, jax.Array) else as_numeric_array(name, table)
    check_numeric_dtype(name, array)
    check_finite_array(name, array)
    if array.dtype.itemsize > 4 and not jax.config.read("jax_enable_x64") and array.size:
        peak = float(np.max(np.abs(array)))
        if peak > float(np.finfo(np.float32).max):
            raise ValueError(f"{name}: expected values that fit float32 (|x| ≤ 3.4e38), got a maximum |x| of {peak:g}")
    return table


def unit_scale(values: jax.Array) -> jax.Array:
    """``values · 2^−k`` with 2^(k−1) ≤ max |x| < 2^k: max |x| in [0.5, 1), exactly (a power of two).

    The distances are invariant to positive scaling; computing them on rewards of unit size
    keeps their sums and squares from overflowing float32 for rewards near its range.
    Traceable; zeros stay zeros.
    """
    peak = jnp.max(jnp.abs(values))
    _, exponent = jnp.frexp(jnp.where(peak > 0, peak, 1.0))
    return jnp.ldexp(values, -exponent)


def check_weights(name: str, weights: Array, shape: tuple[int, ...]) -> jax.Array:
    """Non-negative, finite weights of ``shape`` with a positive sum (not normalised)."""
    if not is_concrete(weights):
        return jnp.asarray(weights)
    array = np.asarray(weights) if isinstance(weights, jax.Array) else as_numeric_array(name, weights)
    if array.shape != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {array.shape}")
    check_numeric_dtype(name, array)
    check_finite_array(name, array)
    if (array < 0).any():
        raise ValueError(f"{name}: expected non-negative weights, got a minimum of {array.min()}")
    if not array.sum() > 0:
        raise ValueError(f"{name}: expected weights with a positive sum, got all zeros")
    return jnp.asarray(array)


def check_distribution(name: str, dist: Array | None, size: int) -> jax.Array:
    """``dist`` [size] normalised to sum 1; uniform when None.

    ``dist`` holds non-negative weights (probabilities, or counts: they are divided by their
    sum). Outside ``jit`` the values are checked.

    Raises:
        ValueError: ``dist`` is not of shape ``(size,)``, holds a negative entry, NaN or ±inf
            (``rewardlab.NonFiniteError``), or sums to 0 (the message names the argument ``name``).
        TypeError: a non-numeric array.
    """
    if dist is None:
        return jnp.full((size,), 1.0 / size)
    dist = check_weights(name, dist, (size,))
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
    for field in ("obs", "acts", "next_obs", "dones"):
        for leaf in jax.tree.leaves(getattr(transitions, field)):
            array = as_numeric_array(f"transitions.{field}", leaf)
            check_finite_array(f"transitions.{field}", array)
    return size


def check_sample_settings(discount: Any, seed: Any, confidence: Any, *, below_one: bool = False, **counts: Any) -> None:
    """The settings every sample-based distance shares: γ, the base seed, the confidence level, counts >= 1.

    Raises:
        TypeError: a setting of the wrong type (a float count, a string γ).
        ValueError: γ outside [0, 1] ([0, 1) with ``below_one``), ``confidence`` outside
            (0, 1), a count below 1, a negative seed.
    """
    check_discount(discount, below_one=below_one)
    check_int("seed", seed, low=0)
    check_real("confidence", confidence, low=0.0, high=1.0, low_open=True, high_open=True)
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name}: expected a positive integer, got {value!r}")


def check_canonical(name: str, canonical: Any) -> None:
    """Raise when a reward's canonicalisation on the coverage data is not finite (it would make the distance NaN).

    Raises:
        rewardlab.NonFiniteError: names the reward argument (``reward_a`` or ``reward_b``).
    """
    values = np.asarray(canonical)
    if not np.isfinite(values).all():
        bad = int(np.count_nonzero(~np.isfinite(values)))
        raise NonFiniteError(
            f"{name}: expected finite rewards on the coverage transitions, got {bad} NaN or infinite canonical "
            f"value(s) of {values.size}; check the reward for NaN/inf outputs"
        )


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
