"""Shaping, transforms and constrained composition."""

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stable_baselines3.common.vec_env import DummyVecEnv

import rewardlab_envs
from rewardlab.shaping import (
    ConstrainedRewardFn,
    PotentialShapedRewardFn,
    bradley_terry_transform,
    cap_accumulated,
    chain,
    clip,
    discounted_return,
    freeze,
    model_potential,
    moving_average_centering,
    running_normalize,
    scale,
    shaped_rewards,
    transformed_reward_fn,
)
from rewardlab.tabular import value_iteration
from rewardlab.wrappers import RewardVecEnvWrapper

# --------------------------------------------------------------------------- potential shaping


@settings(max_examples=15, deadline=None)
@given(
    rewards=st.lists(st.floats(-10, 10), min_size=1, max_size=12),
    seed=st.integers(0, 1000),
    discount=st.floats(0.0, 1.0),
)
def test_shaped_discounted_return_is_original_minus_initial_potential(rewards, seed, discount):
    rewards = np.asarray(rewards, np.float32)
    potentials = np.random.default_rng(seed).normal(scale=5.0, size=rewards.size + 1).astype(np.float32)
    original = float(discounted_return(rewards, discount))
    shaped = shaped_rewards(rewards, potentials, discount, True)
    assert float(discounted_return(shaped, discount)) == pytest.approx(original - potentials[0], abs=1e-3)
    # a truncated (non-terminal) end keeps γ^T Φ(s_T)
    truncated = shaped_rewards(rewards, potentials, discount, False)
    expected = original - potentials[0] + discount**rewards.size * potentials[-1]
    assert float(discounted_return(truncated, discount)) == pytest.approx(expected, abs=1e-3)


def test_shaping_keeps_the_optimal_policy_on_a_random_mdp():
    mdp = rewardlab_envs.random_mdp(12, 3, seed=0, discount=0.9)
    potential = np.random.default_rng(0).normal(scale=3.0, size=12).astype(np.float32)
    shaped = mdp.reward + 0.9 * potential[None, None, :] - potential[:, None, None]
    original = value_iteration(mdp.transitions, mdp.reward, 0.9, num_sweeps=300)
    result = value_iteration(mdp.transitions, shaped, 0.9, num_sweeps=300)
    np.testing.assert_array_equal(np.argmax(result.q_values, -1), np.argmax(original.q_values, -1))
    np.testing.assert_allclose(result.state_values, original.state_values - potential, atol=1e-3)


def test_potential_shaped_reward_fn_matches_the_pure_function():
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(6, 2)).astype(np.float32)
    rewards = rng.normal(size=5).astype(np.float32)

    def potential(s):
        return s[:, 0] - 2.0 * s[:, 1]

    dones = np.array([False, False, False, False, True])
    fn = PotentialShapedRewardFn(lambda o, a, n, d: rewards, potential, 0.95)
    host = fn(obs[:-1], None, obs[1:], dones)
    np.testing.assert_allclose(host, shaped_rewards(rewards, potential(obs), 0.95, True), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="discount: expected a value in"):
        PotentialShapedRewardFn(None, potential, 1.5)


def test_learned_potential_of_a_reward_model():
    from rewardlab.rewards import RewardModel, RewardNetConfig

    model = RewardModel(
        RewardNetConfig(hidden_sizes=(8,), potential_shaping=True, ensemble_size=2),
        gym.spaces.Box(-1, 1, (3,)),
        gym.spaces.Box(-1, 1, (1,)),
    )
    params = model.init(0)
    obs = np.random.default_rng(0).uniform(-1, 1, (4, 3)).astype(np.float32)
    phi = model_potential(model, params)(obs)
    np.testing.assert_allclose(phi, np.asarray(model.potential(params, obs)).mean(0), rtol=1e-6)
    # the shaping term alone (no base reward) is F = γΦ(s') − Φ(s)
    shaping = PotentialShapedRewardFn(None, model_potential(model, params), 0.9)(
        obs, None, obs[::-1], np.zeros(4, bool)
    )
    np.testing.assert_allclose(shaping, 0.9 * phi[::-1] - phi, rtol=1e-5, atol=1e-6)


def test_critic_potential_is_the_agents_value_head():
    import torch

    from rewardlab.rl import critic_potential, make_agent

    agent = make_agent("ppo", DummyVecEnv([lambda: gym.make("Pendulum-v1")]), "Pendulum-v1", n_steps=16, batch_size=16)
    obs = np.random.default_rng(0).uniform(-1, 1, (5, 3)).astype(np.float32)
    with torch.no_grad():
        expected = agent.policy.predict_values(torch.as_tensor(obs)).numpy().reshape(-1)
    np.testing.assert_allclose(critic_potential(agent)(obs), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="agent: expected an SB3 on-policy agent"):
        critic_potential(object())


# --------------------------------------------------------------------------- transforms


