"""Fast offscreen rendering of gymnasium MuJoCo envs.

Default MuJoCo offscreen rendering draws shadows (a 4096² shadow map per light),
planar reflections (the scene drawn twice) and 4× multisample anti-aliasing. On a
software OpenGL (EGL on a machine without GPU) that is most of the frame time
(docs/benchmarks.md has the frame rates); reward models that look at frames (VLM rewards) do not need any of it.
:func:`configure_fast_rendering` turns the three off: ``model.vis.quality.offsamples
= 0`` (no multisampling of the offscreen buffer, read when the ``MjrContext`` is
built), ``shadowsize = 0`` (no shadow map) and the scene flags ``mjRND_SHADOW`` and
``mjRND_REFLECTION`` of the env's viewer. Set ``MUJOCO_GL=egl`` before importing
gymnasium's MuJoCo envs for headless rendering.

Measured on this project's shared 2-core CPU machine (EGL, software rendering, default
480×480, :func:`measure_render_fps`: random step + render), frames/s default → fast
(→ fast with ``skybox=False``): HalfCheetah-v5 13 → 145 (170), Hopper-v5 10 → 78 (109),
Walker2d-v5 15 → 131 (172), Ant-v5 13 → 104 (130). The machine is shared, so figures vary
by ±20 % between runs.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import gymnasium as gym
import numpy as np

_OFFSCREEN_MODES = ("rgb_array", "depth_array", "rgbd_tuple")


def _mujoco_parts(env: gym.Env) -> tuple[Any, Any, Any]:  # (MujocoEnv, its renderer, mujoco.MjModel)
    base = env.unwrapped
    renderer = getattr(base, "mujoco_renderer", None)
    model = getattr(base, "model", None)
    if renderer is None or model is None or not hasattr(model, "vis"):
        raise TypeError(f"env: expected a gymnasium MuJoCo env (with mujoco_renderer), got {type(base).__name__}")
    return base, renderer, model


@functools.cache
def _fast_viewer_class() -> type:
    from gymnasium.envs.mujoco.mujoco_rendering import OffScreenViewer

    class FastOffScreenViewer(OffScreenViewer):
        """An ``OffScreenViewer`` that makes its own GL context current before every frame.

        gymnasium's viewer assumes its context is still current; once another env's viewer
        has rendered in between, frames come out black when the two contexts' buffers
        differ (as they do between fast and default settings).
        """

        def render(self, render_mode: str | None, camera_id: int | None = None, segmentation: bool = False) -> Any:
            self.make_context_current()
            return super().render(render_mode, camera_id=camera_id, segmentation=segmentation)

    return FastOffScreenViewer


def configure_fast_rendering(
    env: gym.Env,
    *,
    shadows: bool = False,
    reflections: bool = False,
    skybox: bool = True,
    multisamples: int = 0,
) -> gym.Env:
    """Turn off the expensive parts of MuJoCo offscreen rendering for ``env`` (in place).

    Sets ``model.vis.quality.offsamples = multisamples`` (and ``shadowsize = 0`` without
    shadows); both are read when the OpenGL context is built, so the env's viewer is
    (re)created here, with the scene flags ``mjRND_SHADOW``, ``mjRND_REFLECTION`` and
    ``mjRND_SKYBOX`` set. The new viewer makes its GL context current before each frame,
    so several such envs can render in turn (gymnasium's own viewers do not: an env with
    a default viewer renders black frames after another env's context with different
    settings became current). Camera changes made on an earlier viewer are dropped. The
    env's physics are untouched.

    Args:
        env: a gymnasium MuJoCo env (possibly wrapped) with an offscreen ``render_mode``
            (``"rgb_array"``, ``"depth_array"`` or ``"rgbd_tuple"``).
        shadows: keep shadows.
        reflections: keep planar reflections.
        skybox: keep the skybox (on by default: turning it off changes the background).
        multisamples: MSAA samples of the offscreen buffer (MuJoCo's default is 4).

    Returns:
        ``env``, for chaining.

    Raises:
        TypeError: not a MuJoCo env.
        ValueError: no offscreen ``render_mode``, or bad ``multisamples``.

    Example:
        >>> env = configure_fast_rendering(gym.make("HalfCheetah-v5", render_mode="rgb_array"))
        >>> _ = env.reset(seed=0)
        >>> frame = env.render()
        >>> frame.shape, frame.dtype, int(env.unwrapped.model.vis.quality.offsamples)
        ((480, 480, 3), dtype('uint8'), 0)
    """
    import mujoco

    base, renderer, model = _mujoco_parts(env)
    if int(multisamples) != multisamples or multisamples < 0:
        raise ValueError(f"multisamples: expected an integer >= 0, got {multisamples!r}")
    render_mode = base.render_mode
    if render_mode not in _OFFSCREEN_MODES:
        raise ValueError(f"env.render_mode: expected one of {_OFFSCREEN_MODES}, got {render_mode!r}")
    model.vis.quality.offsamples = int(multisamples)
    if not shadows:
        model.vis.quality.shadowsize = 0
    old = renderer._viewers.pop(render_mode, None)
    if old is not None:
        # Free the old MjrContext in its own GL context: left to the garbage collector it
        # would free GL objects of whatever context is current then (the new one).
        old.make_context_current()
        old.con.free()
        old.free()
    viewer = _fast_viewer_class()(model, base.data, renderer.width, renderer.height, renderer.max_geom, renderer._vopt)
    renderer.viewer = viewer
    renderer._set_cam_config()
    renderer._viewers[render_mode] = viewer
    viewer.scn.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = int(shadows)
    viewer.scn.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = int(reflections)
    viewer.scn.flags[mujoco.mjtRndFlag.mjRND_SKYBOX] = int(skybox)
    return env


def measure_render_fps(env: gym.Env, num_frames: int = 50, *, seed: int = 0) -> float:
    """Frames per second of ``env.step(random action)`` + ``env.render()``, after one warm-up frame.

    Args:
        env: an env with an offscreen ``render_mode``.
        num_frames: frames to time, ≥ 1.
        seed: seed of the reset and of the action space.

    Returns:
        Frames per second (wall clock).

    Raises:
        ValueError: bad ``num_frames``.

    Example:
        >>> fps = measure_render_fps(gym.make("rewardlab/Delivery-v0", render_mode="rgb_array"), num_frames=2)
        >>> fps > 0
        True
    """
    if int(num_frames) != num_frames or num_frames < 1:
        raise ValueError(f"num_frames: expected an integer >= 1, got {num_frames!r}")
    env.reset(seed=seed)
    env.action_space.seed(seed)
    frame: Any = env.render()
    if not isinstance(frame, np.ndarray):
        raise ValueError(f"env.render_mode: expected an offscreen mode returning arrays, got {env.render_mode!r}")
    start = time.perf_counter()
    for _ in range(int(num_frames)):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        env.render()
        if terminated or truncated:
            env.reset()
    return num_frames / (time.perf_counter() - start)
