"""Tabular IRL: behaviour models, demonstrations and MCE IRL against known answers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rewardlab_envs
from rewardlab.irl import (
    MCEIRLConfig,
    behaviour_policy,
    demonstration_occupancy,
    discounted_occupancy,
    empirical_occupancy,
    finite_horizon_optimal_q,
    make_mce_irl,
    mce_irl,
    mce_irl_gradient,
    mce_irl_loss,
    sample_trajectories,
    soft_plan,
)
from rewardlab.tabular import (
    TabularRewardParams,
    finite_horizon_soft_value_iteration,
    linear_reward,
    mlp_reward,
    occupancy_measure,
    tabular_reward,
    value_iteration,
)


def _small_mdp(seed=0, num_states=8, num_actions=3, discount=0.9):
    mdp = rewardlab_envs.random_mdp(num_states, num_actions, seed=seed, branching=2, discount=discount)
    # a state-action reward (the mean over s'), so that tabular [S, A] learners can represent it exactly
    reward = jnp.einsum("sat,sat->sa", mdp.transitions, mdp.reward)
    return jnp.asarray(mdp.transitions), reward, jnp.asarray(mdp.initial_state_dist)


# Behaviour models ------------------------------------------------------------------------------
def test_boltzmann_tends_to_optimal_and_causal_entropy_matches_soft_planner():
    T, r, _ = _small_mdp()
    optimal = behaviour_policy(T, r, 0.9, "optimal")
    sharp = behaviour_policy(T, r, 0.9, "boltzmann", rationality=1e4)
    np.testing.assert_allclose(sharp, optimal, atol=1e-4)
    flat = behaviour_policy(T, r, 0.9, "boltzmann", rationality=1e-6)
    np.testing.assert_allclose(flat, 1.0 / 3, atol=1e-5)
    soft = behaviour_policy(T, r, 0.9, "causal_entropy", rationality=2.0)
    np.testing.assert_allclose(soft, value_iteration(T, r, 0.9, num_sweeps=500, temperature=0.5).policy, atol=1e-6)
    timed = behaviour_policy(T, r, 0.9, "causal_entropy", rationality=2.0, horizon=6)
    np.testing.assert_allclose(
        timed, finite_horizon_soft_value_iteration(T, r, 0.9, 6, temperature=0.5).policy, atol=1e-6
    )
    with pytest.raises(ValueError, match="behaviour"):
        behaviour_policy(T, r, 0.9, "noisy")


def test_finite_horizon_optimal_q_hand_computed_chain():
    # 0 -> 1 -> 2 (absorbing); action 1 moves right; reward 1 on entering 2
    T = np.zeros((3, 2, 3), np.float32)
    T[0, 0, 0] = T[1, 0, 1] = T[0, 1, 1] = T[1, 1, 2] = 1.0
    T[2, :, 2] = 1.0
    r = np.zeros((3, 2, 3), np.float32)
    r[1, 1, 2] = 1.0
    q = finite_horizon_optimal_q(T, r, 1.0, 2)
    np.testing.assert_allclose(q[0, 0], [0.0, 1.0])  # two steps left from 0: only moving now reaches 2 in time
    np.testing.assert_allclose(q[1, 0], [0.0, 0.0])  # one step left from 0: cannot reach 2
    np.testing.assert_allclose(q[1, 1], [0.0, 1.0])


# Demonstrations -------------------------------------------------------------------------------
def test_occupancy_sums_to_horizon_and_to_effective_horizon():
    T, r, d0 = _small_mdp(seed=1)
    for behaviour in ("optimal", "boltzmann", "causal_entropy"):
        finite = demonstration_occupancy(T, r, d0, 1.0, 7, behaviour)
        assert float(finite.sum()) == pytest.approx(7.0, rel=1e-5)
        infinite = demonstration_occupancy(T, r, d0, 0.9, None, behaviour)
        assert float(infinite.sum()) == pytest.approx(10.0, rel=1e-4)
        assert float(infinite.min()) >= 0.0


def test_discounted_occupancy_equals_long_scan():
    T, r, d0 = _small_mdp(seed=2)
    policy = behaviour_policy(T, r, 0.8, "boltzmann")
    exact = discounted_occupancy(T, policy, d0, 0.8)
    scanned = occupancy_measure(T, policy, d0, 200, discount=0.8)
    np.testing.assert_allclose(exact, scanned, atol=1e-4)


def test_sampled_occupancy_converges_to_exact():
    T, r, d0 = _small_mdp(seed=3)
    policy = behaviour_policy(T, r, 1.0, "causal_entropy", horizon=5)
    demos = sample_trajectories(jax.random.key(0), T, policy, d0, 5, 20_000)
    assert demos.states.shape == (20_000, 6) and demos.actions.shape == (20_000, 5)
    # every sampled transition has positive probability
    s, a, s_next = demos.states[:, :-1], demos.actions, demos.states[:, 1:]
    assert bool(jnp.all(T[s, a, s_next] > 0))
    sampled = empirical_occupancy(demos, 8, 3)
    exact = occupancy_measure(T, policy, d0, 5)
    assert float(sampled.sum()) == pytest.approx(5.0)
    np.testing.assert_allclose(sampled, exact, atol=0.03)


def test_sample_trajectories_rejects_bad_policy_shape():
    T, _, d0 = _small_mdp()
    with pytest.raises(ValueError, match="policy"):
        sample_trajectories(jax.random.key(0), T, jnp.ones((4, 3)) / 3, d0, 5, 2)


# MCE IRL ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("horizon", [None, 6])
def test_gradient_is_occupancy_matching_and_matches_finite_differences(horizon):
    T, r, d0 = _small_mdp(seed=4)
    discount = 0.9
    config = MCEIRLConfig(horizon=horizon, rationality=2.0, l2_penalty=0.1)
    demos = demonstration_occupancy(T, r, d0, discount, horizon, "causal_entropy", rationality=2.0)
    features = jax.random.normal(jax.random.key(1), (8, 3, 4))
    model = linear_reward(features)
    params = jnp.array([0.3, -0.2, 0.5, 0.1])
    grads, metrics, _ = jax.jit(
        lambda p: mce_irl_gradient(model, TabularRewardParams(p), T, d0, discount, demos, config)
    )(params)
    grads = grads.net
    autodiff = jax.jit(jax.grad(lambda p: mce_irl_loss(model, TabularRewardParams(p), T, d0, discount, demos, config)))(
        params
    )
    np.testing.assert_allclose(grads, autodiff, rtol=1e-3, atol=1e-4)
    jitted_loss = jax.jit(lambda p: mce_irl_loss(model, TabularRewardParams(p), T, d0, discount, demos, config))
    loss = lambda p: float(jitted_loss(p))  # noqa: E731
    assert float(metrics["loss"]) == pytest.approx(loss(params), rel=1e-5)
    eps = 1e-2
    for k in range(4):
        step = np.zeros(4, np.float32)
        step[k] = eps
        finite_difference = (loss(params + step) - loss(params - step)) / (2 * eps)
        assert float(grads[k]) == pytest.approx(finite_difference, rel=2e-2, abs=2e-3)


def test_mce_gradient_matches_numpy_reference():
    from rewardlab.testing import numpy_mce_occupancy_gradient

    T, r, d0 = _small_mdp(seed=10, num_states=5, num_actions=2)
    demos = demonstration_occupancy(T, r, d0, 0.95, 4, "boltzmann", rationality=2.0)
    params = jax.random.normal(jax.random.key(3), (5, 2))
    config = MCEIRLConfig(horizon=4, rationality=0.5)
    grads, metrics, plan = mce_irl_gradient(
        tabular_reward((5, 2)), TabularRewardParams(params), T, d0, 0.95, demos, config
    )
    occupancy, gradient, loss = numpy_mce_occupancy_gradient(
        np.asarray(T), np.asarray(params), np.asarray(d0), 0.95, 4, np.asarray(demos), temperature=2.0
    )
    np.testing.assert_allclose(plan.occupancy, occupancy, atol=1e-5)
    np.testing.assert_allclose(grads.net, gradient, atol=1e-5)
    assert float(metrics["loss"]) == pytest.approx(loss, rel=1e-5)


def test_gradient_of_tabular_reward_is_occupancy_difference():
    T, r, d0 = _small_mdp(seed=5)
    config = MCEIRLConfig(horizon=4)
    demos = demonstration_occupancy(T, r, d0, 1.0, 4, "causal_entropy")
    model = tabular_reward((8, 3))
    grads, _, plan = mce_irl_gradient(model, model.init(), T, d0, 1.0, demos, config)
    np.testing.assert_allclose(grads.net, plan.occupancy - demos, atol=1e-6)


@pytest.mark.parametrize(("horizon", "discount"), [(None, 0.9), (8, 1.0)])
def test_recovered_reward_induces_demonstrator_optimal_policy(horizon, discount):
    T, r, d0 = _small_mdp(seed=6, discount=discount)
    demos = demonstration_occupancy(T, r, d0, discount, horizon, "causal_entropy", rationality=3.0)
    config = MCEIRLConfig(horizon=horizon, rationality=3.0, num_steps=600, learning_rate=0.1, tolerance=1e-4)
    result = mce_irl(tabular_reward((8, 3)), T, d0, demos, discount=discount, config=config)
    assert float(result.metrics["occupancy_error"][-1]) < 1e-2
    assert float(result.metrics["loss"][-1]) < float(result.metrics["loss"][0])
    # the MCE policy of the learned reward reproduces the demonstrator's
    demo_policy = behaviour_policy(T, r, discount, "causal_entropy", rationality=3.0, horizon=horizon)
    visited = np.asarray(demos.sum(-1) > 1e-3)
    np.testing.assert_allclose(
        np.asarray(result.policy)[..., visited, :], np.asarray(demo_policy)[..., visited, :], atol=0.03
    )
    if horizon is None:  # and its optimal policy is the demonstrator's optimal policy
        learned = value_iteration(T, result.reward, discount, num_sweeps=500).policy
        true = value_iteration(T, r, discount, num_sweeps=500).policy
        np.testing.assert_array_equal(np.asarray(learned).argmax(-1)[visited], np.asarray(true).argmax(-1)[visited])


def _reasonable_mdp():
    """imitation's ``ReasonableMDP`` (tests/algorithms/test_mce_irl.py): 5 states, 3 actions, state reward, H = 20."""
    observations = np.array(
        [
            [3, -5, -1, -1, -4, 5, 3, 0],
            [4, -4, 2, 2, -4, -1, -2, -2],
            [3, -1, 5, -1, 0, 2, -5, 2],
            [-5, -1, 4, 1, 4, 1, 5, 3],
            [2, -5, 1, -5, 1, 4, 4, -3],
        ],
        np.float32,
    )
    T = np.zeros((5, 3, 5), np.float32)
    T[0, 0, [1, 2]] = [0.9, 0.1]  # to the top (sometimes the bottom)
    T[0, 1, 3] = 1.0  # to the bad middle state
    T[0, 2, [1, 2]] = [0.1, 0.9]  # to the bottom (sometimes the top)
    for state in (1, 2):
        T[state, 0, [3, 4]] = [0.05, 0.95]  # to the final state, sometimes the middle one
        T[state, 1, 3] = 1.0
        T[state, 2, 4] = 1.0
    T[3, :, 4] = 1.0
    T[4, :, 0] = 1.0
    reward = np.array([1.0, 2.0, 2.0, -20.0, 3.0], np.float32)
    return observations, T, reward, np.array([0.5, 0, 0, 0, 0.5], np.float32)


