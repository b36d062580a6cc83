"""Adversarial IRL (AIRL) and adversarial imitation (GAIL): a JAX discriminator, an SB3 generator.

The discriminator is a :class:`rewardlab.rewards.RewardModel`. For AIRL it is potential-shaped,

    f(s, a, s', d) = g(s, a) + γ (1 − d) h(s') − h(s),
    D(s, a, s') = exp f / (exp f + π(a|s)),   logit D = f(s, a, s', d) − log π(a|s),

so that at optimum g recovers the reward up to a constant (state-only g: disentangled from the
dynamics) and f the advantage; for GAIL it is a plain classifier with logit D = g(s, a). In the
discriminator's training d is ``terminated`` (s' is terminal): a step cut by a time limit keeps
γh(s'). The generator's reward is a ``RewardFn`` and gets the wrappers' d = terminated or
truncated, so at the last step of a truncated episode it lacks γh(s') (once per episode; SB3
bootstraps its value target there). Both minimise the logistic loss with expert transitions
labelled 1 and generator transitions 0:

    L = E_expert[softplus(−logit)] + E_generator[softplus(logit)].

The generator is any SB3 agent (PPO, SAC) trained inside its ``learn`` call on the
discriminator's reward through :class:`rewardlab.wrappers.RewardVecEnvWrapper`. By default
(``generator_reward="log_odds"``) that reward is the discriminator's log-odds, as in Fu et al.:

    r = log D − log(1 − D) = f(s, a, s', d) − log π(a|s)   (AIRL),   r = g(s, a)   (GAIL),

so the generator maximises E[Σ γ^t f] plus the policy's entropy with weight exactly 1, which
makes AIRL's optimum the maximum-entropy policy of f. ``generator_reward="shaped"`` gives AIRL's
generator f alone and leaves the entropy to the RL algorithm (SAC's auto-tuned α, PPO's
``ent_coef``, often 0): the weight is then the algorithm's, not 1, and f is the advantage of a
different objective. :class:`AdversarialCallback` keeps the recent generator
transitions and, every ``round_steps`` env steps (at the end of a rollout), takes
``updates_per_round`` Adam steps on the discriminator, swaps the new parameters into the
wrapper's reward function and, for off-policy agents, relabels the replay buffer.

Use fixed-horizon tasks (``rewardlab_envs.make(..., fixed_horizon=T)``): with variable-length
episodes the sign of a learned reward alone decides whether the agent ends or prolongs them.

References:
    Fu, Luo and Levine, "Learning Robust Rewards with Adversarial Inverse Reinforcement
    Learning", ICLR 2018. Ho and Ermon, "Generative Adversarial Imitation Learning", NeurIPS
    2016. Gleave et al., imitation (HumanCompatibleAI/imitation), ``algorithms/adversarial``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import optax
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback

from rewardlab._types import Array, Transitions
from rewardlab.rewards import RewardModel, RewardNetConfig, RewardParams, aggregate_ensemble, as_reward_fn
from rewardlab.wrappers import RewardVecEnvWrapper

ADVERSARIAL_METHODS = ("airl", "gail")
"""``AdversarialConfig.method``: AIRL or GAIL."""
GENERATOR_REWARDS = ("log_odds", "shaped")
"""``AdversarialConfig.generator_reward``: log D − log(1 − D) (Fu et al.) or AIRL's f alone."""


