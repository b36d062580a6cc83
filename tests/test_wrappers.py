"""Reward wrappers: gymnasium env, gymnasium vector env (autoreset modes) and SB3 VecEnv."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from gymnasium.wrappers.vector import DictInfoToList
from hypothesis import given, settings
from hypothesis import strategies as st
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv

from rewardlab.wrappers import (
    NonFiniteRewardError,
    RewardMix,
    RewardVecEnvWrapper,
    RewardWrapper,
    VectorRewardWrapper,
    spaces_compatible,
)

RESET_VALUE = 0.5  # first observation of every episode; never produced by a step


class CounterEnv(gym.Env):
    """Observation = steps taken in the episode (``RESET_VALUE`` after reset); ends after ``length`` steps.

    ``obs_kind``: ``"box"`` ([t] float32), ``"discrete"`` (t, Discrete(16); reset obs 15) or
    ``"dict"`` ({"pos": [t, -t], "phase": t % 4}). Env reward = t + action[0]; ``truncate``
    ends episodes by truncation instead of termination.
    """

    def __init__(self, length: int = 3, obs_kind: str = "box", truncate: bool = False) -> None:
        self.length, self.obs_kind, self.truncate = length, obs_kind, truncate
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        if obs_kind == "box":
            self.observation_space = gym.spaces.Box(-100.0, 100.0, (1,), np.float32)
        elif obs_kind == "discrete":
            self.observation_space = gym.spaces.Discrete(16)
        else:
            self.observation_space = gym.spaces.Dict(
                {"pos": gym.spaces.Box(-100.0, 100.0, (2,), np.float32), "phase": gym.spaces.Discrete(4)}
            )
        self.t = 0

    def _obs(self, value: float):
        if self.obs_kind == "box":
            return np.array([value], np.float32)
        if self.obs_kind == "discrete":
            return 15 if value == RESET_VALUE else int(value)
        return {"pos": np.array([value, -value], np.float32), "phase": 3 if value == RESET_VALUE else int(value) % 4}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(RESET_VALUE), {}

    def step(self, action):
        self.t += 1
        ended = self.t >= self.length
        reward = float(self.t) + float(np.asarray(action).reshape(-1)[0])
        return self._obs(self.t), reward, ended and not self.truncate, ended and self.truncate, {}


def scalar_obs(obs) -> np.ndarray:
    """The counter value t of a batch of CounterEnv observations (any kind), float64 [N]."""
    if isinstance(obs, dict):
        return np.asarray(obs["pos"], np.float64)[:, 0]
    obs = np.asarray(obs, np.float64)
    return obs.reshape(obs.shape[0], -1)[:, 0]


class RecordingReward:
    """r = 10·s'_t + s_t + 100·a + 1000·done (float32), recording every call's arguments."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def __call__(self, obs, acts, next_obs, dones):
        self.calls.append((obs, acts, next_obs, np.asarray(dones).copy()))
        value = (
            10 * scalar_obs(next_obs)
            + scalar_obs(obs)
            + 100 * np.asarray(acts, np.float64).reshape(len(dones), -1)[:, 0]
        )
        return (value + 1000 * np.asarray(dones, np.float64)).astype(np.float32)


def expected_reward(s: np.ndarray, a: np.ndarray, s_next: np.ndarray, done: np.ndarray) -> np.ndarray:
    return (10 * s_next + s + 100 * a + 1000 * done).astype(np.float32)


def pendulum_reward(obs, acts, next_obs, dones):
    return (3.0 * next_obs[:, 2] - 2.0 * obs[:, 1] + acts[:, 0] ** 2).astype(np.float32)


# ---------------------------------------------------------------- single gymnasium env


