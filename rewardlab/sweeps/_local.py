"""The embedded backend: a pool of worker processes on this machine, one fresh process per run.

A fresh process per run (``spawn``, not ``fork``: JAX and threads do not survive a fork)
isolates runs from each other's global state, memory and crashes. A child dies with its
parent (Linux ``PR_SET_PDEATHSIG``, and a watchdog thread elsewhere), so a killed sweep
leaves no orphan writing into a run folder the rerun is redoing.
"""

from __future__ import annotations

import collections
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rewardlab._io import atomic_write_json
from rewardlab.sweeps._run import OUTPUT_FILE, execute_run, failure_record, read_result
from rewardlab.sweeps._spec import RunSpec

_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def default_workers() -> int:
    """Worker processes of the local backend: the CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


def limit_threads(threads: int | None) -> None:
    """Cap BLAS/OpenMP/XLA/torch threads of this process at ``threads`` (unless the user set them)."""
    if threads is None:
        return
    for name in _THREAD_VARIABLES:
        os.environ.setdefault(name, str(threads))
    if threads == 1 and "XLA_FLAGS" not in os.environ:
        os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


def _die_with_parent(parent_pid: int) -> None:
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # pragma: no cover
            pass
    if os.getppid() != parent_pid:
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, daemon=True, name="rewardlab-parent-watch").start()


def _child_main(payload: bytes, run_dir: str, threads: int | None, parent_pid: int) -> None:
    _die_with_parent(parent_pid)
    # Ctrl-C reaches the whole process group; the parent decides, and unfinished runs stay unmarked.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    limit_threads(threads)  # before the target's imports start thread pools
    fn, run = pickle.loads(payload)
    execute_run(fn, run, Path(run_dir))


def _exit_reason(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"the run's process was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            pass
    return f"the run's process exited with code {exitcode} before finishing"


def _tail(path: Path, max_chars: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-max_chars:]
    except OSError:
        return ""


def run_local(
    fn: Callable[..., Any],
    runs: Sequence[RunSpec],
    runs_dir: Path,
    workers: int,
    on_start: Callable[[RunSpec], None],
    on_finish: Callable[[RunSpec, dict[str, Any]], None],
    threads_per_run: int | None = None,
) -> None:
    """Run each of ``runs`` in its own process, at most ``workers`` at a time."""
    context = multiprocessing.get_context("spawn")
    pending = collections.deque(runs)
    running: dict[int, tuple[Any, RunSpec, float]] = {}
    try:
        while pending or running:
            while pending and len(running) < workers:
                run = pending.popleft()
                payload = pickle.dumps((fn, run))
                process = context.Process(
                    target=_child_main, args=(payload, str(runs_dir / run.name), threads_per_run, os.getpid()),
                    name=f"rewardlab-run-{run.name}",
                )
                process.start()
                running[process.sentinel] = (process, run, time.perf_counter())
                on_start(run)
            for sentinel in multiprocessing.connection.wait(list(running), timeout=1.0):
                process, run, start = running.pop(sentinel)
                process.join()
                run_dir = runs_dir / run.name
                record = read_result(run_dir)
                if record is None:  # died before writing its marker: a crash of the process itself
                    record = failure_record(run, _exit_reason(process.exitcode), _tail(run_dir / OUTPUT_FILE),
                                            time.perf_counter() - start, "")
                    atomic_write_json(run_dir / "result.json", record)
                on_finish(run, record)
    finally:
        for process, _, _ in running.values():
            process.terminate()
        for process, _, _ in running.values():
            process.join(5.0)
            if process.is_alive():
                process.kill()
                process.join()
