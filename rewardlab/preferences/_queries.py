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

from rewardlab._types import FragmentPairs
from rewardlab.preferences._cache import cached
from rewardlab.preferences._bradley_terry import check_fragment_pairs, preference_probabilities

QUERY_METHODS = ("uniform", "disagreement", "entropy")
_CHUNK_PAIRS = 128  # candidates scored per jitted call: bounds memory, one compilation per model


def disagreement_score(probabilities: jax.Array) -> jax.Array:
    """Var_e[P_e] over the ensemble axis: ``[E, B] -> [B]``."""
    return jnp.var(probabilities, axis=0)


def entropy_score(probabilities: jax.Array) -> jax.Array:
    """Binary entropy (nats) of the ensemble-mean probability: ``[E, B] -> [B]``."""
    mean = jnp.clip(jnp.mean(probabilities, axis=0), 1e-7, 1 - 1e-7)
    return -(mean * jnp.log(mean) + (1 - mean) * jnp.log1p(-mean))


_SCORES = {"disagreement": disagreement_score, "entropy": entropy_score}


def _probability_fn(model: Any, preference_model: str, beta: float, discount: float | None) -> Any:
    def build() -> Any:
        return jax.jit(lambda params, pairs: preference_probabilities(model, params, pairs, preference_model=preference_model, beta=beta, discount=discount))

    return cached("probabilities", (model,), (preference_model, beta, discount), build)


def _pad_take(tree: Any, start: int, size: int, total: int) -> Any:
    index = np.minimum(np.arange(start, start + size), total - 1)
    return jax.tree.map(lambda x: np.asarray(x)[index], tree)


def ensemble_probabilities(
    model: Any,
    params: Any,
    pairs: FragmentPairs,
    *,
    preference_model: str = "partial_return",
    beta: float = 1.0,
    discount: float | None = None,
) -> np.ndarray:
    """P_e(σ¹ ≻ σ²) of every member on every pair, scored in fixed-size jitted chunks: ``[E, B]``."""
    num_pairs, _ = check_fragment_pairs(pairs, "candidates")
    fn = _probability_fn(model, preference_model, float(beta), discount)
    pieces = []
    for start in range(0, num_pairs, _CHUNK_PAIRS):
        chunk = FragmentPairs(*(None if f is None else _pad_take(f, start, _CHUNK_PAIRS, num_pairs) for f in pairs[:5]), None)
        pieces.append(np.asarray(fn(params, chunk)))
    return np.concatenate(pieces, axis=1)[:, :num_pairs]


def select_queries(
    model: Any,
    params: Any,
    candidates: FragmentPairs,
    num_queries: int,
    method: str,
    rng: np.random.Generator,
    *,
    preference_model: str = "partial_return",
    beta: float = 1.0,
    discount: float | None = None,
) -> FragmentPairs:
    """Choose ``num_queries`` pairs from ``candidates`` by ``method``.

    Args:
        model: reward model (ensemble) used to score candidates.
        params: its parameters.
        candidates: C candidate pairs.
        num_queries: pairs to return (at most C).
        method: ``"uniform"``, ``"disagreement"`` or ``"entropy"``.
        rng: numpy generator (uniform choice and tie breaking).
        preference_model, beta, discount: the preference model of ``preference_probabilities``.

    Returns:
        ``FragmentPairs`` of ``num_queries`` pairs, highest score first (host numpy arrays).

    Raises:
        ValueError: unknown ``method``, ``num_queries`` outside [1, C] or malformed candidates.

    Example:
        >>> import numpy as np
        >>> from rewardlab.preferences import synthetic_pairs
        >>> class Spread:  # two members that disagree on pairs with a large obs gap
        ...     def apply(self, params, obs, acts, next_obs, dones):
        ...         return obs[None, :, 0] * np.array([[1.0], [-1.0]])
        >>> candidates = synthetic_pairs(np.zeros((3, 2)))._replace(
        ...     obs=np.array([0.0, 0.0, 0.0, 2.0, 0.0, 0.5], np.float32).reshape(3, 2, 1, 1))
        >>> chosen = select_queries(Spread(), None, candidates, 1, "disagreement", np.random.default_rng(0))
        >>> chosen.obs[:, :, 0, 0]
        array([[0., 2.]], dtype=float32)
    """
    num_candidates, _ = check_fragment_pairs(candidates, "candidates")
    if method not in QUERY_METHODS:
        raise ValueError(f"method: expected one of {QUERY_METHODS}, got {method!r}")
    if not isinstance(num_queries, (int, np.integer)) or not 1 <= num_queries <= num_candidates:
        raise ValueError(f"num_queries: expected an integer in [1, {num_candidates}] (the number of candidates), got {num_queries!r}")
    if method == "uniform":
        chosen = rng.choice(num_candidates, size=num_queries, replace=False)
    else:
        probabilities = ensemble_probabilities(model, params, candidates, preference_model=preference_model, beta=beta, discount=discount)
        scores = np.asarray(_SCORES[method](probabilities))
        shuffled = rng.permutation(num_candidates)  # random tie breaking
        order = shuffled[np.argsort(-scores[shuffled], kind="stable")]
        chosen = order[:num_queries]
    return FragmentPairs(*(None if field is None else jax.tree.map(lambda x: np.asarray(x)[chosen], field) for field in candidates))
