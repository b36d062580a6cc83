"""Inverse RL: maximum-causal-entropy IRL, behaviour models, AIRL and GAIL.

Tabular (pure JAX, exact planning from :mod:`rewardlab.tabular`):

* behaviour models a demonstrator may follow (:data:`BEHAVIOUR_MODELS`: optimal,
  Boltzmann-rational, causal entropy) and demonstrations from them, exact occupancies or
  trajectories sampled with a JAX PRNG;
* maximum-causal-entropy IRL (:func:`mce_irl`, :func:`make_mce_irl`), finite or infinite
  horizon, over tabular, linear or neural rewards, one ``lax.scan`` per training run;
* misspecification analysis helpers (perturbed transition models, regret of the induced policy).
"""

from rewardlab.irl._behaviour import BEHAVIOUR_MODELS, behaviour_policy, finite_horizon_optimal_q
from rewardlab.irl._demos import (
    TabularDemonstrations,
    demonstration_occupancy,
    discounted_occupancy,
    empirical_occupancy,
    sample_trajectories,
)
from rewardlab.irl._mce import (
    MCEIRLConfig,
    MCEIRLResult,
    SoftPlan,
    make_mce_irl,
    mce_irl,
    mce_irl_gradient,
    mce_irl_loss,
    soft_plan,
)
from rewardlab.irl._rewards import TabularRewardModel, linear_reward, mlp_reward, tabular_reward

__all__ = [
    "BEHAVIOUR_MODELS",
    "MCEIRLConfig",
    "MCEIRLResult",
    "SoftPlan",
    "TabularDemonstrations",
    "TabularRewardModel",
    "behaviour_policy",
    "demonstration_occupancy",
    "discounted_occupancy",
    "empirical_occupancy",
    "finite_horizon_optimal_q",
    "linear_reward",
    "make_mce_irl",
    "mce_irl",
    "mce_irl_gradient",
    "mce_irl_loss",
    "mlp_reward",
    "sample_trajectories",
    "soft_plan",
    "tabular_reward",
]
