"""A JAX study swept by the local backend: the delivery study's 32-run grid against the ideal.

``experiments/delivery_prefs.toml`` (2 teacher models × 2 temperatures × 2 label budgets ×
4 seeds) with the local backend, starting from an empty compilation cache. ``ratio`` = the
sweep's wall time ÷ the ideal, where the ideal is one import and one compilation per worker
(in parallel) plus the runs' own compute shared by the workers:

    ideal = import_s + compile_s + runs × compute_s_per_run ÷ workers

``import_s`` is a fresh interpreter importing the study; ``compile_s`` and
``compute_s_per_run`` come from all the runs called one after another in one fresh process
(the first run's time less a later run's is the compilation). All are measured in the same
invocation as the sweep. Goal ≤ 2. Also printed: the same sweep again on the now warm
compilation cache, and the same grid through ``backend="vmap"`` (one compiled call, in this
single-threaded process), on an empty and then on a warm cache.

    python -m benchmarks.sweep_jax_study [--workers N] [--fresh-process]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._common import median, print_figures, single_threaded

SWEEP_FILE = "experiments/delivery_prefs.toml"
_REPO = Path(__file__).resolve().parents[1]

_IMPORT = (
    "import time; start = time.perf_counter(); import experiments.delivery_prefs; print(time.perf_counter() - start)"
)
_IN_PROCESS = f"""
import json, time
from experiments.delivery_prefs import main
from rewardlab.sweeps import load_sweep
times = []
for run in load_sweep({SWEEP_FILE!r}).runs():
    start = time.perf_counter()
    main(run.args)
    times.append(time.perf_counter() - start)
print(json.dumps(times))
"""


def _python(code: str) -> str:
    """Run ``code`` in a fresh interpreter (no compilation cache) and return its last line of output."""
    env = {name: value for name, value in os.environ.items() if name != "JAX_COMPILATION_CACHE_DIR"}
    env["PYTHONPATH"] = str(_REPO)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=_REPO, env=env, capture_output=True, text=True, check=True, timeout=600
    )
    return done.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument(
        "--fresh-process", action="store_true", help="also time the sweep with a fresh process per run (slow)"
    )
    options = parser.parse_args()
    single_threaded()
    os.chdir(_REPO)
    if str(_REPO) not in sys.path:
        sys.path.insert(0, str(_REPO))
    from rewardlab.sweeps import default_workers, load_sweep, run_sweep

    workers = options.workers or default_workers()
    sweep = load_sweep(SWEEP_FILE)
    num_runs = len(sweep.runs())

    import_s = median([float(_python(_IMPORT)) for _ in range(2)])
    run_times = json.loads(_python(_IN_PROCESS))
    compute_s = median(run_times[1:])
    compile_s = run_times[0] - compute_s
    ideal = import_s + compile_s + num_runs * compute_s / workers

    scratch = Path(tempfile.mkdtemp(prefix="sweep-jax-study-"))
    try:
        cache = scratch / "jax-cache"  # empty: every worker compiles once
        walls = {}
        for name, extra in (
            ("local", {}),
            ("local_warm_cache", {}),
            *((("fresh_process", {"fresh_process": True}),) if options.fresh_process else ()),
        ):
            start = time.perf_counter()
            results = run_sweep(sweep, scratch / name, workers=workers, compile_cache=cache, log=None, **extra)
            walls[name] = time.perf_counter() - start
            if not (results["status"] == "ok").all() or len(results) != num_runs:
                raise SystemExit(f"sweep_jax_study: {name}: expected {num_runs} ok runs, got {len(results)}")
        for name in ("vmap", "vmap_warm_cache"):  # in this process, on a cache of its own
            start = time.perf_counter()
            vmapped = run_sweep(
                sweep, scratch / name, backend="vmap", compile_cache=scratch / "jax-cache-vmap", log=None
            )
            walls[name] = time.perf_counter() - start
            if not (vmapped["status"] == "ok").all():
                raise SystemExit(f"sweep_jax_study: {name}: the vmap backend failed runs")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    figures = {
        "ratio": round(walls["local"] / ideal, 2),
        "wall_s": round(walls["local"], 2),
        "ideal_s": round(ideal, 2),
        "wall_s_warm_cache": round(walls["local_warm_cache"], 2),
        "wall_s_vmap": round(walls["vmap"], 2),
        "wall_s_vmap_warm_cache": round(walls["vmap_warm_cache"], 2),
        "import_s": round(import_s, 2),
        "compile_s": round(compile_s, 2),
        "compute_s_per_run": round(compute_s, 4),
        "runs": num_runs,
        "workers": workers,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "goal": "ratio <= 2",
    }
    if "fresh_process" in walls:
        figures["wall_s_fresh_process"] = round(walls["fresh_process"], 2)
    print_figures(figures)


if __name__ == "__main__":
    main()
