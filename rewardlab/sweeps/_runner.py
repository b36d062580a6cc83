"""Running a sweep: resume bookkeeping, the backends, live progress and the results table."""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from rewardlab._io import atomic_write_json
from rewardlab.sweeps._local import run_local
from rewardlab.sweeps._process import default_workers
from rewardlab.sweeps._results import MANIFEST_FILE, RUNS_DIR, write_results
from rewardlab.sweeps._run import RunSpec, read_result

BACKENDS = ("local", "ray")
"""Where a sweep runs: local processes or a Ray cluster."""


class SweepPlan(Protocol):
    """What :func:`run_sweep` reads of a sweep (a :class:`~rewardlab.sweeps.Sweep` is one)."""

    @property
    def name(self) -> str | None:
        """The sweep's name, shown in progress lines and ``sweep.json``."""

    @property
    def fn(self) -> Any:
        """The target every run calls."""

    def runs(self) -> list[RunSpec]:
        """Every run, in a fixed order."""

    def manifest(self) -> dict[str, Any]:
        """The sweep's description for ``sweep.json`` (JSON-ready)."""


def _format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


class SweepProgress:
    """Counts of a sweep (done, failed, running, skipped) and an ETA, reported one line per event.

    ETA = remaining runs × (time since start ÷ runs finished since start), which already
    accounts for the runs going on in parallel.
    """

    def __init__(self, total: int, skipped: int, log: Callable[[str], None] | None) -> None:
        self.total = total
        self.skipped = skipped
        self.ok = 0
        self.failed = 0
        self.running = 0
        self.start = time.perf_counter()
        self.log = log

    @property
    def finished_now(self) -> int:
        return self.ok + self.failed

    def eta_s(self) -> float | None:
        if self.finished_now == 0:
            return None
        remaining = self.total - self.skipped - self.finished_now
        return remaining * (time.perf_counter() - self.start) / self.finished_now

    def status(self) -> str:
        done = self.skipped + self.finished_now
        eta = self.eta_s()
        return (
            f"{done}/{self.total} done ({self.failed} failed, {self.skipped} from before), {self.running} running, "
            f"ETA {'?' if eta is None else _format_seconds(eta)}"
        )

    def started(self, run: RunSpec) -> None:
        self.running += 1

    def finished(self, run: RunSpec, record: dict[str, Any]) -> None:
        self.running = max(0, self.running - 1)
        if record["status"] == "ok":
            self.ok += 1
        else:
            self.failed += 1
        if self.log is not None:
            what = "ok" if record["status"] == "ok" else f"FAILED: {record.get('error')}"
            self.log(f"[{self.status()}] {run.name}: {what} ({record.get('wall_s', 0.0):.1f} s)")


class _SweepLock:
    """An exclusive lock on the sweep folder, so two sweeps never write the same runs."""

    def __init__(self, sweep_dir: Path) -> None:
        self.path = sweep_dir / ".lock"
        self.handle: Any = None

    def __enter__(self) -> _SweepLock:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no lock
            return self
        self.handle = open(self.path, "w")
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.handle.close()
            raise ValueError(f"out: another sweep is running in {str(self.path.parent)!r}") from None
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.handle is not None:
            self.handle.close()


def _manifest(sweep: SweepPlan, runs: list[RunSpec], backend: str) -> dict[str, Any]:
    return {
        **sweep.manifest(),
        "backend": backend,
        "runs": [{"name": r.name, "design": r.design, "seed": r.seed} for r in runs],
    }


