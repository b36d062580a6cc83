"""Overhead of the local sweep backend: 32 runs of a CPU-busy trivial function.

``ratio`` = the sweep's wall time ÷ the ideal (sum of the runs' own times ÷ workers).
Everything the sweep adds counts against it: a fresh process per run, imports, the run
folder, the metrics table and TensorBoard file, the completion marker, and rebuilding
the results table after every run. Goal ≤ 1.2.

    python -m benchmarks.sweep_overhead [--runs 32] [--run-seconds 2.0] [--workers N]
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import tempfile
import time

from benchmarks._common import print_figures


@dataclasses.dataclass(frozen=True)
class Args:
    """Arguments of the trivial run.

    Attributes:
        busy_seconds: seconds of pure-Python busy work.
        seed: seed (only names the run).
    """

    busy_seconds: float = 2.0
    seed: int = 0


def busy(args: Args, logger=None) -> dict[str, float]:
    """Spin for ``busy_seconds`` of CPU time, logging a point every 0.1 s."""
    start = time.perf_counter()
    count, step = 0, 0
    while (elapsed := time.perf_counter() - start) < args.busy_seconds:
        count += sum(range(1000))
        if logger is not None and elapsed > 0.1 * step:
            logger.log(step, elapsed=elapsed)
            step += 1
    return {"busy_s": time.perf_counter() - start, "count": float(count)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=32)
    parser.add_argument("--run-seconds", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=None)
    options = parser.parse_args()

    from rewardlab.sweeps import Sweep, default_workers, run_sweep

    workers = options.workers or default_workers()
    sweep = Sweep(
        busy, Args(busy_seconds=options.run_seconds), grid={"seed": list(range(options.runs))}, name="sweep_overhead"
    )
    out = tempfile.mkdtemp(prefix="sweep-overhead-")
    try:
        start = time.perf_counter()
        results = run_sweep(sweep, out, workers=workers, log=None)
        wall = time.perf_counter() - start
    finally:
        shutil.rmtree(out, ignore_errors=True)
    if not (results["status"] == "ok").all() or len(results) != options.runs:
        raise SystemExit(
            f"sweep_overhead: expected {options.runs} ok runs, got {results['status'].value_counts().to_dict()}"
        )
    run_time = float(results["wall_s"].sum())
    ideal = run_time / workers
    print_figures(
        {
            "ratio": round(wall / ideal, 3),
            "wall_s": round(wall, 2),
            "ideal_s": round(ideal, 2),
            "runs": options.runs,
            "workers": workers,
            "run_seconds": options.run_seconds,
            "overhead_s_per_run": round((wall - ideal) * workers / options.runs, 3),
            "goal": "ratio <= 1.2",
        }
    )


if __name__ == "__main__":
    main()
