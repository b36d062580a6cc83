"""Exploration bonuses as reward sources: counts (global, episodic), RND, E3B, their product, and Motif.

Each bonus is a stateful ``RewardFn`` (``fn(obs, acts, next_obs, dones) -> [N] float32``) over
one step of N envs: row i is env i on every call and ``dones[i]`` ends env i's episode, which is
exactly how ``rewardlab.wrappers`` call a reward function (``RewardWrapper``: N = 1;
``RewardVecEnvWrapper`` and ``VectorRewardWrapper``: all envs in order). Global state (counts,
trained networks) lasts the whole training; episodic state is reset at episode ends. The agent's
reward r = r_ext + c·b comes from a wrapper in ``mode="add"`` with ``weight=c``; bonuses compose
by nesting wrappers (r = r_ext + c₁·b₁ + c₂·b₂) or as :class:`ProductBonus` (b = b_global·b_episodic).
Motif's message reward (:class:`MotifBonus`) and ONI's (:class:`ONIBonus`, labelled online by an
:class:`AnnotationWorker` with an on-disk :class:`LabelStore`) follow the same contract.
Every bonus has ``state_dict``/``load_state_dict`` (the state that outlasts an episode);
:func:`save_bonus_state` and :func:`load_bonus_state` keep it in a file beside an agent's checkpoint.
Henaff et al., "A study of global and episodic bonuses for exploration in contextual MDPs", ICML 2023.
"""

from rewardlab.intrinsic._counts import Bonus, EpisodicCountBonus, GlobalCountBonus, ProductBonus, state_keys
from rewardlab.intrinsic._messages import (
    BAD_PATTERNS,
    GOOD_PATTERNS,
    ORACLE_MESSAGES,
    collect_messages,
    label_agreement,
    message_pairs,
    oracle_label,
    oracle_preference,
)
from rewardlab.intrinsic._motif import (
    MOTIF_PROMPT,
    MOTIF_SCHEMA,
    MOTIF_SHORT_PROMPT,
    ChatLike,
    MessageRewards,
    MotifBonus,
    fit_message_rewards,
    label_message_pairs,
    parse_preference,
)
from rewardlab.intrinsic._networks import E3BBonus, RNDBonus, flatten_obs, sherman_morrison_update
from rewardlab.intrinsic._oni import (
    ONI_PROMPT,
    ONI_SCHEMA,
    REWARD_MODEL_KINDS,
    AnnotationWorker,
    LabelStore,
    LLMLabeller,
    MessageLabeller,
    MessageScorer,
    ONIBonus,
    fit_reward_model,
    message_features,
    parse_label,
)
from rewardlab.intrinsic._state import BonusStateError, load_bonus_state, read_bonus_state, save_bonus_state

__all__ = [
    "Bonus",
    "MOTIF_PROMPT",
    "MOTIF_SCHEMA",
    "MOTIF_SHORT_PROMPT",
    "ChatLike",
    "BAD_PATTERNS",
    "GOOD_PATTERNS",
    "ORACLE_MESSAGES",
    "collect_messages",
    "label_agreement",
    "message_pairs",
    "oracle_label",
    "oracle_preference",
    "ONI_PROMPT",
    "ONI_SCHEMA",
    "REWARD_MODEL_KINDS",
    "AnnotationWorker",
    "LabelStore",
    "LLMLabeller",
    "MessageLabeller",
    "MessageScorer",
    "ONIBonus",
    "fit_reward_model",
    "message_features",
    "parse_label",
    "MessageRewards",
    "MotifBonus",
    "fit_message_rewards",
    "label_message_pairs",
    "parse_preference",
    "E3BBonus",
    "EpisodicCountBonus",
    "GlobalCountBonus",
    "ProductBonus",
    "RNDBonus",
    "flatten_obs",
    "sherman_morrison_update",
    "state_keys",
    "BonusStateError",
    "load_bonus_state",
    "read_bonus_state",
    "save_bonus_state",
]
