"""rewardlab.rl rollouts and evaluation: the same episodes as a hand-written loop, both seeding schemes, task envs."""

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy as sb3_evaluate_policy

from rewardlab.rl import (
    DEFAULT_HORIZONS,
    Policy,
    RandomPolicy,
    evaluate_policy,
    make_agent,
    make_env,
    make_task_env,
    reward_returns,
    rollout,
    rollout_transitions,
)


class FixedAction:
    """A fixed policy: the same action whatever the observation."""

    def __init__(self, action) -> None:
        self.action = action

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        return self.action, None


def ConstantTorque(torque: float) -> FixedAction:  # noqa: N802
    return FixedAction(np.array([torque], np.float32))


def _hand_loop(env, act, num_episodes, seed, seed_every_episode):
    """The loop every study used to write: whole episodes, float64 returns summed in step order."""
    rows, returns = [], []
    obs, _ = env.reset(seed=seed)
    for episode in range(num_episodes):
        if episode:
            obs, _ = env.reset(seed=seed + episode) if seed_every_episode else env.reset()
        total, done = 0.0, False
        while not done:
            action = act(obs)
            next_obs, reward, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
            rows.append((obs, action, next_obs, done, reward, episode))
            total += float(reward)
            obs = next_obs
        returns.append(total)
    return rows, returns


@pytest.mark.parametrize("seed_every_episode", [False, True])
def test_rollout_of_a_fixed_policy_matches_a_hand_loop(seed_every_episode):
    policy = ConstantTorque(0.7)
    assert isinstance(policy, Policy)
    data = rollout(policy, make_env("Pendulum-v1", fixed_horizon=25), 3, seed=4, seed_every_episode=seed_every_episode)
    rows, returns = _hand_loop(
        make_env("Pendulum-v1", fixed_horizon=25), lambda obs: policy.action, 3, 4, seed_every_episode
    )
    t = data.transitions
    assert t.obs.shape == (75, 3) and t.obs.dtype == np.float32 and t.rews.dtype == np.float32
    np.testing.assert_array_equal(t.obs, np.stack([row[0] for row in rows]))
    np.testing.assert_array_equal(t.acts, np.stack([row[1] for row in rows]))
    np.testing.assert_array_equal(t.next_obs, np.stack([row[2] for row in rows]))
    np.testing.assert_array_equal(t.dones, [row[3] for row in rows])
    np.testing.assert_array_equal(t.truncated, t.dones)  # Pendulum's ends are all time limits
    assert not t.terminated.any()
    np.testing.assert_array_equal(t.rews, np.asarray([row[4] for row in rows], np.float32))
    np.testing.assert_array_equal(data.episode, np.repeat([0, 1, 2], 25))
    assert data.returns.tolist() == returns  # exactly: float64, summed in step order
    assert not data.terminated.any()  # Pendulum only ever hits the time limit
    # The next episode starts where the seeding scheme says: the same first state for both
    # schemes, then a new reset seed per episode or the env's continued stream.
    second_start = make_env("Pendulum-v1").reset(seed=5)[0]
    assert np.array_equal(t.obs[25], second_start) == seed_every_episode


def test_random_policy_is_the_seeded_action_space_and_leaves_the_env_space_alone():
    env = make_env("Pendulum-v1", fixed_horizon=10)
    data = rollout(None, env, 2, seed=3)
    space = gym.make("Pendulum-v1").action_space
    space.seed(3)
    np.testing.assert_array_equal(data.transitions.acts, np.stack([space.sample() for _ in range(20)]))
    # RandomPolicy samples from its own copy: the env's action space keeps its stream.
    env.action_space.seed(11)
    expected = env.action_space.sample()
    env.action_space.seed(11)
    RandomPolicy(env.action_space, seed=0).predict(None)
    np.testing.assert_array_equal(env.action_space.sample(), expected)


def test_reward_returns_sum_each_episode_once():
    data = rollout(ConstantTorque(-1.0), make_env("Pendulum-v1", fixed_horizon=7), 2, seed=0)
    calls = []

    def true_reward(obs, acts, next_obs, dones):
        calls.append(len(obs))
        theta = np.arctan2(obs[:, 1], obs[:, 0])
        return -(theta**2 + 0.1 * obs[:, 2] ** 2 + 0.001 * acts[:, 0] ** 2).astype(np.float32)

    np.testing.assert_allclose(reward_returns(true_reward, data), data.returns, rtol=1e-5)
    assert calls == [7, 7]
    ones = reward_returns(lambda obs, acts, next_obs, dones: np.ones(len(obs), np.float32), data)
    assert ones.tolist() == [7.0, 7.0] and ones.dtype == np.float64


