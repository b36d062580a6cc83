"""Tests of reward factors, fixed horizons, ``make`` and fast MuJoCo rendering."""

from __future__ import annotations

import doctest
import os

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym
import numpy as np
import pytest

import rewardlab_envs as envs
from rewardlab_envs import _factors, _render, _spec

CONTROL_ENVS = ("Pendulum-v1", "MountainCarContinuous-v0", "HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "Ant-v5")


# -- FactorSpec ------------------------------------------------------------------------------


def test_factor_spec_basics():
    spec = envs.FactorSpec(names=("a", "b", "c"), signs=(1, -1, -1), importance=(2, 0, 1), weights=(1, -2, 0.5))
    assert spec.num_factors == 3 and spec.ranked_names == ("c", "a", "b")
    assert spec.weights == (1.0, -2.0, 0.5) and spec.signs_array().dtype == np.float32
    np.testing.assert_allclose(spec.recombine(np.array([[1.0, 1.0, 2.0], [0.0, 0.5, 0.0]])), [0.0, -1.0])
    assert hash(spec) == hash(envs.FactorSpec(("a", "b", "c"), (1, -1, -1), (2, 0, 1), (1.0, -2.0, 0.5)))
    with pytest.raises(ValueError, match="factors"):
        spec.recombine(np.ones(2))
    with pytest.raises(ValueError, match="weights"):
        envs.FactorSpec(names=("a",), signs=(1,), importance=(0,)).weights_array()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"names": ()}, "names"),
        ({"names": ("a", "a")}, "names"),
        ({"signs": (1, 0)}, "signs"),
        ({"signs": (1,)}, "signs"),
        ({"importance": (0, 0)}, "importance"),
        ({"weights": (1.0,)}, "weights"),
        ({"weights": (1.0, float("nan"))}, "weights"),
    ],
)
def test_factor_spec_validation(kwargs, match):
    arguments = {"names": ("a", "b"), "signs": (1, -1), "importance": (0, 1), **kwargs}
    with pytest.raises(ValueError, match=match):
        envs.FactorSpec(**arguments)


# -- factors recombine into the env reward ----------------------------------------------------


@pytest.mark.parametrize("env_id", CONTROL_ENVS)
def test_factors_recombine_to_env_reward(env_id):
    env = envs.make(env_id)
    spec = env.get_wrapper_attr("factor_spec")
    assert spec == envs.factor_spec(env_id) == envs.factor_spec(env)
    env.reset(seed=0)
    env.action_space.seed(0)
    for _ in range(40):
        # scaled-up actions exercise clipping (Pendulum, MountainCar)
        action = (1.5 * env.action_space.sample()).astype(np.float32)
        _, reward, terminated, truncated, info = env.step(action)
        factors = info["reward_factors"]
        assert factors.dtype == np.float32 and factors.shape == (spec.num_factors,)
        assert abs(spec.recombine(factors) - reward) <= 1e-5 * max(1.0, abs(reward))
        if terminated or truncated:
            env.reset()


def test_pendulum_factors_hand_computed():
    env = envs.make("Pendulum-v1")
    env.reset(seed=0)
    env.unwrapped.state = np.array([1.5 * np.pi, 2.0])  # θ normalises to -π/2
    _, reward, _, _, info = env.step(np.array([3.0], dtype=np.float32))  # torque clipped to 2
    np.testing.assert_allclose(info["reward_factors"], [np.pi**2 / 4, 4.0, 4.0], rtol=1e-6)
    assert reward == pytest.approx(-(np.pi**2 / 4 + 0.1 * 4.0 + 0.001 * 4.0), rel=1e-6)


def test_mountain_car_goal_factor_with_and_without_fixed_horizon():
    for fixed_horizon in (None, 10):
        env = envs.make("MountainCarContinuous-v0", fixed_horizon=fixed_horizon)
        env.reset(seed=0)
        env.unwrapped.state = np.array([0.5, 0.05], dtype=np.float32)
        _, reward, terminated, _, info = env.step(np.array([0.5], dtype=np.float32))
        np.testing.assert_allclose(info["reward_factors"], [1.0, 0.25])
        assert reward == pytest.approx(100.0 - 0.025)
        assert terminated == (fixed_horizon is None)
        if fixed_horizon is not None:
            assert info["env_terminated"]


def test_delivery_factors_and_spec_follow_custom_weights():
    weights = [-1.0, 10.0, -5.0, 0.0, -3.0, -2.0]
    env = envs.make("rewardlab/Delivery-v0", weights=weights, start=(3, 0))
    spec = env.get_wrapper_attr("factor_spec")
    assert spec.weights == tuple(weights) and spec.signs == (-1, 1, -1, 1, -1, -1)
    assert spec.ranked_names == ("goal", "sheep", "roadblock", "mud", "gas", "coin")
    env.reset(seed=0)
    _, reward, _, _, info = env.step(1)  # down onto the coin: gas + coin
    assert reward == -1.0 and spec.recombine(info["reward_factors"]) == reward
    assert envs.factor_spec("rewardlab/Delivery-v0").weights == (-1.0, 50.0, -50.0, 1.0, -1.0, -2.0)


def test_reward_factors_rejects_unsupported_envs():
    with pytest.raises(ValueError, match="env_id"):
        envs.RewardFactors(gym.make("CartPole-v1"))
    with pytest.raises(ValueError, match="env_id"):
        envs.make("CartPole-v1")
    with pytest.raises(ValueError, match="env_id"):
        envs.factor_spec("CartPole-v1")
    plain = envs.make("CartPole-v1", factors=False)
    plain.reset(seed=0)
    assert "reward_factors" not in plain.step(0)[-1]


