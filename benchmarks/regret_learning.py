"""Benchmark: regret learner vs partial-return learner on regret-generated preferences.

Knox et al.'s delivery gridworld, 300 segment pairs (3 steps, random starts and actions)
labelled by a Boltzmann-rational regret teacher (β = 1), 10 seeds vmapped in one program;
a linear reward over the six cell features is learned under the ``regret`` model (exact
value iteration of the candidate reward, differentiated end to end) and under the
``partial_return`` model. Figures: mean scaled return (V^π − V^unif)/(V* − V^unif) of the
policy greedy on each learned reward (1 optimal, > 0.9 near-optimal), the share of seeds
above 0.9, and wall time. Expected (Knox et al., TMLR 2024): the regret learner is
near-optimal, the partial-return learner is not.

    python -m benchmarks.regret_learning [--seeds 10] [--preferences 300]

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse

from benchmarks._common import print_figures, single_threaded


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--preferences", type=int, default=300)
    args = parser.parse_args(argv)
    single_threaded()
    from experiments.regret_vs_partial_return import Args
    from experiments.regret_vs_partial_return import main as run

    figures: dict = {}
    for learner, short in (("regret", "regret"), ("partial_return", "partial")):
        result = run(Args(domain="delivery", teacher="regret", learner=learner, num_preferences=args.preferences, num_seeds=args.seeds))
        figures[f"scaled_return_{short}"] = result["scaled_return"]
        figures[f"near_optimal_fraction_{short}"] = result["near_optimal_fraction"]
        figures[f"optimal_action_fraction_{short}"] = result["optimal_action_fraction"]
        figures[f"wall_s_{short}"] = result["wall_s"]
        print(f"{learner} learner: scaled return {result['scaled_return']:.3f}, near-optimal {result['near_optimal_fraction']:.2f}, {result['wall_s']:.1f} s")
    figures.update(preferences=args.preferences, seeds=args.seeds, teacher="regret (beta 1)", domain="delivery")
    print_figures(figures)
    return figures


if __name__ == "__main__":
    main()