def _pendulum_rollout(wrapper_kwargs, steps=6, seed=3):
    """Steps a wrapped and a raw Pendulum with the same actions; returns both sequences."""
    rng = np.random.default_rng(0)
    actions = rng.uniform(-2, 2, (steps, 1)).astype(np.float32)
    wrapped = RewardWrapper(gym.make("Pendulum-v1"), pendulum_reward, **wrapper_kwargs)
    raw = gym.make("Pendulum-v1")
    obs, _ = wrapped.reset(seed=seed)
    raw_obs, _ = raw.reset(seed=seed)
    np.testing.assert_array_equal(obs, raw_obs)
    out = []
    for action in actions:
        next_obs, reward, _, _, info = wrapped.step(action)
        raw_next, raw_reward, _, _, _ = raw.step(action)
        np.testing.assert_array_equal(next_obs, raw_next)
        learned = pendulum_reward(obs[None], action[None], next_obs[None], np.zeros(1, bool))[0]
        out.append((reward, float(raw_reward), float(learned), info))
        obs = next_obs
    return out


def test_gym_replace_gives_exactly_the_reward_fn_value():
    for reward, raw_reward, learned, info in _pendulum_rollout({}):
        assert reward == learned  # exact: float32 value, not recomputed
        assert info["true_reward"] == raw_reward
        assert info["reward_components"] == {"env": raw_reward, "learned": learned}
        assert reward != raw_reward


def test_gym_add_and_weighted_modes():
    for reward, raw_reward, learned, _ in _pendulum_rollout({"mode": "add", "weight": 0.25}):
        assert reward == pytest.approx(raw_reward + 0.25 * learned, rel=1e-12)
    for reward, raw_reward, learned, info in _pendulum_rollout({"mode": "weighted", "weight": 2.0, "env_weight": -0.5}):
        assert reward == pytest.approx(-0.5 * raw_reward + 2.0 * learned, rel=1e-12)
        assert info["true_reward"] == raw_reward


def test_gym_terminal_transition_and_components_of_inner_wrapper_kept():
    fn = RecordingReward()
    env = RewardWrapper(CounterEnv(length=2), fn, mode="add", weight=1.0)
    bonus = RewardWrapper(
        env, lambda o, a, n, d: np.full(len(d), 7.0, np.float32), mode="add", weight=2.0, name="bonus"
    )
    bonus.reset()
    _, r1, *_ = bonus.step(np.array([0.0], np.float32))
    _, r2, terminated, _, info = bonus.step(np.array([0.5], np.float32))
    assert terminated
    # inner: r_env = t + a; learned = 10·t + (t-1 or 0.5) + 100·a + 1000·done; outer adds 2·7.
    assert r1 == pytest.approx(1.0 + (10 + 0.5) + 14.0)
    assert r2 == pytest.approx(2.5 + (20 + 1 + 50 + 1000) + 14.0)
    assert info["true_reward"] == 2.5
    assert info["reward_components"] == {"env": 2.5, "learned": 1071.0, "bonus": 7.0}
    np.testing.assert_array_equal(fn.calls[-1][3], [True])


def test_gym_discrete_and_dict_observations():
    for kind in ("discrete", "dict"):
        fn = RecordingReward()
        env = RewardWrapper(CounterEnv(length=5, obs_kind=kind), fn)
        env.reset()
        _, r1, *_ = env.step(np.array([0.0], np.float32))
        _, r2, *_ = env.step(np.array([0.0], np.float32))
        s0 = 15.0 if kind == "discrete" else RESET_VALUE
        assert r1 == pytest.approx(10.0 + s0) and r2 == pytest.approx(21.0)
        obs, _, next_obs, _ = fn.calls[-1]
        if kind == "dict":
            assert set(obs) == {"pos", "phase"} and obs["pos"].shape == (1, 2) and next_obs["phase"].shape == (1,)
        else:
            assert np.shape(obs) == (1,)


def test_gym_swap_reward_fn_takes_effect():
    env = RewardWrapper(CounterEnv(length=10), lambda o, a, n, d: np.ones(len(d), np.float32))
    env.reset()
    assert env.step(np.zeros(1, np.float32))[1] == 1.0
    env.set_reward_fn(lambda o, a, n, d: np.full(len(d), -3.0, np.float32))
    assert env.step(np.zeros(1, np.float32))[1] == -3.0


