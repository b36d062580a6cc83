"""Tabular demonstrations: sampled trajectories (JAX PRNG) and occupancy measures.

A demonstrator is a (possibly time-indexed) policy from :func:`behaviour_policy`; its
demonstrations are either the exact discounted occupancy D(s, a) = Σ_t γᵗ P(s_t = s, a_t = a)
(:func:`rewardlab.tabular.occupancy_measure`) or N sampled trajectories whose empirical
occupancy estimates it (:func:`empirical_occupancy`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from rewardlab._checks import check_prng_key
from rewardlab.irl._behaviour import behaviour_policy
from rewardlab.linalg import solve
from rewardlab.tabular import occupancy_measure

Array = Any


class TabularDemonstrations(NamedTuple):
    """N trajectories of H steps in a finite MDP."""

    states: jax.Array  # [N, H + 1] int32 s_0 … s_H
    actions: jax.Array  # [N, H] int32 a_0 … a_{H−1}


def _check_policy(policy: jax.Array, transitions: jax.Array, horizon: int) -> jax.Array:
    expected = transitions.shape[:2]
    if policy.shape == expected:
        return jnp.broadcast_to(policy, (horizon,) + expected)
    if policy.shape != (horizon,) + expected:
        raise ValueError(
            f"policy: expected shape [S, A]={expected} or [H, S, A]={(horizon,) + expected}, got {policy.shape}"
        )
    return policy


def sample_trajectories(
    key: jax.Array,
    transitions: Array,
    policy: Array,
    initial_state_dist: Array,
    horizon: int,
    num_trajectories: int,
) -> TabularDemonstrations:
    """Roll out ``policy`` for ``horizon`` steps from s_0 ~ d0, ``num_trajectories`` times.

    One trajectory is a ``lax.scan`` over time; trajectories are a ``vmap`` over keys.

    Args:
        key: JAX PRNG key.
        transitions: ``[S, A, S']``.
        policy: ``[S, A]`` or ``[H, S, A]`` π_t(a|s).
        initial_state_dist: ``[S]`` d0.
        horizon: H ≥ 1 steps per trajectory (static).
        num_trajectories: N ≥ 1 (static).

    Returns:
        :class:`TabularDemonstrations`.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> T = jnp.array([[[0.0, 1.0]], [[0.0, 1.0]]])  # 0 -> 1 -> 1
        >>> demos = sample_trajectories(jax.random.key(0), T, jnp.ones((2, 1)), jnp.array([1.0, 0.0]), 3, 2)
        >>> demos.states.tolist(), demos.actions.shape
        ([[0, 1, 1, 1], [0, 1, 1, 1]], (2, 3))
    """
    check_prng_key("key", key)
    transitions = jnp.asarray(transitions)
    if transitions.ndim != 3 or transitions.shape[0] != transitions.shape[2]:
        raise ValueError(f"transitions: expected shape [S, A, S], got {transitions.shape}")
    horizon, num_trajectories = int(horizon), int(num_trajectories)
    if horizon < 1 or num_trajectories < 1:
        raise ValueError(f"horizon, num_trajectories: expected integers >= 1, got {horizon}, {num_trajectories}")
    policy = _check_policy(jnp.asarray(policy), transitions, horizon)
    d0 = jnp.asarray(initial_state_dist)
    if d0.shape != transitions.shape[:1]:
        raise ValueError(f"initial_state_dist: expected shape [S]={transitions.shape[:1]}, got {d0.shape}")
    log_policy = jnp.log(policy)
    log_transitions = jnp.log(transitions)

    def one(key: jax.Array) -> tuple[jax.Array, jax.Array]:
        start_key, step_key = jax.random.split(key)
        state = jax.random.categorical(start_key, jnp.log(d0))

        def step(
            state: jax.Array, inputs: tuple[jax.Array, jax.Array]
        ) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
            key, log_pi = inputs
            action_key, next_key = jax.random.split(key)
            action = jax.random.categorical(action_key, log_pi[state])
            next_state = jax.random.categorical(next_key, log_transitions[state, action])
            return next_state, (state, action)

        last, (states, actions) = jax.lax.scan(step, state, (jax.random.split(step_key, horizon), log_policy))
        return jnp.append(states, last).astype(jnp.int32), actions.astype(jnp.int32)

    states, actions = jax.vmap(one)(jax.random.split(key, num_trajectories))
    return TabularDemonstrations(states, actions)


def empirical_occupancy(
    demos: TabularDemonstrations, num_states: int, num_actions: int, *, discount: Array = 1.0
) -> jax.Array:
    """D̂(s, a) = (1/N) Σ_n Σ_t γᵗ 1[s_t = s, a_t = a], the sample estimate of the occupancy.

    Returns:
        ``[S, A]``; entries sum to Σ_t γᵗ (the horizon when γ = 1).

    Example:
        >>> import jax.numpy as jnp
        >>> demos = TabularDemonstrations(jnp.array([[0, 1, 1]]), jnp.array([[1, 0]]))
        >>> empirical_occupancy(demos, 2, 2).tolist()
        [[0.0, 1.0], [1.0, 0.0]]
    """
    states, actions = jnp.asarray(demos.states), jnp.asarray(demos.actions)
    if states.ndim != 2 or actions.ndim != 2 or states.shape != (actions.shape[0], actions.shape[1] + 1):
        raise ValueError(f"demos: expected states [N, H+1] and actions [N, H], got {states.shape} and {actions.shape}")
    num_trajectories, horizon = actions.shape
    weights = jnp.broadcast_to(discount ** jnp.arange(horizon, dtype=jnp.float32), (num_trajectories, horizon))
    counts = jnp.zeros((int(num_states), int(num_actions)), jnp.float32)
    counts = counts.at[states[:, :-1], actions].add(weights)
    return counts / num_trajectories


def discounted_occupancy(transitions: Array, policy: Array, initial_state_dist: Array, discount: Array) -> jax.Array:
    """Infinite-horizon occupancy ``D(s, a) = [d0ᵀ (I − γP_π)⁻¹](s) π(a|s)``, exactly (γ < 1).

    Entries sum to 1/(1 − γ).

    Example:
        >>> import jax.numpy as jnp
        >>> T = jnp.ones((2, 2, 2)) / 2
        >>> round(float(discounted_occupancy(T, jnp.ones((2, 2)) / 2, jnp.array([1.0, 0.0]), 0.9).sum()), 4)
        10.0
    """
    transitions, policy = jnp.asarray(transitions), jnp.asarray(policy)
    if policy.shape != transitions.shape[:2]:
        raise ValueError(f"policy: expected shape [S, A]={transitions.shape[:2]}, got {policy.shape}")
    transitions_pi = jnp.einsum("sa,sat->st", policy, transitions)
    identity = jnp.eye(transitions.shape[0], dtype=transitions_pi.dtype)
    state_occupancy = solve(
        (identity - discount * transitions_pi).T, jnp.asarray(initial_state_dist, transitions_pi.dtype)
    )
    return state_occupancy[:, None] * policy


def demonstration_occupancy(
    transitions: Array,
    reward: Array,
    initial_state_dist: Array,
    discount: Array,
    horizon: int | None,
    behaviour: str,
    *,
    rationality: Array = 1.0,
    num_sweeps: int = 500,
) -> jax.Array:
    """Exact occupancy ``[S, A]`` of a demonstrator following ``behaviour`` for ``reward``.

    With a ``horizon`` H the demonstrator plans for exactly H steps (time-indexed policy) and
    the occupancy counts those H steps (``lax.scan``); with None it plays its stationary
    infinite-horizon policy and the occupancy is :func:`discounted_occupancy`. Pure: vmap over
    rewards, discounts, rationalities or transition models.

    Example:
        >>> import jax.numpy as jnp
        >>> T = jnp.ones((2, 2, 2)) / 2
        >>> D = demonstration_occupancy(T, jnp.array([0.0, 1.0]), jnp.array([0.5, 0.5]), 1.0, 4, "boltzmann")
        >>> round(float(D.sum()), 4)
        4.0
    """
    policy = behaviour_policy(
        transitions, reward, discount, behaviour, rationality=rationality, horizon=horizon, num_sweeps=num_sweeps
    )
    if horizon is None:
        return discounted_occupancy(transitions, policy, initial_state_dist, discount)
    return occupancy_measure(transitions, policy, initial_state_dist, int(horizon), discount=discount)
