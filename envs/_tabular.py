"""Finite MDPs as dense arrays, for exact planning and tabular reward learning.

A :class:`TabularMDP` holds everything an exact planner needs: the transition
tensor T(s, a, s'), the reward r(s, a, s') and (where the reward is linear in
named features) the feature tensor φ(s, a, s') with r = φ·w. Terminal states are
absorbing: T(s, a, s) = 1 and r(s, a, s) = 0 for every action, so the Bellman
backup V(s) = max_a Σ_s' T(s,a,s') [r(s,a,s') + γ V(s')] gives V(terminal) = 0
without special cases.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import numpy as np

Array = Any  # np.ndarray | jax.Array

_ROW_SUM_TOLERANCE = 1e-5


class FeatureNames(tuple):
    """A tuple of feature names that JAX treats as static structure, not as leaves.

    Registered as a pytree node with no children, so a :class:`TabularMDP` can be
    passed whole through ``jax.jit``/``jax.vmap``/``jax.tree.map``: the names ride
    along in the tree definition instead of becoming (invalid) string leaves.

    Example:
        >>> import jax
        >>> jax.tree.leaves(FeatureNames(("gas", "goal")))
        []
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"FeatureNames({tuple(self)!r})"


jax.tree_util.register_pytree_node(
    FeatureNames,
    lambda names: ((), tuple(names)),
    lambda names, _: FeatureNames(names),
)


class TabularMDP(NamedTuple):
    """A finite MDP with S states, A actions and (optionally) K reward features.

    Off-support entries (T(s,a,s') = 0) of ``reward`` and ``features`` are zero for
    the delivery domain and random draws for :func:`random_mdp`; planners never read
    them, canonicalising distances (EPIC, STARC) that sample S' independently do.
    """

    transitions: Array  # [S, A, S'] float32 T(s, a, s'); rows sum to 1
    reward: Array  # [S, A, S'] float32 r(s, a, s'); 0 when s is terminal
    features: Array | None  # [S, A, S', K] float32 φ(s, a, s') with reward = φ·true_weights, or None
    initial_state_dist: Array  # [S] float32 d0(s); sums to 1, 0 on terminal states
    terminal: Array  # [S] bool: absorbing, zero-reward states
    discount: float  # γ in [0, 1]
    feature_names: FeatureNames  # [K] names of the features (empty when features is None)
    true_weights: Array | None  # [K] float32 w with reward = φ·w, or None

    @property
    def num_states(self) -> int:
        """S, the number of states."""
        return int(self.transitions.shape[0])

    @property
    def num_actions(self) -> int:
        """A, the number of actions."""
        return int(self.transitions.shape[1])


