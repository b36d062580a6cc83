"""The vmap backend: a sweep target's pure JAX core (:class:`VmapCore`), and every run of a sweep in one compiled call.

A target marked with :func:`vmappable` runs with ``backend="vmap"``: the runs of a sweep,
grouped by what fixes the compiled program's shapes, go through ``jit(vmap(core))`` in one
call per group, and each run's folder and ``result.json`` are written as the process
backends write them, so the results table and the reports are the same.
"""

from __future__ import annotations

import dataclasses
import time
import traceback
from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from rewardlab._io import atomic_write_json
from rewardlab.sweeps._logger import Logger
from rewardlab.sweeps._run import RESULT_FILE, RunSpec, execute_run, failure_record

_Target = TypeVar("_Target", bound=Callable[..., Any])


@dataclasses.dataclass(frozen=True)
class VmapCore:
    """A sweep target's pure JAX core, so ``backend="vmap"`` can evaluate its runs in one compiled call.

    For the runs of one group, ``fn, shared = build(args)`` (with the group's first
    arguments) and the outputs are ``jit(vmap(fn, in_axes=(0, None)))(stacked inputs,
    shared)``; each run then gets its folder as on the other backends, with
    ``finish(args, outputs, logger)`` run in place of the target. A target whose own body is
    ``finish(args, jit(fn)(inputs(args), shared), logger)`` therefore gives the same rows
    on every backend.

    Attributes:
        group: ``args -> key``: runs with equal keys share one compiled program (the
            compile-time sizes, and whatever ``build`` reads beyond them).
        build: ``args -> (fn, shared)``: the pure function of one run,
            ``fn(inputs, shared) -> outputs`` (a mapping of arrays), and the inputs shared by
            the group (an MDP), passed unbatched.
        inputs: ``args -> pytree of arrays``: one run's traced inputs (its design's numbers and
            its seed); stacked along a new leading axis for the batch.
        finish: ``(args, outputs, logger) -> final metrics``: the host side of one run, on its
            outputs as NumPy arrays (log curves, return the scalars).
    """

    group: Callable[[Any], Hashable]
    build: Callable[[Any], tuple[Callable[[Any, Any], Mapping[str, Any]], Any]]
    inputs: Callable[[Any], Any]
    finish: Callable[[Any, Mapping[str, Any], Logger | None], Mapping[str, Any]]


def vmappable(core: VmapCore) -> Callable[[_Target], _Target]:
    """Mark a sweep target as having a pure JAX ``core`` (returns the target itself, with ``target.vmap_core``).

    Raises:
        TypeError: ``core`` is not a :class:`VmapCore`.
    """
    if not isinstance(core, VmapCore):
        raise TypeError(f"core: expected a VmapCore, got {type(core).__name__}")

    def mark(target: _Target) -> _Target:
        target.vmap_core = core  # type: ignore[attr-defined]
        return target

    return mark


def vmap_core_of(fn: Any) -> VmapCore | None:
    """The :class:`VmapCore` a target was marked with by :func:`vmappable`, or None."""
    core = getattr(fn, "vmap_core", None)
    return core if isinstance(core, VmapCore) else None


class _Finish:
    """A run's host side as a sweep target: ``finish`` on the run's slice of the batched outputs."""

    def __init__(self, core: VmapCore, outputs: Mapping[str, Any]) -> None:
        self.core = core
        self.outputs = outputs

    def __call__(self, args: Any, logger: Logger | None = None) -> Mapping[str, Any]:
        return self.core.finish(args, self.outputs, logger)


def _configure_compile_cache(environment: Mapping[str, str]) -> None:
    """Point this process's JAX at the sweep's compilation cache unless it already has one."""
    import jax

    folder = environment.get("JAX_COMPILATION_CACHE_DIR")
    if folder and getattr(jax.config, "jax_compilation_cache_dir", None) is None:
        jax.config.update("jax_compilation_cache_dir", folder)
        seconds = environment.get("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS")
        if seconds is not None:
            jax.config.update("jax_persistent_cache_min_compile_time_secs", float(seconds))


def run_vmapped(
    core: VmapCore,
    runs: Sequence[RunSpec],
    runs_dir: Path,
    on_start: Callable[[RunSpec], None],
    on_finish: Callable[[RunSpec, dict[str, Any]], None],
    environment: Mapping[str, str] | None = None,
) -> None:
    """Evaluate ``runs`` in this process, one ``jit(vmap(...))`` call per group of :attr:`VmapCore.group`.

    Each run's folder is written as :func:`execute_run` writes it (``args.json``,
    ``output.log``, ``metrics.sqlite``, ``result.json``); its ``wall_s`` is its share of the
    group's call plus its own host side. A group whose batched call raises records every one
    of its runs as failed with that traceback.
    """
    import jax

    _configure_compile_cache(environment or {})
    groups: dict[Hashable, list[RunSpec]] = {}
    for run in runs:
        groups.setdefault(core.group(run.args), []).append(run)
    for group in groups.values():
        for run in group:
            on_start(run)
        start = time.perf_counter()
        try:
            fn, shared = core.build(group[0].args)
            inputs = jax.tree.map(lambda *leaves: np.stack(leaves), *[core.inputs(run.args) for run in group])
            batched = jax.jit(jax.vmap(fn, in_axes=(0, None)))
            outputs = jax.tree.map(np.asarray, jax.block_until_ready(batched(inputs, shared)))
            failure = None
        except Exception as error:  # noqa: BLE001 - the group's runs are recorded as failed, the sweep goes on
            message = f"{type(error).__name__}: {error}".strip().splitlines()[0]
            failure = (message, traceback.format_exc())
        share = (time.perf_counter() - start) / len(group)
        for index, run in enumerate(group):
            run_dir = runs_dir / run.name
            if failure is not None:
                record = failure_record(run, failure[0], failure[1], share, "")
                run_dir.mkdir(parents=True, exist_ok=True)
                atomic_write_json(run_dir / RESULT_FILE, record)
            else:
                mine = {name: value[index] for name, value in outputs.items()}
                record = execute_run(_Finish(core, mine), run, run_dir, extra_wall_s=share)
            on_finish(run, record)