def test_gym_requires_reset_and_reward_fn():
    env = RewardWrapper(CounterEnv(), lambda o, a, n, d: np.ones(len(d), np.float32))
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(1, np.float32))
    unset = RewardWrapper(CounterEnv())
    unset.reset()
    with pytest.raises(RuntimeError, match="set_reward_fn"):
        unset.step(np.zeros(1, np.float32))
    with pytest.raises(ValueError, match=r"env: expected a gymnasium.Env"):
        RewardWrapper("CartPole-v1")


# ---------------------------------------------------------------- validation


def test_mix_arguments_are_checked():
    with pytest.raises(ValueError, match="mode: expected one of"):
        RewardMix("multiply")
    with pytest.raises(ValueError, match="env_weight"):
        RewardMix("weighted", weight=1.0)
    with pytest.raises(ValueError, match="env_weight"):
        RewardMix("add", env_weight=0.5)
    with pytest.raises(ValueError, match="weight"):
        RewardMix("replace", weight=2.0)
    with pytest.raises(ValueError, match="weight: expected a finite float"):
        RewardMix("add", weight=float("nan"))


@settings(max_examples=50, deadline=None)
@given(
    env_rewards=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=5),
    weight=st.floats(-10, 10),
    env_weight=st.floats(-10, 10),
)
def test_mix_formulas(env_rewards, weight, env_weight):
    env_r = np.array(env_rewards)
    learned = np.linspace(-3, 3, len(env_r)).astype(np.float32)
    np.testing.assert_array_equal(RewardMix("replace").combine(env_r, learned, np.float64), learned.astype(np.float64))
    np.testing.assert_allclose(
        RewardMix("add", weight).combine(env_r, learned, np.float64), env_r + weight * learned.astype(np.float64)
    )
    np.testing.assert_allclose(
        RewardMix("weighted", weight, env_weight).combine(env_r, learned, np.float64),
        env_weight * env_r + weight * learned.astype(np.float64),
    )
    # weighted with env_weight = 1 is add
    as_weighted = RewardMix("weighted", weight, 1.0).combine(env_r, learned, np.float64)
    np.testing.assert_array_equal(as_weighted, RewardMix("add", weight).combine(env_r, learned, np.float64))


def _sb3(fn, num_envs=2, **kwargs):
    venv = RewardVecEnvWrapper(DummyVecEnv([lambda: CounterEnv(length=4)] * num_envs), fn, **kwargs)
    venv.reset()
    return venv


@pytest.mark.parametrize(
    ("bad_fn", "got"),
    [
        (lambda o, a, n, d: np.zeros((len(d), 1), np.float32), "got shape (2, 1)"),
        (lambda o, a, n, d: np.zeros(1, np.float32), "got shape (1,)"),
        (lambda o, a, n, d: np.zeros(len(d), np.int64), "dtype int64"),
        (lambda o, a, n, d: 1.0, "got shape ()"),
    ],
)
def test_wrong_shape_or_dtype_names_expected_and_actual(bad_fn, got):
    venv = _sb3(bad_fn)
    with pytest.raises(ValueError) as error:  # noqa: PT011 - the message is checked below
        venv.step(np.zeros((2, 1), np.float32))
    message = str(error.value)
    assert "expected rewards of shape [num_envs] = (2,)" in message and got in message
    if got == "got shape (1,)":
        return  # right shape for a single env
    gym_env = RewardWrapper(CounterEnv(), bad_fn)
    gym_env.reset()
    with pytest.raises(ValueError, match=r"\[num_envs\] = \(1,\)"):
        gym_env.step(np.zeros(1, np.float32))


