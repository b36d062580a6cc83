"""Distances between reward functions: EPIC, DARD, STARC.

Exact versions over tabular rewards (``[S, A, S']``, ``[S, A]`` or ``[S]``) on finite MDPs.
"""

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
    "as_transition_reward",
    "dard_canonicalize",
    "dard_distance",
    "epic_canonicalize",
    "epic_distance",
    "lp_distance",
    "minimal_canonicalize",
    "pearson_distance",
    "starc_canonicalize",
    "starc_distance",
    "value_canonicalize",
]
