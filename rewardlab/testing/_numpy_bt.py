"""Slow, loop-based NumPy reference of the Bradley–Terry preference loss (for tests only).

Written independently of ``rewardlab.preferences``: plain Python loops over pairs and time
steps in float64, the textbook formulas without log-space tricks.
"""

from __future__ import annotations

import math

import numpy as np


def numpy_segment_return(rewards: np.ndarray, discount: float = 1.0) -> float:
    """R = Σ_t γ^{L−1−t} r_t (a myopic teacher's return: the last step weighs 1) by an explicit loop."""
    rewards = np.asarray(rewards, np.float64)
    total = 0.0
    for t, reward in enumerate(rewards):
        total += discount ** (len(rewards) - 1 - t) * float(reward)
    return total


def numpy_bradley_terry_probability(
    return_1: float, return_2: float, temperature: float = 1.0, label_noise: float = 0.0
) -> float:
    """P' = ε/2 + (1 − ε) / (1 + exp(−(R¹ − R²)/τ)), τ the temperature."""
    probability = 1.0 / (1.0 + math.exp(-(return_1 - return_2) / temperature))
    return label_noise / 2 + (1 - label_noise) * probability


def numpy_preference_loss(
    rewards: np.ndarray,
    labels: np.ndarray,
    *,
    temperature: float = 1.0,
    discount: float = 1.0,
    label_noise: float = 0.0,
    weights: np.ndarray | None = None,
) -> float:
    """Mean over members of the weighted mean over pairs of −[y log P' + (1 − y) log(1 − P')].

    Args:
        rewards: ``[E, B, 2, L]`` predicted rewards of every member on every step.
        labels: ``[B]`` labels P(σ¹ ≻ σ²).
        temperature, discount, label_noise: the fields of ``rewardlab.preferences.PreferenceModel``.
        weights: ``[B]`` or ``[E, B]`` pair weights (default 1).
    """
    rewards = np.asarray(rewards, np.float64)
    num_members, num_pairs = rewards.shape[:2]
    weights = (
        np.ones((num_members, num_pairs))
        if weights is None
        else np.broadcast_to(np.asarray(weights, np.float64), (num_members, num_pairs))
    )
    member_losses = []
    for e in range(num_members):
        weighted, total = 0.0, 0.0
        for b in range(num_pairs):
            return_1 = numpy_segment_return(rewards[e, b, 0], discount)
            return_2 = numpy_segment_return(rewards[e, b, 1], discount)
            p = numpy_bradley_terry_probability(return_1, return_2, temperature, label_noise)
            y = float(labels[b])
            loss = -(y * math.log(p) + (1 - y) * math.log(1 - p))
            weighted += weights[e, b] * loss
            total += weights[e, b]
        member_losses.append(weighted / total if total > 0 else 0.0)
    return float(np.mean(member_losses))
