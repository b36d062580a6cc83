"""Exact planning on finite MDPs: value iteration (hard or soft), policy evaluation, occupancy.

Every function is a pure JAX function over dense arrays, written for one MDP and one
reward; batch over rewards, MDPs or seeds with ``jax.vmap``. Rewards may be given as
``[S]`` (state), ``[S, A]`` (state-action) or ``[S, A, S']`` (transition) arrays and are
broadcast to ``[S, A, S']`` by :func:`expand_reward`.

``transitions`` is either the dense ``[S, A, S']`` float tensor T(s, a, s') or, for
deterministic MDPs (the delivery gridworld), the ``[S, A]`` integer table of successors
s' = next(s, a) from :func:`successor_table`. The table form replaces every S'-contraction
by a gather — S·A work per backup instead of S²·A — which is what makes planning under
``vmap`` over thousands of candidate rewards cheap.

Soft (maximum-entropy) backups with temperature τ:

    Q(s,a) = Σ_s' T(s,a,s') [r(s,a,s') + γ V(s')],   V(s) = τ · logsumexp_a Q(s,a)/τ,
    π(a|s) = exp((Q(s,a) − V(s))/τ);

τ = 0 gives the hard backup V(s) = max_a Q(s,a) (Bellman optimality).

References:
    Ziebart, "Modeling Purposeful Adaptive Behavior with the Principle of Maximum Causal
    Entropy", PhD thesis, CMU 2010 (soft value iteration, occupancy measures).
    Knox et al., "Models of human preference for learning reward functions", TMLR 2024
    (scaled return).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rewardlab.linalg import solve

Array = Any


class PlanningResult(NamedTuple):
    """Values and policy of one reward on one MDP."""

    q_values: jax.Array  # [S, A] Q(s, a)
    state_values: jax.Array  # [S] V(s)
    policy: jax.Array  # [S, A] π(a|s): greedy (ties split evenly) when τ = 0, softmax(Q/τ) otherwise


class FiniteHorizonResult(NamedTuple):
    """Time-indexed values and policy of a finite-horizon problem (t = 0 … H−1)."""

    q_values: jax.Array  # [H, S, A] Q_t(s, a)
    state_values: jax.Array  # [H + 1, S] V_t(s); V_H = 0
    policy: jax.Array  # [H, S, A] π_t(a|s)


def _check_transitions(transitions: Array) -> None:
    shape = jnp.shape(transitions)
    if is_successor_table(transitions):
        if len(shape) != 2:
            raise ValueError(f"transitions: expected an integer successor table [S, A], got shape {shape}")
        return
    if len(shape) != 3 or shape[0] != shape[2]:
        raise ValueError(f"transitions: expected shape [S, A, S] (or an integer successor table [S, A]), got {shape}")


def is_successor_table(transitions: Array) -> bool:
    """Whether ``transitions`` is the integer successor table ``[S, A]`` of a deterministic MDP (else dense ``[S, A, S']``).

    Example:
        >>> import jax.numpy as jnp
        >>> is_successor_table(jnp.array([[0, 1]])), is_successor_table(jnp.ones((1, 2, 1)))
        (True, False)
    """
    return jnp.issubdtype(jnp.result_type(transitions), jnp.integer)


def _sizes(transitions: Array) -> tuple[int, int]:
    shape = jnp.shape(transitions)
    return int(shape[0]), int(shape[1])


def _next_values(transitions: Array, values: jax.Array) -> jax.Array:
    """Σ_s' T(s, a, s') V(s') as ``[S, A]``: a gather for a successor table."""
    if is_successor_table(transitions):
        return values[transitions]
    return jnp.einsum("sat,t->sa", transitions, values)


def _push_forward(transitions: Array, visits: jax.Array) -> jax.Array:
    """Σ_{s,a} x(s, a) T(s, a, s') as ``[S']``: a scatter-add for a successor table."""
    if is_successor_table(transitions):
        return jnp.zeros(visits.shape[0], visits.dtype).at[transitions.reshape(-1)].add(visits.reshape(-1))
    return jnp.einsum("sa,sat->t", visits, transitions)


def successor_table(transitions: Array, *, atol: float = 1e-6) -> np.ndarray:
    """The ``[S, A]`` int32 successors of a deterministic transition tensor (host-side, not traced).

    Raises:
        ValueError: if some row T(s, a, ·) is not a point mass.

    Example:
        >>> import numpy as np
        >>> T = np.zeros((2, 2, 2)); T[:, 0, 0] = 1; T[:, 1, 1] = 1
        >>> successor_table(T).tolist()
        [[0, 1], [0, 1]]
    """
    transitions = np.asarray(transitions)
    if transitions.ndim != 3 or transitions.shape[0] != transitions.shape[2]:
        raise ValueError(f"transitions: expected shape [S, A, S], got {transitions.shape}")
    successors = transitions.argmax(axis=-1)
    peak = np.take_along_axis(transitions, successors[..., None], axis=-1)[..., 0]
    if not np.all(np.abs(peak - 1.0) <= atol):
        rows = np.argwhere(np.abs(peak - 1.0) > atol)[:3].tolist()
        raise ValueError(
            f"transitions: expected deterministic rows (one s' with T = 1), got stochastic rows at (s, a) = {rows}"
        )
    return successors.astype(np.int32)


def expand_reward(reward: Array, transitions: Array) -> jax.Array:
    """Broadcast a state, state-action or transition reward to ``[S, A, S']``.

    Args:
        reward: ``[S]`` r(s), ``[S, A]`` r(s, a) or ``[S, A, S']`` r(s, a, s').
        transitions: ``[S, A, S']`` T(s, a, s'), used for the shapes.

    Returns:
        ``[S, A, S']`` reward.

    Raises:
        ValueError: if the shape matches none of the three forms.

    Example:
        >>> import jax.numpy as jnp
        >>> expand_reward(jnp.array([1.0, 2.0]), jnp.ones((2, 3, 2)) / 2).shape
        (2, 3, 2)
    """
    _check_transitions(transitions)
    num_states, num_actions = _sizes(transitions)
    reward = jnp.asarray(reward, dtype=jnp.result_type(float))
    if reward.shape == (num_states,):
        return jnp.broadcast_to(reward[:, None, None], (num_states, num_actions, num_states))
    if reward.shape == (num_states, num_actions):
        return jnp.broadcast_to(reward[:, :, None], (num_states, num_actions, num_states))
    if reward.shape == (num_states, num_actions, num_states):
        return reward
    raise ValueError(
        f"reward: expected shape [S]={(num_states,)}, [S, A]={num_states, num_actions} or "
        f"[S, A, S]={num_states, num_actions, num_states}, got {reward.shape}"
    )


def expected_reward(transitions: Array, reward: Array) -> jax.Array:
    """E_{s'~T(s,a)}[r(s, a, s')] as ``[S, A]``.

    State and state-action rewards are returned as they are (rows of T sum to 1) rather than
    broadcast to ``[S, A, S']`` first: under ``vmap`` over rewards that broadcast would be
    materialised, B·S²·A floats.
    """
    _check_transitions(transitions)
    num_states, num_actions = _sizes(transitions)
    reward = jnp.asarray(reward, dtype=jnp.result_type(float))
    if reward.shape == (num_states, num_actions):
        return reward
    if reward.shape == (num_states,):
        return jnp.broadcast_to(reward[:, None], (num_states, num_actions))
    reward = expand_reward(reward, transitions)
    if is_successor_table(transitions):
        return jnp.take_along_axis(reward, jnp.asarray(transitions)[..., None], axis=-1)[..., 0]
    return jnp.einsum("sat,sat->sa", transitions, reward)


def bellman_backup(transitions: Array, reward: Array, discount: Array, next_values: Array) -> jax.Array:
    """Q(s,a) = Σ_s' T(s,a,s') [r(s,a,s') + γ V(s')] as ``[S, A]``.

    Example:
        >>> import jax.numpy as jnp
        >>> T = jnp.array([[[0.0, 1.0]], [[0.0, 1.0]]])  # 2 states, 1 action, all go to state 1
        >>> bellman_backup(T, jnp.array([[1.0], [0.0]]), 0.5, jnp.array([0.0, 2.0])).tolist()
        [[2.0], [1.0]]
    """
    return expected_reward(transitions, reward) + discount * _next_values(transitions, jnp.asarray(next_values))


def _state_value(q_values: jax.Array, temperature: Array) -> jax.Array:
    if isinstance(temperature, (int, float)) and temperature == 0:
        return jnp.max(q_values, axis=-1)
    return temperature * jax.nn.logsumexp(q_values / temperature, axis=-1)


def greedy_policy(q_values: Array, *, atol: float = 1e-6) -> jax.Array:
    """π(a|s) uniform over the actions within ``atol`` of max_a Q(s, a).

    Example:
        >>> import jax.numpy as jnp
        >>> greedy_policy(jnp.array([[1.0, 1.0, 0.0]])).tolist()
        [[0.5, 0.5, 0.0]]
    """
    q_values = jnp.asarray(q_values)
    best = q_values >= jnp.max(q_values, axis=-1, keepdims=True) - atol
    return best / jnp.sum(best, axis=-1, keepdims=True)


def boltzmann_policy(q_values: Array, inverse_temperature: Array) -> jax.Array:
    """π(a|s) = softmax_a(β Q(s, a)), the Boltzmann-rational policy with rationality β."""
    return jax.nn.softmax(inverse_temperature * jnp.asarray(q_values), axis=-1)


def value_iteration(
    transitions: Array,
    reward: Array,
    discount: Array,
    *,
    num_sweeps: int = 200,
    temperature: Array = 0.0,
    initial_values: Array | None = None,
) -> PlanningResult:
    """Infinite-horizon (soft) value iteration: ``num_sweeps`` Bellman backups under ``lax.scan``.

    With temperature τ > 0 the backup is the soft (maximum-causal-entropy) one and the
    result is differentiable in ``reward``; with τ = 0 it is the Bellman optimality
    backup and the policy is greedy. The error after n sweeps is at most γⁿ times the
    initial one, so choose ``num_sweeps`` ≈ log(tol)/log(γ); with γ = 1 the MDP must reach
    its absorbing states.

    Args:
        transitions: ``[S, A, S']`` T(s, a, s').
        reward: ``[S]``, ``[S, A]`` or ``[S, A, S']``.
        discount: γ in [0, 1].
        num_sweeps: number of backups (static).
        temperature: τ ≥ 0; a Python 0 selects the hard max.
        initial_values: ``[S]`` V₀ (default 0).

    Returns:
        :class:`PlanningResult` with Q, V and the policy.

    Example:
        >>> import jax.numpy as jnp
        >>> # two states; action 1 moves to absorbing state 1 with reward 1, action 0 stays with 0
        >>> T = jnp.array([[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [0.0, 1.0]]])
        >>> r = jnp.array([[[0.0, 0.0], [0.0, 1.0]], [[0.0, 0.0], [0.0, 0.0]]])
        >>> result = value_iteration(T, r, 0.9, num_sweeps=100)
        >>> [round(float(v), 3) for v in result.state_values], result.policy[0].tolist()
        ([1.0, 0.0], [0.0, 1.0])
    """
    _check_transitions(transitions)
    transitions = jnp.asarray(transitions)
    mean_reward = expected_reward(transitions, reward)  # validates the reward's shape
    values = (
        jnp.zeros(transitions.shape[0], mean_reward.dtype) if initial_values is None else jnp.asarray(initial_values)
    )

    def sweep(values: jax.Array, _: None) -> tuple[jax.Array, None]:
        q_values = mean_reward + discount * _next_values(transitions, values)
        return _state_value(q_values, temperature), None

    values, _ = jax.lax.scan(sweep, values, None, length=num_sweeps)
    q_values = mean_reward + discount * _next_values(transitions, values)
    values = _state_value(q_values, temperature)
    if isinstance(temperature, (int, float)) and temperature == 0:
        policy = greedy_policy(q_values)
    else:
        policy = jax.nn.softmax(q_values / temperature, axis=-1)
    return PlanningResult(q_values, values, policy)


def finite_horizon_soft_value_iteration(
    transitions: Array,
    reward: Array,
    discount: Array,
    horizon: int,
    *,
    temperature: Array = 1.0,
) -> FiniteHorizonResult:
    """Backward soft value iteration over ``horizon`` steps (V_H = 0), under ``lax.scan``.

    Q_t(s,a) = Σ_s' T(s,a,s') [r(s,a,s') + γ V_{t+1}(s')], V_t = τ logsumexp(Q_t/τ),
    π_t = exp((Q_t − V_t)/τ) — the maximum-causal-entropy policy (Ziebart 2010).

    Example:
        >>> import jax.numpy as jnp
        >>> T = jnp.ones((1, 2, 1))  # one state, two actions
        >>> result = finite_horizon_soft_value_iteration(T, jnp.array([[0.0, 0.0]]), 1.0, 3)
        >>> [round(float(v), 4) for v in result.state_values[:, 0]]  # log 2 per remaining step
        [2.0794, 1.3863, 0.6931, 0.0]
    """
    _check_transitions(transitions)
    if int(horizon) < 1:
        raise ValueError(f"horizon: expected a positive number of steps, got {horizon}")
    transitions = jnp.asarray(transitions)
    mean_reward = expected_reward(transitions, reward)

    def step(next_values: jax.Array, _: None) -> tuple[jax.Array, tuple[jax.Array, jax.Array, jax.Array]]:
        q_values = mean_reward + discount * _next_values(transitions, next_values)
        values = temperature * jax.nn.logsumexp(q_values / temperature, axis=-1)
        policy = jnp.exp((q_values - values[:, None]) / temperature)
        return values, (q_values, values, policy)

    terminal_values = jnp.zeros(transitions.shape[0], mean_reward.dtype)
    _, (q_values, values, policy) = jax.lax.scan(step, terminal_values, None, length=int(horizon), reverse=True)
    values = jnp.concatenate([values, terminal_values[None]], axis=0)
    return FiniteHorizonResult(q_values, values, policy)


def policy_evaluation(
    transitions: Array, reward: Array, discount: Array, policy: Array, *, num_sweeps: int | None = None
) -> jax.Array:
    """V^π of a stationary policy: exactly, or by ``num_sweeps`` backups V ← r_π + γ P_π V.

    With ``num_sweeps=None`` it solves (I − γ P_π) V = r_π (requires γ < 1 or a proper
    policy; O(S³)). With ``num_sweeps=n`` it iterates from V = 0 under ``lax.scan``; the
    error is at most γⁿ·max|V^π|, and each sweep costs S·A with a successor table — the
    cheap choice under ``vmap`` over many policies.

    Args:
        transitions: ``[S, A, S']`` or an integer successor table ``[S, A]``.
        reward: ``[S]``, ``[S, A]`` or ``[S, A, S']``.
        discount: γ.
        policy: ``[S, A]`` π(a|s).
        num_sweeps: None for the exact solve, else the number of backups (static).

    Returns:
        ``[S]`` V^π(s).

    Example:
        >>> import jax.numpy as jnp
        >>> T = jnp.ones((1, 1, 1))
        >>> round(float(policy_evaluation(T, jnp.array([1.0]), 0.5, jnp.ones((1, 1)))[0]), 4)
        2.0
        >>> round(float(policy_evaluation(jnp.zeros((1, 1), int), jnp.array([1.0]), 0.5, jnp.ones((1, 1)), num_sweeps=60)[0]), 4)
        2.0
    """
    _check_transitions(transitions)
    transitions = jnp.asarray(transitions)
    policy = jnp.asarray(policy)
    sizes = _sizes(transitions)
    if policy.shape != sizes:
        raise ValueError(f"policy: expected shape [S, A]={sizes}, got {policy.shape}")
    reward_pi = jnp.sum(policy * expected_reward(transitions, reward), axis=-1)
    if num_sweeps is not None:

        def sweep(values: jax.Array, _: None) -> tuple[jax.Array, None]:
            return reward_pi + discount * jnp.sum(policy * _next_values(transitions, values), axis=-1), None

        values, _ = jax.lax.scan(sweep, jnp.zeros_like(reward_pi), None, length=int(num_sweeps))
        return values
    if is_successor_table(transitions):
        rows = jnp.broadcast_to(jnp.arange(sizes[0])[:, None], sizes)
        transitions_pi = jnp.zeros((sizes[0], sizes[0]), policy.dtype).at[rows, transitions].add(policy)
    else:
        transitions_pi = jnp.einsum("sa,sat->st", policy, transitions)
    identity = jnp.eye(sizes[0], dtype=transitions_pi.dtype)
    return solve(identity - discount * transitions_pi, reward_pi)


def occupancy_measure(
    transitions: Array,
    policy: Array,
    initial_state_dist: Array,
    horizon: int,
    *,
    discount: Array = 1.0,
) -> jax.Array:
    """Discounted state-action visitation Σ_t γᵗ P(s_t = s, a_t = a) over ``horizon`` steps.

    ``policy`` is ``[S, A]`` (stationary) or ``[H, S, A]`` (time-indexed, as returned by
    :func:`finite_horizon_soft_value_iteration`). D_{t+1}(s') = Σ D_t(s) π_t(a|s) T(s,a,s').
    With γ = 1 the entries sum to the horizon.

    Returns:
        ``[S, A]`` occupancy.

    Example:
        >>> import jax.numpy as jnp
        >>> T = jnp.ones((2, 2, 2)) / 2
        >>> float(occupancy_measure(T, jnp.ones((2, 2)) / 2, jnp.array([1.0, 0.0]), 5).sum())
        5.0
    """
    _check_transitions(transitions)
    transitions = jnp.asarray(transitions)
    policy = jnp.asarray(policy)
    if policy.ndim == 2:
        policy = jnp.broadcast_to(policy, (int(horizon),) + policy.shape)
    if policy.shape != (int(horizon),) + _sizes(transitions):
        raise ValueError(
            f"policy: expected shape [S, A] or [H, S, A]={(int(horizon),) + _sizes(transitions)}, got {policy.shape}"
        )
    state_dist = jnp.asarray(initial_state_dist, dtype=policy.dtype)

    def step(carry: tuple[jax.Array, jax.Array], policy_t: jax.Array) -> tuple[tuple[jax.Array, jax.Array], jax.Array]:
        state_dist, weight = carry
        visits = state_dist[:, None] * policy_t
        return (_push_forward(transitions, visits), weight * discount), weight * visits

    _, visits = jax.lax.scan(step, (state_dist, jnp.asarray(1.0, policy.dtype)), policy)
    return jnp.sum(visits, axis=0)


def expected_return(
    transitions: Array,
    reward: Array,
    discount: Array,
    policy: Array,
    initial_state_dist: Array,
    *,
    num_sweeps: int | None = None,
) -> jax.Array:
    """E_{s0~d0}[V^π(s0)], the policy's expected discounted return (``num_sweeps`` as :func:`policy_evaluation`)."""
    values = policy_evaluation(transitions, reward, discount, policy, num_sweeps=num_sweeps)
    return jnp.dot(jnp.asarray(initial_state_dist), values)


def scaled_return(
    transitions: Array,
    true_reward: Array,
    discount: Array,
    policy: Array,
    initial_state_dist: Array,
    *,
    num_sweeps: int = 200,
    evaluation_sweeps: int | None = None,
) -> jax.Array:
    """(V^π − V^unif) / (V* − V^unif) under the true reward (Knox et al.); 1 is optimal, 0 uniform.

    Values above 0.9 count as near-optimal. π* comes from ``num_sweeps`` of value
    iteration; the three values from :func:`policy_evaluation` (exact, or
    ``evaluation_sweeps`` backups).

    Example:
        >>> import jax.numpy as jnp
        >>> T = jnp.array([[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [0.0, 1.0]]])
        >>> r = jnp.array([[1.0, 2.0], [0.0, 0.0]])[:, :, None] * jnp.array([0.0, 1.0])
        >>> d0 = jnp.array([1.0, 0.0])
        >>> round(float(scaled_return(T, r, 0.9, jnp.array([[0.0, 1.0], [1.0, 0.0]]), d0)), 4)
        1.0
    """
    transitions = jnp.asarray(transitions)
    optimal = value_iteration(transitions, true_reward, discount, num_sweeps=num_sweeps).policy
    sizes = _sizes(transitions)
    uniform = jnp.full(sizes, 1.0 / sizes[1])

    def evaluate(pi: jax.Array) -> jax.Array:
        return expected_return(transitions, true_reward, discount, pi, initial_state_dist, num_sweeps=evaluation_sweeps)

    value, value_optimal, value_uniform = evaluate(policy), evaluate(optimal), evaluate(uniform)
    return (value - value_uniform) / (value_optimal - value_uniform)
