"""rewardlab: learning and shaping rewards for classical RL agents, in JAX."""

from rewardlab._checks import NonFiniteError
from rewardlab._types import FragmentPairs, Preferences, RewardFn, RewardModelLike, Trajectory, Transitions

__version__ = "0.1.0"

__all__ = [
    "FragmentPairs",
    "NonFiniteError",
    "Preferences",
    "RewardFn",
    "RewardModelLike",
    "Trajectory",
    "Transitions",
    "__version__",
]
