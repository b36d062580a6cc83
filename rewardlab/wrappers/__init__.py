"""Reward wrappers: put a ``RewardFn`` into a gymnasium env, a gymnasium vector env or an SB3 VecEnv.

Each wrapper scores the transitions (s, a, s', done) of a step with one batched ``RewardFn``
call and gives the agent r = r_learned (``mode="replace"``), r = r_env + weight·r_learned
(``"add"``) or r = env_weight·r_env + weight·r_learned (``"weighted"``), keeping the true
reward in ``info["true_reward"]`` and the terms in ``info["reward_components"]``. The reward
function can be swapped in place with ``set_reward_fn`` (e.g. after each reward-model update).
"""

from rewardlab.wrappers._core import REWARD_MODES, NonFiniteRewardError, RewardMix, spaces_compatible
from rewardlab.wrappers._gym import RewardWrapper
from rewardlab.wrappers._sb3 import RewardVecEnvWrapper
from rewardlab.wrappers._vector import VectorRewardWrapper

__all__ = [
    "REWARD_MODES",
    "NonFiniteRewardError",
    "RewardMix",
    "RewardVecEnvWrapper",
    "RewardWrapper",
    "VectorRewardWrapper",
    "spaces_compatible",
]