def test_nan_and_inf_name_reward_fn_and_env_index():
    def diverged(obs, acts, next_obs, dones):
        return np.array([0.0, np.nan, 1.0], np.float32)

    venv = _sb3(diverged, num_envs=3)
    with pytest.raises(NonFiniteRewardError, match=r"'.*diverged'.*nan for env index 1"):
        venv.step(np.zeros((3, 1), np.float32))
    venv.set_reward_fn(lambda o, a, n, d: np.array([0.0, 1.0, -np.inf], np.float32))
    with pytest.raises(ValueError, match="env index 2"):  # also a ValueError
        venv.step(np.zeros((3, 1), np.float32))


class _FakeModel:
    def __init__(self, observation_space, action_space):
        self.observation_space, self.action_space = observation_space, action_space


class _ModelReward:
    def __init__(self, observation_space, action_space):
        self.model = _FakeModel(observation_space, action_space)

    def __call__(self, obs, acts, next_obs, dones):
        return np.zeros(len(dones), np.float32)


def test_space_mismatch_names_both_spaces():
    act = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    wrong_obs = _ModelReward(gym.spaces.Box(-1.0, 1.0, (4,), np.float32), act)
    with pytest.raises(
        ValueError, match=r"observation-space mismatch.*Box\(-100.0, 100.0, \(1,\).*Box\(-1.0, 1.0, \(4,\)"
    ):
        RewardVecEnvWrapper(DummyVecEnv([lambda: CounterEnv()]), wrong_obs)
    with pytest.raises(ValueError, match="observation_space=Discrete"):
        RewardWrapper(CounterEnv(obs_kind="discrete"), wrong_obs)
    vec = gym.make_vec("Pendulum-v1", num_envs=2, vectorization_mode="sync")
    with pytest.raises(ValueError, match=r"Box\(-1.0, 1.0, \(4,\), float32\)"):
        VectorRewardWrapper(vec, wrong_obs)
    wrong_act = _ModelReward(gym.spaces.Box(-100.0, 100.0, (1,), np.float32), gym.spaces.Discrete(3))
    with pytest.raises(ValueError, match="action-space mismatch"):
        RewardWrapper(CounterEnv(), wrong_act)
    # bounds and float width do not matter; a set_reward_fn with a mismatch is refused too
    fine = _ModelReward(gym.spaces.Box(-np.inf, np.inf, (1,), np.float64), act)
    wrapper = RewardWrapper(CounterEnv(), fine)
    with pytest.raises(ValueError, match="mismatch"):
        wrapper.set_reward_fn(wrong_obs)
    assert wrapper.reward_fn is fine


def test_spaces_compatible_structure():
    box = gym.spaces.Box(0, 1, (3,), np.float32)
    discrete = gym.spaces.Discrete(2)
    assert spaces_compatible(gym.spaces.Dict({"a": box, "b": discrete}), gym.spaces.Dict({"b": discrete, "a": box}))
    assert not spaces_compatible(gym.spaces.Dict({"a": box}), gym.spaces.Dict({"c": box}))
    assert not spaces_compatible(gym.spaces.Discrete(3), gym.spaces.Discrete(4))
    assert not spaces_compatible(
        gym.spaces.Box(0, 255, (4, 4, 3), np.uint8), gym.spaces.Box(0, 1, (4, 4, 3), np.float32)
    )


# ---------------------------------------------------------------- SB3 VecEnv


