"""Per-run logging: a ``metrics`` table (step, name, value) and TensorBoard scalars."""

from __future__ import annotations

import contextlib
import io
import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from rewardlab._io import atomic_write_bytes

METRICS_FILE = "metrics.sqlite"
TENSORBOARD_DIR = "tensorboard"


@runtime_checkable
class Logger(Protocol):
    """What a sweep target receives as ``logger``: where to write, and how to log a curve."""

    run_dir: Path | None  # the run's own folder (None when logging nowhere)

    def log(self, step: int, **metrics: float) -> None:
        """Record scalar ``metrics`` at ``step``."""


class RunLogger:
    """Logs scalars of one run to ``run_dir/metrics.sqlite`` and ``run_dir/tensorboard/``.

    The metrics table ``metrics`` has one row per (step, name, value). New rows are
    appended in one SQLite transaction on :meth:`flush` (at most every ``flush_every_s``
    seconds from :meth:`log`, and on :meth:`close`), so a reader sees whole flushes only
    and can follow a run live. Read it with :func:`read_metrics` (or
    ``pandas.read_sql("SELECT * FROM metrics", sqlite3.connect(path))``). SQLite rather
    than Parquet here: appends are cheap and transactional, and a run need not import
    pyarrow. With ``run_dir=None`` it only keeps the rows in memory (for targets run
    outside a sweep).

    Example:
        >>> import tempfile, pandas as pd
        >>> logger = RunLogger(tempfile.mkdtemp(), tensorboard=False)
        >>> logger.log(0, loss=1.0); logger.log(10, loss=0.5, accuracy=0.75)
        >>> logger.close()
        >>> read_metrics(logger.run_dir).shape
        (3, 3)
    """

    def __init__(
        self, run_dir: str | os.PathLike | None, tensorboard: bool = True, flush_every_s: float = 30.0
    ) -> None:
        self.run_dir = None if run_dir is None else Path(run_dir)
        self.tensorboard_dir = None if self.run_dir is None or not tensorboard else self.run_dir / TENSORBOARD_DIR
        self.flush_every_s = float(flush_every_s)
        self.steps: list[int] = []
        self.names: list[str] = []
        self.values: list[float] = []
        self._writer: Any = None
        self._dirty = False
        self._flushed = 0  # rows already in the table
        self._last_flush = time.monotonic()
        self._synced = True  # every flushed row is on disk (nothing flushed yet)

    @classmethod
    def null(cls) -> RunLogger:
        """A logger that writes nothing (rows stay in memory)."""
        return cls(None, tensorboard=False)

    def log(self, step: int, **metrics: float) -> None:
        """Record each of ``metrics`` (scalars) at ``step``."""
        step = int(step)
        for name, value in metrics.items():
            value = float(value)
            self.steps.append(step)
            self.names.append(name)
            self.values.append(value)
            if self.tensorboard_dir is not None and math.isfinite(value):
                self._tensorboard_scalar(name, value, step)
        self._dirty = True
        if self.run_dir is not None and time.monotonic() - self._last_flush > self.flush_every_s:
            self.flush()

    def _tensorboard_scalar(self, name: str, value: float, step: int) -> None:
        from tensorboard.compat.proto import event_pb2, summary_pb2

        if self._writer is None:
            from tensorboard.summary.writer.event_file_writer import EventFileWriter

            assert self.tensorboard_dir is not None  # scalars reach TensorBoard only when it is on
            self.tensorboard_dir.mkdir(parents=True, exist_ok=True)
            self._writer = EventFileWriter(str(self.tensorboard_dir), flush_secs=10)
        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=name, simple_value=value)])
        self._writer.add_event(event_pb2.Event(wall_time=time.time(), step=step, summary=summary))

    def table(self) -> Any:
        """The rows so far as a pandas DataFrame with columns step, name, value."""
        import pandas as pd

        return pd.DataFrame({"step": self.steps, "name": self.names, "value": self.values}).astype(
            {"step": "int64", "name": "string", "value": "float64"}
        )

    def flush(self) -> None:
        """Append the new rows to the metrics table in one transaction and flush TensorBoard."""
        self._last_flush = time.monotonic()
        if self._writer is not None:
            self._writer.flush()
        if self.run_dir is None or not self._dirty:
            return
        import sqlite3

        new = self._flushed
        rows = list(zip(self.steps[new:], self.names[new:], self.values[new:], strict=True))
        # One transaction per flush, without SQLite's own fsyncs: a reader still sees whole flushes,
        # and close() makes the table durable with one fsync before the run's marker is written.
        with contextlib.closing(sqlite3.connect(self.run_dir / METRICS_FILE, isolation_level=None)) as connection:
            connection.execute("PRAGMA synchronous=OFF")
            connection.execute("BEGIN")
            connection.execute(
                "CREATE TABLE IF NOT EXISTS metrics (step INTEGER NOT NULL, name TEXT NOT NULL, value REAL)"
            )
            connection.executemany("INSERT INTO metrics VALUES (?, ?, ?)", rows)
            connection.execute("COMMIT")
        self._flushed += len(rows)
        self._dirty = False
        self._synced = False

    def close(self) -> None:
        """Flush (metrics table and TensorBoard), write the table through to disk, and close the TensorBoard writer."""
        self.flush()
        if self.run_dir is not None and not self._synced:
            descriptor = os.open(self.run_dir / METRICS_FILE, os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
            self._synced = True
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def read_metrics(run_dir: str | os.PathLike) -> Any:
    """A run's metrics table as a pandas DataFrame (step, name, value); empty if it logged nothing."""
    import sqlite3

    import pandas as pd

    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return pd.DataFrame(
            {"step": pd.Series(dtype="int64"), "name": pd.Series(dtype="str"), "value": pd.Series(dtype="float64")}
        )
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
        return pd.read_sql_query("SELECT step, name, value FROM metrics", connection)


def write_parquet(path: Path, frame: Any) -> None:
    """Write a DataFrame to ``path`` as Parquet, atomically."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    atomic_write_bytes(path, buffer.getvalue())


def final_metrics(result: Any) -> dict[str, Any]:
    """A target's return value as a flat dict of scalars (numbers, bools, strings)."""
    if result is None:
        return {}
    if hasattr(result, "_asdict"):
        result = result._asdict()
    if not isinstance(result, Mapping):
        raise TypeError(
            f"the target returned {type(result).__name__}; expected a mapping of metric name -> scalar (or None)"
        )
    out: dict[str, Any] = {}
    for name, value in result.items():
        if hasattr(value, "item") and getattr(value, "size", 1) == 1:
            value = value.item()
        if isinstance(value, (bool, int, float, str)) or value is None:
            out[str(name)] = value
    return out
