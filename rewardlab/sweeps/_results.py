"""The sweep's results table and per-run metrics, as pandas DataFrames.

``SWEEP_DIR/results.parquet`` has one row per completed run: ``run``, ``design``,
``seed``, ``status`` (ok / failed), ``wall_s``, ``error``, then every argument under its
field name and every final metric under its own name (``metric.<name>`` when a metric
shares a name with an argument). It is rebuilt from the run folders and replaced
atomically as runs complete (at most once a second) and when the sweep ends, so it can be
read while the sweep runs.

Column types follow what the runs returned: numbers give a numeric column (missing values
NaN or ``<NA>``), booleans a boolean one, text a string one. A column whose runs returned
values of different kinds (a float in most runs, a string such as ``"diverged"`` in one)
is stored as text, each value as ``str(value)`` writes it; ``pandas.to_numeric(df[name],
errors="coerce")`` gives the numbers back, and ``rewardlab report`` does so itself. No
value a run returns can stop the table from being written (or a sweep from resuming)::

    df = pandas.read_parquet("runs/sweeps/bpref/results.parquet")
    df[df.status == "ok"].groupby("teacher").normalized_return.mean()
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rewardlab.sweeps._logger import METRICS_FILE, read_metrics, write_parquet
from rewardlab.sweeps._run import read_result

RESULTS_FILE = "results.parquet"
MANIFEST_FILE = "sweep.json"
RUNS_DIR = "runs"
_COLUMNS = ("run", "design", "seed", "status", "wall_s", "error")


def _cell(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return value


def results_frame(records: Iterable[dict[str, Any]]) -> Any:
    """Rows of run records (the ``result.json`` dicts) as the results DataFrame."""
    import pandas as pd

    rows = []
    for record in records:
        row = {
            "run": record["name"],
            "design": record["design"],
            "seed": int(record["seed"]),
            "status": record["status"],
            "wall_s": float(record.get("wall_s") or 0.0),
            "error": record.get("error"),
        }
        args = record.get("args", {})
        for name, value in args.items():
            if name not in _COLUMNS:
                row[name] = _cell(value)
        for name, value in record.get("metrics", {}).items():
            key = f"metric.{name}" if name in row or name in _COLUMNS else name
            row[key] = value
        rows.append(row)
    frame = pd.DataFrame(rows, columns=None if rows else list(_COLUMNS))
    if "error" in frame:
        frame["error"] = frame["error"].astype("string")
    for column in frame.columns:
        if frame[column].dtype == object:
            # mixed None/str or None/float columns: let pandas pick a parquet-friendly dtype
            frame[column] = frame[column].convert_dtypes()
        if frame[column].dtype == object:
            # values of several kinds (numbers and text, booleans and numbers): stored as text
            frame[column] = _as_text(frame[column])
    return frame


def _as_text(column: Any) -> Any:
    """A column as pandas strings: ``str(value)`` of each value, missing values (None, NaN) kept missing."""
    import pandas as pd

    return pd.Series([None if pd.isna(v) else str(v) for v in column], index=column.index, dtype="string")


def write_results(sweep_dir: Path, run_names: Sequence[str]) -> Any:
    """Rebuild ``results.parquet`` from the completed run folders among ``run_names``."""
    runs_dir = Path(sweep_dir) / RUNS_DIR
    records = [record for name in run_names if (record := read_result(runs_dir / name)) is not None]
    frame = results_frame(records)
    try:
        write_parquet(Path(sweep_dir) / RESULTS_FILE, frame)
    except (ValueError, TypeError, OverflowError):  # pyarrow's ArrowInvalid and ArrowTypeError among them
        # a kind of value results_frame did not foresee: such columns are stored as text too
        for column in frame.columns:
            try:
                frame[[column]].to_parquet(io.BytesIO(), index=False)
            except (ValueError, TypeError, OverflowError):
                frame[column] = _as_text(frame[column])
        write_parquet(Path(sweep_dir) / RESULTS_FILE, frame)
    return frame


def load_results(sweep_dir: str | os.PathLike) -> Any:
    """The results table of a sweep folder (one row per completed run).

    Raises:
        ValueError: ``sweep_dir`` has no ``results.parquet``.
    """
    path = Path(sweep_dir) / RESULTS_FILE
    if not path.is_file():
        raise ValueError(f"sweep_dir: no {RESULTS_FILE} in {str(sweep_dir)!r}; is it a sweep folder?")
    import pandas as pd

    return pd.read_parquet(path)


def load_metrics(sweep_dir: str | os.PathLike, status: str | None = "ok") -> Any:
    """Every run's metrics table, stacked: columns run, design, seed, step, name, value.

    Args:
        sweep_dir: the sweep folder.
        status: keep runs with this status (None: all completed runs).
    """
    import pandas as pd

    results = load_results(sweep_dir)
    stacked = Path(sweep_dir) / "metrics.parquet"  # written by vmap_sweep: every run's curves in one table
    if stacked.is_file():
        table = pd.read_parquet(stacked)
        keep = results["run"] if status is None else results.loc[results["status"] == status, "run"]
        return table[table["run"].isin(set(keep))].reset_index(drop=True)
    if status is not None:
        results = results[results["status"] == status]
    parts = []
    for run, design, seed in zip(results["run"], results["design"], results["seed"], strict=True):
        run_dir = Path(sweep_dir) / RUNS_DIR / str(run)
        if (run_dir / METRICS_FILE).is_file():
            table = read_metrics(run_dir)
            table.insert(0, "seed", int(seed))
            table.insert(0, "design", str(design))
            table.insert(0, "run", str(run))
            parts.append(table)
    if not parts:
        return pd.DataFrame({"run": [], "design": [], "seed": [], "step": [], "name": [], "value": []})
    return pd.concat(parts, ignore_index=True)
