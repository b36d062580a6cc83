"""Exact planning on tabular MDPs, in pure JAX (``jax.vmap`` over rewards, MDPs or seeds).

Works on the dense arrays of :class:`rewardlab_envs.TabularMDP`
(``mdp.transitions``, ``mdp.reward``, ``mdp.discount``, ``mdp.initial_state_dist``).
"""

from rewardlab.tabular._planning import (
    FiniteHorizonResult,
    PlanningResult,
    bellman_backup,
    boltzmann_policy,
    expand_reward,
    expected_return,
    expected_reward,
    finite_horizon_soft_value_iteration,
    greedy_policy,
    occupancy_measure,
    policy_evaluation,
    scaled_return,
    successor_table,
    value_iteration,
)

__all__ = [
    "FiniteHorizonResult",
    "PlanningResult",
    "bellman_backup",
    "boltzmann_policy",
    "expand_reward",
    "expected_return",
    "expected_reward",
    "finite_horizon_soft_value_iteration",
    "greedy_policy",
    "occupancy_measure",
    "policy_evaluation",
    "scaled_return",
    "successor_table",
    "value_iteration",
]