@pytest.mark.parametrize("model", ["linear", "mlp"])
def test_default_settings_converge_on_imitations_reasonable_mdp(model):
    # imitation's test_mce_irl_reasonable_mdp: fit the exact (state) occupancy of the MCE-optimal
    # policy over 20 steps to within 1e-3, with a linear reward or a [32, 32] MLP over the observations
    observations, T, reward, d0 = _reasonable_mdp()
    reward_model = linear_reward(observations) if model == "linear" else mlp_reward(observations, (32, 32))
    for discount in (0.99, 1.0):
        demos = demonstration_occupancy(T, reward, d0, discount, 20, "causal_entropy")
        result = mce_irl(reward_model, T, d0, demos, discount=discount, config=MCEIRLConfig(horizon=20))
        state_error = np.abs(np.asarray(result.occupancy).sum(-1) - np.asarray(demos).sum(-1))
        assert bool(result.converged) and int(result.num_steps) < 2000
        assert state_error.max() <= 1e-3
        assert float(result.metrics["occupancy_max_error"][-1]) == pytest.approx(state_error.max(), abs=1e-4)


def test_tolerance_stops_early_and_reports_convergence():
    T, r, d0 = _small_mdp(seed=11)
    demos = demonstration_occupancy(T, r, d0, 1.0, 5, "causal_entropy")
    model = tabular_reward((8, 3))
    stopped = mce_irl(model, T, d0, demos, discount=1.0, config=MCEIRLConfig(horizon=5, tolerance=1e-2))
    steps = int(stopped.num_steps)
    assert bool(stopped.converged) and 1 <= steps < 2000
    errors = np.asarray(stopped.metrics["occupancy_max_error"])
    assert errors[steps - 1] <= 1e-2 < errors[steps - 2]  # stopped at the first step within the tolerance
    np.testing.assert_array_equal(errors[steps:], errors[steps - 1])  # repeated after the stop
    short = mce_irl(model, T, d0, demos, discount=1.0, config=MCEIRLConfig(horizon=5, num_steps=3, tolerance=1e-6))
    assert not bool(short.converged) and int(short.num_steps) == 3
    with pytest.raises(ValueError, match="tolerance"):
        MCEIRLConfig(tolerance=-1.0)
    with pytest.raises(ValueError, match="objective"):
        MCEIRLConfig(objective="margin")
    with pytest.raises(ValueError, match="horizon"):
        MCEIRLConfig(objective="likelihood", horizon=5)


