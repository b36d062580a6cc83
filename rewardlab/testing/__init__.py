"""Slow NumPy references that the JAX implementations are tested against."""

from rewardlab.testing._numpy_bt import numpy_bradley_terry_probability, numpy_preference_loss, numpy_segment_return
from rewardlab.testing._numpy_irl import numpy_mce_occupancy_gradient
from rewardlab.testing._numpy_reward import (
    numpy_activation,
    numpy_mlp_forward,
    numpy_normalize,
    numpy_running_moments,
    numpy_shaped_reward,
)

__all__ = [
    "numpy_activation",
    "numpy_bradley_terry_probability",
    "numpy_mce_occupancy_gradient",
    "numpy_mlp_forward",
    "numpy_normalize",
    "numpy_preference_loss",
    "numpy_running_moments",
    "numpy_segment_return",
    "numpy_shaped_reward",
]
