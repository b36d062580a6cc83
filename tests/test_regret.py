"""The regret preference model: hand-computed regrets, teachers, tabular learning, continuous smoke test."""

from __future__ import annotations

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rewardlab_envs
from rewardlab._types import FragmentPairs, Preferences
from rewardlab.distances import starc_distance
from rewardlab.preferences import (
    PreferenceModel,
    SuccessorFeatures,
    TabularRegretModel,
    compose,
    evaluate_tabular_reward,
    fit_tabular_reward,
    label,
    make_teacher,
    optimal_advantages,
    oracle,
    pair_regrets,
    preference_loss,
    regret,
    regret_probability,
    sample_tabular_pairs,
    segment_regret,
    segment_scores,
    successor_feature_library,
    successor_feature_values,
    tabular_advantage_fn,
    train_reward,
)
from rewardlab.rewards import ContinuousRegretModel
from rewardlab.tabular import TabularRewardParams, linear_reward, successor_table, tabular_reward, value_iteration
from rewardlab_envs import TabularMDP, delivery_mdp
from rewardlab_envs._tabular import FeatureNames

STAY, ADVANCE = 0, 1


def chain_mdp(discount: float = 1.0) -> TabularMDP:
    """States 0 → 1 → 2 (terminal). STAY costs −1; ADVANCE pays 0 from 0 and +10 from 1 into 2."""
    transitions = np.zeros((3, 2, 3), np.float32)
    reward = np.zeros((3, 2, 3), np.float32)
    for s in (0, 1):
        transitions[s, STAY, s] = 1.0
        transitions[s, ADVANCE, s + 1] = 1.0
        reward[s, STAY, s] = -1.0
    reward[1, ADVANCE, 2] = 10.0
    transitions[2, :, 2] = 1.0
    # features: [stay, reach_goal]; true weights [−1, 10]
    features = np.zeros((3, 2, 3, 2), np.float32)
    features[0, STAY, 0, 0] = features[1, STAY, 1, 0] = 1.0
    features[1, ADVANCE, 2, 1] = 1.0
    return TabularMDP(
        transitions=transitions,
        reward=reward,
        features=features,
        initial_state_dist=np.array([1.0, 0.0, 0.0], np.float32),
        terminal=np.array([False, False, True]),
        discount=discount,
        feature_names=FeatureNames(("stay", "reach_goal")),
        true_weights=np.array([-1.0, 10.0], np.float32),
    )


def regret_model(mdp: TabularMDP, **options) -> TabularRegretModel:
    """The regret learner of a linear reward over ``mdp.features``."""
    return TabularRegretModel(linear_reward(mdp.features), mdp.transitions, mdp.discount, **options)


def chain_pairs(
    segments_1: list[tuple[list[int], list[int]]], segments_2: list[tuple[list[int], list[int]]]
) -> FragmentPairs:
    """FragmentPairs of index segments ((states, actions) per segment) on ``chain_mdp``."""
    mdp = chain_mdp()
    table = np.argmax(mdp.transitions, axis=-1)

    def arrays(segments):
        states = np.array([s for s, _ in segments])
        actions = np.array([a for _, a in segments])
        return states, actions, table[states, actions]

    s1, a1, n1 = arrays(segments_1)
    s2, a2, n2 = arrays(segments_2)
    obs, acts, next_obs = np.stack([s1, s2], 1), np.stack([a1, a2], 1), np.stack([n1, n2], 1)
    rews = mdp.reward[obs, acts, next_obs]
    return FragmentPairs(obs, acts, next_obs, mdp.terminal[next_obs], rews)


# --- Hand-computed regret ------------------------------------------------------------------------------------


def test_segment_regret_three_state_chain_by_hand():
    # V*(2) = 0, V*(1) = 10, V*(0) = 10; Q*(0, stay) = −1 + 10 = 9, Q*(0, advance) = 10,
    # Q*(1, stay) = 9, Q*(1, advance) = 10.  σ = (0, stay, 0, advance, 1): regret = (10 − 9) + (10 − 10) = 1,
    # and the telescoped form V*(s0) − (Σ r + V*(s_L)) = 10 − (−1 + 0 + 10) = 1.
    mdp = chain_mdp()
    plan = value_iteration(mdp.transitions, mdp.reward, mdp.discount, num_sweeps=10)
    np.testing.assert_allclose(plan.state_values, [10.0, 10.0, 0.0])
    np.testing.assert_allclose(plan.q_values, [[9.0, 10.0], [9.0, 10.0], [0.0, 0.0]])
    regret_value = segment_regret(plan.q_values, plan.state_values, jnp.array([0, 0]), jnp.array([STAY, ADVANCE]))
    assert float(regret_value) == pytest.approx(1.0)
    telescoped = plan.state_values[0] - (-1.0 + 0.0 + plan.state_values[1])
    assert float(regret_value) == pytest.approx(float(telescoped))
    # two stays then advancing from 0: regret 2; the optimal segment has regret 0
    assert float(
        segment_regret(plan.q_values, plan.state_values, jnp.array([0, 0, 0]), jnp.array([0, 0, 1]))
    ) == pytest.approx(2.0)
    assert float(
        segment_regret(plan.q_values, plan.state_values, jnp.array([0, 1]), jnp.array([1, 1]))
    ) == pytest.approx(0.0)


