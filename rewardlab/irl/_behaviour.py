"""Behaviour models: how a demonstrator turns a reward into a policy.

Three models, from the most to the least rational (Skalse & Abate, 2023):

* ``"optimal"``: π(a|s) uniform over argmax_a Q*(s, a) (hard Bellman optimality);
* ``"boltzmann"``: π(a|s) = softmax_a(β Q*(s, a)), Boltzmann-rational with rationality β
  over the *optimal* Q-function;
* ``"causal_entropy"``: π(a|s) = exp((Q_soft(s,a) − V_soft(s))/τ) with τ = 1/β, the
  maximum-causal-entropy policy of soft value iteration (Ziebart 2010), which is the model
  MCE IRL assumes.

Both infinite-horizon (stationary ``[S, A]`` policies) and finite-horizon (time-indexed
``[H, S, A]`` policies, V_H = 0) versions are provided.

References:
    Ziebart, "Modeling Purposeful Adaptive Behavior with the Principle of Maximum Causal
    Entropy", PhD thesis, CMU 2010.
    Skalse and Abate, "Misspecification in Inverse Reinforcement Learning", AAAI 2023.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from rewardlab.tabular import (
    bellman_backup,
    boltzmann_policy,
    expand_reward,
    finite_horizon_soft_value_iteration,
    greedy_policy,
    value_iteration,
)

Array = Any

BEHAVIOUR_MODELS = ("optimal", "boltzmann", "causal_entropy")
"""Demonstrator models of ``behaviour_policy``: optimal, Boltzmann-rational, causal entropy."""


def _check_model(behaviour: str) -> None:
    if behaviour not in BEHAVIOUR_MODELS:
        raise ValueError(f"behaviour: expected one of {BEHAVIOUR_MODELS}, got {behaviour!r}")


def finite_horizon_optimal_q(transitions: Array, reward: Array, discount: Array, horizon: int) -> jax.Array:
    """Q*_t(s, a) of the finite-horizon problem (V_H = 0) by backward induction under ``lax.scan``.

    Q*_t(s,a) = Σ_s' T(s,a,s') [r(s,a,s') + γ max_a' Q*_{t+1}(s',a')].

    Returns:
        ``[H, S, A]`` Q*_t for t = 0 … H−1.

    Example:
        >>> import jax.numpy as jnp
        >>> T = jnp.ones((1, 2, 1))  # one state, two actions paying 0 and 1
        >>> finite_horizon_optimal_q(T, jnp.array([[0.0, 1.0]]), 1.0, 3)[:, 0].tolist()
        [[2.0, 3.0], [1.0, 2.0], [0.0, 1.0]]
    """
    if int(horizon) < 1:
        raise ValueError(f"horizon: expected a positive number of steps, got {horizon}")
    transitions = jnp.asarray(transitions)
    reward = expand_reward(reward, transitions)

    def step(next_values: jax.Array, _: None) -> tuple[jax.Array, jax.Array]:
        q_values = bellman_backup(transitions, reward, discount, next_values)
        return jnp.max(q_values, axis=-1), q_values

    terminal = jnp.zeros(transitions.shape[0], reward.dtype)
    _, q_values = jax.lax.scan(step, terminal, None, length=int(horizon), reverse=True)
    return q_values


def behaviour_policy(
    transitions: Array,
    reward: Array,
    discount: Array,
    behaviour: str,
    *,
    rationality: Array = 1.0,
    horizon: int | None = None,
    num_sweeps: int = 500,
) -> jax.Array:
    """The policy a demonstrator following ``behaviour`` plays for ``reward``.

    Args:
        transitions: ``[S, A, S']`` T(s, a, s').
        reward: ``[S]``, ``[S, A]`` or ``[S, A, S']`` reward.
        discount: γ (a traced value is fine: vmap over discounts).
        behaviour: ``"optimal"``, ``"boltzmann"`` or ``"causal_entropy"``.
        rationality: β > 0 (Boltzmann inverse temperature; τ = 1/β for causal entropy);
            ignored by ``"optimal"``.
        horizon: H for a finite-horizon, time-indexed policy; None for an infinite-horizon,
            stationary one.
        num_sweeps: value-iteration sweeps in the infinite-horizon case (error ≤ γⁿ).

    Returns:
        ``[S, A]`` π(a|s) (infinite horizon) or ``[H, S, A]`` π_t(a|s) (finite horizon).

    Raises:
        ValueError: unknown ``behaviour`` or bad shapes.

    Example:
        >>> import jax.numpy as jnp
        >>> T = jnp.ones((1, 2, 1))  # one state, two actions paying 0 and 1
        >>> r = jnp.array([[0.0, 1.0]])
        >>> behaviour_policy(T, r, 0.0, "optimal").tolist()
        [[0.0, 1.0]]
        >>> [round(p, 3) for p in behaviour_policy(T, r, 0.0, "boltzmann", rationality=1.0)[0].tolist()]
        [0.269, 0.731]
    """
    _check_model(behaviour)
    transitions = jnp.asarray(transitions)
    if horizon is None:
        if behaviour == "causal_entropy":
            return value_iteration(
                transitions, reward, discount, num_sweeps=num_sweeps, temperature=1.0 / rationality
            ).policy
        q_values = value_iteration(transitions, reward, discount, num_sweeps=num_sweeps).q_values
    else:
        if behaviour == "causal_entropy":
            return finite_horizon_soft_value_iteration(
                transitions, reward, discount, horizon, temperature=1.0 / rationality
            ).policy
        q_values = finite_horizon_optimal_q(transitions, reward, discount, horizon)
    if behaviour == "optimal":
        return greedy_policy(q_values)
    return boltzmann_policy(q_values, rationality)
