"""Running a sweep: resume bookkeeping, the backends, live progress and the results table."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from rewardlab._io import atomic_write_json, check_folder
from rewardlab.sweeps._coerce import args_to_builtin
from rewardlab.sweeps._local import run_local
from rewardlab.sweeps._process import compile_cache_environment, default_workers
from rewardlab.sweeps._results import MANIFEST_FILE, RUNS_DIR, write_results
from rewardlab.sweeps._run import RunSpec, read_result

_REBUILD_EVERY_S = 1.0  # seconds between rebuilds of results.parquet while runs finish

BACKENDS = ("local", "ray", "vmap")
"""Where a sweep runs: warm local worker processes, a Ray cluster, or one compiled call in this process."""


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


class RunState(NamedTuple):
    """A run of a sweep and what its folder holds (:func:`run_states`)."""

    run: RunSpec  # the run as the sweep defines it now
    status: str | None  # "ok" or "failed" when the folder holds a finished run, None when it must run
    changed: tuple[str, ...]  # what differs from the finished run's identity, e.g. ("num_steps: 30 -> 50",)


def _canonical(value: Any) -> str:
    """JSON text of ``value`` as a run's ``result.json`` stores it (arrays as lists, paths as strings)."""
    return json.dumps(value, sort_keys=True, default=_jsonable)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


_ABSENT = object()


def _differences(stored: dict[str, Any], now: dict[str, Any]) -> tuple[str, ...]:
    """``field: stored -> now`` of every argument whose value differs (JSON texts, so NaN equals NaN)."""
    out = []
    for name in dict.fromkeys([*now, *stored]):
        before, after = stored.get(name, _ABSENT), now.get(name, _ABSENT)
        if before is _ABSENT or after is _ABSENT or _canonical(before) != _canonical(after):
            text = ["absent" if v is _ABSENT else _canonical(v) for v in (before, after)]
            out.append(f"{name}: {text[0]} -> {text[1]}")
    return tuple(out)


def _stored_target(sweep_dir: Path) -> str | None:
    try:
        manifest = json.loads((sweep_dir / MANIFEST_FILE).read_text())
    except (OSError, ValueError):
        return None
    target = manifest.get("target") if isinstance(manifest, dict) else None
    return target if isinstance(target, str) else None


def run_states(sweep: SweepPlan, out_dir: str | os.PathLike) -> list[RunState]:
    """Every run of ``sweep`` with the state of its folder in ``out_dir``: to run, finished, or finished with other arguments.

    A run's identity is its name *and* every argument it receives, plus the sweep's target:
    a finished run whose ``result.json`` records other argument values (the base arguments
    were edited, a field was added to the dataclass) or whose sweep folder names another
    target is reported with what ``changed``; :func:`run_sweep` refuses to resume over such
    runs unless told to redo them (``force=True``).

    Example:
        >>> import tempfile
        >>> from rewardlab.sweeps import Sweep
        >>> from experiments.bandit import Args, main
        >>> [state.status for state in run_states(Sweep(main, Args(), grid={"seed": [0, 1]}), tempfile.mkdtemp())]
        [None, None]
    """
    sweep_dir = Path(out_dir)
    runs_dir = sweep_dir / RUNS_DIR
    stored_target = _stored_target(sweep_dir)
    target = sweep.manifest().get("target")
    states = []
    for run in sweep.runs():
        record = read_result(runs_dir / run.name)
        if record is None:
            states.append(RunState(run, None, ()))
            continue
        now = json.loads(_canonical(args_to_builtin(run.args)))
        changed = _differences(record["args"], now) if "args" in record else ()
        if stored_target is not None and target is not None and stored_target != target:
            changed = (f"target: {stored_target} -> {target}", *changed)
        states.append(RunState(run, record["status"], changed))
    return states