def test_optimal_advantages_and_regret_probability():
    mdp = chain_mdp()
    advantages = optimal_advantages(mdp.transitions, mdp.reward, mdp.discount, num_sweeps=10)
    np.testing.assert_allclose(advantages, [[-1.0, 0.0], [-1.0, 0.0], [0.0, 0.0]])
    assert float(regret_probability(1.0, 3.0)) == pytest.approx(1 / (1 + np.exp(-2.0)))
    assert float(regret_probability(1.0, 3.0, temperature=2.0)) == pytest.approx(1 / (1 + np.exp(-1.0)))


def test_regret_learner_plans_advantages_to_the_teachers_precision():
    """At the delivery board's γ = 0.999, 80 sweeps leave γ^80 ≈ 92 % of the values' error; exact values do not.

    A candidate reward that pays for gas makes circling on the road optimal (values near
    1/(1 − γ) per step), the case where the sweeps alone are far from the teacher's exact A*.
    """
    mdp = delivery_mdp()
    weights = np.asarray(mdp.true_weights, np.float32).copy()
    weights[0] = 1.0  # gas pays: looping on the road forever beats the goal
    looping = mdp._replace(reward=np.einsum("satk,k->sat", np.asarray(mdp.features), weights))
    states, actions = np.meshgrid(np.arange(100), np.arange(4), indexing="ij")
    teacher = tabular_advantage_fn(looping)(states.ravel(), actions.ravel(), None, None).reshape(100, 4)
    params = TabularRewardParams(jnp.asarray(weights))
    errors = {}
    for exact in (True, False):
        model = TabularRegretModel(
            linear_reward(mdp.features), mdp.transitions, mdp.discount, num_sweeps=80, exact_values=exact
        )
        errors[exact] = float(np.abs(np.asarray(model.advantage_table(params)) - teacher).max())
    scale = float(np.abs(teacher).max())
    assert errors[True] < 0.01 * scale < 0.5 * scale < errors[False]
    assert TabularRegretModel(linear_reward(mdp.features), mdp.transitions, mdp.discount).exact_values


def test_regret_scores_through_preference_loss_match_hand_values():
    mdp = chain_mdp()
    model = regret_model(mdp, num_sweeps=10)
    params = TabularRewardParams(jnp.asarray(mdp.true_weights))
    # σ¹ = (0 stay, 0 advance): regret 1, partial return −1; σ² = (1 stay, 1 stay): regret 2, partial return −2
    pairs = chain_pairs([([0, 0], [STAY, ADVANCE])], [([1, 1], [STAY, STAY])])
    scores = segment_scores(model, params, pairs, preference_model=PreferenceModel("regret"))
    np.testing.assert_allclose(scores, [[[-1.0, -2.0]]])
    partial = segment_scores(model, params, pairs, preference_model=PreferenceModel("partial_return"))
    np.testing.assert_allclose(partial, [[[-1.0, -2.0]]])
    # P(σ¹ ≻ σ²) = logistic(regret² − regret¹) = logistic(1); loss of label 1 = −log logistic(1)
    loss = preference_loss(
        model, params, Preferences(pairs, np.ones(1, np.float32)), preference_model=PreferenceModel("regret")
    )
    assert float(loss) == pytest.approx(-np.log(1 / (1 + np.exp(-1.0))), rel=1e-5)
    # σ¹ = (1 stay, 1 advance): return 9, regret 1; σ² = (0 advance, 1 advance): return 10, regret 0.
    pairs = chain_pairs([([1, 1], [STAY, ADVANCE])], [([0, 1], [ADVANCE, ADVANCE])])
    np.testing.assert_allclose(
        segment_scores(model, params, pairs, preference_model=PreferenceModel("regret")), [[[-1.0, 0.0]]]
    )
    np.testing.assert_allclose(
        segment_scores(model, params, pairs, preference_model=PreferenceModel("partial_return")), [[[9.0, 10.0]]]
    )