def test_sb3_terminal_observation_is_next_obs_at_episode_end():
    lengths = [2, 3]
    fn = RecordingReward()
    venv = RewardVecEnvWrapper(DummyVecEnv([lambda n=n: CounterEnv(length=n) for n in lengths]), fn)
    venv.reset()
    prev = np.full(2, RESET_VALUE)
    t = np.zeros(2)
    for step in range(7):
        actions = np.array([[0.1 * step], [-0.2]], np.float32)
        obs, rewards, dones, infos = venv.step(actions)
        assert len(fn.calls) == step + 1  # one batched call per step
        t += 1
        expected_next = t.copy()  # s' is the counter, also when the env was reset (terminal obs)
        np.testing.assert_array_equal(dones, t == np.array(lengths))
        np.testing.assert_array_equal(
            rewards, expected_reward(prev, actions[:, 0].astype(np.float64), expected_next, dones)
        )
        batch = venv.last_transitions
        np.testing.assert_array_equal(batch.next_obs[:, 0], expected_next)
        np.testing.assert_array_equal(batch.obs[:, 0], prev)
        np.testing.assert_allclose(batch.rews, t + actions[:, 0], rtol=1e-6)
        for i in np.flatnonzero(dones):
            np.testing.assert_array_equal(batch.next_obs[i], infos[i]["terminal_observation"])
            assert obs[i, 0] == RESET_VALUE  # SB3 returned the reset observation
            assert infos[i]["true_reward"] == pytest.approx(t[i] + actions[i, 0])
        t[dones] = 0
        prev = np.where(dones, RESET_VALUE, t)


def test_sb3_pendulum_time_limit_uses_terminal_observation():
    pendulums = make_vec_env("Pendulum-v1", n_envs=2, seed=0, env_kwargs={"max_episode_steps": 5})
    venv = RewardVecEnvWrapper(pendulums, pendulum_reward, mode="add", weight=0.5)
    obs = venv.reset()
    actions = np.full((2, 1), 0.7, np.float32)
    for step in range(5):
        prev = obs
        obs, rewards, dones, infos = venv.step(actions)
        batch = venv.last_transitions
        assert batch.obs is prev  # not copied
        if step < 4:
            assert not dones.any() and batch.next_obs is obs
        else:
            assert dones.all()
            terminal = np.stack([info["terminal_observation"] for info in infos])
            np.testing.assert_array_equal(batch.next_obs, terminal)
            assert not np.allclose(terminal, obs)
        learned = pendulum_reward(prev, actions, batch.next_obs, dones)
        true = np.array([info["true_reward"] for info in infos], np.float32)
        np.testing.assert_allclose(rewards, true + 0.5 * learned, rtol=1e-6)
        np.testing.assert_array_equal([info["reward_components"]["learned"] for info in infos], learned)


def test_sb3_discrete_and_dict_observations():
    for kind in ("discrete", "dict"):
        fn = RecordingReward()
        venv = RewardVecEnvWrapper(DummyVecEnv([lambda: CounterEnv(length=2, obs_kind=kind)] * 2), fn)  # noqa: B023 - DummyVecEnv calls it at once
        venv.reset()
        zeros = np.zeros((2, 1), np.float32)
        venv.step(zeros)
        _, rewards, dones, _infos = venv.step(zeros)
        assert dones.all()
        s = 1.0
        np.testing.assert_array_equal(rewards, expected_reward(np.full(2, s), np.zeros(2), np.full(2, 2.0), dones))
        batch = venv.last_transitions
        if kind == "dict":
            np.testing.assert_array_equal(batch.next_obs["pos"], [[2, -2], [2, -2]])
            np.testing.assert_array_equal(batch.next_obs["phase"], [2, 2])
        else:
            np.testing.assert_array_equal(batch.next_obs, [2, 2])


def test_sb3_swap_reward_fn_and_weighted_mode():
    venv = _sb3(lambda o, a, n, d: np.ones(len(d), np.float32), mode="weighted", weight=2.0, env_weight=0.5)
    _, rewards, _, _ = venv.step(np.zeros((2, 1), np.float32))
    np.testing.assert_allclose(rewards, 0.5 * 1.0 + 2.0 * 1.0)
    venv.set_reward_fn(lambda o, a, n, d: np.full(len(d), -4.0, np.float32))
    _, rewards, _, infos = venv.step(np.zeros((2, 1), np.float32))
    np.testing.assert_allclose(rewards, 0.5 * 2.0 + 2.0 * -4.0)
    assert rewards.dtype == np.float32 and infos[0]["reward_components"] == {"env": 2.0, "learned": -4.0}


