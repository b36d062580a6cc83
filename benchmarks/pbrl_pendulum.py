"""Benchmark: online preference learning on Pendulum-v1 with PPO.

200 oracle labels, PPO 100k steps, 3 seeds, one after another; within a seed the
learned-reward and the true-reward PPO agents train at the same time in two processes
(``experiments.quickstart.Args.parallel``), one core each; each seed is one run of the
quickstart study (``rewardlab quickstart --seed N``).
``normalized_return`` = mean over seeds of (R_learned − R_random) / (R_true − R_random),
each return the mean true return over 10 evaluation episodes. Goal ≥ 0.9.

    python -m benchmarks.pbrl_pendulum [--seeds 3] [--total-timesteps 100000] [--labels 200]
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import argparse
import json
import tempfile
import time
from pathlib import Path


def _one_seed(seed: int, total_timesteps: int, labels: int, out_dir: str) -> dict:
    import torch

    torch.set_num_threads(1)
    from experiments import quickstart

    return quickstart.main(
        quickstart.Args(total_timesteps=total_timesteps, labels=labels, seed=seed, out_dir=Path(out_dir))
    )


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--total-timesteps", type=int, default=100_000)
    parser.add_argument("--labels", type=int, default=200)
    args = parser.parse_args()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out_dir:
        summaries = [_one_seed(seed, args.total_timesteps, args.labels, out_dir) for seed in range(args.seeds)]
    per_seed = [s["normalized_return"] for s in summaries]
    figures = {
        "benchmark": "pbrl_pendulum",
        "normalized_return": sum(per_seed) / len(per_seed),
        "normalized_return_per_seed": per_seed,
        "return_learned": [s["return_learned"] for s in summaries],
        "return_true": [s["return_true"] for s in summaries],
        "return_random": [s["return_random"] for s in summaries],
        "pearson_transition": [s["pearson_transition"] for s in summaries],
        "pearson_segment": [s["pearson_segment"] for s in summaries],
        "labels_used": [s["labels_used"] for s in summaries],
        "total_timesteps": args.total_timesteps,
        "wall_s": time.perf_counter() - start,
        "wall_s_per_seed": [s["wall_s"] for s in summaries],
        "goal": ">= 0.9",
    }
    for summary in summaries:
        print(
            f"seed {summary['seed']}: learned {summary['return_learned']:.1f} true {summary['return_true']:.1f} "
            f"random {summary['return_random']:.1f} normalized {summary['normalized_return']:.3f}"
        )
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
