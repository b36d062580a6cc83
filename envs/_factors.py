"""Named reward factors for classic-control and MuJoCo envs, fixed horizons, and ``make``.

``RewardFactors`` reports at every step ``info["reward_factors"]`` (float32 [K]),
the terms the env's reward is built from, described by a static :class:`FactorSpec`.
The factor settings follow HERON (Bukharin et al., "Deep Reinforcement Learning from
Hierarchical Weak Preference Feedback"); the factors themselves are the env's own
reward terms, so Σ_k w_k z_k reproduces the env reward exactly:

* Pendulum-v1: θ² (−), θ̇² (−), u² (−) with θ ∈ [−π, π) and θ̇ of the pre-step state
  and u the clipped torque; r = −θ² − 0.1 θ̇² − 0.001 u².
* MountainCarContinuous-v0: goal reached (+), a² (−) with a the unclipped action;
  r = 100·goal − 0.1 a².
* HalfCheetah-v5: forward reward (+), control cost (−); r = forward − control.
* Hopper-v5, Walker2d-v5: forward reward (+), healthy reward (+), control cost (−);
  r = forward + healthy − control.
* Ant-v5: forward (+), healthy (+), control cost (−), contact cost (−);
  r = forward + healthy − control − contact.
* rewardlab/Delivery-v0: the six cell features, reported by the env itself; r = w·φ.

The MuJoCo factors are read from the v5 envs' ``info`` keys (``reward_forward``,
``reward_survive``, ``reward_ctrl`` and ``reward_contact``, the last two negated into
costs), so env kwargs such as ``ctrl_cost_weight`` are respected with weights ±1.
HERON's "progress" and "power cost" for HalfCheetah are the forward reward and the
control cost. Default importance is the order listed, most important first (for
Pendulum, MountainCar and HalfCheetah the order of HERON's factor settings).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, NamedTuple, SupportsFloat

import gymnasium as gym
import numpy as np

from ._spec import FactorSpec


class _FactorSource(NamedTuple):
    """How to read one env's factors: ``compute(env.unwrapped, pre_step_state, action, terminated, info)``."""

    # The env arguments are the unwrapped env of that id (its own attributes are read), or None for spec by id.
    spec: Callable[[Any], FactorSpec]  # unwrapped env -> spec
    compute: Callable[[Any, Any, Any, bool, dict], np.ndarray] | None  # None: the env reports them itself
    pre_step: Callable[[Any], Any] | None = None  # unwrapped env -> what compute needs from before the step


def _angle_normalize(theta: float) -> float:
    return ((theta + np.pi) % (2 * np.pi)) - np.pi


def _pendulum_factors(env: Any, pre_state: np.ndarray, action: Any, terminated: bool, info: dict) -> np.ndarray:
    del terminated, info
    theta, theta_dot = float(pre_state[0]), float(pre_state[1])
    torque = float(np.clip(action, -env.max_torque, env.max_torque)[0])  # as PendulumEnv.step clips it
    return np.array([_angle_normalize(theta) ** 2, theta_dot**2, torque**2], dtype=np.float32)


def _mountain_car_factors(env: gym.Env, pre_state: Any, action: Any, terminated: bool, info: dict) -> np.ndarray:
    del env, pre_state, info
    # The env pays 100 exactly when it terminates; reading the raw flag (this wrapper
    # sits inside FixedHorizon) avoids re-deriving it from the float32-rounded state.
    return np.array([float(terminated), float(action[0]) ** 2], dtype=np.float32)


def _mujoco_factors(*terms: tuple[str, float]) -> Callable[..., np.ndarray]:
    def compute(env: gym.Env, pre_state: Any, action: Any, terminated: bool, info: dict) -> np.ndarray:
        del env, pre_state, action, terminated
        return np.array([scale * float(info[key]) for key, scale in terms], dtype=np.float32)

    return compute


def _static(spec: FactorSpec) -> Callable[[gym.Env], FactorSpec]:
    return lambda env: spec


_LOCOMOTION_SPEC = FactorSpec(
    names=("forward_reward", "healthy_reward", "control_cost"),
    signs=(1, 1, -1),
    importance=(0, 1, 2),
    weights=(1.0, 1.0, -1.0),
)
_LOCOMOTION_FACTORS = _mujoco_factors(("reward_forward", 1.0), ("reward_survive", 1.0), ("reward_ctrl", -1.0))

