"""Exact reward distances on finite MDPs: EPIC, DARD and STARC over dense ``[S, A, S']`` rewards.

Every distance is a pure JAX function of one pair of rewards (batch with ``jax.vmap``;
:func:`rewardlab.distances.distance_matrix` does all pairs at once). Rewards may be
``[S, A, S']`` r(s, a, s'), ``[S, A]`` r(s, a) or ``[S]`` r(s); the last two are broadcast
by :func:`rewardlab.tabular.expand_reward`.

Canonicalisations (each maps every reward in an equivalence class to one representative):

* EPIC (Gleave et al. 2021), S, S' ~ D_S and A ~ D_A independent:
  C(R)(s,a,s') = R(s,a,s') + γ E[R(s',A,S')] − E[R(s,A,S')] − γ E[R(S,A,S')].
  Kernel: potential shaping (and constants).
* DARD (Wulfe et al. 2022), A ~ D_A, S' ~ T(s, A), S'' ~ T(s', A):
  C(R)(s,a,s') = R(s,a,s') + E[γ R(s',A,S'') − R(s,A,S') − γ R(S',A,S'')].
* Value (STARC's C_VAL, Skalse et al. 2024) under a fixed policy π:
  C(R)(s,a) = E_{S'~T(s,a)}[R(s,a,S') + γ V^π(S') − V^π(s)], V^π from
  :func:`rewardlab.tabular.policy_evaluation`. Kernel: potential shaping and
  S'-redistribution (changes of R that keep E_{S'~T(s,a)} R(s,a,S') fixed).
* Minimal (STARC): the L2-smallest reward in the same class, r(s,a) + γ (TΦ*)(s,a) − Φ*(s)
  with Φ* the least-squares potential. The paper minimises a norm over r(s, a, s'); here the
  representative is taken over the expected reward r(s, a) = E_{S'} R(s, a, S'), which
  quotients out S'-redistribution first and has the same kernel.

References:
    Gleave et al., "Quantifying Differences in Reward Functions", ICLR 2021 (EPIC).
    Wulfe et al., "Dynamics-Aware Comparison of Learned Reward Functions", ICLR 2022 (DARD).
    Skalse et al., "STARC: A General Framework For Quantifying Differences Between Reward
    Functions", ICLR 2024.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from rewardlab.distances._common import (
    check_discount,
    check_distribution,
    check_table,
    check_weights,
    flat_norm,
    norm_order,
    snap_zero,
    standardize,
    unit_scale,
)
from rewardlab.linalg import pinv
from rewardlab.tabular import expand_reward, policy_evaluation

Array = Any

CANONICALIZATIONS = ("value", "epic", "minimal")
"""STARC's canonicalisations (``starc_distance``; the module docstring defines each)."""


def as_transition_reward(
    reward: Array, *, transitions: Array | None = None, num_actions: int | None = None
) -> jax.Array:
    """A tabular reward as ``[S, A, S']``.

    With ``transitions`` this is :func:`rewardlab.tabular.expand_reward`; without, ``[S, A]``
    rewards broadcast over S' = S and ``[S]`` rewards need ``num_actions``.

    Raises:
        ValueError: if the rank is not 1, 2 or 3, or a ``[S]`` reward comes without
            ``num_actions`` or ``transitions``.

    Example:
        >>> as_transition_reward(jnp.zeros((4, 2))).shape
        (4, 2, 4)
    """
    if transitions is not None:
        return expand_reward(reward, transitions)
    reward = jnp.asarray(reward, dtype=jnp.result_type(float))
    if reward.ndim == 3:
        if reward.shape[0] != reward.shape[2]:
            raise ValueError(f"reward: expected shape [S, A, S], got {reward.shape}")
        return reward
    if reward.ndim == 2:
        return jnp.broadcast_to(reward[:, :, None], reward.shape + (reward.shape[0],))
    if reward.ndim == 1:
        if num_actions is None:
            raise ValueError(f"reward: a state reward {reward.shape} needs transitions or action_dist to know A")
        size = reward.shape[0]
        return jnp.broadcast_to(reward[:, None, None], (size, int(num_actions), size))
    raise ValueError(f"reward: expected shape [S], [S, A] or [S, A, S], got {reward.shape}")


