"""Learning rewards from preferences: Bradley–Terry loss, simulated teachers, fragments, queries, training.

Typical loop (Christiano et al. 2017; B-Pref, Lee et al. 2021)::

    buffer = TransitionBuffer(capacity_steps, num_envs)       # buffer.add(...) every vec-env step
    candidates = buffer.sample_pairs(8 * n, fragment_length, rng)
    queries = select_queries(model, params, candidates, n, "disagreement", rng)
    prefs = label(queries, make_teacher("oracle"), rng)
    params, opt_state, metrics = train_reward(model, params, opt_state, prefs, key, epochs=30)
"""

from rewardlab.preferences._bradley_terry import (
    PREFERENCE_MODELS,
    bradley_terry_logit,
    bradley_terry_loss,
    bradley_terry_probability,
    check_fragment_pairs,
    check_preferences,
    pair_losses,
    preference_loss,
    preference_probabilities,
    segment_return,
    segment_scores,
    weighted_member_losses,
)
from rewardlab.preferences._fragments import Fragmenter, TransitionBuffer, fragment_trajectories, random_fragmenter
from rewardlab.preferences._metrics import (
    accuracy_from_probabilities,
    expected_calibration_error,
    pearson_correlation,
    predicted_rewards,
    preference_accuracy,
    preference_calibration,
    reward_correlation,
)
from rewardlab.preferences._queries import (
    QUERY_METHODS,
    disagreement_score,
    ensemble_probabilities,
    entropy_score,
    select_queries,
)
from rewardlab.preferences._teachers import (
    TEACHER_PRESETS,
    SimulatedTeacher,
    Teacher,
    TeacherState,
    compose,
    equal,
    label,
    make_teacher,
    mistake,
    myopic,
    oracle,
    skip,
    stochastic,
    synthetic_pairs,
    undiscounted_returns,
)
from rewardlab.preferences._trainer import EpochInputs, RewardTrainer, dataset_bucket, default_optimizer, train_reward

__all__ = [
    "PREFERENCE_MODELS",
    "QUERY_METHODS",
    "TEACHER_PRESETS",
    "EpochInputs",
    "Fragmenter",
    "RewardTrainer",
    "SimulatedTeacher",
    "Teacher",
    "TeacherState",
    "TransitionBuffer",
    "accuracy_from_probabilities",
    "bradley_terry_logit",
    "bradley_terry_loss",
    "bradley_terry_probability",
    "check_fragment_pairs",
    "check_preferences",
    "compose",
    "dataset_bucket",
    "default_optimizer",
    "disagreement_score",
    "ensemble_probabilities",
    "entropy_score",
    "equal",
    "expected_calibration_error",
    "fragment_trajectories",
    "label",
    "make_teacher",
    "mistake",
    "myopic",
    "oracle",
    "pair_losses",
    "pearson_correlation",
    "predicted_rewards",
    "preference_accuracy",
    "preference_calibration",
    "preference_loss",
    "preference_probabilities",
    "random_fragmenter",
    "reward_correlation",
    "segment_return",
    "segment_scores",
    "select_queries",
    "skip",
    "stochastic",
    "synthetic_pairs",
    "train_reward",
    "undiscounted_returns",
    "weighted_member_losses",
]