def test_evaluate_policy_reduces_the_rollout():
    env = make_env("Pendulum-v1", fixed_horizon=12)
    data = rollout(ConstantTorque(0.3), env, 3, seed=2, seed_every_episode=True)
    result = evaluate_policy(ConstantTorque(0.3), env, 3, seed=2, seed_every_episode=True)
    assert result.true_return == float(np.mean(data.returns))
    assert result.true_return_std == float(np.std(data.returns)) > 0.0
    assert np.isnan(result.reward_return)
    scored = evaluate_policy(
        ConstantTorque(0.3), env, 3, seed=2, seed_every_episode=True, reward_fn=lambda o, a, n, d: np.full(len(o), 2.0)
    )
    assert scored.reward_return == 24.0 and scored.true_return == result.true_return


def test_seeded_once_matches_sb3_evaluate_policy_on_a_seeded_vec_env():
    agent = make_agent("ppo", make_vec_env("Pendulum-v1", n_envs=1, seed=0), "Pendulum-v1", n_steps=16, batch_size=16)
    ours = evaluate_policy(agent, make_env("Pendulum-v1"), 2, seed=10_000)
    mean, std = sb3_evaluate_policy(agent, make_vec_env("Pendulum-v1", n_envs=1, seed=10_000), n_eval_episodes=2)
    # SB3 reads the Monitor's returns, rounded to 6 decimals.
    assert ours.true_return == pytest.approx(mean, abs=1e-5) and ours.true_return_std == pytest.approx(std, abs=1e-5)


def test_terminated_episodes_and_trajectories():
    data = rollout(FixedAction(0), make_env("CartPole-v1"), 2, seed=0)
    assert data.terminated.all()  # pushing left always topples the pole before the time limit
    trajectories = data.trajectories()
    assert [len(trajectory.acts) for trajectory in trajectories] == np.bincount(data.episode).tolist()
    first = trajectories[0]
    assert first.terminated and first.obs.shape == (len(first.acts) + 1, 4)
    np.testing.assert_array_equal(first.obs[1:], data.transitions.next_obs[data.episode == 0])
    assert data.transitions.acts.dtype.kind == "i"  # Discrete actions stay integers
    ends = np.flatnonzero(data.transitions.dones)
    assert data.transitions.terminated[ends].all() and not data.transitions.truncated.any()


def test_transitions_keep_terminated_and_truncated_apart_from_every_producer():
    """rollout_transitions, the SB3 wrapper's last_transitions and the transition buffer split the ends."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    from rewardlab.preferences import TransitionBuffer
    from rewardlab.wrappers import RewardVecEnvWrapper

    def short_cartpole():
        return gym.wrappers.TimeLimit(gym.make("CartPole-v1").unwrapped, max_episode_steps=12)

    data = rollout_transitions(short_cartpole(), 200, seed=0)
    assert data.terminated.any() and data.truncated.any()  # random pushes: some fall, some reach 12 steps
    assert not (data.terminated & data.truncated).any()
    np.testing.assert_array_equal(data.dones, data.terminated | data.truncated)

    venv = RewardVecEnvWrapper(DummyVecEnv([short_cartpole] * 2), lambda o, a, n, d: np.zeros(len(d), np.float32))
    venv.seed(0)
    venv.reset()
    buffer = TransitionBuffer(400, 2)
    seen = {"terminated": 0, "truncated": 0}
    for _ in range(200):
        venv.step(np.random.default_rng(len(buffer)).integers(0, 2, 2))
        batch = venv.last_transitions
        assert not (batch.terminated & batch.truncated).any()
        seen["terminated"] += int(batch.terminated.sum())
        seen["truncated"] += int(batch.truncated.sum())
        buffer.add(batch.obs, batch.acts, batch.next_obs, batch.dones, batch.rews, terminated=batch.terminated)
    assert seen["terminated"] > 0 and seen["truncated"] > 0
    sample = buffer.sample_transitions(400, np.random.default_rng(0))
    assert int(sample.terminated.sum()) == seen["terminated"] and int(sample.truncated.sum()) == seen["truncated"]
    pairs = buffer.sample_pairs(64, 3, np.random.default_rng(0))
    assert pairs.terminated is not None and not (pairs.terminated & ~pairs.dones).any()


def test_task_envs_carry_the_library_wrappers():
    venv = make_task_env("Pendulum-v1", 2, seed=0, fixed_horizon=5, factors=True)
    venv.reset()
    for _ in range(5):
        _, _, dones, infos = venv.step(np.zeros((2, 1), np.float32))
    assert dones.all() and all("reward_factors" in info and "episode" in info for info in infos)
    assert (
        rollout(None, make_env("Pendulum-v1", fixed_horizon=DEFAULT_HORIZONS["Pendulum-v1"] // 40), 1).episode.size == 5
    )
    with pytest.raises(ValueError, match="num_envs: expected an integer >= 1, got 0"):
        make_task_env("Pendulum-v1", 0)
    with pytest.raises(ValueError, match="num_episodes: expected an integer >= 1, got 0"):
        rollout(None, make_env("Pendulum-v1"), 0)