def _default_log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_sweep(
    sweep: SweepPlan,
    out_dir: str | os.PathLike,
    backend: str = "local",
    workers: int | None = None,
    address: str | None = None,
    retry_failed: bool = False,
    threads_per_run: int | None = None,
    run_timeout: float | None = None,
    log: Callable[[str], None] | None = _default_log,
) -> Any:
    """Run every run of ``sweep`` not already completed in ``out_dir``; return the results table.

    Resuming: a run whose folder holds ``result.json`` is complete and skipped (a failed one
    too, unless ``retry_failed``); any other folder is a half-written run and is wiped and
    redone. Killing a sweep and running the same call again therefore finishes it without
    losing or duplicating a run. The results table ``out_dir/results.parquet`` is rebuilt
    atomically after every completed run.

    Args:
        sweep: what to run (a :class:`~rewardlab.sweeps.Sweep`).
        out_dir: the sweep folder (``runs/`` of run folders, ``results.parquet``, ``sweep.json``).
        backend: ``local`` (a process per run, ``workers`` at a time) or ``ray``.
        workers: parallel runs; default the CPU cores available (local), or the local Ray's CPUs.
        address: a running Ray cluster's address (``ray`` backend); None starts a local Ray.
        retry_failed: redo runs recorded as failed.
        threads_per_run: BLAS/XLA/torch threads of each run; default cores ÷ workers.
        run_timeout: seconds a run may take; a run still going then is killed and recorded as
            failed (its Python stacks in its ``output.log`` on the local backend), so a stalled
            run cannot hold up the sweep. None: no limit.
        log: receives one progress line per finished run (None: silent).

    Returns:
        The results DataFrame (one row per completed run of this sweep).

    Raises:
        ValueError: a bad argument, or another sweep holds ``out_dir``.
        ImportError: ``backend="ray"`` without Ray installed (says how to install it).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers: expected an integer >= 1, got {workers!r}")
    if run_timeout is not None and (
        isinstance(run_timeout, bool) or not isinstance(run_timeout, (int, float)) or not run_timeout > 0
    ):
        raise ValueError(f"run_timeout: expected a number of seconds > 0 (or None for no limit), got {run_timeout!r}")
    if address is not None and backend != "ray":
        raise ValueError("address: only the ray backend connects to a cluster; add backend='ray'")
    if backend == "ray":
        from rewardlab.sweeps._ray import import_ray

        import_ray()  # fail before touching the sweep folder
    runs = sweep.runs()
    sweep_dir = Path(out_dir)
    runs_dir = sweep_dir / RUNS_DIR
    runs_dir.mkdir(parents=True, exist_ok=True)
    cores = default_workers()
    if workers is None and backend == "local":
        workers = cores
    if threads_per_run is None:
        threads_per_run = max(1, cores // (workers or cores))
    with _SweepLock(sweep_dir):
        for leftover in runs_dir.iterdir():  # staging folders of an interrupted Ray sweep
            if leftover.name.startswith(".") and leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
        atomic_write_json(sweep_dir / MANIFEST_FILE, _manifest(sweep, runs, backend))
        todo = []
        for run in runs:
            record = read_result(runs_dir / run.name)
            if record is None or (retry_failed and record["status"] == "failed"):
                todo.append(run)
        names = [run.name for run in runs]
        write_results(sweep_dir, names)
        progress = SweepProgress(len(runs), len(runs) - len(todo), log)
        if log is not None:
            log(
                f"sweep {sweep.name}: {len(runs)} runs, {len(runs) - len(todo)} already complete, "
                f"{len(todo)} to run on {backend}" + (f" ({workers} workers)" if workers else "") + f" -> {sweep_dir}"
            )

        def finished(run: RunSpec, record: dict[str, Any]) -> None:
            write_results(sweep_dir, names)
            progress.finished(run, record)

        if todo:
            if backend == "local":
                assert workers is not None  # defaults to the core count for the local backend
                run_local(sweep.fn, todo, runs_dir, workers, progress.started, finished, threads_per_run, run_timeout)
            else:
                from rewardlab.sweeps._ray import run_ray

                run_ray(
                    sweep.fn, todo, runs_dir, workers, address, progress.started, finished, threads_per_run, run_timeout
                )
        frame = write_results(sweep_dir, names)
    if log is not None:
        log(f"sweep {sweep.name}: {progress.status()}; results: {sweep_dir / 'results.parquet'}")
    return frame
