"""Knox et al.'s delivery gridworld: a tabular domain with a linear reward over six cell features.

The agent drives on a grid of cells. Each step it moves one cell up, down, left or
right (deterministically); moving off the grid or into a house leaves it in place.
The reward of a transition is linear, r(s, a, s') = w·φ(s, a, s'), in six features

    φ = [gas, goal, sheep, coin, roadblock, mud],   w* = [-1, +50, -50, +1, -1, -2].

What φ(s, a, s') is follows the public code of Knox et al. (``grid_world.py``,
``get_reward_feature``), which is more precise than the paper's prose:

* entering a road cell: gas = 1; entering a mud cell: mud = 1 (mud replaces gas, so a
  mud step costs -2, a road step -1);
* entering a cell with a coin (roadblock) adds coin = 1 (roadblock = 1) on top of the
  cell's surface; coins are never used up, so entering a coin cell on a road nets 0
  ("coins at best cancel out the road surface cost");
* entering the goal (sheep) gives goal = 1 (sheep = 1) only, no surface cost, and ends
  the episode; goal and sheep cells are terminal and absorbing;
* a blocked move (grid edge or house) gives the surface feature of the current cell
  (gas or mud) and no coin or roadblock feature.

Because coins are stateless the MDP is tabular with state = cell: s = row·W + col.

Boards are tuples of equal-length strings, one character per cell:

====  =========================  ====  ==========================
``.``  road                       ``~``  mud
``c``  coin on road               ``C``  coin on mud
``r``  roadblock on road          ``R``  roadblock on mud
``G``  goal (terminal)            ``S``  sheep (terminal)
``H``  house (blocks movement)
====  =========================  ====  ==========================

References:
    Knox, Hatgis-Kessell, Booth, Niekum, Stone and Allievi, "Models of human
    preference for learning reward functions", TMLR 2024 (arXiv:2206.02231).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np

from ._spec import FactorSpec
from ._tabular import FeatureNames, TabularMDP

FEATURE_NAMES = FeatureNames(("gas", "goal", "sheep", "coin", "roadblock", "mud"))
TRUE_WEIGHTS = np.array([-1.0, 50.0, -50.0, 1.0, -1.0, -2.0], dtype=np.float32)
ACTION_NAMES = ("up", "down", "left", "right")
_MOVES = np.array([[-1, 0], [1, 0], [0, -1], [0, 1]], dtype=np.int64)  # (Δrow, Δcol) per action
_GAS, _GOAL, _SHEEP, _COIN, _ROADBLOCK, _MUD = range(6)

CELL_CODES = {
    ".": "road",
    "~": "mud",
    "c": "coin on road",
    "C": "coin on mud",
    "r": "roadblock on road",
    "R": "roadblock on mud",
    "G": "goal",
    "S": "sheep",
    "H": "house",
}
_TERMINAL_CODES = "GS"
_MUD_CODES = "~CR"

# A hand-designed 10×10 board: a mud field with coins in the middle, houses forming
# streets, sheep beside the shortest routes (one on the main north-south street),
# roadblocks on the alternative roads. Every non-house cell reaches the goal.
DEFAULT_BOARD = (
    "....r.....",
    ".HH.H.S.G.",
    ".HH.H...S.",
    "....~~~~..",
    "c.r.~CC~.H",
    "HH..~~~~.H",
    "...S..r...",
    ".HH.HH.HH.",
    ".HH.HHcHH.",
    "c...r....S",
)

# Weight choices of the random-MDP generator: per feature a subset of the reference
# value set {50, -50, 1, -1, -2, 0, -10, 10, 5}; gas stays -1 as in Knox et al.'s
# `generate_MDP` (which uses goal ∈ {0,1,5,10,50}, sheep ∈ {-5,-10,-50,-100},
# roadblock ∈ {-2,-5,-10}, coin = 1, mud ∈ {-1,-2,-3}).
DEFAULT_WEIGHT_CHOICES: Mapping[str, tuple[float, ...]] = {
    "gas": (-1.0,),
    "goal": (0.0, 5.0, 10.0, 50.0),
    "sheep": (-10.0, -50.0),
    "coin": (0.0, 1.0),
    "roadblock": (-1.0, -2.0, -10.0),
    "mud": (-1.0, -2.0),
}
# Cell proportions of random boards, from Knox et al.'s `generate_MDP`.
_SHEEP_PROPORTIONS = (0.0, 0.1, 0.3)
_ROADBLOCK_PROPORTIONS = (0.0, 0.1, 0.5, 0.8)
_COIN_PROPORTIONS = (0.0, 0.1, 0.2)
_MUD_PROPORTIONS = (0.0, 0.3, 0.6)


class DeliveryTask(NamedTuple):
    """A delivery board and its feature weights."""

    board: tuple[str, ...]  # [H] strings of W cell codes
    weights: np.ndarray  # [6] float32 w over FEATURE_NAMES


class DeliveryModel(NamedTuple):
    """The deterministic delivery dynamics as arrays (S = H·W, A = 4, K = 6)."""

    next_state: np.ndarray  # [S, A] int64 s' = f(s, a)
    features: np.ndarray  # [S, A, K] float32 φ(s, a, f(s, a))
    terminal: np.ndarray  # [S] bool goal and sheep cells
    blocked: np.ndarray  # [S] bool house cells (unreachable, absorbing, zero reward)


def parse_board(board: Sequence[str]) -> tuple[str, ...]:
    """Validate a board and return it as a tuple of strings.

    Args:
        board: ``H`` strings of ``W`` characters each, drawn from ``CELL_CODES``.

    Returns:
        The board as a tuple of str.

    Raises:
        ValueError: empty board, ragged rows, unknown characters, or no cell to start from.

    Example:
        >>> parse_board([".G", "S."])
        ('.G', 'S.')
    """
    if isinstance(board, str):
        raise ValueError(f"board: expected a sequence of row strings, got a single str {board!r}")
    rows = tuple(board)
    if not rows or not all(isinstance(r, str) for r in rows):
        raise ValueError(f"board: expected a non-empty sequence of str rows, got {board!r}")
    width = len(rows[0])
    if width == 0 or any(len(r) != width for r in rows):
        raise ValueError(f"board: expected rows of equal non-zero length, got lengths {[len(r) for r in rows]}")
    unknown = sorted(set("".join(rows)) - set(CELL_CODES))
    if unknown:
        raise ValueError(f"board: expected cell codes from {sorted(CELL_CODES)}, got unknown {unknown}")
    if not any(ch not in _TERMINAL_CODES + "H" for ch in "".join(rows)):
        raise ValueError("board: expected at least one non-terminal, non-house cell to start from, got none")
    return rows


def _check_weights(weights: Any) -> np.ndarray:
    if weights is None:
        return TRUE_WEIGHTS.copy()
    array = np.asarray(weights, dtype=np.float32)
    if array.shape != (len(FEATURE_NAMES),) or not np.all(np.isfinite(array)):
        raise ValueError(f"weights: expected {len(FEATURE_NAMES)} finite values {FEATURE_NAMES}, got {weights!r}")
    return array


def delivery_model(board: Sequence[str] | None = None) -> DeliveryModel:
    """The deterministic transition function and features of a board.

    Args:
        board: a board (see the module docstring); None for ``DEFAULT_BOARD``.

    Returns:
        A :class:`DeliveryModel`.

    Example:
        >>> model = delivery_model(["c.G"])
        >>> int(model.next_state[1, 2]), model.features[1, 2].tolist()  # from (0,1) left onto the coin
        (0, [1.0, 0.0, 0.0, 1.0, 0.0, 0.0])
    """
    rows = parse_board(DEFAULT_BOARD if board is None else board)
    height, width = len(rows), len(rows[0])
    cells = np.array([list(r) for r in rows]).reshape(-1)  # [S] cell codes
    num_states = height * width
    row, col = np.divmod(np.arange(num_states), width)
    target_row = row[:, None] + _MOVES[None, :, 0]  # [S, A]
    target_col = col[:, None] + _MOVES[None, :, 1]
    inside = (target_row >= 0) & (target_row < height) & (target_col >= 0) & (target_col < width)
    target = np.where(inside, target_row * width + target_col, 0)
    terminal = np.isin(cells, list(_TERMINAL_CODES))
    blocked = cells == "H"
    frozen = (terminal | blocked)[:, None]  # absorbing sources
    moved = inside & ~blocked[target] & ~frozen
    next_state = np.where(moved, target, np.arange(num_states)[:, None])

    entry = np.zeros((num_states, len(FEATURE_NAMES)), dtype=np.float32)  # φ of entering each cell
    is_mud = np.isin(cells, list(_MUD_CODES))
    surface = np.zeros_like(entry)  # φ of a blocked move out of each cell
    surface[:, _GAS] = ~is_mud
    surface[:, _MUD] = is_mud
    entry[:] = surface
    entry[np.isin(cells, ["c", "C"]), _COIN] = 1.0
    entry[np.isin(cells, ["r", "R"]), _ROADBLOCK] = 1.0
    entry[terminal] = 0.0
    entry[cells == "G", _GOAL] = 1.0
    entry[cells == "S", _SHEEP] = 1.0
    features = np.where(moved[..., None], entry[next_state], surface[:, None, :])
    features = np.where(frozen[..., None], 0.0, features).astype(np.float32)
    return DeliveryModel(next_state=next_state.astype(np.int64), features=features, terminal=terminal, blocked=blocked)


def _start_states(model: DeliveryModel) -> np.ndarray:
    return np.flatnonzero(~model.terminal & ~model.blocked)


def _start_index(start: Any, board: tuple[str, ...], model: DeliveryModel) -> int:
    """A start given as a state index or a (row, col) pair, checked to be a valid start."""
    height, width = len(board), len(board[0])
    if isinstance(start, (tuple, list, np.ndarray)) and len(start) == 2:
        row, col = (int(v) for v in start)
        if not (0 <= row < height and 0 <= col < width):
            raise ValueError(f"start: expected (row, col) inside the {height}×{width} board, got {tuple(start)}")
        index = row * width + col
    elif np.ndim(start) == 0 and int(start) == start:
        index = int(start)
        if not 0 <= index < height * width:
            raise ValueError(f"start: expected a state index in [0, {height * width}), got {start!r}")
    else:
        raise ValueError(f"start: expected a state index or a (row, col) pair, got {start!r}")
    if model.terminal[index] or model.blocked[index]:
        code = board[index // width][index % width]
        raise ValueError(f"start: expected a road or mud cell, got cell {divmod(index, width)} {code!r}")
    return index


def delivery_mdp(
    board: Sequence[str] | None = None,
    weights: Any = None,
    *,
    discount: float = 0.999,
    start: Any = None,
) -> TabularMDP:
    """The delivery domain as a :class:`TabularMDP` (S = H·W cells, A = 4, K = 6).

    ``features[s, a, s']`` is φ(s, a, s') from the module docstring at the one s' = f(s, a)
    and zero elsewhere; ``reward = features @ weights``. Goal and sheep cells are terminal
    and absorbing; house cells are unreachable, absorbing, zero-reward and non-terminal.
    d0 is uniform over road and mud cells, or one-hot at ``start``.

    Args:
        board: a board; None for ``DEFAULT_BOARD``.
        weights: ``[6]`` feature weights; None for ``TRUE_WEIGHTS`` = [-1, 50, -50, 1, -1, -2].
        discount: γ in [0, 1]; Knox et al.'s code plans with γ = 0.999.
        start: a state index or (row, col) for a fixed start; None for uniform starts.

    Returns:
        A :class:`TabularMDP` with ``feature_names = FEATURE_NAMES``.

    Raises:
        ValueError: a bad board, weights, discount or start.

    Example:
        >>> mdp = delivery_mdp()
        >>> mdp.transitions.shape, mdp.features.shape
        ((100, 4, 100), (100, 4, 100, 6))
        >>> s = 1 * 10 + 9  # cell (1, 9), right of the goal
        >>> float(mdp.reward[s, 2, s - 1])  # moving left enters the goal
        50.0
    """
    rows = parse_board(DEFAULT_BOARD if board is None else board)
    weights = _check_weights(weights)
    if not 0.0 <= discount <= 1.0:
        raise ValueError(f"discount: expected a value in [0, 1], got {discount!r}")
    model = delivery_model(rows)
    num_states, num_actions = model.next_state.shape
    transitions = np.zeros((num_states, num_actions, num_states), dtype=np.float32)
    state_idx, action_idx = np.indices((num_states, num_actions))
    transitions[state_idx, action_idx, model.next_state] = 1.0
    features = np.zeros((num_states, num_actions, num_states, len(FEATURE_NAMES)), dtype=np.float32)
    features[state_idx, action_idx, model.next_state] = model.features
    reward = (features @ weights).astype(np.float32)
    d0 = np.zeros(num_states, dtype=np.float32)
    if start is None:
        d0[_start_states(model)] = 1.0
    else:
        d0[_start_index(start, rows, model)] = 1.0
    d0 /= d0.sum()
    return TabularMDP(
        transitions=transitions,
        reward=reward,
        features=features,
        initial_state_dist=d0,
        terminal=model.terminal.copy(),
        discount=float(discount),
        feature_names=FEATURE_NAMES,
        true_weights=weights,
    )


def random_delivery_task(
    seed: int,
    size: tuple[int, int] | int = (10, 10),
    *,
    weight_choices: Mapping[str, Sequence[float]] | None = None,
) -> DeliveryTask:
    """A random delivery board and weights, after Knox et al.'s ``generate_MDP``.

    Board: a random fraction ρ_mud ∈ {0, 0.3, 0.6} of cells is mud; then on distinct
    cells ⌊ρ·H·W⌋ sheep (ρ ∈ {0, 0.1, 0.3}), roadblocks (ρ ∈ {0, 0.1, 0.5, 0.8}) and
    coins (ρ ∈ {0, 0.1, 0.2}), with fractions redrawn until they sum below 1, and one
    goal. No houses. Weights: each feature's weight is drawn uniformly from
    ``weight_choices`` (default ``DEFAULT_WEIGHT_CHOICES``, subsets of the reference
    set {50, -50, 1, -1, -2, 0, -10, 10, 5} with gas fixed at -1).

    Args:
        seed: seed of the NumPy generator; equal seeds give equal tasks.
        size: (H, W) or an int for a square board; H·W ≥ 2.
        weight_choices: per feature name, the values its weight is drawn from.

    Returns:
        A :class:`DeliveryTask`.

    Raises:
        ValueError: a bad size or weight choices.

    Example:
        >>> task = random_delivery_task(0, size=(3, 5))
        >>> len(task.board), len(task.board[0]), "".join(task.board).count("G")
        (3, 5, 1)
    """
    pair: Any = (size, size) if np.ndim(size) == 0 else size  # an int, or (H, W) in any sequence
    height, width = tuple(pair)
    if int(height) != height or int(width) != width or height < 1 or width < 1 or height * width < 2:
        raise ValueError(f"size: expected (H, W) positive integers with H·W >= 2, got {size!r}")
    height, width = int(height), int(width)
    choices = dict(DEFAULT_WEIGHT_CHOICES)
    if weight_choices is not None:
        unknown = sorted(set(weight_choices) - set(FEATURE_NAMES))
        if unknown:
            raise ValueError(f"weight_choices: expected keys from {tuple(FEATURE_NAMES)}, got unknown {unknown}")
        for name, values in weight_choices.items():
            values = tuple(float(v) for v in values)
            if not values or not all(np.isfinite(values)):
                raise ValueError(f"weight_choices[{name!r}]: expected non-empty finite values, got {values}")
            choices[name] = values
    rng = np.random.default_rng(seed)
    num_cells = height * width
    while True:
        sheep, roadblock, coin = (
            float(rng.choice(p)) for p in (_SHEEP_PROPORTIONS, _ROADBLOCK_PROPORTIONS, _COIN_PROPORTIONS)
        )
        if sheep + roadblock + coin < 1.0:
            break
    counts = [int(p * num_cells) for p in (sheep, roadblock, coin)]
    mud = rng.random(num_cells) < float(rng.choice(_MUD_PROPORTIONS))
    cells = np.where(mud, "~", ".").astype("<U1")
    order = rng.permutation(num_cells)
    bounds = np.cumsum([0, *counts])
    cells[order[bounds[0] : bounds[1]]] = "S"
    for (lo, hi), road_code, mud_code in (((bounds[1], bounds[2]), "r", "R"), ((bounds[2], bounds[3]), "c", "C")):
        idx = order[lo:hi]
        cells[idx] = np.where(mud[idx], mud_code, road_code)
    cells[order[bounds[3]]] = "G"
    board = tuple("".join(cells[r * width : (r + 1) * width]) for r in range(height))
    weights = np.array([rng.choice(choices[name]) for name in FEATURE_NAMES], dtype=np.float32)
    return DeliveryTask(board=parse_board(board), weights=weights)


def random_delivery_mdp(
    seed: int,
    size: tuple[int, int] | int = (10, 10),
    *,
    weight_choices: Mapping[str, Sequence[float]] | None = None,
    discount: float = 0.999,
) -> TabularMDP:
    """A random delivery MDP: :func:`delivery_mdp` of :func:`random_delivery_task`.

    Args:
        seed: seed; equal seeds give equal MDPs.
        size: (H, W) or an int.
        weight_choices: see :func:`random_delivery_task`.
        discount: γ in [0, 1].

    Returns:
        A :class:`TabularMDP` with uniform starts over road and mud cells.

    Example:
        >>> mdp = random_delivery_mdp(3, size=6)
        >>> mdp.transitions.shape
        (36, 4, 36)
    """
    task = random_delivery_task(seed, size, weight_choices=weight_choices)
    return delivery_mdp(task.board, task.weights, discount=discount)


def delivery_factor_spec(weights: Any = None) -> FactorSpec:
    """The :class:`FactorSpec` of the delivery features under ``weights``.

    Signs are the signs of the weights (+1 for a zero weight); importance orders the
    features by |w|, largest first (ties keep feature order).

    Example:
        >>> delivery_factor_spec().ranked_names
        ('goal', 'sheep', 'mud', 'gas', 'coin', 'roadblock')
    """
    weights = _check_weights(weights)
    return FactorSpec(
        names=tuple(FEATURE_NAMES),
        signs=tuple(np.where(weights < 0, -1, 1).tolist()),
        importance=tuple(np.argsort(-np.abs(weights), kind="stable").tolist()),
        weights=tuple(weights.tolist()),
    )


_COLORS = {
    "road": (205, 205, 205),
    "mud": (140, 95, 50),
    "house": (60, 65, 120),
    "goal": (40, 170, 70),
    "sheep": (245, 245, 245),
    "coin": (240, 200, 30),
    "roadblock": (230, 100, 20),
    "agent": (200, 20, 30),
    "grid": (90, 90, 90),
}


class DeliveryGridworld(gym.Env):
    """Gymnasium env of the delivery domain; reward r = w·φ, ``info["reward_factors"] = φ``.

    Observations (``obs_mode``): ``"index"`` Discrete(S) cell index s = row·W + col;
    ``"onehot"`` float32 Box [S]; ``"coords"`` float32 Box [2] (row, col). Actions:
    Discrete(4) up, down, left, right. ``terminated`` is True on entering (and staying
    in) goal or sheep cells; a step from a terminal cell stays there with φ = 0, as in
    the absorbing :meth:`tabular` MDP. Time limits come from gymnasium's ``TimeLimit``
    (``gym.make("rewardlab/Delivery-v0", max_episode_steps=...)``, default 100).
    ``info`` holds ``reward_factors`` (float32 [6]) and ``state`` (the cell index).

    Args:
        board: a board (see the module docstring); None for ``DEFAULT_BOARD``.
        weights: ``[6]`` feature weights; None for the true weights.
        obs_mode: ``"index"``, ``"onehot"`` or ``"coords"``.
        start: fixed start (state index or (row, col)); None for uniform random starts.
        discount: γ reported by :meth:`tabular`.
        render_mode: None, ``"rgb_array"`` or ``"ansi"``.

    Example:
        >>> env = DeliveryGridworld(start=(1, 9))
        >>> obs, info = env.reset(seed=0)
        >>> obs, reward, terminated, truncated, info = env.step(2)  # left, into the goal
        >>> int(obs), reward, terminated, info["reward_factors"].tolist()
        (18, 50.0, True, [0.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    """

    metadata = {"render_modes": ["rgb_array", "ansi"], "render_fps": 4}  # noqa: RUF012 - gymnasium's class-level metadata
    OBS_MODES = ("index", "onehot", "coords")
    CELL_PIXELS = 24

    def __init__(
        self,
        board: Sequence[str] | None = None,
        weights: Any = None,
        *,
        obs_mode: str = "index",
        start: Any = None,
        discount: float = 0.999,
        render_mode: str | None = None,
    ):
        self.board = parse_board(DEFAULT_BOARD if board is None else board)
        self.weights = _check_weights(weights)
        if obs_mode not in self.OBS_MODES:
            raise ValueError(f"obs_mode: expected one of {self.OBS_MODES}, got {obs_mode!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            modes = self.metadata["render_modes"]
            raise ValueError(f"render_mode: expected None or one of {modes}, got {render_mode!r}")
        if not 0.0 <= discount <= 1.0:
            raise ValueError(f"discount: expected a value in [0, 1], got {discount!r}")
        self.obs_mode = obs_mode
        self.render_mode = render_mode
        self.discount = float(discount)
        self.height, self.width = len(self.board), len(self.board[0])
        self.model = delivery_model(self.board)
        self.start = None if start is None else _start_index(start, self.board, self.model)
        self._start_states = _start_states(self.model)
        self.num_states = self.height * self.width
        self.action_space: gym.spaces.Discrete = gym.spaces.Discrete(len(ACTION_NAMES))
        if obs_mode == "index":
            self.observation_space = gym.spaces.Discrete(self.num_states)
        elif obs_mode == "onehot":
            self.observation_space = gym.spaces.Box(0.0, 1.0, shape=(self.num_states,), dtype=np.float32)
        else:
            high = np.array([self.height - 1, self.width - 1], dtype=np.float32)
            self.observation_space = gym.spaces.Box(np.zeros(2, np.float32), high, dtype=np.float32)
        self.factor_spec = delivery_factor_spec(self.weights)
        self._state: int | None = None

    @property
    def state(self) -> int:
        """The current cell index s = row·W + col."""
        if self._state is None:
            raise RuntimeError("DeliveryGridworld: call reset() before reading the state")
        return self._state

    def tabular(self) -> TabularMDP:
        """This env's :class:`TabularMDP` (same board, weights, start and discount)."""
        return delivery_mdp(self.board, self.weights, discount=self.discount, start=self.start)

    def observation(self, state: int) -> Any:
        """The observation of cell index ``state`` under this env's ``obs_mode``."""
        if self.obs_mode == "index":
            return np.int64(state)
        if self.obs_mode == "onehot":
            onehot = np.zeros(self.num_states, dtype=np.float32)
            onehot[state] = 1.0
            return onehot
        return np.array(divmod(state, self.width), dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Start in ``options["start"]``, else the fixed start, else a uniform road/mud cell."""
        super().reset(seed=seed)
        if options and options.get("start") is not None:
            self._state = _start_index(options["start"], self.board, self.model)
        elif self.start is not None:
            self._state = self.start
        else:
            self._state = int(self.np_random.choice(self._start_states))
        return self.observation(self._state), {"state": self._state}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Move; reward w·φ; terminated on goal and sheep cells."""
        if not self.action_space.contains(action):
            raise ValueError(f"action: expected an int in [0, {self.action_space.n}), got {action!r}")
        state = self.state
        action = int(action)
        phi = self.model.features[state, action].copy()
        self._state = int(self.model.next_state[state, action])
        reward = float(phi.astype(np.float64) @ self.weights.astype(np.float64))
        terminated = bool(self.model.terminal[self._state])
        info = {"reward_factors": phi, "state": self._state}
        return self.observation(self._state), reward, terminated, False, info

    def render(self) -> Any:
        """``"rgb_array"``: uint8 [H·24, W·24, 3] image; ``"ansi"``: the board with ``@`` for the agent."""
        if self.render_mode == "ansi":
            rows = [list(r) for r in self.board]
            if self._state is not None:
                rows[self._state // self.width][self._state % self.width] = "@"
            return "\n".join("".join(r) for r in rows) + "\n"
        if self.render_mode == "rgb_array":
            return self._render_rgb()
        return None

    def _render_rgb(self) -> np.ndarray:
        px = self.CELL_PIXELS
        image = np.zeros((self.height * px, self.width * px, 3), dtype=np.uint8)
        inner = slice(px // 3, px - px // 3)
        for r, line in enumerate(self.board):
            for c, code in enumerate(line):
                tile = image[r * px : (r + 1) * px, c * px : (c + 1) * px]
                base = {"G": "goal", "S": "sheep", "H": "house"}.get(code, "mud" if code in _MUD_CODES else "road")
                tile[:] = _COLORS[base]
                if code in "cC":
                    tile[inner, inner] = _COLORS["coin"]
                elif code in "rR":
                    tile[inner, inner] = _COLORS["roadblock"]
                tile[0, :] = tile[:, 0] = _COLORS["grid"]
        if self._state is not None:
            r, c = divmod(self._state, self.width)
            yy, xx = np.mgrid[0:px, 0:px]
            disc = (yy - px / 2 + 0.5) ** 2 + (xx - px / 2 + 0.5) ** 2 <= (px / 3) ** 2
            image[r * px : (r + 1) * px, c * px : (c + 1) * px][disc] = _COLORS["agent"]
        return image
