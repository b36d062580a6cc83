"""Benchmark: AIRL on Pendulum-v1 (fixed 200-step episodes) with a SAC generator, 3 seeds.

One SAC expert is trained on the true reward (``--expert-total-timesteps``) and 10 of its
deterministic episodes are the demonstrations; AIRL then runs ``--total-timesteps`` env steps per
seed (two seeds at a time on two cores). ``normalized_return`` = mean over seeds of
(R_AIRL − R_random)/(R_expert − R_random), each R the mean true return of 10 deterministic
evaluation episodes. Goal ≥ 0.8. The generator trains on AIRL's f alone
(``AdversarialConfig(generator_reward="shaped")``, the entropy from SAC's tuned α), the setting of
the figures in docs/irl.md; the library's default is Fu et al.'s log D − log(1 − D) = f − log π.

    python -m benchmarks.airl_pendulum [--seeds 3] [--expert-total-timesteps 8000] [--total-timesteps 12000] [--workers 2]
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import argparse
import json
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ENV_ID = "Pendulum-v1"
GENERATOR_REWARD = "shaped"  # AIRL's f; the measured setting (docs/irl.md)


def _task():
    """A fixed-horizon Pendulum env for demonstrations and evaluation."""
    from rewardlab.rl import DEFAULT_HORIZONS, make_env

    return make_env(ENV_ID, fixed_horizon=DEFAULT_HORIZONS[ENV_ID])


def _true_return(policy) -> float:
    """Mean true return over 10 deterministic episodes (None: uniform random actions)."""
    from rewardlab.rl import evaluate_policy

    return evaluate_policy(policy, _task(), 10, seed=10_000).true_return


def _expert(total_timesteps: int, path: str) -> dict:
    import torch

    torch.set_num_threads(1)
    from rewardlab.irl import save_demonstrations, train_expert
    from rewardlab.rl import rollout

    expert = train_expert(ENV_ID, "sac", total_timesteps, seed=0)
    demos = rollout(expert, _task(), 10, seed=1)
    save_demonstrations(path, demos.transitions, {"env_id": ENV_ID, "expert_total_timesteps": total_timesteps})
    return {
        "expert_return": _true_return(expert),
        "demo_return": float(demos.returns.mean()),
        "random_return": _true_return(None),
    }


def _airl(seed: int, total_timesteps: int, path: str) -> dict:
    import torch

    torch.set_num_threads(1)
    from rewardlab.irl import AdversarialConfig, load_demonstrations, train_adversarial
    from rewardlab.rl import DEFAULT_HORIZONS, default_num_envs, make_agent, make_task_env
    from rewardlab.wrappers import RewardVecEnvWrapper

    demos, _ = load_demonstrations(path)
    start = time.perf_counter()
    config = AdversarialConfig(generator_reward=GENERATOR_REWARD)
    venv = RewardVecEnvWrapper(
        make_task_env(ENV_ID, default_num_envs("sac", ENV_ID), seed, fixed_horizon=DEFAULT_HORIZONS[ENV_ID])
    )
    generator = make_agent("sac", venv, ENV_ID, seed=seed, gamma=config.discount)
    result = train_adversarial(generator, demos, total_timesteps, config, seed=seed)
    return {
        "seed": seed,
        "return": _true_return(generator),
        "train_s": time.perf_counter() - start,
        "discriminator_loss": result.history[-1]["loss"],
    }


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--expert-total-timesteps", type=int, default=8000)
    parser.add_argument("--total-timesteps", type=int, default=12_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder, ProcessPoolExecutor(args.workers) as pool:
        path = str(Path(folder) / "demos.rlab")
        expert = pool.submit(_expert, args.expert_total_timesteps, path).result()
        expert_s = time.perf_counter() - start
        runs = [
            future.result()
            for future in [pool.submit(_airl, seed, args.total_timesteps, path) for seed in range(args.seeds)]
        ]
    span = expert["expert_return"] - expert["random_return"]
    per_seed = [(run["return"] - expert["random_return"]) / span for run in runs]
    figures = {
        "benchmark": "airl_pendulum",
        "normalized_return": sum(per_seed) / len(per_seed),
        "normalized_return_per_seed": per_seed,
        "airl_return": [run["return"] for run in runs],
        **expert,
        "expert_total_timesteps": args.expert_total_timesteps,
        "total_timesteps": args.total_timesteps,
        "expert_s": expert_s,
        "airl_train_s": [run["train_s"] for run in runs],
        "wall_s": time.perf_counter() - start,
        "generator_reward": GENERATOR_REWARD,
        "goal": ">= 0.8",
    }
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
