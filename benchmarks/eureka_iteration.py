"""Benchmark: wall time of one Eureka iteration with the local model (K candidates × T PPO steps).

Starts the local server (SmolLM2-135M-Instruct, llama.cpp), runs one iteration of
:func:`rewardlab.search.eureka` on Pendulum-v1 with a fresh reply cache (so every reply is
generated), K = ``--candidates`` candidates trained ``--total-timesteps`` steps each with PPO in
``--workers`` processes, and reports the split between generation, checks (extraction, static
checks, the sandbox probe) and training, with the model's tokens per second.

    python -m benchmarks.eureka_iteration [--candidates 4] [--total-timesteps 20000] [--workers 2]

The last line printed is one JSON object with the figures (``iteration_s``, ``tokens_per_s``,
``generation_s``, ``checks_s``, ``training_s``, ``passed``, ``outcomes``: each candidate's first error
type or its status; ``refused``: requests the server refused,
e.g. llama.cpp's HTTP 500 for constrained output it cannot parse back, and ``refused_s`` their
share of ``generation_s``; ``tokens_per_s`` is over the replies that came back).
"""

from __future__ import annotations

from benchmarks._common import print_figures, single_threaded

single_threaded()

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from rewardlab.llm import LocalServer  # noqa: E402
from rewardlab.search import GenerationConfig, SearchConfig, TrainConfig, eureka  # noqa: E402

TASK = "Swing the pendulum up and keep it upright with little torque."


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=4)
    parser.add_argument("--total-timesteps", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=300)
    args = parser.parse_args()
    config = SearchConfig(
        iterations=1,
        candidates=args.candidates,
        generation=GenerationConfig(max_tokens=args.max_tokens),
        training=TrainConfig(total_timesteps=args.total_timesteps, eval_episodes=3),
        workers=args.workers,
    )
    with tempfile.TemporaryDirectory() as scratch, LocalServer() as server:
        client = server.client(cache=Path(scratch) / "replies.sqlite")
        started = time.perf_counter()
        result = eureka(TASK, "Pendulum-v1", client, Path(scratch) / "run", config)
        iteration_s = time.perf_counter() - started
    (record,) = result.iterations
    figures = {
        "benchmark": "eureka_iteration",
        "env": "Pendulum-v1",
        "candidates": args.candidates,
        "total_timesteps": args.total_timesteps,
        "workers": args.workers,
        "iteration_s": iteration_s,
        "generation_s": record["wall_s"]["generation"],
        "checks_s": record["wall_s"]["checks"],
        "training_s": record["wall_s"]["training"],
        "completion_tokens": record["completion_tokens"],
        "tokens_per_s": record["tokens_per_s"],
        "passed": record["passed"],
        "refused": sum(c["finish_reason"] == "error" for c in record["candidates"]),
        "refused_s": sum(c["latency_s"] for c in record["candidates"] if c["finish_reason"] == "error"),
        "outcomes": [c["errors"][0]["type"] if c["errors"] else c["status"] for c in record["candidates"]],
    }
    print(
        f"one iteration: {iteration_s:.0f} s (generation {figures['generation_s']:.0f} s at "
        f"{figures['tokens_per_s']} tokens/s, checks {figures['checks_s']:.1f} s, training {figures['training_s']:.0f} s); "
        f"{record['passed']}/{args.candidates} candidates passed the checks"
    )
    print_figures(figures)
    return figures


if __name__ == "__main__":
    main()
