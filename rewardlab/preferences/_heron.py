"""HERON: hierarchical preferences from a ranking of reward factors (Bukharin et al.).

Each segment σ reports K reward factors z_t ∈ R^K per step (``FragmentPairs.factors``,
collected from the env's ``info["reward_factors"]``); the comparator uses their segment sums
Z = Σ_t z_t. Factors are ranked by importance, each with a sign s_i (+1: higher is better)
and a margin δ_i = σ_i · std(Z_i) (std over the 2B segments of the batch, or given).
Going down the ranking, at level i:

    s_i Z_i(σ¹) > s_i Z_i(σ²) + δ_i  →  σ¹ ≻ σ²;   s_i Z_i(σ²) > s_i Z_i(σ¹) + δ_i  →  σ² ≻ σ¹;

otherwise the pair goes to the next level. Pairs undecided at every level are dropped
(label NaN). The reward r_φ is then trained with the ordinary Bradley–Terry loss on the
decided pairs and the agent is trained on r_φ (the public code's use of r_φ only as a
value target is a bug and is not copied).

The comparator is pure JAX over batched factor arrays (:func:`heron_decisions`);
:class:`HeronTeacher` is the host-side ``Teacher`` that plugs in wherever a teacher does
(``label``, ``train_pbrl``). :func:`factor_combination` is the stage of the baselines that
decide on a fixed linear combination of the factors instead (the factor sum, or a
hand-tuned weighting).

References:
    Bukharin, Li, Yu, Zhang, Chen, Zuo, Zhao, "Deep Reinforcement Learning from
    Hierarchical Preference Design" / "Deep RL from Hierarchical Weak Preference
    Feedback", 2023 (arXiv:2309.02632).
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rewardlab._types import Array, FragmentPairs
from rewardlab.preferences._bradley_terry import check_fragment_pairs
from rewardlab.preferences._teachers import TeacherStage, TeacherState

HERON_SIGMAS: dict[str, tuple[float, ...]] = {
    "Pendulum-v1": (0.1, 0.1, 0.1),
    "MountainCarContinuous-v0": (0.1, 0.1),
    "HalfCheetah-v5": (0.5, 0.1),
}
"""σ_i of HERON's margins per environment, in the env's FactorSpec order (HalfCheetah from the paper's settings)."""


class HeronDecision(NamedTuple):
    """HERON's answers on B pairs."""

    labels: Array  # [B] float32: 1 σ¹ preferred, 0 σ² preferred (0.5 where undecided)
    decided: Array  # [B] bool: some level decided the pair
    level: Array  # [B] int32 rank position of the deciding level (K where undecided)


def heron_compare(
    factors_1: jax.Array, factors_2: jax.Array, signs: jax.Array, importance: jax.Array, margins: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """HERON's decision on one pair of segment-level factor vectors.

    Args:
        factors_1: ``[K]`` Z(σ¹).
        factors_2: ``[K]`` Z(σ²).
        signs: ``[K]`` +1 (higher is better) or −1.
        importance: ``[K]`` int factor indices, most important first.
        margins: ``[K]`` δ_i ≥ 0 per factor (indexed like the factors, not by rank).

    Returns:
        ``(label, decided, level)``: label 1/0 (0.5 when undecided), whether decided, the deciding rank.

    Example:
        >>> import jax.numpy as jnp
        >>> signs, order, margins = jnp.array([1.0, -1.0]), jnp.array([0, 1]), jnp.array([0.5, 0.0])
        >>> # level 0 within its margin (1.2 vs 1.0), level 1: σ¹ has the lower cost
        >>> [float(x) for x in heron_compare(jnp.array([1.2, 3.0]), jnp.array([1.0, 4.0]), signs, order, margins)]
        [1.0, 1.0, 1.0]
    """
    difference = (jnp.asarray(signs) * (jnp.asarray(factors_1) - jnp.asarray(factors_2)))[importance]
    margins = jnp.asarray(margins)[importance]
    better = difference > margins
    worse = difference < -margins
    settled = better | worse
    num_levels = difference.shape[0]
    level = jnp.where(jnp.any(settled), jnp.argmax(settled), num_levels).astype(jnp.int32)
    decided = level < num_levels
    label = jnp.where(decided, better[jnp.minimum(level, num_levels - 1)].astype(jnp.float32), 0.5)
    return label, decided, level


def heron_margins(segment_factors: jax.Array, sigmas: jax.Array) -> jax.Array:
    """δ_i = σ_i · std(Z_i) over segments: ``[N, K], [K] -> [K]`` (population std).

    Example:
        >>> import jax.numpy as jnp
        >>> heron_margins(jnp.array([[0.0, 1.0], [2.0, 1.0]]), jnp.array([0.5, 1.0])).tolist()
        [0.5, 0.0]
    """
    return jnp.asarray(sigmas) * jnp.std(jnp.asarray(segment_factors), axis=0)


def heron_decisions(
    factors: jax.Array,
    signs: jax.Array,
    importance: jax.Array,
    sigmas: jax.Array,
    factor_std: jax.Array | None = None,
) -> HeronDecision:
    """HERON's decisions on a batch of pairs (pure JAX; jit/vmap freely).

    Args:
        factors: ``[B, 2, L, K]`` per-step factors (summed over L) or ``[B, 2, K]`` segment sums.
        signs: ``[K]`` +1/−1.
        importance: ``[K]`` int ranking, most important first.
        sigmas: ``[K]`` σ_i of the margins δ_i = σ_i·std(Z_i).
        factor_std: ``[K]`` std of Z_i to use (e.g. over a buffer); None: over the batch's 2B segments.

    Returns:
        :class:`HeronDecision`.

    Example:
        >>> import jax.numpy as jnp
        >>> z = jnp.array([[[3.0, 0.0], [1.0, 0.0]],     # level 0 decides: σ¹ (3 > 1)
        ...                [[1.0, 0.0], [1.0, 2.0]],     # level 0 tied, level 1 (lower better): σ¹
        ...                [[1.0, 1.0], [1.0, 1.0]]])    # identical: dropped
        >>> d = heron_decisions(z, jnp.array([1.0, -1.0]), jnp.array([0, 1]), jnp.zeros(2))
        >>> d.labels.tolist(), d.decided.tolist()
        ([1.0, 1.0, 0.5], [True, True, False])
    """
    factors = jnp.asarray(factors, jnp.float32)
    segment = jnp.sum(factors, axis=2) if factors.ndim == 4 else factors  # [B, 2, K]
    num_factors = segment.shape[-1]
    std = (
        jnp.std(jnp.reshape(segment, (-1, num_factors)), axis=0)
        if factor_std is None
        else jnp.asarray(factor_std, jnp.float32)
    )
    margins = jnp.asarray(sigmas, jnp.float32) * std
    labels, decided, level = jax.vmap(heron_compare, in_axes=(0, 0, None, None, None))(
        segment[:, 0], segment[:, 1], jnp.asarray(signs, jnp.float32), jnp.asarray(importance, jnp.int32), margins
    )
    return HeronDecision(labels, decided, level)


def _check_spec_vectors(num_factors: int, signs: tuple, importance: tuple, sigmas: tuple) -> None:
    if len(signs) != num_factors or any(s not in (-1, 1) for s in signs):
        raise ValueError(f"signs: expected {num_factors} values in {{-1, +1}}, got {signs}")
    if sorted(importance) != list(range(num_factors)):
        raise ValueError(f"importance: expected a permutation of 0..{num_factors - 1}, got {importance}")
    if len(sigmas) != num_factors or any(not (np.isfinite(s) and s >= 0) for s in sigmas):
        raise ValueError(f"sigmas: expected {num_factors} finite values >= 0, got {sigmas}")


_heron_jit = jax.jit(lambda *arrays: heron_decisions(*arrays))  # a lambda: no second copy of the doctest


@dataclasses.dataclass(frozen=True)
class HeronTeacher:
    """The HERON comparator as a ``Teacher``: labels 1/0 on decided pairs, NaN on undecided ones.

    Reads ``pairs.factors`` (``[B, 2, L, K]``; the online loop stores ``info["reward_factors"]``).
    Signs and ranking come from ``spec`` (an env's ``FactorSpec``) unless given.

    Attributes:
        spec: the env's ``rewardlab_envs.FactorSpec`` (or None with ``signs`` and ``importance``).
        sigmas: ``[K]`` σ_i of the margins, in factor order; None: 0.1 for every factor.
        signs: ``[K]`` overrides ``spec.signs``.
        importance: ``[K]`` overrides ``spec.importance``.
        factor_std: ``[K]`` fixed std of the segment sums; None: the queried batch's std.

    Raises:
        ValueError: inconsistent lengths, bad signs/ranking/σ, or pairs without factors.

    Example:
        >>> import numpy as np
        >>> from rewardlab.preferences import synthetic_pairs
        >>> pairs = synthetic_pairs(np.zeros((2, 2)), length=1)
        >>> pairs = pairs._replace(factors=np.array([[[[2.0, 5.0]], [[1.0, 0.0]]], [[[1.0, 1.0]], [[1.0, 1.0]]]]))
        >>> teacher = HeronTeacher(signs=(1, -1), importance=(0, 1), sigmas=(0.0, 0.0))
        >>> teacher(pairs, np.random.default_rng(0))
        array([ 1., nan], dtype=float32)
    """

    spec: Any = None
    sigmas: tuple[float, ...] | None = None
    signs: tuple[int, ...] | None = None
    importance: tuple[int, ...] | None = None
    factor_std: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        signs = self.signs if self.signs is not None else (None if self.spec is None else self.spec.signs)
        importance = (
            self.importance if self.importance is not None else (None if self.spec is None else self.spec.importance)
        )
        if signs is None or importance is None:
            raise ValueError("spec: expected a FactorSpec, or both signs and importance, got neither")
        signs, importance = tuple(int(s) for s in signs), tuple(int(i) for i in importance)
        sigmas = tuple(float(s) for s in (self.sigmas if self.sigmas is not None else (0.1,) * len(signs)))
        _check_spec_vectors(len(signs), signs, importance, sigmas)
        if self.factor_std is not None and len(self.factor_std) != len(signs):
            raise ValueError(f"factor_std: expected {len(signs)} values or None, got {self.factor_std}")
        object.__setattr__(self, "signs", signs)
        object.__setattr__(self, "importance", importance)
        object.__setattr__(self, "sigmas", sigmas)

    def decisions(self, pairs: FragmentPairs) -> HeronDecision:
        """The comparator's raw decisions on ``pairs`` (host numpy arrays)."""
        check_fragment_pairs(pairs)
        if pairs.factors is None:
            raise ValueError(
                "pairs.factors: HERON needs reward factors [B, 2, L, K]; make the env with rewardlab_envs.make(..., factors=True)"
            )
        assert self.signs is not None  # __post_init__ fills it (from spec when not given)
        num_factors = np.shape(pairs.factors)[-1]
        if np.ndim(pairs.factors) != 4 or num_factors != len(self.signs):
            raise ValueError(
                f"pairs.factors: expected shape [B, 2, L, {len(self.signs)}], got {np.shape(pairs.factors)}"
            )
        std = None if self.factor_std is None else np.asarray(self.factor_std, np.float32)
        result = _heron_jit(
            np.asarray(pairs.factors, np.float32),
            np.asarray(self.signs),
            np.asarray(self.importance),
            np.asarray(self.sigmas),
            std,
        )
        return HeronDecision(*(np.asarray(x) for x in result))

    def __call__(self, pairs: FragmentPairs, rng: np.random.Generator) -> np.ndarray:
        del rng
        decision = self.decisions(pairs)
        return np.where(decision.decided, decision.labels, np.nan).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class factor_combination(TeacherStage):  # noqa: N801
    """Decide on a fixed linear combination of the factors, R = Σ_t w·z_t (HERON's baselines).

    ``weights = signs`` is the plain factor sum; the env's ``FactorSpec.weights`` reproduce the
    true reward; any other vector is a hand-tuned combination.

    Attributes:
        weights: ``[K]`` w.

    Example:
        >>> import numpy as np
        >>> from rewardlab.preferences import compose, oracle, synthetic_pairs
        >>> pairs = synthetic_pairs(np.zeros((1, 2)), length=1)._replace(factors=np.array([[[[1.0, 3.0]], [[2.0, 0.0]]]]))
        >>> compose(factor_combination((1.0, -1.0)), oracle())(pairs, np.random.default_rng(0))  # −2 vs 2
        array([0.], dtype=float32)
    """

    weights: tuple[float, ...]

    def __post_init__(self) -> None:
        weights = tuple(float(w) for w in self.weights)
        if not weights or not all(np.isfinite(weights)):
            raise ValueError(f"weights: expected finite factor weights, got {self.weights}")
        object.__setattr__(self, "weights", weights)

    def update(self, pairs: FragmentPairs, state: TeacherState, rng: np.random.Generator) -> TeacherState:
        if state.labels is not None:
            raise ValueError("factor_combination: a return transform must come before the deciders in compose()")
        if pairs.factors is None or np.shape(pairs.factors)[-1] != len(self.weights):
            raise ValueError(
                f"pairs.factors: expected shape [B, 2, L, {len(self.weights)}], got {None if pairs.factors is None else np.shape(pairs.factors)}"
            )
        return state._replace(returns=np.asarray(pairs.factors, np.float64).sum(axis=2) @ np.asarray(self.weights))
