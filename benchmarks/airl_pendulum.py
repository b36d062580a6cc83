"""Benchmark: AIRL on Pendulum-v1 (fixed 200-step episodes) with a SAC generator, 3 seeds.

One SAC expert is trained on the true reward (``--expert-timesteps``) and 10 of its
deterministic episodes are the demonstrations; AIRL then runs ``--timesteps`` env steps per
seed (two seeds at a time on two cores). ``normalized_return`` = mean over seeds of
(R_AIRL − R_random)/(R_expert − R_random), each R the mean true return of 10 deterministic
evaluation episodes. Goal ≥ 0.8.

    python -m benchmarks.airl_pendulum [--seeds 3] [--expert-timesteps 8000] [--timesteps 12000] [--workers 2]
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

ENV_ID = "Pendulum-v1"


def _expert(timesteps: int, path: str) -> dict:
    import torch

    torch.set_num_threads(1)
    from rewardlab.irl import evaluate_return, rollout, save_demonstrations, train_expert

    expert = train_expert(ENV_ID, "sac", timesteps, seed=0)
    demos, returns = rollout(expert, ENV_ID, 10, seed=1)
    save_demonstrations(path, demos, {"env_id": ENV_ID, "expert_timesteps": timesteps})
    return {"expert_return": evaluate_return(expert, ENV_ID, 10), "demo_return": float(returns.mean()),
            "random_return": evaluate_return(None, ENV_ID, 10)}


def _airl(seed: int, timesteps: int, path: str) -> dict:
    import torch

    torch.set_num_threads(1)
    from rewardlab.irl import AdversarialConfig, evaluate_return, load_demonstrations, train_adversarial

    demos, _ = load_demonstrations(path)
    start = time.perf_counter()
    result = train_adversarial(ENV_ID, demos, algo="sac", total_timesteps=timesteps, config=AdversarialConfig(), seed=seed)
    return {"seed": seed, "return": evaluate_return(result.agent, ENV_ID, 10), "train_s": time.perf_counter() - start,
            "discriminator_loss": result.history[-1]["loss"]}


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--expert-timesteps", type=int, default=8000)
    parser.add_argument("--timesteps", type=int, default=12_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder, ProcessPoolExecutor(args.workers) as pool:
        path = str(Path(folder) / "demos.rlab")
        expert = pool.submit(_expert, args.expert_timesteps, path).result()
        expert_s = time.perf_counter() - start
        runs = [future.result() for future in [pool.submit(_airl, seed, args.timesteps, path) for seed in range(args.seeds)]]
    span = expert["expert_return"] - expert["random_return"]
    per_seed = [(run["return"] - expert["random_return"]) / span for run in runs]
    figures = {
        "benchmark": "airl_pendulum",
        "normalized_return": sum(per_seed) / len(per_seed),
        "normalized_return_per_seed": per_seed,
        "airl_return": [run["return"] for run in runs],
        **expert,
        "expert_timesteps": args.expert_timesteps,
        "timesteps": args.timesteps,
        "expert_s": expert_s,
        "airl_train_s": [run["train_s"] for run in runs],
        "wall_s": time.perf_counter() - start,
        "goal": ">= 0.8",
    }
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
