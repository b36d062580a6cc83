"""Maximum-(causal-)entropy IRL on finite MDPs, fully jitted.

The learner assumes the demonstrator is maximum-causal-entropy optimal for r_θ with
temperature τ = 1/β (soft value iteration):

    Q_t(s,a) = Σ_s' T(s,a,s') [r_θ(s,a,s') + γ V_{t+1}(s')],   V_t = τ logsumexp_a Q_t/τ,
    π_t(a|s) = exp((Q_t(s,a) − V_t(s))/τ),
    D_{t+1}(s') = Σ_{s,a} D_t(s) π_t(a|s) T(s,a,s'),

and fits θ by minimising the MCE dual objective (τ times the negative log-likelihood of the
demonstrations, up to θ-independent terms)

    L(θ) = E_{s0~d0}[V_0(s0)] − Σ_{s,a} D_demo(s,a) r̄_θ(s,a),   r̄_θ(s,a) = E_{s'~T}[r_θ(s,a,s')],

whose gradient is the difference of discounted feature (reward-gradient) expectations

    ∇_θ L = E_π[Σ_t γᵗ ∇_θ r̄_θ(s_t,a_t)] − E_demo[Σ_t γᵗ ∇_θ r̄_θ(s_t,a_t)]
          = Σ_{s,a} (D_π(s,a) − D_demo(s,a)) ∇_θ r̄_θ(s,a),

computed here as one soft-VI pass and one occupancy pass (both ``lax.scan``) followed by a
vector-Jacobian product through r_θ. Finite horizon: time-indexed policy, occupancy over H
steps (entries sum to Σ_{t<H} γᵗ). Infinite horizon: ``num_sweeps`` soft-VI sweeps and the
exact discounted occupancy D = d0ᵀ(I − γP_π)⁻¹ ⊙ π.

The whole training loop (up to ``num_steps`` Optax updates, stopping once the occupancy
error is within ``tolerance``) is one ``lax.while_loop``; the trainer returned by
:func:`make_mce_irl` is a pure function of (key, transitions, d0, γ, D_demo), so sweeps over
seeds, discounts, transition models or demonstrations are a ``jax.vmap``.

The dual is the right objective when the learner's model (T, γ, β) is the demonstrator's.
When it is not, D_demo can violate the learner's flow constraints Σ_a D(s',a) = d0(s') +
γ Σ_{s,a} D(s,a) T_L(s,a,s'); the dual then decreases without bound along the learner's
shaping directions γT_LΦ − Φ and the fit drifts for as long as it runs. ``objective=
"likelihood"`` fits the demonstrations' policy log-likelihood instead, which is bounded
whatever the model (:mod:`rewardlab.irl` ``likelihood_irl``).

References:
    Ziebart, Bagnell and Dey, "Modeling interaction via the principle of maximum causal
    entropy", ICML 2010; Ziebart et al., "Maximum entropy inverse reinforcement learning",
    AAAI 2008.
    Gleave and Toyer, "A primer on maximum causal entropy inverse reinforcement learning",
    arXiv:2203.11409 (2022) (imitation's tabular implementation).
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
from rewardlab.irl._likelihood import LikelihoodIRLConfig, make_likelihood_irl
from rewardlab.irl._optimise import minimise_until
from rewardlab.tabular import (
    TabularReward,
    expected_reward,
    finite_horizon_soft_value_iteration,
    occupancy_measure,
    value_iteration,
)

Array = Any


OBJECTIVES = ("occupancy_matching", "likelihood")
"""Objectives of :func:`mce_irl`: the MCE dual (occupancy matching) or the policy log-likelihood."""


@dataclasses.dataclass(frozen=True)
class MCEIRLConfig:
    """Settings of maximum-causal-entropy IRL (static: changing one recompiles).

    Attributes:
        horizon: H for finite-horizon MCE IRL (time-indexed policy); None for infinite horizon.
        num_sweeps: soft-VI sweeps in the infinite-horizon case (error ≤ γⁿ).
        rationality: β the learner assumes; the soft backups use temperature τ = 1/β.
        objective: ``"occupancy_matching"`` (the MCE dual of the module docstring: exact when the
            learner's model is right, unbounded below when D_demo violates the learner's flow
            constraints) or ``"likelihood"`` (the demonstrations' policy log-likelihood under the
            learner's model, bounded under any misspecification; infinite horizon only; fitted by
            :func:`rewardlab.irl.make_likelihood_irl` with ``behaviour="causal_entropy"``,
            ``num_steps`` L-BFGS steps to ``gradient_tolerance``; the Adam settings are unused).
        learning_rate: initial Adam step size, decayed to ``final_learning_rate_fraction`` of it
            along a cosine over ``num_steps`` (Adam at a constant step size keeps oscillating
            once the gradient is near zero, so the final reward would be a random iterate).
        final_learning_rate_fraction: step size at the end relative to ``learning_rate``.
        num_steps: the most optimiser steps (one soft-VI + occupancy pass each).
        tolerance: occupancy matching stops once ``occupancy_max_error`` — the largest absolute
            occupancy difference over the reward's own domain: max_s |D_π(s) − D_demo(s)| for a
            state reward (imitation's ``linf_eps``), max_{s,a} |D_π(s,a) − D_demo(s,a)| for a
            state-action or transition reward — is at most this; 0 runs all ``num_steps``.
            Whether it was reached is ``MCEIRLResult.converged``.
        gradient_tolerance: the likelihood objective stops once ‖∇_θ L‖₂ ≤ this.
        l2_penalty: λ of the penalty λ/2 ‖θ‖² (0 = none).
    """

    horizon: int | None = None
    num_sweeps: int = 300
    rationality: float = 1.0
    objective: str = "occupancy_matching"
    learning_rate: float = 0.1
    final_learning_rate_fraction: float = 0.01
    num_steps: int = 2000
    tolerance: float = 1e-3
    gradient_tolerance: float = 3e-5
    l2_penalty: float = 0.0

    def __post_init__(self) -> None:
        if self.horizon is not None and (int(self.horizon) != self.horizon or self.horizon < 1):
            raise ValueError(f"horizon: expected None or an integer >= 1, got {self.horizon!r}")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective: expected one of {OBJECTIVES}, got {self.objective!r}")
        if self.objective == "likelihood" and self.horizon is not None:
            raise ValueError(
                f"horizon: the likelihood objective needs a stationary policy, expected None, got {self.horizon!r}"
            )
        for name in ("num_sweeps", "num_steps"):
            value = getattr(self, name)
            if int(value) != value or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
        if not self.rationality > 0:
            raise ValueError(f"rationality: expected β > 0, got {self.rationality!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate: expected > 0, got {self.learning_rate!r}")
        if not 0.0 < self.final_learning_rate_fraction <= 1.0:
            raise ValueError(
                f"final_learning_rate_fraction: expected a value in (0, 1], got {self.final_learning_rate_fraction!r}"
            )
        for name in ("tolerance", "gradient_tolerance", "l2_penalty"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name}: expected >= 0, got {getattr(self, name)!r}")


class SoftPlan(NamedTuple):
    """The learner's model of the demonstrator under one reward."""

    policy: jax.Array  # [S, A] (infinite horizon) or [H, S, A] (finite horizon) π(a|s)
    occupancy: jax.Array  # [S, A] D_π(s, a) = Σ_t γᵗ P(s_t = s, a_t = a)
    initial_value: jax.Array  # [] E_{s0~d0} V_0(s0), the soft value of the start distribution


class MCEIRLResult(NamedTuple):
    """What :func:`mce_irl` returns; metrics carry one entry per optimiser step."""

    params: Any  # final θ, a TabularRewardParams
    reward: jax.Array  # r_θ as returned by the reward model ([S], [S, A] or [S, A, S'])
    policy: jax.Array  # [S, A] or [H, S, A] the MCE policy of r_θ
    occupancy: jax.Array  # [S, A] its occupancy D_π
    # [num_steps] each, measured before each update and repeated after a stop. Occupancy matching:
    # loss, occupancy_error (‖D_π − D_demo‖₁/‖D_demo‖₁), occupancy_max_error, grad_norm; likelihood:
    # loss, log_likelihood, likelihood_gap, grad_norm, planning_iterations.
    metrics: dict[str, jax.Array]
    converged: jax.Array  # [] bool: the tolerance was reached
    num_steps: jax.Array  # [] int32: optimiser steps measured


def soft_plan(
    transitions: Array,
    reward: Array,
    initial_state_dist: Array,
    discount: Array,
    config: MCEIRLConfig,
    rationality: Array | None = None,
) -> SoftPlan:
    """MCE policy, occupancy and initial soft value of ``reward`` under the learner's model (pure).

    ``rationality`` (β, may be traced) overrides ``config.rationality``.
    """
    temperature = 1.0 / (config.rationality if rationality is None else rationality)
    d0 = jnp.asarray(initial_state_dist)
    if config.horizon is None:
        plan = value_iteration(transitions, reward, discount, num_sweeps=config.num_sweeps, temperature=temperature)
        occupancy = discounted_occupancy(transitions, plan.policy, d0, discount)
        return SoftPlan(plan.policy, occupancy, jnp.dot(d0, plan.state_values))
    horizon_plan = finite_horizon_soft_value_iteration(
        transitions, reward, discount, config.horizon, temperature=temperature
    )
    occupancy = occupancy_measure(transitions, horizon_plan.policy, d0, config.horizon, discount=discount)
    return SoftPlan(horizon_plan.policy, occupancy, jnp.dot(d0, horizon_plan.state_values[0]))


def _l2(params: Any) -> jax.Array:
    # sum() starts from int 0; params always have leaves, so the result is an array.
    return sum(jnp.sum(jnp.square(leaf)) for leaf in jax.tree.leaves(params))  # type: ignore[return-value]


def mce_irl_loss(
    reward_model: TabularReward,
    params: Any,
    transitions: Array,
    initial_state_dist: Array,
    discount: Array,
    demo_occupancy: Array,
    config: MCEIRLConfig,
    rationality: Array | None = None,
) -> jax.Array:
    """L(θ) = E_d0[V_0] − ⟨D_demo, r̄_θ⟩ + λ/2 ‖θ‖² (differentiable end to end; see the module docstring)."""
    reward = reward_model.table(params)
    plan = soft_plan(transitions, reward, initial_state_dist, discount, config, rationality)
    mean_reward = expected_reward(transitions, reward)
    return plan.initial_value - jnp.sum(demo_occupancy * mean_reward) + 0.5 * config.l2_penalty * _l2(params)


def mce_irl_gradient(
    reward_model: TabularReward,
    params: Any,
    transitions: Array,
    initial_state_dist: Array,
    discount: Array,
    demo_occupancy: Array,
    config: MCEIRLConfig,
    rationality: Array | None = None,
) -> tuple[Any, dict[str, jax.Array], SoftPlan]:
    """∇_θ L = Σ (D_π − D_demo) ∇_θ r̄_θ + λθ, by occupancy matching and one VJP (pure).

    Returns:
        ``(grads, metrics, plan)``; metrics: ``loss``, ``occupancy_error`` =
        ‖D_π − D_demo‖₁ / ‖D_demo‖₁, ``occupancy_max_error`` (the largest absolute difference of
        the state occupancies for a state reward ``[S]``, of the state-action occupancies otherwise),
        ``grad_norm``.
    """
    mean_reward, vjp = jax.vjp(lambda p: expected_reward(transitions, reward_model.table(p)), params)
    plan = soft_plan(transitions, reward_model.table(params), initial_state_dist, discount, config, rationality)
    difference = jax.lax.stop_gradient(plan.occupancy - demo_occupancy)
    (grads,) = vjp(difference.astype(mean_reward.dtype))
    if config.l2_penalty:
        grads = jax.tree.map(lambda g, p: g + config.l2_penalty * p, grads, params)
    penalty = 0.5 * config.l2_penalty * _l2(params)
    metrics = {
        "loss": plan.initial_value - jnp.sum(demo_occupancy * mean_reward) + penalty,
        "occupancy_error": jnp.sum(jnp.abs(difference)) / jnp.sum(demo_occupancy),
        "occupancy_max_error": jnp.max(
            jnp.abs(difference.sum(-1) if len(reward_model.reward_shape) == 1 else difference)
        ),
        "grad_norm": optax.global_norm(grads),
    }
    return grads, metrics, plan


def make_mce_irl(reward_model: TabularReward, config: MCEIRLConfig = MCEIRLConfig()) -> Callable[..., MCEIRLResult]:
    """A pure trainer ``train(key, transitions, initial_state_dist, discount, demo_occupancy, rationality=None) -> MCEIRLResult``.

    ``train`` initialises θ from ``key`` and runs up to ``config.num_steps`` Adam steps under one
    ``lax.while_loop``, stopping once ``occupancy_max_error ≤ config.tolerance`` (the reward that
    met it is returned, ``converged`` says whether it was met); jit it, or ``jax.vmap`` it over
    keys, discounts, transition models or demonstration occupancies (each lane stops on its own;
    no shape checks inside: use :func:`mce_irl` for checked calls). ``rationality`` (the
    learner's β, may be traced, hence vmapped) overrides ``config.rationality``. With
    ``objective="likelihood"`` the trainer is :func:`rewardlab.irl.make_likelihood_irl`'s.
    """
    if config.objective == "likelihood":
        likelihood_config = LikelihoodIRLConfig(
            behaviour="causal_entropy",
            rationality=config.rationality,
            num_steps=config.num_steps,
            gradient_tolerance=config.gradient_tolerance,
            l2_penalty=config.l2_penalty,
        )
        likelihood_train = make_likelihood_irl(reward_model, likelihood_config)

        def train_likelihood(*args: Any) -> MCEIRLResult:
            return MCEIRLResult(*likelihood_train(*args))

        return train_likelihood

    schedule = optax.cosine_decay_schedule(
        config.learning_rate, config.num_steps, alpha=config.final_learning_rate_fraction
    )
    optimizer = optax.adam(schedule)

    def train(
        key: jax.Array,
        transitions: Array,
        initial_state_dist: Array,
        discount: Array,
        demo_occupancy: Array,
        rationality: Array | None = None,
    ) -> MCEIRLResult:
        params = reward_model.init(key)

        def step(carry: tuple[Any, Any]) -> tuple[tuple[Any, Any], dict[str, jax.Array]]:
            params, opt_state = carry
            grads, metrics, _ = mce_irl_gradient(
                reward_model, params, transitions, initial_state_dist, discount, demo_occupancy, config, rationality
            )
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), metrics

        (params, _), metrics, steps, converged = minimise_until(
            step, (params, optimizer.init(params)), config.num_steps, "occupancy_max_error", config.tolerance
        )
        reward = reward_model.table(params)
        plan = soft_plan(transitions, reward, initial_state_dist, discount, config, rationality)
        return MCEIRLResult(params, reward, plan.policy, plan.occupancy, metrics, converged, steps)

    return train


