"""Misspecified IRL: a demonstrator from one model, a learner assuming another, and the error that results.

Skalse and Abate show that Boltzmann-rational or maximum-causal-entropy demonstrations
identify the reward only up to potential shaping, S'-redistribution and (for a misspecified
rationality β) positive scaling — all harmless for the policies the reward induces — while a
misspecified discount γ or transition model τ can make the learned reward arbitrarily wrong
even when the misspecification is tiny. This module measures that error for one
(demonstrator, learner) pair:

* the demonstrator acts in the true MDP (T, γ) with behaviour model f and rationality β_d
  (:func:`demonstrator_policy`, planned exactly by policy iteration);
* the learner observes its state-action visits, weighted γ_Lᵗ by its own assumed discount
  (what an empirical occupancy of infinitely many trajectories gives), and fits a reward under
  its assumed (T_L, γ_L, β_L) — by default by the demonstrations' policy log-likelihood
  (:func:`rewardlab.irl.likelihood_irl`, bounded under any misspecification, causal-entropy
  or Boltzmann-rational learner), or by MCE occupancy matching;
* the learned reward r̂ is compared with the truth r by a reward distance (EPIC; STARC with
  the value canonicalisation, which also quotients out S'-redistribution) and by the regret
  of the policy optimal for r̂ in the true MDP, normalised as 1 − (V^π̂ − V^unif)/(V* − V^unif);
  the optimiser's convergence (gradient norm, likelihood gap, occupancy error) is returned
  beside them, so that a large error can be told from an unfinished fit.

References:
    Skalse and Abate, "Misspecification in Inverse Reinforcement Learning", AAAI 2023.
    Skalse et al., "STARC: A General Framework For Quantifying Differences Between Reward
    Functions", ICLR 2024. Gleave et al., "Quantifying Differences in Reward Functions", ICLR 2021.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from rewardlab._checks import check_prng_key
from rewardlab.distances import epic_distance, starc_distance
from rewardlab.irl._behaviour import BEHAVIOUR_MODELS
from rewardlab.irl._demos import discounted_occupancy
from rewardlab.irl._likelihood import (
    LikelihoodIRLConfig,
    demonstration_log_likelihood,
    make_likelihood_irl,
    plan_behaviour,
)
from rewardlab.irl._mce import MCEIRLConfig, make_mce_irl
from rewardlab.tabular import expected_return, greedy_policy, tabular_reward

Array = Any


class RewardError(NamedTuple):
    """How far a learned reward is from the truth, and how far its fit got (scalars, or stacked under vmap)."""

    epic: jax.Array  # EPIC distance to the true reward, in [0, 1]
    starc: jax.Array  # STARC distance (value canonicalisation, L2), in [0, 2]
    regret: jax.Array  # normalised regret of the learned reward's optimal policy in the true MDP (0 optimal, 1 uniform)
    occupancy_error: jax.Array  # ‖D_π̂ − D_demo‖₁/‖D_demo‖₁, π̂ the learner's model policy under its own model
    likelihood_gap: jax.Array  # Σ D_demo (log π̂_demo − log π̂)/ΣD_demo ≥ 0: 0 iff π̂ reproduces the demonstrations
    grad_norm: jax.Array  # ‖∇_θ L‖₂ of the learner's objective at the returned reward
    converged: jax.Array  # bool: the learner's tolerance was met
    reward_max: jax.Array  # max |r̂|, the size of the learned reward


def perturb_transitions(transitions: Array, noise: Array, key: jax.Array) -> jax.Array:
    """T_ε = (1 − ε) T + ε N with N(s, a, ·) ~ Dirichlet(1, …, 1): a transition model off by ε in total variation at most.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> T = jnp.eye(3)[:, None, :].repeat(2, axis=1)
        >>> perturbed = perturb_transitions(T, 0.1, jax.random.key(0))
        >>> bool(jnp.allclose(perturbed.sum(-1), 1.0)), bool(jnp.abs(perturbed - T).sum(-1).max() <= 0.2 + 1e-6)
        (True, True)
    """
    check_prng_key("key", key)
    transitions = jnp.asarray(transitions)
    other = jax.random.dirichlet(key, jnp.ones(transitions.shape[-1]), transitions.shape[:2])
    return (1.0 - noise) * transitions + noise * other


def demonstrator_policy(
    transitions: Array, reward: Array, discount: Array, behaviour: str, *, rationality: Array = 1.0
) -> jax.Array:
    """The ``[S, A]`` infinite-horizon policy of a demonstrator following ``behaviour``, planned exactly (pure).

    Policy iteration to a tolerance (:func:`rewardlab.irl.plan_behaviour`): ``"causal_entropy"``
    is the soft-optimal policy (τ = 1/β), ``"boltzmann"`` softmax(βQ*), ``"optimal"`` uniform
    over argmax Q* (ties within 1e-6 split). Unlike a fixed number of value-iteration sweeps,
    the plan is exact at any γ < 1.

    Example:
        >>> import jax.numpy as jnp
        >>> T = jnp.ones((1, 2, 1))
        >>> demonstrator_policy(T, jnp.array([[0.0, 1.0]]), 0.9, "optimal").tolist()
        [[0.0, 1.0]]
    """
    if behaviour not in BEHAVIOUR_MODELS:
        raise ValueError(f"behaviour: expected one of {BEHAVIOUR_MODELS}, got {behaviour!r}")
    model = "causal_entropy" if behaviour == "causal_entropy" else "boltzmann"
    plan = plan_behaviour(transitions, reward, discount, model, rationality=rationality, tolerance=1e-5)
    return greedy_policy(plan.q_values) if behaviour == "optimal" else plan.policy


def reward_error(
    learned_reward: Array,
    true_reward: Array,
    transitions: Array,
    discount: Array,
    initial_state_dist: Array,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(EPIC, STARC, normalised regret) of ``learned_reward`` against ``true_reward`` in the true MDP (pure).

    The regret is 1 − (J(π̂) − J(unif))/(J(π*) − J(unif)), π̂ and π* greedy in the exact Q* of
    the learned and the true reward (policy iteration), J the exact expected return from d0.

    Example:
        >>> import jax.numpy as jnp, rewardlab_envs
        >>> mdp = rewardlab_envs.random_mdp(6, 2, seed=0, discount=0.9)
        >>> r = jnp.einsum("sat,sat->sa", mdp.transitions, mdp.reward)
        >>> [round(float(x), 3) for x in reward_error(2.0 * r, r, mdp.transitions, 0.9, mdp.initial_state_dist)]
        [0.0, 0.0, 0.0]
    """
    transitions = jnp.asarray(transitions)
    epic = epic_distance(learned_reward, true_reward, discount, transitions=transitions)
    starc = starc_distance(learned_reward, true_reward, transitions, discount)
    policy = demonstrator_policy(transitions, learned_reward, discount, "optimal")
    optimal = demonstrator_policy(transitions, true_reward, discount, "optimal")
    uniform = jnp.full(policy.shape, 1.0 / policy.shape[-1])

    def value(pi: jax.Array) -> jax.Array:
        return expected_return(transitions, true_reward, discount, pi, initial_state_dist)

    regret = 1.0 - (value(policy) - value(uniform)) / (value(optimal) - value(uniform))
    return epic, starc, regret


