"""BARFI with continuous states: a sampled actor-critic inner learner, jittable end to end.

The environment is functional and pure JAX, as gymnasium's ``FuncEnv`` (e.g.
``gymnasium.envs.phys2d.cartpole.CartPoleFunctional``): ``initial(key)``,
``transition(state, action, key)``, ``observation(state, key)``, ``terminal(state, key)``.
The two reward components come from any pure function
``components(obs, action, next_obs) -> (r_p, r_aux)``. Episodes are ``horizon`` steps long,
``num_episodes`` at a time under ``vmap``; steps after termination are masked out.

Inner learner (policy π_θ(a|o) = softmax(x(o)ᵀθ), x(o) = [o, 1]; critic V_ψ(o) = x(o)ᵀψ): each
inner step samples a batch with π_θ and ascends the surrogate

    f(θ, φ) = (1/N) Σ_n Σ_t m_t γ_φ^t log π_θ(a_t|o_t) (G^φ_t − V_ψ(o_t)) − (λ/2)‖θ‖²,

G^φ_t = Σ_{k≥t} γ_φ^{k−t} m_k r_φ(o_k, a_k), while ψ regresses V_ψ(o_t) on G^φ_t. By default the
advantages G^φ_t − V_ψ(o_t) are scaled to zero mean and unit variance over the batch's live steps
(``normalize_advantages``), so the step does not grow with r_φ's scale; an entropy bonus
β·Σ_t m_t H(π_θ(·|o_t)) is optional. The outer gradient uses
:func:`rewardlab.bilevel.implicit_gradient` on a fresh batch (``outer_episodes``) with the samples
held fixed: its Hessian is the surrogate's, without the second-order terms of the sampling
distribution's dependence on θ (the usual policy-gradient Hessian approximation), and
∇_θ J_p is the same estimator with primary returns under the environment's discount.

References:
    Gupta, Chandak, Jordan, Thomas and da Silva, "Behavior Alignment via Reward Function
    Optimization", NeurIPS 2023.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp
import optax

from rewardlab._checks import check_int, check_real
from rewardlab.bilevel._blend import BlendParameterisation, BlendParams, blend_rewards, check_blend, learned_discount
from rewardlab.bilevel._implicit import implicit_gradient

ComponentsFn = Callable[[jax.Array, jax.Array, jax.Array], tuple[jax.Array, jax.Array]]


class FunctionalEnv(Protocol):
    """A pure JAX environment with gymnasium ``FuncEnv``'s method names (discrete actions)."""

    def initial(self, rng: jax.Array) -> Any:
        """A start state."""
        ...

    def transition(self, state: Any, action: jax.Array, rng: jax.Array) -> Any:
        """The next state."""
        ...

    def observation(self, state: Any, rng: jax.Array) -> jax.Array:
        """The observation ``[F]`` of a state."""
        ...

    def terminal(self, state: Any, rng: jax.Array) -> jax.Array:
        """Whether a state ends the episode."""
        ...


@dataclasses.dataclass(frozen=True)
class ActorCriticConfig:
    """Settings of the sampled bilevel loop (static).

    Attributes:
        num_actions: A, discrete actions.
        outer_iterations: outer updates of φ.
        inner_steps: actor-critic updates per outer iteration.
        num_episodes: N, episodes per batch of the inner updates.
        outer_episodes: episodes of the batch the outer gradient (and the reported primary return)
            is estimated on, fresh each outer iteration; None for ``num_episodes``. The outer
            gradient is a product of sampled gradients and a sampled Hessian, so it needs a larger
            batch than an inner step for the same signal-to-noise ratio.
        horizon: T, steps per episode.
        discount: the environment's γ (primary objective).
        learning_rate: actor step size.
        critic_learning_rate: critic step size.
        outer_learning_rate: Adam step size of φ.
        hypergradient: ``"neumann"``, ``"cg"`` or ``"none"`` (φ fixed: baselines).
        neumann_terms: Neumann terms.
        neumann_step: Neumann step α.
        cg_iterations: conjugate-gradient steps.
        l2_penalty: λ.
        entropy_coefficient: β ≥ 0, weight of the policy's entropy in the inner objective. A softmax
            policy trained by policy gradient alone can go nearly deterministic, and every sampled
            gradient, the outer one included, shrinks with the probability left to the other actions.
        normalize_advantages: scale the inner advantages to zero mean and unit variance over the
            batch's live steps, so the actor's step does not grow with the scale of r_φ, which
            the outer loop changes (on by default; off is the raw policy gradient, with which BARFI
            stalled or collapsed in many CartPole seeds: docs/barfi.md).
        learn_discount: learn γ_φ.
    """

    num_actions: int
    outer_iterations: int = 50
    inner_steps: int = 10
    num_episodes: int = 16
    outer_episodes: int | None = None
    horizon: int = 200
    discount: float = 0.99
    learning_rate: float = 0.01
    critic_learning_rate: float = 0.01
    outer_learning_rate: float = 0.01
    hypergradient: str = "neumann"
    neumann_terms: int = 5
    neumann_step: float = 0.01
    cg_iterations: int = 5
    l2_penalty: float = 1e-3
    entropy_coefficient: float = 0.0
    normalize_advantages: bool = True
    learn_discount: bool = True

    def __post_init__(self) -> None:
        for name in ("num_actions", "outer_iterations", "inner_steps", "num_episodes", "horizon", "cg_iterations"):
            check_int(name, getattr(self, name), low=1)
        check_int("neumann_terms", self.neumann_terms, low=0)
        if self.outer_episodes is not None:
            check_int("outer_episodes", self.outer_episodes, low=1)
        check_real("discount", self.discount, low=0.0, high=1.0, low_open=True, high_open=True)
        reals = ("learning_rate", "critic_learning_rate", "outer_learning_rate", "neumann_step", "l2_penalty")
        for name in (*reals, "entropy_coefficient"):
            check_real(name, getattr(self, name), low=0.0)
        if self.hypergradient not in ("neumann", "cg", "none"):
            raise ValueError(f"hypergradient: expected 'neumann', 'cg' or 'none', got {self.hypergradient!r}")