@functools.lru_cache(maxsize=32)
def _jitted_trainer(reward_model: TabularReward, config: MCEIRLConfig) -> Callable[..., MCEIRLResult]:
    return jax.jit(make_mce_irl(reward_model, config))


def mce_irl(
    reward_model: TabularReward,
    transitions: Array,
    initial_state_dist: Array,
    demo_occupancy: Array,
    *,
    discount: float,
    config: MCEIRLConfig = MCEIRLConfig(),
    key: jax.Array | int = 0,
) -> MCEIRLResult:
    """Fit r_θ to demonstrations by maximum-causal-entropy IRL (checked, jitted entry point).

    Args:
        reward_model: a :class:`rewardlab.tabular.TabularReward` (``tabular_reward``, ``linear_reward``, ``mlp_reward``).
        transitions: ``[S, A, S']`` the transition model the learner assumes.
        initial_state_dist: ``[S]`` d0.
        demo_occupancy: ``[S, A]`` D_demo, exact (:func:`demonstration_occupancy`) or sampled
            (:func:`empirical_occupancy`); computed with the same horizon and γ-weighting.
        discount: γ the learner assumes (< 1 for infinite horizon).
        config: horizon, assumed rationality, objective, optimiser settings and tolerance.
        key: PRNG key or int seed of the parameter initialisation.

    Returns:
        :class:`MCEIRLResult`.

    Raises:
        ValueError: shapes that do not fit the MDP, γ out of range, or γ = 1 with an infinite horizon.

    Check ``result.converged``: False means ``num_steps`` ran out before the tolerance was met.

    Example:
        >>> import jax.numpy as jnp
        >>> from rewardlab.irl import demonstration_occupancy
        >>> from rewardlab.tabular import tabular_reward
        >>> T = jnp.ones((2, 2, 2)) / 2  # actions do not matter for the dynamics
        >>> true_reward = jnp.array([[0.0, 1.0], [0.0, 1.0]])
        >>> d0 = jnp.array([0.5, 0.5])
        >>> demos = demonstration_occupancy(T, true_reward, d0, 1.0, 5, "causal_entropy")
        >>> result = mce_irl(tabular_reward((2, 2)), T, d0, demos, discount=1.0, config=MCEIRLConfig(horizon=5))
        >>> bool(result.converged), bool(result.metrics["occupancy_max_error"][-1] <= 1e-3), result.policy[0].argmax(-1).tolist()
        (True, True, [1, 1])
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
    if not 0.0 <= float(discount) <= 1.0:
        raise ValueError(f"discount: expected a value in [0, 1], got {discount!r}")
    if config.horizon is None and float(discount) >= 1.0:
        raise ValueError(f"discount: expected γ < 1 with an infinite horizon (config.horizon=None), got {discount!r}")
    if not isinstance(reward_model, TabularReward):
        raise ValueError(f"reward_model: expected a rewardlab.tabular.TabularReward, got {type(reward_model).__name__}")
    if isinstance(key, int):
        key = jax.random.key(key)
    reward_shape = reward_model.reward_shape
    valid = {(num_states,), (num_states, num_actions), (num_states, num_actions, num_states)}
    if tuple(reward_shape) not in valid:
        raise ValueError(
            f"reward_model: expected a reward of shape [S]=({num_states},), [S, A]={num_states, num_actions} or "
            f"[S, A, S]={num_states, num_actions, num_states}, got {tuple(reward_shape)}"
        )
    return _jitted_trainer(reward_model, config)(key, transitions, d0, jnp.float32(discount), demo_occupancy)
