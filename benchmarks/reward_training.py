"""Benchmark: Bradley–Terry reward-model training throughput against the machine's matmul peak.

Each optimiser step trains on 64 pairs × 2 segments × 50 steps = 6400 transitions with inputs
obs (17) + act (6) = 23 features, through a 2×256 MLP (``RewardModel``, ensemble of 1 unless
``--ensemble``), Adam. Steps run ``--steps-per-call`` at a time in one jitted epoch
(``RewardTrainer.epoch``: ``lax.scan`` over minibatches), which amortises dispatch.

FLOPs per step = 3 × forward matmul FLOPs (backward ≈ 2 × forward), with
forward = 2 · E · N · (d_in·h1 + h1·h2 + h2·1), N = pairs · 2 · length.
``fraction_of_peak`` = achieved GFLOP/s ÷ the GFLOP/s of a jitted float32 2048×2048 ``jnp.dot``
(2·n³ FLOPs), both the best of ``--repeats`` timings taken in turn (epoch, matmul, matmul,
epoch, ...), so a burst of load from other processes cannot favour one side. Goal ≥ 0.6.
``fraction_of_peak_median`` is the median over rounds of the same ratio.

    python -m benchmarks.reward_training [--steps-per-call 16] [--repeats 8] [--ensemble 1]

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks._common import interleaved_rates, median
from rewardlab._types import FragmentPairs, Preferences
from rewardlab.preferences import RewardTrainer
from rewardlab.rewards import RewardModel, RewardNetConfig

MATMUL_SIZE = 2048


def forward_matmul_flops(transitions: int, layer_sizes: list[int], ensemble_size: int) -> int:
    """2 · E · N · Σ_layers d_in·d_out for an MLP with the given layer sizes (input … output)."""
    return 2 * ensemble_size * transitions * sum(a * b for a, b in itertools.pairwise(layer_sizes))


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=64, help="pairs per optimiser step")
    parser.add_argument("--length", type=int, default=50, help="steps per segment")
    parser.add_argument("--obs-dim", type=int, default=17)
    parser.add_argument("--act-dim", type=int, default=6)
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 256])
    parser.add_argument("--ensemble", type=int, default=1)
    parser.add_argument("--steps-per-call", type=int, default=16, help="optimiser steps per jitted epoch call")
    parser.add_argument(
        "--repeats", type=int, default=8, help="timed rounds of one epoch call and one matmul (best is reported)"
    )
    args = parser.parse_args()

    observation_space = gym.spaces.Box(-np.inf, np.inf, (args.obs_dim,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (args.act_dim,), np.float32)
    config = RewardNetConfig(inputs=("obs", "act"), hidden_sizes=tuple(args.hidden), ensemble_size=args.ensemble)
    model = RewardModel(config, observation_space, action_space)
    params = model.init(jax.random.key(0))

    num_pairs = args.pairs * args.steps_per_call
    rng = np.random.default_rng(0)
    shape = (num_pairs, 2, args.length)
    obs = rng.normal(size=(*shape, args.obs_dim)).astype(np.float32)
    acts = rng.uniform(-1, 1, size=(*shape, args.act_dim)).astype(np.float32)
    pairs = FragmentPairs(obs, acts, obs, np.zeros(shape, bool), np.zeros(shape, np.float32))
    prefs = Preferences(pairs, (rng.random(num_pairs) > 0.5).astype(np.float32))

    trainer = RewardTrainer(model, optax.adam(3e-4), batch_size=args.pairs)
    opt_state = trainer.init(params)
    inputs = trainer.prepare(prefs, jax.random.key(0))  # one epoch = steps_per_call full minibatches

    transitions = args.pairs * 2 * args.length
    layers = [args.obs_dim + args.act_dim, *args.hidden, 1]
    forward = forward_matmul_flops(transitions, layers, args.ensemble)
    epoch_flops = 3 * forward * args.steps_per_call

    matmul = jax.jit(jnp.dot)
    a = jax.random.normal(jax.random.key(0), (MATMUL_SIZE, MATMUL_SIZE), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (MATMUL_SIZE, MATMUL_SIZE), jnp.float32)
    matmul(a, b).block_until_ready()
    start = time.perf_counter()
    jax.block_until_ready(trainer.epoch(params, opt_state, *inputs, jax.random.key(0)))
    compile_s = time.perf_counter() - start
    keys = iter(jax.random.split(jax.random.key(1), 2 * args.repeats))

    def train() -> int:
        jax.block_until_ready(trainer.epoch(params, opt_state, *inputs, next(keys)))
        return epoch_flops

    def peak_matmul() -> int:
        matmul(a, b).block_until_ready()
        return 2 * MATMUL_SIZE**3

    rates = interleaved_rates({"train": train, "matmul": peak_matmul}, args.repeats)  # FLOP/s
    achieved, peak = max(rates["train"]) / 1e9, max(rates["matmul"]) / 1e9
    step_s = 3 * forward / (achieved * 1e9)
    ratios = [t / m for t, m in zip(rates["train"], rates["matmul"], strict=True)]
    figures = {
        "benchmark": "reward_training",
        "inputs": "obs+act",
        "input_dim": layers[0],
        "mlp": layers,
        "ensemble_size": args.ensemble,
        "pairs_per_step": args.pairs,
        "segment_length": args.length,
        "transitions_per_step": transitions,
        "steps_per_call": args.steps_per_call,
        "flop_formula": "3 * 2 * E * pairs * 2 * L * (d_in*h1 + h1*h2 + h2*1)",
        "gflop_per_step": 3 * forward / 1e9,
        "step_ms": step_s * 1e3,
        "median_step_ms": 3 * forward / median(rates["train"]) * 1e3,
        "pairs_per_s": args.pairs / step_s,
        "gflops_per_s": achieved,
        "matmul_peak_gflops_per_s": peak,
        "fraction_of_peak": achieved / peak,
        "fraction_of_peak_median": median(ratios),
        "goal": ">= 0.6",
        "compile_s": compile_s,
        "device": str(jax.devices()[0]),
    }
    print(
        f"step {figures['step_ms']:.2f} ms, {achieved:.1f} GFLOP/s of {peak:.1f} (jnp.dot 2048²): fraction {figures['fraction_of_peak']:.2f}"
    )
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
