"""One run: what it is (:class:`RunSpec`), its folder, its seed, the call of the target, and the completion marker.

A run folder holds ``args.json`` (written first), ``output.log`` (the run's stdout and
stderr), ``metrics.sqlite`` and ``tensorboard/`` (from the :class:`RunLogger`), and
``result.json``, written atomically as the very last step. A folder without
``result.json`` is a half-written run: the next sweep wipes and redoes it.
"""

from __future__ import annotations

import contextlib
import datetime
import inspect
import json
import os
import random
import shutil
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from rewardlab._io import atomic_write_json
from rewardlab.sweeps._coerce import args_to_builtin
from rewardlab.sweeps._logger import RunLogger, final_metrics

RESULT_FILE = "result.json"
ARGS_FILE = "args.json"
OUTPUT_FILE = "output.log"


class RunSpec(NamedTuple):
    """One run of a sweep."""

    name: str  # folder name: env, design and seed, e.g. "Pendulum-v1__teacher=mistake__seed3"
    args: Any  # the frozen dataclass instance the target receives
    design: str  # the varied fields except the seed, e.g. "teacher=mistake"; "base" if none vary
    seed: int  # the run's seed (0 when the arguments have no seed field)
    overrides: dict[str, Any]  # varied field -> value of this run


def read_result(run_dir: Path) -> dict[str, Any] | None:
    """The completion marker of a run folder, or None if the run never completed.

    A marker that is torn, or lacks a field the results table needs (``name``, ``design``,
    an integer ``seed``, ``status`` ok or failed, ``metrics`` and ``args`` as mappings when
    present), counts as no marker: the run is redone rather than blocking the table.
    """
    try:
        with open(run_dir / RESULT_FILE) as handle:
            result = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(result, dict) or result.get("status") not in ("ok", "failed"):
        return None
    seed = result.get("seed")
    if not isinstance(result.get("name"), str) or not isinstance(result.get("design"), str):
        return None
    if isinstance(seed, bool) or not isinstance(seed, int):
        return None
    if not all(isinstance(result.get(key, {}), dict) for key in ("metrics", "args")):
        return None
    return result


def prepare_run_dir(run_dir: Path) -> None:
    """Wipe whatever a previous, unfinished attempt left and create an empty folder."""
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def accepts_logger(fn: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "logger" in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def seed_globals(seed: int) -> None:
    """Seed Python's, NumPy's legacy and (if loaded) torch's global generators."""
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)  # noqa: NPY002 - seeds the global RNG that run code may use
    except ImportError:  # pragma: no cover
        pass
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)


def failure_record(run: RunSpec, error: str, tb: str, wall_s: float, started: str) -> dict[str, Any]:
    return {
        "name": run.name,
        "design": run.design,
        "seed": run.seed,
        "status": "failed",
        "metrics": {},
        "error": error,
        "traceback": tb,
        "wall_s": wall_s,
        "started": started,
        "finished": _now(),
        "args": args_to_builtin(run.args),
        "overrides": _builtin(run.overrides),
    }


def _builtin(overrides: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(overrides, default=str))


@contextlib.contextmanager
def _redirect_output(path: Path) -> Iterator[None]:
    """Send file descriptors 1 and 2 (Python and C-level output) to ``path``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "ab", buffering=0) as handle:
        os.dup2(handle.fileno(), 1)
        os.dup2(handle.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def execute_run(
    fn: Callable[..., Any], run: RunSpec, run_dir: Path, capture_output: bool = True, extra_wall_s: float = 0.0
) -> dict[str, Any]:
    """Run ``fn`` on ``run.args`` in an empty ``run_dir`` and write ``result.json`` last.

    An exception in the target (or ``SystemExit``) is recorded as a failed run with its
    traceback; ``KeyboardInterrupt`` propagates and leaves no marker, so the run is redone.
    ``extra_wall_s`` is added to the recorded ``wall_s`` (the run's share of work done for it
    elsewhere, as a batched call).
    """
    run_dir = Path(run_dir)
    prepare_run_dir(run_dir)
    started = _now()
    atomic_write_json(
        run_dir / ARGS_FILE,
        {
            "name": run.name,
            "design": run.design,
            "seed": run.seed,
            "args": args_to_builtin(run.args),
            "overrides": _builtin(run.overrides),
        },
    )
    logger = RunLogger(run_dir)
    start = time.perf_counter() - extra_wall_s
    output = _redirect_output(run_dir / OUTPUT_FILE) if capture_output else contextlib.nullcontext()
    with output:
        try:
            seed_globals(run.seed)
            value = fn(run.args, logger=logger) if accepts_logger(fn) else fn(run.args)
            metrics = final_metrics(value)
            logger.close()
            record = {
                "name": run.name,
                "design": run.design,
                "seed": run.seed,
                "status": "ok",
                "metrics": metrics,
                "error": None,
                "traceback": None,
                "wall_s": time.perf_counter() - start,
                "started": started,
                "finished": _now(),
                "args": args_to_builtin(run.args),
                "overrides": _builtin(run.overrides),
            }
        except (Exception, SystemExit) as error:  # noqa: BLE001 - any crash of the target is a failed run
            tb = traceback.format_exc()
            print(tb, file=sys.stderr)
            with contextlib.suppress(Exception):
                logger.close()
            message = f"{type(error).__name__}: {error}".strip()
            record = failure_record(
                run,
                message.splitlines()[0] if message else type(error).__name__,
                tb,
                time.perf_counter() - start,
                started,
            )
    atomic_write_json(run_dir / "result.json", record)
    return record
