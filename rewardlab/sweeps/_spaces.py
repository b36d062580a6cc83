"""Search spaces of random search (Bergstra & Bengio 2012): distributions of argument values and joint samples.

A :class:`RandomSearch` draws ``num_samples`` joint samples of the fields in its space with
one seed, so a sweep that crosses them with its grid is the same sweep on every rerun.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class Uniform:
    """Uniform on [low, high)."""

    low: float
    high: float

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.low, self.high))


@dataclasses.dataclass(frozen=True)
class LogUniform:
    """log-uniform on [low, high): exp(U(log low, log high)); both bounds > 0."""

    low: float
    high: float

    def sample(self, rng: np.random.Generator) -> float:
        return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))


@dataclasses.dataclass(frozen=True)
class IntUniform:
    """Uniform on the integers low, ..., high (inclusive)."""

    low: int
    high: int

    def sample(self, rng: np.random.Generator) -> int:
        return int(rng.integers(self.low, self.high + 1))


@dataclasses.dataclass(frozen=True)
class Choice:
    """Uniform over ``values``."""

    values: tuple[Any, ...]

    def sample(self, rng: np.random.Generator) -> Any:
        return self.values[int(rng.integers(len(self.values)))]


Distribution = Uniform | LogUniform | IntUniform | Choice


def uniform(low: float, high: float) -> Uniform:
    """Uniform distribution on [low, high) for :func:`random_search`."""
    if not high > low:
        raise ValueError(f"uniform: expected low < high, got low={low!r}, high={high!r}")
    return Uniform(float(low), float(high))


def loguniform(low: float, high: float) -> LogUniform:
    """Log-uniform distribution on [low, high) for :func:`random_search` (learning rates, coefficients)."""
    if not 0 < low < high:
        raise ValueError(f"loguniform: expected 0 < low < high, got low={low!r}, high={high!r}")
    return LogUniform(float(low), float(high))


def randint(low: int, high: int) -> IntUniform:
    """Uniform integers low..high inclusive for :func:`random_search`."""
    if not int(low) <= int(high):
        raise ValueError(f"randint: expected low <= high, got low={low!r}, high={high!r}")
    return IntUniform(int(low), int(high))


def choice(values: Sequence[Any]) -> Choice:
    """Uniform choice among ``values`` for :func:`random_search`."""
    values = tuple(values)
    if not values:
        raise ValueError("choice: expected at least one value, got none")
    return Choice(values)


@dataclasses.dataclass(frozen=True)
class RandomSearch:
    """``num_samples`` joint samples of the fields in ``space``, drawn with ``seed``."""

    space: Mapping[str, Distribution]
    num_samples: int
    seed: int = 0

    def samples(self) -> list[dict[str, Any]]:
        rng = np.random.default_rng(self.seed)
        return [{name: dist.sample(rng) for name, dist in self.space.items()} for _ in range(self.num_samples)]


def random_search(space: Mapping[str, Distribution], num_samples: int, seed: int = 0) -> RandomSearch:
    """Random search over ``space`` (field name -> distribution), crossed with the sweep's grid.

    Example:
        >>> search = random_search({"learning_rate": loguniform(1e-4, 1e-2)}, num_samples=3)
        >>> [round(s["learning_rate"], 5) for s in search.samples()]
        [0.00188, 0.00035, 0.00012]
    """
    if not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples: expected an integer >= 1, got {num_samples!r}")
    for name, dist in space.items():
        if not hasattr(dist, "sample"):
            raise ValueError(
                f"space.{name}: expected a distribution (uniform, loguniform, randint, choice), got {dist!r}"
            )
    return RandomSearch(dict(space), num_samples, int(seed))