def test_regret_teacher_prefers_lower_regret_where_partial_return_disagrees():
    mdp = chain_mdp()
    advantage = tabular_advantage_fn(mdp, num_sweeps=10)
    # σ¹ = (1 stay, 1 advance): return 9, regret 1.  σ² = (0 advance, 1 stay): return −1, regret 1 — a regret tie.
    # σ¹ = (0 stay, 0 advance): return −1, regret 1.  σ² = (1 stay, 1 stay): return −2, regret 2.
    # σ¹ = (0 advance, 1 stay): return −1, regret 1.  σ² = (1 advance, 2 stay): return 10, regret 0.
    pairs = chain_pairs(
        [([1, 1], [STAY, ADVANCE]), ([0, 0], [STAY, ADVANCE]), ([0, 1], [ADVANCE, STAY])],
        [([0, 1], [ADVANCE, STAY]), ([1, 1], [STAY, STAY]), ([1, 2], [ADVANCE, STAY])],
    )
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(make_teacher("regret", advantage_fn=advantage)(pairs, rng), [0.5, 1.0, 0.0])
    np.testing.assert_array_equal(compose(regret(advantage), oracle())(pairs, rng), [0.5, 1.0, 0.0])
    np.testing.assert_array_equal(make_teacher("oracle")(pairs, rng), [1.0, 1.0, 0.0])


def test_regret_rejects_bad_arguments():
    mdp = chain_mdp()
    pairs = chain_pairs([([0, 0], [0, 1])], [([1, 1], [0, 0])])

    class RewardOnly:
        ensemble_size = 1

        def apply(self, params, obs, acts, next_obs, dones):
            return jnp.zeros((1, jnp.shape(obs)[0]))

    with pytest.raises(ValueError, match="advantage"):
        segment_scores(RewardOnly(), None, pairs, preference_model=PreferenceModel("regret"))
    model = regret_model(mdp)
    with pytest.raises(ValueError, match="discount"):
        segment_scores(model, model.init(), pairs, preference_model=PreferenceModel("regret", discount=0.9))
    with pytest.raises(ValueError, match="value_model"):
        regret_model(mdp, value_model="monte_carlo")
    with pytest.raises(ValueError, match="library"):
        regret_model(mdp, value_model="successor_features")
    with pytest.raises(ValueError, match="library"):
        TabularRegretModel(
            tabular_reward((3, 2, 3)), mdp.transitions, 1.0, value_model="successor_features", library=object()
        )
    with pytest.raises(ValueError, match="reward"):
        TabularRegretModel(tabular_reward((4, 2)), mdp.transitions, 1.0)
    with pytest.raises(ValueError, match="reward"):
        TabularRegretModel(mdp.features, mdp.transitions, 1.0)
    with pytest.raises(ValueError, match=r"params.net"):
        model.reward.table(TabularRewardParams(jnp.zeros(3)))
    with pytest.raises(ValueError, match="advantage_fn"):
        make_teacher("regret")
    with pytest.raises(ValueError, match="advantage_fn"):
        make_teacher("regret", advantage_fn=tabular_advantage_fn(mdp, num_sweeps=10), gamma=0.9)


def test_tabular_models_are_reward_models_for_as_reward_fn():
    from rewardlab.rewards import as_reward_fn

    mdp = chain_mdp()
    model = regret_model(mdp, num_sweeps=10)
    params = TabularRewardParams(jnp.asarray(mdp.true_weights))
    obs, acts, next_obs, dones = (
        np.array([0, 1, 1]),
        np.array([STAY, STAY, ADVANCE]),
        np.array([0, 1, 2]),
        np.zeros(3, bool),
    )
    np.testing.assert_allclose(as_reward_fn(model.reward, params)(obs, acts, next_obs, dones), [-1.0, -1.0, 10.0])
    # the learned advantage, A = Q − V: staying loses 1 in states 0 and 1 (hand values of the chain)
    np.testing.assert_allclose(
        as_reward_fn(model, params, use="advantage")(obs, acts, next_obs, dones), [-1.0, -1.0, 0.0]
    )


