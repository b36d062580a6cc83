"""Exploration bonuses as reward sources: counts (global, episodic), RND, E3B, their product, and Motif.

Each bonus is a stateful ``RewardFn`` (``fn(obs, acts, next_obs, dones) -> [N] float32``) over
one step of N envs: row i is env i on every call and ``dones[i]`` ends env i's episode, which is
exactly how ``rewardlab.wrappers`` call a reward function (``RewardWrapper``: N = 1;
``RewardVecEnvWrapper`` and ``VectorRewardWrapper``: all envs in order). Global state (counts,
trained networks) lasts the whole training; episodic state is reset at episode ends. The agent's
reward r = r_ext + c·b comes from a wrapper in ``mode="add"`` with ``weight=c``; bonuses compose
by nesting wrappers (r = r_ext + c₁·b₁ + c₂·b₂) or as :class:`ProductBonus` (b = b_global·b_episodic).
Motif's message reward (:class:`MotifBonus`) follows the same contract.
Henaff et al., "A study of global and episodic bonuses for exploration in contextual MDPs", ICML 2023.
"""

from rewardlab.intrinsic._counts import Bonus, EpisodicCountBonus, GlobalCountBonus, ProductBonus, state_keys
from rewardlab.intrinsic._motif import (
    MOTIF_PROMPT,
    MessageRewards,
    MotifBonus,
    fit_message_rewards,
    label_message_pairs,
    parse_preference,
)
from rewardlab.intrinsic._networks import E3BBonus, RNDBonus, flatten_obs, sherman_morrison_update

__all__ = [
    "Bonus",
    "MOTIF_PROMPT",
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
]