def test_sb3_without_reward_fn_raises_on_step():
    venv = RewardVecEnvWrapper(DummyVecEnv([lambda: CounterEnv()]), mode="replace")
    venv.reset()
    with pytest.raises(RuntimeError, match="set_reward_fn"):
        venv.step(np.zeros((1, 1), np.float32))
    with pytest.raises(ValueError, match="venv: expected a stable_baselines3 VecEnv"):
        RewardVecEnvWrapper(CounterEnv())


def test_sb3_ppo_learns_on_wrapped_env():
    from stable_baselines3 import PPO

    fn = RecordingReward()
    venv = RewardVecEnvWrapper(DummyVecEnv([lambda: CounterEnv(length=5)] * 2), fn)
    agent = PPO("MlpPolicy", venv, n_steps=8, batch_size=16, n_epochs=1, seed=0, device="cpu")
    agent.learn(16)
    assert len(fn.calls) == 8 and all(len(call[3]) == 2 for call in fn.calls)
    np.testing.assert_allclose(agent.rollout_buffer.rewards[-1], fn(*fn.calls[-1]), rtol=1e-6)


# ---------------------------------------------------------------- gymnasium vector env


def _vector(fn, autoreset, lengths=(2, 3), obs_kind="box", **kwargs):
    env = SyncVectorEnv(
        [lambda n=n: CounterEnv(length=n, obs_kind=obs_kind) for n in lengths], autoreset_mode=autoreset
    )
    return VectorRewardWrapper(env, fn, **kwargs)


def test_vector_next_step_autoreset_skips_reset_steps():
    fn = RecordingReward()
    envs = _vector(fn, AutoresetMode.NEXT_STEP)
    assert envs.autoreset_mode == AutoresetMode.NEXT_STEP
    envs.reset(seed=0)
    actions = np.array([[0.25], [-0.5]], np.float32)
    # env 0 (length 2): steps 1, 2 (end), reset step, 1, 2 (end), reset; env 1 (length 3): 1, 2, 3 (end), reset, 1, 2
    obs, rewards, term, _trunc, info = envs.step(actions)
    np.testing.assert_array_equal(
        rewards, expected_reward(np.full(2, RESET_VALUE), actions[:, 0], np.ones(2), np.zeros(2))
    )
    obs, rewards, term, _trunc, info = envs.step(actions)
    assert term.tolist() == [True, False]
    np.testing.assert_array_equal(obs[:, 0], [2, 2])  # NEXT_STEP returns the terminal observation
    np.testing.assert_array_equal(
        rewards, expected_reward(np.ones(2), actions[:, 0], np.full(2, 2.0), np.array([1.0, 0.0]))
    )
    calls = len(fn.calls)
    obs, rewards, term, _trunc, info = envs.step(actions)  # env 0 resets; env 1 ends
    assert len(fn.calls) == calls + 1
    scored_obs, _scored_acts, scored_next, scored_dones = fn.calls[-1]
    np.testing.assert_array_equal(scored_obs, [[2.0]])  # only env 1 was scored
    np.testing.assert_array_equal(scored_next, [[3.0]])
    np.testing.assert_array_equal(scored_dones, [True])
    assert obs[0, 0] == RESET_VALUE and rewards[0] == 0.0
    assert rewards[1] == expected_reward(np.array([2.0]), actions[1:, 0], np.array([3.0]), np.array([1.0]))[0]
    assert info["_true_reward"].tolist() == [False, True] and info["true_reward"][1] == pytest.approx(3 - 0.5)
    assert info["reward_components"]["_learned"].tolist() == [False, True]
    listed = DictInfoToList(envs)._convert_info_to_list(info)  # gymnasium's masks are consistent
    assert "true_reward" not in listed[0] and listed[1]["reward_components"]["learned"] == rewards[1]
    obs, rewards, term, _trunc, info = envs.step(actions)  # env 0 steps from its reset obs; env 1 resets
    np.testing.assert_array_equal(
        rewards, [expected_reward(np.array([RESET_VALUE]), actions[:1, 0], np.ones(1), np.zeros(1))[0], 0.0]
    )
    np.testing.assert_array_equal(fn.calls[-1][0], [[RESET_VALUE]])


