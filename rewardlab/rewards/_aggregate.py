"""Ensemble aggregation: E member rewards ``[E, N]`` into one reward per transition ``[N]``.

The one definition of the combinations, used on traced JAX arrays (the jitted reward, the
pure function that distances and shaping take) and on NumPy arrays (the host forward pass of
small batches). With r_e the reward of member e, over the E members (population statistics):

* ``"mean"``:                 (1/E) Σ_e r_e
* ``"min"``:                  min_e r_e (the worst case)
* ``"mean_minus_std"``:       mean − c·std
* ``"uncertainty_weighted"``: mean − c·var

with c = ``coefficient``. The last three are the conservative rewards of Coste et al.

References:
    Coste et al., "Reward Model Ensembles Help Mitigate Overoptimization", ICLR 2024.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

ENSEMBLE_AGGREGATES = ("mean", "min", "mean_minus_std", "uncertainty_weighted")
"""How ``aggregate_ensemble`` combines members: mean, min, mean − c·std, mean − c·variance."""


def check_aggregate(aggregate: Any, coefficient: Any) -> float:
    """Validate an aggregation's options; returns ``coefficient`` as a float.

    Raises:
        ValueError: ``aggregate`` is not one of ``ENSEMBLE_AGGREGATES`` or ``coefficient`` is
            not a finite number (the message names the argument).
    """
    if aggregate not in ENSEMBLE_AGGREGATES:
        raise ValueError(f"aggregate: expected one of {ENSEMBLE_AGGREGATES}, got {aggregate!r}")
    if (
        isinstance(coefficient, bool)
        or not isinstance(coefficient, (int, float, np.integer, np.floating))
        or not np.isfinite(coefficient)
    ):
        raise ValueError(f"coefficient: expected a finite float, got {coefficient!r}")
    return float(coefficient)


def _combine(xp: Any, member_rewards: Any, aggregate: str, coefficient: Any) -> Any:
    # ``xp`` is jax.numpy or numpy: the same operations in the same order on either.
    if aggregate == "min":
        return xp.min(member_rewards, axis=0)
    mean = xp.mean(member_rewards, axis=0)
    if aggregate == "mean":
        return mean
    spread = xp.std(member_rewards, axis=0) if aggregate == "mean_minus_std" else xp.var(member_rewards, axis=0)
    return mean - coefficient * spread


def aggregate_ensemble(member_rewards: Any, aggregate: str = "mean", coefficient: float = 1.0) -> jax.Array:
    """Combine ``[E, N]`` member rewards into ``[N]`` (see the module docstring); pure, traceable.

    Args:
        member_rewards: ``[E, N]`` rewards of E members on N transitions.
        aggregate: one of ``ENSEMBLE_AGGREGATES``.
        coefficient: c of ``"mean_minus_std"`` and ``"uncertainty_weighted"``.

    Returns:
        ``[N]`` rewards.

    Raises:
        ValueError: unknown ``aggregate``, a non-finite ``coefficient`` or ``member_rewards``
            not of rank 2.

    Example:
        >>> members = jnp.array([[1.0, 0.0], [3.0, 0.0]])
        >>> [aggregate_ensemble(members, name, 0.5).tolist() for name in ENSEMBLE_AGGREGATES]
        [[2.0, 0.0], [1.0, 0.0], [1.5, 0.0], [1.5, 0.0]]
    """
    coefficient = check_aggregate(aggregate, coefficient)
    member_rewards = jnp.asarray(member_rewards)
    if member_rewards.ndim != 2:
        raise ValueError(f"member_rewards: expected shape [E, N], got {member_rewards.shape}")
    return _combine(jnp, member_rewards, aggregate, coefficient)


def aggregate_ensemble_host(member_rewards: np.ndarray, aggregate: str, coefficient: float) -> np.ndarray:
    """:func:`aggregate_ensemble` in NumPy for the host hot path: float32 ``[E, n]`` in, float32 ``[n]`` out.

    The options are not validated here (the caller did once). One member is its own
    aggregate (every combination above returns r_0 for E = 1): its row is returned as is.
    """
    if member_rewards.shape[0] == 1:
        return member_rewards[0]
    return np.asarray(_combine(np, member_rewards, aggregate, np.float32(coefficient)), np.float32)
