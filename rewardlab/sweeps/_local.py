"""The embedded backend: a pool of worker processes on this machine, one fresh process per run.

A fresh process per run (``spawn``, not ``fork``: JAX and threads do not survive a fork)
isolates runs from each other's global state, memory and crashes. A child dies with its
parent (Linux ``PR_SET_PDEATHSIG``, and a watchdog thread elsewhere), so a killed sweep
leaves no orphan writing into a run folder the rerun is redoing.
"""

from __future__ import annotations

import collections
import contextlib
import faulthandler
import importlib
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from rewardlab._io import atomic_write_json
from rewardlab.sweeps._process import limit_threads, timeout_message
from rewardlab.sweeps._run import OUTPUT_FILE, RunSpec, execute_run, failure_record, read_result

STACKS_SIGNAL = signal.SIGUSR1
_MAX_SPARES = 4  # warm processes waiting for a run; each holds the target's imports in memory


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


@contextlib.contextmanager
def _main_script_hidden(hide: bool) -> Iterator[None]:
    """Start children without re-running the user's ``__main__`` script when the target lives elsewhere.

    ``spawn`` children execute the parent's main script (as ``__mp_main__``) before they
    unpickle anything, so a script that calls ``Sweep.run`` outside an
    ``if __name__ == "__main__":`` guard would start the sweep again in every child. When the
    target is importable by module name the children never need that script: hiding its
    path while a child starts makes ``multiprocessing`` skip it.
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if not hide or main is None or path is None or getattr(main, "__spec__", None) is not None:
        yield
        return
    del main.__file__
    try:
        yield
    finally:
        main.__file__ = path


def _child_main(connection: Any, threads: int | None, parent_pid: int, preload: str | None) -> None:
    """A worker for exactly one run: warm up (limits, imports), then wait for the run and execute it."""
    _die_with_parent(parent_pid)
    # Ctrl-C reaches the whole process group; the parent decides, and unfinished runs stay unmarked.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A run past its time limit is asked for its Python stacks (into its output file) before it is killed.
    faulthandler.register(STACKS_SIGNAL, all_threads=True)
    limit_threads(threads)  # before the target's imports start thread pools
    if preload:
        try:
            importlib.import_module(preload)
        except Exception:  # noqa: BLE001 - the run itself will report it
            pass
    message = connection.recv()
    connection.close()
    if message is None:  # the sweep ended before this spare was needed
        return
    payload, run_dir = message
    fn, run = pickle.loads(payload)
    execute_run(fn, run, Path(run_dir))
    # The marker is written: skip the interpreter's teardown (module finalisers, thread joins).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


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


class _Worker:
    """A started process waiting for (or running) its one run."""

    def __init__(self, context: Any, threads: int | None, preload: str | None) -> None:
        receiver, self.sender = context.Pipe(duplex=False)
        self.process = context.Process(
            target=_child_main, args=(receiver, threads, os.getpid(), preload), name="rewardlab-run"
        )
        with _main_script_hidden(preload is not None):
            self.process.start()
        receiver.close()
        self.run: RunSpec | None = None
        self.start = 0.0

    @property
    def assigned(self) -> RunSpec:
        """The run given by ``assign`` (every worker in ``running`` has one)."""
        assert self.run is not None
        return self.run

    def assign(self, fn: Callable[..., Any], run: RunSpec, runs_dir: Path) -> None:
        self.run = run
        self.start = time.perf_counter()
        try:
            self.sender.send((pickle.dumps((fn, run)), str(runs_dir / run.name)))
        except (BrokenPipeError, OSError):
            pass  # the process died while warming up; its exit is recorded as the run's failure
        self.sender.close()

    def stop(self) -> None:
        if self.run is None:
            try:
                self.sender.send(None)
                self.sender.close()
            except (BrokenPipeError, OSError):
                pass
        else:
            self.process.terminate()

    def expire(self) -> None:
        """Dump the run's Python stacks into its output file, then kill it."""
        with contextlib.suppress(OSError):
            os.kill(self.process.pid, STACKS_SIGNAL)
        time.sleep(0.5)
        self.process.kill()
        self.process.join()

    def join(self) -> None:
        self.process.join(5.0)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


def run_local(
    fn: Callable[..., Any],
    runs: Sequence[RunSpec],
    runs_dir: Path,
    workers: int,
    on_start: Callable[[RunSpec], None],
    on_finish: Callable[[RunSpec, dict[str, Any]], None],
    threads_per_run: int | None = None,
    run_timeout: float | None = None,
) -> None:
    """Run each of ``runs`` in its own process, at most ``workers`` at a time.

    A run still going ``run_timeout`` seconds after it started is killed and recorded as
    failed, its Python stacks at that moment in its ``output.log`` and the record.

    Up to ``min(workers, 4)`` spare processes are kept started and warmed up (thread limits
    set, the target's module imported), so a finished run's slot is refilled without waiting
    for a new interpreter; every process still executes exactly one run.
    """
    context = multiprocessing.get_context("spawn")
    module = getattr(fn, "__module__", None)
    preload = module if module and module != "__main__" else None
    pending = collections.deque(runs)
    running: dict[int, _Worker] = {}
    spares: list[_Worker] = []
    try:
        while pending or running:
            started = []
            while pending and len(running) < workers:
                worker = spares.pop() if spares else _Worker(context, threads_per_run, preload)
                worker.assign(fn, pending.popleft(), runs_dir)
                running[worker.process.sentinel] = worker
                started.append(worker.assigned)
            while len(pending) > len(spares) and len(spares) < min(workers, _MAX_SPARES):
                spares.append(_Worker(context, threads_per_run, preload))
            for run in started:
                on_start(run)
            # wait() returns the sentinels it was given (ints); typeshed widens them to any waitable.
            ready = multiprocessing.connection.wait(list(running), timeout=1.0)
            finished = [running.pop(sentinel) for sentinel in ready]  # type: ignore[arg-type]
            expired = []
            if run_timeout is not None:
                now = time.perf_counter()
                for sentinel in [s for s, w in running.items() if now - w.start > run_timeout]:
                    expired.append(running.pop(sentinel))
                    expired[-1].expire()
            # Refill the freed slots from the spares before the bookkeeping of the finished runs.
            while pending and spares and len(running) < workers:
                worker = spares.pop()
                worker.assign(fn, pending.popleft(), runs_dir)
                running[worker.process.sentinel] = worker
                on_start(worker.assigned)
            for worker in finished:
                worker.process.join()
                run_dir = runs_dir / worker.assigned.name
                record = read_result(run_dir)
                if record is None:  # died before writing its marker: a crash of the process itself
                    record = failure_record(
                        worker.assigned,
                        _exit_reason(worker.process.exitcode),
                        _tail(run_dir / OUTPUT_FILE),
                        time.perf_counter() - worker.start,
                        "",
                    )
                    atomic_write_json(run_dir / "result.json", record)
                on_finish(worker.assigned, record)
            for worker in expired:
                assert run_timeout is not None  # only runs past run_timeout expire
                run_dir = runs_dir / worker.assigned.name
                if read_result(run_dir) is None:  # it may have finished in the last moment
                    output = _tail(run_dir / OUTPUT_FILE)
                    record = failure_record(
                        worker.assigned, timeout_message(run_timeout), output, time.perf_counter() - worker.start, ""
                    )
                    atomic_write_json(run_dir / "result.json", record)
                record = read_result(run_dir)
                assert record is not None  # written by the run or just above
                on_finish(worker.assigned, record)
    finally:
        for worker in [*running.values(), *spares]:
            worker.stop()
        for worker in [*running.values(), *spares]:
            worker.join()