def test_linear_reward_recovers_delivery_weights():
    mdp = rewardlab_envs.delivery_mdp(discount=0.9)
    T, d0 = jnp.asarray(mdp.transitions), jnp.asarray(mdp.initial_state_dist)
    reward = jnp.asarray(mdp.reward) / 50.0
    demos = demonstration_occupancy(T, reward, d0, 0.9, None, "causal_entropy", rationality=10.0)
    config = MCEIRLConfig(rationality=10.0, num_steps=300, learning_rate=0.05)
    result = mce_irl(linear_reward(mdp.features), T, d0, demos, discount=0.9, config=config)
    weights = np.asarray(result.params.net) * 50.0
    np.testing.assert_allclose(weights[[0, 3, 4, 5]], mdp.true_weights[[0, 3, 4, 5]], atol=0.2)
    assert weights[1] > 40 and weights[2] < -30  # goal and sheep: large and of the right sign
    learned = value_iteration(T, result.reward, 0.9).policy
    true = value_iteration(T, reward, 0.9).policy
    agree = np.asarray((learned * true).sum(-1) > 0)[np.asarray(d0) > 0]
    assert agree.all()


def test_sampled_demonstrations_and_neural_reward():
    T, r, d0 = _small_mdp(seed=7)
    policy = behaviour_policy(T, r, 1.0, "causal_entropy", horizon=6, rationality=3.0)
    demos = sample_trajectories(jax.random.key(1), T, policy, d0, 6, 4000)
    occupancy = empirical_occupancy(demos, 8, 3)
    features = jnp.broadcast_to(jnp.eye(24).reshape(8, 3, 24), (8, 3, 24))  # one-hot (s, a)
    config = MCEIRLConfig(horizon=6, rationality=3.0, num_steps=400, learning_rate=0.02)
    result = mce_irl(mlp_reward(features, hidden_sizes=(16,)), T, d0, occupancy, discount=1.0, config=config, key=3)
    assert result.reward.shape == (8, 3)
    assert float(result.metrics["occupancy_error"][-1]) < 0.1  # sampling noise bounds the attainable error


