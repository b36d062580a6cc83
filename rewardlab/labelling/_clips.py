"""Short looping clips of a query's two segments, encoded once as animated GIFs and cached on disk.

A ``ClipRenderer`` turns a segment's observations ``[L, *obs_shape]`` into frames ``[L, H, W, 3]``
uint8. ``env_renderer(env_id)`` draws the environment's own frames: one private instance of the env
is set to the state each observation describes and renders it (MuJoCo bodies from ``qpos``/``qvel``,
classic control from its state; ``rewardlab.vlm.frame_source``), and image observations are their own
frames. ``observation_renderer`` works for any vector observation (one bar per dimension);
``pendulum_renderer`` draws Pendulum-v1 from its ``(cos θ, sin θ, θ̇)`` observation without pygame.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Protocol

import numpy as np

from rewardlab._io import atomic_write_bytes

CLIP_NAME = re.compile(r"^c([0-9a-f]{16})_([01])\.gif$")
"""File names of clips: ``c<16 hex digits>_<side>.gif`` (side 0: left σ¹, 1: right σ²); nothing else is served."""


class ClipRenderer(Protocol):
    """Renders one segment: observations ``[L, *obs_shape]`` → frames ``[L, H, W, 3]`` uint8."""

    def __call__(self, obs: np.ndarray) -> np.ndarray: ...


def env_renderer(env_id: str, size: int = 160) -> ClipRenderer:
    """A renderer of ``env_id``'s own frames at ``size × size`` pixels (one private env, made once, reused).

    Raises:
        ValueError: the env cannot render frames, or its observations do not determine a state it can
            draw (the message names the env); ``observation_renderer`` draws any vector observation.

    Example:
        >>> render = env_renderer("Pendulum-v1", size=64)
        >>> render(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 2.0]])).shape
        (2, 64, 64, 3)
    """
    from rewardlab.vlm import frame_source

    return frame_source(env_id, size).render


def observation_renderer(obs: np.ndarray, size: int = 160) -> np.ndarray:
    """Frames of a vector observation: one bar per dimension, height ∝ tanh(x), on a grey midline.

    Example:
        >>> observation_renderer(np.zeros((3, 4))).shape
        (3, 160, 160, 3)
    """
    from PIL import Image, ImageDraw

    flat = np.asarray(obs, np.float64).reshape(len(obs), -1)
    dims = flat.shape[1]
    frames = []
    width = max(1, (size - 8) // max(dims, 1))
    for row in flat:
        image = Image.new("RGB", (size, size), (250, 250, 250))
        draw = ImageDraw.Draw(image)
        middle = size // 2
        draw.line([(0, middle), (size, middle)], fill=(160, 160, 160))
        for d, value in enumerate(np.tanh(row)):
            x0 = 4 + d * width
            top = middle - int(value * (middle - 6))
            draw.rectangle([x0, min(top, middle), x0 + width - 2, max(top, middle)], fill=(40, 100, 200))
        frames.append(np.asarray(image))
    return np.stack(frames)


def pendulum_renderer(obs: np.ndarray, size: int = 160) -> np.ndarray:
    """Frames of Pendulum-v1 from observations ``(cos θ, sin θ, θ̇)``; θ = 0 points up.

    Example:
        >>> pendulum_renderer(np.array([[1.0, 0.0, 0.0]])).shape
        (1, 160, 160, 3)
    """
    from PIL import Image, ImageDraw

    obs = np.asarray(obs, np.float64)
    if obs.ndim != 2 or obs.shape[1] != 3:
        raise ValueError(f"obs: expected [L, 3] Pendulum observations, got shape {obs.shape}")
    frames = []
    centre = size / 2
    length = size * 0.38
    for cos, sin, speed in obs:
        image = Image.new("RGB", (size, size), (250, 250, 250))
        draw = ImageDraw.Draw(image)
        tip = (centre + length * sin, centre - length * cos)
        draw.line([(centre, centre), tip], fill=(200, 60, 40), width=8)
        draw.ellipse([centre - 5, centre - 5, centre + 5, centre + 5], fill=(30, 30, 30))
        bar = int(np.clip(speed / 8.0, -1, 1) * (size / 2 - 4))
        draw.rectangle([min(centre, centre + bar), size - 10, max(centre, centre + bar), size - 4], fill=(40, 100, 200))
        frames.append(np.asarray(image))
    return np.stack(frames)


def encode_gif(frames: np.ndarray, fps: float = 15.0) -> bytes:
    """An animated, looping GIF of ``frames [L, H, W, 3]`` uint8 at ``fps`` frames per second."""
    from PIL import Image

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(f"frames: expected a non-empty [L, H, W, 3] uint8 array, got {frames.dtype} {frames.shape}")
    images = [Image.fromarray(frame) for frame in frames]
    buffer = io.BytesIO()
    duration = max(20, int(round(1000.0 / fps)))
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=duration, loop=0)
    return buffer.getvalue()


def render_clips(
    clips_dir: str | os.PathLike, key: str, obs_pair: np.ndarray, renderer: ClipRenderer, fps: float = 15.0
) -> tuple[str, str]:
    """Encode the two segments ``obs_pair [2, L, *obs_shape]`` once, as clips named after ``key``; returns the names.

    ``key`` is 16 hex digits (e.g. ``secrets.token_hex(8)``). A clip already on disk is kept (the
    cache): rendering the same key again costs nothing.
    """
    if not re.fullmatch(r"[0-9a-f]{16}", key):
        raise ValueError(f"key: expected 16 lowercase hex digits, got {key!r}")
    folder = Path(clips_dir)
    names = (f"c{key}_0.gif", f"c{key}_1.gif")
    for side, name in enumerate(names):
        path = folder / name
        if not path.exists():
            atomic_write_bytes(path, encode_gif(renderer(np.asarray(obs_pair[side])), fps))
    return names


def clip_path(clips_dir: str | os.PathLike, name: str) -> Path | None:
    """The file of clip ``name`` inside ``clips_dir``, or None for any name that is not a clip name.

    Only names matching ``CLIP_NAME`` resolve, and the resolved path must stay inside ``clips_dir``:
    ``../`` and absolute paths never reach the disk.

    Example:
        >>> clip_path("/tmp/clips", "../etc/passwd") is None
        True
        >>> clip_path("/tmp/clips", "c0123456789abcdef_1.gif").name
        'c0123456789abcdef_1.gif'
    """
    if not CLIP_NAME.match(name):
        return None
    folder = Path(clips_dir).resolve()
    path = (folder / name).resolve()
    return path if path.parent == folder else None