def learner_error(
    key: jax.Array,
    transitions: Array,
    true_reward: Array,
    initial_state_dist: Array,
    discount: Array,
    demo_policy: Array,
    *,
    learner_transitions: Array,
    learner_discount: Array,
    learner_rationality: Array,
    config: LikelihoodIRLConfig | MCEIRLConfig,
) -> RewardError:
    """Fit a tabular ``[S, A]`` reward to ``demo_policy``'s γ_L-weighted occupancy under the learner's model; score it (pure; vmap me).

    Args:
        key: initialisation key of the learner's reward (tabular rewards start at 0).
        transitions: ``[S, A, S']`` true T (the demonstrations' dynamics and the scoring MDP).
        true_reward: ``[S, A]`` true r.
        initial_state_dist: ``[S]`` d0.
        discount: true γ.
        demo_policy: ``[S, A]`` the demonstrator's policy in the true MDP.
        learner_transitions: ``[S, A, S']`` T_L the learner assumes.
        learner_discount: γ_L the learner assumes.
        learner_rationality: β_L the learner assumes.
        config: :class:`LikelihoodIRLConfig` (likelihood, causal-entropy or Boltzmann learner) or
            :class:`MCEIRLConfig` (MCE IRL with its ``objective``; infinite horizon).

    Returns:
        :class:`RewardError`.
    """
    transitions = jnp.asarray(transitions)
    demo_occupancy = discounted_occupancy(transitions, demo_policy, initial_state_dist, learner_discount)
    model = tabular_reward(transitions.shape[:2])
    train: Callable[..., Any] = (
        make_mce_irl(model, config) if isinstance(config, MCEIRLConfig) else make_likelihood_irl(model, config)
    )
    result = train(key, learner_transitions, initial_state_dist, learner_discount, demo_occupancy, learner_rationality)
    epic, starc, regret = reward_error(result.reward, true_reward, transitions, discount, initial_state_dist)
    log_likelihood = jnp.sum(demo_occupancy * jnp.log(jnp.maximum(result.policy, 1e-30))) / jnp.sum(demo_occupancy)
    occupancy_error = jnp.sum(jnp.abs(result.occupancy - demo_occupancy)) / jnp.sum(demo_occupancy)
    return RewardError(
        epic,
        starc,
        regret,
        occupancy_error,
        demonstration_log_likelihood(demo_occupancy) - log_likelihood,
        result.metrics["grad_norm"][-1],
        result.converged,
        jnp.max(jnp.abs(result.reward)),
    )


def misspecified_irl(
    key: jax.Array,
    transitions: Array,
    true_reward: Array,
    initial_state_dist: Array,
    discount: Array,
    *,
    behaviour: str,
    demo_rationality: Array,
    learner_transitions: Array,
    learner_discount: Array,
    learner_rationality: Array,
    config: LikelihoodIRLConfig | MCEIRLConfig,
) -> RewardError:
    """Demonstrations from ``behaviour`` in the true MDP, IRL under the learner's model, and the error (pure; vmap me).

    Args:
        key: initialisation key of the learner's reward.
        transitions: ``[S, A, S']`` true T.
        true_reward: ``[S, A]`` true r.
        initial_state_dist: ``[S]`` d0.
        discount: true γ.
        behaviour: the demonstrator's model (static): optimal, boltzmann or causal_entropy.
        demo_rationality: the demonstrator's β.
        learner_transitions: ``[S, A, S']`` T_L the learner assumes.
        learner_discount: γ_L the learner assumes.
        learner_rationality: β_L the learner assumes.
        config: the learner (see :func:`learner_error`).

    Returns:
        :class:`RewardError`.
    """
    check_prng_key("key", key)
    transitions = jnp.asarray(transitions)
    policy = demonstrator_policy(transitions, true_reward, discount, behaviour, rationality=demo_rationality)
    return learner_error(
        key,
        transitions,
        true_reward,
        initial_state_dist,
        discount,
        policy,
        learner_transitions=learner_transitions,
        learner_discount=learner_discount,
        learner_rationality=learner_rationality,
        config=config,
    )