def _pair(
    reward_a: Array, reward_b: Array, transitions: Array | None, num_actions: int | None
) -> tuple[jax.Array, jax.Array]:
    a = as_transition_reward(check_table("reward_a", reward_a), transitions=transitions, num_actions=num_actions)
    b = as_transition_reward(check_table("reward_b", reward_b), transitions=transitions, num_actions=num_actions)
    if a.shape != b.shape:
        raise ValueError(f"reward_b: expected the shape of reward_a {a.shape}, got {b.shape}")
    return unit_scale(a), unit_scale(b)


# --------------------------------------------------------------------------- canonicalisations


def epic_canonicalize(reward: Array, discount: Array, state_dist: Array, action_dist: Array) -> jax.Array:
    """EPIC canonical reward C(R)(s,a,s') = R + γ m(s') − m(s) − γ E_{S~D_S} m(S), ``[S, A, S']``.

    m(x) = E_{A~D_A, S'~D_S}[R(x, A, S')]. Potential shaping R + γΦ(s') − Φ(s) leaves C(R)
    unchanged.

    Args:
        reward: ``[S, A, S']``.
        discount: γ.
        state_dist: ``[S]`` D_S.
        action_dist: ``[A]`` D_A.

    Example:
        >>> r = jnp.zeros((2, 1, 2)).at[0, 0, 1].set(1.0)
        >>> shaped = r + 0.9 * jnp.array([3.0, -1.0])[None, None, :] - jnp.array([3.0, -1.0])[:, None, None]
        >>> d = jnp.ones(2) / 2
        >>> bool(jnp.allclose(epic_canonicalize(r, 0.9, d, jnp.ones(1)), epic_canonicalize(shaped, 0.9, d, jnp.ones(1)), atol=1e-6))
        True
    """
    mean_out = jnp.einsum("sat,a,t->s", reward, action_dist, state_dist)  # m(x)
    return (
        reward + discount * mean_out[None, None, :] - mean_out[:, None, None] - discount * jnp.dot(state_dist, mean_out)
    )


def dard_canonicalize(reward: Array, transitions: Array, discount: Array, action_dist: Array) -> jax.Array:
    """DARD canonical reward, ``[S, A, S']`` (Wulfe et al. 2022).

    C(R)(s,a,s') = R(s,a,s') + γ m(s') − m(s) − γ E_{A}[Σ_{u,v} T(s,A,u) T(s',A,v) R(u,A,v)],
    m(x) = E_{A~D_A, S'~T(x,A)} R(x, A, S'). Costs O(A·S³) for the last term.

    Example:
        >>> T = jnp.ones((3, 2, 3)) / 3
        >>> r = jnp.arange(18.0).reshape(3, 2, 3)
        >>> dard_canonicalize(r, T, 0.9, jnp.ones(2) / 2).shape
        (3, 2, 3)
    """
    mean_out = jnp.einsum("sat,sat,a->s", transitions, reward, action_dist)
    # two-step term: E_A[Σ_u T(s,A,u) Σ_v T(s',A,v) R(u,A,v)]
    inner = jnp.einsum("auv,tav->aut", jnp.moveaxis(reward, 1, 0), transitions)  # [A, u, s']
    two_step = jnp.einsum("a,sau,aut->st", action_dist, transitions, inner)
    return reward + discount * mean_out[None, None, :] - mean_out[:, None, None] - discount * two_step[:, None, :]


