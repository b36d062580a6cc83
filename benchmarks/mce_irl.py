"""Benchmark: finite-horizon MCE IRL on a 400-state gridworld, horizon 100.

A random 20×20 delivery board (400 states, 4 actions, 6 cell features, true weights / 10);
the demonstrator is maximum-causal-entropy optimal (β = 1) over H = 100 steps and the learner
fits a linear reward to its exact occupancy with ``num_steps`` Adam steps (constant step size),
the whole loop one jitted ``lax.while_loop`` run to ``num_steps`` (the stopping tolerance is
off). Figures: compile time, iterations (soft VI + occupancy + update) per second, the first
iteration whose occupancy error ‖D_π − D_demo‖₁/‖D_demo‖₁ is ≤ 1e-3 and the time to reach it
(iterations / rate), and the error after ``num_steps``.

    python -m benchmarks.mce_irl [--num-steps 400] [--repeats 3]
"""

from __future__ import annotations

from benchmarks._common import median, print_figures, single_threaded

single_threaded()

import argparse  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import rewardlab_envs  # noqa: E402
from rewardlab.irl import MCEIRLConfig, demonstration_occupancy, linear_reward, make_mce_irl  # noqa: E402

TOLERANCE = 1e-3


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-steps", type=int, default=400)
    parser.add_argument("--horizon", type=int, default=100)
    parser.add_argument("--learning-rate", type=float, default=0.05)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    task = rewardlab_envs.random_delivery_task(args.seed, size=20)
    mdp = rewardlab_envs.delivery_mdp(task.board, discount=1.0)
    T, d0 = jnp.asarray(mdp.transitions), jnp.asarray(mdp.initial_state_dist)
    features = jnp.asarray(mdp.features)
    true_weights = jnp.asarray(mdp.true_weights) / 10.0
    demo_occupancy = demonstration_occupancy(T, features @ true_weights, d0, 1.0, args.horizon, "causal_entropy")
    # Constant step size and no stopping tolerance: every run takes ``num_steps`` iterations (the rate is
    # per iteration), and the figure is the first iteration under TOLERANCE, not the final iterate.
    config = MCEIRLConfig(
        horizon=args.horizon,
        num_steps=args.num_steps,
        learning_rate=args.learning_rate,
        final_learning_rate_fraction=1.0,
        tolerance=0.0,
    )
    train = jax.jit(make_mce_irl(linear_reward(features), config))
    key = jax.random.key(args.seed)

    start = time.perf_counter()
    compiled = train.lower(key, T, d0, jnp.float32(1.0), demo_occupancy).compile()
    compile_s = time.perf_counter() - start
    seconds = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        result = compiled(key, T, d0, jnp.float32(1.0), demo_occupancy)
        jax.block_until_ready(result)
        seconds.append(time.perf_counter() - start)
    errors = np.asarray(result.metrics["occupancy_error"])
    iterations_per_s = args.num_steps / median(seconds)
    converged = np.flatnonzero(errors <= TOLERANCE)
    first = int(converged[0]) + 1 if converged.size else None
    figures = {
        "benchmark": "mce_irl",
        "num_states": int(T.shape[0]),
        "horizon": args.horizon,
        "iterations_per_s": iterations_per_s,
        "iterations_to_converge": first,
        "time_to_converge_s": None if first is None else first / iterations_per_s,
        "final_occupancy_error": float(errors[-1]),
        "weight_error_max": float(np.abs(np.asarray(result.params) - np.asarray(true_weights)).max()),
        "compile_s": compile_s,
        "tolerance": TOLERANCE,
        "num_steps": args.num_steps,
        "device": jax.devices()[0].platform,
    }
    print_figures(figures)
    return figures


if __name__ == "__main__":
    main()
