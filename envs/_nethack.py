"""NetHack-like environments (NLE and MiniHack) with a compact observation and tty rendering.

``make_nethack(env_id)`` builds an NLE (``NetHackScore-v0``, ``NetHackChallenge-v0``, …) or
MiniHack (``MiniHack-Room-5x5-v0``, ``MiniHack-Corridor-R2-v0``, ``MiniHack-KeyRoom-S5-v0``,
``MiniHack-River-v0``, …) env and wraps it in :class:`NetHackObservation`:

* ``obs["glyphs"]``: the full glyph map ``[21, 79]`` int16 (glyph ids in ``[0, MAX_GLYPH]``),
* ``obs["glyphs_crop"]``: the ``crop_size × crop_size`` glyphs centred on the agent (padded
  with glyph ``MAX_GLYPH``, which no map cell holds),
* ``obs["blstats"]``: the 27 bottom-line statistics as float32 (position, strength, hit points,
  depth, gold, …, in NLE's order),
* ``obs["message"]``: the game's message as 256 bytes (NUL-padded);

``reset(seed=s)`` seeds NetHack's own RNGs from ``s`` (:func:`game_seeds`: core, disp and the
level generator lgen, with NetHack's reseeding off); later ``reset()`` calls draw the next
episode's game seeds from a generator seeded with ``s``, so a run's episodes follow from its seed.
``reset()`` before any seed leaves NLE's seeding alone (fresh system randomness each episode).

``info["message"]`` holds the decoded message text (for message reward models), and the tty
(24 × 80 characters and colours) renders as text (``render_mode="ansi"``) or as an RGB image
(``"rgb_array"``, for videos and labelling UIs). The ``rewardlab/``-prefixed ids of
``NETHACK_ENV_IDS`` are registered with gymnasium (``gym.make("rewardlab/MiniHack-Room-5x5-v0")``);
``nle`` and ``minihack`` (the ``[nethack]`` extra) are imported only when such an env is made.

Küttler et al., "The NetHack Learning Environment", NeurIPS 2020; Samvelyan et al.,
"MiniHack the Planet", NeurIPS Datasets and Benchmarks 2021.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np

MAX_GLYPH = 5976
"""Number of NetHack glyph ids (``nle.nethack.MAX_GLYPH``); also the padding id of the crop."""
DUNGEON_SHAPE = (21, 79)
TTY_SHAPE = (24, 80)
NUM_BLSTATS = 27
MESSAGE_LENGTH = 256
CELL_SIZE = (8, 14)  # (width, height) in pixels of one tty character in rgb_array frames

NETHACK_ENV_IDS = (
    "MiniHack-Room-5x5-v0",
    "MiniHack-Room-15x15-v0",
    "MiniHack-Corridor-R2-v0",
    "MiniHack-Corridor-R3-v0",
    "MiniHack-KeyRoom-S5-v0",
    "MiniHack-River-v0",
    "NetHackScore-v0",
    "NetHackChallenge-v0",
)
"""The NLE and MiniHack tasks registered as ``rewardlab/<id>`` (any other id works with ``make_nethack``)."""

_NLE_KEYS = ("glyphs", "blstats", "message", "tty_chars", "tty_colors")

# The 16 colours of NetHack's tty (CLR_BLACK … CLR_WHITE); black is drawn dark grey to stay visible.
_PALETTE = np.array(
    [
        [64, 64, 64],
        [170, 0, 0],
        [0, 170, 0],
        [170, 85, 0],
        [0, 0, 170],
        [170, 0, 170],
        [0, 170, 170],
        [170, 170, 170],
        [85, 85, 85],
        [255, 85, 85],
        [85, 255, 85],
        [255, 255, 85],
        [85, 85, 255],
        [255, 85, 255],
        [85, 255, 255],
        [255, 255, 255],
    ],
    np.uint8,
)


def decode_message(message: np.ndarray) -> str:
    """The text of NLE's ``message`` bytes (NUL-padded), stripped.

    Example:
        >>> decode_message(np.frombuffer(b"You find a hidden passage.\\0\\0", np.uint8))
        'You find a hidden passage.'
    """
    return bytes(np.asarray(message, np.uint8)).split(b"\0", 1)[0].decode("latin-1").strip()


def crop_glyphs(glyphs: np.ndarray, x: int, y: int, crop_size: int) -> np.ndarray:
    """The ``crop_size × crop_size`` window of ``glyphs`` [rows, cols] centred on column x, row y.

    Cells outside the map are ``MAX_GLYPH``.

    Example:
        >>> g = np.arange(12, dtype=np.int16).reshape(3, 4)
        >>> crop_glyphs(g, x=0, y=0, crop_size=3)
        array([[5976, 5976, 5976],
               [5976,    0,    1],
               [5976,    4,    5]], dtype=int16)
    """
    if crop_size < 1 or crop_size % 2 == 0:
        raise ValueError(f"crop_size: expected an odd integer >= 1, got {crop_size!r}")
    half = crop_size // 2
    padded = np.full((glyphs.shape[0] + 2 * half, glyphs.shape[1] + 2 * half), MAX_GLYPH, np.int16)
    padded[half : half + glyphs.shape[0], half : half + glyphs.shape[1]] = glyphs
    return padded[y : y + crop_size, x : x + crop_size].copy()


def game_seeds(seed: int | np.random.SeedSequence) -> tuple[int, int, int]:
    """NetHack's ``(core, disp, lgen)`` RNG seeds derived from ``seed`` with numpy's ``SeedSequence``.

    ``core`` drives the game, ``disp`` the display-only random choices, ``lgen`` level generation
    (for MiniHack also the placement of the agent and objects and the starting attributes). Each is
    in ``[0, 2**63)``.

    Example:
        >>> game_seeds(0) == game_seeds(0), game_seeds(0) == game_seeds(1)
        (True, False)
    """
    sequence = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    core, disp, lgen = (int(word >> np.uint64(1)) for word in sequence.generate_state(3, np.uint64))
    return core, disp, lgen


def _accepts_game_seeds(env: gym.Env) -> bool:
    """Whether ``env`` (unwrapped) takes NLE's ``seed(core, disp, reseed, lgen)``; NetHackChallenge raises on it."""
    challenge = getattr(sys.modules.get("nle.env.tasks"), "NetHackChallenge", None)
    return callable(getattr(env, "seed", None)) and not (challenge is not None and isinstance(env, challenge))


