"""Query selection: pick the most informative pairs from a larger candidate pool.

With member probabilities P_e = P_e(σ¹ ≻ σ²) of an ensemble of E reward models:

* ``uniform``: a uniformly random subset.
* ``disagreement``: the largest variance across members, Var_e[P_e] (Christiano et al.;
  B-Pref's "disagreement sampling").
* ``entropy``: the largest entropy of the mean prediction, H(P̄) = −P̄ log P̄ − (1−P̄) log(1−P̄).

Ties in the score are broken at random. With one member the disagreement is 0 for every
pair, so ``disagreement`` degrades to ``uniform``.

References:
    Christiano et al., "Deep reinforcement learning from human preferences", NeurIPS 2017.
    Lee et al., "B-Pref: Benchmarking preference-based reinforcement learning", NeurIPS 2021.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from rewardlab._types import FragmentPairs
from rewardlab.preferences._bradley_terry import check_fragment_pairs
from rewardlab.preferences._scoring import PairScorer

QUERY_METHODS = ("uniform", "disagreement", "entropy")
"""The selection rules of ``select_queries``."""


def disagreement_score(probabilities: ArrayLike) -> jax.Array:
    """Var_e[P_e] over the ensemble axis: ``[E, B] -> [B]``."""
    return jnp.var(probabilities, axis=0)


def entropy_score(probabilities: ArrayLike) -> jax.Array:
    """Binary entropy (nats) of the ensemble-mean probability: ``[E, B] -> [B]``."""
    mean = jnp.clip(jnp.mean(probabilities, axis=0), 1e-7, 1 - 1e-7)
    return -(mean * jnp.log(mean) + (1 - mean) * jnp.log1p(-mean))


_SCORES = {"disagreement": disagreement_score, "entropy": entropy_score}


def select_queries(
    scorer: PairScorer,
    params: Any,
    candidates: FragmentPairs,
    num_queries: int,
    method: str,
    rng: np.random.Generator,
) -> FragmentPairs:
    """Choose ``num_queries`` pairs from ``candidates`` by ``method``.

    Args:
        scorer: the reward model (ensemble) and preference model that score candidates, as a
            :class:`PairScorer` (keep it across rounds: its jitted scoring compiles once).
        params: the reward model's parameters.
        candidates: C candidate pairs.
        num_queries: pairs to return (at most C).
        method: ``"uniform"``, ``"disagreement"`` or ``"entropy"``.
        rng: numpy generator (uniform choice and tie breaking).

    Returns:
        ``FragmentPairs`` of ``num_queries`` pairs, highest score first (host numpy arrays).

    Raises:
        ValueError: unknown ``method``, ``num_queries`` outside [1, C] or malformed candidates.

    Example:
        >>> import numpy as np
        >>> from rewardlab.preferences import PairScorer, synthetic_pairs
        >>> class Spread:  # two members that disagree on pairs with a large obs gap
        ...     def apply(self, params, obs, acts, next_obs, dones):
        ...         return obs[None, :, 0] * np.array([[1.0], [-1.0]])
        >>> candidates = synthetic_pairs(np.zeros((3, 2)))._replace(
        ...     obs=np.array([0.0, 0.0, 0.0, 2.0, 0.0, 0.5], np.float32).reshape(3, 2, 1, 1))
        >>> chosen = select_queries(PairScorer(Spread()), None, candidates, 1, "disagreement", np.random.default_rng(0))
        >>> chosen.obs[:, :, 0, 0]
        array([[0., 2.]], dtype=float32)
    """
    num_candidates, _ = check_fragment_pairs(candidates, "candidates")
    if method not in QUERY_METHODS:
        raise ValueError(f"method: expected one of {QUERY_METHODS}, got {method!r}")
    if not isinstance(num_queries, (int, np.integer)) or not 1 <= num_queries <= num_candidates:
        raise ValueError(
            f"num_queries: expected an integer in [1, {num_candidates}] (the number of candidates), got {num_queries!r}"
        )
    if method == "uniform":
        chosen = rng.choice(num_candidates, size=num_queries, replace=False)
    else:
        probabilities = scorer.probabilities(params, candidates)
        scores = np.asarray(_SCORES[method](probabilities))
        shuffled = rng.permutation(num_candidates)  # random tie breaking
        order = shuffled[np.argsort(-scores[shuffled], kind="stable")]
        chosen = order[:num_queries]
    return FragmentPairs(
        *(None if field is None else jax.tree.map(lambda x: np.asarray(x)[chosen], field) for field in candidates)
    )
