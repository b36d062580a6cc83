"""B-Pref: online preference-based RL across simulated teachers and label budgets.

The study B-Pref users run (Lee, Smith, Dragan & Abbeel 2021): an agent learns a reward
online from a simulated teacher's preferences (PEBBLE-style for SAC, Lee et al. 2021;
Christiano et al. 2017 for PPO) and is scored on the true reward. Teachers are B-Pref's:
``oracle``, ``stochastic`` (B-Pref's "noisy" Stoc, β = 1), ``mistake`` (10% of labels
flipped), ``myopic`` (γ = 0.9), ``skip`` and ``equal``. The per-run curves (true and
learned episode returns, label accuracy per feedback round) go to the run's metrics
table and TensorBoard; the return value is the final evaluation.

Run one: ``python -m experiments.bpref --env-id Pendulum-v1 --teacher mistake --labels 200``;
the whole study: ``rewardlab sweep experiments/bpref.toml``.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Literal

from rewardlab.sweeps import Logger, check_choices, parse_args

# Per environment: agent, env steps and reward network when the arguments leave them unset.
DEFAULT_ALGO = {"Pendulum-v1": "ppo", "HalfCheetah-v5": "sac"}
DEFAULT_TOTAL_TIMESTEPS = {"Pendulum-v1": 100_000, "HalfCheetah-v5": 1_000_000}
DEFAULT_HIDDEN = {"Pendulum-v1": (64, 64), "HalfCheetah-v5": (256, 256)}


@dataclasses.dataclass(frozen=True)
class Args:
    """Arguments of one B-Pref run.

    Attributes:
        env_id: ``Pendulum-v1`` or ``HalfCheetah-v5`` (B-Pref's locomotion task).
        teacher: simulated teacher: oracle, stochastic, mistake, myopic, skip, equal.
        labels: label budget over the whole run.
        total_timesteps: agent env steps; 0 for the environment's default (100k Pendulum, 1M HalfCheetah).
        algo: ``ppo`` or ``sac``; empty for the environment's default (PPO Pendulum, SAC HalfCheetah).
        feedback_rounds: feedback rounds the labels are split over.
        first_feedback_step: env steps of experience before the first round.
        ensemble_size: reward-model members (queries picked by their disagreement).
        eval_episodes: episodes of the final true-return evaluation.
        seed: seed of the agent, envs, queries and teacher.
    """

    env_id: Literal["Pendulum-v1", "HalfCheetah-v5"] = "Pendulum-v1"
    teacher: Literal["oracle", "stochastic", "myopic", "skip", "equal", "mistake"] = "oracle"
    labels: int = 200
    total_timesteps: int = 0
    algo: Literal["", "ppo", "sac"] = ""
    feedback_rounds: int = 10
    first_feedback_step: int = 4096
    ensemble_size: int = 3
    eval_episodes: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        check_choices(self)
        for name in ("labels", "total_timesteps", "first_feedback_step"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ValueError(f"{name}: expected an integer >= 0, got {getattr(self, name)!r}")
        for name in ("feedback_rounds", "ensemble_size", "eval_episodes"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {getattr(self, name)!r}")


def main(args: Args, logger: Logger | None = None) -> dict[str, float]:
    """Train an agent on a reward learned online from ``args.teacher``; return its true-return evaluation."""
    import jax
    import numpy as np

    from rewardlab.preferences import make_teacher
    from rewardlab.rewards import RewardModel, RewardNetConfig
    from rewardlab.rl import (
        PbRLConfig,
        default_num_envs,
        evaluate_policy,
        make_agent,
        make_env,
        make_task_env,
        train_pbrl,
    )
    from rewardlab.wrappers import RewardVecEnvWrapper

    start = time.perf_counter()
    algo = args.algo or DEFAULT_ALGO[args.env_id]
    total_timesteps = args.total_timesteps or DEFAULT_TOTAL_TIMESTEPS[args.env_id]
    venv = RewardVecEnvWrapper(
        make_task_env(args.env_id, default_num_envs(algo, args.env_id), args.seed), mode="replace"
    )
    model = RewardModel(
        RewardNetConfig(
            inputs=("obs", "act"), hidden_sizes=DEFAULT_HIDDEN[args.env_id], ensemble_size=args.ensemble_size
        ),
        venv.observation_space,
        venv.action_space,
    )
    tensorboard = getattr(logger, "tensorboard_dir", None)
    agent = make_agent(
        algo, venv, args.env_id, seed=args.seed, tensorboard_log=None if tensorboard is None else str(tensorboard)
    )
    config = PbRLConfig(
        labels=args.labels,
        num_rounds=args.feedback_rounds,
        first_feedback_step=min(args.first_feedback_step, total_timesteps // 2),
    )
    result = train_pbrl(
        agent,
        model,
        model.init(jax.random.key(args.seed)),
        make_teacher(args.teacher),
        total_timesteps,
        config,
        seed=args.seed,
    )
    evaluation = evaluate_policy(
        agent, make_env(args.env_id), args.eval_episodes, seed=10_000 + args.seed
    )  # the true reward

    if logger is not None:
        for step, learned, true in zip(
            *(result.episodes[k] for k in ("timestep", "learned_return", "true_return")), strict=True
        ):
            logger.log(int(step), true_return=float(true), learned_return=float(learned))
        for record in result.feedback:
            logger.log(record.timestep, **record.metrics())
    last = result.episodes["true_return"][-10:]
    final = result.feedback[-1] if result.feedback else None
    return {
        "true_return": evaluation.true_return,
        "true_return_std": evaluation.true_return_std,
        "train_true_return_last10": float(np.mean(last)) if len(last) else float("nan"),
        "labels_used": 0 if result.preferences is None else len(result.preferences.labels),
        "final_train_accuracy": float("nan") if final is None else final.train_accuracy,
        "total_timesteps": total_timesteps,
        "wall_s": time.perf_counter() - start,
    }


if __name__ == "__main__":
    print(main(parse_args(Args)))