def value_canonicalize(reward: Array, transitions: Array, discount: Array, policy: Array) -> jax.Array:
    """STARC's C_VAL(R)(s,a) = E_{S'~T(s,a)}[R(s,a,S') + γ V^π(S') − V^π(s)], ``[S, A]``.

    Needs γ < 1 (or a policy that reaches absorbing states) for V^π to exist.

    Example:
        >>> T = jnp.ones((2, 2, 2)) / 2
        >>> r = jnp.ones((2, 2, 2))  # a constant reward is shaping-equivalent to zero
        >>> value_canonicalize(r, T, 0.5, jnp.ones((2, 2)) / 2).tolist()
        [[0.0, 0.0], [0.0, 0.0]]
    """
    values = policy_evaluation(transitions, reward, discount, policy)
    expected = jnp.einsum("sat,sat->sa", transitions, reward)
    return expected + discount * jnp.einsum("sat,t->sa", transitions, values) - values[:, None]


def minimal_canonicalize(reward: Array, transitions: Array, discount: Array) -> jax.Array:
    """The L2-minimal representative r + γTΦ* − Φ* of the reward's class, ``[S, A]``.

    Φ* = argmin_Φ ‖r + BΦ‖₂ with (BΦ)(s,a) = γ Σ_s' T(s,a,s') Φ(s') − Φ(s) and
    r(s,a) = E_{S'~T(s,a)} R(s,a,S'); the result is r projected on the orthogonal
    complement of the shaping directions. Costs one ``[S·A, S]`` pseudo-inverse of the MDP
    (shared across rewards under ``vmap``); differentiable in the reward, not in ``transitions``.

    Example:
        >>> T = jnp.ones((2, 2, 2)) / 2
        >>> r = jnp.ones((2, 2, 2))
        >>> bool(jnp.allclose(minimal_canonicalize(r, T, 0.5), 0.0, atol=1e-5))
        True
    """
    num_states, num_actions, _ = transitions.shape
    expected = jnp.einsum("sat,sat->sa", transitions, reward).reshape(-1)
    identity = jnp.repeat(jnp.eye(num_states, dtype=transitions.dtype), num_actions, axis=0)  # [(s,a), s]
    shaping = discount * transitions.reshape(num_states * num_actions, num_states) - identity
    potential = -(pinv(shaping) @ expected)  # pinv of the MDP only: shared when vmapped over rewards
    return (expected + shaping @ potential).reshape(num_states, num_actions)


# --------------------------------------------------------------------------- distances between canonical rewards


def pearson_distance(x: Array, y: Array, weights: Array | None = None) -> jax.Array:
    """D_ρ = sqrt((1 − ρ)/2), ρ the (weighted) Pearson correlation of x and y; in [0, 1].

    A zero-variance argument has no correlation; it is taken as ρ = 1 when both have zero
    variance (both rewards are equivalent to a constant) and ρ = 0 otherwise.

    Example:
        >>> round(float(pearson_distance(jnp.array([1.0, 2.0, 3.0]), jnp.array([-2.0, -4.0, -6.0]))), 6)
        1.0
    """
    x, y = unit_scale(jnp.asarray(x)), unit_scale(jnp.asarray(y))  # ρ is scale-invariant; no overflow
    w = jnp.full(x.shape, 1.0 / x.size, x.dtype) if weights is None else jnp.broadcast_to(weights, x.shape)
    x, y, w = jnp.ravel(x), jnp.ravel(y), jnp.ravel(w)
    w = w / jnp.sum(w)
    xc = x - jnp.dot(w, x)
    yc = y - jnp.dot(w, y)
    var_x, var_y = jnp.dot(w, xc * xc), jnp.dot(w, yc * yc)
    scale = jnp.maximum(jnp.max(jnp.abs(x)), jnp.max(jnp.abs(y)))
    tiny = (1e-12 * jnp.maximum(scale, 1e-30)) ** 2
    degenerate_x, degenerate_y = var_x <= tiny, var_y <= tiny
    # 1 − ρ = ½ Σ w (x̂ − ŷ)² with x̂, ŷ standardised: no cancellation near ρ = 1
    standard_x = xc / jnp.sqrt(jnp.where(degenerate_x, 1.0, var_x))
    standard_y = yc / jnp.sqrt(jnp.where(degenerate_y, 1.0, var_y))
    distance = 0.5 * jnp.sqrt(jnp.dot(w, (standard_x - standard_y) ** 2))
    distance = jnp.where(
        degenerate_x & degenerate_y, 0.0, jnp.where(degenerate_x | degenerate_y, jnp.sqrt(0.5), distance)
    )
    return jnp.clip(distance, 0.0, 1.0)