def test_regret_gradients_finite_and_jit_agrees():
    mdp = chain_mdp()
    pairs = chain_pairs([([0, 0], [0, 1]), ([0, 1], [1, 1])], [([1, 1], [0, 0]), ([0, 0], [0, 0])])
    prefs = Preferences(pairs, np.array([1.0, 1.0], np.float32))
    for temperature in (0.5,):
        model = regret_model(mdp, num_sweeps=10, temperature=temperature)

        def loss(net):
            return preference_loss(model, TabularRewardParams(net), prefs, preference_model=PreferenceModel("regret"))  # noqa: B023 - used only in this iteration

        net = jnp.array([-0.5, 2.0])
        value, grads = jax.value_and_grad(loss)(net)
        jit_value, jit_grads = jax.jit(jax.value_and_grad(loss))(net)
        assert np.all(np.isfinite(grads)) and np.any(grads != 0)
        np.testing.assert_allclose(value, jit_value, rtol=1e-5)
        np.testing.assert_allclose(grads, jit_grads, rtol=1e-4, atol=1e-6)


def test_successor_feature_values_equal_optimal_values_when_the_library_holds_the_optimal_policy():
    mdp = chain_mdp(discount=0.9)
    weights = jnp.asarray(mdp.true_weights)
    library = successor_feature_library(
        mdp.transitions,
        mdp.features,
        mdp.discount,
        jax.random.key(0),
        policy_weights=jnp.stack([weights, -weights]),
        num_sweeps=50,
    )
    assert isinstance(library, SuccessorFeatures) and library.state_features.shape == (2, 3, 2)
    # the optimal policy advances: ψ(0) = [0, 0.9], ψ(1) = [0, 1]; staying forever: ψ = [10, 0]
    np.testing.assert_allclose(library.state_features[0], [[0.0, 0.9], [0.0, 1.0], [0.0, 0.0]], atol=1e-5)
    np.testing.assert_allclose(library.state_features[1], [[10.0, 0.0], [10.0, 0.0], [0.0, 0.0]], atol=1e-4)
    approx = successor_feature_values(library, weights)
    exact = value_iteration(mdp.transitions, mdp.reward, mdp.discount, num_sweeps=50).state_values
    np.testing.assert_allclose(approx, exact, atol=1e-4)
    # the successor-feature value model trains through the same regret loss
    model = regret_model(mdp, value_model="successor_features", library=library)
    # γ = 0.9: Q(0, stay) = −1 + 0.9·9 = 7.1 vs V(0) = 9; Q(1, stay) = −1 + 0.9·10 = 8 vs V(1) = 10
    np.testing.assert_allclose(
        model.advantage_table(TabularRewardParams(weights))[:2], [[-1.9, 0.0], [-2.0, 0.0]], atol=1e-3
    )


# --- Learning ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def delivery_regret_data():
    mdp = delivery_mdp()
    pairs = sample_tabular_pairs(
        mdp.transitions, mdp.reward, mdp.initial_state_dist, jax.random.key(0), 200, 3, mdp.features, mdp.terminal
    )
    pairs = jax.tree.map(np.asarray, pairs)
    labels = make_teacher("regret", advantage_fn=tabular_advantage_fn(mdp), rationality=1.0)(
        pairs, np.random.default_rng(0)
    )
    return mdp, pairs, labels


def test_sample_tabular_pairs_follow_the_mdp(delivery_regret_data):
    mdp, pairs, _ = delivery_regret_data
    assert pairs.obs.shape == (200, 2, 3) and pairs.factors.shape == (200, 2, 3, 6)
    assert np.all(mdp.transitions[pairs.obs, pairs.acts, pairs.next_obs] == 1.0)
    np.testing.assert_array_equal(pairs.obs[:, :, 1:], pairs.next_obs[:, :, :-1])
    np.testing.assert_allclose(pairs.rews, pairs.factors @ mdp.true_weights, atol=1e-5)
    assert mdp.initial_state_dist[pairs.obs[:, :, 0]].min() > 0


