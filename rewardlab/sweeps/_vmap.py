"""Sweeps whose inner loop is pure JAX: every run in one compiled, vmapped call.

When a run is a pure JAX function of its design parameters and a PRNG key (tabular
MDPs, small jittable environments), a sweep needs no processes at all. Two doors:

- a sweep target that carries a :class:`VmapCore` (:func:`vmappable`) runs with
  ``backend="vmap"``: the runs of a sweep, grouped by what fixes the compiled program's
  shapes, go through ``jit(vmap(core))`` in one call per group, and each run's folder and
  ``result.json`` are written as the other backends write them, so the results table and
  the reports are the same;
- :func:`vmap_sweep` evaluates a numeric grid × seeds of a bare ``fn(design, key)`` with
  ``jit(vmap(vmap(fn)))``, where an input shared by every design turns each design's
  matrix–vector products into one matrix product, and writes ``results.parquet`` with the
  curves stacked in ``metrics.parquet``.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import time
import traceback
from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from rewardlab._io import atomic_write_json
from rewardlab.sweeps._logger import Logger, write_parquet
from rewardlab.sweeps._results import MANIFEST_FILE, RESULTS_FILE
from rewardlab.sweeps._run import RESULT_FILE, RunSpec, execute_run, failure_record
from rewardlab.sweeps._spec import design_names

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


STACKED_METRICS_FILE = "metrics.parquet"


def grid_designs(grid: Mapping[str, Sequence[Any]]) -> tuple[dict[str, np.ndarray], list[str]]:
    """The Cartesian product of ``grid`` as arrays ``{field: [D]}`` and the designs' labels.

    Example:
        >>> arrays, labels = grid_designs({"teacher_temperature": [0.1, 1.0], "labels": [10, 20]})
        >>> arrays["labels"].tolist(), labels[1]
        ([10, 20, 10, 20], 'teacher_temperature=0.1__labels=20')
    """
    if not grid:
        raise ValueError("grid: expected at least one field to vary")
    for name, values in grid.items():
        values = list(values)
        if not values:
            raise ValueError(f"grid.{name}: expected at least one value, got an empty list")
        if not all(isinstance(v, (bool, int, float, np.integer, np.floating, np.bool_)) for v in values):
            raise ValueError(
                f"grid.{name}: vmapped sweeps vary numbers only (map names to numbers inside fn), got {values!r}"
            )
    combos = list(itertools.product(*[list(values) for values in grid.values()]))
    arrays = {name: np.asarray([combo[i] for combo in combos]) for i, name in enumerate(grid)}
    labels = design_names([dict(zip(grid, combo, strict=True)) for combo in combos], None)
    return arrays, labels


def vmap_sweep(
    fn: Callable[[dict[str, Any], Any], Mapping[str, Any]],
    grid: Mapping[str, Sequence[Any]],
    seeds: Sequence[int],
    out_dir: str | os.PathLike | None = None,
    name: str = "vmap_sweep",
    curve_every: int = 1,
    fixed: Mapping[str, Any] | None = None,
) -> Any:
    """Evaluate ``fn(design, key)`` for every design of ``grid`` × seed in one ``jit(vmap(vmap(fn)))`` call.

    Args:
        fn: pure JAX function of ``design`` (field -> scalar array) and a PRNG ``key``,
            returning scalars (final metrics) and 1-D ``[T]`` arrays (curves, logged at
            steps ``0, curve_every, ...``).
        grid: field -> numbers; the designs are their Cartesian product.
        seeds: seeds; run ``(d, s)`` gets ``jax.random.key(seeds[s])``.
        out_dir: if given, write ``results.parquet``, ``metrics.parquet`` and ``sweep.json`` there.
        name: the sweep's name in ``sweep.json`` and reports.
        curve_every: steps between a curve's points.
        fixed: constant fields recorded with every row (not passed to ``fn``).

    Returns:
        The results DataFrame: run, design, seed, status, wall_s, the design fields, the
        fixed fields and the scalar metrics; one row per design × seed.

    Example:
        >>> import jax.numpy as jnp
        >>> fn = lambda design, key: {"score": design["a"] * 2.0, "curve": jnp.arange(3.0) * design["a"]}
        >>> vmap_sweep(fn, {"a": [1.0, 2.0]}, seeds=[0, 1])["score"].tolist()
        [2.0, 2.0, 4.0, 4.0]
    """
    import jax
    import pandas as pd

    if not isinstance(curve_every, int) or curve_every < 1:
        raise ValueError(f"curve_every: expected an integer >= 1, got {curve_every!r}")
    seeds = [int(seed) for seed in seeds]
    if not seeds:
        raise ValueError("seeds: expected at least one seed, got none")
    arrays, labels = grid_designs(grid)
    keys = jax.vmap(jax.random.key)(np.asarray(seeds))
    batched = jax.jit(jax.vmap(jax.vmap(fn, in_axes=(None, 0)), in_axes=(0, None)))
    start = time.perf_counter()
    outputs = jax.block_until_ready(batched({k: jax.numpy.asarray(v) for k, v in arrays.items()}, keys))
    wall = time.perf_counter() - start
    outputs = {key: np.asarray(value) for key, value in outputs.items()}
    num_designs, num_seeds = len(labels), len(seeds)
    rows, curves = [], []
    for d, design in enumerate(labels):
        for s, seed in enumerate(seeds):
            run = f"{design}__seed{seed}"
            row = {
                "run": run,
                "design": design,
                "seed": seed,
                "status": "ok",
                "wall_s": wall / (num_designs * num_seeds),
                "error": None,
            }
            row.update({field: values[d].item() for field, values in arrays.items()})
            row.update(dict(fixed or {}))
            for metric, value in outputs.items():
                if value.shape[:2] != (num_designs, num_seeds):
                    raise ValueError(f"fn: output {metric!r} has shape {value.shape}; expected [designs, seeds, ...]")
                if value.ndim == 2:
                    row[metric] = value[d, s].item()
                elif value.ndim == 3:
                    steps = np.arange(value.shape[2]) * curve_every
                    curves.append(
                        pd.DataFrame(
                            {
                                "run": run,
                                "design": design,
                                "seed": seed,
                                "step": steps,
                                "name": metric,
                                "value": value[d, s].astype(np.float64),
                            }
                        )
                    )
                else:
                    raise ValueError(
                        f"fn: output {metric!r} must be a scalar or a 1-D curve per run, got shape {value.shape[2:]}"
                    )
            rows.append(row)
    frame = pd.DataFrame(rows)
    frame["error"] = frame["error"].astype("string")
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        if curves:
            write_parquet(out / STACKED_METRICS_FILE, pd.concat(curves, ignore_index=True))
        write_parquet(out / RESULTS_FILE, frame)
        atomic_write_json(
            out / MANIFEST_FILE,
            {
                "name": name,
                "target": f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', '?')}",
                "backend": "vmap",
                "base": dict.fromkeys([*arrays, *(fixed or {})]),
                "grid": {field: list(values) for field, values in grid.items()},
                "seeds": seeds,
                "runs": [{"name": r["run"], "design": r["design"], "seed": r["seed"]} for r in rows],
            },
        )
    return frame
