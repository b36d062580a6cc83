"""Query schedules: how many preference labels to ask for at each feedback round."""

from __future__ import annotations

import numpy as np

QUERY_SCHEDULES = ("constant", "decaying", "front_loaded")
"""How ``labels_per_round`` spreads a label budget over the feedback rounds."""


def labels_per_round(labels: int, num_rounds: int, schedule: str = "constant") -> np.ndarray:
    """Split a label budget over feedback rounds.

    ``constant`` spreads labels evenly; ``decaying`` asks for more early, with weights
    ∝ 1/√(k+1) (Christiano et al. 2017 decay the query rate as ≈ 1/T); ``front_loaded``
    asks for half the budget in the first round and spreads the rest evenly. The
    counts are integers summing to exactly ``labels``.

    Args:
        labels: label budget, ≥ 0.
        num_rounds: number of feedback rounds, ≥ 1.
        schedule: one of ``QUERY_SCHEDULES``.

    Returns:
        ``int64 [num_rounds]`` labels to ask for at each round.

    Raises:
        ValueError: bad budget, round count or schedule name.

    Example:
        >>> labels_per_round(10, 4).tolist()
        [3, 3, 2, 2]
        >>> int(labels_per_round(200, 7, "decaying").sum())
        200
    """
    if int(labels) != labels or labels < 0:
        raise ValueError(f"labels: expected an integer >= 0, got {labels!r}")
    if int(num_rounds) != num_rounds or num_rounds < 1:
        raise ValueError(f"num_rounds: expected an integer >= 1, got {num_rounds!r}")
    if schedule == "constant":
        weights = np.ones(num_rounds)
    elif schedule == "decaying":
        weights = 1.0 / np.sqrt(np.arange(1, num_rounds + 1))
    elif schedule == "front_loaded":
        weights = np.full(num_rounds, 1.0 / max(num_rounds - 1, 1))
        weights[0] = 1.0
    else:
        raise ValueError(f"schedule: expected one of {QUERY_SCHEDULES}, got {schedule!r}")
    ideal = labels * weights / weights.sum()
    counts = np.floor(ideal).astype(np.int64)
    # Largest-remainder rounding keeps the exact total; ties go to earlier rounds.
    remainder = int(labels - counts.sum())
    order = np.argsort(-(ideal - counts), kind="stable")
    counts[order[:remainder]] += 1
    return counts