def test_successor_table_pairs_follow_the_mdp_and_pair_regrets_match_advantages():
    mdp = delivery_mdp(discount=0.9)
    successors = successor_table(mdp.transitions)
    features = np.einsum("sat,satk->sak", mdp.transitions, mdp.features)
    true_reward = features @ mdp.true_weights
    pairs = sample_tabular_pairs(
        successors, true_reward, mdp.initial_state_dist, jax.random.key(3), 50, 4, features, mdp.terminal
    )
    assert pairs.obs.shape == (50, 2, 4) and pairs.factors.shape == (50, 2, 4, 6) and pairs.obs.dtype == jnp.int32
    np.testing.assert_array_equal(pairs.next_obs, successors[pairs.obs, pairs.acts])
    np.testing.assert_array_equal(pairs.obs[:, :, 1:], pairs.next_obs[:, :, :-1])
    np.testing.assert_array_equal(pairs.dones, mdp.terminal[pairs.next_obs])
    np.testing.assert_allclose(pairs.rews, pairs.factors @ mdp.true_weights)
    assert mdp.initial_state_dist[pairs.obs[:, :, 0]].min() > 0
    # deterministic transitions: V*(s0) − (Σ γ^t r_t + γ^L V*(s_L)) = Σ_t γ^t [V*(s_t) − Q*(s_t, a_t)]
    plan = value_iteration(successors, true_reward, 0.9, num_sweeps=400)
    regrets = pair_regrets(pairs, plan.state_values, 0.9)
    step_regret = plan.state_values[pairs.obs] - plan.q_values[pairs.obs, pairs.acts]
    np.testing.assert_allclose(regrets, np.sum(0.9 ** np.arange(4) * step_regret, axis=-1), rtol=1e-4, atol=1e-3)
    assert float(regrets.min()) > -1e-3


def test_pair_regrets_equal_segment_regret_on_the_chain_by_hand():
    mdp = chain_mdp()
    plan = value_iteration(mdp.transitions, mdp.reward, 1.0, num_sweeps=10)
    # σ¹ = (0 stay, 0 advance): regret 1; σ² = (1 stay, 1 stay): regret 2 (γ = 1: the sum of V − Q)
    pairs = chain_pairs([([0, 0], [STAY, ADVANCE])], [([1, 1], [STAY, STAY])])
    np.testing.assert_allclose(pair_regrets(pairs, plan.state_values, 1.0), [[1.0, 2.0]])
    # γ = 0.5 on σ¹ with these (γ = 1) values: V(0) − (r_0 + γ r_1 + γ² V(1)) = 10 − (−1 + 0 + 0.25·10) = 8.5
    np.testing.assert_allclose(pair_regrets(pairs, plan.state_values, 0.5)[0, 0], 8.5)


def test_newton_and_adam_fit_the_same_linear_partial_return_reward(delivery_regret_data):
    mdp, pairs, labels = delivery_regret_data
    reward = linear_reward(mdp.features)
    newton, metrics = fit_tabular_reward(
        reward,
        pairs,
        labels,
        preference_model=PreferenceModel("partial_return"),
        solver="newton",
        num_steps=20,
        l2=1e-2,
    )
    assert metrics["loss"].shape == (20,) and float(metrics["final_loss"]) <= float(metrics["loss"][-1]) + 1e-6
    adam, adam_metrics = fit_tabular_reward(
        reward,
        pairs,
        labels,
        preference_model=PreferenceModel("partial_return"),
        num_steps=1500,
        learning_rate=0.05,
        l2=1e-2,
    )
    np.testing.assert_allclose(newton.net, adam.net, atol=5e-3)  # one strictly convex objective, one minimiser
    assert float(metrics["final_loss"]) == pytest.approx(float(adam_metrics["final_loss"]), abs=1e-5)
    # masked pairs do not count: weights 0 on the second half equal fitting the first half alone
    half = len(labels) // 2
    mask = (np.arange(len(labels)) < half).astype(np.float32)
    masked, _ = fit_tabular_reward(
        reward,
        pairs,
        labels,
        preference_model=PreferenceModel("partial_return"),
        solver="newton",
        weights=mask,
        num_steps=20,
        l2=1e-2,
    )
    first = jax.tree.map(lambda x: x[:half], pairs)
    alone, _ = fit_tabular_reward(
        reward,
        first,
        labels[:half],
        preference_model=PreferenceModel("partial_return"),
        solver="newton",
        num_steps=20,
        l2=1e-2,
    )
    np.testing.assert_allclose(masked.net, alone.net, rtol=1e-4, atol=1e-5)