def lp_distance(x: Array, y: Array, p: Any = 2, weights: Array | None = None) -> jax.Array:
    """(Σ w |x − y|^p)^{1/p} (max over the support for p = ∞); uniform weights by default.

    Example:
        >>> float(lp_distance(jnp.array([0.0, 3.0]), jnp.array([4.0, 3.0]), "inf"))
        4.0
    """
    order = norm_order("p", p)
    diff = jnp.abs(jnp.asarray(x) - jnp.asarray(y))
    w = jnp.ones_like(diff) if weights is None else jnp.broadcast_to(weights, diff.shape)
    diff, w = jnp.ravel(diff), jnp.ravel(w)
    if order == jnp.inf:
        return jnp.max(jnp.where(w > 0, diff, 0.0))
    return jnp.sum(w * diff**order) ** (1.0 / order)


# --------------------------------------------------------------------------- public distances


def epic_distance(
    reward_a: Array,
    reward_b: Array,
    discount: Array,
    *,
    state_dist: Array | None = None,
    action_dist: Array | None = None,
    coverage: Array | None = None,
    transitions: Array | None = None,
) -> jax.Array:
    """Exact EPIC distance between two tabular rewards (Gleave et al. 2021).

    D_EPIC(R_A, R_B) = sqrt((1 − ρ(C(R_A), C(R_B)))/2), C the EPIC canonicalisation
    (:func:`epic_canonicalize`) with S, S' ~ D_S and A ~ D_A, ρ the Pearson correlation
    under the coverage distribution (default D_S × D_A × D_S). In [0, 1]: 0 for rewards
    equal up to potential shaping and positive scaling, 1 for R and −R.

    Args:
        reward_a: ``[S, A, S']``, ``[S, A]`` or ``[S]``.
        reward_b: same shape as ``reward_a``.
        discount: γ.
        state_dist: ``[S]`` D_S, non-negative weights divided by their sum (uniform by default).
        action_dist: ``[A]`` D_A, as ``state_dist`` (uniform by default).
        coverage: ``[S, A, S']`` weights of the Pearson correlation (default the product).
        transitions: ``[S, A, S']``, only to shape ``[S]``/``[S, A]`` rewards.

    Returns:
        Scalar distance.

    Raises:
        ValueError: mismatched shapes; γ outside [0, 1]; a distribution or coverage with a
            negative entry or a zero sum; NaN or ±inf in a reward or weight
            (``rewardlab.NonFiniteError``, named after the argument). Values are checked
            outside ``jit``/``vmap`` only.
        TypeError: a non-numeric reward or weight array, a non-numeric γ.

    References:
        Gleave et al., "Quantifying Differences in Reward Functions", ICLR 2021.

    Example:
        >>> import rewardlab_envs
        >>> mdp = rewardlab_envs.random_mdp(6, 2, seed=0)
        >>> phi = jnp.arange(6.0)
        >>> shaped = 3.0 * mdp.reward + mdp.discount * phi[None, None, :] - phi[:, None, None]
        >>> round(float(epic_distance(mdp.reward, shaped, mdp.discount)), 4), round(float(epic_distance(mdp.reward, -mdp.reward, mdp.discount)), 4)
        (0.0, 1.0)
    """
    discount = check_discount(discount)
    num_actions = None if action_dist is None else jnp.shape(action_dist)[0]
    a, b = _pair(
        reward_a, reward_b, None if transitions is None else check_table("transitions", transitions), num_actions
    )
    num_states, num_actions, _ = a.shape
    state_dist = check_distribution("state_dist", state_dist, num_states)
    action_dist = check_distribution("action_dist", action_dist, num_actions)
    if coverage is None:
        coverage = state_dist[:, None, None] * action_dist[None, :, None] * state_dist[None, None, :]
    else:
        coverage = check_weights("coverage", coverage, a.shape)
    return pearson_distance(
        snap_zero(epic_canonicalize(a, discount, state_dist, action_dist), a),
        snap_zero(epic_canonicalize(b, discount, state_dist, action_dist), b),
        coverage,
    )