def test_running_normalize_matches_numpy_over_batches_and_freezes():
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, size=n).astype(np.float32) for n in (5, 17, 1, 40)]
    transform = running_normalize(center=True)
    state = transform.init(1)
    seen = []
    for batch in batches:
        seen.extend(batch)
        out, state = jax.jit(transform.apply)(state, batch)
        np.testing.assert_allclose(out, (batch - np.mean(seen)) / np.sqrt(np.var(seen) + 1e-8), rtol=1e-4, atol=1e-4)
    frozen = freeze(state)
    out, after = transform.apply(frozen, np.array([100.0, 200.0], np.float32))
    assert float(after.count) == float(state.count) and float(after.mean) == pytest.approx(float(state.mean))
    np.testing.assert_allclose(
        out, (np.array([100.0, 200.0]) - np.mean(seen)) / np.sqrt(np.var(seen) + 1e-8), rtol=1e-4
    )
    # scale-only normalisation keeps the sign
    scaled, _ = running_normalize().apply(running_normalize().init(), np.array([1.0, 3.0], np.float32))
    np.testing.assert_allclose(scaled, np.array([1.0, 3.0]) / 1.0, rtol=1e-5)


def test_bradley_terry_transform_is_a_soft_and():
    transform = bradley_terry_transform()
    reference = jnp.zeros(3)
    u, _ = transform.apply(transform.init(), jnp.array([-20.0, 0.0, 20.0]), reference=reference)
    np.testing.assert_allclose(u, [-20.0, np.log(0.5), 0.0], atol=1e-6)
    # two properties: one good one bad scores far below both good, while raw sums tie
    good_and_bad = sum(transform.apply((), jnp.array([x]), reference=jnp.zeros(1))[0] for x in (10.0, -10.0))
    both_middling = sum(transform.apply((), jnp.array([x]), reference=jnp.zeros(1))[0] for x in (0.0, 0.0))
    assert float(good_and_bad[0]) < float(both_middling[0]) - 5.0
    with pytest.raises(ValueError, match="reference: bradley_terry_transform needs"):
        transform.apply(transform.init(), jnp.zeros(2))


def test_moving_average_centering_tracks_a_shift():
    transform = moving_average_centering(0.9)
    state = transform.init()
    for _ in range(200):
        out, state = transform.apply(state, jnp.full(4, 5.0))
    np.testing.assert_allclose(out, 0.0, atol=1e-3)
    with pytest.raises(ValueError, match="decay"):
        moving_average_centering(1.0)


def test_cap_accumulated_caps_every_episode_and_resets():
    transform = cap_accumulated(2.0, floor=-1.0)
    state = transform.init(2)
    totals = np.zeros(2)
    episode_totals = []
    rng = np.random.default_rng(0)
    for step in range(60):
        dones = np.array([step % 7 == 6, step % 11 == 10])
        out, state = jax.jit(transform.apply)(state, jnp.asarray(rng.normal(0.5, 1.0, 2), jnp.float32), dones=dones)
        totals += np.asarray(out)
        assert np.all(totals <= 2.0 + 1e-5) and np.all(totals >= -1.0 - 1e-5)
        for i in np.flatnonzero(dones):
            episode_totals.append(totals[i])
            totals[i] = 0.0
    assert max(episode_totals) == pytest.approx(2.0, abs=1e-5)  # the cap binds


def test_chain_composes_in_order_and_validates():
    transform = chain(clip(-1.0, 1.0), scale(2.0), clip(None, 1.5))
    out, state = transform.apply(transform.init(2), jnp.array([0.25, 4.0]))
    assert out.tolist() == [0.5, 1.5] and len(state) == 3
    with pytest.raises(ValueError, match="transforms\\[0\\]: expected a RewardTransform"):
        chain(lambda r: r)
    with pytest.raises(ValueError, match="transforms: expected at least one"):
        chain()


def test_transformed_reward_fn_in_a_vec_env_caps_the_episode_return():
    def stay_up(obs, acts, next_obs, dones):
        return (next_obs[:, 0] + 1.0).astype(np.float32)  # in [0, 2] per step

    fn = transformed_reward_fn(stay_up, chain(running_normalize(), cap_accumulated(5.0)))
    venv = RewardVecEnvWrapper(DummyVecEnv([lambda: gym.wrappers.TimeLimit(gym.make("Pendulum-v1"), 30)] * 2), fn)
    venv.reset()
    totals, finished = np.zeros(2), []
    for _ in range(65):
        _, rewards, dones, _ = venv.step(np.zeros((2, 1), np.float32))
        totals += rewards
        for i in np.flatnonzero(dones):
            finished.append(totals[i])
            totals[i] = 0.0
    assert len(finished) == 4 and max(finished) == pytest.approx(5.0, abs=1e-4)
    assert float(fn.state[0].count) == 130.0
    fn.freeze()
    venv.step(np.zeros((2, 1), np.float32))
    assert float(fn.state[0].count) == 130.0


