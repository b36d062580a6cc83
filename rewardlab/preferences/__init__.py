"""Learning rewards from preferences: Bradley–Terry loss, simulated teachers, fragments, queries, training.

Typical loop (Christiano et al. 2017; B-Pref, Lee et al. 2021)::

    buffer = TransitionBuffer(capacity_steps, num_envs)       # buffer.add(...) every vec-env step
    preference_model = PreferenceModel("partial_return", temperature=1.0)  # score, τ, γ and ε in one value
    scorer = PairScorer(model, preference_model=preference_model)          # kept: each compiles once
    trainer = RewardTrainer(model, preference_model=preference_model)
    opt_state = trainer.init(params)
    # every round:
    candidates = buffer.sample_pairs(8 * n, fragment_length, rng)
    queries = select_queries(scorer, params, candidates, n, "disagreement", rng)
    prefs = label(queries, make_teacher("oracle"), rng)       # appended to the labels so far
    params, opt_state, metrics = trainer.train(params, opt_state, prefs, key, epochs=30)
"""

from rewardlab.preferences._bradley_terry import (
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
from rewardlab.preferences._heron import (
    HERON_SIGMAS,
    HeronDecision,
    HeronTeacher,
    factor_combination,
    heron_compare,
    heron_decisions,
    heron_margins,
)
from rewardlab.preferences._metrics import (
    accuracy_from_probabilities,
    expected_calibration_error,
    pearson_correlation,
    preference_accuracy,
    preference_calibration,
    reward_correlation,
)
from rewardlab.preferences._preference_model import PREFERENCE_MODELS, PreferenceModel, check_preference_model
from rewardlab.preferences._queries import (
    QUERY_METHODS,
    disagreement_score,
    entropy_score,
    select_queries,
)
from rewardlab.preferences._regret import (
    VALUE_MODELS,
    SuccessorFeatures,
    TabularRegretModel,
    optimal_advantages,
    pair_regrets,
    regret_probability,
    segment_regret,
    successor_feature_library,
    successor_feature_values,
    tabular_advantage_fn,
)
from rewardlab.preferences._scoring import PairScorer
from rewardlab.preferences._tabular_learning import (
    TABULAR_SOLVERS,
    TabularEvaluation,
    evaluate_tabular_reward,
    fit_tabular_reward,
    sample_tabular_pairs,
)
from rewardlab.preferences._teacher_registry import (
    TEACHER_FACTORIES,
    TEACHER_MODELS,
    TEACHER_PRESETS,
    make_teacher,
    register_teacher,
)
from rewardlab.preferences._teachers import (
    SimulatedTeacher,
    Teacher,
    TeacherStage,
    TeacherState,
    compose,
    equal,
    label,
    mistake,
    myopic,
    oracle,
    regret,
    skip,
    stochastic,
    synthetic_pairs,
    undiscounted_returns,
)
from rewardlab.preferences._trainer import EpochInputs, RewardTrainer, dataset_bucket, default_optimizer, train_reward

__all__ = [
    "HERON_SIGMAS",
    "PREFERENCE_MODELS",
    "QUERY_METHODS",
    "TABULAR_SOLVERS",
    "TEACHER_FACTORIES",
    "TEACHER_MODELS",
    "TEACHER_PRESETS",
    "VALUE_MODELS",
    "EpochInputs",
    "Fragmenter",
    "HeronDecision",
    "HeronTeacher",
    "PairScorer",
    "PreferenceModel",
    "RewardTrainer",
    "SimulatedTeacher",
    "SuccessorFeatures",
    "TabularEvaluation",
    "TabularRegretModel",
    "Teacher",
    "TeacherStage",
    "TeacherState",
    "TransitionBuffer",
    "accuracy_from_probabilities",
    "bradley_terry_logit",
    "bradley_terry_loss",
    "bradley_terry_probability",
    "check_fragment_pairs",
    "check_preference_model",
    "check_preferences",
    "compose",
    "dataset_bucket",
    "default_optimizer",
    "disagreement_score",
    "entropy_score",
    "equal",
    "evaluate_tabular_reward",
    "expected_calibration_error",
    "factor_combination",
    "fit_tabular_reward",
    "fragment_trajectories",
    "heron_compare",
    "heron_decisions",
    "heron_margins",
    "label",
    "make_teacher",
    "mistake",
    "myopic",
    "optimal_advantages",
    "oracle",
    "pair_regrets",
    "pair_losses",
    "pearson_correlation",
    "preference_accuracy",
    "preference_calibration",
    "preference_loss",
    "preference_probabilities",
    "random_fragmenter",
    "regret",
    "regret_probability",
    "register_teacher",
    "reward_correlation",
    "sample_tabular_pairs",
    "segment_regret",
    "segment_return",
    "segment_scores",
    "select_queries",
    "skip",
    "stochastic",
    "successor_feature_library",
    "successor_feature_values",
    "synthetic_pairs",
    "tabular_advantage_fn",
    "train_reward",
    "undiscounted_returns",
    "weighted_member_losses",
]
