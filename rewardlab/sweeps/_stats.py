"""Aggregate statistics over few seeds, after rliable (Agarwal et al. 2021).

With a handful of seeds per design, means are swayed by one outlier and medians ignore
half the data; the interquartile mean (IQM: the mean of the middle 50% of scores) sits
between them. Its uncertainty is a percentile interval of the stratified bootstrap:
each task's runs are resampled with replacement independently, pooled, and the IQM of
the pool recomputed, ``num_resamples`` times.

References:
    Agarwal, Schwarzer, Castro, Courville & Bellemare, "Deep reinforcement learning at the
    edge of the statistical precipice", NeurIPS 2021.
    Efron & Tibshirani, "An introduction to the bootstrap", 1993.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np


class Interval(NamedTuple):
    """A point estimate with a confidence interval."""

    estimate: float  # the statistic on the observed scores
    low: float  # lower end of the interval
    high: float  # upper end of the interval


def iqm(scores: np.ndarray, axis: int = -1) -> np.ndarray:
    """Interquartile mean along ``axis``: the mean after dropping ⌊n/4⌋ lowest and highest scores.

    IQM(x) = mean(x_(k+1), ..., x_(n−k)) with k = ⌊0.25·n⌋ over the sorted scores (as
    ``scipy.stats.trim_mean(x, 0.25)``, which rliable uses).

    Args:
        scores: array with the scores of the runs along ``axis`` (n ≥ 1).
        axis: the runs' axis.

    Returns:
        The IQM with ``axis`` reduced.

    Raises:
        ValueError: no scores along ``axis``.

    Example:
        >>> float(iqm(np.array([1.0, 2.0, 3.0, 100.0])))  # drops 1 and 100
        2.5
        >>> float(iqm(np.array([5.0])))
        5.0
    """
    scores = np.asarray(scores, dtype=np.float64)
    n = scores.shape[axis] if scores.ndim else 0
    if n == 0:
        raise ValueError(f"scores: expected at least one score along axis {axis}, got shape {scores.shape}")
    trim = int(0.25 * n)
    ordered = np.sort(scores, axis=axis)
    kept = np.take(ordered, np.arange(trim, n - trim), axis=axis)
    return kept.mean(axis=axis)


def stratified_bootstrap_ci(
    scores_per_task: Sequence[np.ndarray] | np.ndarray,
    statistic: Callable[[np.ndarray], np.ndarray] = iqm,
    num_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Stratified-bootstrap percentile interval of ``statistic`` over runs pooled across tasks.

    For b = 1..B: for every task t, draw n_t of its runs with replacement; pool the draws;
    θ*_b = statistic(pool). The interval is the (1 − c)/2 and (1 + c)/2 quantiles of θ*.

    Args:
        scores_per_task: one 1-D array of run scores per task (lengths may differ), or a
            ``[runs, tasks]`` array; a 1-D array is one task.
        statistic: maps ``[B, N]`` pooled scores to ``[B]`` along the last axis (``iqm``, ``np.mean``...).
        num_resamples: B.
        confidence: c in (0, 1).
        seed: seed of the resampling.

    Returns:
        ``Interval(statistic(all scores), low, high)``; with one run per task the interval is a point.

    Raises:
        ValueError: no scores, non-finite scores, or a bad ``num_resamples`` / ``confidence``.

    Example:
        >>> ci = stratified_bootstrap_ci(np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]))
        >>> round(ci.estimate, 2), ci.low < ci.estimate < ci.high
        (4.5, True)
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence: expected a value in (0, 1), got {confidence!r}")
    if not isinstance(num_resamples, int) or num_resamples < 1:
        raise ValueError(f"num_resamples: expected an integer >= 1, got {num_resamples!r}")
    if isinstance(scores_per_task, np.ndarray) and scores_per_task.ndim == 2:
        tasks = [scores_per_task[:, t] for t in range(scores_per_task.shape[1])]
    elif isinstance(scores_per_task, np.ndarray) and scores_per_task.ndim == 1:
        tasks = [scores_per_task]
    else:
        tasks = [np.asarray(task, dtype=np.float64).reshape(-1) for task in scores_per_task]
    tasks = [np.asarray(task, dtype=np.float64) for task in tasks if np.size(task)]
    if not tasks:
        raise ValueError("scores_per_task: expected at least one score, got none")
    pooled = np.concatenate(tasks)
    if not np.all(np.isfinite(pooled)):
        raise ValueError("scores_per_task: expected finite scores, got NaN or inf")
    rng = np.random.default_rng(seed)
    draws = [task[rng.integers(len(task), size=(num_resamples, len(task)))] for task in tasks]  # [B, n_t] each
    replicates = np.asarray(statistic(np.concatenate(draws, axis=1)))  # [B]
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(replicates, [alpha, 1.0 - alpha])
    return Interval(float(statistic(pooled[None])[0]), float(low), float(high))


def mean_band(
    curves: np.ndarray, num_resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over seeds of ``curves [seeds, T]`` with a bootstrap percentile band per point.

    Returns:
        ``(mean [T], low [T], high [T])``; with one seed the band is the curve itself.

    Example:
        >>> mean, low, high = mean_band(np.array([[0.0, 1.0], [2.0, 3.0]]))
        >>> mean.tolist(), bool(np.all(low <= mean) and np.all(mean <= high))
        ([1.0, 2.0], True)
    """
    curves = np.asarray(curves, dtype=np.float64)
    if curves.ndim != 2 or curves.shape[0] == 0:
        raise ValueError(f"curves: expected shape [seeds, T] with seeds >= 1, got {curves.shape}")
    mean = curves.mean(axis=0)
    if curves.shape[0] == 1:
        return mean, mean.copy(), mean.copy()
    rng = np.random.default_rng(seed)
    index = rng.integers(curves.shape[0], size=(num_resamples, curves.shape[0]))
    replicates = curves[index].mean(axis=1)  # [B, T]
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(replicates, [alpha, 1.0 - alpha], axis=0)
    return mean, low, high