def validate_tabular_mdp(mdp: TabularMDP, *, atol: float = _ROW_SUM_TOLERANCE) -> None:
    """Check shapes, dtypes and the invariants every :class:`TabularMDP` must satisfy.

    Checks: T is ``float32 [S, A, S]`` with non-negative rows summing to 1; r is
    ``float32 [S, A, S]``; terminal states are absorbing (T(s,a,s) = 1) with zero
    reward and zero features; d0 is a distribution over non-terminal states; γ ∈ [0, 1];
    when features are given, ``reward == features @ true_weights`` (within ``atol``
    times the reward scale).

    Args:
        mdp: the MDP to check.
        atol: absolute tolerance for the row sums and the reward identity.

    Raises:
        ValueError: naming the offending field, the expected and the actual value.

    Example:
        >>> validate_tabular_mdp(random_mdp(5, 2, seed=0, branching=2))
    """
    transitions = np.asarray(mdp.transitions)
    if transitions.ndim != 3 or transitions.shape[0] != transitions.shape[2]:
        raise ValueError(f"transitions: expected shape [S, A, S], got {transitions.shape}")
    if transitions.dtype != np.float32:
        raise ValueError(f"transitions: expected dtype float32, got {transitions.dtype}")
    num_states = transitions.shape[0]
    if np.any(transitions < 0):
        raise ValueError("transitions: expected non-negative probabilities, got negative entries")
    row_error = float(np.max(np.abs(transitions.sum(-1) - 1.0)))
    if row_error > atol:
        raise ValueError(f"transitions: expected rows summing to 1 (atol {atol}), got max deviation {row_error:.3g}")
    reward = np.asarray(mdp.reward)
    if reward.shape != transitions.shape or reward.dtype != np.float32:
        raise ValueError(f"reward: expected float32 {transitions.shape}, got {reward.dtype} {reward.shape}")
    terminal = np.asarray(mdp.terminal)
    if terminal.shape != (num_states,) or terminal.dtype != np.bool_:
        raise ValueError(f"terminal: expected bool ({num_states},), got {terminal.dtype} {terminal.shape}")
    term_idx = np.flatnonzero(terminal)
    if term_idx.size:
        stay = transitions[term_idx, :, term_idx]  # [n_terminal, A]
        if not np.allclose(stay, 1.0, atol=atol):
            raise ValueError(f"transitions: terminal states {term_idx.tolist()[:5]} must be absorbing (T(s,a,s) = 1)")
        if np.any(reward[term_idx] != 0):
            raise ValueError("reward: expected zero reward out of terminal states, got non-zero entries")
    d0 = np.asarray(mdp.initial_state_dist)
    if d0.shape != (num_states,) or d0.dtype != np.float32:
        raise ValueError(f"initial_state_dist: expected float32 ({num_states},), got {d0.dtype} {d0.shape}")
    if np.any(d0 < 0) or abs(float(d0.sum()) - 1.0) > atol:
        raise ValueError(f"initial_state_dist: expected a distribution, got sum {float(d0.sum()):.6g}")
    if np.any(d0[term_idx] > 0):
        raise ValueError("initial_state_dist: expected zero mass on terminal states")
    if not 0.0 <= float(mdp.discount) <= 1.0:
        raise ValueError(f"discount: expected a value in [0, 1], got {mdp.discount!r}")
    if not isinstance(mdp.feature_names, FeatureNames):
        raise ValueError(f"feature_names: expected FeatureNames, got {type(mdp.feature_names).__name__}")
    if mdp.features is None:
        if mdp.true_weights is not None or len(mdp.feature_names):
            raise ValueError("features: None, but true_weights or feature_names are set")
        return
    features = np.asarray(mdp.features)
    if features.ndim != 4 or features.shape[:3] != transitions.shape or features.dtype != np.float32:
        raise ValueError(
            f"features: expected float32 {transitions.shape + ('K',)}, got {features.dtype} {features.shape}"
        )
    num_features = features.shape[-1]
    if len(mdp.feature_names) != num_features:
        raise ValueError(f"feature_names: expected {num_features} names, got {len(mdp.feature_names)}")
    if mdp.true_weights is None or np.shape(mdp.true_weights) != (num_features,):
        raise ValueError(
            f"true_weights: expected shape ({num_features},), got {np.shape(np.asarray(mdp.true_weights))}"
        )
    if term_idx.size and np.any(features[term_idx] != 0):
        raise ValueError("features: expected zero features out of terminal states, got non-zero entries")
    recombined = features @ np.asarray(mdp.true_weights, dtype=np.float32)
    scale = max(1.0, float(np.abs(reward).max()))
    if not np.allclose(recombined, reward, atol=atol * scale, rtol=0):
        raise ValueError("reward: expected reward == features @ true_weights, got a mismatch")


