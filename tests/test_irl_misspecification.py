"""Misspecified IRL: perturbations, reward errors, Skalse & Abate's pattern on converged fits, boundedness, smoke test."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rewardlab_envs
from rewardlab.irl import (
    LikelihoodIRLConfig,
    MCEIRLConfig,
    demonstrator_policy,
    discounted_occupancy,
    learner_error,
    likelihood_irl,
    make_mce_irl,
    misspecified_irl,
    perturb_transitions,
    plan_behaviour,
    reward_error,
)
from rewardlab.tabular import tabular_reward, value_iteration


def _mdp(seed=0):
    mdp = rewardlab_envs.random_mdp(10, 3, seed=seed, branching=2, discount=0.9)
    T = jnp.asarray(mdp.transitions)
    reward = jnp.einsum("sat,sat->sa", T, mdp.reward)
    return T, reward / reward.std(), jnp.asarray(mdp.initial_state_dist)


def test_perturbed_transitions_are_distributions_within_total_variation():
    T, _, _ = _mdp()
    for noise in (0.0, 0.05, 0.5):
        perturbed = perturb_transitions(T, noise, jax.random.key(0))
        np.testing.assert_allclose(perturbed.sum(-1), 1.0, atol=1e-5)
        assert float(perturbed.min()) >= 0.0
        assert float(jnp.abs(perturbed - T).sum(-1).max()) <= 2 * noise + 1e-5
    np.testing.assert_array_equal(perturb_transitions(T, 0.0, jax.random.key(0)), T)


def test_reward_error_zero_for_equivalent_and_large_for_opposite_reward():
    T, r, d0 = _mdp(1)
    potential = jnp.arange(10.0)
    shaped = 3.0 * r + 0.9 * jnp.einsum("sat,t->sa", T, potential) - potential[:, None]
    error = jax.jit(reward_error)
    _, starc, regret = error(shaped, r, T, 0.9, d0)
    assert float(starc) == pytest.approx(0.0, abs=1e-4)
    assert float(regret) == pytest.approx(0.0, abs=1e-5)
    _epic, starc, regret = error(-r, r, T, 0.9, d0)
    assert float(starc) == pytest.approx(2.0, abs=1e-4)
    assert float(regret) > 1.0  # worse than uniform


def test_planner_matches_value_iteration_and_its_gradient_finite_differences():
    T, r, _ = _mdp(3)
    for behaviour, temperature in (("causal_entropy", 0.5), ("boltzmann", 0.0)):
        plan = jax.jit(plan_behaviour, static_argnums=3)(T, r, 0.9, behaviour, rationality=2.0)
        reference = value_iteration(T, r, 0.9, num_sweeps=400, temperature=temperature)
        np.testing.assert_allclose(plan.q_values, reference.q_values, atol=1e-4)
        np.testing.assert_allclose(plan.policy.sum(-1), 1.0, atol=1e-6)
    # implicit derivative of Σ w·log π through the fixed point against central differences (float32: loose)
    weights = jax.random.uniform(jax.random.key(0), r.shape)

    def objective(reward, behaviour):
        return jnp.sum(weights * plan_behaviour(T, reward, 0.9, behaviour, rationality=2.0).log_policy)

    value = jax.jit(objective, static_argnums=1)
    for behaviour in ("causal_entropy", "boltzmann"):
        grad = jax.jit(jax.grad(objective), static_argnums=1)(r, behaviour)
        for s, a in ((0, 0), (4, 2), (7, 1)):
            step = jnp.zeros_like(r).at[s, a].set(1e-2)
            difference = (value(r + step, behaviour) - value(r - step, behaviour)) / 2e-2
            assert float(grad[s, a]) == pytest.approx(float(difference), rel=0.05, abs=2e-3)


@pytest.mark.parametrize("learner", ["causal_entropy", "boltzmann"])
def test_converged_fits_tolerate_rationality_and_not_discount_or_dynamics(learner):
    # Skalse & Abate: for Boltzmann-rational and MCE behaviour, a wrong β only rescales the learned
    # reward; a wrong γ or T moves it out of the truth's equivalence class. Every fit is converged.
    T, r, d0 = _mdp(2)
    noisy = perturb_transitions(T, 0.2, jax.random.key(1))
    policy = demonstrator_policy(T, r, 0.9, learner)
    config = LikelihoodIRLConfig(behaviour=learner)

    def run(learner_T, learner_discount, learner_rationality):
        return learner_error(
            jax.random.key(0),
            T,
            r,
            d0,
            0.9,
            policy,
            learner_transitions=learner_T,
            learner_discount=learner_discount,
            learner_rationality=learner_rationality,
            config=config,
        )

    errors = jax.jit(jax.vmap(run))(
        jnp.stack([T, T, T, noisy]), jnp.array([0.9, 0.9, 0.8, 0.9]), jnp.array([1.0, 4.0, 1.0, 1.0])
    )
    assert np.asarray(errors.converged).all()
    assert float(jnp.max(errors.likelihood_gap)) < 1e-5  # every learner reproduces the demonstrations
    correct, wrong_beta, wrong_gamma, wrong_T = (float(x) for x in errors.starc)
    assert correct < 0.005 and wrong_beta < 0.005  # β only rescales: same equivalence class
    assert float(errors.reward_max[1]) == pytest.approx(float(errors.reward_max[0]) / 4, rel=0.02)
    assert float(errors.regret[0]) < 1e-4 and float(errors.regret[1]) < 1e-4
    assert wrong_gamma > 0.015 and wrong_T > 0.05
    assert min(wrong_gamma, wrong_T) > 10 * max(correct, wrong_beta)


def test_likelihood_stays_bounded_where_occupancy_matching_drifts():
    # Demonstrations from T, learner assuming T_ε: the occupancy violates the learner's flow
    # constraints, so the MCE dual falls without bound along γT_εΦ − Φ and the reward grows with the
    # step budget; the likelihood converges to a bounded reward whatever the budget.
    T, r, d0 = _mdp(2)
    noisy = perturb_transitions(T, 0.2, jax.random.key(1))
    demos = discounted_occupancy(T, demonstrator_policy(T, r, 0.9, "causal_entropy"), d0, 0.9)
    model = tabular_reward((10, 3))
    config = MCEIRLConfig(num_steps=800, tolerance=0.0, num_sweeps=200, final_learning_rate_fraction=1.0)
    drift = jax.jit(make_mce_irl(model, config))(jax.random.key(0), noisy, d0, 0.9, demos)
    size = np.abs(np.asarray(drift.reward)).max()
    loss = np.asarray(drift.metrics["loss"])
    assert not bool(drift.converged)
    assert size > 10 * float(jnp.abs(r).max())
    assert loss[-1] < loss[600] - 1.0 and loss[400] < loss[200] - 1.0  # still falling at a constant step size
    fit = likelihood_irl(model, noisy, d0, demos, discount=0.9)
    assert bool(fit.converged)
    assert float(jnp.abs(fit.reward).max()) < 1.5 * float(jnp.abs(r).max())
    longer = likelihood_irl(model, noisy, d0, demos, discount=0.9, config=LikelihoodIRLConfig(num_steps=2000))
    np.testing.assert_allclose(longer.reward, fit.reward, atol=1e-6)  # stopped at the same converged reward
    # the same objective through mce_irl's option
    through_mce = jax.jit(make_mce_irl(model, MCEIRLConfig(objective="likelihood")))(
        jax.random.key(0), noisy, d0, 0.9, demos
    )
    np.testing.assert_allclose(through_mce.reward, fit.reward, atol=1e-5)


def test_misspecified_irl_and_bad_inputs():
    T, r, d0 = _mdp(4)
    errors = misspecified_irl(
        jax.random.key(0),
        T,
        r,
        d0,
        0.9,
        behaviour="optimal",
        demo_rationality=1.0,
        learner_transitions=T,
        learner_discount=0.9,
        learner_rationality=1.0,
        config=LikelihoodIRLConfig(behaviour="boltzmann", num_steps=50),
    )
    assert float(errors.regret) < 0.05  # an optimal demonstrator's greedy actions are recovered
    with pytest.raises(ValueError, match="behaviour"):
        demonstrator_policy(T, r, 0.9, "lazy")
    with pytest.raises(ValueError, match="behaviour"):
        LikelihoodIRLConfig(behaviour="optimal")
    with pytest.raises(ValueError, match="discount"):
        likelihood_irl(tabular_reward((10, 3)), T, d0, jnp.ones((10, 3)), discount=1.0)


def test_experiment_smoke(tmp_path):
    from experiments.irl_misspecification import Args, main

    args = Args(
        num_boards=1,
        learners=("boltzmann",),
        learner_rationalities=(1.0, 2.0),
        learner_discounts=(0.95, 0.99),
        transition_noises=(0.0, 0.1),
        behaviours=("optimal",),
        num_steps=3,
        out_dir=str(tmp_path),
    )
    summary = main(args)
    assert {
        "starc/boltzmann/rationality=2.0",
        "regret/boltzmann/noise=0.1",
        "converged/boltzmann/behaviour=optimal",
    } <= set(summary)
    assert all(np.isfinite(v) for v in summary.values())
    results = json.loads((tmp_path / "results.json").read_text())
    assert np.shape(results["boltzmann"]["discount"]["starc"]) == (1, 2)
    assert (tmp_path / "misspecification.png").stat().st_size > 0
    with pytest.raises(ValueError, match="behaviours"):
        Args(behaviours=("lazy",))
    with pytest.raises(ValueError, match="learners"):
        Args(learners=("optimal",))
