"""Benchmark: sample-based EPIC between two 2×256 MLP rewards on HalfCheetah-v5, against the matmul peak.

Coverage: random-policy rollouts of HalfCheetah-v5 (obs 17, act 6). Two ``RewardModel``s
(inputs obs + act, hidden 256, 256) are compared with :func:`rewardlab.distances.sample_epic_distance`
on N = 4096 coverage transitions and M = 4096 canonicalisation samples (one seed): each reward
is evaluated on N + 2·N·M inputs, all inside one jitted program per reward (state chunks under
``lax.map``, each a [chunk·M, 23] × 256 × 256 × 1 MLP pass).

FLOPs = 2 rewards × (N + 2NM) × 2·(23·256 + 256·256 + 256·1) (matmuls only).
``fraction_of_peak`` = achieved GFLOP/s ÷ the GFLOP/s of a jitted float32 2048×2048
``jnp.dot`` (single-threaded). Both are best-of-k timings of short runs taken side by side —
the matmul, and the canonicalisation of one reward on a ``--slice`` of the coverage
transitions (same program, same M) — so that load from other processes on a shared machine
hits both alike. ``fraction_of_peak_full_run`` divides the whole distance computation's
average rate (``wall_s``, including the two compilations of about a second each) by the
same peak. Goal ≥ 0.5.

    python -m benchmarks.epic [--transitions 4096] [--samples 4096]

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import time

from benchmarks._common import matmul_gflops, print_figures, single_threaded


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transitions", type=int, default=4096, help="N coverage transitions")
    parser.add_argument("--samples", type=int, default=4096, help="M canonicalisation samples")
    parser.add_argument("--rollout-steps", type=int, default=10_000, help="random-policy steps for the coverage data")
    parser.add_argument("--slice", type=int, default=128, help="coverage transitions in each best-of timing")
    parser.add_argument("--repeats", type=int, default=5, help="best-of repeats of the slice and matmul timings")
    args = parser.parse_args()
    single_threaded()

    import gymnasium as gym
    import numpy as np

    from rewardlab.distances import canonicalizer, sample_epic_distance
    from rewardlab.rewards import RewardModel, RewardNetConfig, as_reward_fn
    from rewardlab.rl import rollout_transitions

    env = gym.make("HalfCheetah-v5")
    model = RewardModel(RewardNetConfig(hidden_sizes=(256, 256)), env.observation_space, env.action_space)
    reward_a, reward_b = as_reward_fn(model, model.init(0)), as_reward_fn(model, model.init(1))
    coverage = rollout_transitions(env, args.rollout_steps, seed=0)
    env.close()
    d_in = 17 + 6
    per_eval = 2 * (d_in * 256 + 256 * 256 + 256)

    # side-by-side best-of timings: one reward's canonicalisation on a slice, and the matmul
    canonicalize = canonicalizer(reward_a)
    rng = np.random.default_rng(0)
    size = coverage.obs.shape[0]
    pick = rng.integers(0, size, args.slice)
    slice_args = (
        coverage.obs[pick],
        coverage.acts[pick],
        coverage.next_obs[pick],
        coverage.dones[pick],
        coverage.acts[rng.integers(0, size, args.samples)],
        coverage.obs[rng.integers(0, size, args.samples)],
        0.99,
    )
    canonicalize(*slice_args)  # compile
    slice_best, peak = float("inf"), 0.0
    for _ in range(args.repeats):
        start = time.perf_counter()
        canonicalize(*slice_args)
        slice_best = min(slice_best, time.perf_counter() - start)
        peak = max(peak, matmul_gflops(repeats=3))
    slice_gflops = (args.slice + 2 * args.slice * args.samples) * per_eval / slice_best / 1e9

    start = time.perf_counter()
    result = sample_epic_distance(
        reward_a, reward_b, coverage, 0.99, num_transitions=args.transitions, num_samples=args.samples, num_seeds=1
    )
    wall = time.perf_counter() - start
    flops = 2 * (args.transitions + 2 * args.transitions * args.samples) * per_eval
    achieved = flops / wall / 1e9
    return {
        "benchmark": "epic",
        "transitions": args.transitions,
        "samples": args.samples,
        "distance": round(result.mean, 4),
        "wall_s": round(wall, 2),
        "tflop": round(flops / 1e12, 3),
        "achieved_gflops": round(slice_gflops, 2),
        "matmul_gflops": round(peak, 2),
        "fraction_of_peak": round(slice_gflops / peak, 3),
        "full_run_gflops": round(achieved, 2),
        "fraction_of_peak_full_run": round(achieved / peak, 3),
    }


if __name__ == "__main__":
    print_figures(main())
