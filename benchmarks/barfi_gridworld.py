"""BARFI's bilevel loop on the detour gridworld: throughput, seeds under vmap, and what it recovers.

The study of ``experiments/barfi.py`` with the bad auxiliary reward (it pays for a detour the
naive sum circles for ever): BARFI's whole loop (``outer_iterations`` × (``inner_steps`` exact
policy-gradient steps + a Neumann implicit gradient)) is one jitted function. Figures:

* ``outer_iterations_per_s``: outer iterations per second of one seed (the jitted single run);
* ``vmap_speedup``: 16 seeds in one vmapped call against a Python loop over the same jitted
  single-seed function, both after compilation, single-threaded; goal ≥ 8;
* ``primary_fraction``: BARFI's final primary return (mean over the seeds) as a fraction of
  the optimal policy's; goal ≥ 0.9. The naive sum's and shaping's fractions are printed beside it.

    python -m benchmarks.barfi_gridworld [--seeds 16] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

from benchmarks._common import median, print_figures, single_threaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args()
    single_threaded()
    import jax
    import numpy as np

    from experiments.barfi import Args, run_methods
    from rewardlab.bilevel import barfi, optimal_primary_return, tabular_problem
    from rewardlab_envs import detour_gridworld

    args = Args(auxiliary="bad", seeds=options.seeds, figures=False)
    task = detour_gridworld("bad", scale=args.scale)
    mdp = task.mdp
    problem = tabular_problem(mdp.transitions, mdp.initial_state_dist, mdp.reward, task.auxiliary, mdp.discount)
    config = args.config("neumann")
    keys = jax.random.split(jax.random.key(0), options.seeds)
    per_seed = [keys[index] for index in range(options.seeds)]

    def loop() -> list:
        return jax.block_until_ready([barfi(problem, config, key) for key in per_seed])

    def vmapped() -> object:
        return jax.block_until_ready(barfi(problem, config, keys))

    start = time.perf_counter()
    vmap_out = vmapped()
    compile_vmapped = time.perf_counter() - start
    start = time.perf_counter()
    jax.block_until_ready(barfi(problem, config, per_seed[0]))
    compile_single = time.perf_counter() - start

    loop_s, vmap_s = [], []
    for _ in range(options.repeats):  # interleaved so load from other processes hits both alike
        start = time.perf_counter()
        loop_out = loop()
        loop_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        vmap_out = vmapped()
        vmap_s.append(time.perf_counter() - start)

    looped = np.stack([np.asarray(out.primary_return) for out in loop_out])
    max_difference = float(np.max(np.abs(looped - np.asarray(vmap_out.primary_return))))
    optimum = float(optimal_primary_return(problem, config.horizon))
    results, _, phi3_where_paid = run_methods(args, "bad")
    fractions = {method: float(np.mean(np.asarray(r.primary_return)[:, -1]) / optimum) for method, r in results.items()}
    single_s = median(loop_s) / options.seeds
    print_figures(
        {
            "vmap_speedup": round(median(loop_s) / median(vmap_s), 1),
            "primary_fraction": round(fractions["barfi"], 3),
            "outer_iterations_per_s": round(config.outer_iterations / single_s, 1),
            "outer_iterations_per_s_vmapped": round(config.outer_iterations * options.seeds / median(vmap_s), 1),
            "loop_s": round(median(loop_s), 3),
            "vmap_s": round(median(vmap_s), 3),
            "seeds": options.seeds,
            "outer_iterations": config.outer_iterations,
            "inner_steps": config.inner_steps,
            "states": int(problem.primary.shape[0]),
            "naive_fraction": round(fractions["naive"], 3),
            "shaping_fraction": round(fractions["shaping"], 3),
            "primary_only_fraction": round(fractions["primary"], 3),
            "phi3_where_auxiliary_pays": round(float(phi3_where_paid.mean()), 3),
            "diverged_seeds": int(np.sum(np.asarray(vmap_out.diverged))),
            "max_abs_difference_loop_vs_vmap": max_difference,
            "compile_s_single": round(compile_single, 2),
            "compile_s_vmapped": round(compile_vmapped, 2),
            "goal": "vmap_speedup >= 8, primary_fraction >= 0.9",
        }
    )


if __name__ == "__main__":
    main()
