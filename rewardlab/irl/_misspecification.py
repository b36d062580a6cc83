"""Misspecified IRL: a demonstrator from one model, a learner assuming another, and the error that results.

Skalse and Abate show that Boltzmann-rational or maximum-causal-entropy demonstrations
identify the reward only up to potential shaping, S'-redistribution and (for a misspecified
rationality β) positive scaling — all harmless for the policies the reward induces — while a
misspecified discount γ or transition model τ can make the learned reward arbitrarily wrong
even when the misspecification is tiny. This module measures that error for one
(demonstrator, learner) pair:

* the demonstrator acts in the true MDP (T, γ) with behaviour model f and rationality β_d;
* the learner observes its state-action visits, weighted γ_Lᵗ by its own assumed discount
  (what an empirical occupancy of infinitely many trajectories gives), and runs MCE IRL
  with its assumed (T_L, γ_L, β_L);
* the learned reward r̂ is compared with the truth r by a reward distance (EPIC; STARC with
  the value canonicalisation, which also quotients out S'-redistribution) and by the regret
  of the policy optimal for r̂ in the true MDP, normalised as 1 − (V^π̂ − V^unif)/(V* − V^unif).

References:
    Skalse and Abate, "Misspecification in Inverse Reinforcement Learning", AAAI 2023.
    Skalse et al., "STARC: A General Framework For Quantifying Differences Between Reward
    Functions", ICLR 2024. Gleave et al., "Quantifying Differences in Reward Functions", ICLR 2021.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from rewardlab._checks import check_prng_key
from rewardlab.distances import epic_distance, starc_distance
from rewardlab.irl._behaviour import behaviour_policy
from rewardlab.irl._demos import discounted_occupancy
from rewardlab.irl._mce import MCEIRLConfig, make_mce_irl
from rewardlab.tabular import scaled_return, tabular_reward, value_iteration

Array = Any


class RewardError(NamedTuple):
    """How far a learned reward is from the truth (scalars, or stacked under vmap)."""

    epic: jax.Array  # EPIC distance to the true reward, in [0, 1]
    starc: jax.Array  # STARC distance (value canonicalisation, L2), in [0, 2]
    regret: (
        jax.Array
    )  # normalised regret of the learned reward's optimal policy in the true MDP (0 = optimal, 1 = uniform)
    occupancy_error: jax.Array  # ‖D_π̂ − D_demo‖₁/‖D_demo‖₁ of the learner at the end of training


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


def reward_error(
    learned_reward: Array,
    true_reward: Array,
    transitions: Array,
    discount: Array,
    initial_state_dist: Array,
    *,
    num_sweeps: int = 500,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(EPIC, STARC, normalised regret) of ``learned_reward`` against ``true_reward`` in the true MDP (pure).

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
    policy = value_iteration(transitions, learned_reward, discount, num_sweeps=num_sweeps).policy
    regret = 1.0 - scaled_return(transitions, true_reward, discount, policy, initial_state_dist, num_sweeps=num_sweeps)
    return epic, starc, regret


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
    config: MCEIRLConfig,
) -> RewardError:
    """Demonstrations from ``behaviour`` in the true MDP, MCE IRL under the learner's model, and the error (pure; vmap me).

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
        config: MCE IRL settings (infinite horizon; ``num_sweeps`` also sets the demonstrator's planning).

    Returns:
        :class:`RewardError`.
    """
    check_prng_key("key", key)
    transitions = jnp.asarray(transitions)
    policy = behaviour_policy(
        transitions, true_reward, discount, behaviour, rationality=demo_rationality, num_sweeps=config.num_sweeps
    )
    demo_occupancy = discounted_occupancy(transitions, policy, initial_state_dist, learner_discount)
    train = make_mce_irl(tabular_reward(transitions.shape[:2]), config)
    result = train(key, learner_transitions, initial_state_dist, learner_discount, demo_occupancy, learner_rationality)
    epic, starc, regret = reward_error(
        result.reward, true_reward, transitions, discount, initial_state_dist, num_sweeps=config.num_sweeps
    )
    return RewardError(epic, starc, regret, result.metrics["occupancy_error"][-1])