def test_fit_rejects_bad_solvers(delivery_regret_data):
    mdp, pairs, labels = delivery_regret_data
    with pytest.raises(ValueError, match="solver"):
        fit_tabular_reward(linear_reward(mdp.features), pairs, labels, solver="lbfgs")
    with pytest.raises(ValueError, match="solver: 'newton'"):
        fit_tabular_reward(
            regret_model(mdp), pairs, labels, preference_model=PreferenceModel("regret"), solver="newton"
        )
    with pytest.raises(ValueError, match="solver: 'newton'"):
        fit_tabular_reward(
            tabular_reward(mdp.reward.shape),
            pairs,
            labels,
            preference_model=PreferenceModel("partial_return"),
            solver="newton",
        )
    with pytest.raises(
        ValueError, match=r"solver: 'newton'.*temperature 1, no label noise"
    ):  # Newton fits τ = 1, ε = 0 only
        fit_tabular_reward(
            linear_reward(mdp.features),
            pairs,
            labels,
            preference_model=PreferenceModel("partial_return", temperature=2.0),
            solver="newton",
        )
    with pytest.raises(ValueError, match="preference_model: expected a PreferenceModel"):
        fit_tabular_reward(linear_reward(mdp.features), pairs, labels, preference_model="partial_return")
    with pytest.raises(ValueError, match="l2"):
        fit_tabular_reward(linear_reward(mdp.features), pairs, labels, l2=-1.0)


def test_evaluation_on_the_successor_table_equals_the_dense_form():
    mdp = delivery_mdp(discount=0.9)
    learned = np.asarray(mdp.reward) + np.random.default_rng(0).normal(size=mdp.reward.shape).astype(np.float32)
    successors = successor_table(mdp.transitions)
    dense_reward = np.einsum("sat,sat->sa", mdp.transitions, learned)
    true_reward = np.einsum("sat,sat->sa", mdp.transitions, mdp.reward)
    args = (0.9, mdp.initial_state_dist, mdp.terminal)
    dense = evaluate_tabular_reward(mdp.transitions, true_reward, dense_reward, *args, num_sweeps=200)
    table = evaluate_tabular_reward(successors, true_reward, dense_reward, *args, num_sweeps=200)
    for a, b in zip(dense, table, strict=True):
        assert float(a) == pytest.approx(float(b), abs=1e-4)
    optimal = evaluate_tabular_reward(
        successors, true_reward, true_reward, *args, num_sweeps=200, evaluation_sweeps=400, atol=1e-6
    )
    assert (
        float(optimal.scaled_return) == pytest.approx(1.0, abs=1e-4) and float(optimal.optimal_action_fraction) == 1.0
    )


def test_regret_learner_recovers_an_optimal_policy_on_delivery(delivery_regret_data):
    mdp, pairs, labels = delivery_regret_data
    model = regret_model(mdp, num_sweeps=100)
    params, metrics = jax.jit(lambda p, y, k: fit_tabular_reward(model, p, y, k, num_steps=200))(
        pairs, labels, jax.random.key(1)
    )
    assert metrics["loss"][-1] < metrics["loss"][0]
    evaluation = evaluate_tabular_reward(
        mdp.transitions,
        mdp.reward,
        model.reward.table(params),
        mdp.discount,
        mdp.initial_state_dist,
        mdp.terminal,
        num_sweeps=300,
    )
    assert float(evaluation.scaled_return) > 0.9
    assert float(evaluation.optimal_action_fraction) > 0.8


def test_train_reward_accepts_the_regret_model(delivery_regret_data):
    mdp, pairs, labels = delivery_regret_data
    model = regret_model(mdp, num_sweeps=50)
    prefs = label(pairs, lambda p, rng: labels, np.random.default_rng(0))
    params, _, metrics = train_reward(
        model,
        model.init(),
        None,
        prefs,
        jax.random.key(0),
        epochs=5,
        batch_size=64,
        preference_model=PreferenceModel("regret"),
    )
    assert metrics["loss"][-1] < metrics["loss"][0]
    assert np.isfinite(np.asarray(params.net)).all()


