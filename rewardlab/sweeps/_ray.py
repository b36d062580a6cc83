"""The Ray backend: the same runs as Ray tasks, on a local Ray started on demand or on a cluster.

Each run is a Ray task (one CPU) in a Ray worker process, with its own seed and folder;
Ray replaces a worker that crashes, and the run is recorded as failed. The task writes its run folder in a node-local temporary folder and returns it as a tar
archive; the driver unpacks it next to the other runs and only then renames it into
place, so the sweep folder needs no shared filesystem and never holds half a run.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rewardlab._io import atomic_write_json
from rewardlab.sweeps._process import limit_threads, timeout_message
from rewardlab.sweeps._run import RESULT_FILE, RunSpec, execute_run, failure_record, read_result

INSTALL_HINT = "the ray backend needs Ray: pip install 'rewardlab[ray]'"
"""What to install when ``backend="ray"`` finds no Ray."""


def import_ray() -> Any:
    """``import ray``, or an ImportError that says how to install it."""
    try:
        import ray
    except ImportError as error:
        raise ImportError(INSTALL_HINT) from error
    return ray


def _task(fn: Callable[..., Any], run: RunSpec, threads: int | None, environment: dict[str, str]) -> bytes:
    for name, value in environment.items():  # JAX's compilation cache: read when the worker first imports JAX
        os.environ.setdefault(name, value)
    limit_threads(threads)
    scratch = Path(tempfile.mkdtemp(prefix="rewardlab-run-"))
    try:
        execute_run(fn, run, scratch / run.name)
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            archive.add(scratch / run.name, arcname=run.name)
        return buffer.getvalue()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _unpack(archive: bytes, run: RunSpec, runs_dir: Path) -> None:
    staging = Path(tempfile.mkdtemp(prefix=f".{run.name[:40]}.", suffix=".partial", dir=runs_dir))
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            tar.extractall(staging, filter="data")
        target = runs_dir / run.name
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging / run.name, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _record_failure(runs_dir: Path, run: RunSpec, error: str, tb: str, wall_s: float) -> dict[str, Any]:
    """Write a failed run's marker (the task never returned its folder) and return the record."""
    record = failure_record(run, error, tb, wall_s, "")
    (runs_dir / run.name).mkdir(parents=True, exist_ok=True)
    atomic_write_json(runs_dir / run.name / RESULT_FILE, record)
    return record


def _python_path() -> str:
    entries = [os.getcwd()] + [p for p in sys.path if p and os.path.isdir(p)]
    if os.environ.get("PYTHONPATH"):
        entries.append(os.environ["PYTHONPATH"])
    return os.pathsep.join(dict.fromkeys(entries))


def run_ray(
    fn: Callable[..., Any],
    runs: Sequence[RunSpec],
    runs_dir: Path,
    workers: int | None,
    address: str | None,
    on_start: Callable[[RunSpec], None],
    on_finish: Callable[[RunSpec, dict[str, Any]], None],
    threads_per_run: int | None = None,
    run_timeout: float | None = None,
    environment: dict[str, str] | None = None,
) -> None:
    """Run ``runs`` as Ray tasks; start a local Ray (``workers`` CPUs) unless one is running or ``address`` is given.

    A task still going ``run_timeout`` seconds after it started is cancelled (its worker
    killed) and the run recorded as failed.
    """
    ray = import_ray()
    started_here = False
    if not ray.is_initialized():
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address is None:
            # Workers of a local Ray import the target the way this process does.
            options.update(num_cpus=workers, runtime_env={"env_vars": {"PYTHONPATH": _python_path()}})
        ray.init(address=address, **options)
        started_here = True
    capacity = int(ray.cluster_resources().get("CPU", workers or 1))
    task = ray.remote(num_cpus=1)(_task)
    fn_ref = ray.put(fn)
    refs: dict[Any, RunSpec] = {}
    try:
        for run in runs:
            refs[task.remote(fn_ref, run, threads_per_run, dict(environment or {}))] = run
        started: dict[Any, float] = {}
        queue = list(refs)
        while refs:
            # Ray queues every task; the first `capacity` still waiting are the ones running.
            for ref in queue[:capacity]:
                if ref in refs and ref not in started:
                    started[ref] = time.perf_counter()
                    on_start(refs[ref])
            ready, _ = ray.wait(list(refs), num_returns=1, timeout=1.0)
            if run_timeout is not None and not ready:
                now = time.perf_counter()
                for ref in [r for r, t in started.items() if r in refs and now - t > run_timeout]:
                    ray.cancel(ref, force=True)
                    run = refs.pop(ref)
                    queue.remove(ref)
                    on_finish(run, _record_failure(runs_dir, run, timeout_message(run_timeout), "", now - started[ref]))
            for ref in ready:
                run = refs.pop(ref)
                queue.remove(ref)
                if ref not in started:
                    on_start(run)
                try:
                    _unpack(ray.get(ref), run, runs_dir)
                    record = read_result(runs_dir / run.name)
                    if record is None:
                        raise RuntimeError(f"the run folder came back without {RESULT_FILE}")
                except Exception as error:  # noqa: BLE001 - a worker crash is a failed run, not a failed sweep
                    record = _record_failure(
                        runs_dir, run, f"{type(error).__name__}: {error}".splitlines()[0], repr(error), 0.0
                    )
                on_finish(run, record)
    finally:
        for ref in refs:
            try:
                ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass
        if started_here:
            ray.shutdown()