def dard_distance(
    reward_a: Array,
    reward_b: Array,
    transitions: Array,
    discount: Array,
    *,
    action_dist: Array | None = None,
    coverage: Array | None = None,
) -> jax.Array:
    """Exact DARD distance: Pearson distance after the dynamics-aware canonicalisation.

    D = sqrt((1 − ρ(C_T(R_A), C_T(R_B)))/2) with C_T from :func:`dard_canonicalize`, ρ
    weighted by ``coverage`` (default: d(s) D_A(a) T(s,a,s') with d uniform, i.e. only
    transitions the dynamics can produce).

    Args:
        reward_a: ``[S, A, S']``, ``[S, A]`` or ``[S]``.
        reward_b: same shape as ``reward_a``.
        transitions: ``[S, A, S']`` T(s, a, s').
        discount: γ.
        action_dist: ``[A]`` D_A, non-negative weights divided by their sum (uniform by default).
        coverage: ``[S, A, S']`` correlation weights.

    Raises:
        ValueError: as :func:`epic_distance` (shapes, γ, weights, NaN or ±inf).
        TypeError: as :func:`epic_distance`.

    References:
        Wulfe et al., "Dynamics-Aware Comparison of Learned Reward Functions", ICLR 2022.

    Example:
        >>> import rewardlab_envs
        >>> mdp = rewardlab_envs.random_mdp(6, 2, seed=0)
        >>> round(float(dard_distance(mdp.reward, 2.0 * mdp.reward, mdp.transitions, mdp.discount)), 4)
        0.0
    """
    discount = check_discount(discount)
    transitions = jnp.asarray(check_table("transitions", transitions))
    a, b = _pair(reward_a, reward_b, transitions, None)
    num_states, num_actions, _ = a.shape
    action_dist = check_distribution("action_dist", action_dist, num_actions)
    if coverage is None:
        coverage = action_dist[None, :, None] * transitions / num_states
    else:
        coverage = check_weights("coverage", coverage, a.shape)
    return pearson_distance(
        snap_zero(dard_canonicalize(a, transitions, discount, action_dist), a),
        snap_zero(dard_canonicalize(b, transitions, discount, action_dist), b),
        coverage,
    )


def starc_canonicalize(
    reward: Array, transitions: Array, discount: Array, *, canonicalization: str = "value", policy: Array | None = None
) -> jax.Array:
    """The canonical reward c(R) STARC standardises: ``[S, A]`` (value, minimal) or ``[S, A, S']`` (epic).

    The EPIC canonicalisation here uses uniform D_S and D_A.

    Example:
        >>> T = jnp.ones((3, 2, 3)) / 3
        >>> starc_canonicalize(jnp.ones(3), T, 0.9, canonicalization="minimal").shape
        (3, 2)
    """
    if canonicalization not in CANONICALIZATIONS:
        raise ValueError(f"canonicalization: expected one of {CANONICALIZATIONS}, got {canonicalization!r}")
    transitions = jnp.asarray(transitions)
    reward = expand_reward(reward, transitions)
    num_states, num_actions, _ = transitions.shape
    if canonicalization == "epic":
        return epic_canonicalize(
            reward, discount, jnp.full(num_states, 1.0 / num_states), jnp.full(num_actions, 1.0 / num_actions)
        )
    if canonicalization == "minimal":
        return minimal_canonicalize(reward, transitions, discount)
    if policy is None:
        policy = jnp.full((num_states, num_actions), 1.0 / num_actions)
    return value_canonicalize(reward, transitions, discount, policy)


