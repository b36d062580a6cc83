"""The embedded backend: a pool of warm worker processes on this machine, each running many runs.

A worker (``spawn``, not ``fork``: JAX and threads do not survive a fork) sets its thread
limits, imports the target once, and then executes runs one after another, each with its
own seed, folder, output file, logger and time limit; the target's imports and whatever it
compiled (JAX's in-memory caches) carry over from one run to the next. A run that crashes
its worker (a segfault, the OOM killer) or passes its time limit takes down that worker
only: the run is recorded as failed with its reason and a fresh worker takes the next run.
With ``fresh_process=True`` every run gets a process of its own instead (for targets that
leak global state from one run into the next).

A worker dies with its parent (Linux ``PR_SET_PDEATHSIG``, and a watchdog thread
elsewhere), so a killed sweep leaves no orphan writing into a run folder the rerun is redoing.
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
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from rewardlab._io import atomic_write_json
from rewardlab.sweeps._process import limit_threads, timeout_message
from rewardlab.sweeps._run import OUTPUT_FILE, RunSpec, execute_run, failure_record, read_result

STACKS_SIGNAL = signal.SIGUSR1
_MAX_SPARES = 4  # fresh-process mode: started processes waiting for a run; each holds the target's imports


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


def _child_main(
    connection: Any,
    threads: int | None,
    parent_pid: int,
    preload: str | None,
    environment: Mapping[str, str],
    max_runs: int | None,
) -> None:
    """A worker: warm up (environment, limits, imports), then execute runs as they arrive until told to stop."""
    _die_with_parent(parent_pid)
    # Ctrl-C reaches the whole process group; the parent decides, and unfinished runs stay unmarked.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A run past its time limit is asked for its Python stacks (into its output file) before it is killed.
    faulthandler.register(STACKS_SIGNAL, all_threads=True)
    os.environ.update(environment)  # before the target's imports read it (JAX's compilation cache)
    limit_threads(threads)  # before the target's imports start thread pools
    if preload:
        try:
            importlib.import_module(preload)
        except Exception:  # noqa: BLE001 - the run itself will report it
            pass
    done = 0
    while max_runs is None or done < max_runs:
        try:
            message = connection.recv()
        except (EOFError, OSError):  # the sweep is gone
            break
        if message is None:  # the sweep needs no more runs from this worker
            break
        payload, run_dir = message
        fn, run = pickle.loads(payload)
        execute_run(fn, run, Path(run_dir))
        sys.stdout.flush()
        sys.stderr.flush()
        connection.send(run.name)  # the marker is written
        done += 1
    # Skip the interpreter's teardown (module finalisers, thread joins): every marker is written.
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
    """A started process: warming up, waiting for a run, or running one."""

    def __init__(
        self,
        context: Any,
        threads: int | None,
        preload: str | None,
        environment: Mapping[str, str],
        max_runs: int | None,
    ) -> None:
        self.connection, child = context.Pipe(duplex=True)
        self.process = context.Process(
            target=_child_main,
            args=(child, threads, os.getpid(), preload, dict(environment), max_runs),
            name="rewardlab-run",
        )
        with _main_script_hidden(preload is not None):
            self.process.start()
        child.close()
        self.runs_left = max_runs
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
        if self.runs_left is not None:
            self.runs_left -= 1
        try:
            self.connection.send((pickle.dumps((fn, run)), str(runs_dir / run.name)))
        except (BrokenPipeError, OSError):
            pass  # the process died while warming up; its exit is recorded as the run's failure

    def stop(self) -> None:
        if self.run is None:
            with contextlib.suppress(BrokenPipeError, OSError):
                self.connection.send(None)
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
        self.connection.close()


class _Finished(NamedTuple):
    """A run that left its worker: by finishing, by the worker's death, or at its time limit."""

    run: RunSpec
    wall_s: float  # seconds since it was handed to its worker
    reason: str | None  # why it has no marker if it has none; None: the worker's exit code says


def _record(finished: _Finished, runs_dir: Path, exitcode: int | None) -> dict[str, Any]:
    """The finished run's marker; for a run that left none, write a failed one saying why."""
    run_dir = runs_dir / finished.run.name
    record = read_result(run_dir)
    if record is None:
        reason = finished.reason if finished.reason is not None else _exit_reason(exitcode)
        record = failure_record(finished.run, reason, _tail(run_dir / OUTPUT_FILE), finished.wall_s, "")
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(run_dir / "result.json", record)
    return record


