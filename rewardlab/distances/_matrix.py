"""All pairwise distances between K tabular rewards in one jitted call, and a heatmap of them.

Each reward is canonicalised once (``vmap`` over K) and turned into a vector whose pairwise
Euclidean distances give the reward distance:

* EPIC/DARD: x = √w ⊙ (C(R) − E_w C(R)), standardised to ‖x‖ = 1, so that
  Σ w (Ĉ_i − Ĉ_j)² = ‖x_i − x_j‖² = 2(1 − ρ_ij) and D_ij = ‖x_i − x_j‖/2. For rewards that
  do not depend on s' (``[K, S]`` or ``[K, S, A]``) under the product coverage
  D_S × D_A × D_S, C(R)(s,a,s') = f(s,a) + g(s') splits into independent parts and x is
  their concatenation: O(S·A) per reward instead of O(S²·A).
* STARC: x = s(R) = c(R)/n(c(R)) and D_ij = m(x_i, x_j).

Pairs are computed exactly from differences when K²·F is small, else (L2 only) from the Gram
matrix X Xᵀ, one matmul, with round-off of order sqrt(machine epsilon) near zero.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rewardlab.distances._common import (
    check_discount,
    check_distribution,
    check_table,
    check_weights,
    norm_order,
    roundoff_tolerance,
    snap_zero,
    standardize,
    unit_scale,
)
from rewardlab.distances._tabular import (
    CANONICALIZATIONS,
    dard_canonicalize,
    epic_canonicalize,
    starc_canonicalize,
)
from rewardlab.tabular import expand_reward

Array = Any

DISTANCES = ("epic", "dard", "starc")
"""The distances of ``distance_matrix``."""
_EXACT_PAIR_LIMIT = 1 << 27  # K²·F elements: beyond this, L2 pairs come from the Gram matrix


def _pairwise(features: jax.Array, order: float) -> jax.Array:
    """[K, K] L_order distances between the rows of ``features`` [K, F]."""
    num, size = features.shape
    if order == 2 and num * num * size > _EXACT_PAIR_LIMIT:
        squared = jnp.sum(features * features, axis=1)
        gram = features @ features.T
        distances = jnp.sqrt(jnp.maximum(squared[:, None] + squared[None, :] - 2.0 * gram, 0.0))
        return distances * (1.0 - jnp.eye(num, dtype=distances.dtype))
    return jax.lax.map(lambda row: jnp.linalg.norm(features - row, ord=order, axis=1), features)


def _unit_rows(features: jax.Array) -> tuple[jax.Array, jax.Array]:
    norms = jnp.linalg.norm(features, axis=1, keepdims=True)
    degenerate = norms[:, 0] <= 0.0
    return features / jnp.where(norms > 0.0, norms, 1.0), degenerate


def _pearson_matrix(features: jax.Array) -> jax.Array:
    """D_ij = ‖x̂_i − x̂_j‖/2 with the conventions of :func:`pearson_distance` for zero variance."""
    unit, degenerate = _unit_rows(features)
    distances = jnp.clip(0.5 * _pairwise(unit, 2), 0.0, 1.0)
    both, either = degenerate[:, None] & degenerate[None, :], degenerate[:, None] | degenerate[None, :]
    return jnp.where(both, 0.0, jnp.where(either, jnp.sqrt(0.5), distances))


def _weighted_centred(values: jax.Array, weights: jax.Array) -> jax.Array:
    """√w ⊙ (v − E_w v), flattened, for one reward."""
    weights = weights / jnp.sum(weights)
    return jnp.ravel(jnp.sqrt(weights) * (values - jnp.sum(weights * values)))


@functools.partial(jax.jit, static_argnames=("split",))
def _epic_matrix(
    rewards: jax.Array,
    discount: Array,
    state_dist: jax.Array,
    action_dist: jax.Array,
    coverage: jax.Array | None,
    split: bool,
) -> jax.Array:
    if split:
        # rewards [K, S, A]: C = f(s, a) + g(s') with f = R − m(s), g = γ m(s')
        def split_features(reward: jax.Array) -> jax.Array:
            mean_out = reward @ action_dist
            f = reward - mean_out[:, None]
            f_part = _weighted_centred(f, state_dist[:, None] * action_dist[None, :])
            g_part = _weighted_centred(discount * mean_out, state_dist)
            x = jnp.concatenate([f_part, g_part])
            return jnp.where(jnp.max(jnp.abs(x)) <= roundoff_tolerance(x, reward), 0.0, x)

        return _pearson_matrix(jax.vmap(split_features)(rewards))

    assert coverage is not None  # only the split form runs without a coverage

    def features(reward: jax.Array) -> jax.Array:
        canonical = snap_zero(epic_canonicalize(reward, discount, state_dist, action_dist), reward)
        return _weighted_centred(canonical, coverage)

    return _pearson_matrix(jax.vmap(features)(rewards))


@jax.jit
def _dard_matrix(
    rewards: jax.Array, transitions: jax.Array, discount: Array, action_dist: jax.Array, coverage: jax.Array
) -> jax.Array:
    def features(reward: jax.Array) -> jax.Array:
        canonical = snap_zero(dard_canonicalize(reward, transitions, discount, action_dist), reward)
        return _weighted_centred(canonical, coverage)

    return _pearson_matrix(jax.vmap(features)(rewards))


@functools.partial(jax.jit, static_argnames=("canonicalization", "norm_order", "metric_order"))
def _starc_matrix(
    rewards: jax.Array,
    transitions: jax.Array,
    discount: Array,
    policy: jax.Array,
    canonicalization: str,
    norm_order: float,
    metric_order: float,
) -> jax.Array:
    def features(reward: jax.Array) -> jax.Array:
        canonical = starc_canonicalize(reward, transitions, discount, canonicalization=canonicalization, policy=policy)
        return jnp.ravel(standardize(canonical, norm_order, reward))

    return _pairwise(jax.vmap(features)(rewards), metric_order)


def distance_matrix(
    rewards: Array,
    discount: float,
    *,
    distance: str = "epic",
    transitions: Array | None = None,
    state_dist: Array | None = None,
    action_dist: Array | None = None,
    coverage: Array | None = None,
    canonicalization: str = "value",
    norm: Any = 2,
    metric: Any = 2,
    policy: Array | None = None,
) -> jax.Array:
    """``[K, K]`` distances between K tabular rewards, all pairs in one jitted, batched call.

    Entry (i, j) equals ``epic_distance`` / ``dard_distance`` / ``starc_distance`` of rewards
    i and j with the same arguments (module docstring for how).

    Args:
        rewards: ``[K, S]``, ``[K, S, A]`` or ``[K, S, A, S']``.
        discount: γ.
        distance: ``"epic"``, ``"dard"`` or ``"starc"``.
        transitions: ``[S, A, S']``; required for DARD, STARC and ``[K, S]`` rewards.
        state_dist: as in :func:`epic_distance` (EPIC, DARD).
        action_dist: as in :func:`epic_distance` (EPIC, DARD).
        coverage: as in :func:`epic_distance` (EPIC, DARD).
        canonicalization: as in :func:`starc_distance` (STARC).
        norm: as in :func:`starc_distance` (STARC).
        metric: as in :func:`starc_distance` (STARC).
        policy: as in :func:`starc_distance` (STARC).

    Returns:
        ``[K, K]`` symmetric matrix with a zero diagonal.

    Raises:
        ValueError: unknown distance, bad shapes, missing transitions, γ outside [0, 1], a
            negative or all-zero distribution, coverage or policy, NaN or ±inf in any array
            (``rewardlab.NonFiniteError``, named after the argument).
        TypeError: a non-numeric array or γ.

    Example:
        >>> import rewardlab_envs
        >>> mdp = rewardlab_envs.random_mdp(5, 2, seed=0)
        >>> rewards = jnp.stack([mdp.reward, 2.0 * mdp.reward, -mdp.reward])
        >>> jnp.round(distance_matrix(rewards, 0.9), 3).tolist()
        [[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]]
    """
    if distance not in DISTANCES:
        raise ValueError(f"distance: expected one of {DISTANCES}, got {distance!r}")
    discount = check_discount(discount)
    rewards = jnp.asarray(check_table("rewards", rewards), dtype=jnp.result_type(float))
    if rewards.ndim not in (2, 3, 4) or rewards.shape[0] < 1:
        raise ValueError(f"rewards: expected shape [K, S], [K, S, A] or [K, S, A, S], got {rewards.shape}")
    if transitions is not None:
        transitions = jnp.asarray(check_table("transitions", transitions))
        if transitions.ndim != 3 or transitions.shape[0] != transitions.shape[2]:
            raise ValueError(f"transitions: expected shape [S, A, S], got {transitions.shape}")
    elif distance != "epic" or rewards.ndim == 2:
        raise ValueError(f"transitions: required for distance={distance!r} and for [K, S] rewards, got None")
    if rewards.ndim == 2:
        assert transitions is not None  # required for [K, S] rewards (checked above)
        rewards = jnp.broadcast_to(rewards[:, :, None], rewards.shape + (transitions.shape[1],))
    num_states, num_actions = rewards.shape[1], rewards.shape[2]
    if transitions is not None and transitions.shape[:2] != (num_states, num_actions):
        raise ValueError(f"rewards: expected [K, S, A(, S)] with S, A = {transitions.shape[:2]}, got {rewards.shape}")
    if rewards.ndim == 4 and rewards.shape[3] != num_states:
        raise ValueError(f"rewards: expected shape [K, S, A, S], got {rewards.shape}")
    rewards = jax.vmap(unit_scale)(rewards)  # each reward at unit size: exact, and no float32 overflow
    if distance == "starc":
        if canonicalization not in CANONICALIZATIONS:
            raise ValueError(f"canonicalization: expected one of {CANONICALIZATIONS}, got {canonicalization!r}")
        if policy is None:
            policy = jnp.full((num_states, num_actions), 1.0 / num_actions)
        else:
            policy = check_weights("policy", policy, (num_states, num_actions))
        full = rewards if rewards.ndim == 4 else jax.vmap(lambda r: expand_reward(r, transitions))(rewards)
        return _starc_matrix(
            full,
            transitions,
            discount,
            jnp.asarray(policy),
            canonicalization,
            norm_order("norm", norm),
            norm_order("metric", metric),
        )
    action_dist = check_distribution("action_dist", action_dist, num_actions)
    full_shape = (num_states, num_actions, num_states)
    if coverage is not None:
        coverage = check_weights("coverage", coverage, full_shape)
    if distance == "dard":
        assert transitions is not None  # required for distance="dard" (checked above)
        if coverage is None:
            coverage = action_dist[None, :, None] * transitions / num_states
        full = rewards if rewards.ndim == 4 else jax.vmap(lambda r: expand_reward(r, transitions))(rewards)
        return _dard_matrix(full, transitions, discount, action_dist, coverage)
    state_dist = check_distribution("state_dist", state_dist, num_states)
    if rewards.ndim == 3 and coverage is None:
        return _epic_matrix(rewards, discount, state_dist, action_dist, None, split=True)
    if coverage is None:
        coverage = state_dist[:, None, None] * action_dist[None, :, None] * state_dist[None, None, :]
    full = rewards if rewards.ndim == 4 else jnp.broadcast_to(rewards[..., None], rewards.shape + (num_states,))
    return _epic_matrix(full, discount, state_dist, action_dist, coverage, split=False)


def plot_distance_matrix(
    matrix: Array, labels: list[str] | None = None, *, title: str = "", ax: Any = None, path: str | None = None
) -> Any:
    """A heatmap of a distance matrix with its values written in the cells (K ≤ 20).

    Args:
        matrix: ``[K, K]`` distances.
        labels: K names of the rewards.
        title: axes title.
        ax: matplotlib axes to draw into (a new figure when None).
        path: write the figure there (PNG/SVG/PDF by suffix), atomically.

    Returns:
        The matplotlib ``Figure``.

    Example:
        >>> fig = plot_distance_matrix(np.array([[0.0, 0.4], [0.4, 0.0]]), ["a", "b"])
        >>> type(fig).__name__
        'Figure'
    """

    import matplotlib

    matrix = np.asarray(matrix, np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"matrix: expected a square [K, K] array, got shape {matrix.shape}")
    num = matrix.shape[0]
    if labels is not None and len(labels) != num:
        raise ValueError(f"labels: expected {num} names, got {len(labels)}")
    if ax is None:
        from matplotlib.figure import Figure

        figure = Figure(figsize=(1.0 + 0.6 * num, 0.6 + 0.6 * num))
        ax = figure.add_subplot()
    else:
        figure = ax.figure
    image = ax.imshow(matrix, cmap=matplotlib.colormaps["viridis"], vmin=0.0)
    figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    names = labels if labels is not None else [str(i) for i in range(num)]
    ax.set_xticks(range(num), names, rotation=45, ha="right")
    ax.set_yticks(range(num), names)
    if num <= 20:
        threshold = 0.5 * np.nanmax(matrix) if np.isfinite(matrix).any() else 0.0
        for i in range(num):
            for j in range(num):
                ax.text(
                    j,
                    i,
                    f"{matrix[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="black" if matrix[i, j] > threshold else "white",
                )
    if title:
        ax.set_title(title)
    figure.tight_layout()
    if path is not None:
        from rewardlab._io import atomic_write_figure

        atomic_write_figure(path, figure, dpi=120)
    return figure