def tty_text(tty_chars: np.ndarray) -> str:
    """The tty screen as text: one line per row, trailing blanks removed.

    Example:
        >>> tty_text(np.array([[ord("@"), 32], [32, ord(".")]], np.uint8))
        '@\\n .'
    """
    return "\n".join(bytes(row).decode("latin-1").rstrip() for row in np.asarray(tty_chars, np.uint8))


def tty_rgb(tty_chars: np.ndarray, tty_colors: np.ndarray) -> np.ndarray:
    """The tty screen as an RGB image ``[24·14, 80·8, 3]`` uint8: each character in its colour on black.

    Characters are drawn with Pillow's default bitmap font, one 8 × 14 cell each.
    """
    from PIL import Image, ImageDraw, ImageFont

    chars = np.asarray(tty_chars, np.uint8)
    colors = np.asarray(tty_colors).astype(np.int64) & 15
    width, height = CELL_SIZE
    image = Image.new("RGB", (chars.shape[1] * width, chars.shape[0] * height))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    for row, col in zip(*np.nonzero(chars > 32), strict=True):
        color = tuple(int(c) for c in _PALETTE[colors[row, col]])
        draw.text((int(col) * width, int(row) * height), chr(int(chars[row, col])), fill=color, font=font)
    return np.asarray(image, np.uint8)


