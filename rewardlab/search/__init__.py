"""Reward-code searches with a language model: Eureka, Text2Reward and in-context preference learning.

The model writes reward functions to :mod:`rewardlab.llm`'s contract; each is checked, run only
in the sandbox, and trained on with SB3 (:mod:`rewardlab.rl`) through the reward wrapper. The
searches keep their whole history in a run folder and resume from it.
"""

from rewardlab.search._candidates import (
    CandidateTrainer,
    GenerationConfig,
    TrainConfig,
    check_candidate,
    generate_candidates,
    probe_batch,
    train_all,
    train_candidate,
)
from rewardlab.search._context import ENV_NOTES, EXPERT_EXAMPLES, env_context, expert_example
from rewardlab.search._preferences import PreferenceSource, TerminalPreference, TrueReturnTeacher, behaviour_summary
from rewardlab.search._search import (
    SEARCH_FORMAT,
    SearchConfig,
    SearchResult,
    eureka,
    eureka_feedback,
    failures_text,
    icpl,
    icpl_feedback,
    reflection_text,
    run_search,
)
from rewardlab.search._text2reward import critique_text, few_shot_text, text2reward, text2reward_messages

__all__ = [
    "ENV_NOTES",
    "EXPERT_EXAMPLES",
    "SEARCH_FORMAT",
    "CandidateTrainer",
    "GenerationConfig",
    "PreferenceSource",
    "SearchConfig",
    "SearchResult",
    "TerminalPreference",
    "TrainConfig",
    "TrueReturnTeacher",
    "behaviour_summary",
    "check_candidate",
    "critique_text",
    "env_context",
    "eureka",
    "eureka_feedback",
    "expert_example",
    "failures_text",
    "few_shot_text",
    "generate_candidates",
    "icpl",
    "icpl_feedback",
    "probe_batch",
    "reflection_text",
    "run_search",
    "text2reward",
    "text2reward_messages",
    "train_all",
    "train_candidate",
]