def test_trainer_vmaps_over_discounts_and_seeds():
    T, r, d0 = _small_mdp(seed=8)
    config = MCEIRLConfig(horizon=5, num_steps=20)
    demos = demonstration_occupancy(T, r, d0, 1.0, 5, "causal_entropy")
    train = make_mce_irl(mlp_reward(jnp.eye(8)[:, None, :].repeat(3, 1), hidden_sizes=(4,)), config)
    keys = jax.random.split(jax.random.key(0), 3)
    discounts = jnp.array([0.8, 0.9, 1.0])
    batched = jax.jit(jax.vmap(train, in_axes=(0, None, None, 0, None)))(keys, T, d0, discounts, demos)
    assert batched.metrics["loss"].shape == (3, 20)
    single = jax.jit(train)(keys[1], T, d0, discounts[1], demos)
    np.testing.assert_allclose(batched.reward[1], single.reward, atol=1e-5)
    unjitted = train(keys[1], T, d0, discounts[1], demos)
    np.testing.assert_allclose(unjitted.reward, single.reward, atol=1e-4)


def test_soft_plan_occupancy_matches_planner():
    T, r, d0 = _small_mdp(seed=9)
    plan = soft_plan(T, r, d0, 0.95, MCEIRLConfig(horizon=4))
    reference = finite_horizon_soft_value_iteration(T, r, 0.95, 4)
    np.testing.assert_allclose(plan.occupancy, occupancy_measure(T, reference.policy, d0, 4, discount=0.95), atol=1e-6)
    assert float(plan.initial_value) == pytest.approx(float(d0 @ reference.state_values[0]), rel=1e-6)


def test_mce_irl_rejects_bad_inputs():
    T, r, d0 = _small_mdp()
    demos = demonstration_occupancy(T, r, d0, 0.9, None, "optimal")
    model = tabular_reward((8, 3))
    with pytest.raises(ValueError, match="demo_occupancy"):
        mce_irl(model, T, d0, demos[:4], discount=0.9)
    with pytest.raises(ValueError, match="initial_state_dist"):
        mce_irl(model, T, d0[:3], demos, discount=0.9)
    with pytest.raises(ValueError, match="discount"):
        mce_irl(model, T, d0, demos, discount=1.0)
    with pytest.raises(ValueError, match="reward_model"):
        mce_irl(tabular_reward((5,)), T, d0, demos, discount=0.9)
    with pytest.raises(ValueError, match="rationality"):
        MCEIRLConfig(rationality=0.0)
    with pytest.raises(ValueError, match="horizon"):
        MCEIRLConfig(horizon=0)
