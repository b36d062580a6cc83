"""Misspecified IRL: perturbations, reward errors, the qualitative finding on a small MDP, experiment smoke test."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rewardlab_envs
from rewardlab.irl import MCEIRLConfig, misspecified_irl, perturb_transitions, reward_error


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
    _, starc, regret = reward_error(shaped, r, T, 0.9, d0)
    assert float(starc) == pytest.approx(0.0, abs=1e-4)
    assert float(regret) == pytest.approx(0.0, abs=1e-5)
    _epic, starc, regret = reward_error(-r, r, T, 0.9, d0)
    assert float(starc) == pytest.approx(2.0, abs=1e-4)
    assert float(regret) > 1.0  # worse than uniform


def test_tolerant_to_rationality_fragile_to_transition_model():
    T, r, d0 = _mdp(2)
    config = MCEIRLConfig(num_steps=800, learning_rate=0.1, num_sweeps=200)
    key = jax.random.key(0)

    def run(rationality, learner_T):
        return misspecified_irl(
            key,
            T,
            r,
            d0,
            0.9,
            behaviour="causal_entropy",
            demo_rationality=1.0,
            learner_transitions=learner_T,
            learner_discount=0.9,
            learner_rationality=rationality,
            config=config,
        )

    batched = jax.jit(jax.vmap(run))
    noisy = perturb_transitions(T, 0.2, jax.random.key(1))
    errors = batched(jnp.array([1.0, 4.0, 1.0]), jnp.stack([T, T, noisy]))
    correct, wrong_rationality, wrong_T = (float(x) for x in errors.starc)
    assert correct < 0.02 and float(errors.occupancy_error[0]) < 1e-3
    assert wrong_rationality < 0.02  # β only rescales the learned reward
    assert wrong_T > 10 * max(correct, wrong_rationality, 0.005)


def test_experiment_smoke(tmp_path):
    from experiments.irl_misspecification import Args, main

    args = Args(
        num_boards=1,
        learner_rationalities=(1.0, 2.0),
        learner_discounts=(0.95, 0.99),
        transition_noises=(0.0, 0.1),
        behaviours=("optimal",),
        num_steps=5,
        num_sweeps=10,
        out_dir=str(tmp_path),
    )
    summary = main(args)
    assert {"starc/rationality=2.0", "regret/noise=0.1", "epic/behaviour=optimal"} <= set(summary)
    assert all(np.isfinite(v) for v in summary.values())
    results = json.loads((tmp_path / "results.json").read_text())
    assert np.shape(results["discount"]["starc"]) == (1, 2)
    assert (tmp_path / "misspecification.png").stat().st_size > 0
    with pytest.raises(ValueError, match="behaviours"):
        Args(behaviours=("lazy",))
