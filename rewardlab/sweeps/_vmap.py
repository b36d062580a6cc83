"""Sweeps whose inner loop is pure JAX: every run in one compiled, vmapped call.

When a run is a pure JAX function of its design parameters and a PRNG key (tabular
MDPs, small jittable environments), a sweep needs no processes at all. Two doors:

- a sweep target marked with its core (``rewardlab.sweeps.vmappable``) runs with
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

import itertools
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab._io import atomic_write_json
from rewardlab.sweeps._logger import write_parquet
from rewardlab.sweeps._results import MANIFEST_FILE, RESULTS_FILE
from rewardlab.sweeps._spec import design_names

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
