"""Frame sources: the RGB frame of each observation, from one private renderer per env reused.

A reward over observations needs the picture of each one. A frame source owns one private
environment (its renderer is created once and reused), sets that environment to the state an
observation describes and renders it: MuJoCo environments whose observations hold ``qpos``
(less up to two leading root coordinates, which the tracking camera follows anyway) and
``qvel``, and the classic-control environments whose state the observation determines
(CartPole, Pendulum, MountainCar, Acrobot). Environments with image observations need no
renderer: the observations are the frames.
"""

from __future__ import annotations

import os
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np

from rewardlab.vlm._clip import VLMError

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")  # pygame (classic control) draws; it needs no sound card


@runtime_checkable
class FrameSource(Protocol):
    """Renders the RGB frames ``uint8 [N, S, S, 3]`` of N observations ``[N, *obs_shape]``."""

    size: int

    def render(self, obs: Any) -> np.ndarray: ...


def _unit_angle(cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    return np.arctan2(sin, cos)


# Classic-control environments whose observation determines the state the renderer draws.
_CLASSIC_STATES = {
    "CartPoleEnv": lambda o: o[:4],
    "MountainCarEnv": lambda o: o[:2],
    "Continuous_MountainCarEnv": lambda o: o[:2],
    "PendulumEnv": lambda o: np.array([_unit_angle(o[0], o[1]), o[2]]),
    "AcrobotEnv": lambda o: np.array([_unit_angle(o[0], o[1]), _unit_angle(o[2], o[3]), o[4], o[5]]),
}


def _resize(frame: np.ndarray, size: int) -> np.ndarray:
    if frame.shape[:2] == (size, size):
        return frame
    from PIL import Image

    return np.asarray(Image.fromarray(frame).resize((size, size), Image.Resampling.BILINEAR))


class ImageObsFrames:
    """Observations that are RGB frames ``uint8 [H, W, 3]`` already: returned as they are (resizing is the model's)."""

    def __init__(self, size: int) -> None:
        self.size = int(size)

    def render(self, obs: Any) -> np.ndarray:
        frames = np.asarray(obs)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"obs: expected RGB frames uint8 [N, H, W, 3], got {frames.dtype} {frames.shape}")
        return frames


class StateFrames:
    """Frames of observations rendered by one private instance of the environment, reused.

    MuJoCo: the env is made with ``render_mode="rgb_array"`` at ``size × size``, multisample
    anti-aliasing off (``model.vis.quality.offsamples = 0`` before the context exists) and the
    scene's shadows and reflections off (``mjRND_SHADOW``, ``mjRND_REFLECTION``); each
    observation sets ``qpos``/``qvel`` (``set_state``, which runs ``mj_forward``) and the env's
    own camera renders it. Classic control: the state is set from the observation and
    gymnasium's ``rgb_array`` frame is resized (bilinear) to ``size × size``.

    Args:
        env_id: a registered gymnasium id.
        size: S, the frame side in pixels (the model's input size).
        env_kwargs: more keyword arguments of ``gym.make``.

    Raises:
        VLMError: the env cannot render ``rgb_array`` frames, or its observations do not
            determine a state this class can draw (names the env).
    """

    def __init__(self, env_id: str, size: int, **env_kwargs: Any) -> None:
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 8:
            raise ValueError(f"size: expected an integer >= 8 (pixels), got {size!r}")
        self.env_id = env_id
        self.size = int(size)
        spec = gym.spec(env_id)
        entry = str(spec.entry_point)
        self.kind = "mujoco" if "mujoco" in entry else "classic"
        kwargs = dict(env_kwargs)
        if self.kind == "mujoco":
            kwargs.update(width=self.size, height=self.size)
        try:
            self.env = gym.make(env_id, render_mode="rgb_array", **kwargs)
        except (gym.error.Error, TypeError, ValueError) as error:
            raise VLMError(f"env {env_id!r}: cannot render rgb_array frames: {error}") from None
        base: Any = self.env.unwrapped
        modes = base.metadata.get("render_modes", [])
        if "rgb_array" not in modes:
            raise VLMError(f"env {env_id!r}: cannot render rgb_array frames (render modes {modes})")
        self.env.reset(seed=0)
        obs_shape = self.env.observation_space.shape or ()
        if self.kind == "mujoco":
            model = base.model
            self.obs_dim = int(np.prod(obs_shape))
            self.skip = model.nq + model.nv - self.obs_dim
            if len(obs_shape) != 1 or not 0 <= self.skip <= 2:
                raise VLMError(
                    f"env {env_id!r}: observations of shape {obs_shape} are not qpos (less up to 2 root coordinates) "
                    f"and qvel (nq={model.nq}, nv={model.nv}); render the frames yourself and pass them"
                )
            self.nq = model.nq
            self.root = np.array(base.init_qpos[: self.skip], np.float64)
            model.vis.quality.offsamples = 0  # no MSAA: read before the offscreen context is created
            import mujoco

            viewer = base.mujoco_renderer._get_viewer("rgb_array")
            viewer.scn.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
            viewer.scn.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
            self.renderer = base.mujoco_renderer
        else:
            name = type(base).__name__
            if name not in _CLASSIC_STATES:
                raise VLMError(
                    f"env {env_id!r}: no known map from its observations to a renderable state ({name}); "
                    "render the frames yourself and pass them"
                )
            self.state_of = _CLASSIC_STATES[name]

    def render_one(self, obs: np.ndarray) -> np.ndarray:
        """The frame ``uint8 [S, S, 3]`` of one observation."""
        base: Any = self.env.unwrapped
        if self.kind == "mujoco":
            qpos = np.concatenate([self.root, obs[: self.nq - self.skip]])
            qvel = obs[self.nq - self.skip :]
            base.set_state(qpos, qvel)
            return self.renderer.render("rgb_array")
        base.state = self.state_of(obs)
        if hasattr(base, "last_u"):
            base.last_u = None  # Pendulum draws the last torque as an arrow; a state alone has none
        return _resize(base.render(), self.size)

    def render(self, obs: Any) -> np.ndarray:
        """Frames ``uint8 [N, S, S, 3]`` of observations ``[N, *obs_shape]``, one renderer, one pass.

        Raises:
            ValueError: ``obs`` is not ``[N, *obs_shape]`` of this env.
        """
        obs = np.asarray(obs, np.float64)
        shape = self.env.observation_space.shape
        if obs.ndim != 1 + len(shape or ()) or obs.shape[1:] != shape:
            raise ValueError(f"obs: expected [N, {', '.join(map(str, shape or ()))}] of {self.env_id}, got {obs.shape}")
        out = np.empty((obs.shape[0], self.size, self.size, 3), np.uint8)
        for i, row in enumerate(obs):
            out[i] = self.render_one(row)
        return out

    def close(self) -> None:
        """Close the private env and its renderer."""
        self.env.close()


def frame_source(env: str | gym.Env, size: int) -> FrameSource:
    """The frame source of an env: its image observations, or one :class:`StateFrames` renderer.

    Args:
        env: a gymnasium id or env (only its id and observation space are read).
        size: frame side in pixels (the model's input size).

    Raises:
        VLMError: the env cannot render, or its observations cannot be drawn (names it).
    """
    if isinstance(env, gym.Env):
        space = env.observation_space
        if isinstance(space, gym.spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 3:
            return ImageObsFrames(size)
        if env.spec is None:
            raise VLMError(f"env {env!r}: not registered (no spec); pass a gymnasium id or frames")
        env = env.spec.id
    if not isinstance(env, str):
        raise ValueError(f"env: expected a gymnasium id or env, got {type(env).__name__}")
    return StateFrames(env, size)
