"""Running mean/variance of observation inputs (pure functions over an explicit state)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rewardlab._checks import as_numeric_array, check_finite_array
from rewardlab.rewards._spaces import Leaf, get_leaf

NORMALIZE_CLIP = 5.0  # normalised inputs are clipped to ±5
NORMALIZE_EPSILON = 1e-8


class RunningStats(NamedTuple):
    """Running statistics of the normalised observation leaves (non-image Box leaves only).

    ``mean`` and ``var`` mirror the observation: an array for a plain Box space, a (nested)
    dict holding only the normalised keys for a Dict space, an empty dict when nothing is
    normalised (e.g. image observations, which are scaled by 1/255 instead).
    """

    mean: Any  # [*leaf_shape] float32 per normalised leaf: running mean μ
    var: Any  # [*leaf_shape] float32 per normalised leaf: running population variance σ²
    count: Any  # [] float32: number of observations merged so far


def _set_leaf(tree: dict, path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


def _build(leaves: tuple[Leaf, ...], make: Any) -> Any:
    normalized = [leaf for leaf in leaves if leaf.normalize]
    if len(normalized) == 1 and normalized[0].path == ():
        return make(normalized[0])
    tree: dict = {}
    for leaf in normalized:
        _set_leaf(tree, leaf.path, make(leaf))
    return tree


def init_running_stats(leaves: tuple[Leaf, ...]) -> RunningStats:
    """μ = 0, σ² = 1, count = 0: normalisation is the identity (before clipping) until data arrive."""
    mean = _build(leaves, lambda leaf: jnp.zeros(leaf.shape, jnp.float32))
    var = _build(leaves, lambda leaf: jnp.ones(leaf.shape, jnp.float32))
    return RunningStats(mean, var, jnp.zeros((), jnp.float32))


def stats_get(stats_tree: Any, leaf: Leaf) -> jax.Array:
    """The statistic of ``leaf`` inside ``mean`` or ``var``."""
    return stats_tree if leaf.path == () else get_leaf(stats_tree, leaf.path)


def update_running_stats(stats: RunningStats, leaves: tuple[Leaf, ...], obs: Any) -> RunningStats:
    """Merge a batch of N observations (Chan et al., 1979, parallel variance).

    With batch mean m, population variance v and n = N samples, and δ = m − μ:
    μ' = μ + δ n / (c + n), σ²' = (c σ² + n v + δ² c n / (c + n)) / (c + n), c' = c + n.

    Raises:
        TypeError: a non-numeric host batch (names the leaf, e.g. ``obs['pos']``).
        rewardlab.NonFiniteError: a host batch holds NaN or ±inf (checked outside ``jit`` only).
    """
    n = None
    updates_mean: dict = {}
    updates_var: dict = {}
    count = stats.count
    for leaf in leaves:
        if not leaf.normalize:
            continue
        x = get_leaf(obs, leaf.path)
        if isinstance(x, jax.core.Tracer):  # under jit
            x = jnp.asarray(x, jnp.float32)
            n = x.shape[0]
            batch_mean, batch_var = jnp.mean(x, axis=0), jnp.var(x, axis=0)
        else:
            # Batch moments on the host, in float64: host batches of ever-changing N would make
            # jnp.mean/jnp.var compile once per N. One NaN or ±inf would poison μ and σ² for good.
            x = as_numeric_array(leaf.describe("obs"), x)
            check_finite_array(leaf.describe("obs"), x)
            x = x.astype(np.float32, copy=False)
            n = x.shape[0]
            batch_mean = x.mean(axis=0, dtype=np.float64).astype(np.float32)
            batch_var = x.var(axis=0, dtype=np.float64).astype(np.float32)
        mean, var = stats_get(stats.mean, leaf), stats_get(stats.var, leaf)
        total = count + n
        delta = batch_mean - mean
        new_mean = mean + delta * (n / total)
        new_var = (var * count + batch_var * n + jnp.square(delta) * (count * n / total)) / total
        updates_mean[leaf.path] = new_mean
        updates_var[leaf.path] = new_var
    if n is None:
        # Nothing is normalised; still count the observations.
        first = jax.tree.leaves(obs)[0]
        return stats._replace(count=count + first.shape[0])
    mean = _build(leaves, lambda leaf: updates_mean[leaf.path])
    var = _build(leaves, lambda leaf: updates_var[leaf.path])
    return RunningStats(mean, var, count + n)


def normalize_leaf(stats: RunningStats, leaf: Leaf, features: jax.Array) -> jax.Array:
    """clip((x − μ) / sqrt(σ² + ε), −5, 5) on flattened features [N, F]."""
    mean = jnp.reshape(stats_get(stats.mean, leaf), (1, -1))
    var = jnp.reshape(stats_get(stats.var, leaf), (1, -1))
    return jnp.clip((features - mean) / jnp.sqrt(var + NORMALIZE_EPSILON), -NORMALIZE_CLIP, NORMALIZE_CLIP)
