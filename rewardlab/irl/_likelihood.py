"""Likelihood IRL on finite MDPs: fit r_θ by the demonstrations' policy log-likelihood under the learner's model.

The learner models the demonstrator by one of two behaviour models (:data:`LEARNER_MODELS`),
both infinite-horizon and stationary, planned under the learner's own (T_L, γ_L, β_L):

* ``"causal_entropy"``: π_θ(a|s) = exp((Q_θ(s,a) − V_θ(s))/τ), τ = 1/β, with (Q_θ, V_θ) the
  fixed point of the soft Bellman equation Q = r̄_θ + γT V, V = τ logsumexp_a Q/τ (the model
  maximum-causal-entropy IRL assumes);
* ``"boltzmann"``: π_θ(a|s) = softmax_a(β Q*_θ(s,a)), Boltzmann-rational over the *optimal*
  (hard-max) Q-function of r_θ, Q* = r̄_θ + γT max_a Q*.

and maximises the log-likelihood of the demonstrations' state-action visits, per unit of
occupancy,

    L(θ) = −Σ_{s,a} D_demo(s,a) log π_θ(a|s) / Σ_{s,a} D_demo(s,a) + λ/2 ‖θ‖².

Since log π ≤ 0, L ≥ 0 whatever the learner's model: unlike the MCE dual objective
E_d0[V_0] − ⟨D_demo, r̄_θ⟩, which is unbounded below along the learner's shaping directions
γT_LΦ − Φ as soon as D_demo violates the learner's flow constraints (demonstrations from
other dynamics or another discount), the likelihood stays bounded under misspecification.
Its best attainable value is the demonstrations' own conditional entropy; the metric
``likelihood_gap`` = Σ D_demo (log π̂_demo − log π_θ)/ΣD_demo ≥ 0, with π̂_demo(a|s) =
D_demo(s,a)/Σ_a' D_demo(s,a'), is the distance to it (zero iff π_θ reproduces the
demonstrations on every visited state).

Planning to a tolerance, differentiated implicitly. The fixed point is found by (soft) policy
iteration — π ← policy of Q = r̄ + γTV, V ← V^π from the exact linear solve
(I − γP_π)V = Σ_a π(r̄ − τ log π) (τ = 0 for the hard backup) — until the sup-norm change
of V is at most ``planning_tolerance``·(1 + ‖V‖∞), warm-started from the previous optimiser
step's values. This is Newton's method on the Bellman equation (quadratic convergence); the
loop runs on stop-gradient values and is not differentiated. The gradient comes from one
extra Newton step taken at the fixed point V*,

    V_θ = V* + (I − γP_π*)⁻¹ (B_θ(V*) − V*),   B_θ(V) = softmax_τ / max_a [r̄_θ + γTV],

whose value equals V* there and whose derivative ∂V_θ/∂θ = (I − γP_π*)⁻¹ Σ_a π*(a|·) ∂r̄_θ
is the implicit-function-theorem derivative of the fixed point (π* the soft policy, or the
greedy one for the hard max; differentiable wherever the greedy action is unique). Then
Q_θ = r̄_θ + γT V_θ and log π_θ = log_softmax(β Q_θ). One optimiser step therefore costs a
few S×S solves; everything is pure, ``jit``-able and ``vmap``-able over MDPs, discounts,
rationalities and demonstrations.

References:
    Ziebart, Bagnell and Dey, "Modeling interaction via the principle of maximum causal
    entropy", ICML 2010. Ramachandran and Amir, "Bayesian inverse reinforcement learning",
    IJCAI 2007 (the Boltzmann-rational likelihood). Skalse and Abate, "Misspecification in
    Inverse Reinforcement Learning", AAAI 2023.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from rewardlab.irl._demos import discounted_occupancy
from rewardlab.irl._optimise import minimise_until
from rewardlab.linalg import solve
from rewardlab.tabular import TabularReward, expected_reward

Array = Any

LEARNER_MODELS = ("causal_entropy", "boltzmann")
"""Behaviour models a likelihood-IRL learner may assume: maximum causal entropy or Boltzmann-rational over Q*."""


@dataclasses.dataclass(frozen=True)
class LikelihoodIRLConfig:
    """Settings of likelihood IRL (static: changing one recompiles).

    The optimiser is L-BFGS (``optax.lbfgs``, zoom line search) from θ = 0 (or the model's
    initialisation). Its steps are linear combinations of gradients, and the gradient of a
    loss invariant along a linear subspace of θ (the learner's own shaping directions
    γT_LΦ − Φ for a tabular or linear reward; per-state constants k − γT_L k as well for the
    Boltzmann learner) is orthogonal to it, so from θ = 0 the fit is the least-norm
    maximum-likelihood reward and never drifts along the directions the likelihood cannot see.

    Attributes:
        behaviour: the learner's behaviour model, ``"causal_entropy"`` or ``"boltzmann"``.
        rationality: β the learner assumes (τ = 1/β for causal entropy).
        num_steps: the most L-BFGS steps.
        gradient_tolerance: stop once ‖∇_θ L‖₂ ≤ this · β (the gradient of log softmax(βQ) scales
            with β; 0 runs all ``num_steps``); reported as ``converged``.
        memory_size: L-BFGS history length.
        l2_penalty: λ of λ/2 ‖θ‖² (0 = none).
        planning_tolerance: relative sup-norm tolerance of policy iteration (its error after the
            stopping step is of the order of the square of this, by quadratic convergence).
        max_planning_iterations: the most policy-iteration steps per plan.
    """

    behaviour: str = "causal_entropy"
    rationality: float = 1.0
    num_steps: int = 500
    gradient_tolerance: float = 3e-5
    memory_size: int = 10
    l2_penalty: float = 0.0
    planning_tolerance: float = 1e-4
    max_planning_iterations: int = 100

    def __post_init__(self) -> None:
        if self.behaviour not in LEARNER_MODELS:
            raise ValueError(f"behaviour: expected one of {LEARNER_MODELS}, got {self.behaviour!r}")
        for name in ("num_steps", "max_planning_iterations", "memory_size"):
            value = getattr(self, name)
            if int(value) != value or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
        if not self.rationality > 0:
            raise ValueError(f"rationality: expected β > 0, got {self.rationality!r}")
        for name in ("gradient_tolerance", "l2_penalty", "planning_tolerance"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name}: expected >= 0, got {getattr(self, name)!r}")


class ModelPlan(NamedTuple):
    """The learner's model of the demonstrator under one reward (infinite horizon, stationary)."""

    q_values: jax.Array  # [S, A] soft Q (causal entropy) or Q* (Boltzmann)
    state_values: jax.Array  # [S] the fixed point V
    policy: jax.Array  # [S, A] π(a|s) = softmax_a(β Q)
    log_policy: jax.Array  # [S, A] log π(a|s)
    iterations: jax.Array  # [] policy-iteration steps taken


