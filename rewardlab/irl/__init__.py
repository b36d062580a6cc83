"""Inverse RL: maximum-causal-entropy IRL, behaviour models, AIRL and GAIL.

Tabular (pure JAX, exact planning from :mod:`rewardlab.tabular`):

* behaviour models a demonstrator may follow (:data:`BEHAVIOUR_MODELS`: optimal,
  Boltzmann-rational, causal entropy) and demonstrations from them, exact occupancies or
  trajectories sampled with a JAX PRNG;
* maximum-causal-entropy IRL (:func:`mce_irl`, :func:`make_mce_irl`), finite or infinite
  horizon, over the tabular, linear or neural rewards of :mod:`rewardlab.tabular`
  (``tabular_reward``, ``linear_reward``, ``mlp_reward``), one ``lax.while_loop`` per training
  run that stops at an occupancy tolerance;
* likelihood IRL (:func:`likelihood_irl`, :func:`make_likelihood_irl`): the demonstrations'
  policy log-likelihood under a causal-entropy or Boltzmann-rational learner, planned by
  policy iteration and differentiated implicitly, bounded under a misspecified model;
* misspecification analysis (:func:`misspecified_irl`: perturbed transition models, STARC,
  EPIC and the regret of the induced policy).

Deep (JAX discriminator, SB3 generator, fixed-horizon gymnasium tasks):

* AIRL (potential-shaped discriminator f = g + γh(s') − h(s); g is the transferable reward)
  and GAIL (:func:`train_adversarial`, :class:`AdversarialCallback`) with an SB3 generator
  built by the caller, as for :func:`rewardlab.rl.train_pbrl`;
* SB3 experts trained on the true reward (:func:`train_expert`), their demonstrations
  (:func:`rewardlab.rl.rollout`) in a checksummed file (:func:`save_demonstrations`).
"""

from rewardlab.irl._adversarial import (
    ADVERSARIAL_METHODS,
    GENERATOR_REWARDS,
    AdversarialCallback,
    AdversarialConfig,
    AdversarialResult,
    DiscriminatorBatch,
    LogOddsRewardFn,
    discriminator_logits,
    discriminator_loss,
    make_discriminator,
    policy_log_prob,
    train_adversarial,
)
from rewardlab.irl._behaviour import BEHAVIOUR_MODELS, behaviour_policy, finite_horizon_optimal_q
from rewardlab.irl._demo_io import load_demonstrations, save_demonstrations
from rewardlab.irl._demos import (
    TabularDemonstrations,
    demonstration_occupancy,
    discounted_occupancy,
    empirical_occupancy,
    sample_trajectories,
)
from rewardlab.irl._experts import train_expert
from rewardlab.irl._likelihood import (
    LEARNER_MODELS,
    LikelihoodIRLConfig,
    LikelihoodIRLResult,
    ModelPlan,
    demonstration_log_likelihood,
    likelihood_irl,
    likelihood_irl_loss,
    make_likelihood_irl,
    plan_behaviour,
)
from rewardlab.irl._mce import (
    OBJECTIVES,
    MCEIRLConfig,
    MCEIRLResult,
    SoftPlan,
    make_mce_irl,
    mce_irl,
    mce_irl_gradient,
    mce_irl_loss,
    soft_plan,
)
from rewardlab.irl._misspecification import (
    RewardError,
    demonstrator_policy,
    learner_error,
    misspecified_irl,
    perturb_transitions,
    reward_error,
)
from rewardlab.tabular import (  # the tabular reward family MCE IRL fits, re-exported
    linear_reward,
    mlp_reward,
    tabular_reward,
)

__all__ = [
    "ADVERSARIAL_METHODS",
    "AdversarialCallback",
    "AdversarialConfig",
    "AdversarialResult",
    "BEHAVIOUR_MODELS",
    "DiscriminatorBatch",
    "GENERATOR_REWARDS",
    "LEARNER_MODELS",
    "LogOddsRewardFn",
    "LikelihoodIRLConfig",
    "LikelihoodIRLResult",
    "MCEIRLConfig",
    "MCEIRLResult",
    "ModelPlan",
    "OBJECTIVES",
    "RewardError",
    "SoftPlan",
    "TabularDemonstrations",
    "behaviour_policy",
    "demonstration_log_likelihood",
    "demonstration_occupancy",
    "demonstrator_policy",
    "discounted_occupancy",
    "discriminator_logits",
    "discriminator_loss",
    "empirical_occupancy",
    "finite_horizon_optimal_q",
    "learner_error",
    "likelihood_irl",
    "likelihood_irl_loss",
    "linear_reward",
    "load_demonstrations",
    "make_discriminator",
    "make_likelihood_irl",
    "make_mce_irl",
    "mce_irl",
    "mce_irl_gradient",
    "mce_irl_loss",
    "misspecified_irl",
    "mlp_reward",
    "perturb_transitions",
    "plan_behaviour",
    "policy_log_prob",
    "reward_error",
    "sample_trajectories",
    "save_demonstrations",
    "soft_plan",
    "tabular_reward",
    "train_adversarial",
    "train_expert",
]
