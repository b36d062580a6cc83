"""Online reward learning with Stable-Baselines3 agents."""

from rewardlab.rl._agents import default_num_envs, make_agent, tuned_hyperparameters
from rewardlab.rl._episodes import EpisodeReturns
from rewardlab.rl._online import (
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
    evaluate_policy_rewards,
    measure_overoptimization,
    median_bandwidth,
    plot_overoptimization,
    visitation_mmd,
)
from rewardlab.rl._quickstart import QuickstartArgs
from rewardlab.rl._quickstart import main as quickstart_main
from rewardlab.rl._schedule import QUERY_SCHEDULES, labels_per_round

__all__ = [
    "EpisodeReturns",
    "FeedbackRecord",
    "OveroptimizationCallback",
    "OveroptimizationResult",
    "PbRLConfig",
    "PbRLResult",
    "PreferenceFeedbackCallback",
    "QUERY_SCHEDULES",
    "QuickstartArgs",
    "StandardizedRewardFn",
    "default_num_envs",
    "evaluate_policy_rewards",
    "labels_per_round",
    "make_agent",
    "measure_overoptimization",
    "median_bandwidth",
    "plot_overoptimization",
    "quickstart_main",
    "relabel_replay_buffer",
    "train_pbrl",
    "tuned_hyperparameters",
    "visitation_mmd",
]
