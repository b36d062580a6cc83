"""Measuring reward over-optimisation: an agent trained on a proxy (learned) reward, checked against the true one.

At every checkpoint the harness evaluates the current policy for a few episodes and records

* the proxy return Σ_t r̂_t (the learned reward the agent optimises),
* the true return Σ_t r_t (the environment reward),
* the distance of the policy's state visitation from the reward model's training data,
  the squared maximum mean discrepancy with a Gaussian kernel,
  MMD² = E k(x, x') + E k(y, y') − 2 E k(x, y), bandwidth from the median heuristic on the
  training data, and
* the policy's divergence from its start, KL(π ‖ π₀) = E_{s∈S} KL(π(·|s) ‖ π₀(·|s)) in nats,
  averaged over a fixed set S of states, π₀ the policy before training (the x-axis of Gao et
  al.'s and Coste et al.'s over-optimisation curves, where it measures how far optimisation
  has moved the policy).

Over-optimisation (Goodhart's law) shows as the proxy return rising while the true return
stalls or falls, typically as the visitation leaves the training distribution; plotted as
true return against KL(π ‖ π₀), it is a curve that rises, peaks and falls.

References:
    Gao, Schulman & Hilton, "Scaling Laws for Reward Model Overoptimization", ICML 2023.
    Coste et al., "Reward Model Ensembles Help Mitigate Overoptimization", ICLR 2024.
    Gretton et al., "A Kernel Two-Sample Test", JMLR 2012 (MMD).
    Kullback & Leibler, "On Information and Sufficiency", 1951.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from rewardlab._types import RewardFn
from rewardlab.rl._agents import default_num_envs, make_agent
from rewardlab.rl._rollouts import make_env, make_task_env, reward_returns, rollout
from rewardlab.wrappers import RewardVecEnvWrapper

_MAX_MMD_POINTS = 1024
_MAX_KL_POINTS = 512


class OveroptimizationResult(NamedTuple):
    """Per-checkpoint figures of one training run (C checkpoints, the first before training)."""

    timesteps: np.ndarray  # [C] int env steps at the checkpoint
    proxy_return: np.ndarray  # [C] float mean episode return under the proxy reward
    true_return: np.ndarray  # [C] float mean episode return under the env reward
    visitation_mmd: np.ndarray  # [C] float MMD² between visited states and the reward model's training states
    policy_kl: np.ndarray  # [C] float KL(π ‖ π₀) on the fixed states, nats (0 at the first checkpoint)

    def to_dict(self) -> dict[str, list]:
        """Plain lists, for JSON."""
        return {name: np.asarray(value).tolist() for name, value in self._asdict().items()}


def median_bandwidth(points: Any) -> float:
    """Median pairwise Euclidean distance of ``points`` [N, D] (the kernel bandwidth heuristic).

    Example:
        >>> median_bandwidth(np.array([[0.0], [1.0], [3.0]]))
        2.0
    """
    points = jnp.asarray(points, jnp.float32)
    distances = jnp.sqrt(jnp.maximum(jnp.sum((points[:, None] - points[None]) ** 2, -1), 0.0))
    upper = distances[np.triu_indices(points.shape[0], 1)]
    return float(jnp.median(upper)) if upper.size else 1.0


@jax.jit
def visitation_mmd(visited: Any, reference: Any, bandwidth: Any) -> jax.Array:
    """Biased MMD² estimate with k(x, y) = exp(−‖x − y‖²/(2h²)) between ``visited`` [N, D] and ``reference`` [M, D].

    Example:
        >>> x = jnp.zeros((4, 2))
        >>> float(visitation_mmd(x, x, 1.0)), round(float(visitation_mmd(x, x + 10.0, 1.0)), 4)
        (0.0, 2.0)
    """

    def kernel_mean(a: jax.Array, b: jax.Array) -> jax.Array:
        squared = jnp.sum(a * a, 1)[:, None] + jnp.sum(b * b, 1)[None] - 2.0 * a @ b.T
        return jnp.mean(jnp.exp(-jnp.maximum(squared, 0.0) / (2.0 * bandwidth**2)))

    return jnp.maximum(
        kernel_mean(visited, visited) + kernel_mean(reference, reference) - 2.0 * kernel_mean(visited, reference), 0.0
    )


def _subsample(points: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    if points.shape[0] <= size:
        return points
    return points[rng.choice(points.shape[0], size, replace=False)]


def action_distribution(agent: Any, obs: Any) -> Any:
    """The torch action distribution π(·|s) of an SB3 agent on the states ``obs`` [N, ...], without gradients.

    On-policy agents (PPO, A2C; gSDE included) give ``policy.get_distribution``; SAC gives its
    actor's Gaussian before the tanh squashing, which is a bijection, so KL divergences between
    two such distributions equal those between the squashed ones.

    Args:
        agent: an SB3 ``BaseAlgorithm`` (PPO, A2C, SAC).
        obs: a batch of observations.

    Returns:
        A ``torch.distributions.Distribution`` with batch shape [N] (Categorical) or [N, A] (Normal).

    Raises:
        TypeError: the agent's policy exposes no action distribution (deterministic DDPG/TD3).
    """
    import torch

    policy = agent.policy
    actor: Any = getattr(policy, "actor", None)
    with torch.no_grad():
        if hasattr(policy, "get_distribution"):
            return policy.get_distribution(policy.obs_to_tensor(np.asarray(obs))[0]).distribution
        if hasattr(actor, "get_action_dist_params"):
            mean, log_std, kwargs = actor.get_action_dist_params(policy.obs_to_tensor(np.asarray(obs))[0])
            return actor.action_dist.proba_distribution(mean, log_std, **kwargs).distribution
    raise TypeError(f"agent: expected a policy with an action distribution (PPO, A2C, SAC), got {type(agent).__name__}")


def mean_kl(current: Any, initial: Any) -> float:
    """E_s KL(current(·|s) ‖ initial(·|s)) over the batch of two torch distributions on the same states.

    Independent action dimensions add up (a diagonal Gaussian's KL is the sum of its
    coordinates'); the mean is over the states.

    Example:
        >>> import torch
        >>> p = torch.distributions.Normal(torch.zeros(4, 2), torch.ones(4, 2))
        >>> q = torch.distributions.Normal(torch.ones(4, 2), torch.ones(4, 2))
        >>> mean_kl(p, q)  # two coordinates, each (0 − 1)²/2
        1.0
    """
    import torch

    divergence = torch.distributions.kl_divergence(current, initial)
    if divergence.ndim > 1:
        divergence = divergence.reshape(divergence.shape[0], -1).sum(-1)
    return float(divergence.mean())


class OveroptimizationCallback(BaseCallback):
    """Evaluates proxy and true return, visitation MMD and KL(π ‖ π₀) every ``checkpoint_every`` env steps.

    Args:
        eval_env: a gymnasium env (true reward) for the evaluation episodes.
        proxy_reward_fn: the ``RewardFn`` the agent is trained on.
        reference_obs: ``[M, D]`` observations the reward model was trained on.
        checkpoint_every: env steps between checkpoints.
        eval_episodes: episodes per checkpoint; episode e starts from ``reset(seed=seed + 10_000 + e)``
            at every checkpoint, so checkpoints differ only in the policy (:func:`rewardlab.rl.rollout`).
        seed: seed of the evaluation episodes and the MMD and KL subsampling.
        kl_obs: the fixed states S of KL(π ‖ π₀) (shaped as the env's observations); None: at most
            512 of ``reference_obs``, drawn once.

    Checkpoints fall at the start of a rollout, after the update on the previous one, and at
    the end of training, so each evaluates the policy trained on the steps it is labelled
    with. π₀ is the policy at the first checkpoint (before training). ``records`` holds one
    (timesteps, proxy_return, true_return, visitation_mmd, policy_kl) per checkpoint.
    """

    def __init__(
        self,
        eval_env: gym.Env,
        proxy_reward_fn: RewardFn,
        reference_obs: Any,
        checkpoint_every: int,
        eval_episodes: int = 3,
        seed: int = 0,
        kl_obs: Any = None,
    ) -> None:
        super().__init__(0)
        if checkpoint_every < 1 or eval_episodes < 1:
            raise ValueError(f"checkpoint_every, eval_episodes: expected >= 1, got {checkpoint_every}, {eval_episodes}")
        reference = np.asarray(reference_obs, np.float32)
        if reference.ndim != 2 or reference.shape[0] < 2:
            raise ValueError(f"reference_obs: expected [M, D] with M >= 2, got shape {reference.shape}")
        self.eval_env = eval_env
        self.proxy_reward_fn = proxy_reward_fn
        self.rng = np.random.default_rng(seed)
        self.reference = _subsample(reference, _MAX_MMD_POINTS, self.rng)
        self.bandwidth = median_bandwidth(self.reference[:512])
        self.checkpoint_every = int(checkpoint_every)
        self.eval_episodes = int(eval_episodes)
        self.seed = seed
        self.kl_obs = _subsample(reference, _MAX_KL_POINTS, self.rng) if kl_obs is None else np.asarray(kl_obs)
        self.records: list[tuple[int, float, float, float, float]] = []
        self._initial: Any = None
        self._next = 0

    def checkpoint(self) -> None:
        """Evaluate now and append a record."""
        episodes = rollout(
            self.model, self.eval_env, self.eval_episodes, seed=self.seed + 10_000, seed_every_episode=True
        )
        proxy = float(np.mean(reward_returns(self.proxy_reward_fn, episodes)))
        true = float(np.mean(episodes.returns))
        visited = episodes.transitions.obs.reshape(len(episodes.episode), -1)
        visited = _subsample(visited, _MAX_MMD_POINTS, self.rng)
        mmd = float(visitation_mmd(visited, self.reference, self.bandwidth))
        current = action_distribution(self.model, self.kl_obs)
        if self._initial is None:
            self._initial = current
        kl = mean_kl(current, self._initial)
        self.records.append((int(self.num_timesteps), proxy, true, mmd, kl))

    def _on_training_start(self) -> None:
        self._next = self.num_timesteps + self.checkpoint_every
        if not self.records:
            self.checkpoint()

    def _on_rollout_start(self) -> None:
        # A rollout starts after the agent's update on the previous one (PPO's epochs, SAC's
        # gradient steps), so a checkpoint here evaluates the policy trained on every step so far.
        if self.num_timesteps >= self._next:
            while self._next <= self.num_timesteps:
                self._next += self.checkpoint_every
            self.checkpoint()

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        if self.records and self.records[-1][0] != self.num_timesteps:
            self.checkpoint()

    def result(self) -> OveroptimizationResult:
        columns: list[Sequence[Any]] = list(zip(*self.records, strict=True)) if self.records else [[]] * 5
        return OveroptimizationResult(*(np.asarray(column) for column in columns))


def measure_overoptimization(
    env_id: str,
    proxy_reward_fn: RewardFn,
    reference_obs: Any,
    *,
    total_timesteps: int,
    num_checkpoints: int = 10,
    eval_episodes: int = 3,
    algo: str = "ppo",
    num_envs: int | None = None,
    seed: int = 0,
    agent_kwargs: Mapping[str, Any] | None = None,
    kl_obs: Any = None,
) -> OveroptimizationResult:
    """Train ``algo`` on ``proxy_reward_fn`` in ``env_id`` and log proxy vs true return at checkpoints.

    The agent sees only the proxy reward (``RewardVecEnvWrapper`` in ``"replace"`` mode); the
    true reward is used for evaluation only.

    Args:
        env_id: gymnasium id.
        proxy_reward_fn: the learned ``RewardFn`` to optimise.
        reference_obs: ``[M, D]`` the reward model's training observations.
        total_timesteps: agent env steps.
        num_checkpoints: evaluations after the initial one (evenly spaced).
        eval_episodes: deterministic evaluation episodes per checkpoint.
        algo: ``"ppo"`` or ``"sac"`` (tuned defaults from :func:`rewardlab.rl.make_agent`).
        num_envs: parallel envs (default: what the tuned settings assume).
        seed: seed of the agent, envs and evaluation.
        agent_kwargs: overrides of the agent's hyperparameters.
        kl_obs: the fixed states of KL(π ‖ π₀) (:class:`OveroptimizationCallback`); None: up to 512
            of ``reference_obs``.

    Returns:
        :class:`OveroptimizationResult` with ``num_checkpoints + 1`` rows.

    Example:
        >>> fn = lambda o, a, n, d: n[:, 0].astype(np.float32)  # cos θ': a decent proxy for Pendulum
        >>> result = measure_overoptimization("Pendulum-v1", fn, np.random.default_rng(0).normal(size=(64, 3)),
        ...     total_timesteps=64, num_checkpoints=1, eval_episodes=1, agent_kwargs=dict(n_steps=16, batch_size=32, n_epochs=1))
        >>> result.timesteps.tolist(), result.true_return.shape, float(result.policy_kl[0])
        ([0, 64], (2,), 0.0)
    """
    if total_timesteps < 1 or num_checkpoints < 1:
        raise ValueError(f"total_timesteps, num_checkpoints: expected >= 1, got {total_timesteps}, {num_checkpoints}")
    num_envs = default_num_envs(algo, env_id) if num_envs is None else int(num_envs)
    venv = RewardVecEnvWrapper(make_task_env(env_id, num_envs, seed), proxy_reward_fn, mode="replace", name="proxy")
    agent = make_agent(algo, venv, env_id, seed=seed, **dict(agent_kwargs or {}))
    eval_env = make_env(env_id)
    callback = OveroptimizationCallback(
        eval_env,
        proxy_reward_fn,
        reference_obs,
        max(1, total_timesteps // num_checkpoints),
        eval_episodes,
        seed,
        kl_obs=kl_obs,
    )
    try:
        agent.learn(total_timesteps, callback=callback)
    finally:
        venv.close()
        eval_env.close()
    return callback.result()


def plot_overoptimization(results: Mapping[str, OveroptimizationResult], *, title: str = "", path: Any = None) -> Any:
    """Proxy and true return along training for each labelled run, true vs proxy return, true return vs KL.

    Left: true return (solid) and proxy return (dashed, right axis) against env steps. Middle:
    true return against proxy return, one line per run (a rising-then-falling line is
    over-optimisation). Right: true return against KL(π ‖ π₀), the over-optimisation curve of
    Gao et al. and Coste et al.

    Returns:
        The matplotlib ``Figure`` (written atomically to ``path`` when given).
    """

    from matplotlib.figure import Figure

    if not results:
        raise ValueError("results: expected at least one labelled OveroptimizationResult, got none")
    figure = Figure(figsize=(15, 4))
    left, middle, right = figure.subplots(1, 3)
    proxy_axis = left.twinx()
    for index, (name, result) in enumerate(results.items()):
        color = f"C{index}"
        left.plot(result.timesteps, result.true_return, color=color, marker="o", markersize=3, label=f"{name}: true")
        proxy_axis.plot(result.timesteps, result.proxy_return, color=color, linestyle="--", alpha=0.7)
        middle.plot(result.proxy_return, result.true_return, color=color, marker="o", markersize=3, label=name)
        middle.annotate("end", (result.proxy_return[-1], result.true_return[-1]), color=color, fontsize=7)
        right.plot(result.policy_kl, result.true_return, color=color, marker="o", markersize=3, label=name)
    left.set_xlabel("env steps")
    left.set_ylabel("true return (solid)")
    proxy_axis.set_ylabel("proxy return (dashed)")
    left.legend(fontsize=7, loc="lower right")
    middle.set_xlabel("proxy return")
    middle.set_ylabel("true return")
    middle.legend(fontsize=7)
    right.set_xlabel("KL(π ‖ π₀), nats")
    right.set_ylabel("true return")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    if path is not None:
        from rewardlab._io import atomic_write_figure

        atomic_write_figure(path, figure, dpi=110)
    return figure