_FACTOR_SOURCES: dict[str, _FactorSource] = {
    "Pendulum-v1": _FactorSource(
        spec=_static(
            FactorSpec(
                names=("angle_squared", "angular_velocity_squared", "torque_squared"),
                signs=(-1, -1, -1),
                importance=(0, 1, 2),
                weights=(-1.0, -0.1, -0.001),
            )
        ),
        compute=_pendulum_factors,
        pre_step=lambda env: np.array(env.state, dtype=np.float64),
    ),
    "MountainCarContinuous-v0": _FactorSource(
        spec=_static(
            FactorSpec(
                names=("goal_reached", "action_squared"), signs=(1, -1), importance=(0, 1), weights=(100.0, -0.1)
            )
        ),
        compute=_mountain_car_factors,
    ),
    "HalfCheetah-v5": _FactorSource(
        spec=_static(
            FactorSpec(names=("forward_reward", "control_cost"), signs=(1, -1), importance=(0, 1), weights=(1.0, -1.0))
        ),
        compute=_mujoco_factors(("reward_forward", 1.0), ("reward_ctrl", -1.0)),
    ),
    "Hopper-v5": _FactorSource(spec=_static(_LOCOMOTION_SPEC), compute=_LOCOMOTION_FACTORS),
    "Walker2d-v5": _FactorSource(spec=_static(_LOCOMOTION_SPEC), compute=_LOCOMOTION_FACTORS),
    "Ant-v5": _FactorSource(
        spec=_static(
            FactorSpec(
                names=("forward_reward", "healthy_reward", "control_cost", "contact_cost"),
                signs=(1, 1, -1, -1),
                importance=(0, 1, 2, 3),
                weights=(1.0, 1.0, -1.0, -1.0),
            )
        ),
        compute=_mujoco_factors(
            ("reward_forward", 1.0), ("reward_survive", 1.0), ("reward_ctrl", -1.0), ("reward_contact", -1.0)
        ),
    ),
    "rewardlab/Delivery-v0": _FactorSource(spec=lambda env: env.factor_spec, compute=None),
}

FACTOR_ENV_IDS = tuple(_FACTOR_SOURCES)


def _env_id(env: gym.Env) -> str | None:
    spec = env.spec
    return None if spec is None else spec.id


def _source(env_id: str | None) -> _FactorSource:
    if env_id not in _FACTOR_SOURCES:
        raise ValueError(f"env_id: expected an env with reward factors, one of {FACTOR_ENV_IDS}, got {env_id!r}")
    return _FACTOR_SOURCES[env_id]


def factor_spec(env: gym.Env | str) -> FactorSpec:
    """The :class:`FactorSpec` of an env (instance, for env-dependent weights) or env id.

    Args:
        env: a gymnasium env made with ``gym.make``/:func:`make`, or one of ``FACTOR_ENV_IDS``.

    Returns:
        The env's factor spec.

    Raises:
        ValueError: the env has no reward factors.

    Example:
        >>> factor_spec("HalfCheetah-v5").names
        ('forward_reward', 'control_cost')
    """
    if isinstance(env, str):
        if env == "rewardlab/Delivery-v0":
            from ._delivery import delivery_factor_spec

            return delivery_factor_spec()
        return _source(env).spec(None)
    return _source(_env_id(env)).spec(env.unwrapped)