class Batch(NamedTuple):
    """N episodes of T steps."""

    obs: jax.Array  # [N, T, F] o_t
    actions: jax.Array  # [N, T] int a_t
    alive: jax.Array  # [N, T] float 1 before termination, 0 after
    primary: jax.Array  # [N, T] r_p
    auxiliary: jax.Array  # [N, T] r_aux
    blend_inputs: jax.Array  # [N, T, F] inputs of the blend (the observations)


class ActorCriticResult(NamedTuple):
    """Outcome of one sampled bilevel run (leading [N] axis over seeds)."""

    params: BlendParams  # final φ
    policy_params: jax.Array  # [F + 1, A] final θ
    primary_return: jax.Array  # [I] mean undiscounted primary return of the batch after each outer iteration
    coefficients: jax.Array  # [I, 3] mean (φ1, φ2, φ3) over visited steps
    discount: jax.Array  # [I] γ_φ
    diverged: jax.Array  # [] bool
    diverged_at: jax.Array  # [] int32, −1 if none


def _features(obs: jax.Array) -> jax.Array:
    return jnp.concatenate([obs, jnp.ones(obs.shape[:-1] + (1,), obs.dtype)], axis=-1)


def _rollout(
    env: FunctionalEnv,
    components: ComponentsFn,
    theta: jax.Array,
    key: jax.Array,
    config: ActorCriticConfig,
    episodes: int,
) -> Batch:
    def episode(key: jax.Array) -> Batch:
        start_key, key = jax.random.split(key)
        state = env.initial(start_key)

        def step(carry: tuple[Any, jax.Array, jax.Array], _: None) -> tuple[tuple[Any, jax.Array, jax.Array], tuple]:
            state, alive, key = carry
            key, act_key, step_key = jax.random.split(key, 3)
            obs = jnp.asarray(env.observation(state, step_key), jnp.float32)
            action = jax.random.categorical(act_key, _features(obs) @ theta)
            next_state = env.transition(state, action, step_key)
            next_obs = jnp.asarray(env.observation(next_state, step_key), jnp.float32)
            r_p, r_aux = components(obs, action, next_obs)
            ended = jnp.asarray(env.terminal(next_state, step_key), bool)
            out = (obs, action, alive, jnp.asarray(r_p, jnp.float32), jnp.asarray(r_aux, jnp.float32))
            return (next_state, alive * (1.0 - ended.astype(jnp.float32)), key), out

        _, (obs, actions, alive, r_p, r_aux) = jax.lax.scan(step, (state, jnp.ones(()), key), None, config.horizon)
        return Batch(obs, actions, alive, r_p, r_aux, obs)

    return jax.vmap(episode)(jax.random.split(key, episodes))


def _discounted_to_go(rewards: jax.Array, discount: jax.Array) -> jax.Array:
    def back(carry: jax.Array, r: jax.Array) -> tuple[jax.Array, jax.Array]:
        carry = r + discount * carry
        return carry, carry

    return jax.lax.scan(back, jnp.zeros(rewards.shape[0]), rewards.T, reverse=True)[1].T


def _log_policy(theta: jax.Array, batch: Batch) -> jax.Array:
    """log π_θ(·|o_t) for every step: ``[N, T, A]``."""
    return jax.nn.log_softmax(_features(batch.obs) @ theta)


def _taken(log_pi: jax.Array, batch: Batch) -> jax.Array:
    """log π_θ(a_t|o_t) of the actions taken: ``[N, T]``."""
    return jnp.take_along_axis(log_pi, batch.actions[..., None], axis=-1)[..., 0]