def test_vector_next_step_all_envs_resetting_makes_no_call():
    fn = RecordingReward()
    envs = _vector(fn, AutoresetMode.NEXT_STEP, lengths=(1, 1))
    envs.reset()
    envs.step(np.zeros((2, 1), np.float32))
    _, rewards, *_ = envs.step(np.zeros((2, 1), np.float32))
    assert len(fn.calls) == 1 and rewards.tolist() == [0.0, 0.0]


def test_vector_same_step_uses_final_obs():
    fn = RecordingReward()
    envs = _vector(fn, AutoresetMode.SAME_STEP, mode="add", weight=0.5)
    envs.reset()
    actions = np.zeros((2, 1), np.float32)
    envs.step(actions)
    obs, rewards, term, _trunc, _info = envs.step(actions)
    assert term.tolist() == [True, False] and obs[0, 0] == RESET_VALUE
    np.testing.assert_array_equal(fn.calls[-1][2][:, 0], [2.0, 2.0])
    learned = expected_reward(np.ones(2), np.zeros(2), np.full(2, 2.0), np.array([1.0, 0.0]))
    np.testing.assert_allclose(rewards, 2.0 + 0.5 * learned.astype(np.float64))
    _, rewards, *_ = envs.step(actions)  # env 0 continues from its reset obs at once
    np.testing.assert_array_equal(fn.calls[-1][0][:, 0], [RESET_VALUE, 2.0])


def test_vector_disabled_autoreset_with_reset_mask():
    fn = RecordingReward()
    envs = _vector(fn, AutoresetMode.DISABLED, lengths=(1, 3))
    envs.reset()
    actions = np.zeros((2, 1), np.float32)
    _, _, term, _, _ = envs.step(actions)
    np.testing.assert_array_equal(fn.calls[-1][2][:, 0], [1.0, 1.0])
    _obs, _ = envs.reset(options={"reset_mask": term.copy()})
    envs.step(actions)
    np.testing.assert_array_equal(fn.calls[-1][0][:, 0], [RESET_VALUE, 1.0])
    np.testing.assert_array_equal(fn.calls[-1][2][:, 0], [1.0, 2.0])


def test_vector_discrete_dict_and_swap():
    for kind in ("discrete", "dict"):
        fn = RecordingReward()
        envs = _vector(fn, AutoresetMode.NEXT_STEP, obs_kind=kind)
        envs.reset()
        envs.step(np.zeros((2, 1), np.float32))
        _, rewards, *_ = envs.step(np.zeros((2, 1), np.float32))
        np.testing.assert_array_equal(
            rewards, expected_reward(np.ones(2), np.zeros(2), np.full(2, 2.0), np.array([1.0, 0.0]))
        )
        _, rewards, *_ = envs.step(
            np.zeros((2, 1), np.float32)
        )  # env 0 resets: scored rows keep their Dict/Discrete form
        scored = fn.calls[-1][0]
        if kind == "dict":
            assert scored["pos"].shape == (1, 2) and scored["phase"].shape == (1,)
        else:
            assert scored.shape == (1,)
        envs.set_reward_fn(lambda o, a, n, d: np.full(len(d), 5.0, np.float32))
        _, rewards, *_ = envs.step(np.zeros((2, 1), np.float32))
        assert rewards.tolist() == [5.0, 0.0]  # env 1 ended at the previous step: reset step


def test_vector_nan_names_env_index_of_scored_subset():
    def nan_for_second_row(obs, acts, next_obs, dones):
        out = np.zeros(len(dones), np.float32)
        out[-1] = np.nan if len(dones) == 1 else 0.0
        return out

    envs = _vector(nan_for_second_row, AutoresetMode.NEXT_STEP, lengths=(1, 3))
    envs.reset()
    envs.step(np.zeros((2, 1), np.float32))
    with pytest.raises(NonFiniteRewardError, match="env index 1"):  # row 0 of the call is env 1
        envs.step(np.zeros((2, 1), np.float32))


