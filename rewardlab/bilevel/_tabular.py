"""BARFI on a finite MDP: a softmax policy-gradient inner learner and the bilevel loop, in one jitted function.

Inner problem (θ: softmax logits ``[S, A]``, π_θ(a|s) = softmax_a θ(s, a)):

    f(θ, φ) = Σ_{s,a} d^{π_θ}_{γ_φ}(s, a) r_φ(s, a) − (λ/2)‖θ‖²,

with d^π_γ(s, a) = Σ_{t<H} γ^t P(s_t = s, a_t = a) the discounted occupancy over H steps
(:func:`rewardlab.tabular.occupancy_measure`), so f and its gradient are exact (no
sampling): ∂f/∂θ(s, a) = d_γ(s) π(a|s) A^π_γ(s, a) − λθ(s, a), with the advantage of the
truncated problem (time-dependent when H is short), by autodiff through the occupancy. The L2 term keeps the inner
maximiser finite (an unregularised softmax policy is optimal only at infinite logits),
which is what the implicit function theorem needs. The inner learner runs ``inner_steps``
of gradient ascent per outer iteration, warm-started from the previous θ.

Outer problem: J_p(θ) = Σ d^{π_θ}_γ(s, a) r_p(s, a) under the environment's discount γ,
maximised over φ = (blend parameters, discount logit) with Adam on the outer gradient from
:mod:`rewardlab.bilevel`'s implicit (Neumann, CG) or unrolled differentiation.

The whole loop, ``outer_iterations`` × (inner steps + outer gradient), is one ``lax.scan``
inside one ``jit``; seeds (the initial policy logits) are a ``vmap`` axis. A loop that
diverges (non-finite values, or an inner loop whose objective falls) is frozen at its last
finite state and reported (``diverged``, ``diverged_at``): results never hold NaN.

References:
    Gupta, Chandak, Jordan, Thomas and da Silva, "Behavior Alignment via Reward Function
    Optimization", NeurIPS 2023.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rewardlab._checks import check_int, check_real
from rewardlab.bilevel._blend import (
    BlendParameterisation,
    BlendParams,
    blend_rewards,
    check_blend,
    learned_discount,
    table_blend,
)
from rewardlab.bilevel._gather import GatherForm, expected_return, gather_form_if_sparse, occupancy, state_visits
from rewardlab.bilevel._implicit import HYPERGRADIENTS, implicit_gradient, unrolled_gradient
from rewardlab.preferences import bradley_terry_loss
from rewardlab.tabular import expected_reward, is_successor_table, occupancy_measure, value_iteration

Array = Any
ComponentFn = Callable[[jax.Array, jax.Array, jax.Array], Any]  # (s, a, s') index grids -> reward values
# (θ [S, A], φ, problem, blend, data) -> scalar to maximise; data is a pytree of arrays (traced)
OuterObjective = Callable[[jax.Array, BlendParams, "TabularBilevelProblem", BlendParameterisation, Any], jax.Array]
# (key, θ [S, A] without gradient, problem, outer_data) -> this outer iteration's data for the outer objective
OuterSampler = Callable[[jax.Array, jax.Array, "TabularBilevelProblem", Any], Any]
_SAMPLER_STREAM = 0x5A3D  # folded into a run's key for the sampler's draws; θ_0 keeps the key itself


class TabularBilevelProblem(NamedTuple):
    """A finite MDP with a primary and an auxiliary reward; build it with :func:`tabular_problem`."""

    transitions: jax.Array  # [S, A, S'] float T(s, a, s'), or [S, A] int successor table
    initial_state_dist: jax.Array  # [S] d0
    primary: jax.Array  # [S, A] E_{s'}[r_p(s, a, s')]
    auxiliary: jax.Array  # [S, A] E_{s'}[r_aux(s, a, s')]
    blend_inputs: jax.Array  # [S, A] int indices (table blend) or [S, A, F] features of the blend
    discount: jax.Array  # [] the environment's γ, for the primary objective


def _component(name: str, value: Any, transitions: jax.Array) -> jax.Array:
    num_states, num_actions = int(transitions.shape[0]), int(transitions.shape[1])
    if callable(value):
        states, actions = jnp.meshgrid(jnp.arange(num_states), jnp.arange(num_actions), indexing="ij")
        if is_successor_table(transitions):
            grid = (states, actions, jnp.asarray(transitions))
        else:
            states, actions, next_states = jnp.meshgrid(
                jnp.arange(num_states), jnp.arange(num_actions), jnp.arange(num_states), indexing="ij"
            )
            grid = (states, actions, next_states)
        try:
            value = value(*grid)
        except Exception as error:  # report any failure of a user function with its cause
            raise TypeError(
                f"{name}: the reward-component function failed on integer index grids (s, a, s'): {error}"
            ) from error
        if is_successor_table(transitions) and jnp.shape(value) == (num_states, num_actions):
            value = jnp.asarray(value)[:, :, None] * jax.nn.one_hot(transitions, num_states)
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected real reward values, got dtype {array.dtype}")
    forms = {(num_states,), (num_states, num_actions), (num_states, num_actions, num_states)}
    if array.shape not in forms:
        raise ValueError(
            f"{name}: expected shape [S]={(num_states,)}, [S, A]={(num_states, num_actions)} or "
            f"[S, A, S']={(num_states, num_actions, num_states)} matching transitions, got {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: expected finite rewards, got {int(np.sum(~np.isfinite(array)))} non-finite values")
    dense = transitions
    if is_successor_table(transitions) and array.ndim == 3:
        return jnp.take_along_axis(jnp.asarray(array, jnp.float32), jnp.asarray(transitions)[..., None], axis=-1)[
            ..., 0
        ]
    return expected_reward(dense, jnp.asarray(array, jnp.float32))


def tabular_problem(
    transitions: Array,
    initial_state_dist: Array,
    primary: Array | ComponentFn,
    auxiliary: Array | ComponentFn,
    discount: float,
    *,
    blend_inputs: Array | None = None,
) -> TabularBilevelProblem:
    """Check and assemble a :class:`TabularBilevelProblem`.

    Each reward component is an array ``[S]``, ``[S, A]`` or ``[S, A, S']``, or any function
    ``fn(s, a, s')`` of integer index grids (of shape ``[S, A, S']``, or ``[S, A]`` with the
    successors for a successor table) returning such values; it is reduced to E_{s'}[r(s, a, s')].

    Args:
        transitions: ``[S, A, S']`` T(s, a, s') or an integer successor table ``[S, A]``.
        initial_state_dist: ``[S]`` d0.
        primary: r_p, the task reward.
        auxiliary: r_aux, the designer's heuristic.
        discount: the environment's γ in (0, 1], for the primary objective.
        blend_inputs: ``[S, A]`` integer indices for a table blend or ``[S, A, F]`` features;
            None for one index per state-action pair (s·A + a).

    Returns:
        The problem, float32 arrays.

    Raises:
        ValueError: shapes that do not match the MDP (naming the argument and both shapes), a
            d0 that is not a distribution, non-finite rewards, a discount out of (0, 1].
        TypeError: a component that is not real-valued, or a component function that fails.

    Example:
        >>> import jax.numpy as jnp
        >>> T = jnp.array([[0, 1], [1, 1]])  # successor table: action 1 moves to the absorbing state 1
        >>> problem = tabular_problem(T, jnp.array([1.0, 0.0]), jnp.array([[0.0, 1.0], [0.0, 0.0]]),
        ...                           lambda s, a, s_next: (s_next == 0) * 0.5, 0.9)
        >>> problem.auxiliary.tolist()
        [[0.5, 0.0], [0.0, 0.0]]
    """
    transitions = jnp.asarray(transitions)
    shape = transitions.shape
    if is_successor_table(transitions):
        if len(shape) != 2:
            raise ValueError(f"transitions: expected an integer successor table [S, A], got shape {shape}")
    elif len(shape) != 3 or shape[0] != shape[2]:
        raise ValueError(f"transitions: expected shape [S, A, S] or an integer successor table [S, A], got {shape}")
    else:
        transitions = transitions.astype(jnp.float32)
    num_states, num_actions = int(shape[0]), int(shape[1])
    d0 = np.asarray(initial_state_dist, np.float64)
    if d0.shape != (num_states,):
        raise ValueError(f"initial_state_dist: expected shape [S]={(num_states,)}, got {d0.shape}")
    if not np.all(np.isfinite(d0)) or np.any(d0 < 0) or abs(d0.sum() - 1.0) > 1e-4:
        raise ValueError(
            f"initial_state_dist: expected a distribution (non-negative, sums to 1), got sum {d0.sum():.6g}"
        )
    gamma = check_real("discount", discount, low=0.0, high=1.0, low_open=True)
    primary_table = _component("primary", primary, transitions)
    auxiliary_table = _component("auxiliary", auxiliary, transitions)
    if blend_inputs is None:
        inputs = jnp.arange(num_states * num_actions, dtype=jnp.int32).reshape(num_states, num_actions)
    else:
        inputs = jnp.asarray(blend_inputs)
        if inputs.shape[:2] != (num_states, num_actions) or inputs.ndim not in (2, 3):
            raise ValueError(
                f"blend_inputs: expected [S, A]={(num_states, num_actions)} indices or [S, A, F] features, got {inputs.shape}"
            )
    return TabularBilevelProblem(
        transitions,
        jnp.asarray(d0, jnp.float32),
        primary_table,
        auxiliary_table,
        inputs,
        jnp.asarray(gamma, jnp.float32),
    )


@dataclasses.dataclass(frozen=True)
class BarfiConfig:
    """Settings of the tabular bilevel loop (static: each distinct config compiles once).

    Attributes:
        outer_iterations: outer (φ) updates.
        inner_steps: inner gradient-ascent steps per outer iteration, warm-started.
        learning_rate: inner step size α of θ ← θ + α ∇_θ f.
        outer_learning_rate: Adam step size of φ (ascent on the primary return).
        hypergradient: ``"neumann"``, ``"cg"``, ``"unrolled"``, or ``"none"`` (φ fixed: the
            baselines, which train the same inner learner on a fixed reward).
        neumann_terms: n, Hessian-vector products of the Neumann series.
        neumann_step: α of the series; None for ``learning_rate``.
        cg_iterations: conjugate-gradient steps.
        unroll_steps: K, the last inner steps differentiated through (≤ ``inner_steps``).
        l2_penalty: λ of the inner objective's −(λ/2)‖θ‖².
        horizon: H, steps of the occupancy measure (primary and inner objectives).
        learn_discount: learn γ_φ = sigmoid(p); otherwise the inner discount is the environment's.
        initial_discount: γ_φ at the start; None for the environment's γ (clipped to ≤ 0.999).
        initial_policy_scale: std of the seed-dependent initial logits θ_0.
        divergence_tolerance: the inner loop diverges when f falls by more than this × (1 + |f|).
    """

    outer_iterations: int = 100
    inner_steps: int = 20
    learning_rate: float = 5.0
    outer_learning_rate: float = 0.05
    hypergradient: Literal["neumann", "cg", "unrolled", "none"] = "neumann"
    neumann_terms: int = 10
    neumann_step: float | None = None
    cg_iterations: int = 10
    unroll_steps: int = 10
    l2_penalty: float = 1e-3
    horizon: int = 50
    learn_discount: bool = True
    initial_discount: float | None = None
    initial_policy_scale: float = 0.01
    divergence_tolerance: float = 1e-3

    def __post_init__(self) -> None:
        for name in ("outer_iterations", "inner_steps", "neumann_terms", "cg_iterations", "unroll_steps", "horizon"):
            check_int(name, getattr(self, name), low=0 if name == "neumann_terms" else 1)
        for name in (
            "learning_rate",
            "outer_learning_rate",
            "l2_penalty",
            "initial_policy_scale",
            "divergence_tolerance",
        ):
            check_real(name, getattr(self, name), low=0.0)
        if self.neumann_step is not None:
            check_real("neumann_step", self.neumann_step, low=0.0, low_open=True)
        if self.initial_discount is not None:
            check_real("initial_discount", self.initial_discount, low=0.0, high=1.0, low_open=True, high_open=True)
        if self.hypergradient not in (*HYPERGRADIENTS, "none"):
            raise ValueError(f"hypergradient: expected one of {(*HYPERGRADIENTS, 'none')}, got {self.hypergradient!r}")
        if self.hypergradient == "unrolled" and self.unroll_steps > self.inner_steps:
            raise ValueError(
                f"unroll_steps: expected at most inner_steps={self.inner_steps} steps to differentiate through, got {self.unroll_steps}"
            )
        if not isinstance(self.learn_discount, bool):
            raise TypeError(f"learn_discount: expected True or False, got {self.learn_discount!r}")


class BarfiResult(NamedTuple):
    """Outcome of one bilevel run (leading axis [N] added when run over N seeds)."""

    params: BlendParams  # final φ (blend parameters, discount logit)
    policy_logits: jax.Array  # [S, A] final θ
    primary_return: jax.Array  # [I] J_p(θ_i) under the environment's discount, after each outer iteration
    inner_return: jax.Array  # [I] f(θ_i, φ_i), the inner objective after the inner steps
    coefficients: jax.Array  # [I, 3] (φ1, φ2, φ3) averaged over the state-actions the policy visits
    discount: jax.Array  # [I] γ_φ
    hypergradient_norm: jax.Array  # [I] ‖dJ_p/dφ‖ (0 for "none")
    diverged: jax.Array  # [] bool: the loop diverged and was frozen at its last finite state
    diverged_at: jax.Array  # [] int32 outer iteration of the divergence, −1 if none


def _policy(theta: jax.Array) -> jax.Array:
    return jax.nn.softmax(theta, axis=-1)


def inner_objective(
    theta: jax.Array,
    phi: BlendParams,
    problem: TabularBilevelProblem,
    blend: BlendParameterisation,
    config: BarfiConfig,
) -> jax.Array:
    """f(θ, φ) = Σ d^{π_θ}_{γ_φ}(s, a) r_φ(s, a) − (λ/2)‖θ‖², exact over ``config.horizon`` steps."""
    return _inner_objective(theta, phi, problem, blend, config, None)


def _inner_objective(
    theta: jax.Array,
    phi: BlendParams,
    problem: TabularBilevelProblem,
    blend: BlendParameterisation,
    config: BarfiConfig,
    form: GatherForm | None,
) -> jax.Array:
    coefficients = blend.coefficients(phi.blend, problem.blend_inputs)
    reward = blend_rewards(coefficients, problem.primary, problem.auxiliary)
    gamma = learned_discount(phi.discount_logit) if config.learn_discount else problem.discount
    value = _return_of(problem, form, _policy(theta), reward, config.horizon, gamma, config.hypergradient != "unrolled")
    return value - 0.5 * config.l2_penalty * jnp.sum(theta**2)


def _return_of(
    problem: TabularBilevelProblem,
    form: GatherForm | None,
    policy: jax.Array,
    reward: jax.Array,
    horizon: int,
    discount: jax.Array,
    seed_batched: bool,
) -> jax.Array:
    """Σ d^π_γ(s, a) r(s, a): dense T; T in gather form; or the gather form with seeds batched seed-last under vmap.

    The seed-batched form defines the derivatives the implicit and first-order loops take (gradients,
    Hessian-vector products, mixed products in φ), not reverse mode through a gradient in θ,
    which unrolled differentiation needs.
    """
    if form is not None and seed_batched:
        return expected_return(form, problem.initial_state_dist, policy, reward, discount, horizon)
    return jnp.sum(_occupancy_of(problem, form, policy, horizon, discount) * reward)


def _occupancy_of(
    problem: TabularBilevelProblem,
    form: GatherForm | None,
    policy: jax.Array,
    horizon: int,
    discount: jax.Array,
) -> jax.Array:
    if form is None:
        return occupancy_measure(problem.transitions, policy, problem.initial_state_dist, horizon, discount=discount)
    return occupancy(form, policy, problem.initial_state_dist, horizon, discount)


def primary_return(policy: Array, problem: TabularBilevelProblem, horizon: int) -> jax.Array:
    """J_p(π) = Σ d^π_γ(s, a) r_p(s, a) over ``horizon`` steps, γ the environment's discount.

    Example:
        >>> import jax.numpy as jnp
        >>> problem = tabular_problem(jnp.array([[0, 1], [1, 1]]), jnp.array([1.0, 0.0]),
        ...                           jnp.array([[0.0, 1.0], [0.0, 0.0]]), jnp.zeros(2), 0.9)
        >>> float(primary_return(jnp.array([[0.0, 1.0], [1.0, 0.0]]), problem, 10))
        1.0
    """
    occupancy = occupancy_measure(
        problem.transitions, jnp.asarray(policy), problem.initial_state_dist, int(horizon), discount=problem.discount
    )
    return jnp.sum(occupancy * problem.primary)


def optimal_primary_return(problem: TabularBilevelProblem, horizon: int) -> jax.Array:
    """J_p of the optimal policy for r_p (value iteration, ``horizon`` sweeps), the ceiling of ``primary_fraction``."""
    policy = value_iteration(problem.transitions, problem.primary, problem.discount, num_sweeps=int(horizon)).policy
    return primary_return(policy, problem, horizon)


def _all_finite(*trees: Any) -> jax.Array:
    leaves = [leaf for tree in trees for leaf in jax.tree.leaves(tree)]
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in leaves]))


def _run(
    problem: TabularBilevelProblem,
    blend_params: Any,
    key: jax.Array,
    blend: BlendParameterisation,
    config: BarfiConfig,
    outer_objective: OuterObjective | None = None,
    outer_data: Any = None,
    form: GatherForm | None = None,
    outer_sampler: OuterSampler | None = None,
) -> BarfiResult:
    num_states, num_actions = problem.primary.shape
    sample_key = jax.random.fold_in(key, _SAMPLER_STREAM)
    theta = config.initial_policy_scale * jax.random.normal(key, (num_states, num_actions), jnp.float32)
    start_discount = (
        config.initial_discount if config.initial_discount is not None else jnp.minimum(problem.discount, 0.999)
    )
    logit = jnp.log(start_discount / (1.0 - start_discount)).astype(jnp.float32)
    phi = BlendParams(blend_params, logit)
    optimizer = optax.adam(config.outer_learning_rate)
    opt_state = optimizer.init(phi)

    def f(t: jax.Array, p: BlendParams) -> jax.Array:
        return _inner_objective(t, p, problem, blend, config, form)

    def outer(t: jax.Array, p: BlendParams, data: Any) -> jax.Array:
        if outer_objective is not None:
            return outer_objective(t, p, problem, blend, data)
        seed_batched = config.hypergradient != "unrolled"
        return _return_of(problem, form, _policy(t), problem.primary, config.horizon, problem.discount, seed_batched)

    def ascend(t: jax.Array, p: BlendParams, steps: int) -> jax.Array:
        def step(x: jax.Array, _: None) -> tuple[jax.Array, None]:
            return x + config.learning_rate * jax.grad(f)(x, p), None

        return jax.lax.scan(step, t, None, length=steps)[0]

    step_size = config.learning_rate if config.neumann_step is None else config.neumann_step

    def outer_step(carry: tuple, iteration: jax.Array) -> tuple[tuple, tuple]:
        theta, phi, opt_state, diverged, diverged_at = carry
        before = f(theta, phi)
        if config.hypergradient == "unrolled":
            middle = ascend(theta, phi, config.inner_steps - config.unroll_steps)
            new_theta = ascend(middle, phi, config.unroll_steps)
        else:
            new_theta = ascend(theta, phi, config.inner_steps)
        data = outer_data
        if outer_sampler is not None:  # the upper level's data from the policy the inner steps reached
            data = outer_sampler(
                jax.random.fold_in(sample_key, iteration), jax.lax.stop_gradient(new_theta), problem, outer_data
            )
        objective = functools.partial(outer, data=data)
        if config.hypergradient == "unrolled":
            gradient = unrolled_gradient(
                f, objective, middle, phi, steps=config.unroll_steps, learning_rate=config.learning_rate
            )
        elif config.hypergradient == "none":
            gradient = jax.tree.map(jnp.zeros_like, phi)
        else:
            gradient = implicit_gradient(
                f,
                objective,
                new_theta,
                phi,
                method="cg" if config.hypergradient == "cg" else "neumann",
                terms=config.neumann_terms,
                step=step_size,
                iterations=config.cg_iterations,
            )
        if not config.learn_discount:
            gradient = gradient._replace(discount_logit=jnp.zeros_like(gradient.discount_logit))
        after = f(new_theta, phi)
        updates, new_opt_state = optimizer.update(jax.tree.map(jnp.negative, gradient), opt_state, phi)
        new_phi = optax.apply_updates(phi, updates)
        healthy = _all_finite(new_theta, new_phi, gradient, after) & (
            after >= before - config.divergence_tolerance * (1.0 + jnp.abs(before))
        )
        now_diverged = diverged | ~healthy
        keep = functools.partial(jax.tree.map, lambda old, new: jnp.where(now_diverged, old, new))
        theta, phi, opt_state = keep(theta, new_theta), keep(phi, new_phi), keep(opt_state, new_opt_state)
        diverged_at = jnp.where(now_diverged & ~diverged, iteration, diverged_at)
        policy = _policy(theta)
        if form is None:
            occupancy = _occupancy_of(problem, form, policy, config.horizon, problem.discount)
        else:  # evaluation only: the seed-last kernel under vmap
            visits = state_visits(form, policy, problem.initial_state_dist, config.horizon, problem.discount)
            occupancy = policy * visits[:, None]
        weights = occupancy / jnp.maximum(jnp.sum(occupancy), 1e-12)
        coefficients = blend.coefficients(phi.blend, problem.blend_inputs)
        grad_norm = jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree.leaves(gradient)))
        metrics = (
            jnp.sum(occupancy * problem.primary),
            jnp.where(now_diverged, f(theta, phi), after),
            jnp.einsum("sa,sak->k", weights, coefficients),
            learned_discount(phi.discount_logit) if config.learn_discount else problem.discount,
            jnp.where(now_diverged, 0.0, grad_norm),
        )
        return (theta, phi, opt_state, now_diverged, diverged_at), metrics

    carry = (theta, phi, opt_state, jnp.asarray(False), jnp.asarray(-1, jnp.int32))
    (theta, phi, _, diverged, diverged_at), metrics = jax.lax.scan(
        outer_step, carry, jnp.arange(config.outer_iterations, dtype=jnp.int32)
    )
    returns, inner_returns, coefficients, discounts, grad_norms = metrics
    return BarfiResult(phi, theta, returns, inner_returns, coefficients, discounts, grad_norms, diverged, diverged_at)


@functools.partial(jax.jit, static_argnames=("blend", "config", "outer_objective", "outer_sampler"))
def _run_one(
    problem: TabularBilevelProblem,
    blend_params: Any,
    key: jax.Array,
    blend: Any,
    config: BarfiConfig,
    outer_objective: Any,
    outer_data: Any,
    form: GatherForm | None,
    outer_sampler: Any,
) -> BarfiResult:
    return _run(problem, blend_params, key, blend, config, outer_objective, outer_data, form, outer_sampler)


@functools.partial(jax.jit, static_argnames=("blend", "config", "outer_objective", "outer_sampler"))
def _run_seeds(
    problem: TabularBilevelProblem,
    blend_params: Any,
    keys: jax.Array,
    blend: Any,
    config: BarfiConfig,
    outer_objective: Any,
    outer_data: Any,
    form: GatherForm | None,
    outer_sampler: Any,
) -> BarfiResult:
    return jax.vmap(
        lambda key: _run(problem, blend_params, key, blend, config, outer_objective, outer_data, form, outer_sampler)
    )(keys)


def barfi(
    problem: TabularBilevelProblem,
    config: BarfiConfig = BarfiConfig(),
    key: jax.Array | int = 0,
    *,
    blend: BlendParameterisation | None = None,
    blend_params: Any = None,
    outer_objective: OuterObjective | None = None,
    outer_data: Any = None,
    outer_sampler: OuterSampler | None = None,
) -> BarfiResult:
    """Learn a behaviour-alignment reward on a finite MDP: BARFI's bilevel loop, one jitted ``lax.scan``.

    Each outer iteration i: θ ← ``inner_steps`` of θ + α∇_θ f(θ, φ) (exact gradients);
    φ ← Adam ascent on dJ_p/dφ (``config.hypergradient``). With ``"none"`` φ stays at its
    start: the baselines (primary only, the naive sum, shaped rewards) with the same learner.

    Args:
        problem: the MDP and its two reward components (:func:`tabular_problem`).
        config: the loop's settings.
        key: a PRNG key or int seed (one run), or a batch of keys ``[N]`` (N seeds under ``vmap``).
        blend: the parameterisation of φ; None for a table over ``problem.blend_inputs``.
        blend_params: φ's starting parameters; None for ``blend.init`` (the naive sum).
        outer_objective: the upper objective J_o(θ, φ, problem, blend, outer_data) to maximise, a
            module-level pure function; None for the primary return J_p (BARFI). PARL's
            preference-based objective is :func:`preference_objective`.
        outer_data: arrays the outer objective reads (e.g. labelled pairs), traced, not compiled in.
        outer_sampler: draws the outer objective's data afresh each outer iteration from the
            policy the inner steps reached, ``sampler(key, θ, problem, outer_data) -> data``
            (θ without gradient; a hashable callable, compiled in), e.g. PARL's on-policy labels
            :class:`OnPolicyPreferences`; None to use ``outer_data`` every iteration.

    Returns:
        :class:`BarfiResult` (with a leading ``[N]`` axis for a batch of keys).

    Raises:
        TypeError, ValueError: a blend that is not a differentiable parameterisation of the
            problem's inputs (see :func:`check_blend`); an ``outer_sampler`` that is not callable
            or comes without an ``outer_objective``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> T = jnp.array([[0, 1], [1, 1]])  # action 1 leaves state 0 for the absorbing state 1
        >>> problem = tabular_problem(T, jnp.array([1.0, 0.0]), jnp.array([[0.0, 1.0], [0.0, 0.0]]),
        ...                           jnp.array([[0.2, 0.0], [0.0, 0.0]]), 0.9)  # aux pays for staying
        >>> result = barfi(problem, BarfiConfig(outer_iterations=5, inner_steps=5, horizon=10),
        ...                jax.random.split(jax.random.key(0), 3))
        >>> result.primary_return.shape, bool(result.diverged.any())
        ((3, 5), False)
    """
    if not isinstance(config, BarfiConfig):
        raise TypeError(f"config: expected a BarfiConfig, got {type(config).__name__}")
    if not isinstance(problem, TabularBilevelProblem):
        raise TypeError(
            f"problem: expected a TabularBilevelProblem (tabular_problem(...)), got {type(problem).__name__}"
        )
    if outer_sampler is not None:
        if not callable(outer_sampler):
            raise TypeError(
                f"outer_sampler: expected a callable (key, θ, problem, data) -> data, got {outer_sampler!r}"
            )
        if outer_objective is None:
            raise ValueError(
                "outer_sampler: draws data for an outer_objective, but outer_objective is None (the primary return reads no data)"
            )
    if blend is None:
        blend = _default_blend(int(np.prod(problem.primary.shape)))
    keys: jax.Array = jax.random.key(key) if isinstance(key, int) and not isinstance(key, bool) else jnp.asarray(key)
    if not jax.dtypes.issubdtype(keys.dtype, jax.dtypes.prng_key):
        raise TypeError(f"key: expected an int seed or typed PRNG keys (jax.random.key), got dtype {keys.dtype}")
    if blend_params is None:
        blend_params = blend.init(keys if keys.ndim == 0 else keys[0])
    check_blend(blend, blend_params, problem.blend_inputs, tuple(problem.primary.shape))
    form = gather_form_if_sparse(problem.transitions)
    if keys.ndim == 0:
        return _run_one(problem, blend_params, keys, blend, config, outer_objective, outer_data, form, outer_sampler)
    if keys.ndim != 1:
        raise ValueError(f"key: expected one PRNG key or a batch [N] of keys, got shape {keys.shape}")
    return _run_seeds(problem, blend_params, keys, blend, config, outer_objective, outer_data, form, outer_sampler)


@functools.lru_cache(maxsize=16)
def _default_blend(num_inputs: int) -> BlendParameterisation:
    # one instance per size, so that repeated calls hit the same compiled loop
    return table_blend(num_inputs)


class TabularPreferences(NamedTuple):
    """B labelled pairs of L-step segments on a finite MDP (index arrays), for :func:`preference_objective`."""

    states: jax.Array  # [B, 2, L] int s_t of σ¹ and σ²
    actions: jax.Array  # [B, 2, L] int a_t
    labels: jax.Array  # [B] float P(σ¹ ≻ σ²) from the teacher


def preference_objective(
    policy_logits: jax.Array,
    params: BlendParams,
    problem: TabularBilevelProblem,
    blend: BlendParameterisation,
    data: TabularPreferences,
) -> jax.Array:
    """PARL's upper objective: −Σ_b w_b(θ) BT(R_φ(σ¹_b), R_φ(σ²_b), y_b), with partial returns of r_φ.

    R_φ(σ) = Σ_t r_φ(s_t, a_t) and BT the Bradley–Terry cross-entropy of
    :func:`rewardlab.preferences.bradley_terry_loss`. The weights w = softmax_b(log π_θ(σ¹_b) +
    log π_θ(σ²_b)) put the labelled pairs the current policy would produce first, PARL's dependence
    of the upper level's data on the lower level's policy (Chakraborty et al. 2023), so the outer
    gradient has both a direct term (fitting r_φ to the labels) and the implicit one through θ*(φ).

    Example:
        >>> import jax.numpy as jnp
        >>> problem = tabular_problem(jnp.array([[0, 1], [1, 1]]), jnp.array([1.0, 0.0]),
        ...                           jnp.array([[0.0, 1.0], [0.0, 0.0]]), jnp.array([[0.2, 0.0], [0.0, 0.0]]), 0.9)
        >>> pairs = TabularPreferences(jnp.zeros((1, 2, 1), int), jnp.array([[[1], [0]]]), jnp.array([1.0]))
        >>> blend = table_blend(4)
        >>> round(float(preference_objective(jnp.zeros((2, 2)), BlendParams(blend.init(None), 0.0), problem, blend, pairs)), 4)
        -0.3711
    """
    losses, log_prob = pair_losses(policy_logits, params, problem, blend, data)
    return -jnp.sum(jax.nn.softmax(log_prob) * losses)


def pair_losses(
    policy_logits: jax.Array,
    params: BlendParams,
    problem: TabularBilevelProblem,
    blend: BlendParameterisation,
    data: TabularPreferences,
) -> tuple[jax.Array, jax.Array]:
    """Per pair: the Bradley–Terry loss of y under r_φ's partial returns, and log π_θ(σ¹) + log π_θ(σ²); both ``[B]``."""
    coefficients = blend.coefficients(params.blend, problem.blend_inputs)
    reward = blend_rewards(coefficients, problem.primary, problem.auxiliary)  # [S, A]
    returns = jnp.sum(reward[data.states, data.actions], axis=-1)  # [B, 2]
    losses = jax.vmap(bradley_terry_loss)(returns[:, 0], returns[:, 1], data.labels)
    log_policy = jax.nn.log_softmax(policy_logits, axis=-1)
    return losses, jnp.sum(log_policy[data.states, data.actions], axis=(1, 2))
