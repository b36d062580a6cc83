"""Static description of an environment's named reward factors."""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class FactorSpec:
    """Names, directions, importance ranking and recombination weights of K reward factors.

    An environment that reports reward factors z_t ∈ R^K (``info["reward_factors"]``)
    describes them with a ``FactorSpec``. ``signs[k] = +1`` means a higher z_k is
    better, ``-1`` lower is better; HERON (Bukharin et al., "Deep RL from Hierarchical
    Weak Preference Feedback") compares trajectories on s_k·z_k level by level in the
    order ``importance``. Where the env reward is an exact linear function of the
    factors, ``weights`` gives it: r_t = Σ_k weights[k]·z_k,t; otherwise it is None.

    The dataclass is frozen and holds tuples only, so it is hashable and can be a
    static argument of ``jax.jit``.

    Attributes:
        names: ``[K]`` factor names.
        signs: ``[K]`` +1 (higher is better) or -1 (lower is better).
        importance: ``[K]`` factor indices, most important first (a permutation of 0..K-1).
        weights: ``[K]`` recombination weights of the true reward, or None.

    Example:
        >>> spec = FactorSpec(names=("progress", "power"), signs=(1, -1), importance=(0, 1), weights=(1.0, -1.0))
        >>> spec.num_factors, spec.ranked_names
        (2, ('progress', 'power'))
        >>> float(spec.recombine(np.array([2.0, 0.5])))
        1.5
    """

    names: tuple[str, ...]  # [K]
    signs: tuple[int, ...]  # [K] +1 higher is better, -1 lower is better
    importance: tuple[int, ...]  # [K] factor indices, most important first
    weights: tuple[float, ...] | None = None  # [K] r = Σ_k w_k z_k, or None

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(str(n) for n in self.names))
        object.__setattr__(self, "signs", tuple(int(s) for s in self.signs))
        object.__setattr__(self, "importance", tuple(int(i) for i in self.importance))
        num = len(self.names)
        if num == 0:
            raise ValueError("names: expected at least one factor name, got an empty tuple")
        if len(set(self.names)) != num:
            raise ValueError(f"names: expected distinct names, got {self.names}")
        if len(self.signs) != num or any(s not in (-1, 1) for s in self.signs):
            raise ValueError(f"signs: expected {num} values in {{-1, +1}}, got {self.signs}")
        if sorted(self.importance) != list(range(num)):
            raise ValueError(f"importance: expected a permutation of 0..{num - 1}, got {self.importance}")
        if self.weights is not None:
            weights = tuple(float(w) for w in self.weights)
            if len(weights) != num or not all(np.isfinite(weights)):
                raise ValueError(f"weights: expected {num} finite values or None, got {self.weights}")
            object.__setattr__(self, "weights", weights)

    @property
    def num_factors(self) -> int:
        """K, the number of factors."""
        return len(self.names)

    @property
    def ranked_names(self) -> tuple[str, ...]:
        """Factor names in importance order, most important first."""
        return tuple(self.names[i] for i in self.importance)

    def signs_array(self) -> np.ndarray:
        """``float32 [K]`` signs."""
        return np.asarray(self.signs, dtype=np.float32)

    def weights_array(self) -> np.ndarray:
        """``float32 [K]`` recombination weights.

        Raises:
            ValueError: when the spec has no weights.
        """
        if self.weights is None:
            raise ValueError(f"weights: this FactorSpec ({self.names}) has no recombination weights")
        return np.asarray(self.weights, dtype=np.float32)

    def recombine(self, factors: np.ndarray) -> np.ndarray:
        """The true reward Σ_k w_k z_k from factors ``[..., K]`` (float64 sum).

        Raises:
            ValueError: wrong last axis, or no weights.
        """
        factors = np.asarray(factors)
        if factors.ndim == 0 or factors.shape[-1] != self.num_factors:
            raise ValueError(f"factors: expected shape [..., {self.num_factors}], got {factors.shape}")
        return factors.astype(np.float64) @ self.weights_array().astype(np.float64)
