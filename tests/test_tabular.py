"""Exact planning: hand-computed values, agreement between solvers, gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rewardlab_envs
from rewardlab.tabular import (
    boltzmann_policy,
    expand_reward,
    expected_return,
    finite_horizon_soft_value_iteration,
    greedy_policy,
    occupancy_measure,
    policy_evaluation,
    scaled_return,
    value_iteration,
)


def _chain():
    # states 0 -> 1 -> 2 (absorbing); action 0 stays, action 1 moves right; reward 1 on entering 2
    T = np.zeros((3, 2, 3), np.float32)
    T[0, 0, 0] = T[1, 0, 1] = 1.0
    T[0, 1, 1] = T[1, 1, 2] = 1.0
    T[2, :, 2] = 1.0
    r = np.zeros((3, 2, 3), np.float32)
    r[1, 1, 2] = 1.0
    return jnp.asarray(T), jnp.asarray(r)


def test_value_iteration_matches_hand_computed_chain():
    T, r = _chain()
    result = value_iteration(T, r, 0.5, num_sweeps=50)
    np.testing.assert_allclose(result.state_values, [0.5, 1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(result.policy[:2], [[0.0, 1.0], [0.0, 1.0]])


def test_policy_evaluation_agrees_with_value_iteration_on_random_mdp():
    mdp = rewardlab_envs.random_mdp(20, 3, seed=1, discount=0.9)
    result = value_iteration(mdp.transitions, mdp.reward, mdp.discount, num_sweeps=400)
    values = policy_evaluation(mdp.transitions, mdp.reward, mdp.discount, result.policy)
    np.testing.assert_allclose(values, result.state_values, atol=1e-3)


def test_soft_value_iteration_tends_to_hard_as_temperature_falls():
    mdp = rewardlab_envs.random_mdp(15, 4, seed=2, discount=0.9)
    hard = value_iteration(mdp.transitions, mdp.reward, mdp.discount, num_sweeps=300)
    soft = value_iteration(mdp.transitions, mdp.reward, mdp.discount, num_sweeps=300, temperature=1e-3)
    np.testing.assert_allclose(soft.state_values, hard.state_values, atol=0.05)
    warm = value_iteration(mdp.transitions, mdp.reward, mdp.discount, num_sweeps=300, temperature=1.0)
    assert np.all(np.asarray(warm.state_values) > np.asarray(hard.state_values))  # entropy bonus


def test_finite_horizon_policy_normalised_and_occupancy_sums_to_horizon():
    mdp = rewardlab_envs.random_mdp(12, 3, seed=3)
    result = finite_horizon_soft_value_iteration(mdp.transitions, mdp.reward, 1.0, 7)
    np.testing.assert_allclose(result.policy.sum(-1), 1.0, atol=1e-5)
    occupancy = occupancy_measure(mdp.transitions, result.policy, mdp.initial_state_dist, 7)
    assert float(occupancy.sum()) == pytest.approx(7.0, rel=1e-5)


def test_soft_value_gradient_matches_finite_differences():
    mdp = rewardlab_envs.random_mdp(6, 2, seed=4, discount=0.8)
    reward = jnp.asarray(mdp.reward, jnp.float32)[:, :, 0]

    def objective(r):
        return jnp.dot(
            mdp.initial_state_dist,
            value_iteration(mdp.transitions, r, 0.8, num_sweeps=100, temperature=1.0).state_values,
        )

    grad = jax.grad(objective)(reward)
    eps = 1e-2
    bump = jnp.zeros_like(reward).at[1, 0].set(eps)
    numeric = (objective(reward + bump) - objective(reward - bump)) / (2 * eps)
    assert float(grad[1, 0]) == pytest.approx(float(numeric), rel=2e-2, abs=1e-3)


def test_scaled_return_is_one_for_optimal_and_zero_for_uniform():
    mdp = rewardlab_envs.delivery_mdp()
    optimal = value_iteration(mdp.transitions, mdp.reward, mdp.discount, num_sweeps=300).policy
    uniform = jnp.full(optimal.shape, 1.0 / optimal.shape[1])
    args = (mdp.transitions, mdp.reward, mdp.discount)
    assert float(scaled_return(*args, optimal, mdp.initial_state_dist, num_sweeps=300)) == pytest.approx(1.0, abs=1e-3)
    assert float(scaled_return(*args, uniform, mdp.initial_state_dist, num_sweeps=300)) == pytest.approx(0.0, abs=1e-3)


def test_vmap_over_rewards_matches_one_at_a_time():
    mdp = rewardlab_envs.random_mdp(10, 3, seed=5, discount=0.9)
    rewards = jax.random.normal(jax.random.key(0), (4, 10, 3))
    batched = jax.vmap(lambda r: value_iteration(mdp.transitions, r, 0.9, num_sweeps=100).state_values)(rewards)
    for index in range(4):
        single = value_iteration(mdp.transitions, rewards[index], 0.9, num_sweeps=100).state_values
        np.testing.assert_allclose(batched[index], single, atol=1e-5)


def test_bad_shapes_name_the_argument():
    T, _ = _chain()
    with pytest.raises(ValueError, match="reward"):
        expand_reward(jnp.zeros(5), T)
    with pytest.raises(ValueError, match="transitions"):
        value_iteration(jnp.zeros((3, 2)), jnp.zeros(3), 0.9)
    with pytest.raises(ValueError, match="policy"):
        policy_evaluation(T, jnp.zeros(3), 0.9, jnp.zeros((2, 2)))


def test_greedy_and_boltzmann_policies():
    q = jnp.array([[0.0, 1.0, 1.0]])
    np.testing.assert_allclose(greedy_policy(q), [[0.0, 0.5, 0.5]])
    np.testing.assert_allclose(boltzmann_policy(q, 0.0), [[1 / 3] * 3], atol=1e-6)
    T, r = _chain()
    d0 = jnp.array([1.0, 0.0, 0.0])
    assert float(expected_return(T, r, 0.5, jnp.array([[0.0, 1.0]] * 3), d0)) == pytest.approx(0.5)


def test_successor_table_form_agrees_with_dense_on_delivery():
    from rewardlab.tabular import successor_table

    mdp = rewardlab_envs.delivery_mdp(discount=0.9)
    successors = successor_table(mdp.transitions)
    assert successors.shape == (mdp.num_states, mdp.num_actions)
    dense = value_iteration(mdp.transitions, mdp.reward, 0.9, num_sweeps=150, temperature=0.5)
    table = value_iteration(successors, mdp.reward, 0.9, num_sweeps=150, temperature=0.5)
    np.testing.assert_allclose(table.q_values, dense.q_values, rtol=1e-5, atol=1e-4)
    policy = dense.policy
    exact = policy_evaluation(mdp.transitions, mdp.reward, 0.9, policy)
    np.testing.assert_allclose(policy_evaluation(successors, mdp.reward, 0.9, policy), exact, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(
        policy_evaluation(successors, mdp.reward, 0.9, policy, num_sweeps=300), exact, rtol=1e-4, atol=1e-3
    )
    horizon = finite_horizon_soft_value_iteration(successors, mdp.reward, 1.0, 6)
    np.testing.assert_allclose(
        horizon.q_values, finite_horizon_soft_value_iteration(mdp.transitions, mdp.reward, 1.0, 6).q_values, atol=1e-4
    )
    occupancy = occupancy_measure(successors, horizon.policy, mdp.initial_state_dist, 6)
    np.testing.assert_allclose(
        occupancy, occupancy_measure(mdp.transitions, horizon.policy, mdp.initial_state_dist, 6), atol=1e-5
    )
    greedy = value_iteration(successors, mdp.reward, 0.9, num_sweeps=150).policy
    assert float(
        scaled_return(successors, mdp.reward, 0.9, greedy, mdp.initial_state_dist, evaluation_sweeps=300)
    ) == pytest.approx(1.0, abs=1e-3)


def test_successor_table_rejects_stochastic_transitions():
    from rewardlab.tabular import successor_table

    with pytest.raises(ValueError, match="deterministic"):
        successor_table(rewardlab_envs.random_mdp(5, 2, seed=0).transitions)


def test_concurrent_batched_solves_finish_and_match_lapack():
    # Two independent batched solves in one jit: with jnp.linalg.solve they deadlock XLA's CPU
    # pool on two cores; rewardlab.linalg.solve batches as a loop and finishes.
    from rewardlab.linalg import pinv, solve

    keys = jax.random.split(jax.random.key(0), 4)
    size, batch = 40, 64
    a1 = size * jnp.eye(size) + jax.random.normal(keys[0], (batch, size, size))
    a2 = size * jnp.eye(size) + jax.random.normal(keys[1], (batch, size, size))
    b1, b2 = jax.random.normal(keys[2], (batch, size)), jax.random.normal(keys[3], (batch, size))
    both = jax.jit(jax.vmap(lambda a1, b1, a2, b2: (solve(a1, b1), solve(a2, b2))))
    x1, x2 = both(a1, b1, a2, b2)
    np.testing.assert_allclose(
        x1, np.linalg.solve(np.asarray(a1), np.asarray(b1)[..., None])[..., 0], rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(
        x2, np.linalg.solve(np.asarray(a2), np.asarray(b2)[..., None])[..., 0], rtol=1e-4, atol=1e-5
    )
    # matrix right-hand sides, vmapped over b only, and pinv
    rhs = jax.random.normal(keys[2], (batch, size, 3))
    np.testing.assert_allclose(
        jax.vmap(solve, in_axes=(None, 0))(a1[0], rhs),
        np.linalg.solve(np.asarray(a1[0]), np.asarray(rhs)),
        rtol=1e-4,
        atol=1e-5,
    )
    np.testing.assert_allclose(
        jax.vmap(solve, in_axes=(None, 0))(a1[0], b1),
        np.linalg.solve(np.asarray(a1[0]), np.asarray(b1).T).T,
        rtol=1e-4,
        atol=1e-5,
    )
    np.testing.assert_allclose(
        jax.vmap(solve, in_axes=(0, None))(a1, b1[0]),
        np.linalg.solve(np.asarray(a1), np.asarray(b1[0])[None, :, None])[..., 0],
        rtol=1e-4,
        atol=1e-5,
    )
    nested = jax.vmap(jax.vmap(solve, in_axes=(None, 0)), in_axes=(0, None))(a1[:3], rhs[:4])  # [3, 4, size, 3]
    np.testing.assert_allclose(
        nested[2, 1], np.linalg.solve(np.asarray(a1[2]), np.asarray(rhs[1])), rtol=1e-4, atol=1e-5
    )
    tall = jax.random.normal(keys[3], (batch, 12, 5))
    np.testing.assert_allclose(jax.vmap(pinv)(tall), np.linalg.pinv(np.asarray(tall)), rtol=1e-3, atol=1e-4)


def test_solve_gradients_match_lapack_solve():
    from rewardlab.linalg import solve

    keys = jax.random.split(jax.random.key(1), 3)
    a = 6 * jnp.eye(6) + jax.random.normal(keys[0], (6, 6))
    for b in (jax.random.normal(keys[1], (6,)), jax.random.normal(keys[2], (6, 2))):
        ours = jax.grad(lambda a, b: jnp.sum(jnp.sin(solve(a, b))), argnums=(0, 1))(a, b)
        reference = jax.grad(lambda a, b: jnp.sum(jnp.sin(jnp.linalg.solve(a, b))), argnums=(0, 1))(a, b)
        for mine, theirs in zip(ours, reference, strict=True):
            np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("size", [1, 3, 6, 16])
def test_small_systems_are_solved_by_pivoted_elimination(size):
    from rewardlab.linalg import solve

    keys = jax.random.split(jax.random.key(size), 3)
    a = jax.random.normal(keys[0], (32, size, size))
    if size > 1:
        a = a.at[:, 0, 0].set(0.0)  # a zero leading entry needs a row swap
    b = jax.random.normal(keys[1], (32, size))
    x = jax.jit(jax.vmap(solve))(a, b)
    np.testing.assert_allclose(
        x,
        np.linalg.solve(np.asarray(a, np.float64), np.asarray(b, np.float64)[..., None])[..., 0],
        rtol=2e-3,
        atol=2e-3,
    )
    g = jax.grad(lambda a: jnp.sum(solve(a, b[0]) ** 2))(a[0] + 5 * jnp.eye(size))
    g_ref = jax.grad(lambda a: jnp.sum(jnp.linalg.solve(a, b[0]) ** 2))(a[0] + 5 * jnp.eye(size))
    np.testing.assert_allclose(g, g_ref, rtol=1e-3, atol=1e-4)


def test_solve_names_the_bad_argument():
    from rewardlab.linalg import solve

    with pytest.raises(ValueError, match=r"a: expected a square matrix"):
        solve(jnp.ones((2, 3)), jnp.ones(2))
    with pytest.raises(ValueError, match=r"b: expected shape \[N\] or \[N, K\] with N = 2"):
        solve(jnp.eye(2), jnp.ones(3))


# The tabular reward family ------------------------------------------------------------------------


def test_tabular_rewards_by_hand_on_a_two_state_mdp():
    from rewardlab.tabular import TabularRewardParams, linear_reward, tabular_reward

    # S = 2, A = 2; φ(s, a, s') = [1 if s' = 1, 1 if a = 1]: w = [2, −1] pays 2 for landing in 1, −1 for acting
    features = np.zeros((2, 2, 2, 2), np.float32)
    features[:, :, 1, 0] = 1.0
    features[:, 1, :, 1] = 1.0
    reward = linear_reward(features)
    assert reward.name == "linear" and reward.reward_shape == (2, 2, 2) and reward.ensemble_size == 1
    params = TabularRewardParams(jnp.array([2.0, -1.0]))
    np.testing.assert_allclose(reward.table(params), [[[0.0, 2.0], [-1.0, 1.0]], [[0.0, 2.0], [-1.0, 1.0]]])
    obs, acts, next_obs = np.array([0, 1, 0]), np.array([1, 0, 0]), np.array([1, 1, 0])
    np.testing.assert_allclose(reward.apply(params, obs, acts, next_obs, None), [[1.0, 2.0, 0.0]])
    np.testing.assert_array_equal(reward.init().net, [0.0, 0.0])
    # a free [S, A] table: r(s, a) looked up at (s, a); s' is not needed
    table = tabular_reward((2, 2))
    values = TabularRewardParams(jnp.array([[0.5, -0.5], [3.0, 4.0]]))
    np.testing.assert_allclose(table.apply(values, obs, acts, None, None), [[-0.5, 3.0, 0.5]])
    state_only = tabular_reward((2,))
    np.testing.assert_allclose(
        state_only.apply(TabularRewardParams(jnp.array([7.0, 9.0])), obs, None, None, None), [[7.0, 9.0, 7.0]]
    )
    # lookup gathers any array over the index axes, features included: [N, K]
    np.testing.assert_allclose(
        reward.lookup(reward.features, obs, acts, next_obs), [[1.0, 1.0], [1.0, 0.0], [0.0, 0.0]]
    )


def test_tabular_rewards_are_differentiable_and_vmap_over_params():
    from rewardlab.tabular import TabularRewardParams, linear_reward, mlp_reward

    features = jnp.asarray(np.random.default_rng(0).normal(size=(4, 3, 5)), jnp.float32)
    reward = linear_reward(features)
    obs, acts = jnp.array([0, 3, 3]), jnp.array([2, 1, 1])
    grads = jax.grad(lambda net: reward.apply(TabularRewardParams(net), obs, acts, None, None).sum())(jnp.ones(5))
    np.testing.assert_allclose(grads, features[obs, acts].sum(0), rtol=1e-6)  # ∂/∂w Σ φ·w = Σ φ
    stacked = TabularRewardParams(jnp.arange(10.0).reshape(2, 5))
    batched = jax.vmap(reward.table)(stacked)
    np.testing.assert_allclose(batched[1], reward.table(TabularRewardParams(jnp.arange(5.0, 10.0))), rtol=1e-6)
    network = mlp_reward(features, hidden_sizes=(4,))
    params = network.init(jax.random.key(0))
    assert network.table(params).shape == (4, 3) and len(params.net) == 2
    assert all(np.isfinite(g).all() for g in jax.tree.leaves(jax.grad(lambda p: network.table(p).sum())(params)))


def test_tabular_rewards_name_the_bad_argument():
    from rewardlab.tabular import TabularRewardParams, linear_reward, mlp_reward, tabular_reward

    with pytest.raises(ValueError, match=r"shape: expected \[S\], \[S, A\] or \[S, A, S'\]"):
        tabular_reward((2, 2, 2, 2))
    with pytest.raises(ValueError, match="shape"):
        tabular_reward((0, 2))
    with pytest.raises(ValueError, match="features"):
        linear_reward(jnp.ones(3))
    with pytest.raises(ValueError, match="features"):
        mlp_reward(None)
    with pytest.raises(ValueError, match="hidden_sizes"):
        mlp_reward(jnp.ones((2, 3)), hidden_sizes=(0,))
    reward = linear_reward(jnp.ones((3, 2, 4)))
    with pytest.raises(ValueError, match=r"params.net: expected shape \(4,\), got \(3,\)"):
        reward.table(TabularRewardParams(jnp.zeros(3)))
    with pytest.raises(ValueError, match="params: expected TabularRewardParams"):
        reward.table(jnp.zeros(4))
    params = reward.init()
    with pytest.raises(ValueError, match="obs: expected integer state indices of shape"):
        reward.apply(params, np.zeros((2, 2), int), np.zeros(2, int), None, None)
    with pytest.raises(ValueError, match=r"acts: .* got None"):
        reward.apply(params, np.zeros(2, int), None, None, None)
    with pytest.raises(ValueError, match="acts: expected integer"):
        reward.apply(params, np.zeros(2, int), np.zeros(2, np.float32), None, None)
    with pytest.raises(ValueError, match="acts: expected the shape of obs"):
        reward.apply(params, np.zeros(2, int), np.zeros(3, int), None, None)
    with pytest.raises(ValueError, match="key"):
        mlp_reward(jnp.ones((2, 3))).init()