def random_mdp(
    num_states: int,
    num_actions: int,
    seed: int,
    *,
    branching: int = 4,
    num_features: int | None = None,
    num_terminal: int = 0,
    reward_scale: float = 1.0,
    discount: float = 0.99,
) -> TabularMDP:
    """A random finite MDP with sparse stochastic transitions and Gaussian rewards.

    For every (s, a) the successors are ``branching`` distinct states drawn uniformly
    without replacement, with probabilities p ~ Dirichlet(1, …, 1); this is the
    "Garnet" construction (Archibald et al. 1995; Bhatnagar et al. 2009). Rewards are
    r(s, a, s') = reward_scale · ε with ε ~ N(0, 1) drawn densely (off-support entries
    included). With ``num_features = K`` the reward is linear instead:
    φ(s, a, s') ~ N(0, I_K), w ~ N(0, I_K)/√K, r = reward_scale · φ·w (memory
    S²·A·K·4 bytes: mind it for S = 1000). ``num_terminal`` states (the last ones)
    are absorbing with zero reward; d0 is uniform over the others.

    Args:
        num_states: S ≥ 1.
        num_actions: A ≥ 1.
        seed: seed of the NumPy generator; equal seeds give equal MDPs.
        branching: successors per (s, a), 1 ≤ branching ≤ S.
        num_features: K ≥ 1 for a linear reward with features, or None.
        num_terminal: number of absorbing states, 0 ≤ num_terminal < S.
        reward_scale: standard deviation of the reward, > 0.
        discount: γ in [0, 1].

    Returns:
        A :class:`TabularMDP`.

    Raises:
        ValueError: for an argument out of range.

    References:
        Archibald, McKinnon and Thomas, "On the generation of Markov decision
        processes", J. Operational Research Society, 1995.

    Example:
        >>> mdp = random_mdp(1000, 4, seed=0, branching=5)
        >>> mdp.transitions.shape, int((mdp.transitions[0, 0] > 0).sum())
        ((1000, 4, 1000), 5)
    """
    for name, value, low in (("num_states", num_states, 1), ("num_actions", num_actions, 1)):
        if int(value) != value or value < low:
            raise ValueError(f"{name}: expected an integer >= {low}, got {value!r}")
    if int(branching) != branching or not 1 <= branching <= num_states:
        raise ValueError(f"branching: expected an integer in [1, num_states={num_states}], got {branching!r}")
    if num_features is not None and (int(num_features) != num_features or num_features < 1):
        raise ValueError(f"num_features: expected None or an integer >= 1, got {num_features!r}")
    if int(num_terminal) != num_terminal or not 0 <= num_terminal < num_states:
        raise ValueError(f"num_terminal: expected an integer in [0, num_states={num_states}), got {num_terminal!r}")
    if not reward_scale > 0:
        raise ValueError(f"reward_scale: expected a value > 0, got {reward_scale!r}")
    if not 0.0 <= discount <= 1.0:
        raise ValueError(f"discount: expected a value in [0, 1], got {discount!r}")
    rng = np.random.default_rng(seed)
    num_sa = num_states * num_actions
    # Sampling without replacement for every (s, a) at once: the `branching`
    # smallest of S uniform keys are a uniform random subset.
    keys = rng.random((num_sa, num_states), dtype=np.float32)
    successors = np.argpartition(keys, branching - 1, axis=1)[:, :branching]
    probs = rng.gamma(1.0, size=(num_sa, branching))
    probs /= probs.sum(axis=1, keepdims=True)
    transitions: np.ndarray = np.zeros((num_sa, num_states), dtype=np.float64)
    np.put_along_axis(transitions, successors, probs, axis=1)
    transitions = transitions.reshape(num_states, num_actions, num_states)
    terminal = np.zeros(num_states, dtype=bool)
    terminal[num_states - num_terminal :] = True
    transitions[terminal] = 0.0
    term_idx = np.flatnonzero(terminal)
    transitions[term_idx, :, term_idx] = 1.0
    transitions = transitions.astype(np.float32)
    transitions /= transitions.sum(axis=-1, keepdims=True)

    if num_features is None:
        reward = (reward_scale * rng.standard_normal((num_states, num_actions, num_states))).astype(np.float32)
        features, weights, names = None, None, FeatureNames(())
        reward[terminal] = 0.0
    else:
        features = rng.standard_normal((num_states, num_actions, num_states, num_features), dtype=np.float32)
        features[terminal] = 0.0
        weights = (reward_scale * rng.standard_normal(num_features) / np.sqrt(num_features)).astype(np.float32)
        reward = (features @ weights).astype(np.float32)
        names = FeatureNames(f"feature_{k}" for k in range(num_features))
    d0 = (~terminal).astype(np.float32)
    d0 /= d0.sum()
    return TabularMDP(
        transitions=transitions,
        reward=reward,
        features=features,
        initial_state_dist=d0,
        terminal=terminal,
        discount=float(discount),
        feature_names=names,
        true_weights=weights,
    )