def _refuse_changed(states: list[RunState], sweep_dir: Path) -> None:
    changed = [state for state in states if state.changed]
    if not changed:
        return
    fields = list(dict.fromkeys(item for state in changed for item in state.changed))
    shown = "; ".join(fields[:4]) + ("; ..." if len(fields) > 4 else "")
    raise ValueError(
        f"out_dir: {len(changed)} finished run(s) in {str(sweep_dir)!r} were made with other arguments ({shown}), "
        f"e.g. {changed[0].run.name}; resuming would mix two configurations in one table. Write to a new out_dir, "
        "or pass force=True (rewardlab sweep --force) to redo those runs with the arguments of now"
    )


def _check_local_target(sweep: SweepPlan, runs: list[RunSpec]) -> None:
    """The local backend sends the target and the arguments to its worker processes by name (pickle)."""
    fn = sweep.fn
    name = f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', repr(fn))}"
    main = sys.modules.get("__main__")
    interactive = getattr(fn, "__module__", None) == "__main__" and getattr(main, "__file__", None) is None
    try:
        pickle.dumps(fn)
        picklable = True
    except Exception:  # noqa: BLE001 - pickle raises PicklingError, AttributeError or TypeError here
        picklable = False
    if interactive or not picklable:
        kind = "a lambda" if "<lambda>" in name else "a nested function" if "<locals>" in name else "a callable"
        where = " defined in an interactive session" if interactive else " that cannot be imported by name"
        raise ValueError(
            f"fn: the local backend's worker processes import the target by name; expected a "
            f"module-level function (or 'module:function'), got {kind}{where}: {name!r}. Define it at the top level "
            "of a module (backend='ray' ships such functions by value)"
        )
    if runs:
        try:
            pickle.dumps(runs[0].args)
        except Exception:  # noqa: BLE001 - as above
            cls = type(runs[0].args)
            raise ValueError(
                f"base: the local backend sends the arguments to worker processes, which import their class by name; "
                f"expected an instance of a module-level dataclass, got {cls.__module__}:{cls.__qualname__}"
            ) from None


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
    force: bool = False,
    fresh_process: bool = False,
    compile_cache: bool | str | os.PathLike = True,
) -> Any:
    """Run every run of ``sweep`` not already completed in ``out_dir``; return the results table.

    Resuming: a run whose folder holds ``result.json`` is complete and skipped (a failed one
    too, unless ``retry_failed``); any other folder is a half-written run and is wiped and
    redone. Killing a sweep and running the same call again therefore finishes it without
    losing or duplicating a run. The results table ``out_dir/results.parquet`` is rebuilt
    atomically as runs complete (at most once a second) and when the sweep ends.

    A run's identity is every argument it receives and the target, not only its name: when a
    finished run in ``out_dir`` was made with other arguments (the base arguments were edited
    between two calls), the sweep refuses to start (nothing in ``out_dir`` changes) unless
    ``force=True``, which redoes those runs. :func:`run_states` lists what differs.

    Args:
        sweep: what to run (a :class:`~rewardlab.sweeps.Sweep`).
        out_dir: the sweep folder (``runs/`` of run folders, ``results.parquet``, ``sweep.json``).
        backend: ``local`` (``workers`` warm worker processes, each running many runs), ``ray``,
            or ``vmap`` (every run in one compiled call, for targets with a :class:`VmapCore`).
        workers: parallel runs; default the CPU cores available (local), or the local Ray's CPUs.
        address: a running Ray cluster's address (``ray`` backend); None starts a local Ray.
        retry_failed: redo runs recorded as failed.
        threads_per_run: BLAS/XLA/torch threads of each run; default cores ÷ workers.
        run_timeout: seconds a run may take; a run still going then is killed and recorded as
            failed (its Python stacks in its ``output.log`` on the local backend), so a stalled
            run cannot hold up the sweep. None: no limit.
        log: receives one progress line per finished run (None: silent).
        force: redo finished runs whose arguments (or target) differ from the sweep's now,
            instead of refusing.
        fresh_process: local backend: a new process for every run instead of warm workers
            that run many (for targets that leak global state from one run into the next).
        compile_cache: JAX's persistent compilation cache shared by the sweep's workers and by
            later sweeps: True for the default folder (``$JAX_COMPILATION_CACHE_DIR`` if set,
            else ``~/.cache/rewardlab/jax``), a folder, or False for none.

    Returns:
        The results DataFrame (one row per completed run of this sweep).

    Raises:
        ValueError: a bad argument; ``backend="vmap"`` for a target without a :class:`VmapCore`;
            ``out_dir`` is a file; another sweep holds ``out_dir``;
            finished runs in ``out_dir`` were made with other arguments (without ``force``);
            a target the local backend cannot send to its processes (a lambda, a nested function).
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
    if not isinstance(fresh_process, bool):
        raise ValueError(f"fresh_process: expected True or False, got {fresh_process!r}")
    environment = compile_cache_environment(compile_cache)
    if backend == "ray":
        from rewardlab.sweeps._ray import import_ray

        import_ray()  # fail before touching the sweep folder
    runs = sweep.runs()
    if backend == "local":
        _check_local_target(sweep, runs)
    core = None
    if backend == "vmap":
        from rewardlab.sweeps._core import vmap_core_of

        core = vmap_core_of(sweep.fn)
        if core is None:
            raise ValueError(
                f"backend: 'vmap' needs a target marked with a pure JAX core (rewardlab.sweeps.vmappable); "
                f"{sweep.manifest().get('target')} has none: use backend='local'"
            )
    sweep_dir = Path(out_dir)
    check_folder(sweep_dir, "out_dir")
    runs_dir = sweep_dir / RUNS_DIR
    runs_dir.mkdir(parents=True, exist_ok=True)
    cores = default_workers()
    if workers is None and backend == "local":
        workers = cores
    if threads_per_run is None:
        threads_per_run = max(1, cores // (workers or cores))
    with _SweepLock(sweep_dir):
        states = run_states(sweep, sweep_dir)
        if not force:
            _refuse_changed(states, sweep_dir)  # before anything in the folder changes
        for leftover in runs_dir.iterdir():  # staging folders of an interrupted Ray sweep
            if leftover.name.startswith(".") and leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
        atomic_write_json(sweep_dir / MANIFEST_FILE, _manifest(sweep, runs, backend))
        todo = [
            state.run
            for state in states
            if state.status is None or state.changed or (retry_failed and state.status == "failed")
        ]
        names = [run.name for run in runs]
        write_results(sweep_dir, names)
        progress = SweepProgress(len(runs), len(runs) - len(todo), log)
        if log is not None:
            log(
                f"sweep {sweep.name}: {len(runs)} runs, {len(runs) - len(todo)} already complete, "
                f"{len(todo)} to run on {backend}"
                + (f" ({workers} workers)" if workers and backend != "vmap" else "")
                + f" -> {sweep_dir}"
            )

        last_rebuild = [time.monotonic()]

        def finished(run: RunSpec, record: dict[str, Any]) -> None:
            # Rebuilding reads every finished run's marker: at most once per interval, and once at the end.
            if time.monotonic() - last_rebuild[0] >= _REBUILD_EVERY_S:
                write_results(sweep_dir, names)
                last_rebuild[0] = time.monotonic()
            progress.finished(run, record)

        if todo:
            if core is not None:
                from rewardlab.sweeps._core import run_vmapped

                run_vmapped(core, todo, runs_dir, progress.started, finished, environment)
            elif backend == "local":
                assert workers is not None  # defaults to the core count for the local backend
                run_local(
                    sweep.fn,
                    todo,
                    runs_dir,
                    workers,
                    progress.started,
                    finished,
                    threads_per_run,
                    run_timeout,
                    fresh_process=fresh_process,
                    environment=environment,
                )
            else:
                from rewardlab.sweeps._ray import run_ray

                run_ray(
                    sweep.fn,
                    todo,
                    runs_dir,
                    workers,
                    address,
                    progress.started,
                    finished,
                    threads_per_run,
                    run_timeout,
                    environment=environment,
                )
        frame = write_results(sweep_dir, names)
    if log is not None:
        log(f"sweep {sweep.name}: {progress.status()}; results: {sweep_dir / 'results.parquet'}")
    return frame