class LikelihoodIRLResult(NamedTuple):
    """What :func:`likelihood_irl` returns; metrics carry one entry per optimiser step (repeated after a stop)."""

    params: Any  # final θ, a TabularRewardParams
    reward: jax.Array  # r_θ as returned by the reward model
    policy: jax.Array  # [S, A] the learner's model policy of r_θ
    occupancy: jax.Array  # [S, A] its discounted occupancy under the learner's model
    metrics: dict[str, jax.Array]  # loss, log_likelihood, likelihood_gap, grad_norm, planning_iterations
    converged: jax.Array  # [] bool: grad_norm ≤ gradient_tolerance · β reached
    num_steps: jax.Array  # [] int: optimiser steps taken


def _newton_step(transitions: jax.Array, discount: Array, policy: jax.Array, residual: jax.Array) -> jax.Array:
    """(I − γP_π)⁻¹ (B(V) − V): the policy-iteration step written as a Newton increment (exact in small residuals)."""
    transitions_pi = jnp.einsum("sa,sat->st", policy, transitions)
    identity = jnp.eye(transitions.shape[0], dtype=transitions_pi.dtype)
    return solve(identity - discount * transitions_pi, residual)


def _improve(q_values: jax.Array, behaviour: str, rationality: Array) -> jax.Array:
    """The policy whose evaluation is the backup's derivative: softmax_a(βQ), or greedy (first maximiser)."""
    if behaviour == "causal_entropy":
        return jax.nn.softmax(rationality * q_values, axis=-1)
    return jax.nn.one_hot(jnp.argmax(q_values, axis=-1), q_values.shape[-1], dtype=q_values.dtype)


def _backup_value(q_values: jax.Array, behaviour: str, rationality: Array) -> jax.Array:
    if behaviour == "causal_entropy":
        return jax.nn.logsumexp(rationality * q_values, axis=-1) / rationality
    return jnp.max(q_values, axis=-1)