def _live_mean(values: jax.Array, alive: jax.Array) -> jax.Array:
    """Mean of ``values`` ``[N, T, ...]`` over the live steps (``alive`` ``[N, T]``)."""
    weights = alive.reshape(alive.shape + (1,) * (values.ndim - 2))
    return jnp.sum(values * weights, axis=(0, 1)) / jnp.maximum(jnp.sum(alive), 1.0)


def _run(
    env: FunctionalEnv,
    components: ComponentsFn,
    blend: BlendParameterisation,
    config: ActorCriticConfig,
    blend_params: Any,
    num_features: int,
    key: jax.Array,
) -> ActorCriticResult:
    theta = jnp.zeros((num_features + 1, config.num_actions), jnp.float32)
    psi = jnp.zeros(num_features + 1, jnp.float32)
    logit = jnp.log(config.discount / (1.0 - config.discount)).astype(jnp.float32)
    phi = BlendParams(blend_params, logit)
    optimizer = optax.adam(config.outer_learning_rate)
    steps = jnp.arange(config.horizon, dtype=jnp.float32)

    def blended(p: BlendParams, batch: Batch) -> tuple[jax.Array, jax.Array]:
        coefficients = blend.coefficients(p.blend, batch.blend_inputs)
        reward = blend_rewards(coefficients, batch.primary, batch.auxiliary) * batch.alive
        gamma = learned_discount(p.discount_logit) if config.learn_discount else jnp.asarray(config.discount)
        return reward, gamma

    def surrogate(t: jax.Array, p: BlendParams, batch: Batch, critic: jax.Array) -> jax.Array:
        reward, gamma = blended(p, batch)
        returns = _discounted_to_go(reward, gamma)
        advantage = returns - jax.lax.stop_gradient(_features(batch.obs) @ critic)
        if config.normalize_advantages:
            live = jnp.maximum(jnp.sum(batch.alive), 1.0)
            mean = jnp.sum(advantage * batch.alive) / live
            std = jnp.sqrt(jnp.sum(batch.alive * (advantage - mean) ** 2) / live + 1e-8)
            advantage = (advantage - mean) / std
        weights = batch.alive * gamma**steps
        log_pi = _log_policy(t, batch)
        objective = jnp.mean(jnp.sum(weights * _taken(log_pi, batch) * advantage, axis=1))
        if config.entropy_coefficient > 0:
            entropy = -jnp.sum(jnp.exp(log_pi) * log_pi, axis=-1)  # [N, T]
            objective = objective + config.entropy_coefficient * jnp.mean(jnp.sum(batch.alive * entropy, axis=1))
        return objective - 0.5 * config.l2_penalty * jnp.sum(t**2)

    def primary_surrogate(t: jax.Array, batch: Batch) -> jax.Array:
        returns = _discounted_to_go(batch.primary * batch.alive, jnp.asarray(config.discount))
        advantage = returns - jnp.sum(returns * batch.alive, axis=0) / jnp.maximum(jnp.sum(batch.alive, axis=0), 1.0)
        weights = batch.alive * config.discount**steps
        return jnp.mean(jnp.sum(weights * _taken(_log_policy(t, batch), batch) * advantage, axis=1))

    def inner_step(carry: tuple, key: jax.Array) -> tuple[tuple, None]:
        t, critic, p = carry
        batch = _rollout(env, components, t, key, config, config.num_episodes)
        t = t + config.learning_rate * jax.grad(surrogate)(t, p, batch, critic)
        reward, gamma = blended(p, batch)
        targets = jax.lax.stop_gradient(_discounted_to_go(reward, gamma))

        def critic_loss(c: jax.Array) -> jax.Array:
            return _live_mean((_features(batch.obs) @ c - targets) ** 2, batch.alive)

        critic = critic - config.critic_learning_rate * jax.grad(critic_loss)(critic)
        return (t, critic, p), None

    def outer_step(carry: tuple, key: jax.Array) -> tuple[tuple, tuple]:
        t, critic, p, opt_state, diverged, diverged_at, iteration = carry
        inner_key, outer_key = jax.random.split(key)
        (new_t, new_critic, _), _ = jax.lax.scan(
            inner_step, (t, critic, p), jax.random.split(inner_key, config.inner_steps)
        )
        outer_episodes = config.num_episodes if config.outer_episodes is None else config.outer_episodes
        batch = _rollout(env, components, new_t, outer_key, config, outer_episodes)
        if config.hypergradient == "none":
            gradient = jax.tree.map(jnp.zeros_like, p)
        else:
            gradient = implicit_gradient(
                lambda a, b: surrogate(a, b, batch, new_critic),
                lambda a, b: primary_surrogate(a, batch),
                new_t,
                p,
                method="cg" if config.hypergradient == "cg" else "neumann",
                terms=config.neumann_terms,
                step=config.neumann_step,
                iterations=config.cg_iterations,
            )
        if not config.learn_discount:
            gradient = gradient._replace(discount_logit=jnp.zeros_like(gradient.discount_logit))
        updates, new_opt_state = optimizer.update(jax.tree.map(jnp.negative, gradient), opt_state, p)
        new_p = optax.apply_updates(p, updates)
        leaves = jax.tree.leaves((new_t, new_critic, new_p, gradient))
        healthy = jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in leaves]))
        now_diverged = diverged | ~healthy
        keep = functools.partial(jax.tree.map, lambda old, new: jnp.where(now_diverged, old, new))
        t, critic, p, opt_state = (
            keep(t, new_t),
            keep(critic, new_critic),
            keep(p, new_p),
            keep(opt_state, new_opt_state),
        )
        diverged_at = jnp.where(now_diverged & ~diverged, iteration, diverged_at)
        episode_return = jnp.mean(jnp.sum(batch.primary * batch.alive, axis=1))
        coefficients = blend.coefficients(p.blend, batch.blend_inputs)
        visited = _live_mean(coefficients, batch.alive)
        gamma = learned_discount(p.discount_logit) if config.learn_discount else jnp.asarray(config.discount)
        metrics = (jnp.where(now_diverged, 0.0, episode_return), visited, gamma)
        return (t, critic, p, opt_state, now_diverged, diverged_at, iteration + 1), metrics

    carry = (theta, psi, phi, optimizer.init(phi), jnp.asarray(False), jnp.asarray(-1, jnp.int32), jnp.asarray(0))
    (theta, _, phi, _, diverged, diverged_at, _), (returns, coefficients, discounts) = jax.lax.scan(
        outer_step, carry, jax.random.split(key, config.outer_iterations)
    )
    return ActorCriticResult(phi, theta, returns, coefficients, discounts, diverged, diverged_at)


