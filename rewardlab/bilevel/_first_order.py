"""BARFI with an SB3 inner learner: a first-order outer gradient from the agent's logged rollouts.

Where the inner learner cannot be a JAX function (MuJoCo dynamics, a Stable-Baselines3 agent),
the implicit gradient of :func:`rewardlab.bilevel.barfi_actor_critic` is out of reach: there is
no Hessian-vector product through SB3's update. :func:`barfi_sb3` keeps BARFI's outer problem,

    max_φ J_p(θ(φ)),   the agent trained on r_φ = φ1 + φ2·r_p + φ3·r_aux (and γ_φ, optionally),

and replaces the outer gradient by its first-order approximation. Each inner step is treated as
one policy-gradient step on r_φ from the batch the agent has just collected,

    θ' = θ + α ĝ_φ(θ),   ĝ_φ(θ) = (1/N) Σ_t ∇_θ log π_θ(a_t|s_t) (G^φ_t − b),

with G^φ_t = Σ_{k≥t} γ_φ^{k−t} r_φ(s_k, a_k) cut at episode ends and b the batch mean, so that

    dJ_p(θ')/dφ ≈ α (∂ĝ_φ/∂φ)ᵀ ∇_θ J_p = (α/N) Σ_t u_t ∂(G^φ_t − b)/∂φ,
    u_t = ∇_θ log π_θ(a_t|s_t) · ĝ_p,   ĝ_p = (1/N) Σ_t ∇_θ log π_θ(a_t|s_t) (G^p_t − b_p),

G^p the primary reward-to-go under the environment's discount. This is the implicit gradient
−(∂²f/∂φ∂θ) H⁻¹ ∇_θ J_p with the inverse Hessian replaced by α·I, the Neumann series of
:func:`rewardlab.bilevel.neumann_inverse_hvp` with zero terms. u_t comes from PyTorch
(double backward through the agent's policy: no per-sample gradients are stored), the cross
term ∂G^φ/∂φ from JAX (``jax.grad`` of the surrogate (1/N) Σ_t u_t (G^φ_t − b) in φ). The
positive step α only scales the gradient, which Adam's normalisation removes.

What the approximation drops:

* the inverse Hessian (the curvature of the inner objective in θ): the gradient is exact for one
  plain policy-gradient step and biased for a learner near a fixed point, where the implicit term
  dominates (the ``Neumann, 0 terms`` row of docs/barfi.md's error table);
* the rest of the inner trajectory: θ depends on every earlier φ through the warm-started agent,
  and only the last step's dependence is differentiated (one-step unrolling);
* SB3's actual update: PPO's clipped ratio, its several epochs of minibatch Adam steps, GAE with a
  learned critic (whose targets also depend on φ) are all replaced by the Monte-Carlo policy
  gradient above; returns are cut at the rollout's end without bootstrapping;
* the variance of a gradient estimated from a single rollout: ∇_θ J_p and the cross term come
  from the same samples (their product is biased by the samples' covariance), and with few
  episodes the sign of a coefficient's gradient is noisy.

References:
    Gupta, Chandak, Jordan, Thomas and da Silva, "Behavior Alignment via Reward Function
    Optimization", NeurIPS 2023 (arXiv:2310.19007).
    Williams, "Simple statistical gradient-following algorithms for connectionist reinforcement
    learning", Machine Learning 1992.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

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
    discount_logit,
    learned_discount,
    table_blend,
)

# Host components: (obs [N, ...], acts [N, ...], next_obs [N, ...], dones [N]) -> (r_p [N], r_aux [N]).
HostComponentsFn = Callable[[Any, Any, Any, np.ndarray], tuple[Any, Any]]
# Host blend inputs: (obs [N, ...], acts [N, ...]) -> [N, *input_shape] (features or integer indices).
BlendInputsFn = Callable[[Any, Any], Any]


@dataclasses.dataclass(frozen=True)
class FirstOrderConfig:
    """Settings of :func:`barfi_sb3`.

    Attributes:
        outer_iterations: updates of φ; the agent trains ``inner_timesteps`` env steps before each.
        inner_timesteps: env steps of ``agent.learn`` per outer iteration (whole rollouts: SB3 rounds up).
        outer_learning_rate: Adam step size of φ.
        discount: the environment's discount, under which J_p is the primary objective; also γ_φ's start.
        learn_discount: learn γ_φ too and give it to the agent (its ``gamma``) after each update.
        update_blend: False keeps φ fixed (a baseline trained on a fixed blend, logged the same way).
        max_gradient_norm: the outer gradient is clipped to this global norm before Adam.
    """

    outer_iterations: int = 50
    inner_timesteps: int = 2048
    outer_learning_rate: float = 0.05
    discount: float = 0.99
    learn_discount: bool = False
    update_blend: bool = True
    max_gradient_norm: float = 10.0

    def __post_init__(self) -> None:
        check_int("outer_iterations", self.outer_iterations, low=1)
        check_int("inner_timesteps", self.inner_timesteps, low=1)
        check_real("outer_learning_rate", self.outer_learning_rate, low=0.0)
        check_real("discount", self.discount, low=0.0, high=1.0, low_open=True, high_open=True)
        check_real("max_gradient_norm", self.max_gradient_norm, low=0.0, low_open=True)
        for name in ("learn_discount", "update_blend"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}: expected a bool, got {getattr(self, name)!r}")


class RolloutLog(NamedTuple):
    """What the reward function saw during one rollout of T steps on E envs."""

    primary: np.ndarray  # [T, E] r_p
    auxiliary: np.ndarray  # [T, E] r_aux
    blend_inputs: np.ndarray  # [T, E, *input_shape] the blend's inputs
    dones: np.ndarray  # [T, E] bool: the episode ended after step t


class FirstOrderResult(NamedTuple):
    """Outcome of :func:`barfi_sb3`: one value per outer iteration (leading axis [I])."""

    primary_return: np.ndarray  # [I] mean undiscounted Σ r_p of the episodes that ended in the iteration; NaN if none
    auxiliary_return: np.ndarray  # [I] mean undiscounted Σ r_aux of the same episodes; NaN if none
    episodes: np.ndarray  # [I] int episodes that ended in the iteration
    coefficients: np.ndarray  # [I, 3] (φ1, φ2, φ3) averaged over the iteration's transitions
    discount: np.ndarray  # [I] γ_φ the agent trained with
    gradient_norm: np.ndarray  # [I] norm of the outer gradient (0 with a fixed blend)
    timesteps: np.ndarray  # [I] the agent's env steps at the end of the iteration
    params: BlendParams  # the final φ
    diverged: bool  # a non-finite outer gradient or φ froze φ at its last finite value
    diverged_at: int  # the outer iteration where that happened; -1 if never
    agent: Any  # the trained SB3 agent


def discounted_returns(rewards: Any, dones: Any, discount: Any) -> jax.Array:
    """G_t = r_t + γ (1 − done_t) G_{t+1} over time-major ``[T, E]`` arrays, cut at the batch end.

    Example:
        >>> import numpy as np
        >>> discounted_returns(np.ones((3, 1)), np.array([[False], [True], [False]]), 0.5)[:, 0].tolist()
        [1.5, 1.0, 1.0]
    """
    rewards = jnp.asarray(rewards, jnp.float32)
    alive = 1.0 - jnp.asarray(dones, jnp.float32)

    def step(carry: jax.Array, inputs: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        reward, alive_t = inputs
        value = reward + discount * alive_t * carry
        return value, value

    _, returns = jax.lax.scan(step, jnp.zeros(rewards.shape[1:], jnp.float32), (rewards, alive), reverse=True)
    return returns


def first_order_surrogate(
    params: BlendParams,
    blend: BlendParameterisation,
    log: RolloutLog,
    score_products: Any,
    discount: Any,
    learn_discount: bool,
) -> jax.Array:
    """(1/N) Σ_t u_t (G^φ_t − mean G^φ): its gradient in φ is the first-order outer gradient (up to α > 0).

    Args:
        params: φ (the blend's parameters and γ_φ's logit).
        blend: the blend parameterisation.
        log: the rollout's components, blend inputs and episode ends (``[T, E]``).
        score_products: ``[T, E]`` u_t = ∇_θ log π(a_t|s_t) · ĝ_p, held fixed.
        discount: the discount of G^φ when γ_φ is not learned.
        learn_discount: use γ_φ = sigmoid(params.discount_logit) in G^φ.
    """
    coefficients = blend.coefficients(params.blend, log.blend_inputs)
    rewards = blend_rewards(coefficients, log.primary, log.auxiliary)
    gamma = learned_discount(params.discount_logit) if learn_discount else discount
    returns = discounted_returns(rewards, log.dones, gamma)
    return jnp.mean(jnp.asarray(score_products, jnp.float32) * (returns - jnp.mean(returns)))


def policy_score_products(policy: Any, observations: np.ndarray, actions: np.ndarray, primary_advantages: Any) -> Any:
    """u_t = ∇_θ log π_θ(a_t|s_t) · ĝ_p with ĝ_p = (1/N) Σ_t ∇_θ log π_θ(a_t|s_t) A^p_t, for an SB3 policy.

    One backward pass gives ĝ_p; a second, through ∇_θ Σ_t v_t log π_θ(a_t|s_t) at v = 0,
    gives all N products without forming per-sample gradients.

    Args:
        policy: an SB3 ``ActorCriticPolicy`` (``evaluate_actions(obs, actions) -> (values, log_prob, entropy)``).
        observations: ``[N, *obs_shape]`` what the policy saw.
        actions: ``[N, *act_shape]`` the actions it sampled (before clipping).
        primary_advantages: ``[N]`` A^p_t.

    Returns:
        ``(u [N] np.float64, ‖ĝ_p‖)``.
    """
    import torch

    parameters = [p for p in policy.parameters() if p.requires_grad]
    obs = torch.as_tensor(np.asarray(observations), dtype=torch.float32, device=policy.device)
    acts = torch.as_tensor(np.asarray(actions), device=policy.device)
    advantages = torch.as_tensor(np.asarray(primary_advantages), dtype=torch.float32, device=policy.device)
    with torch.enable_grad():
        _, log_prob, _ = policy.evaluate_actions(obs, acts)
        log_prob = log_prob.reshape(-1)
        primary_gradient = torch.autograd.grad(
            (log_prob * advantages).mean(), parameters, retain_graph=True, allow_unused=True
        )
        probe = torch.zeros_like(log_prob, requires_grad=True)
        weighted = torch.autograd.grad((log_prob * probe).sum(), parameters, create_graph=True, allow_unused=True)
        inner = sum(
            (w * g.detach()).sum()
            for w, g in zip(weighted, primary_gradient, strict=True)
            if w is not None and g is not None
        )
        if not isinstance(inner, torch.Tensor) or not inner.requires_grad:
            return np.zeros(log_prob.shape[0]), 0.0
        (products,) = torch.autograd.grad(inner, probe)
    norm = float(np.sqrt(sum(float((g.detach() ** 2).sum()) for g in primary_gradient if g is not None)))
    return products.detach().cpu().numpy().astype(np.float64), norm


class BlendRewardFn:
    """The ``RewardFn`` r_φ = φ1 + φ2·r_p + φ3·r_aux at the current φ; logs what it sees for the outer gradient.

    ``components(obs, acts, next_obs, dones) -> (r_p [N], r_aux [N])`` and ``blend_inputs(obs,
    acts) -> [N, *input_shape]`` are host functions; the blend's coefficients are one jitted call.
    """

    def __init__(
        self,
        components: HostComponentsFn,
        blend: BlendParameterisation,
        params: BlendParams,
        blend_inputs: BlendInputsFn,
    ) -> None:
        self.components = components
        self.blend = blend
        self.params = params
        self.blend_inputs = blend_inputs
        self._coefficients = jax.jit(blend.coefficients)
        self._rewards = jax.jit(lambda params, inputs, p, a: blend_rewards(blend.coefficients(params, inputs), p, a))
        self.records: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def __repr__(self) -> str:
        return f"BlendRewardFn(blend={self.blend!r})"

    def parts(self, obs: Any, acts: Any, next_obs: Any, dones: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(r_p, r_aux, blend inputs) of N transitions, checked."""
        n = np.asarray(dones).shape[0]
        primary, auxiliary = self.components(obs, acts, next_obs, dones)
        primary = np.asarray(primary, np.float32)
        auxiliary = np.asarray(auxiliary, np.float32)
        for name, value in (("r_p", primary), ("r_aux", auxiliary)):
            if value.shape != (n,):
                raise ValueError(f"components: expected {name} of shape ({n},) for {n} transitions, got {value.shape}")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"components: {name} has non-finite values")
        inputs = np.asarray(self.blend_inputs(obs, acts))
        if inputs.shape[:1] != (n,):
            raise ValueError(f"blend_inputs: expected a leading axis of {n} transitions, got shape {inputs.shape}")
        return primary, auxiliary, inputs

    def __call__(self, obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
        primary, auxiliary, inputs = self.parts(obs, acts, next_obs, dones)
        self.records.append((primary, auxiliary, inputs, np.asarray(dones, bool).copy()))
        return np.asarray(self._rewards(self.params.blend, inputs, primary, auxiliary), np.float32)

    def take_log(self, steps: int) -> RolloutLog:
        """The last ``steps`` records as a :class:`RolloutLog`; clears the records."""
        if len(self.records) < steps:
            raise RuntimeError(f"the reward function saw {len(self.records)} steps of a {steps}-step rollout")
        records = self.records[-steps:]
        self.records = []
        primary, auxiliary, inputs, dones = (np.stack(column) for column in zip(*records, strict=True))
        return RolloutLog(primary, auxiliary, inputs, dones)


def _constant_inputs(obs: Any, acts: Any) -> np.ndarray:
    del obs
    return np.zeros(np.asarray(acts).shape[0], np.int32)


def barfi_sb3(
    make_agent: Callable[[Any], Any],
    venv: Any,
    components: HostComponentsFn,
    config: FirstOrderConfig,
    *,
    blend: BlendParameterisation | None = None,
    blend_params: Any = None,
    blend_inputs: BlendInputsFn | None = None,
    policy_env: Callable[[Any], Any] | None = None,
    key: jax.Array | None = None,
) -> FirstOrderResult:
    """BARFI with a warm-started SB3 on-policy agent as the inner learner and a first-order outer gradient.

    The agent trains on r_φ through :class:`rewardlab.wrappers.RewardVecEnvWrapper` (``mode="replace"``);
    after each outer iteration's ``inner_timesteps`` it continues from where it stopped (same
    weights, optimiser state and episodes) under the updated φ. Every rollout the agent
    collects gives one first-order outer gradient (module docstring) computed before PPO
    updates on it, when the data are on-policy; the iteration's gradients are averaged, clipped
    and applied with Adam.

    Args:
        make_agent: builds the agent on the VecEnv it is given, e.g.
            ``lambda env: PPO("MlpPolicy", env, n_steps=1024)``; an on-policy SB3 algorithm (PPO, A2C).
        venv: the SB3 VecEnv (the reward function sees its observations).
        components: ``(obs, acts, next_obs, dones) -> (r_p [N], r_aux [N])`` on the host.
        config: the loop's settings.
        blend: how φ depends on the inputs; default one global (φ1, φ2, φ3), ``table_blend(1)``.
        blend_params: φ's start (default ``blend.init(key)``: the naive sum).
        blend_inputs: ``(obs, acts) -> [N, *input_shape]``, the blend's inputs (default index 0).
        policy_env: wraps the reward wrapper into what the agent sees (e.g. hides observation
            entries the reward needs and the policy should not); default none.
        key: PRNG key for ``blend.init`` (a network blend's hidden weights); default ``jax.random.key(0)``.

    Returns:
        A :class:`FirstOrderResult`.

    Raises:
        TypeError: the agent is not an on-policy SB3 algorithm, or the blend is not differentiable.
        ValueError: components or blend inputs of the wrong shape, non-finite components.

    Example:
        >>> import gymnasium as gym, numpy as np
        >>> from stable_baselines3 import PPO
        >>> from stable_baselines3.common.vec_env import DummyVecEnv
        >>> def components(obs, acts, next_obs, dones):  # Pendulum: cos θ' and a torque cost
        ...     return next_obs[:, 0], -np.square(acts[:, 0])
        >>> result = barfi_sb3(
        ...     lambda env: PPO("MlpPolicy", env, n_steps=64, batch_size=64, n_epochs=1, device="cpu", seed=0),
        ...     DummyVecEnv([lambda: gym.make("Pendulum-v1")]), components,
        ...     FirstOrderConfig(outer_iterations=2, inner_timesteps=64))
        >>> result.coefficients.shape, bool(np.all(np.isfinite(result.coefficients)))
        ((2, 3), True)
    """
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm

    from rewardlab.wrappers import RewardVecEnvWrapper

    if not isinstance(config, FirstOrderConfig):
        raise TypeError(f"config: expected a FirstOrderConfig, got {type(config).__name__}")
    if blend is None:
        blend = table_blend(1)
        blend_inputs = blend_inputs or _constant_inputs
    if blend_inputs is None:
        raise ValueError("blend_inputs: a blend other than the default global one needs its inputs, got None")
    params = BlendParams(
        blend=blend.init(jax.random.key(0) if key is None else key)
        if blend_params is None
        else jax.tree.map(jnp.asarray, blend_params),
        discount_logit=discount_logit(config.discount),
    )
    reward_fn = BlendRewardFn(components, blend, params, blend_inputs)
    reward_env = RewardVecEnvWrapper(venv, reward_fn, mode="replace", name="barfi")
    agent = make_agent(policy_env(reward_env) if policy_env is not None else reward_env)
    if not isinstance(agent, OnPolicyAlgorithm):
        raise TypeError(
            f"make_agent: expected an on-policy SB3 algorithm (PPO, A2C), got {type(agent).__name__}; the first-order "
            "gradient differentiates a policy-gradient step on the agent's own rollout"
        )
    buffer = agent.rollout_buffer
    if isinstance(buffer.observations, dict):
        raise TypeError("make_agent: dict observations are not supported by the first-order outer gradient")
    # Check the blend once on the first transition's inputs, as every other loop of the subpackage does.
    probe_obs = np.stack([venv.observation_space.sample() for _ in range(venv.num_envs)])
    probe_acts = np.stack([venv.action_space.sample() for _ in range(venv.num_envs)])
    check_blend(blend, params.blend, np.asarray(blend_inputs(probe_obs, probe_acts)), (venv.num_envs,))

    optimiser = optax.chain(optax.clip_by_global_norm(config.max_gradient_norm), optax.adam(config.outer_learning_rate))
    opt_state = optimiser.init(params)

    @jax.jit
    def outer_step(params: BlendParams, opt_state: Any, gradient_sum: BlendParams, count: jax.Array) -> Any:
        ascent = jax.tree.map(lambda g: -g / count, gradient_sum)  # optax minimises
        if not config.learn_discount:
            ascent = ascent._replace(discount_logit=jnp.zeros_like(ascent.discount_logit))
        updates, new_state = optimiser.update(ascent, opt_state, params)
        return optax.apply_updates(params, updates), new_state, optax.global_norm(ascent)

    add = jax.jit(lambda a, b: jax.tree.map(jnp.add, a, b))
    returns_of = jax.jit(discounted_returns)
    surrogate_grad = jax.jit(jax.grad(first_order_surrogate), static_argnums=(1, 5))
    gradients: list[BlendParams] = []  # the sum of this iteration's rollout gradients
    rollouts = [0]
    coefficient_sums: list[np.ndarray] = []
    returns_p = np.zeros(venv.num_envs)
    returns_aux = np.zeros(venv.num_envs)
    finished: list[tuple[float, float]] = []

    def on_rollout(log: RolloutLog) -> None:
        nonlocal returns_p, returns_aux
        coefficient_sums.append(
            np.asarray(reward_fn._coefficients(reward_fn.params.blend, log.blend_inputs)).reshape(-1, 3)
        )
        for t in range(log.dones.shape[0]):
            returns_p = returns_p + log.primary[t]
            returns_aux = returns_aux + log.auxiliary[t]
            for env in np.flatnonzero(log.dones[t]):
                finished.append((float(returns_p[env]), float(returns_aux[env])))
                returns_p[env] = returns_aux[env] = 0.0
        if not config.update_blend:
            return
        primary_returns = np.asarray(returns_of(log.primary, log.dones, config.discount), np.float64)
        advantages = primary_returns - primary_returns.mean()
        steps, envs = log.dones.shape
        observations = buffer.observations.reshape(steps * envs, *buffer.observations.shape[2:])
        actions = buffer.actions.reshape(steps * envs, *buffer.actions.shape[2:])
        products, _ = policy_score_products(agent.policy, observations, actions, advantages.reshape(-1))
        gamma = float(learned_discount(reward_fn.params.discount_logit)) if config.learn_discount else config.discount
        gradient = surrogate_grad(
            reward_fn.params,
            blend,
            jax.tree.map(jnp.asarray, log),
            jnp.asarray(products.reshape(steps, envs), jnp.float32),
            gamma,
            config.learn_discount,
        )
        gradients.append(gradient if not gradients else add(gradients.pop(), gradient))
        rollouts[0] += 1

    class _Logger(BaseCallback):
        def _on_rollout_start(self) -> None:
            reward_fn.records = []

        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:
            on_rollout(reward_fn.take_log(buffer.buffer_size))

    callback = _Logger()
    history: dict[str, list[Any]] = {name: [] for name in FirstOrderResult._fields[:7]}
    diverged_at = -1
    for iteration in range(config.outer_iterations):
        gradients.clear()
        rollouts[0] = 0
        coefficient_sums.clear()
        finished.clear()
        gamma_used = float(agent.gamma)
        agent.learn(config.inner_timesteps, callback=callback, reset_num_timesteps=iteration == 0)
        norm = 0.0
        if config.update_blend and gradients and diverged_at < 0:
            new_params, new_state, gradient_norm = outer_step(
                reward_fn.params, opt_state, gradients[0], jnp.float32(rollouts[0])
            )
            norm = float(gradient_norm)
            if np.isfinite(norm) and all(np.all(np.isfinite(x)) for x in jax.device_get(jax.tree.leaves(new_params))):
                reward_fn.params, opt_state = new_params, new_state
                if config.learn_discount:
                    agent.gamma = buffer.gamma = float(learned_discount(new_params.discount_logit))
            else:
                diverged_at = iteration
                norm = float("nan") if not np.isfinite(norm) else norm
        coefficients = np.concatenate(coefficient_sums).mean(axis=0) if coefficient_sums else np.full(3, np.nan)
        episode_returns = np.asarray(finished, np.float64).reshape(-1, 2)
        history["primary_return"].append(episode_returns[:, 0].mean() if len(episode_returns) else np.nan)
        history["auxiliary_return"].append(episode_returns[:, 1].mean() if len(episode_returns) else np.nan)
        history["episodes"].append(len(episode_returns))
        history["coefficients"].append(coefficients)
        history["discount"].append(gamma_used)
        history["gradient_norm"].append(norm if np.isfinite(norm) else 0.0)
        history["timesteps"].append(agent.num_timesteps)
    arrays = {name: np.asarray(values) for name, values in history.items()}
    return FirstOrderResult(
        **arrays,
        params=jax.device_get(reward_fn.params),
        diverged=diverged_at >= 0,
        diverged_at=diverged_at,
        agent=agent,
    )
