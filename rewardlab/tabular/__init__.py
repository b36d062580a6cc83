"""Tabular MDPs in pure JAX (``jax.vmap`` over rewards, MDPs or seeds): exact planning and parameterised rewards.

Works on the dense arrays of :class:`rewardlab_envs.TabularMDP`
(``mdp.transitions``, ``mdp.reward``, ``mdp.discount``, ``mdp.initial_state_dist``).
The reward family (:class:`TabularReward`: :func:`tabular_reward`, :func:`linear_reward`,
:func:`mlp_reward`) is the one that preference learning and inverse RL fit.
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
    is_successor_table,
    occupancy_measure,
    policy_evaluation,
    scaled_return,
    successor_table,
    value_iteration,
)
from rewardlab.tabular._rewards import TabularReward, TabularRewardParams, linear_reward, mlp_reward, tabular_reward

__all__ = [
    "FiniteHorizonResult",
    "PlanningResult",
    "TabularReward",
    "TabularRewardParams",
    "bellman_backup",
    "boltzmann_policy",
    "expand_reward",
    "expected_return",
    "expected_reward",
    "finite_horizon_soft_value_iteration",
    "greedy_policy",
    "is_successor_table",
    "linear_reward",
    "mlp_reward",
    "occupancy_measure",
    "policy_evaluation",
    "scaled_return",
    "successor_table",
    "tabular_reward",
    "value_iteration",
]
