"""Reward models, the one adapter to the host ``RewardFn``, ensemble aggregation and checkpoints.

A reward model is anything with pure JAX ``apply(params, obs, acts, next_obs, dones) -> [E, N]``
and an ``ensemble_size`` (``RewardModelLike``). ``RewardModel`` is a thin shell (static config +
jitted pure functions) over an ensemble of Flax nnx networks whose parameters live in
``RewardParams``; ``FunctionReward`` makes a parameter-free pure JAX function a model.
``as_reward_fn`` turns any model and its parameters into the batched NumPy ``RewardFn`` used at
the host boundary, combining members with ``aggregate_ensemble``, and exposes the pure function
(``pure_fn()``) for distances and shaping; ``save_reward_model``/``load_reward_model`` write and
read one self-describing file.

A new pure JAX reward source is a model, never a new adapter (docs/concepts.md)::

    >>> import jax.numpy as jnp, numpy as np
    >>> class GoalReward:  # member e rewards closeness to its goal g_e: r_e(s, a, s') = −‖s' − g_e‖
    ...     ensemble_size = 2
    ...
    ...     def apply(self, params, obs, acts, next_obs, dones):  # params: goals [E, obs_dim]
    ...         return -jnp.linalg.norm(next_obs[None] - params[:, None], axis=-1)  # [E, N]
    >>> fn = as_reward_fn(GoalReward(), jnp.array([[0.0, 0.0], [1.0, 0.0]]), aggregate="min")
    >>> fn(np.zeros((2, 2)), np.zeros((2, 1)), np.array([[0.0, 0.0], [1.0, 0.0]]), np.zeros(2, bool)).tolist()
    [-1.0, -1.0]
"""

from rewardlab._types import RewardModelLike
from rewardlab.rewards._aggregate import ENSEMBLE_AGGREGATES, aggregate_ensemble
from rewardlab.rewards._checkpoint import CheckpointError, load_reward_model, save_reward_model
from rewardlab.rewards._config import RewardNetConfig
from rewardlab.rewards._function import FunctionReward
from rewardlab.rewards._model import RewardModel, RewardParams
from rewardlab.rewards._normalizer import RunningStats
from rewardlab.rewards._regret_model import ContinuousRegretModel, ContinuousRegretParams
from rewardlab.rewards._reward_fn import REWARD_METHODS, ModelRewardFn, as_reward_fn, bucket_size
from rewardlab.rewards._spaces import is_image_space, space_from_dict, space_to_dict

__all__ = [
    "ENSEMBLE_AGGREGATES",
    "REWARD_METHODS",
    "CheckpointError",
    "ContinuousRegretModel",
    "ContinuousRegretParams",
    "FunctionReward",
    "ModelRewardFn",
    "RewardModel",
    "RewardModelLike",
    "RewardNetConfig",
    "RewardParams",
    "RunningStats",
    "aggregate_ensemble",
    "as_reward_fn",
    "bucket_size",
    "is_image_space",
    "load_reward_model",
    "save_reward_model",
    "space_from_dict",
    "space_to_dict",
]