def test_continuous_regret_model_learns_the_reward_through_its_td_link():
    """Regret labels train Q; only the TD term carries them into the reward network.

    A deterministic 8-state MDP seen through one-hot observations and a 1-D action grid (the
    probes are exactly the 3 actions, so the max over actions is exact). Labels come from the
    true optimal advantage and partly disagree with partial return. The learned reward lands
    near the true one up to shaping (STARC); with ``td_weight=0`` the reward network keeps its
    initial weights and the distance stays that of a random reward (about 1.3).
    """
    num_states, num_actions, length, num_pairs = 8, 3, 4, 256
    mdp = rewardlab_envs.random_mdp(num_states, num_actions, seed=2, branching=1, discount=0.9)
    successor = np.argmax(np.asarray(mdp.transitions), axis=-1)
    reward = np.asarray(mdp.reward)
    rng = np.random.default_rng(0)
    states = np.zeros((num_pairs, 2, length), np.int64)
    actions = rng.integers(0, num_actions, (num_pairs, 2, length))
    states[..., 0] = rng.integers(0, num_states, (num_pairs, 2))
    for t in range(length - 1):
        states[..., t + 1] = successor[states[..., t], actions[..., t]]
    next_states = successor[states, actions]
    rews = reward[states, actions, next_states].astype(np.float32)
    regrets = -tabular_advantage_fn(mdp)(states.ravel(), actions.ravel(), None, None).reshape(num_pairs, 2, length)
    labels = (regrets.sum(-1)[:, 0] < regrets.sum(-1)[:, 1]).astype(np.float32)
    assert np.mean(labels != (rews.sum(-1)[:, 0] > rews.sum(-1)[:, 1])) > 0.05  # not partial-return labels
    eye, grid = np.eye(num_states, dtype=np.float32), np.linspace(-1.0, 1.0, num_actions, dtype=np.float32)
    pairs = FragmentPairs(
        eye[states], grid[actions][..., None], eye[next_states], np.zeros((num_pairs, 2, length), bool), rews
    )
    model = ContinuousRegretModel(
        num_states, [-1.0], [1.0], hidden_sizes=(32,), num_probe_actions=num_actions, discount=0.9
    )
    params, _, metrics = train_reward(
        model,
        model.init(0),
        None,
        Preferences(pairs, labels),
        jax.random.key(1),
        epochs=60,
        batch_size=64,
        preference_model=PreferenceModel("regret"),
        optimizer=__import__("optax").adam(3e-3),
    )
    assert np.all(np.isfinite(metrics["loss"])) and metrics["accuracy"][-1] > 0.8
    s, a, n = (x.ravel() for x in np.meshgrid(*map(np.arange, reward.shape), indexing="ij"))
    learned = np.asarray(model.apply(params, eye[s], grid[a][:, None], eye[n], None))[0].reshape(reward.shape)
    assert float(starc_distance(learned, reward, mdp.transitions, 0.9)) < 0.75


def test_continuous_regret_td_target_bootstraps_through_truncation_with_the_next_taken_action():
    """Hand-computed TD loss: V(s_{t+1}) includes a_{t+1}; only a terminated step drops γV(s')."""
    model = ContinuousRegretModel(2, [-1.0], [1.0], hidden_sizes=(8,), num_probe_actions=3, discount=0.5)
    params = model.init(3)
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(1, 2, 3, 2)).astype(np.float32)
    next_obs = np.concatenate([obs[:, :, 1:], rng.normal(size=(1, 2, 1, 2)).astype(np.float32)], axis=2)
    acts = rng.uniform(-1, 1, (1, 2, 3, 1)).astype(np.float32)
    dones = np.zeros((1, 2, 3), bool)
    dones[..., -1] = True  # both segments end their episode at the last step
    pairs = FragmentPairs(obs, acts, next_obs, dones, np.zeros((1, 2, 3), np.float32))

    def expected(terminated):
        flat = lambda x: np.asarray(x, np.float32).reshape(6, -1)  # noqa: E731
        q = np.asarray(model.q_values(params, jnp.asarray(flat(obs)), jnp.asarray(flat(acts))))[0]
        values = np.asarray(model.state_values(params, jnp.asarray(flat(next_obs))))[0]
        taken = np.concatenate([q.reshape(2, 3)[:, 1:], np.full((2, 1), -np.inf)], axis=1).ravel()
        rewards = np.asarray(model.apply(params, flat(obs), flat(acts), flat(next_obs), None))[0]
        target = rewards + 0.5 * (1.0 - terminated.ravel()) * np.maximum(values, taken)
        return float(np.mean((q - target) ** 2))

    weights = jnp.ones(1)
    truncated = float(model.regret_auxiliary_loss(params, pairs._replace(terminated=np.zeros_like(dones)), weights))
    terminated = float(model.regret_auxiliary_loss(params, pairs._replace(terminated=dones), weights))
    assert truncated == pytest.approx(expected(np.zeros_like(dones)), rel=1e-5)
    assert terminated == pytest.approx(expected(dones), rel=1e-5)
    assert truncated != pytest.approx(terminated, rel=1e-5)
    # without a terminated record every done is terminal
    assert float(model.regret_auxiliary_loss(params, pairs, weights)) == pytest.approx(terminated, rel=1e-6)


