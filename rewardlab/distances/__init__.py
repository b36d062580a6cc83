"""Distances between reward functions: EPIC, DARD, STARC.

Exact versions over tabular rewards (``[S, A, S']``, ``[S, A]`` or ``[S]``) on finite MDPs;
sample-based EPIC for any ``RewardFn`` (one jitted program for ``as_reward_fn`` of a reward
model), sample-based DARD for pure JAX rewards with a dynamics sampler, sample-based STARC (value
canonicalisation, V^π by LSTD), all with confidence intervals over seeds.
"""

from rewardlab.distances._matrix import DISTANCES, distance_matrix, plot_distance_matrix
from rewardlab.distances._sample import (
    SampleDistance,
    canonicalizer,
    confidence_interval,
    pure_reward,
    sample_epic_canonicalize,
    sample_epic_distance,
)
from rewardlab.distances._sample_dard import sample_dard_distance
from rewardlab.distances._sample_starc import lstd_values, random_fourier_features, sample_starc_distance
from rewardlab.distances._tabular import (
    CANONICALIZATIONS,
    as_transition_reward,
    dard_canonicalize,
    dard_distance,
    epic_canonicalize,
    epic_distance,
    lp_distance,
    minimal_canonicalize,
    pearson_distance,
    starc_canonicalize,
    starc_distance,
    value_canonicalize,
)

__all__ = [
    "CANONICALIZATIONS",
    "DISTANCES",
    "SampleDistance",
    "canonicalizer",
    "confidence_interval",
    "pure_reward",
    "lstd_values",
    "random_fourier_features",
    "sample_dard_distance",
    "sample_epic_canonicalize",
    "sample_epic_distance",
    "sample_starc_distance",
    "as_transition_reward",
    "dard_canonicalize",
    "dard_distance",
    "distance_matrix",
    "epic_canonicalize",
    "epic_distance",
    "lp_distance",
    "minimal_canonicalize",
    "pearson_distance",
    "plot_distance_matrix",
    "starc_canonicalize",
    "starc_distance",
    "value_canonicalize",
]
