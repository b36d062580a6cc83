"""Preference sources for ICPL: who picks the best-behaved candidate of an iteration."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class PreferenceSource(Protocol):
    """Ranks the trained candidates of one iteration by their behaviour.

    ``rank`` receives one dict per trained candidate (its ``index``, ``code`` and the trainer's
    ``behaviour``, ``fitness``, ``returns_along``) and returns the positions in that list,
    most preferred first.
    """

    def rank(self, candidates: Sequence[dict[str, Any]]) -> list[int]: ...


class TrueReturnTeacher:
    """A simulated teacher: prefers the candidate whose policy earns the higher true return.

    Args:
        noise: standard deviation of Gaussian noise on each return before ranking (0: exact).
        seed: seed of that noise.

    Example:
        >>> TrueReturnTeacher().rank([{"fitness": -800.0}, {"fitness": -150.0}, {"fitness": -400.0}])
        [1, 2, 0]
    """

    def __init__(self, noise: float = 0.0, seed: int = 0) -> None:
        if not noise >= 0:
            raise ValueError(f"noise: expected a standard deviation >= 0, got {noise!r}")
        self.noise = float(noise)
        self.rng = np.random.default_rng(seed)

    def rank(self, candidates: Sequence[dict[str, Any]]) -> list[int]:
        """Positions by true return, highest first (ties: the earlier candidate first)."""
        returns = np.array([float(candidate["fitness"]) for candidate in candidates])
        if self.noise:
            returns = returns + self.rng.normal(0.0, self.noise, len(returns))
        return [int(i) for i in np.argsort(-returns, kind="stable")]


def behaviour_summary(candidate: dict[str, Any]) -> str:
    """What a person is shown of one candidate's policy: an evaluation episode summarised in numbers.

    Example:
        >>> print(behaviour_summary({"index": 2, "behaviour": {"episode_length": 200, "obs_mean": [0.9, 0.0, 0.1],
        ...     "obs_std": [0.1, 0.3, 1.0]}}))
        candidate 2: episode of 200 steps; obs mean [0.9, 0.0, 0.1], std [0.1, 0.3, 1.0]
    """
    behaviour = candidate.get("behaviour") or {}
    return (
        f"candidate {candidate.get('index')}: episode of {behaviour.get('episode_length')} steps; "
        f"obs mean {behaviour.get('obs_mean')}, std {behaviour.get('obs_std')}"
    )


class TerminalPreference:
    """A person at the terminal picks the best-behaved candidate.

    Each candidate's evaluation episode is shown as its observation statistics and, when
    ``render`` is given, as whatever ``render(candidate)`` returns (a path to a video or frames
    the caller wrote); the person types the position of the preferred one.

    Args:
        ask: reads one answer (default ``input``).
        show: prints a line (default ``print``).
        render: optional ``candidate -> str`` shown under its summary.
    """

    def __init__(
        self,
        ask: Callable[[str], str] = input,
        show: Callable[[str], None] = print,
        render: Callable[[dict[str, Any]], str] | None = None,
    ) -> None:
        self.ask = ask
        self.show = show
        self.render = render

    def rank(self, candidates: Sequence[dict[str, Any]]) -> list[int]:
        """The chosen position first, the others in their order."""
        for position, candidate in enumerate(candidates):
            self.show(f"[{position}] {behaviour_summary(candidate)}")
            if self.render is not None:
                self.show(f"    {self.render(candidate)}")
        while True:
            answer = self.ask(f"preferred candidate (0..{len(candidates) - 1}): ").strip()
            if answer.isdigit() and int(answer) < len(candidates):
                chosen = int(answer)
                return [chosen] + [i for i in range(len(candidates)) if i != chosen]
            self.show(f"expected a number from 0 to {len(candidates) - 1}, got {answer!r}")
