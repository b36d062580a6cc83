"""The occupancy measure of a sparse finite MDP in gather form, with a seed-batched path for ``vmap``.

The tabular bilevel loop evaluates the discounted occupancy d^π_γ(s, a) = π(a|s) Σ_{t<H} γᵗ d_t(s),
d_{t+1}(s') = Σ_{s,a} T(s, a, s') d_t(s) π(a|s), about ninety times per outer iteration, as the
return F(π, r, γ) = Σ_{s,a} d^π_γ(s, a) r(s, a), its gradient in π and Hessian-vector products.
When each state has few predecessors T is kept in gather form, both ways: the K pairs entering
each state (to push d_t forward) and the J successors of each pair (to pull values back).

One seed (:func:`occupancy`) is plain JAX, differentiated by autodiff. Under ``vmap`` over seeds
(:func:`expected_return`, :func:`state_visits`) the batch is laid out with the seed axis last,
so that each gathered row is a contiguous vector of seeds, and the gradient in π is written out
as the adjoint recursion

    λ_{H−1} = γ^{H−1} ρ,   λ_t = γᵗ ρ + Σ_a π(a|·) u_t(·, a),   u_t(s, a) = Σ_{s'} T(s, a, s') λ_{t+1}(s'),
    ∂F/∂π(a|s) = v(s) r(s, a) + Σ_{t<H−1} d_t(s) u_t(s, a),

with ρ(s) = Σ_a π(a|s) r(s, a) and v = Σ_t γᵗ d_t: gathers over successors where autodiff would
transpose the forward gather into a scatter-add. Hessian-vector products are forward-mode
derivatives of that recursion (gathers again). Both paths compute the same quantities; a test
holds them to float32 rounding of each other and of the dense :func:`rewardlab.tabular.occupancy_measure`.

Derivatives in the reward and the discount (the mixed term of an implicit gradient, once per
outer iteration) go through the plain single-seed code, so every first and second derivative of
F that the bilevel loop takes is defined; reverse-mode differentiation through a gradient in π
(unrolled hypergradients) is not, and takes :func:`occupancy` instead.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_batching import custom_vmap
from jax.custom_derivatives import SymbolicZero

from rewardlab.tabular import is_successor_table


class GatherForm(NamedTuple):
    """T in gather form (padding entries have weight 0).

    ``sources[s', k]`` = s·A + a for the pairs entering s' with T(s, a, s') = ``weights[s', k]``;
    ``successors[s·A + a, j]`` = s' with T(s, a, s') = ``successor_weights[s·A + a, j]``.
    """

    sources: jax.Array  # [S, K] int32
    weights: jax.Array  # [S, K] float32
    successors: jax.Array  # [S·A, J] int32
    successor_weights: jax.Array  # [S·A, J] float32


def _pad_groups(
    keys: np.ndarray, values: np.ndarray, probabilities: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(keys, kind="stable")
    keys, values, probabilities = keys[order], values[order], probabilities[order]
    counts = np.bincount(keys, minlength=size)
    width = max(1, int(counts.max(initial=0)))
    slots = np.arange(keys.size) - np.repeat(np.cumsum(counts) - counts, counts)
    index = np.zeros((size, width), np.int32)
    weight = np.zeros((size, width), np.float32)
    index[keys, slots] = values
    weight[keys, slots] = probabilities
    return index, weight


def gather_form(transitions: jax.Array) -> GatherForm:
    """The host-side gather form of T (``[S, A, S']`` probabilities or an ``[S, A]`` successor table)."""
    table = np.asarray(transitions)
    num_states, num_actions = table.shape[:2]
    if is_successor_table(transitions):
        pairs = np.arange(num_states * num_actions)
        targets, probabilities = table.reshape(-1), np.ones(num_states * num_actions, np.float32)
    else:
        pairs, targets = np.nonzero(table.reshape(num_states * num_actions, num_states))
        probabilities = table.reshape(num_states * num_actions, num_states)[pairs, targets].astype(np.float32)
    sources, weights = _pad_groups(targets, pairs, probabilities, num_states)
    successors, successor_weights = _pad_groups(pairs, targets, probabilities, num_states * num_actions)
    return GatherForm(*(jnp.asarray(array) for array in (sources, weights, successors, successor_weights)))


def gather_form_if_sparse(transitions: jax.Array) -> GatherForm | None:
    """The gather form of T when it is cheaper than the dense contraction (K ≤ S·A/4), else None."""
    try:
        form = gather_form(transitions)
    except jax.errors.TracerArrayConversionError:  # called under jit: the dense contraction
        return None
    num_states, num_actions = transitions.shape[:2]
    return form if form.sources.shape[1] * 4 <= num_states * num_actions else None


# ---------------------------------------------------------------------------------------------
# One seed: plain JAX, differentiated by autodiff.


def _visits(
    form: GatherForm, initial_state_dist: jax.Array, policy: jax.Array, discount: jax.Array, horizon: int
) -> jax.Array:
    def step(
        carry: tuple[jax.Array, jax.Array, jax.Array], _: None
    ) -> tuple[tuple[jax.Array, jax.Array, jax.Array], None]:
        state_dist, weight, visits = carry
        flow = (state_dist[:, None] * policy).reshape(-1)
        next_dist = jnp.sum(flow[form.sources] * form.weights, axis=1)
        return (next_dist, weight * discount, visits + weight * state_dist), None

    start = (initial_state_dist, jnp.ones((), policy.dtype), jnp.zeros_like(initial_state_dist))
    (_, _, visits), _ = jax.lax.scan(step, start, None, length=int(horizon))
    return visits


def occupancy(
    form: GatherForm, policy: jax.Array, initial_state_dist: jax.Array, horizon: int, discount: jax.Array
) -> jax.Array:
    """Σ_{t<H} γᵗ P(s_t = s, a_t = a) for a stationary policy, as :func:`rewardlab.tabular.occupancy_measure`.

    The state distribution is pushed forward by a gather over each state's K predecessors,
    d_{t+1}(s') = Σ_k T_k(s') d_t(s_k) π(a_k|s_k) (S·K products a step instead of the S·A·S of a
    dense contraction); only the discounted state visits Σ_t γᵗ d_t(s) are accumulated in the
    loop, and the occupancy is π(a|s) times them.
    """
    return policy * _visits(form, initial_state_dist, policy, discount, horizon)[:, None]


def _plain_return(
    form: GatherForm,
    initial_state_dist: jax.Array,
    policy: jax.Array,
    reward: jax.Array,
    discount: jax.Array,
    horizon: int,
) -> jax.Array:
    return jnp.sum(occupancy(form, policy, initial_state_dist, horizon, discount) * reward)


def _plain_return_and_pullback(
    form: GatherForm,
    initial_state_dist: jax.Array,
    policy: jax.Array,
    reward: jax.Array,
    discount: jax.Array,
    horizon: int,
) -> tuple[jax.Array, jax.Array]:
    return jax.value_and_grad(_plain_return, argnums=2)(form, initial_state_dist, policy, reward, discount, horizon)


# ---------------------------------------------------------------------------------------------
# A batch of seeds, seed axis last: policy and reward [S, A, B], discount [B].


def _visits_seed_last(
    form: GatherForm, initial_state_dist: jax.Array, policy: jax.Array, discount: jax.Array, horizon: int
) -> jax.Array:
    """Σ_t γᵗ d_t ``[S, B]`` by the recursion of :func:`occupancy`."""
    num_states, num_actions, batch = policy.shape

    def step(
        carry: tuple[jax.Array, jax.Array, jax.Array], _: None
    ) -> tuple[tuple[jax.Array, jax.Array, jax.Array], None]:
        state_dist, weight, visits = carry
        flow = (state_dist[:, None, :] * policy).reshape(num_states * num_actions, batch)
        next_dist = jnp.sum(flow[form.sources] * form.weights[..., None], axis=1)
        return (next_dist, weight * discount, visits + weight * state_dist), None

    start_dist = jnp.broadcast_to(initial_state_dist[:, None], (num_states, batch)).astype(policy.dtype)
    start = (start_dist, jnp.ones((batch,), policy.dtype), jnp.zeros_like(start_dist))
    (_, _, visits), _ = jax.lax.scan(step, start, None, length=int(horizon))
    return visits


def _return_and_pullback_seed_last(
    form: GatherForm,
    initial_state_dist: jax.Array,
    policy: jax.Array,
    reward: jax.Array,
    discount: jax.Array,
    horizon: int,
) -> tuple[jax.Array, jax.Array]:
    """(F [B], ∂F/∂π [S, A, B]) by the adjoint recursion of the module docstring.

    The adjoints are scaled, λ̃_t = γ⁻ᵗ λ_t (λ̃_{H−1} = ρ, λ̃_t = ρ + γ Σ_a π(a|·) T λ̃_{t+1}), so that
    the backward sweep needs no powers of γ; it keeps only λ̃_1 … λ̃_{H−1} ``[H−1, S, B]``. The
    forward sweep then pushes d_t forward and accumulates γ^{t+1} d_t(s) (T λ̃_{t+1})(s, a) = d_t u_t
    as it goes, so that the state distributions are never stored and read back.
    """
    num_states, num_actions, batch = policy.shape
    per_state = jnp.sum(policy * reward, axis=1)  # ρ [S, B]

    def pull(values: jax.Array) -> jax.Array:  # Σ_{s'} T(s, a, s') values(s') [S, A, B]
        pulled = jnp.sum(values[form.successors] * form.successor_weights[..., None], axis=1)
        return pulled.reshape(num_states, num_actions, batch)

    def backward(scaled: jax.Array, _: None) -> tuple[jax.Array, jax.Array]:  # λ̃_{t+1} -> λ̃_t
        return per_state + discount * jnp.sum(policy * pull(scaled), axis=1), scaled

    _, scaled = jax.lax.scan(backward, per_state, None, length=int(horizon) - 1, reverse=True)  # [t] = λ̃_{t+1}

    def forward(
        carry: tuple[jax.Array, jax.Array, jax.Array, jax.Array], scaled_next: jax.Array
    ) -> tuple[tuple[jax.Array, jax.Array, jax.Array, jax.Array], None]:
        state_dist, weight, visits, total = carry  # d_t, γᵗ, Σ_{t'<t} γ^t' d_t', Σ_{t'<t} d_t' u_t'
        flow = (state_dist[:, None, :] * policy).reshape(num_states * num_actions, batch)
        next_dist = jnp.sum(flow[form.sources] * form.weights[..., None], axis=1)
        next_weight = weight * discount
        total = total + (next_weight * state_dist)[:, None, :] * pull(scaled_next)
        return (next_dist, next_weight, visits + weight * state_dist, total), None

    start_dist = jnp.broadcast_to(initial_state_dist[:, None], (num_states, batch)).astype(policy.dtype)
    start = (start_dist, jnp.ones((batch,), policy.dtype), jnp.zeros_like(start_dist), jnp.zeros_like(policy))
    (last_dist, last_weight, visits, total), _ = jax.lax.scan(forward, start, scaled)
    visits = visits + last_weight * last_dist
    value = jnp.sum(policy * visits[:, None, :] * reward, axis=(0, 1))
    return value, visits[:, None, :] * reward + total


def _seed_last(value: jax.Array, batched: bool, size: int) -> jax.Array:
    return jnp.moveaxis(value, 0, -1) if batched else jnp.broadcast_to(value[..., None], (*value.shape, size))


def _batched_rule(
    plain: Callable[..., Any], seed_last: Callable[..., Any], seed_axis_first: Callable[[Any], Any]
) -> Callable[..., tuple[Any, Any]]:
    """A ``custom_vmap`` rule: the seed-last kernel when only the per-seed arrays are batched, else ``vmap`` of the plain one."""

    def rule(
        size: int, in_batched: list, form: GatherForm, initial_state_dist: jax.Array, *arrays: jax.Array
    ) -> tuple[Any, Any]:
        form_batched, dist_batched, *array_batched = in_batched
        if any(jax.tree.leaves(form_batched)) or dist_batched:  # several MDPs in one batch
            axes = [jax.tree.map(lambda b: 0 if b else None, batched) for batched in in_batched]
            out = jax.vmap(plain, in_axes=axes)(form, initial_state_dist, *arrays)
        else:
            moved = [_seed_last(array, batched, size) for array, batched in zip(arrays, array_batched, strict=True)]
            out = seed_axis_first(seed_last(form, initial_state_dist, *moved))
        return out, jax.tree.map(lambda _: True, out)

    return rule


class _Kernels(NamedTuple):
    visits: Callable[..., jax.Array]  # (form, d0, policy, γ) -> [S]
    return_and_pullback: Callable[..., tuple[jax.Array, jax.Array]]  # (form, d0, policy, r, γ) -> (F, ∂F/∂π)
    return_and_pullback_jvp: Callable[..., tuple]  # (form, d0, policy, r, γ, dπ) -> ((F, ∂F/∂π), tangents)


def _first(value: jax.Array) -> jax.Array:
    return jnp.moveaxis(value, -1, 0)


@functools.cache
def _kernels(horizon: int) -> _Kernels:
    """Evaluation-only kernels with a seed-last batching rule (their derivatives are :func:`expected_return`'s rules)."""

    def visits_plain(form: GatherForm, d0: jax.Array, policy: jax.Array, discount: jax.Array) -> jax.Array:
        return _visits(form, d0, policy, discount, horizon)

    def visits_seed_last(form: GatherForm, d0: jax.Array, policy: jax.Array, discount: jax.Array) -> jax.Array:
        return _visits_seed_last(form, d0, policy, discount, horizon)

    def pullback_plain(
        form: GatherForm, d0: jax.Array, policy: jax.Array, reward: jax.Array, discount: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        return _plain_return_and_pullback(form, d0, policy, reward, discount, horizon)

    def pullback_seed_last(
        form: GatherForm, d0: jax.Array, policy: jax.Array, reward: jax.Array, discount: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        return _return_and_pullback_seed_last(form, d0, policy, reward, discount, horizon)

    def jvp_plain(
        form: GatherForm, d0: jax.Array, policy: jax.Array, reward: jax.Array, discount: jax.Array, tangent: jax.Array
    ) -> tuple:
        return jax.jvp(lambda p: pullback_plain(form, d0, p, reward, discount), (policy,), (tangent,))

    def jvp_seed_last(
        form: GatherForm, d0: jax.Array, policy: jax.Array, reward: jax.Array, discount: jax.Array, tangent: jax.Array
    ) -> tuple:
        return jax.jvp(lambda p: pullback_seed_last(form, d0, p, reward, discount), (policy,), (tangent,))

    visits = custom_vmap(visits_plain)
    visits.def_vmap(_batched_rule(visits_plain, visits_seed_last, _first))
    pullback = custom_vmap(pullback_plain)
    pullback.def_vmap(_batched_rule(pullback_plain, pullback_seed_last, functools.partial(jax.tree.map, _first)))
    pullback_jvp = custom_vmap(jvp_plain)
    pullback_jvp.def_vmap(_batched_rule(jvp_plain, jvp_seed_last, functools.partial(jax.tree.map, _first)))
    return _Kernels(visits, pullback, pullback_jvp)


def _is_zero(tangent: Any) -> bool:
    return all(
        isinstance(leaf, SymbolicZero)
        for leaf in jax.tree.leaves(tangent, is_leaf=lambda x: isinstance(x, SymbolicZero))
    )


def _instantiate(tangent: Any, like: Any) -> Any:
    return jax.tree.map(
        lambda t, x: jnp.zeros_like(x) if isinstance(t, SymbolicZero) else t,
        tangent,
        like,
        is_leaf=lambda x: isinstance(x, SymbolicZero),
    )


def _plain_tangent(function: Callable[..., Any], horizon: int, primals: tuple, tangents: tuple) -> Any | None:
    """The forward derivative of ``function`` in T's weights, d0, r and γ (plain code, so it transposes), or None when all are zero."""
    form, d0, policy, reward, discount = primals
    t_form, t_d0, _, t_reward, t_discount = tangents
    t_weights = (t_form.weights, t_form.successor_weights)
    if all(_is_zero(t) for t in (t_weights, t_d0, t_reward, t_discount)):
        return None

    def restricted(weights: tuple, d0: jax.Array, reward: jax.Array, discount: jax.Array) -> Any:
        full = form._replace(weights=weights[0], successor_weights=weights[1])
        return function(full, d0, policy, reward, discount, horizon)

    inputs = ((form.weights, form.successor_weights), d0, reward, discount)
    directions = tuple(_instantiate(t, x) for t, x in zip((t_weights, t_d0, t_reward, t_discount), inputs, strict=True))
    return jax.jvp(restricted, inputs, directions)[1]


@functools.partial(jax.custom_jvp, nondiff_argnums=(5,))
def _return_and_pullback(
    form: GatherForm,
    initial_state_dist: jax.Array,
    policy: jax.Array,
    reward: jax.Array,
    discount: jax.Array,
    horizon: int,
) -> tuple[jax.Array, jax.Array]:
    return _kernels(horizon).return_and_pullback(form, initial_state_dist, policy, reward, discount)


def _return_and_pullback_jvp(horizon: int, primals: tuple, tangents: tuple) -> tuple:
    form, d0, policy, reward, discount = primals
    kernels = _kernels(horizon)
    if _is_zero(tangents[2]):
        out = kernels.return_and_pullback(form, d0, policy, reward, discount)
        out_tangent = jax.tree.map(jnp.zeros_like, out)
    else:  # Hessian-vector products: forward mode through the kernel
        out, out_tangent = kernels.return_and_pullback_jvp(form, d0, policy, reward, discount, tangents[2])
    extra = _plain_tangent(_plain_return_and_pullback, horizon, primals, tangents)
    if extra is not None:
        out_tangent = jax.tree.map(jnp.add, out_tangent, extra)
    return out, out_tangent


_return_and_pullback.defjvp(_return_and_pullback_jvp, symbolic_zeros=True)


@functools.partial(jax.custom_jvp, nondiff_argnums=(5,))
def expected_return(
    form: GatherForm,
    initial_state_dist: jax.Array,
    policy: jax.Array,
    reward: jax.Array,
    discount: jax.Array,
    horizon: int,
) -> jax.Array:
    """F(π, r, γ) = Σ_{s,a} d^π_γ(s, a) r(s, a) over ``horizon`` steps, seed-last under ``vmap``.

    Equal to ``jnp.sum(occupancy(form, policy, d0, horizon, discount) * reward)``, with the same
    first derivatives, Hessian-vector products in π and mixed second derivatives in (π, r, γ)
    (as forward-over-reverse and reverse-over-reverse products), computed without scatter-adds
    for a batch of seeds.
    """
    visits = _kernels(horizon).visits(form, initial_state_dist, policy, discount)
    return jnp.sum(policy * visits[:, None] * reward)


def _expected_return_jvp(horizon: int, primals: tuple, tangents: tuple) -> tuple[jax.Array, jax.Array]:
    form, d0, policy, reward, discount = primals
    if _is_zero(tangents[2]):
        value = expected_return(form, d0, policy, reward, discount, horizon)
        tangent = jnp.zeros_like(value)
    else:
        value, pullback = _return_and_pullback(form, d0, policy, reward, discount, horizon)
        tangent = jnp.sum(pullback * tangents[2])
    extra = _plain_tangent(_plain_return, horizon, primals, tangents)
    return value, tangent if extra is None else tangent + extra


expected_return.defjvp(_expected_return_jvp, symbolic_zeros=True)


def state_visits(
    form: GatherForm, policy: jax.Array, initial_state_dist: jax.Array, horizon: int, discount: jax.Array
) -> jax.Array:
    """Σ_{t<H} γᵗ d_t(s) ``[S]``, seed-last under ``vmap``; for evaluation (its derivatives are those of its kernel's jvp)."""
    return _kernels(int(horizon)).visits(form, initial_state_dist, policy, discount)