def test_continuous_regret_model_takes_a_policy_action_into_the_max():
    model = ContinuousRegretModel(
        2, [-1.0, -1.0], [1.0, 1.0], hidden_sizes=(8,), num_probe_actions=2, policy_action=lambda s: jnp.tanh(s)
    )
    params = model.init(0)
    obs = np.random.default_rng(0).normal(size=(5, 2)).astype(np.float32)
    probes = np.stack(
        [np.asarray(model.q_values(params, obs, np.broadcast_to(a, (5, 2))))[0] for a in model.probe_actions]
    )
    policy = np.asarray(model.q_values(params, obs, np.tanh(obs)))[0]
    np.testing.assert_allclose(model.state_values(params, obs)[0], np.maximum(probes.max(0), policy), rtol=1e-6)
    with pytest.raises(ValueError, match="policy_action"):
        ContinuousRegretModel(2, [-1.0, -1.0], [1.0, 1.0], policy_action=3)


def test_continuous_regret_model_stacks_members_and_checks_shapes():
    model = ContinuousRegretModel(
        3, [-1.0, -1.0], [1.0, 1.0], hidden_sizes=(8, 8), num_probe_actions=4, ensemble_size=3
    )
    params = model.init(0)
    leaves = jax.tree.leaves(params.net)
    assert leaves and all(leaf.shape[0] == 3 for leaf in leaves)  # every leaf stacked on the ensemble axis
    assert model.probe_actions.shape == (4, 2)
    obs, acts = np.ones((5, 3), np.float32), np.zeros((5, 2), np.float32)
    rewards = model.apply(params, obs, acts, obs, np.zeros(5))
    assert rewards.shape == (3, 5) and not np.allclose(rewards[0], rewards[1])  # members differ
    advantage = model.advantage(params, obs, acts, None, None)
    assert advantage.shape == (3, 5) and bool(jnp.all(advantage <= 0))
    np.testing.assert_allclose(
        model.apply(model.init(0), obs, acts, obs, None), rewards
    )  # a seed gives the same parameters
    with pytest.raises(ValueError, match="obs"):
        model.apply(params, np.zeros((5, 4)), acts, obs, None)
    with pytest.raises(ValueError, match="acts"):
        model.advantage(params, obs, np.zeros((5, 1)), None, None)
    with pytest.raises(ValueError, match="action_low/action_high"):
        ContinuousRegretModel(3, [1.0], [-1.0])
    with pytest.raises(ValueError, match="num_probe_actions"):
        ContinuousRegretModel(3, [-1.0], [1.0], num_probe_actions=0)
    with pytest.raises(ValueError, match="ensemble_size"):
        ContinuousRegretModel(3, [-1.0], [1.0], ensemble_size=0)


@pytest.mark.slow
def test_regret_experiment_smoke():
    from experiments.regret_vs_partial_return import Args, main

    with pytest.raises(ValueError, match="learner"):
        Args(learner="advantage")
    result = main(
        Args(
            domain="random", num_mdps=2, board_size=5, labels=16, num_steps=3, num_sweeps=5, eval_sweeps=20, log_every=1
        )
    )
    assert result["lanes"] == 2 and set(result) >= {
        "scaled_return",
        "near_optimal_fraction",
        "equivalent_fraction",
        "scaled_return_as_advantage",
    }
    assert 0.0 <= result["near_optimal_fraction"] <= 1.0


@pytest.mark.slow
def test_continuous_regret_model_in_the_online_loop():
    from stable_baselines3.common.vec_env import DummyVecEnv

    from rewardlab.rl import PbRLConfig, make_agent, train_pbrl
    from rewardlab.wrappers import RewardVecEnvWrapper

    venv = RewardVecEnvWrapper(DummyVecEnv([lambda: gym.make("Pendulum-v1")] * 2))
    model = ContinuousRegretModel(
        3, venv.action_space.low, venv.action_space.high, hidden_sizes=(32,), num_probe_actions=8
    )
    agent = make_agent("ppo", venv, "Pendulum-v1", seed=0, n_steps=128, batch_size=64, n_epochs=1)
    config = PbRLConfig(
        labels=20,
        num_rounds=2,
        first_feedback_step=256,
        fragment_length=10,
        reward_epochs=2,
        query_method="uniform",
        preference_model=PreferenceModel("regret"),
    )
    result = train_pbrl(agent, model, model.init(jax.random.key(0)), make_teacher("oracle"), 512, config, seed=0)
    assert len(result.feedback) == 2 and result.preferences is not None and np.isfinite(result.feedback[-1].loss)


def test_regret_sweep_file_loads():
    from rewardlab.sweeps import load_sweep

    runs = load_sweep("experiments/regret_vs_partial_return.toml").runs()
    assert len(runs) == 40  # 2 domains × 2 teachers × 2 learners × 5 preference counts
