"""Benchmark: all-pairs reward distances in one jitted call vs a Python loop over pairs.

64 state-action rewards r(s, a) on a random 1,000-state, 4-action MDP (Garnet, branching 5):
the MDP's expected reward, noisy copies of it, shaped and rescaled copies and independent
draws. ``distance_matrix`` computes the 64×64 EPIC matrix in one call; the baseline calls
the (jitted) single-pair ``epic_distance`` in a Python loop. The loop is timed on
``--loop-pairs`` pairs and scaled to all 64² pairs (the per-pair cost does not depend on the
pair). The same comparison is made for STARC (value canonicalisation under the uniform
policy: one 1000×1000 solve per reward in the matrix, two per pair in the loop).

    python -m benchmarks.distance_matrix [--rewards 64] [--states 1000] [--loop-pairs 128]

The last line printed is one JSON object with the figures (``speedup`` is EPIC's).
"""

from __future__ import annotations

import argparse

from benchmarks._common import median, print_figures, single_threaded, time_call


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rewards", type=int, default=64)
    parser.add_argument("--states", type=int, default=1000)
    parser.add_argument("--actions", type=int, default=4)
    parser.add_argument("--loop-pairs", type=int, default=128, help="pairs timed in the Python loop (scaled to K²)")
    parser.add_argument("--starc-loop-pairs", type=int, default=16)
    args = parser.parse_args()
    single_threaded()

    import jax
    import jax.numpy as jnp
    import numpy as np

    import rewardlab_envs
    from rewardlab.distances import distance_matrix, epic_distance, starc_distance

    mdp = rewardlab_envs.random_mdp(args.states, args.actions, seed=0, branching=5, discount=0.99)
    transitions = jnp.asarray(mdp.transitions)
    base = np.asarray(jnp.einsum("sat,sat->sa", mdp.transitions, mdp.reward))
    rng = np.random.default_rng(0)
    rewards = []
    for index in range(args.rewards):
        kind = index % 4
        if kind == 0:
            rewards.append(base + rng.normal(scale=0.1 * (1 + index), size=base.shape))
        elif kind == 1:
            potential = rng.normal(size=args.states)
            rewards.append(
                rng.uniform(0.5, 2.0) * base + 0.99 * np.asarray(transitions @ potential) - potential[:, None]
            )
        elif kind == 2:
            rewards.append(rng.normal(size=base.shape))
        else:
            rewards.append(-base + rng.normal(scale=0.5, size=base.shape))
    rewards = jnp.asarray(np.stack(rewards), jnp.float32)
    num = rewards.shape[0]
    pairs = [(i, j) for i in range(num) for j in range(num)]
    order = rng.permutation(len(pairs))

    epic_matrix = lambda: distance_matrix(rewards, 0.99).block_until_ready()  # noqa: E731
    epic_pair = jax.jit(lambda a, b: epic_distance(a, b, 0.99))
    starc_matrix = lambda: distance_matrix(rewards, 0.99, distance="starc", transitions=transitions).block_until_ready()  # noqa: E731
    starc_pair = jax.jit(lambda a, b: starc_distance(a, b, transitions, 0.99))

    def loop(pair_fn, count):
        chosen = [pairs[k] for k in order[:count]]
        return lambda: [float(pair_fn(rewards[i], rewards[j])) for i, j in chosen]

    matrix = np.asarray(epic_matrix())  # compile
    epic_loop = loop(epic_pair, args.loop_pairs)
    epic_loop()  # compile
    matrix_s = median(time_call(epic_matrix, 3))
    loop_s = median(time_call(epic_loop, 3)) * len(pairs) / args.loop_pairs
    check = [(i, j) for i, j in (pairs[k] for k in order[:8])]
    max_error = max(abs(float(epic_pair(rewards[i], rewards[j])) - matrix[i, j]) for i, j in check)

    starc = np.asarray(starc_matrix())
    starc_loop = loop(starc_pair, args.starc_loop_pairs)
    starc_loop()
    starc_matrix_s = median(time_call(starc_matrix, 3))
    starc_loop_s = median(time_call(starc_loop, 1)) * len(pairs) / args.starc_loop_pairs
    starc_error = max(abs(float(starc_pair(rewards[i], rewards[j])) - starc[i, j]) for i, j in check[:4])
    return {
        "benchmark": "distance_matrix",
        "rewards": num,
        "states": args.states,
        "epic_matrix_s": round(matrix_s, 4),
        "epic_loop_s": round(loop_s, 2),
        "speedup": round(loop_s / matrix_s, 1),
        "epic_max_abs_error": float(f"{max_error:.2e}"),
        "starc_matrix_s": round(starc_matrix_s, 3),
        "starc_loop_s": round(starc_loop_s, 2),
        "starc_speedup": round(starc_loop_s / starc_matrix_s, 1),
        "starc_max_abs_error": float(f"{starc_error:.2e}"),
        "loop_pairs_timed": args.loop_pairs,
    }


if __name__ == "__main__":
    print_figures(main())
