"""Metrics of a learned reward on preference data.

* Preference accuracy: fraction of non-tied pairs where the ensemble-mean P̄(σ¹ ≻ σ²)
  is on the same side of 0.5 as the label.
* Expected calibration error (Naeini et al. 2015; Guo et al. 2017) with M equal-width bins
  B_m over [0, 1]: ECE = Σ_m (|B_m| / n) · |mean_{B_m}(y) − mean_{B_m}(p)|.
* Pearson correlation of the learned reward with the true reward, per transition and per
  segment (segment returns), the usual sanity check of Christiano et al.

The metrics of a reward model score pairs through a :class:`PairScorer` (the model, its
preference model and their jitted scoring), which a loop keeps so that it compiles once.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rewardlab._types import FragmentPairs, Preferences
from rewardlab.preferences._bradley_terry import check_preferences
from rewardlab.preferences._scoring import PairScorer


def _check_probability_labels(probabilities: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    probabilities = np.asarray(probabilities, np.float64)
    labels = np.asarray(labels, np.float64)
    if probabilities.ndim != 1:
        raise ValueError(f"probabilities: expected shape [B], got {probabilities.shape}")
    if labels.shape != probabilities.shape:
        raise ValueError(f"labels: expected shape {probabilities.shape} (as probabilities), got {labels.shape}")
    return probabilities, labels


def accuracy_from_probabilities(probabilities: Any, labels: Any) -> float:
    """Fraction of non-tied pairs (label ≠ 0.5) where (p > 0.5) == (label > 0.5); NaN if none.

    Example:
        >>> accuracy_from_probabilities([0.9, 0.2, 0.6, 0.7], [1.0, 0.0, 0.0, 0.5])
        0.6666666666666666
    """
    probabilities, labels = _check_probability_labels(probabilities, labels)
    decided = labels != 0.5
    if not decided.any():
        return float("nan")
    return float(np.mean((probabilities[decided] > 0.5) == (labels[decided] > 0.5)))


def expected_calibration_error(probabilities: Any, labels: Any, num_bins: int = 10) -> float:
    """ECE = Σ_m (|B_m|/n)·|mean_{B_m}(y) − mean_{B_m}(p)| over ``num_bins`` equal-width bins.

    Args:
        probabilities: ``[B]`` predicted P(σ¹ ≻ σ²).
        labels: ``[B]`` observed labels in [0, 1] (hard or soft).
        num_bins: M; the last bin includes 1.0.

    Returns:
        ECE in [0, 1]; NaN for an empty batch.

    Example:
        >>> expected_calibration_error([0.25, 0.25, 0.25, 0.25], [1.0, 0.0, 0.0, 0.0])
        0.0
        >>> expected_calibration_error([0.9, 0.9], [0.0, 0.0])
        0.9
    """
    probabilities, labels = _check_probability_labels(probabilities, labels)
    if not isinstance(num_bins, (int, np.integer)) or num_bins < 1:
        raise ValueError(f"num_bins: expected an integer >= 1, got {num_bins!r}")
    if probabilities.size == 0:
        return float("nan")
    bins = np.clip((probabilities * num_bins).astype(np.int64), 0, num_bins - 1)
    counts = np.bincount(bins, minlength=num_bins)
    gap = np.bincount(bins, weights=labels - probabilities, minlength=num_bins)
    return float(np.sum(np.abs(gap)) / probabilities.size) if counts.sum() else float("nan")


def pearson_correlation(x: Any, y: Any) -> float:
    """Pearson's ρ of two equal-length vectors; NaN when either is constant or shorter than 2.

    Example:
        >>> pearson_correlation([1.0, 2.0, 3.0], [2.0, 4.0, 7.0])
        0.9933992677987828
    """
    x = np.asarray(x, np.float64).ravel()
    y = np.asarray(y, np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"y: expected {x.size} values (as x), got {y.size}")
    if x.size < 2:
        return float("nan")
    x = x - x.mean()
    y = y - y.mean()
    denominator = np.sqrt(np.sum(x * x) * np.sum(y * y))
    return float(np.sum(x * y) / denominator) if denominator > 0 else float("nan")


def reward_correlation(scorer: PairScorer, params: Any, pairs: FragmentPairs) -> dict[str, float]:
    """Pearson ρ of learned vs true reward: ``{"transition": ρ over B·2·L steps, "segment": ρ over 2B returns}``.

    The learned reward is the ensemble mean of ``scorer``'s model (``scorer.mean_rewards``).
    """
    learned = scorer.mean_rewards(params, pairs)
    true = np.asarray(pairs.rews, np.float64)
    return {
        "transition": pearson_correlation(learned.ravel(), true.ravel()),
        "segment": pearson_correlation(learned.sum(axis=-1).ravel(), true.sum(axis=-1).ravel()),
    }


def preference_accuracy(scorer: PairScorer, params: Any, prefs: Preferences) -> float:
    """Held-out preference accuracy of the ensemble-mean prediction (ties excluded; NaN if all tied).

    Args:
        scorer: the reward model and preference model, as a :class:`PairScorer`.
        params: the reward model's parameters.
        prefs: labelled pairs.
    """
    check_preferences(prefs)
    probabilities = scorer.probabilities(params, prefs.pairs)
    return accuracy_from_probabilities(probabilities.mean(axis=0), prefs.labels)


def preference_calibration(scorer: PairScorer, params: Any, prefs: Preferences, *, num_bins: int = 10) -> float:
    """ECE of the ensemble-mean P̄(σ¹ ≻ σ²) of ``scorer`` against the labels of ``prefs``."""
    check_preferences(prefs)
    probabilities = scorer.probabilities(params, prefs.pairs)
    return expected_calibration_error(probabilities.mean(axis=0), prefs.labels, num_bins)