def test_vector_next_step_partial_reset_clears_pending_reset():
    fn = RecordingReward()
    envs = _vector(fn, AutoresetMode.NEXT_STEP, lengths=(1, 3))
    envs.reset()
    actions = np.zeros((2, 1), np.float32)
    _, _, term, _, _ = envs.step(actions)
    assert term.tolist() == [True, False]
    envs.reset(options={"reset_mask": term.copy()})  # env 0 restarted by hand: its next step is a real one
    _, rewards, *_ = envs.step(actions)
    np.testing.assert_array_equal(fn.calls[-1][0][:, 0], [RESET_VALUE, 1.0])
    expected = expected_reward(np.array([RESET_VALUE, 1.0]), np.zeros(2), np.array([1.0, 2.0]), np.array([1.0, 0.0]))
    np.testing.assert_array_equal(rewards, expected)


def test_learned_reward_model_with_dict_obs_and_space_check():
    jax = pytest.importorskip("jax")
    from rewardlab.rewards import RewardModel, RewardNetConfig, as_reward_fn

    venv = DummyVecEnv([lambda: CounterEnv(length=2, obs_kind="dict")] * 2)
    model = RewardModel(
        RewardNetConfig(inputs=("obs", "act", "next_obs"), hidden_sizes=(8,)), venv.observation_space, venv.action_space
    )
    params = model.init(jax.random.key(0))
    wrapper = RewardVecEnvWrapper(venv, as_reward_fn(model, params))
    wrapper.reset()
    for _ in range(2):
        _, rewards, dones, _ = wrapper.step(np.full((2, 1), 0.3, np.float32))
        batch = wrapper.last_transitions
        expected = np.asarray(model.apply(params, batch.obs, batch.acts, batch.next_obs, batch.dones))[0]
        np.testing.assert_allclose(rewards, expected, rtol=1e-5, atol=1e-6)
    assert dones.all()
    other = RewardModel(
        RewardNetConfig(hidden_sizes=(8,)), gym.spaces.Box(-1.0, 1.0, (4,), np.float32), venv.action_space
    )
    with pytest.raises(ValueError, match=r"observation-space mismatch.*Dict\(.*Box\(-1.0, 1.0, \(4,\), float32\)"):
        wrapper.set_reward_fn(as_reward_fn(other, other.init(jax.random.key(1))))


def test_vector_wrapper_accepts_a_learned_model_built_for_the_single_env_spaces():
    # The model is built for one env's spaces (Box(3,), Box(1,)); the vector env's own spaces are batched.
    import jax

    from rewardlab.rewards import RewardModel, RewardNetConfig, as_reward_fn

    vec = gym.make_vec("Pendulum-v1", num_envs=3, vectorization_mode="sync")
    model = RewardModel(RewardNetConfig(hidden_sizes=(8,)), vec.single_observation_space, vec.single_action_space)
    fn = as_reward_fn(model, model.init(jax.random.key(0)))
    envs = VectorRewardWrapper(vec, fn)
    obs, _ = envs.reset(seed=0)
    actions = np.full((3, 1), 0.5, np.float32)
    next_obs, rewards, _, _, info = envs.step(actions)
    np.testing.assert_allclose(rewards, fn(obs, actions, next_obs, np.zeros(3, bool)), rtol=1e-6)
    assert info["reward_components"]["learned"].shape == (3,)
    # a model of another single-env space is still refused, by set_reward_fn too
    other = RewardModel(RewardNetConfig(hidden_sizes=(8,)), gym.spaces.Box(-1, 1, (4,)), vec.single_action_space)
    with pytest.raises(ValueError, match="observation-space mismatch"):
        envs.set_reward_fn(as_reward_fn(other, other.init(jax.random.key(0))))
