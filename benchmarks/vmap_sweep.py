"""A pure-JAX sweep in one vmapped call vs a Python loop over the same jitted function.

The delivery-gridworld preference study (``experiments/delivery_prefs.py``): 64 reward
designs (teacher model × temperature × mistake rate × label budget) × 8 seeds, each
sampling 200 segment pairs, labelling them, fitting linear reward weights by 15 Newton
steps on the Bradley–Terry loss, planning by value iteration and scoring the plan.
``speedup`` = loop time ÷ vmapped time, both after compilation, single-threaded. Goal ≥ 10.

    python -m benchmarks.vmap_sweep [--seeds 8] [--repeats 3]
"""

from __future__ import annotations

import argparse
import functools
import time

from benchmarks._common import median, print_figures, single_threaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--planning-sweeps", type=int, default=None, help="value-iteration backups (default: the study's)"
    )
    options = parser.parse_args()
    single_threaded()
    import jax
    import jax.numpy as jnp
    import numpy as np

    from experiments.delivery_prefs import Args, design_of, run_design, static_of, study_mdp
    from rewardlab.sweeps import grid_designs

    args = Args() if options.planning_sweeps is None else Args(planning_sweeps=options.planning_sweeps)
    mdp = study_mdp(args.planning_sweeps, args.discount)
    static = static_of(args)
    grid = {
        "regret_teacher": [0.0, 1.0],
        "teacher_temperature": [0.1, 0.3, 1.0, 3.0],
        "mistake_rate": [0.0, 0.1],
        "labels": [25, 50, 100, 200],
    }
    arrays, labels = grid_designs(grid)
    base = design_of(args)
    designs = {**base, **{k: jnp.asarray(v, base[k].dtype) for k, v in arrays.items()}}  # each [D]
    keys = jax.vmap(jax.random.key)(jnp.arange(options.seeds))  # [N]
    fn = functools.partial(run_design, static=static)  # the MDP is an argument, not a baked-in constant

    single = jax.jit(fn)
    batched = jax.jit(jax.vmap(jax.vmap(fn, in_axes=(None, 0, None)), in_axes=(0, None, None)))

    def design_at(index: int) -> dict:
        return {k: v[index] for k, v in designs.items()}

    per_design = [design_at(d) for d in range(len(labels))]
    per_seed = [keys[s] for s in range(options.seeds)]

    def loop() -> dict:
        outs = [single(design, key, mdp) for design in per_design for key in per_seed]
        return jax.block_until_ready(outs)

    def vmapped() -> dict:
        return jax.block_until_ready(batched(designs, keys, mdp))

    start = time.perf_counter()
    vmapped()
    compile_vmapped = time.perf_counter() - start
    start = time.perf_counter()
    jax.block_until_ready(single(per_design[0], per_seed[0], mdp))
    compile_single = time.perf_counter() - start

    loop_s, vmap_s = [], []
    for _ in range(options.repeats):  # interleaved so load from other processes hits both alike
        start = time.perf_counter()
        loop_out = loop()
        loop_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        vmap_out = vmapped()
        vmap_s.append(time.perf_counter() - start)

    # same function, same numbers
    looped = np.asarray([out["scaled_return"] for out in loop_out]).reshape(len(labels), options.seeds)
    max_difference = float(np.max(np.abs(looped - np.asarray(vmap_out["scaled_return"]))))
    runs = len(labels) * options.seeds
    scaled = np.asarray(vmap_out["scaled_return"])
    print_figures(
        {
            "speedup": round(median(loop_s) / median(vmap_s), 1),
            "loop_s": round(median(loop_s), 3),
            "vmap_s": round(median(vmap_s), 3),
            "runs": runs,
            "designs": len(labels),
            "seeds": options.seeds,
            "ms_per_run_loop": round(1000 * median(loop_s) / runs, 2),
            "ms_per_run_vmap": round(1000 * median(vmap_s) / runs, 3),
            "compile_s_single": round(compile_single, 2),
            "compile_s_vmapped": round(compile_vmapped, 2),
            "max_abs_difference_scaled_return": max_difference,
            "scaled_return_best_design": round(float(scaled.mean(axis=1).max()), 3),
            "scaled_return_worst_design": round(float(scaled.mean(axis=1).min()), 3),
            "goal": "speedup >= 10",
        }
    )


if __name__ == "__main__":
    main()