@dataclasses.dataclass(frozen=True)
class AdversarialConfig:
    """Settings of AIRL / GAIL.

    Attributes:
        method: ``"airl"`` (shaped discriminator, logit f − log π) or ``"gail"`` (logit g).
        reward_inputs: inputs of g (``("obs",)`` is AIRL's state-only, transferable reward).
        hidden_sizes: widths of the MLPs g and h.
        discount: γ of AIRL's potential term (the generator's γ).
        learning_rate: Adam step size of the discriminator.
        batch_size: expert and generator transitions per discriminator step (each).
        updates_per_round: discriminator steps per round.
        round_steps: env steps (summed over envs) between rounds.
        generator_buffer_steps: most recent generator transitions kept for discriminator batches.
        relabel_replay: rewrite an off-policy agent's replay-buffer rewards after each round.
        generator_reward: the generator's reward. ``"log_odds"`` (default, Fu et al.):
            log D − log(1 − D), i.e. f − log π(a|s) for AIRL (entropy weight 1) and g for GAIL.
            ``"shaped"`` (AIRL only): f, the entropy left to the RL algorithm.
    """

    method: str = "airl"
    reward_inputs: tuple[str, ...] = ("obs", "act")
    hidden_sizes: tuple[int, ...] = (64, 64)
    discount: float = 0.99
    learning_rate: float = 3e-4
    batch_size: int = 256
    updates_per_round: int = 16
    round_steps: int = 1000
    generator_buffer_steps: int = 10_000
    relabel_replay: bool = True
    generator_reward: str = "log_odds"

    def __post_init__(self) -> None:
        if self.method not in ADVERSARIAL_METHODS:
            raise ValueError(f"method: expected one of {ADVERSARIAL_METHODS}, got {self.method!r}")
        if self.generator_reward not in GENERATOR_REWARDS:
            raise ValueError(f"generator_reward: expected one of {GENERATOR_REWARDS}, got {self.generator_reward!r}")
        if self.generator_reward == "shaped" and self.method != "airl":
            raise ValueError(
                f"generator_reward: 'shaped' (f without −log π) is AIRL's; GAIL's generator reward is its logit, "
                f"got generator_reward='shaped' with method={self.method!r}"
            )
        for name in ("batch_size", "updates_per_round", "round_steps", "generator_buffer_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
        if not 0.0 <= self.discount <= 1.0:
            raise ValueError(f"discount: expected a value in [0, 1], got {self.discount!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate: expected > 0, got {self.learning_rate!r}")


class DiscriminatorBatch(NamedTuple):
    """N transitions with the generator's log-probability of their actions."""

    obs: Array  # [N, *obs_shape] s
    acts: Array  # [N, *act_shape] a
    next_obs: Array  # [N, *obs_shape] s'
    dones: Array  # [N] float32 d of f: s' is terminal (terminated; a time-limit cut is not)
    log_policy: Array  # [N] float32 log π(a|s) under the current generator (0 for GAIL)


def make_discriminator(observation_space: gym.Space, action_space: gym.Space, config: AdversarialConfig) -> RewardModel:
    """The discriminator's reward model: shaped g + γ(1 − d)h(s') − h(s) for AIRL, plain g for GAIL."""
    net = RewardNetConfig(
        inputs=tuple(config.reward_inputs),
        hidden_sizes=tuple(config.hidden_sizes),
        potential_shaping=config.method == "airl",
        discount=config.discount,
    )
    return RewardModel(net, observation_space, action_space)


def discriminator_logits(model: RewardModel, params: RewardParams, batch: DiscriminatorBatch, method: str) -> jax.Array:
    """logit D ``[N]``: f − log π(a|s) (AIRL) or g (GAIL); ensemble members are averaged (pure)."""
    reward = aggregate_ensemble(model.apply(params, batch.obs, batch.acts, batch.next_obs, batch.dones), "mean")
    return reward - batch.log_policy if method == "airl" else reward


def discriminator_loss(
    model: RewardModel,
    net: Any,
    params: RewardParams,
    expert: DiscriminatorBatch,
    generator: DiscriminatorBatch,
    method: str,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """L = mean softplus(−logit_expert) + mean softplus(logit_generator), and accuracies (pure, differentiable in ``net``)."""
    params = params._replace(net=net)
    expert_logits = discriminator_logits(model, params, expert, method)
    generator_logits = discriminator_logits(model, params, generator, method)
    loss = jnp.mean(jax.nn.softplus(-expert_logits)) + jnp.mean(jax.nn.softplus(generator_logits))
    metrics = {
        "loss": loss,
        "expert_accuracy": jnp.mean(expert_logits > 0),
        "generator_accuracy": jnp.mean(generator_logits < 0),
    }
    return loss, metrics


def policy_log_prob(agent: Any, obs: np.ndarray, acts: np.ndarray) -> np.ndarray:
    """log π(a|s) of env-space actions under an SB3 agent's current policy (PPO/A2C or SAC), float32 ``[N]``."""
    import torch

    policy = agent.policy
    with torch.no_grad():
        obs_tensor = policy.obs_to_tensor(obs)[0]
        if hasattr(policy, "evaluate_actions"):  # actor-critic (PPO, A2C)
            act_tensor = torch.as_tensor(np.asarray(acts), device=policy.device)
            _, log_prob, _ = policy.evaluate_actions(obs_tensor, act_tensor)
        elif hasattr(policy, "actor"):  # SAC: squashed Gaussian over actions scaled to [-1, 1]
            scaled = np.clip(policy.scale_action(np.asarray(acts)), -1 + 1e-6, 1 - 1e-6)
            mean, log_std, kwargs = policy.actor.get_action_dist_params(obs_tensor)
            distribution = policy.actor.action_dist.proba_distribution(mean, log_std, **kwargs)
            log_prob = distribution.log_prob(torch.as_tensor(scaled, device=policy.device))
        else:
            raise ValueError(f"agent: expected an actor-critic or SAC policy, got {type(policy).__name__}")
    return log_prob.cpu().numpy().astype(np.float32).reshape(-1)


class LogOddsRewardFn:
    """The generator's reward log D − log(1 − D) = f(s, a, s', d) − log π(a|s), a host ``RewardFn``.

    Args:
        discriminator_reward: f as a ``RewardFn``.
        log_policy: ``(obs, acts) -> [N]`` log π(a|s) under the generator's current policy.

    Example:
        >>> import numpy as np
        >>> fn = LogOddsRewardFn(lambda o, a, n, d: np.ones(2), lambda o, a: np.log(np.array([0.5, 2.0])))
        >>> [round(float(x), 4) for x in fn(None, None, None, np.zeros(2))]  # 1 − log 0.5, 1 − log 2
        [1.6931, 0.3069]
    """

    def __init__(self, discriminator_reward: Any, log_policy: Any) -> None:
        self.discriminator_reward = discriminator_reward
        self.log_policy = log_policy

    def __call__(self, obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
        shaped = np.asarray(self.discriminator_reward(obs, acts, next_obs, dones), np.float32)
        return shaped - np.asarray(self.log_policy(obs, acts), np.float32)


class AdversarialCallback(BaseCallback):
    """SB3 callback that trains an AIRL/GAIL discriminator between the generator's rollouts.

    The agent's env must be (outermost) a :class:`RewardVecEnvWrapper` in ``replace`` mode; its
    ``last_transitions`` feed the generator buffer and its reward function is the
    discriminator's (swapped after each round): its log-odds f − log π(a|s) (AIRL) or g (GAIL),
    or AIRL's f alone (``config.generator_reward``). Round figures are logged as ``adversarial/*``
    and kept in :attr:`history`.

    Args:
        reward_wrapper: the agent's env.
        model: from :func:`make_discriminator`; ``params`` its initial parameters.
        expert: expert ``Transitions`` (env-space actions).
        config: settings.
        seed: seed of batch sampling.
    """

    def __init__(
        self,
        reward_wrapper: RewardVecEnvWrapper,
        model: RewardModel,
        params: RewardParams,
        expert: Transitions,
        config: AdversarialConfig,
        seed: int = 0,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        if not isinstance(reward_wrapper, RewardVecEnvWrapper):
            raise ValueError(f"reward_wrapper: expected a RewardVecEnvWrapper, got {type(reward_wrapper).__name__}")
        num_expert = int(np.shape(expert.obs)[0])
        if num_expert < 1:
            raise ValueError("expert: expected at least one transition, got 0")
        self.reward_wrapper = reward_wrapper
        self.discriminator = model
        self.config = config
        self.expert = Transitions(*(np.asarray(x) for x in expert))
        self.rng = np.random.default_rng(seed)
        self.params = model.update_normalizer(
            params, self.expert.obs
        )  # normalise with the expert's statistics, kept fixed
        self.optimizer = optax.adam(config.learning_rate)
        self.opt_state = self.optimizer.init(self.params.net)
        capacity = max(config.batch_size, config.generator_buffer_steps)
        self._buffer: dict[str, np.ndarray] | None = None
        self._capacity = capacity
        self._size = 0
        self._pos = 0
        self._last_round = 0
        self.history: list[dict[str, float]] = []
        """One record per discriminator round: its last update's metrics and the ``timestep``."""
        self.reward_fn = as_reward_fn(model, self.params)
        """The discriminator's reward (f for AIRL, g for GAIL) under the current parameters."""
        self.generator_reward_fn: Any = self.reward_fn
        """What the generator trains on (``config.generator_reward``); it relabels the replay buffer too."""
        if config.method == "airl" and config.generator_reward == "log_odds":
            self.generator_reward_fn = LogOddsRewardFn(
                self.reward_fn, lambda obs, acts: policy_log_prob(self.model, obs, acts)
            )
        reward_wrapper.set_reward_fn(self.generator_reward_fn)
        method = config.method

        def update(
            params: RewardParams, opt_state: Any, expert_batch: DiscriminatorBatch, generator_batch: DiscriminatorBatch
        ) -> tuple[RewardParams, Any, dict[str, jax.Array]]:
            (_, metrics), grads = jax.value_and_grad(
                lambda net: discriminator_loss(model, net, params, expert_batch, generator_batch, method), has_aux=True
            )(params.net)
            updates, opt_state = self.optimizer.update(grads, opt_state, params.net)
            return params._replace(net=optax.apply_updates(params.net, updates)), opt_state, metrics

        self._update = jax.jit(update)

    # Generator buffer ---------------------------------------------------------------------
    def _store(self, batch: Transitions) -> None:
        # d of the discriminator: s' is terminal. A time-limit cut (truncated) keeps γh(s').
        fields = {"obs": batch.obs, "acts": batch.acts, "next_obs": batch.next_obs, "dones": batch.terminated}
        if self._buffer is None:
            self._buffer = {
                name: np.zeros((self._capacity, *np.shape(value)[1:]), np.asarray(value).dtype)
                for name, value in fields.items()
            }
        n = int(np.shape(batch.dones)[0])
        index = (self._pos + np.arange(n)) % self._capacity
        for name, value in fields.items():
            self._buffer[name][index] = value
        self._pos = int((self._pos + n) % self._capacity)
        self._size = min(self._size + n, self._capacity)

    def _batch(self, source: dict[str, np.ndarray], size: int, method: str) -> DiscriminatorBatch:
        total = int(np.shape(source["dones"])[0])
        index = self.rng.integers(total, size=size)
        obs, acts = source["obs"][index], source["acts"][index]
        log_policy = policy_log_prob(self.model, obs, acts) if method == "airl" else np.zeros(size, np.float32)
        return DiscriminatorBatch(
            obs, acts, source["next_obs"][index], source["dones"][index].astype(np.float32), log_policy
        )

    # SB3 hooks ----------------------------------------------------------------------------
    def _on_step(self) -> bool:
        batch = self.reward_wrapper.last_transitions
        assert batch is not None  # SB3 calls _on_step after a step of the wrapper
        self._store(batch)
        return True

    def _on_rollout_end(self) -> None:
        if self.num_timesteps - self._last_round < self.config.round_steps or self._size < self.config.batch_size:
            return
        self._last_round = self.num_timesteps
        self.train_round()

    def train_round(self) -> dict[str, float]:
        """``updates_per_round`` discriminator steps; swap the reward; relabel an off-policy replay buffer."""
        cfg = self.config
        assert self._buffer is not None, "train_round: no generator transitions stored yet"
        generator = {name: array[: self._size] for name, array in self._buffer.items()}
        expert = {
            "obs": self.expert.obs,
            "acts": self.expert.acts,
            "next_obs": self.expert.next_obs,
            "dones": self.expert.terminated,
        }
        metrics = {}
        for _ in range(cfg.updates_per_round):
            expert_batch = self._batch(expert, cfg.batch_size, cfg.method)
            generator_batch = self._batch(generator, cfg.batch_size, cfg.method)
            self.params, self.opt_state, metrics = self._update(
                self.params, self.opt_state, expert_batch, generator_batch
            )
        record = {name: float(value) for name, value in metrics.items()}
        record["timestep"] = float(self.num_timesteps)
        self.history.append(record)
        for name, value in record.items():
            if name != "timestep":
                self.logger.record(f"adversarial/{name}", value)
        self.reward_fn.set_params(self.params)
        replay = getattr(self.model, "replay_buffer", None)
        if cfg.relabel_replay and isinstance(replay, ReplayBuffer):
            from rewardlab.rl import relabel_replay_buffer

            relabel_replay_buffer(replay, self.generator_reward_fn, self.model)
        return record


class AdversarialResult(NamedTuple):
    """What :func:`train_adversarial` returns; the caller holds the agent and decides what to log or save."""

    model: RewardModel  # the discriminator's reward model (AIRL: shaped; ``base_reward`` is g)
    params: RewardParams  # its final parameters
    history: list[dict[str, float]]  # one record per discriminator round


def train_adversarial(
    agent: Any,
    expert: Transitions,
    total_timesteps: int,
    config: AdversarialConfig = AdversarialConfig(),
    seed: int = 0,
    progress_bar: bool = False,
    callbacks: list[BaseCallback] | None = None,
) -> AdversarialResult:
    """Train an SB3 generator with AIRL or GAIL (``config.method``) against a discriminator of ``expert`` transitions.

    The shape of :func:`rewardlab.rl.train_pbrl`: the caller builds the agent
    (:func:`rewardlab.rl.make_agent`) on a ``RewardVecEnvWrapper`` around the task's VecEnv
    (:func:`rewardlab.rl.make_task_env`, fixed horizon); this function builds the
    discriminator (:func:`make_discriminator`), trains it inside ``agent.learn`` with
    :class:`AdversarialCallback` and returns it. AIRL shapes f with ``config.discount``: give
    the agent the same γ (``make_agent(..., gamma=config.discount)``).

    Args:
        agent: an SB3 algorithm (SAC, PPO, ...) whose env is a ``RewardVecEnvWrapper``
            (outermost) around the task's VecEnv; the wrapper's reward is replaced by the
            discriminator's.
        expert: expert ``Transitions`` with env-space actions, shaped like the env's spaces.
        total_timesteps: generator env steps.
        config: AIRL/GAIL settings.
        seed: seed of the discriminator's initial parameters and of batch sampling.
        progress_bar: show SB3's progress bar.
        callbacks: extra SB3 callbacks run alongside.

    Returns:
        :class:`AdversarialResult` with the discriminator, its final parameters and per-round figures.

    Raises:
        ValueError: ``total_timesteps`` < 1, the agent's env is not a ``RewardVecEnvWrapper``,
            or expert transitions that do not fit the env's spaces.

    Example:
        >>> from rewardlab.rl import make_agent, make_env, make_task_env, rollout
        >>> demos = rollout(None, make_env("Pendulum-v1", fixed_horizon=16), 1).transitions
        >>> config = AdversarialConfig(method="gail", hidden_sizes=(8,), batch_size=16, updates_per_round=1, round_steps=16)
        >>> venv = RewardVecEnvWrapper(make_task_env("Pendulum-v1", fixed_horizon=16))
        >>> agent = make_agent("ppo", venv, "Pendulum-v1", gamma=config.discount, n_steps=16, batch_size=16, n_epochs=1)
        >>> result = train_adversarial(agent, demos, 32, config)
        >>> [record["timestep"] for record in result.history]
        [16.0, 32.0]
    """
    if isinstance(total_timesteps, bool) or not isinstance(total_timesteps, int) or total_timesteps < 1:
        raise ValueError(f"total_timesteps: expected an integer >= 1, got {total_timesteps!r}")
    venv = agent.get_env()
    if not isinstance(venv, RewardVecEnvWrapper):
        raise ValueError(
            f"agent: expected an agent whose env is a RewardVecEnvWrapper (outermost), got {type(venv).__name__}"
        )
    model = make_discriminator(venv.observation_space, venv.action_space, config)
    obs_shape, act_shape = venv.observation_space.shape, venv.action_space.shape
    if np.shape(expert.obs)[1:] != obs_shape or np.shape(expert.next_obs)[1:] != obs_shape:
        raise ValueError(
            f"expert: expected observations [N, {', '.join(map(str, obs_shape or ()))}], got {np.shape(expert.obs)}"
        )
    if act_shape and np.shape(expert.acts)[1:] != act_shape:
        raise ValueError(
            f"expert: expected actions [N, {', '.join(map(str, act_shape or ()))}], got {np.shape(expert.acts)}"
        )
    callback = AdversarialCallback(venv, model, model.init(seed), expert, config, seed=seed)
    agent.learn(total_timesteps, callback=[callback, *(callbacks or [])], progress_bar=progress_bar)
    return AdversarialResult(model, callback.params, callback.history)
