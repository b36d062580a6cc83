"""The goal-baseline reward of VLM-RM over unit embeddings (NumPy; float64 inside, float32 out)."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np


class GoalBaseline(NamedTuple):
    """The fixed parts of the goal-baseline reward, from the prompt embeddings.

    ``D`` is the embedding width.
    """

    goal: np.ndarray  # [D] g: mean of the unit goal-prompt embeddings
    baseline: np.ndarray  # [D] b: mean of the unit baseline-prompt embeddings
    projection: np.ndarray  # [D, D] P = α·ddᵀ/‖d‖² + (1 − α)I, d = g − b
    alpha: float  # α in [0, 1]


def unit_rows(x: Any, name: str = "x") -> np.ndarray:
    """Rows of ``x`` ``[N, D]`` divided by their Euclidean norms (float64).

    Raises:
        ValueError: ``x`` is not ``[N, D]`` with N, D ≥ 1, holds non-finite values, or has a zero row.
    """
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"{name}: expected embeddings of shape [N, D] with N, D >= 1, got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name}: expected finite embeddings, got NaN or inf")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError(f"{name}: row {int(np.flatnonzero(norms[:, 0] == 0)[0])} is zero; it has no direction")
    return x / norms


def goal_baseline(goal_embeddings: Any, baseline_embeddings: Any | None, alpha: float) -> GoalBaseline:
    """g, b and P of the goal-baseline reward from several goal and baseline prompt embeddings.

    Each prompt embedding is scaled to unit length and the goal (baseline) embeddings are
    averaged, as VLM-RM does: g = mean_i ĝ_i, b = mean_j b̂_j (the means are not re-normalised).
    With d = g − b the projection is P = α·ddᵀ/‖d‖² + (1 − α)I.

    Args:
        goal_embeddings: ``[G, D]`` text embeddings of the goal prompts ("the pole is upright").
        baseline_embeddings: ``[B, D]`` text embeddings of the baseline prompts ("a pole"), or
            None for ``alpha == 0`` (then b = g and P = I).
        alpha: α in [0, 1]: 0 keeps the whole space (cosine similarity up to an affine map),
            1 keeps only the goal-baseline direction.

    Returns:
        A :class:`GoalBaseline`.

    Raises:
        ValueError: ``alpha`` outside [0, 1]; no baseline for ``alpha > 0``; widths that
            differ; a goal equal to the baseline (d = 0) for ``alpha > 0``.

    References:
        Rocamonde et al., "Vision-Language Models are Zero-Shot Reward Models for
        Reinforcement Learning", ICLR 2024.

    Example:
        >>> gb = goal_baseline([[1.0, 0.0]], [[0.0, 1.0]], alpha=1.0)
        >>> np.round(gb.projection, 3).tolist()  # d = (1, −1): the projection onto d
        [[0.5, -0.5], [-0.5, 0.5]]
    """
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating, np.integer)):
        raise ValueError(f"alpha: expected a number in [0, 1], got {alpha!r}")
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha: expected a number in [0, 1], got {alpha}")
    goals = unit_rows(goal_embeddings, "goal_embeddings")
    g = goals.mean(axis=0)
    width = g.shape[0]
    if baseline_embeddings is None:
        if alpha > 0:
            raise ValueError(f"baseline_embeddings: expected baseline prompts for alpha={alpha} > 0, got None")
        return GoalBaseline(g, g.copy(), np.eye(width), alpha)
    baselines = unit_rows(baseline_embeddings, "baseline_embeddings")
    if baselines.shape[1] != width:
        raise ValueError(
            f"baseline_embeddings: expected width D={width} (the goal embeddings'), got {baselines.shape[1]}"
        )
    b = baselines.mean(axis=0)
    d = g - b
    norm2 = float(d @ d)
    if alpha > 0 and norm2 <= 1e-12 * max(1.0, float(g @ g)):
        raise ValueError(
            "baseline_embeddings: the baseline equals the goal (d = g − b = 0); the direction is undefined"
        )
    along = np.outer(d, d) / norm2 if norm2 > 0 else np.zeros((width, width))
    projection = alpha * along + (1.0 - alpha) * np.eye(width)
    return GoalBaseline(g, b, projection, alpha)


def goal_baseline_reward(image_embeddings: Any, spec: GoalBaseline) -> np.ndarray:
    """R(x) = 1 − ½‖(x̂ − g)P‖² of each image embedding x (x̂ = x/‖x‖), float32 ``[N]``.

    With α = 0 and a unit g, R = x̂·g (cosine similarity); in general R is an affine map of
    x̂·g for α = 0: R = 1 − ½(1 − 2x̂·g + ‖g‖²). With α = 1 only the component of x̂ − g along
    d = g − b counts. The reward does not change when x is scaled by c > 0.

    Args:
        image_embeddings: ``[N, D]`` image embeddings (any positive scale).
        spec: from :func:`goal_baseline`.

    Raises:
        ValueError: not ``[N, D]`` with the spec's D, non-finite or zero rows.

    Example:
        >>> gb = goal_baseline([[1.0, 0.0]], None, alpha=0.0)
        >>> goal_baseline_reward([[3.0, 0.0], [0.0, 2.0]], gb).tolist()  # cosine similarity to g
        [1.0, 0.0]
    """
    x = unit_rows(image_embeddings, "image_embeddings")
    if x.shape[1] != spec.goal.shape[0]:
        raise ValueError(f"image_embeddings: expected width D={spec.goal.shape[0]}, got {x.shape[1]}")
    residual = (x - spec.goal) @ spec.projection
    return (1.0 - 0.5 * np.einsum("nd,nd->n", residual, residual)).astype(np.float32)
