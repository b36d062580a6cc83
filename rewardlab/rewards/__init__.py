"""Learned reward models (Flax nnx), their ``RewardFn`` adapter and checkpoints.

``RewardModel`` is a thin shell (static config + jitted pure functions) over an ensemble of
Flax nnx networks whose parameters live in ``RewardParams``; ``as_reward_fn`` turns a model
and its parameters into the batched NumPy ``RewardFn`` used at the host boundary;
``save_reward_model``/``load_reward_model`` write and read one self-describing file.
"""

from rewardlab.rewards._checkpoint import CheckpointError, load_reward_model, save_reward_model
from rewardlab.rewards._config import RewardNetConfig
from rewardlab.rewards._model import RewardModel, RewardParams
from rewardlab.rewards._normalizer import RunningStats
from rewardlab.rewards._reward_fn import ModelRewardFn, as_reward_fn, bucket_size
from rewardlab.rewards._spaces import is_image_space, space_from_dict, space_to_dict

__all__ = [
    "CheckpointError",
    "ModelRewardFn",
    "RewardModel",
    "RewardNetConfig",
    "RewardParams",
    "RunningStats",
    "as_reward_fn",
    "bucket_size",
    "is_image_space",
    "load_reward_model",
    "save_reward_model",
    "space_from_dict",
    "space_to_dict",
]