class RewardFactors(gym.Wrapper):
    """Adds ``info["reward_factors"]`` (float32 [K]) at every step; ``factor_spec`` describes them.

    Wrap the env as ``gym.make`` returns it: the factors are computed from the action
    this wrapper receives and from the base env's state and ``info``, so an action
    wrapper placed *between* this wrapper and the base env would desynchronise them.
    The reward is passed through unchanged; ``factor_spec.recombine(z)`` equals it (up to
    float32 rounding of z) for every supported env. See the module docstring.

    Args:
        env: an env made with ``gym.make`` whose id is in ``FACTOR_ENV_IDS``.

    Raises:
        ValueError: unsupported env id.

    Example:
        >>> env = RewardFactors(gym.make("Pendulum-v1"))
        >>> _ = env.reset(seed=0)
        >>> _, reward, _, _, info = env.step(np.array([1.0], dtype=np.float32))
        >>> bool(abs(env.factor_spec.recombine(info["reward_factors"]) - reward) < 1e-5)
        True
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self._factor_source = _source(_env_id(env))
        self.factor_spec = self._factor_source.spec(env.unwrapped)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        base = self.env.unwrapped
        source = self._factor_source
        pre_state = None if source.pre_step is None else source.pre_step(base)
        obs, reward, terminated, truncated, info = self.env.step(action)
        if source.compute is not None:
            info = dict(info)
            info["reward_factors"] = source.compute(base, pre_state, action, terminated, info)
        return obs, reward, terminated, truncated, info


class FixedHorizon(gym.Wrapper):
    """Episodes of exactly ``horizon_steps`` steps: never ``terminated``, ``truncated`` at T.

    Variable-length episodes leak reward information to learners (a constant reward
    offset alone decides whether ending or prolonging episodes pays off); fixed
    horizons remove the leak, as in the seals benchmark (HumanCompatibleAI/seals) that
    the imitation library uses for AIRL/GAIL. The inner
    env keeps running after its own termination condition: give it one that can
    (:func:`make` passes ``terminate_when_unhealthy=False`` to MuJoCo envs that take it;
    delivery goal/sheep cells are absorbing with zero reward). ``info["env_terminated"]``
    keeps the inner flag. The inner time limit must not cut the episode earlier.

    Args:
        env: the env.
        horizon_steps: T ≥ 1.

    Raises:
        ValueError: T < 1.
        RuntimeError: the inner env truncated before T steps.

    Example:
        >>> env = FixedHorizon(gym.make("MountainCarContinuous-v0", max_episode_steps=5), 5)
        >>> _ = env.reset(seed=0)
        >>> [env.step(np.zeros(1, np.float32))[3] for _ in range(5)]
        [False, False, False, False, True]
    """

    def __init__(self, env: gym.Env, horizon_steps: int):
        if int(horizon_steps) != horizon_steps or horizon_steps < 1:
            raise ValueError(f"horizon_steps: expected an integer >= 1, got {horizon_steps!r}")
        super().__init__(env)
        self.horizon_steps = int(horizon_steps)
        self._elapsed_steps = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        self._elapsed_steps = 0
        return self.env.reset(seed=seed, options=options)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._elapsed_steps += 1
        at_horizon = self._elapsed_steps >= self.horizon_steps
        if truncated and not at_horizon:
            raise RuntimeError(
                f"FixedHorizon: the inner env truncated after {self._elapsed_steps} < horizon_steps="
                f"{self.horizon_steps} steps; raise its time limit (max_episode_steps) to at least the horizon"
            )
        info = dict(info)
        info["env_terminated"] = bool(terminated)
        return obs, reward, False, at_horizon, info


def _accepts_kwarg(env_id: str, name: str) -> bool:
    entry_point = gym.spec(env_id).entry_point
    creator = entry_point if callable(entry_point) else gym.envs.registration.load_env_creator(str(entry_point))
    return name in inspect.signature(creator).parameters


def make(
    env_id: str,
    *,
    factors: bool = True,
    fixed_horizon: int | None = None,
    fast_render: bool = False,
    **kwargs: Any,
) -> gym.Env:
    """``gym.make`` with reward factors, an optional fixed horizon and fast MuJoCo rendering.

    Wrapper order: ``FixedHorizon(RewardFactors(gym.make(env_id, **kwargs)))``. With
    ``fixed_horizon = T`` the env is made with ``max_episode_steps = T`` and, where the
    env takes it, ``terminate_when_unhealthy = False`` (Hopper, Walker2d, Ant); episodes
    then last exactly T steps. ``fast_render`` calls :func:`configure_fast_rendering`
    (MuJoCo only) and defaults ``render_mode`` to ``"rgb_array"``. Read the spec with
    ``env.get_wrapper_attr("factor_spec")``.

    Args:
        env_id: a registered env id; ``factors=True`` needs one of ``FACTOR_ENV_IDS``.
        factors: report ``info["reward_factors"]``.
        fixed_horizon: T ≥ 1 for fixed-length episodes, or None.
        fast_render: turn off shadows, reflections and multisampling of offscreen rendering.
        **kwargs: passed to ``gym.make``.

    Returns:
        The wrapped env.

    Raises:
        ValueError: unsupported env for factors, bad horizon, or conflicting kwargs.

    Example:
        >>> env = make("Hopper-v5", fixed_horizon=3)
        >>> _ = env.reset(seed=0)
        >>> _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        >>> info["reward_factors"].shape, env.get_wrapper_attr("factor_spec").names[1]
        ((3,), 'healthy_reward')
    """
    from . import _registration
    from ._render import configure_fast_rendering

    _registration.register_envs()
    if factors and env_id not in _FACTOR_SOURCES:
        raise ValueError(f"env_id: factors=True expects one of {FACTOR_ENV_IDS}, got {env_id!r}")
    if fixed_horizon is not None:
        if int(fixed_horizon) != fixed_horizon or fixed_horizon < 1:
            raise ValueError(f"fixed_horizon: expected None or an integer >= 1, got {fixed_horizon!r}")
        if kwargs.get("max_episode_steps", fixed_horizon) != fixed_horizon:
            got = kwargs["max_episode_steps"]
            raise ValueError(f"max_episode_steps: expected {fixed_horizon} (= fixed_horizon) or unset, got {got!r}")
        kwargs["max_episode_steps"] = int(fixed_horizon)
        if _accepts_kwarg(env_id, "terminate_when_unhealthy"):
            if kwargs.get("terminate_when_unhealthy", False):
                raise ValueError("terminate_when_unhealthy: expected False or unset with fixed_horizon, got True")
            kwargs["terminate_when_unhealthy"] = False
    if fast_render:
        kwargs.setdefault("render_mode", "rgb_array")
    env = gym.make(env_id, **kwargs)
    if fast_render:
        configure_fast_rendering(env)
    if factors and _FACTOR_SOURCES[env_id].compute is not None:
        env = RewardFactors(env)
    if fixed_horizon is not None:
        env = FixedHorizon(env, int(fixed_horizon))
    return env
