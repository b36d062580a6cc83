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
import subprocess
import weakref
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np

from rewardlab.vlm._errors import VLMError

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

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


# The worker imports this module without the package's __init__ (which loads torch and
# transformers, seconds per worker): a bare package object stands in for rewardlab.vlm.
_WORKER_BOOT = """
import sys, types
package = types.ModuleType("rewardlab.vlm")
package.__path__ = [sys.argv[2]]
sys.modules["rewardlab.vlm"] = package
from rewardlab.vlm._frames import _render_worker
_render_worker(sys.argv[1])
"""


def _render_worker(config: str) -> None:
    """One :class:`ParallelFrames` worker: a private :class:`StateFrames`, observations in, frames out.

    Started as ``python -c`` with the two pipe ends in ``config`` (JSON), so the parent's main
    script is never imported again.
    """
    import json
    from multiprocessing.connection import Connection

    settings = json.loads(config)
    requests = Connection(settings["in_fd"], writable=False)
    replies = Connection(settings["out_fd"], readable=False)
    env_id = settings["env_id"]
    try:
        source = StateFrames(env_id, settings["size"], **settings["env_kwargs"])
    except Exception as error:  # noqa: BLE001 - reported to the parent, which raises it
        text = str(error) if isinstance(error, VLMError) else f"env {env_id!r}: {type(error).__name__}: {error}"
        replies.send_bytes(b"E" + text.encode())
        return
    replies.send_bytes(b"R" + json.dumps(list(source.env.observation_space.shape or ())).encode())
    shape = tuple(source.env.observation_space.shape or ())
    try:
        while True:
            message = requests.recv_bytes()
            if not message:
                break
            obs = np.frombuffer(message, np.float64).reshape(-1, *shape)
            try:
                replies.send_bytes(b"F" + source.render(obs).tobytes())
            except Exception as error:  # noqa: BLE001 - reported to the parent, which raises it
                replies.send_bytes(b"E" + f"{type(error).__name__}: {error}".encode())
    except (EOFError, OSError):  # the parent went away
        pass
    finally:
        source.close()


def _stop_workers(requests: list[Connection], replies: list[Connection], processes: list[Any]) -> None:
    for conn in requests:
        try:
            conn.send_bytes(b"")
        except (OSError, ValueError):
            pass
        conn.close()
    for process in processes:
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for conn in replies:
        conn.close()


class ParallelFrames:
    """Frames of observations rendered by ``workers`` processes, each with its own :class:`StateFrames`.

    A batch of N observations is split into ``workers`` contiguous parts rendered at once, so
    the frames of a vector env use every core (Mesa's software rasteriser draws a small frame on
    one thread). The frames equal those of one :class:`StateFrames`. The workers start once
    (each imports gymnasium and makes its env; the caller's main script is not run again), live
    until :meth:`close` or garbage collection, and exit when the parent does.

    Args:
        env_id: a registered gymnasium id (one :class:`StateFrames` can draw).
        size: S, the frame side in pixels.
        workers: rendering processes (≥ 1; the number of cores is a good choice).
        env_kwargs: more keyword arguments of ``gym.make`` (JSON values).

    Raises:
        VLMError: the env cannot render or be drawn (names it, as :class:`StateFrames`).
    """

    def __init__(self, env_id: str, size: int, workers: int = 2, **env_kwargs: Any) -> None:
        import json
        import sys
        from multiprocessing.connection import Connection

        if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
            raise ValueError(f"workers: expected an integer >= 1, got {workers!r}")
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 8:
            raise ValueError(f"size: expected an integer >= 8 (pixels), got {size!r}")
        self.env_id, self.size, self.workers = env_id, int(size), int(workers)
        self._requests: list[Connection] = []
        self._replies: list[Connection] = []
        self._processes: list[Any] = []
        self._finalizer = weakref.finalize(self, _stop_workers, self._requests, self._replies, self._processes)
        env = {**os.environ}
        env.setdefault("LP_NUM_THREADS", "1")  # Mesa's software rasteriser: one thread per worker
        for _ in range(self.workers):
            request_read, request_write = os.pipe()
            reply_read, reply_write = os.pipe()
            config = {"in_fd": request_read, "out_fd": reply_write, "env_id": env_id, "size": self.size}
            config["env_kwargs"] = env_kwargs
            code = _WORKER_BOOT
            try:
                process = subprocess.Popen(
                    [sys.executable, "-c", code, json.dumps(config), os.path.dirname(os.path.abspath(__file__))],
                    stdin=subprocess.DEVNULL,
                    pass_fds=(request_read, reply_write),
                    env=env,
                )
            finally:
                os.close(request_read)
                os.close(reply_write)
            self._requests.append(Connection(request_write, readable=False))
            self._replies.append(Connection(reply_read, writable=False))
            self._processes.append(process)
        shapes = []
        for conn in self._replies:
            try:
                reply = conn.recv_bytes()
            except EOFError:
                self.close()
                raise VLMError(f"env {env_id!r}: a rendering worker exited while starting") from None
            if reply[:1] == b"E":
                self.close()
                raise VLMError(reply[1:].decode())
            shapes.append(tuple(json.loads(reply[1:])))
        self.obs_shape: tuple[int, ...] = shapes[0]

    def render(self, obs: Any) -> np.ndarray:
        """Frames ``uint8 [N, S, S, 3]`` of observations ``[N, *obs_shape]``, the parts rendered at once.

        Raises:
            ValueError: ``obs`` is not ``[N, *obs_shape]`` of this env.
            VLMError: a worker failed (its error) or has exited.
        """
        obs = np.ascontiguousarray(obs, np.float64)
        if obs.ndim != 1 + len(self.obs_shape) or obs.shape[1:] != self.obs_shape:
            expected = ", ".join(map(str, self.obs_shape))
            raise ValueError(f"obs: expected [N, {expected}] of {self.env_id}, got {obs.shape}")
        if not self._requests:
            raise VLMError(f"frames of {self.env_id!r}: the rendering workers are closed")
        out = np.empty((obs.shape[0], self.size, self.size, 3), np.uint8)
        parts = [part for part in np.array_split(np.arange(obs.shape[0]), self.workers) if part.size]
        for part, conn in zip(parts, self._requests, strict=False):
            conn.send_bytes(obs[part[0] : part[-1] + 1].tobytes())
        errors = []
        for part, conn in zip(parts, self._replies, strict=False):
            try:
                reply = conn.recv_bytes()
            except EOFError:
                errors.append("a rendering worker exited")
                continue
            if reply[:1] == b"E":
                errors.append(reply[1:].decode())
                continue
            out[part[0] : part[-1] + 1] = np.frombuffer(reply, np.uint8, offset=1).reshape(-1, self.size, self.size, 3)
        if errors:
            raise VLMError(f"frames of {self.env_id!r}: {errors[0]}")
        return out

    def close(self) -> None:
        """Stop the workers (each closes its env and renderer)."""
        self._finalizer()
        self._requests.clear()
        self._replies.clear()
        self._processes.clear()


def frame_source(env: str | gym.Env, size: int, workers: int = 1) -> FrameSource:
    """The frame source of an env: its image observations, or :class:`StateFrames` renderers.

    Args:
        env: a gymnasium id or env (only its id and observation space are read).
        size: frame side in pixels (the model's input size).
        workers: 1: one :class:`StateFrames` in this process; more: a :class:`ParallelFrames`
            of that many rendering processes (the frames of a batch drawn on several cores).

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
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"workers: expected an integer >= 1, got {workers!r}")
    return StateFrames(env, size) if workers == 1 else ParallelFrames(env, size, workers)