# -- fixed horizon -----------------------------------------------------------------------------


def _make_hopper_unhealthy(env: gym.Env) -> None:
    base = env.unwrapped
    qpos = base.init_qpos.copy()
    qpos[1] = 0.5  # torso height below the healthy range (0.7, inf)
    base.set_state(qpos, base.init_qvel.copy())


def test_hopper_fixed_horizon_suppresses_termination():
    plain = envs.make("Hopper-v5")
    plain.reset(seed=0)
    _make_hopper_unhealthy(plain)
    _, _, terminated, _, info = plain.step(np.zeros(3, np.float32))
    assert terminated and info["reward_factors"][1] == 0.0

    env = envs.make("Hopper-v5", fixed_horizon=25)
    assert env.unwrapped._terminate_when_unhealthy is False
    env.reset(seed=0)
    _make_hopper_unhealthy(env)
    for t in range(1, 26):
        _, _reward, terminated, truncated, info = env.step(np.zeros(3, np.float32))
        assert not terminated and not info["env_terminated"] and truncated == (t == 25)
        if t == 1:
            assert info["reward_factors"][1] == 0.0  # no healthy reward while unhealthy
    assert env.reset(seed=1)[0].shape == (11,)


@pytest.mark.parametrize("env_id", ["Walker2d-v5", "Ant-v5"])
def test_fixed_horizon_disables_unhealthy_termination(env_id):
    env = envs.make(env_id, fixed_horizon=5)
    assert env.unwrapped._terminate_when_unhealthy is False and env.spec.max_episode_steps == 5
    env.reset(seed=0)
    flags = [env.step(env.action_space.sample())[2:4] for _ in range(5)]
    assert flags == [(False, False)] * 4 + [(False, True)]


def test_fixed_horizon_errors():
    with pytest.raises(ValueError, match="fixed_horizon"):
        envs.make("Pendulum-v1", fixed_horizon=0)
    with pytest.raises(ValueError, match="terminate_when_unhealthy"):
        envs.make("Hopper-v5", fixed_horizon=5, terminate_when_unhealthy=True)
    with pytest.raises(ValueError, match="max_episode_steps"):
        envs.make("Pendulum-v1", fixed_horizon=5, max_episode_steps=10)
    with pytest.raises(ValueError, match="horizon_steps"):
        envs.FixedHorizon(gym.make("Pendulum-v1"), -1)
    short = envs.FixedHorizon(gym.make("Pendulum-v1", max_episode_steps=3), 5)
    short.reset(seed=0)
    short.step(np.zeros(1, np.float32))
    short.step(np.zeros(1, np.float32))
    with pytest.raises(RuntimeError, match="truncated"):
        short.step(np.zeros(1, np.float32))


# -- fast rendering ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def offscreen_gl():
    try:
        env = gym.make("HalfCheetah-v5", render_mode="rgb_array")
        env.reset(seed=0)
        env.render()
    except Exception as error:  # noqa: BLE001 - any backend failure means no offscreen GL here
        pytest.skip(f"no offscreen OpenGL ({os.environ.get('MUJOCO_GL')}): {error}")
    return env


def _assert_frame(frame: np.ndarray, height: int = 480, width: int = 480) -> None:
    assert frame.shape == (height, width, 3) and frame.dtype == np.uint8
    assert frame.std() > 10.0  # not a constant (e.g. black) frame


def test_fast_render_frames(offscreen_gl):
    import mujoco

    env = envs.make("HalfCheetah-v5", fast_render=True, width=160, height=120)
    env.reset(seed=0)
    _assert_frame(env.render(), 120, 160)
    base = env.unwrapped
    viewer = base.mujoco_renderer.viewer
    assert base.model.vis.quality.offsamples == 0
    assert viewer.scn.flags[mujoco.mjtRndFlag.mjRND_SHADOW] == 0
    assert viewer.scn.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] == 0
    assert viewer.scn.flags[mujoco.mjtRndFlag.mjRND_SKYBOX] == 1


def test_fast_render_envs_can_take_turns(offscreen_gl):
    first = envs.make("HalfCheetah-v5", fast_render=True)
    late = gym.make("Hopper-v5", render_mode="rgb_array")
    late.reset(seed=0)
    late.render()  # a default viewer exists before reconfiguration
    envs.configure_fast_rendering(late, skybox=False)
    first.reset(seed=0)
    frames = [env.render() for env in (first, late, first, late)]
    for frame in frames:
        _assert_frame(frame)
    np.testing.assert_array_equal(frames[0], frames[2])
    np.testing.assert_array_equal(frames[1], frames[3])


def test_configure_fast_rendering_errors(offscreen_gl):
    with pytest.raises(TypeError, match="MuJoCo"):
        envs.configure_fast_rendering(gym.make("Pendulum-v1", render_mode="rgb_array"))
    with pytest.raises(ValueError, match="render_mode"):
        envs.configure_fast_rendering(gym.make("Hopper-v5"))
    with pytest.raises(ValueError, match="multisamples"):
        envs.configure_fast_rendering(gym.make("Hopper-v5", render_mode="rgb_array"), multisamples=-1)
    with pytest.raises(ValueError, match="num_frames"):
        envs.measure_render_fps(gym.make("rewardlab/Delivery-v0", render_mode="rgb_array"), 0)


def test_measure_render_fps_counts_frames():
    env = gym.make("rewardlab/Delivery-v0", render_mode="rgb_array")
    assert envs.measure_render_fps(env, 3) > 0


@pytest.mark.parametrize("module", [_spec, _factors, _render])
def test_docstring_examples(module, offscreen_gl):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