@functools.partial(jax.jit, static_argnames=("env", "components", "blend", "config", "num_features"))
def _run_seeds(
    env: Any,
    components: Any,
    blend: Any,
    config: ActorCriticConfig,
    blend_params: Any,
    num_features: int,
    keys: jax.Array,
) -> ActorCriticResult:
    return jax.vmap(lambda k: _run(env, components, blend, config, blend_params, num_features, k))(keys)


def barfi_actor_critic(
    env: FunctionalEnv,
    components: ComponentsFn,
    config: ActorCriticConfig,
    keys: jax.Array,
    *,
    blend: BlendParameterisation,
    blend_params: Any = None,
) -> ActorCriticResult:
    """BARFI's bilevel loop with the sampled actor-critic inner learner, over a batch of seeds in one jitted call.

    Args:
        env: a pure JAX functional environment (gymnasium ``FuncEnv`` method names) with discrete actions.
        components: ``(obs [F], action [], next_obs [F]) -> (r_p, r_aux)``, pure JAX.
        config: the loop's settings.
        keys: ``[N]`` PRNG keys, one per seed.
        blend: a parameterisation of φ over observations ``[F]`` (e.g. :func:`linear_blend`).
        blend_params: φ's start; None for ``blend.init``.

    Returns:
        :class:`ActorCriticResult` with a leading ``[N]`` axis.

    Raises:
        TypeError, ValueError: components that are not scalars per step, or a blend that is not a
            differentiable parameterisation of the observations.
    """
    keys = jnp.asarray(keys)
    if keys.ndim != 1 or not jax.dtypes.issubdtype(keys.dtype, jax.dtypes.prng_key):
        raise TypeError(
            f"keys: expected a batch [N] of typed PRNG keys (jax.random.split), got {keys.dtype} {keys.shape}"
        )
    state = env.initial(jax.random.key(0))
    obs = jnp.asarray(env.observation(state, jax.random.key(0)), jnp.float32)
    if obs.ndim != 1:
        raise ValueError(f"env: expected observations of shape [F], got {obs.shape}")
    try:
        shapes = jax.eval_shape(components, obs, jnp.asarray(0), obs)
    except Exception as error:  # a host function or a wrong signature
        raise TypeError(
            f"components: expected a pure JAX function (obs, action, next_obs) -> (r_p, r_aux): {error}"
        ) from error
    if not isinstance(shapes, tuple) or len(shapes) != 2 or any(jnp.shape(s) != () for s in shapes):
        raise ValueError(f"components: expected two scalars (r_p, r_aux) per step, got {shapes}")
    if blend_params is None:
        blend_params = blend.init(keys[0])
    check_blend(blend, blend_params, obs, ())
    return _run_seeds(env, components, blend, config, blend_params, int(obs.shape[0]), keys)
