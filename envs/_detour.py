"""A sparse-reward gridworld with a helpful and a misaligned auxiliary reward (BARFI's gridworld setting).

The dynamics are the delivery domain's (:func:`delivery_model`: four deterministic moves,
walls and houses block). The primary reward is sparse: +1 for entering the goal, which ends
the episode. A designer adds an auxiliary reward for entering a state, r_aux(s, a, s') = h(s'):

* ``"good"``: h(s) = −c·d(s, goal)/d_max, a distance heuristic that pulls towards the goal
  (its net effect along any path to the goal is a per-step cost, so it keeps the goal optimal);
* ``"bad"``: h(s) = c on the detour cell (the board's coin, off every shortest path) and 0
  elsewhere. Re-entering the cell pays again, so the naive sum r_p + r_aux is maximised by
  circling the detour for ever and never reaching the goal.

``potential`` is h itself, for potential-based shaping with the auxiliary reward as the
potential (F = γ h(s') − h(s), Ng et al. 1999), one of the baselines BARFI is compared with.

References:
    Gupta, Chandak, Jordan, Thomas and da Silva, "Behavior Alignment via Reward Function
    Optimization", NeurIPS 2023 (gridworld with good and bad heuristics).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ._delivery import delivery_mdp, delivery_model, parse_board
from ._tabular import TabularMDP

# 'c' marks the detour cell (left of the start, off every shortest path), 'G' the goal.
DETOUR_BOARD = (
    ".....G",
    "......",
    "......",
    "......",
    "c.....",
)
DETOUR_START = (4, 1)


class DetourTask(NamedTuple):
    """The gridworld, its auxiliary reward and the matching potential."""

    mdp: TabularMDP  # primary reward: +1 for entering the goal
    auxiliary: np.ndarray  # [S, A, S'] float32 r_aux(s, a, s') = h(s') on the support of T, 0 elsewhere
    potential: np.ndarray  # [S] float32 h(s), 0 on terminal states


def detour_gridworld(
    auxiliary: str = "bad",
    *,
    board: Sequence[str] = DETOUR_BOARD,
    start: tuple[int, int] = DETOUR_START,
    scale: float = 0.1,
    discount: float = 0.99,
) -> DetourTask:
    """The detour gridworld with the ``"good"`` or ``"bad"`` auxiliary reward (see the module docstring).

    Args:
        auxiliary: ``"good"`` (distance heuristic) or ``"bad"`` (pays for entering the detour cell).
        board: a delivery board with one ``G`` and, for ``"bad"``, at least one coin cell ``c``.
        start: (row, col) of the start.
        scale: c, the heuristic's scale.
        discount: γ.

    Returns:
        A :class:`DetourTask`.

    Raises:
        ValueError: an unknown ``auxiliary``, a board without a goal (or a coin for ``"bad"``), a bad scale.

    Example:
        >>> task = detour_gridworld("bad")
        >>> task.mdp.transitions.shape, round(float(task.auxiliary.max()), 6), float(task.mdp.reward.max())
        ((30, 4, 30), 0.1, 1.0)
    """
    if auxiliary not in ("good", "bad"):
        raise ValueError(f"auxiliary: expected 'good' or 'bad', got {auxiliary!r}")
    if not np.isfinite(scale) or scale < 0:
        raise ValueError(f"scale: expected a finite number >= 0, got {scale!r}")
    rows = parse_board(board)
    cells = np.array([list(r) for r in rows]).reshape(-1)
    width = len(rows[0])
    goals = np.flatnonzero(cells == "G")
    if goals.size != 1:
        raise ValueError(f"board: expected exactly one goal cell 'G', got {goals.size}")
    weights = np.array([0.0, 1.0, 0.0, 0.0, 0.0, 0.0], np.float32)  # the goal feature only
    mdp = delivery_mdp(rows, weights, discount=discount, start=start)
    model = delivery_model(rows)
    row, col = np.divmod(np.arange(cells.size), width)
    goal_row, goal_col = divmod(int(goals[0]), width)
    distance = np.abs(row - goal_row) + np.abs(col - goal_col)
    if auxiliary == "good":
        heuristic = -scale * distance / max(1, distance.max())
    else:
        detour = np.isin(cells, ["c", "C"])
        if not detour.any():
            raise ValueError("board: the bad auxiliary reward pays for a detour cell 'c'; the board has none")
        heuristic = scale * detour.astype(np.float64)
    heuristic = np.where(model.terminal | model.blocked, 0.0, heuristic).astype(np.float32)
    reward_aux = (np.asarray(mdp.transitions) > 0) * heuristic[None, None, :]
    frozen = (model.terminal | model.blocked)[:, None, None]
    reward_aux = np.where(frozen, 0.0, reward_aux).astype(np.float32)
    return DetourTask(mdp, reward_aux, heuristic)