def test_transformed_reward_fn_transforms_an_aggregated_reward_model_ensemble():
    from rewardlab.rewards import RewardModel, RewardNetConfig, as_reward_fn

    model = RewardModel(
        RewardNetConfig(hidden_sizes=(8,), ensemble_size=3), gym.spaces.Box(-1, 1, (3,)), gym.spaces.Box(-1, 1, (1,))
    )
    params = model.init(0)
    obs = np.random.default_rng(1).uniform(-1, 1, (5, 3)).astype(np.float32)
    acts, dones = np.zeros((5, 1), np.float32), np.zeros(5, bool)
    members = np.asarray(model.apply(params, obs, acts, obs, dones))  # [3, 5]
    conservative = as_reward_fn(model, params, aggregate="uncertainty_weighted", coefficient=0.5)
    fn = transformed_reward_fn(conservative, chain(scale(2.0), clip(None, 0.0)))
    expected = np.minimum(2.0 * (members.mean(0) - 0.5 * members.var(0)), 0.0)
    np.testing.assert_allclose(fn(obs, acts, obs, dones), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="reward: expected a RewardFn"):
        transformed_reward_fn((model, params), scale(2.0))


# --------------------------------------------------------------------------- constrained composition


def test_constrained_reward_fn_raises_the_multiplier_of_a_violated_constraint():
    def effort(obs, acts, next_obs, dones):
        return np.sum(acts**2, axis=-1)

    def main(obs, acts, next_obs, dones):
        return np.ones(len(dones), np.float32)

    fn = ConstrainedRewardFn(
        main,
        {"effort": effort, "free": lambda *args: np.zeros(len(args[3]))},
        {"effort": 0.5, "free": 1.0},
        learning_rate=0.5,
    )
    acts = np.full((4, 1), 1.0, np.float32)  # effort 1 > 0.5
    for step in range(3):
        rewards = fn.training_reward(None, acts, None, np.zeros(4, bool))
        np.testing.assert_allclose(rewards, 1.0 - 0.25 * step)
        fn.update_multipliers()
    assert fn.multipliers == {"effort": pytest.approx(0.75), "free": 0.0}
    with pytest.raises(ValueError, match="thresholds: expected one threshold per cost"):
        ConstrainedRewardFn(main, {"effort": effort}, {"speed": 1.0})


def test_constrained_reward_fn_moves_multipliers_only_on_training_transitions():
    """Relabelling and evaluation calls read λ; they must not pollute the cost estimates."""

    def effort(obs, acts, next_obs, dones):
        return np.sum(acts**2, axis=-1)

    fn = ConstrainedRewardFn(
        lambda o, a, n, d: np.zeros(len(d)), {"effort": effort}, {"effort": 1.0}, learning_rate=1.0
    )
    calm, wild = np.full((4, 1), 0.5), np.full((4, 1), 10.0)  # costs 0.25 (within 1.0) and 100
    fn.training_reward(None, calm, None, np.zeros(4, bool))
    for _ in range(5):  # evaluation and relabelling of wild actions in between
        np.testing.assert_allclose(fn(None, wild, None, np.zeros(4, bool)), 0.0)
    assert fn.update_multipliers() == {"effort": 0.0}  # max(0, 0 + (0.25 − 1)): the wild calls left no trace
    fn.training_reward(None, wild, None, np.zeros(4, bool))
    fn(None, calm, None, np.zeros(4, bool))
    assert fn.update_multipliers() == {"effort": pytest.approx(99.0)}  # 0 + (100 − 1)
    np.testing.assert_allclose(fn(None, calm, None, np.zeros(4, bool)), -99.0 * 0.25)
    assert fn.update_multipliers() == {"effort": pytest.approx(99.0)}  # nothing recorded: no step


def test_lagrange_multiplier_callback_updates_after_each_rollout():
    from rewardlab.rl import LagrangeMultiplierCallback, make_agent

    def effort(obs, acts, next_obs, dones):
        return np.sum(np.asarray(acts, np.float64) ** 2, axis=-1)

    fn = ConstrainedRewardFn(
        lambda o, a, n, d: n[:, 0].astype(np.float32), {"effort": effort}, {"effort": 0.0}, learning_rate=0.1
    )
    plain = RewardVecEnvWrapper(DummyVecEnv([lambda: gym.make("Pendulum-v1")] * 2), fn)
    agent = make_agent("ppo", plain, "Pendulum-v1", seed=0, n_steps=32, batch_size=32, n_epochs=1)
    with pytest.raises(ValueError, match=r"reward_fn\.training_reward"):  # the plain reward records nothing
        agent.learn(64, callback=LagrangeMultiplierCallback(fn))
    venv = RewardVecEnvWrapper(DummyVecEnv([lambda: gym.make("Pendulum-v1")] * 2), fn.training_reward)
    agent = make_agent("ppo", venv, "Pendulum-v1", seed=0, n_steps=32, batch_size=32, n_epochs=1)
    callback = LagrangeMultiplierCallback(fn)
    agent.learn(128, callback=callback)
    assert len(callback.history) == 2
    assert callback.history[0]["mean_costs"]["effort"] > 0.0
    assert 0.0 < callback.history[0]["multipliers"]["effort"] < callback.history[1]["multipliers"]["effort"]
