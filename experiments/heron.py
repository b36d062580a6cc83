"""HERON vs preference RL on the factor sum, a hand-tuned reward, and the ground-truth reward.

HERON (Bukharin et al., "Deep RL from Hierarchical Weak Preference Feedback") replaces a
hand-weighted reward by a *ranking* of the env's reward factors: a comparator labels segment
pairs level by level (sign, margin δ_i = σ_i·std), a reward model is trained on the decided
pairs with the Bradley–Terry loss, and the agent is trained on that reward. Methods:

* ``heron``: online preference RL with the ``HeronTeacher`` (the env's ``FactorSpec`` ranking
  and signs, σ from ``HERON_SIGMAS``);
* ``factor_sum``: the same loop with a teacher that decides on the plain signed factor sum
  Σ_k s_k z_k (plain preference RL without the designer's weights);
* ``hand_tuned``: the agent trained directly on a hand-tuned linear combination
  r = Σ_k w_k z_k, with w_k = s_k / std(z_k) from a random-policy rollout unless given;
* ``ground_truth``: the agent trained on the env reward.

Every method is scored on the env's own (ground-truth) return: the final policy's mean over
``eval_episodes`` and the learning curve's mean (area under the curve; sample efficiency).
The preference methods also report, on the pairs they queried (:func:`label_diagnostics`),
how often their labels and the plain factor sum's order agree with the env return's order,
and which factor dominates the plain sum's differences: the measured reason why the factor
sum fails where it does.

Run one: ``python -m experiments.heron --env-id Pendulum-v1 --method heron``; sweeps (5 seeds
per cell, resumable by rerunning): ``rewardlab sweep experiments/heron.toml --workers 1`` (Pendulum)
and ``rewardlab sweep experiments/heron_halfcheetah.toml --workers 1`` (HalfCheetah), then
``rewardlab report runs/sweeps/heron``.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Literal

import gymnasium as gym
import jax
import numpy as np

from rewardlab.preferences import HERON_SIGMAS, compose, factor_combination, make_teacher, oracle
from rewardlab.rewards import RewardModel, RewardNetConfig
from rewardlab.rl import (
    EpisodeReturns,
    PbRLConfig,
    default_num_envs,
    evaluate_policy,
    make_agent,
    make_env,
    make_task_env,
    train_pbrl,
)
from rewardlab.sweeps import Logger, check_choices, parse_args
from rewardlab.wrappers import RewardVecEnvWrapper
from rewardlab_envs import factor_spec


@dataclasses.dataclass(frozen=True)
class Args:
    """Arguments of the HERON study.

    Attributes:
        env_id: ``Pendulum-v1``, ``MountainCarContinuous-v0`` or ``HalfCheetah-v5``.
        method: ``heron``, ``factor_sum``, ``hand_tuned`` or ``ground_truth``.
        algo: SB3 algorithm, ``ppo`` or ``sac``.
        total_timesteps: agent env steps.
        labels: preference labels (``heron``, ``factor_sum``).
        num_rounds: feedback rounds.
        fragment_length: steps per segment.
        first_feedback_step: env steps before the first feedback round.
        sigmas: HERON's σ_i per factor (factor order); None: ``HERON_SIGMAS[env_id]``.
        hand_tuned_weights: weights of ``hand_tuned``; None: s_k / std(z_k) under a random policy.
        eval_episodes: episodes of the final deterministic-policy evaluation.
        learning_starts: SAC's random-action warm-up steps; None: the tuned value (10k on HalfCheetah).
        seed: seed of the agent, envs, queries and reward model.
    """

    env_id: Literal["Pendulum-v1", "MountainCarContinuous-v0", "HalfCheetah-v5"] = "Pendulum-v1"
    method: Literal["heron", "factor_sum", "hand_tuned", "ground_truth"] = "heron"
    algo: Literal["ppo", "sac"] = "ppo"
    total_timesteps: int = 100_000
    labels: int = 200
    num_rounds: int = 10
    fragment_length: int = 50
    first_feedback_step: int = 4096
    sigmas: tuple[float, ...] | None = None
    hand_tuned_weights: tuple[float, ...] | None = None
    eval_episodes: int = 5
    learning_starts: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        check_choices(self)
        if self.learning_starts is not None and (self.algo != "sac" or self.learning_starts < 0):
            raise ValueError(
                f"learning_starts: expected None, or an integer >= 0 with algo='sac', got {self.learning_starts!r}"
            )
        for name in ("total_timesteps", "num_rounds", "fragment_length", "eval_episodes"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
        num_factors = factor_spec(self.env_id).num_factors
        for name in ("sigmas", "hand_tuned_weights"):
            value = getattr(self, name)
            if value is not None and len(value) != num_factors:
                raise ValueError(f"{name}: expected {num_factors} values for {self.env_id}, got {value!r}")


class FactorReward(gym.Wrapper):
    """Reward r = Σ_k w_k z_k from ``info["reward_factors"]``; the env reward stays in ``info["true_reward"]``."""

    def __init__(self, env: gym.Env, weights: np.ndarray) -> None:
        super().__init__(env)
        self.weights = np.asarray(weights, np.float64)

    def step(self, action: Any) -> tuple:
        obs, reward, terminated, truncated, info = self.env.step(action)
        info = dict(info, true_reward=reward)
        return obs, float(self.weights @ np.asarray(info["reward_factors"], np.float64)), terminated, truncated, info


def random_factor_std(env_id: str, steps: int = 2000, seed: int = 0) -> np.ndarray:
    """Per-step std of each reward factor under a uniformly random policy: ``[K]``."""
    env = make_env(env_id, factors=True)
    env.action_space.seed(seed)
    env.reset(seed=seed)
    factors = []
    for _ in range(steps):
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
        factors.append(info["reward_factors"])
        if terminated or truncated:
            env.reset()
    env.close()
    return np.maximum(np.std(np.asarray(factors, np.float64), axis=0), 1e-6)


def random_segment_diagnostics(
    env_id: str, num_pairs: int = 1000, fragment_length: int = 50, episodes: int = 20, seed: int = 0
) -> dict[str, dict[str, float]]:
    """:func:`label_diagnostics` of HERON's teacher and the plain factor sum on uniformly random-policy segments.

    The segments of the first feedback round (SAC's random warm-up) come from this policy.
    Pairs are drawn uniformly from ``episodes`` episodes (both segments of a pair from any
    episode); HERON's undecided pairs are left out of its figures.

    Returns:
        ``{"heron": figures, "factor_sum": figures}``, each with ``decided_fraction`` added.
    """
    from rewardlab._types import FragmentPairs

    spec = factor_spec(env_id)
    env = make_env(env_id, factors=True)
    env.action_space.seed(seed)
    factors, rewards = [], []
    for episode in range(episodes):
        env.reset(seed=seed + episode)
        episode_factors, episode_rewards, done = [], [], False
        while not done:
            _, reward, terminated, truncated, info = env.step(env.action_space.sample())
            episode_factors.append(info["reward_factors"])
            episode_rewards.append(reward)
            done = terminated or truncated
        factors.append(np.asarray(episode_factors, np.float64))
        rewards.append(np.asarray(episode_rewards, np.float64))
    env.close()
    rng = np.random.default_rng(seed)
    which = rng.integers(episodes, size=(num_pairs, 2))
    starts = rng.integers(0, min(len(r) for r in rewards) - fragment_length + 1, size=(num_pairs, 2))
    window = np.arange(fragment_length)
    z = np.stack(
        [[factors[e][s + window] for e, s in zip(w, t, strict=True)] for w, t in zip(which, starts, strict=True)]
    )
    r = np.stack(
        [[rewards[e][s + window] for e, s in zip(w, t, strict=True)] for w, t in zip(which, starts, strict=True)]
    )
    zeros = np.zeros(r.shape)
    pairs = FragmentPairs(zeros, zeros, zeros, zeros.astype(bool), rews=r, factors=z)
    heron = np.asarray(make_teacher("heron", spec=spec, sigmas=HERON_SIGMAS[env_id])(pairs, rng))
    decided = np.isfinite(heron)
    plain = (z.sum(axis=2)[:, 0] - z.sum(axis=2)[:, 1]) @ np.asarray(spec.signs, np.float64)
    kept = FragmentPairs(*(x[decided] for x in (zeros, zeros, zeros, zeros.astype(bool), r, z)))
    return {
        "heron": {
            **label_diagnostics(kept, heron[decided], spec.signs, spec.names),
            "decided_fraction": float(decided.mean()),
        },
        "factor_sum": {
            **label_diagnostics(pairs, (plain > 0).astype(np.float64), spec.signs, spec.names),
            "decided_fraction": 1.0,
        },
    }


def label_diagnostics(pairs: Any, labels: np.ndarray, signs: Any, names: Any) -> dict[str, float]:
    """How labels and the plain factor sum order segment pairs, against the env return's order.

    With Z_k(σ) = Σ_t z_{t,k}, R(σ) = Σ_t r_t and Δ = value(σ¹) − value(σ²) per pair:

    * ``label_agreement``: fraction of pairs where the label (> 0.5: σ¹) agrees with sign ΔR;
    * ``factor_sum_agreement``: fraction where sign Σ_k s_k ΔZ_k agrees with sign ΔR;
    * ``dominant_<name>``: fraction of pairs where factor k has the largest |ΔZ_k|, i.e. decides
      the plain sum's order more than any other factor.

    Args:
        pairs: ``FragmentPairs`` with ``factors`` [B, 2, L, K] and ``rews`` [B, 2, L].
        labels: [B] labels of those pairs.
        signs: [K] factor signs s_k.
        names: [K] factor names.

    Example:
        >>> from rewardlab._types import FragmentPairs
        >>> z = np.array([[[[1.0, 0.0]], [[0.0, 5.0]]]])  # B=1, L=1, K=2: σ¹ better on factor 0, σ² pays 5 on factor 1
        >>> pairs = FragmentPairs(*(np.zeros((1, 2, 1)),) * 4, rews=np.array([[[1.0], [-0.5]]]), factors=z)
        >>> label_diagnostics(pairs, np.array([1.0]), (1, -1), ("progress", "cost"))
        {'label_agreement': 1.0, 'factor_sum_agreement': 1.0, 'dominant_progress': 0.0, 'dominant_cost': 1.0}
    """
    factors = np.asarray(pairs.factors, np.float64).sum(axis=2)  # [B, 2, K]
    returns = np.asarray(pairs.rews, np.float64).sum(axis=2)  # [B, 2]
    true_first = returns[:, 0] > returns[:, 1]
    delta = factors[:, 0] - factors[:, 1]  # [B, K]
    plain = delta @ np.asarray(signs, np.float64)
    dominant = np.argmax(np.abs(delta), axis=1)
    figures = {
        "label_agreement": float(np.mean((np.asarray(labels) > 0.5) == true_first)),
        "factor_sum_agreement": float(np.mean((plain > 0) == true_first)),
    }
    figures.update({f"dominant_{name}": float(np.mean(dominant == k)) for k, name in enumerate(names)})
    return figures


def main(args: Args, logger: Logger | None = None) -> dict[str, float]:
    """Train one agent with one method; return its final and average true return."""
    import torch

    torch.set_num_threads(1)
    start = time.perf_counter()
    spec = factor_spec(args.env_id)
    num_envs = default_num_envs(args.algo, args.env_id)
    wrapper_class, wrapper_kwargs = None, None
    if args.method == "hand_tuned":
        weights = args.hand_tuned_weights
        if weights is None:
            weights = spec.signs_array() / random_factor_std(args.env_id, seed=args.seed)
        wrapper_class, wrapper_kwargs = FactorReward, {"weights": np.asarray(weights)}
    venv = make_task_env(
        args.env_id, num_envs, args.seed, factors=True, wrapper_class=wrapper_class, wrapper_kwargs=wrapper_kwargs
    )
    curve = EpisodeReturns()
    figures: dict[str, float] = {}
    overrides: dict[str, Any] = {} if args.learning_starts is None else {"learning_starts": args.learning_starts}
    if args.method in ("heron", "factor_sum"):
        venv = RewardVecEnvWrapper(venv, mode="replace")
        model = RewardModel(
            RewardNetConfig(inputs=("obs", "act"), hidden_sizes=(64, 64), ensemble_size=3),
            venv.observation_space,
            venv.action_space,
        )
        if args.method == "heron":
            teacher = make_teacher("heron", spec=spec, sigmas=args.sigmas or HERON_SIGMAS[args.env_id])
        else:
            teacher = compose(factor_combination(tuple(float(s) for s in spec.signs)), oracle())
        agent = make_agent(args.algo, venv, args.env_id, seed=args.seed, **overrides)
        config = PbRLConfig(
            labels=args.labels,
            num_rounds=args.num_rounds,
            first_feedback_step=args.first_feedback_step,
            fragment_length=args.fragment_length,
        )
        result = train_pbrl(
            agent,
            model,
            model.init(jax.random.key(args.seed)),
            teacher,
            args.total_timesteps,
            config,
            seed=args.seed,
            callbacks=[curve],
        )
        asked = sum(record.queries_asked for record in result.feedback)
        used = 0 if result.preferences is None else len(result.preferences.labels)
        figures["labels_used"] = float(used)
        figures["decided_fraction"] = used / asked if asked else float("nan")
        if result.preferences is not None and used:
            figures.update(
                label_diagnostics(
                    result.preferences.pairs, np.asarray(result.preferences.labels), spec.signs, spec.names
                )
            )
    else:
        agent = make_agent(args.algo, venv, args.env_id, seed=args.seed, **overrides)
        agent.learn(args.total_timesteps, callback=curve)
    returns = np.asarray(curve.returns)
    if logger is not None:
        for step, value in zip(curve.timesteps, curve.returns, strict=True):
            logger.log(int(step), true_return=float(value))
    figures.update(
        final_return=evaluate_policy(
            agent, make_env(args.env_id), args.eval_episodes, seed=10_000 + 100 * args.seed, seed_every_episode=True
        ).true_return,
        mean_training_return=float(returns.mean()) if len(returns) else float("nan"),
        last_quarter_return=float(returns[-max(1, len(returns) // 4) :].mean()) if len(returns) else float("nan"),
        episodes=float(len(returns)),
        wall_s=time.perf_counter() - start,
    )
    return figures


if __name__ == "__main__":
    print(main(parse_args(Args)))