def plan_behaviour(
    transitions: Array,
    reward: Array,
    discount: Array,
    behaviour: str,
    *,
    rationality: Array = 1.0,
    tolerance: float = 1e-6,
    max_iterations: int = 100,
    initial_values: Array | None = None,
) -> ModelPlan:
    """The learner's model policy of ``reward`` by policy iteration to a tolerance, differentiable in ``reward`` (pure).

    See the module docstring: (soft) policy iteration on stop-gradient values, then one Newton
    step at the fixed point that carries the implicit derivative.

    Args:
        transitions: ``[S, A, S']`` dense T(s, a, s').
        reward: ``[S]``, ``[S, A]`` or ``[S, A, S']``.
        discount: γ < 1 (may be traced).
        behaviour: ``"causal_entropy"`` (soft Bellman, τ = 1/β) or ``"boltzmann"`` (hard Bellman, softmax(βQ*)).
        rationality: β > 0 (may be traced).
        tolerance: stop once ‖V_{k+1} − V_k‖∞ ≤ tolerance·(1 + ‖V_k‖∞).
        max_iterations: the most policy-iteration steps (static).
        initial_values: ``[S]`` warm start (default 0).

    Returns:
        :class:`ModelPlan`.

    Example:
        >>> import jax.numpy as jnp
        >>> T = jnp.ones((1, 2, 1))  # one state, two actions paying 0 and 1
        >>> plan = plan_behaviour(T, jnp.array([[0.0, 1.0]]), 0.5, "boltzmann")
        >>> plan.q_values.tolist(), [round(p, 3) for p in plan.policy[0].tolist()]
        ([[1.0, 2.0]], [0.269, 0.731])
    """
    if behaviour not in LEARNER_MODELS:
        raise ValueError(f"behaviour: expected one of {LEARNER_MODELS}, got {behaviour!r}")
    transitions = jnp.asarray(transitions)
    if transitions.ndim != 3 or transitions.shape[0] != transitions.shape[2]:
        raise ValueError(f"transitions: expected dense shape [S, A, S], got {transitions.shape}")
    mean_reward = expected_reward(transitions, reward)
    rationality = jnp.asarray(rationality, mean_reward.dtype)
    fixed_reward = jax.lax.stop_gradient(mean_reward)
    fixed_transitions = jax.lax.stop_gradient(transitions)
    fixed_rationality = jax.lax.stop_gradient(rationality)
    fixed_discount = jax.lax.stop_gradient(discount)
    values = (
        jnp.zeros(transitions.shape[0], mean_reward.dtype)
        if initial_values is None
        else jax.lax.stop_gradient(jnp.asarray(initial_values, mean_reward.dtype))
    )

    def iterate(state: tuple[jax.Array, jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array, jax.Array]:
        values, _, count = state
        q_values = fixed_reward + fixed_discount * jnp.einsum("sat,t->sa", fixed_transitions, values)
        policy = _improve(q_values, behaviour, fixed_rationality)
        step = _newton_step(
            fixed_transitions, fixed_discount, policy, _backup_value(q_values, behaviour, fixed_rationality) - values
        )
        return values + step, jnp.max(jnp.abs(step)), count + 1

    def unconverged(state: tuple[jax.Array, jax.Array, jax.Array]) -> jax.Array:
        values, change, count = state
        return (change > tolerance * (1.0 + jnp.max(jnp.abs(values)))) & (count < max_iterations)

    start = (values, jnp.asarray(jnp.inf, mean_reward.dtype), jnp.asarray(0, jnp.int32))
    fixed_values, _, iterations = jax.lax.while_loop(unconverged, iterate, start)
    fixed_values = jax.lax.stop_gradient(fixed_values)
    # One Newton step at the fixed point: the value is V*, the derivative the implicit one.
    q_fixed = mean_reward + discount * jnp.einsum("sat,t->sa", transitions, fixed_values)
    policy_fixed = _improve(jax.lax.stop_gradient(q_fixed), behaviour, fixed_rationality)
    residual = _backup_value(q_fixed, behaviour, rationality) - fixed_values
    state_values = fixed_values + _newton_step(fixed_transitions, fixed_discount, policy_fixed, residual)
    q_values = mean_reward + discount * jnp.einsum("sat,t->sa", transitions, state_values)
    log_policy = jax.nn.log_softmax(rationality * q_values, axis=-1)
    return ModelPlan(q_values, state_values, jnp.exp(log_policy), log_policy, iterations)


def demonstration_log_likelihood(demo_occupancy: Array) -> jax.Array:
    """Σ D log π̂_demo / ΣD with π̂_demo(a|s) = D(s,a)/Σ_a' D(s,a'): the best mean log-likelihood any policy attains.

    Example:
        >>> import jax.numpy as jnp
        >>> round(float(demonstration_log_likelihood(jnp.array([[1.0, 1.0], [2.0, 0.0]]))), 4)  # ½·log ½ + ½·0
        -0.3466
    """
    demo_occupancy = jnp.asarray(demo_occupancy)
    state = jnp.sum(demo_occupancy, axis=-1, keepdims=True)
    frequencies = demo_occupancy / jnp.where(state > 0, state, 1.0)
    return jnp.sum(jax.scipy.special.xlogy(demo_occupancy, frequencies)) / jnp.sum(demo_occupancy)


def _l2(params: Any) -> jax.Array:
    return sum(jnp.sum(jnp.square(leaf)) for leaf in jax.tree.leaves(params))  # type: ignore[return-value]


def likelihood_irl_loss(
    reward_model: TabularReward,
    params: Any,
    transitions: Array,
    discount: Array,
    demo_occupancy: Array,
    config: LikelihoodIRLConfig,
    rationality: Array | None = None,
    initial_values: Array | None = None,
) -> tuple[jax.Array, tuple[ModelPlan, jax.Array]]:
    """L(θ) = −Σ D_demo log π_θ / ΣD_demo + λ/2 ‖θ‖² and (plan, mean log-likelihood) (pure; differentiate with ``has_aux``).

    ``rationality`` (β, may be traced) overrides ``config.rationality``; ``initial_values``
    warm-starts the planner.
    """
    beta = config.rationality if rationality is None else rationality
    plan = plan_behaviour(
        transitions,
        reward_model.table(params),
        discount,
        config.behaviour,
        rationality=beta,
        tolerance=config.planning_tolerance,
        max_iterations=config.max_planning_iterations,
        initial_values=initial_values,
    )
    demo_occupancy = jnp.asarray(demo_occupancy)
    log_likelihood = jnp.sum(demo_occupancy * plan.log_policy) / jnp.sum(demo_occupancy)
    loss = -log_likelihood + 0.5 * config.l2_penalty * _l2(params)
    return loss, (plan, log_likelihood)


def make_likelihood_irl(
    reward_model: TabularReward, config: LikelihoodIRLConfig = LikelihoodIRLConfig()
) -> Callable[..., LikelihoodIRLResult]:
    """A pure trainer ``train(key, transitions, initial_state_dist, discount, demo_occupancy, rationality=None)``.

    Up to ``config.num_steps`` L-BFGS steps under one ``lax.while_loop`` that stops once the
    gradient norm is at most ``config.gradient_tolerance`` · β; jit it or ``jax.vmap`` it over keys,
    discounts, transition models, demonstrations or rationalities (no shape checks inside:
    :func:`likelihood_irl` is the checked call). ``initial_state_dist`` only enters the
    returned occupancy. The planner is warm-started from the previous step's values.
    """
    optimizer = optax.lbfgs(memory_size=config.memory_size)
    value_and_grad = jax.value_and_grad(likelihood_irl_loss, argnums=1, has_aux=True)

    def train(
        key: jax.Array,
        transitions: Array,
        initial_state_dist: Array,
        discount: Array,
        demo_occupancy: Array,
        rationality: Array | None = None,
    ) -> LikelihoodIRLResult:
        transitions = jnp.asarray(transitions)
        params = reward_model.init(key)
        best = demonstration_log_likelihood(demo_occupancy)

        def step(carry: tuple[Any, Any, jax.Array]) -> tuple[tuple[Any, Any, jax.Array], dict[str, jax.Array]]:
            params, opt_state, values = carry

            def loss(p: Any) -> jax.Array:
                return likelihood_irl_loss(
                    reward_model, p, transitions, discount, demo_occupancy, config, rationality, values
                )[0]

            (value, (plan, log_likelihood)), grads = value_and_grad(
                reward_model, params, transitions, discount, demo_occupancy, config, rationality, values
            )
            updates, opt_state = optimizer.update(grads, opt_state, params, value=value, grad=grads, value_fn=loss)
            metrics = {
                "loss": value,
                "log_likelihood": log_likelihood,
                "likelihood_gap": best - log_likelihood,
                "grad_norm": optax.global_norm(grads),
                "planning_iterations": plan.iterations.astype(value.dtype),
            }
            return (optax.apply_updates(params, updates), opt_state, plan.state_values), metrics

        start = (params, optimizer.init(params), jnp.zeros(transitions.shape[0], jnp.float32))
        beta = config.rationality if rationality is None else rationality
        (params, _, values), metrics, steps, converged = minimise_until(
            step, start, config.num_steps, "grad_norm", config.gradient_tolerance * beta
        )
        reward = reward_model.table(params)
        _, (plan, _) = likelihood_irl_loss(
            reward_model, params, transitions, discount, demo_occupancy, config, rationality, values
        )
        occupancy = discounted_occupancy(transitions, plan.policy, initial_state_dist, discount)
        return LikelihoodIRLResult(params, reward, plan.policy, occupancy, metrics, converged, steps)

    return train


@functools.lru_cache(maxsize=32)
def _jitted_trainer(reward_model: TabularReward, config: LikelihoodIRLConfig) -> Callable[..., LikelihoodIRLResult]:
    return jax.jit(make_likelihood_irl(reward_model, config))


def likelihood_irl(
    reward_model: TabularReward,
    transitions: Array,
    initial_state_dist: Array,
    demo_occupancy: Array,
    *,
    discount: float,
    config: LikelihoodIRLConfig = LikelihoodIRLConfig(),
    key: jax.Array | int = 0,
) -> LikelihoodIRLResult:
    """Fit r_θ by the demonstrations' policy log-likelihood under the learner's model (checked, jitted).

    Args:
        reward_model: a :class:`rewardlab.tabular.TabularReward`.
        transitions: ``[S, A, S']`` the transition model the learner assumes.
        initial_state_dist: ``[S]`` d0 (for the returned occupancy only).
        demo_occupancy: ``[S, A]`` D_demo(s, a) ≥ 0, exact or sampled; only its per-state
            action frequencies and state weights matter.
        discount: γ < 1 the learner assumes.
        config: behaviour model, rationality, optimiser settings.
        key: PRNG key or int seed of the parameter initialisation.

    Returns:
        :class:`LikelihoodIRLResult`.

    Raises:
        ValueError: shapes that do not fit the MDP, or γ outside [0, 1).

    Example:
        >>> import jax.numpy as jnp
        >>> from rewardlab.irl import behaviour_policy, discounted_occupancy
        >>> from rewardlab.tabular import tabular_reward
        >>> T = jnp.ones((2, 2, 2)) / 2
        >>> true_reward = jnp.array([[0.0, 1.0], [0.5, 0.0]])
        >>> d0 = jnp.array([0.5, 0.5])
        >>> demo = discounted_occupancy(T, behaviour_policy(T, true_reward, 0.9, "boltzmann"), d0, 0.9)
        >>> config = LikelihoodIRLConfig(behaviour="boltzmann")
        >>> result = likelihood_irl(tabular_reward((2, 2)), T, d0, demo, discount=0.9, config=config)
        >>> bool(result.converged), bool(result.metrics["likelihood_gap"][-1] < 1e-6)
        (True, True)
    """
    transitions = jnp.asarray(transitions, jnp.float32)
    if transitions.ndim != 3 or transitions.shape[0] != transitions.shape[2]:
        raise ValueError(f"transitions: expected shape [S, A, S], got {transitions.shape}")
    num_states, num_actions = transitions.shape[:2]
    d0 = jnp.asarray(initial_state_dist, jnp.float32)
    if d0.shape != (num_states,):
        raise ValueError(f"initial_state_dist: expected shape [S]=({num_states},), got {d0.shape}")
    demo_occupancy = jnp.asarray(demo_occupancy, jnp.float32)
    if demo_occupancy.shape != (num_states, num_actions):
        raise ValueError(f"demo_occupancy: expected shape [S, A]={num_states, num_actions}, got {demo_occupancy.shape}")
    if not 0.0 <= float(discount) < 1.0:
        raise ValueError(f"discount: expected a value in [0, 1), got {discount!r}")
    if not isinstance(reward_model, TabularReward):
        raise ValueError(f"reward_model: expected a rewardlab.tabular.TabularReward, got {type(reward_model).__name__}")
    if isinstance(key, int):
        key = jax.random.key(key)
    return _jitted_trainer(reward_model, config)(key, transitions, d0, jnp.float32(discount), demo_occupancy)