def run_local(
    fn: Callable[..., Any],
    runs: Sequence[RunSpec],
    runs_dir: Path,
    workers: int,
    on_start: Callable[[RunSpec], None],
    on_finish: Callable[[RunSpec, dict[str, Any]], None],
    threads_per_run: int | None = None,
    run_timeout: float | None = None,
    fresh_process: bool = False,
    environment: Mapping[str, str] | None = None,
) -> None:
    """Run ``runs`` on at most ``workers`` warm worker processes (or a fresh process per run).

    Each worker imports the target once and executes run after run. A run still going
    ``run_timeout`` seconds after it started is killed with its worker and recorded as
    failed, its Python stacks at that moment in its ``output.log`` and the record; so is a
    run whose worker dies. Either way a new worker takes over the remaining runs.

    With ``fresh_process`` every run gets its own process, and up to ``min(workers, 4)``
    spare processes are kept started and warmed up (thread limits set, the target's module
    imported) so a finished run's slot is refilled without waiting for a new interpreter.
    ``environment`` is set in every worker before the target is imported.
    """
    context = multiprocessing.get_context("spawn")
    module = getattr(fn, "__module__", None)
    preload = module if module and module != "__main__" else None
    max_runs = 1 if fresh_process else None
    environment = dict(environment or {})

    def new_worker() -> _Worker:
        return _Worker(context, threads_per_run, preload, environment, max_runs)

    pending = collections.deque(runs)
    running: dict[int, _Worker] = {}  # by process sentinel
    idle: list[_Worker] = []  # warm workers waiting for a run (warm mode), or started spares (fresh mode)
    try:
        while pending or running:
            started = []
            while pending and len(running) < workers:
                worker = idle.pop() if idle else new_worker()
                if not worker.process.is_alive() and worker.process.exitcode is not None:
                    worker.join()  # died while waiting: never handed a run
                    continue
                worker.assign(fn, pending.popleft(), runs_dir)
                running[worker.process.sentinel] = worker
                started.append(worker.assigned)
            if fresh_process:
                while len(pending) > len(idle) and len(idle) < min(workers, _MAX_SPARES):
                    idle.append(new_worker())
            for run in started:
                on_start(run)
            by_connection = {worker.connection: worker for worker in running.values()}
            owners: dict[Any, _Worker] = {**by_connection, **running}
            ready = multiprocessing.connection.wait(list(owners), timeout=1.0)
            done: list[tuple[_Finished, int | None]] = []  # and the exit code of its worker, if it died
            for item in ready:
                worker = owners[item]
                if running.get(worker.process.sentinel) is not worker:
                    continue  # its connection and its sentinel were both ready: handled once
                alive = item in by_connection
                if alive:
                    try:
                        worker.connection.recv()  # the run's name: its marker is written
                    except (EOFError, OSError):
                        alive = False
                running.pop(worker.process.sentinel)
                finished = _Finished(worker.assigned, time.perf_counter() - worker.start, None)
                if alive and worker.runs_left != 0:
                    worker.run = None
                    idle.append(worker)
                    done.append((finished, None))
                else:
                    worker.join()
                    done.append((finished, worker.process.exitcode))
            if run_timeout is not None:
                now = time.perf_counter()
                for sentinel in [s for s, w in running.items() if now - w.start > run_timeout]:
                    worker = running.pop(sentinel)
                    worker.expire()
                    worker.join()
                    done.append((_Finished(worker.assigned, now - worker.start, timeout_message(run_timeout)), None))
            # Refill the freed slots before the bookkeeping of the finished runs.
            while pending and idle and len(running) < workers:
                worker = idle.pop()
                if not worker.process.is_alive():
                    worker.join()
                    continue
                worker.assign(fn, pending.popleft(), runs_dir)
                running[worker.process.sentinel] = worker
                on_start(worker.assigned)
            for finished, exitcode in done:
                on_finish(finished.run, _record(finished, runs_dir, exitcode))
    finally:
        for worker in [*running.values(), *idle]:
            worker.stop()
        for worker in [*running.values(), *idle]:
            worker.join()
