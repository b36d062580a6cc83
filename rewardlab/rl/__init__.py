"""Stable-Baselines3 agents: tuned construction, online reward learning, rollouts and evaluation, over-optimisation."""

from rewardlab.rl._agents import default_num_envs, make_agent, tuned_hyperparameters
from rewardlab.rl._episodes import EpisodeReturns
from rewardlab.rl._nethack import NETHACK_KEYS, NetHackExtractor
from rewardlab.rl._online import (
    DatasetTeacher,
    FeedbackRecord,
    PbRLConfig,
    PbRLResult,
    PreferenceFeedbackCallback,
    StandardizedRewardFn,
    relabel_replay_buffer,
    train_pbrl,
)
from rewardlab.rl._overoptimization import (
    OveroptimizationCallback,
    OveroptimizationResult,
    action_distribution,
    mean_kl,
    measure_overoptimization,
    median_bandwidth,
    plot_overoptimization,
    visitation_mmd,
)
from rewardlab.rl._rollouts import (
    DEFAULT_HORIZONS,
    Evaluation,
    Policy,
    RandomPolicy,
    Rollout,
    evaluate_policy,
    make_env,
    make_task_env,
    reward_returns,
    rollout,
    rollout_transitions,
)
from rewardlab.rl._schedule import QUERY_SCHEDULES, labels_per_round
from rewardlab.rl._shaping import LagrangeMultiplierCallback, critic_potential

__all__ = [
    "DatasetTeacher",
    "DEFAULT_HORIZONS",
    "EpisodeReturns",
    "Evaluation",
    "FeedbackRecord",
    "LagrangeMultiplierCallback",
    "NETHACK_KEYS",
    "NetHackExtractor",
    "OveroptimizationCallback",
    "OveroptimizationResult",
    "PbRLConfig",
    "PbRLResult",
    "Policy",
    "PreferenceFeedbackCallback",
    "QUERY_SCHEDULES",
    "RandomPolicy",
    "Rollout",
    "StandardizedRewardFn",
    "action_distribution",
    "critic_potential",
    "default_num_envs",
    "evaluate_policy",
    "labels_per_round",
    "make_agent",
    "make_env",
    "make_task_env",
    "mean_kl",
    "measure_overoptimization",
    "median_bandwidth",
    "plot_overoptimization",
    "relabel_replay_buffer",
    "reward_returns",
    "rollout",
    "rollout_transitions",
    "train_pbrl",
    "tuned_hyperparameters",
    "visitation_mmd",
]