class NetHackObservation(gym.Wrapper):
    """An NLE/MiniHack env with the compact observation of this module and tty rendering.

    The wrapped env must return at least the NLE keys ``glyphs``, ``blstats``, ``message``,
    ``tty_chars`` and ``tty_colors`` (``make_nethack`` asks for them). The agent's (x, y)
    position is ``blstats[0:2]``.

    ``reset(seed=s)`` sets NetHack's core, disp and lgen seeds to :func:`game_seeds` of
    ``s`` (reseeding off) and seeds a generator with ``s`` from which each later ``reset()``
    draws the next episode's game seeds; same seed and same actions give the same episodes.
    Before the first seeded reset, ``reset()`` keeps NLE's own random seeding. (A MiniHack env
    made with its ``seeds`` list of level seeds still picks from that list at each reset.)

    Args:
        env: the NLE or MiniHack env.
        crop_size: odd side of the glyph crop around the agent.
        render_mode: None, ``"ansi"`` (the tty as text) or ``"rgb_array"`` (the tty as an image).

    Raises:
        ValueError: an even or non-positive ``crop_size``, an unknown ``render_mode``, or an
            env whose observations lack one of the NLE keys.
    """

    def __init__(self, env: gym.Env, *, crop_size: int = 9, render_mode: str | None = None) -> None:
        super().__init__(env)
        space = env.observation_space
        missing = [key for key in _NLE_KEYS if not isinstance(space, gym.spaces.Dict) or key not in space.spaces]
        if missing:
            raise ValueError(f"env: expected an NLE observation with keys {_NLE_KEYS}, missing {missing}")
        if not isinstance(crop_size, int) or crop_size < 1 or crop_size % 2 == 0:
            raise ValueError(f"crop_size: expected an odd integer >= 1, got {crop_size!r}")
        if render_mode not in (None, "ansi", "rgb_array"):
            raise ValueError(f"render_mode: expected None, 'ansi' or 'rgb_array', got {render_mode!r}")
        self.metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 10}
        self.crop_size = crop_size
        self._render_mode = render_mode
        big = float(np.iinfo(np.int32).max)
        self.observation_space = gym.spaces.Dict(
            {
                "glyphs": gym.spaces.Box(0, MAX_GLYPH, DUNGEON_SHAPE, np.int16),
                "glyphs_crop": gym.spaces.Box(0, MAX_GLYPH, (crop_size, crop_size), np.int16),
                "blstats": gym.spaces.Box(-big, big, (NUM_BLSTATS,), np.float32),
                "message": gym.spaces.Box(0, 255, (MESSAGE_LENGTH,), np.uint8),
            }
        )
        self._tty: tuple[np.ndarray, np.ndarray] | None = None
        self._seed_sequence: np.random.SeedSequence | None = None
        self.seeds_game = _accepts_game_seeds(env.unwrapped)
        """Whether ``reset(seed=)`` sets the game's RNG seeds (False for ``NetHackChallenge-v0``, which refuses them)."""

    @property
    def render_mode(self) -> str | None:  # type: ignore[override]
        """``None``, ``"ansi"`` or ``"rgb_array"``."""
        return self._render_mode

    def _convert(self, raw: dict[str, Any], info: dict[str, Any]) -> dict[str, np.ndarray]:
        glyphs = np.asarray(raw["glyphs"], np.int16)
        blstats = np.asarray(raw["blstats"])
        self._tty = (np.array(raw["tty_chars"], np.uint8), np.array(raw["tty_colors"]))
        message = np.array(raw["message"], np.uint8)
        info["message"] = decode_message(message)
        return {
            "glyphs": glyphs.copy(),
            "glyphs_crop": crop_glyphs(glyphs, int(blstats[0]), int(blstats[1]), self.crop_size),
            "blstats": blstats.astype(np.float32),
            "message": message,
        }

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        episode: np.random.SeedSequence | None = None
        if seed is not None and self.seeds_game:
            self._seed_sequence = episode = np.random.SeedSequence(seed)
        elif seed is not None:
            warnings.warn(
                f"{self.env.unwrapped.__class__.__name__} refuses game seeds: reset(seed=) does not make "
                "its episodes reproducible",
                stacklevel=2,
            )
        elif self._seed_sequence is not None:
            episode = self._seed_sequence.spawn(1)[0]
        if episode is not None:
            core, disp, lgen = game_seeds(episode)
            # NLE applies these at its next reset; reseed=False stops NetHack's own reseeding.
            self.env.unwrapped.seed(core, disp, reseed=False, lgen=lgen)  # type: ignore[attr-defined]
        raw, info = self.env.reset(seed=seed, options=options)
        info = dict(info)
        return self._convert(raw, info), info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        raw, reward, terminated, truncated, info = self.env.step(action)
        info = dict(info)
        return self._convert(raw, info), reward, terminated, truncated, info

    def render(self) -> Any:
        """The last tty screen: text (``"ansi"``), an RGB image (``"rgb_array"``) or None."""
        if self._render_mode is None or self._tty is None:
            return None
        if self._render_mode == "ansi":
            return tty_text(self._tty[0])
        return tty_rgb(*self._tty)


def make_nethack(
    env_id: str, *, crop_size: int = 9, render_mode: str | None = None, **kwargs: Any
) -> NetHackObservation:
    """An NLE or MiniHack env by id (``"MiniHack-Room-5x5-v0"``, ``"NetHackScore-v0"``, …), wrapped in :class:`NetHackObservation`.

    Args:
        env_id: a gymnasium id registered by ``nle`` or ``minihack``.
        crop_size: odd side of the glyph crop around the agent.
        render_mode: None, ``"ansi"`` or ``"rgb_array"`` (the tty).
        **kwargs: passed to ``gym.make`` (e.g. ``max_episode_steps``, MiniHack's ``reward_win``).

    Raises:
        ImportError: ``nle``/``minihack`` is not installed (``pip install "rewardlab[nethack]"``).
        ValueError: ``env_id`` is not an NLE/MiniHack id, or a bad ``crop_size``/``render_mode``.
    """
    if not isinstance(env_id, str) or not env_id.startswith(("MiniHack-", "NetHack")):
        raise ValueError(f"env_id: expected an NLE ('NetHack…') or MiniHack ('MiniHack-…') id, got {env_id!r}")
    module = "minihack" if env_id.startswith("MiniHack-") else "nle"
    try:
        importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"env_id={env_id!r} needs the {module!r} package: pip install 'rewardlab[nethack]' ({error})"
        ) from error
    # With game seeds set, the moon phase, Friday 13th and night follow the seed, not the clock.
    kwargs.setdefault("fix_moon_phase", True)
    env = gym.make(env_id, observation_keys=_NLE_KEYS, **kwargs)
    return NetHackObservation(env, crop_size=crop_size, render_mode=render_mode)


def register_nethack_envs() -> None:
    """Register ``rewardlab/<id>`` for each id of ``NETHACK_ENV_IDS`` (idempotent; no import of nle).

    Example:
        >>> register_nethack_envs()
        >>> "rewardlab/MiniHack-Room-5x5-v0" in gym.registry
        True
    """
    for env_id in NETHACK_ENV_IDS:
        name = f"rewardlab/{env_id}"
        if name not in gym.registry:
            gym.register(id=name, entry_point="rewardlab_envs._nethack:make_nethack", kwargs={"env_id": env_id})