def starc_distance(
    reward_a: Array,
    reward_b: Array,
    transitions: Array,
    discount: Array,
    *,
    canonicalization: str = "value",
    norm: Any = 2,
    metric: Any = 2,
    policy: Array | None = None,
) -> jax.Array:
    """Exact STARC distance d(R_A, R_B) = m(s(R_A), s(R_B)), s(R) = c(R)/n(c(R)).

    c is the canonicalisation (``"value"``: C_VAL under ``policy``, uniform by default;
    ``"epic"``: EPIC's with uniform D_S, D_A; ``"minimal"``: the L2-minimal representative),
    n the L_``norm`` norm and m the L_``metric`` distance; s(R) = 0 where n(c(R)) = 0. With
    ``"value"`` or ``"minimal"`` the distance is zero exactly when R_B equals a positive
    multiple of R_A up to potential shaping and S'-redistribution (or both are trivial);
    ``"epic"`` does not quotient out S'-redistribution. With norm = metric the distance lies
    in [0, 2] and d(R, −R) = 2 for every non-trivial R.

    Args:
        reward_a: ``[S, A, S']``, ``[S, A]`` or ``[S]``.
        reward_b: same shape as ``reward_a``.
        transitions: ``[S, A, S']`` T(s, a, s').
        discount: γ (< 1 for ``"value"`` unless ``policy`` reaches absorbing states).
        canonicalization: ``"value"``, ``"epic"`` or ``"minimal"``.
        norm: 1, 2 or ``"inf"``.
        metric: 1, 2 or ``"inf"``.
        policy: ``[S, A]`` π for ``"value"``.

    Returns:
        Scalar distance.

    Raises:
        ValueError: for an unknown canonicalisation, norm or metric, mismatched shapes, γ
            outside [0, 1], a negative ``policy``, NaN or ±inf in a reward, ``transitions`` or
            ``policy`` (``rewardlab.NonFiniteError``; checked outside ``jit``/``vmap`` only).
        TypeError: a non-numeric array or γ.

    References:
        Skalse et al., "STARC: A General Framework For Quantifying Differences Between Reward
        Functions", ICLR 2024.

    Example:
        >>> import rewardlab_envs
        >>> mdp = rewardlab_envs.random_mdp(6, 2, seed=0)
        >>> phi = jnp.arange(6.0)
        >>> shaped = 0.5 * mdp.reward + mdp.discount * phi[None, None, :] - phi[:, None, None]
        >>> round(float(starc_distance(mdp.reward, shaped, mdp.transitions, mdp.discount)), 4)
        0.0
        >>> round(float(starc_distance(mdp.reward, -mdp.reward, mdp.transitions, mdp.discount)), 4)
        2.0
    """
    norm_p = norm_order("norm", norm)
    metric_p = norm_order("metric", metric)
    if canonicalization not in CANONICALIZATIONS:
        raise ValueError(f"canonicalization: expected one of {CANONICALIZATIONS}, got {canonicalization!r}")
    discount = check_discount(discount)
    transitions = jnp.asarray(check_table("transitions", transitions))
    if transitions.ndim != 3 or transitions.shape[0] != transitions.shape[2]:
        raise ValueError(f"transitions: expected shape [S, A, S], got {transitions.shape}")
    a, b = _pair(reward_a, reward_b, transitions, None)
    if policy is not None:
        if jnp.shape(policy) != transitions.shape[:2]:
            raise ValueError(f"policy: expected shape [S, A]={transitions.shape[:2]}, got {jnp.shape(policy)}")
        policy = check_weights("policy", policy, transitions.shape[:2])
    standard_a = standardize(
        starc_canonicalize(a, transitions, discount, canonicalization=canonicalization, policy=policy), norm_p, a
    )
    standard_b = standardize(
        starc_canonicalize(b, transitions, discount, canonicalization=canonicalization, policy=policy), norm_p, b
    )
    return flat_norm(standard_a - standard_b, metric_p)
