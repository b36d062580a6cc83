"""The labelling store: queries, clips, labellers, labels and timings in one SQLite file.

Every write is one transaction in WAL mode with ``synchronous=FULL``: a label the server
confirmed (its ``POST`` returned) is on disk, and a killed server or trainer reopens the same
file and goes on. A query holds one fragment pair (``FragmentPairs`` with B = 1, kept as ``.npz``
bytes) and asks ``labels_wanted`` labellers; it closes when that many have answered. Answers are
``left`` (σ¹ ≻ σ², label 1), ``right`` (label 0), ``equal`` (0.5) or ``skip`` (can't tell, no label).
A query's label in the preference dataset is the mean of its answers other than ``skip``:

    y = (1 / |A|) Σ_{a ∈ A} y_a,   A = the query's non-skip answers (a query with A = ∅ has no label).
"""

from __future__ import annotations

import io
import json
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from rewardlab._types import FragmentPairs, Preferences

CHOICES: dict[str, float | None] = {"left": 1.0, "right": 0.0, "equal": 0.5, "skip": None}
"""Answers a labeller can give and the preference label each stands for (``skip``: none)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queries (
    id INTEGER PRIMARY KEY,
    created REAL NOT NULL,
    labels_wanted INTEGER NOT NULL,
    closed REAL,
    pair BLOB NOT NULL,
    factors TEXT,
    taken REAL
);
CREATE TABLE IF NOT EXISTS clips (
    query_id INTEGER NOT NULL REFERENCES queries(id),
    side INTEGER NOT NULL,
    name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    PRIMARY KEY (query_id, side)
);
CREATE TABLE IF NOT EXISTS labellers (
    token TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS labels (
    id INTEGER PRIMARY KEY,
    query_id INTEGER NOT NULL REFERENCES queries(id),
    token TEXT NOT NULL REFERENCES labellers(token),
    choice TEXT NOT NULL,
    created REAL NOT NULL,
    seconds REAL,
    undone INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS labels_by_query ON labels(query_id, undone);
CREATE INDEX IF NOT EXISTS labels_by_token ON labels(token, undone);
"""


class LabellingError(ValueError):
    """A request the store refuses; ``status`` is the HTTP status the server answers with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class Query(NamedTuple):
    """One open query as a labeller sees it."""

    id: int  # query id
    clips: tuple[str, str]  # clip file names of σ¹ (left) and σ² (right); "" when not rendered
    factors: list[list[float]] | None  # [2][K] segment sums of the reward factors, or None
    factor_names: list[str] | None  # K names of the factors, or None


class Stats(NamedTuple):
    """Progress of a labelling session."""

    queue: int  # open queries
    closed: int  # closed queries
    labels: int  # confirmed labels (not undone), all labellers
    mine: int  # confirmed labels of the asking labeller (0 without one)
    labels_per_minute: float  # labels in the last 5 minutes / 5, all labellers
    labellers: int  # labellers known
    agreement: float  # mean pairwise agreement over queries with ≥ 2 non-skip answers (NaN: none)


def _pair_bytes(pair: FragmentPairs) -> bytes:
    arrays: dict[str, Any] = {name: np.asarray(value) for name, value in pair._asdict().items() if value is not None}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _pair_from_bytes(data: bytes) -> FragmentPairs:
    with np.load(io.BytesIO(data)) as arrays:
        return FragmentPairs(**{name: arrays[name] for name in arrays.files})


def _concat(pairs: list[FragmentPairs]) -> FragmentPairs:
    fields: dict[str, Any] = {}
    for name in FragmentPairs._fields:
        values = [getattr(pair, name) for pair in pairs]
        if all(value is not None for value in values):
            fields[name] = np.concatenate([np.asarray(value) for value in values], axis=0)
        else:
            fields[name] = None
    return FragmentPairs(**fields)


def pairwise_agreement(values: list[float]) -> float:
    """Fraction of labeller pairs whose answers on one query agree exactly: Σ_{i<j} 1[y_i = y_j] / C(n, 2).

    Example:
        >>> pairwise_agreement([1.0, 1.0, 0.0])
        0.3333333333333333
    """
    n = len(values)
    if n < 2:
        return float("nan")
    same = sum(values[i] == values[j] for i in range(n) for j in range(i + 1, n))
    return same / (n * (n - 1) / 2)


def labels_of(answers: dict[int, list[float | None]], query_ids: list[int]) -> np.ndarray:
    """``[len(query_ids)]`` float32: the mean non-skip answer of each query in ``answers``, NaN otherwise.

    Example:
        >>> labels_of({1: [1.0, 0.5], 2: [None]}, [1, 2, 3])
        array([0.75,  nan,  nan], dtype=float32)
    """
    out = np.full(len(query_ids), np.nan, np.float32)
    for i, query_id in enumerate(query_ids):
        values = [v for v in answers.get(query_id, []) if v is not None]
        if values:
            out[i] = float(np.mean(values))
    return out


class LabelStore:
    """The SQLite file of a labelling session; safe to share between the server's threads.

    Args:
        path: the database file (created with its folder if missing; reopened to resume).

    Example:
        >>> import tempfile
        >>> from rewardlab.preferences import synthetic_pairs
        >>> store = LabelStore(Path(tempfile.mkdtemp()) / "labels.sqlite")
        >>> [query_id] = store.add_queries(synthetic_pairs(np.array([[1.0, 0.0]]), length=2))
        >>> token = store.add_labeller("ada")
        >>> store.add_label(token, query_id, "left")["closed"]
        True
        >>> store.export_preferences().labels
        array([1.], dtype=float32)
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._leases: dict[int, dict[str, float]] = {}  # query id -> labeller token -> lease end (time.time())
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                self._db.execute(statement)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(queries)")}
        if "taken" not in columns:  # a store written before trainers recorded what they read
            self._db.execute("ALTER TABLE queries ADD COLUMN taken REAL")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _read(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    # Labellers ------------------------------------------------------------------------
    def add_labeller(self, name: str, token: str | None = None) -> str:
        """Register a labeller; returns the token that identifies them in every request."""
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise LabellingError(f"name: expected 1 to 100 characters, got {name!r}", 422)
        token = token or secrets.token_urlsafe(16)
        with self._transaction() as db:
            db.execute("INSERT OR IGNORE INTO labellers VALUES (?, ?, ?)", (token, name.strip(), time.time()))
        return token

    def labeller(self, token: str | None) -> str | None:
        """The name of the labeller with ``token``, or None if unknown."""
        rows = self._read("SELECT name FROM labellers WHERE token = ?", (token or "",))
        return rows[0][0] if rows else None

    # Queries --------------------------------------------------------------------------
    def add_queries(
        self,
        pairs: FragmentPairs,
        labels_wanted: int = 1,
        clips: list[tuple[str, str]] | None = None,
        factor_names: list[str] | None = None,
    ) -> list[int]:
        """Put B fragment pairs on the queue, one transaction; returns their query ids.

        Args:
            pairs: ``FragmentPairs`` with B pairs.
            labels_wanted: labellers asked per query (≥ 1); agreement is reported when > 1.
            clips: B ``(left, right)`` clip file names, when rendered.
            factor_names: K names of ``pairs.factors``' last axis.
        """
        if not isinstance(labels_wanted, int) or labels_wanted < 1:
            raise ValueError(f"labels_wanted: expected an integer >= 1, got {labels_wanted!r}")
        num_pairs = int(np.shape(pairs.rews)[0])
        if clips is not None and len(clips) != num_pairs:
            raise ValueError(f"clips: expected {num_pairs} (left, right) names, got {len(clips)}")
        ids = []
        with self._transaction() as db:
            for b in range(num_pairs):
                pair = FragmentPairs(*(None if value is None else np.asarray(value)[b : b + 1] for value in pairs))
                factors = None
                if pair.factors is not None:
                    sums = np.asarray(pair.factors, np.float64)[0].sum(axis=1)
                    factors = json.dumps({"sums": sums.tolist(), "names": factor_names})
                cursor = db.execute(
                    "INSERT INTO queries (created, labels_wanted, pair, factors) VALUES (?, ?, ?, ?)",
                    (time.time(), labels_wanted, _pair_bytes(pair), factors),
                )
                query_id = int(cursor.lastrowid or 0)
                ids.append(query_id)
                if clips is not None:
                    for side, name in enumerate(clips[b]):
                        kind = "image/gif" if name.endswith(".gif") else "image/webp"
                        db.execute("INSERT INTO clips VALUES (?, ?, ?, ?)", (query_id, side, name, kind))
        return ids

    def clip(self, name: str) -> str | None:
        """The content type of the clip file ``name`` if a query names it, else None."""
        rows = self._read("SELECT content_type FROM clips WHERE name = ?", (name,))
        return rows[0][0] if rows else None

    def pairs(self, query_ids: list[int]) -> FragmentPairs:
        """The fragment pairs of ``query_ids``, in that order."""
        found = dict(
            self._read(f"SELECT id, pair FROM queries WHERE id IN ({','.join('?' * len(query_ids))})", tuple(query_ids))
        )
        missing = [q for q in query_ids if q not in found]
        if missing:
            raise LabellingError(f"query_ids: unknown queries {missing}", 404)
        return _concat([_pair_from_bytes(found[q]) for q in query_ids])

    def next_query(self, token: str, lease_seconds: float = 60.0) -> Query | None:
        """The oldest open query that labeller ``token`` has not answered and others are not all looking at.

        A query handed out is leased to its labeller for ``lease_seconds`` (in memory: a restarted
        server forgets leases, not labels); a query asks no more labellers at once than it still
        wants answers from, so concurrent labellers spread over the queue instead of colliding.
        Returns None when no query is left for this labeller.
        """
        now = time.time()
        with self._lock:
            rows = self._db.execute(
                "SELECT q.id, q.factors, q.labels_wanted - (SELECT COUNT(*) FROM labels l"
                "  WHERE l.query_id = q.id AND l.undone = 0)"
                " FROM queries q WHERE q.closed IS NULL AND NOT EXISTS ("
                " SELECT 1 FROM labels l WHERE l.query_id = q.id AND l.token = ? AND l.undone = 0)"
                " ORDER BY q.id LIMIT 256",
                (token,),
            ).fetchall()
            chosen = None
            for query_id, factors, missing in rows:
                leases = {t: until for t, until in self._leases.get(query_id, {}).items() if until > now}
                self._leases[query_id] = leases
                if token in leases or len(leases) < missing:
                    chosen = (query_id, factors)
                    break
            if chosen is None and rows:  # everything leased: share the oldest rather than wait
                chosen = rows[0][:2]
            if chosen is None:
                return None
            query_id, factors = chosen
            self._leases.setdefault(query_id, {})[token] = now + lease_seconds
            names = dict(self._db.execute("SELECT side, name FROM clips WHERE query_id = ?", (query_id,)).fetchall())
        decoded = json.loads(factors) if factors else None
        return Query(
            id=int(query_id),
            clips=(names.get(0, ""), names.get(1, "")),
            factors=None if decoded is None else decoded["sums"],
            factor_names=None if decoded is None else decoded["names"],
        )

    # Labels ---------------------------------------------------------------------------
    def add_label(self, token: str, query_id: int, choice: str, seconds: float | None = None) -> dict[str, Any]:
        """Record one answer in one transaction; returns ``{"label_id", "closed"}``.

        Raises:
            LabellingError: unknown labeller (401), unknown query (404), a closed query or one this
                labeller already answered (409), an answer not in ``CHOICES`` (422).
        """
        if choice not in CHOICES:
            raise LabellingError(f"choice: expected one of {tuple(CHOICES)}, got {choice!r}", 422)
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM labellers WHERE token = ?", (token,)).fetchone() is None:
                raise LabellingError("token: unknown labeller", 401)
            row = db.execute("SELECT labels_wanted, closed FROM queries WHERE id = ?", (query_id,)).fetchone()
            if row is None:
                raise LabellingError(f"query_id: unknown query {query_id}", 404)
            wanted, closed = row
            if closed is not None:
                raise LabellingError(f"query_id: query {query_id} is closed", 409)
            mine = db.execute(
                "SELECT 1 FROM labels WHERE query_id = ? AND token = ? AND undone = 0", (query_id, token)
            ).fetchone()
            if mine is not None:
                raise LabellingError(f"query_id: query {query_id} already answered by this labeller", 409)
            now = time.time()
            cursor = db.execute(
                "INSERT INTO labels (query_id, token, choice, created, seconds) VALUES (?, ?, ?, ?, ?)",
                (query_id, token, choice, now, seconds),
            )
            (count,) = db.execute(
                "SELECT COUNT(*) FROM labels WHERE query_id = ? AND undone = 0", (query_id,)
            ).fetchone()
            is_closed = count >= wanted
            self._leases.get(query_id, {}).pop(token, None)  # the answer itself now counts
            if is_closed:
                db.execute("UPDATE queries SET closed = ? WHERE id = ?", (now, query_id))
        return {"label_id": int(cursor.lastrowid or 0), "closed": is_closed}

    def undo(self, token: str) -> int:
        """Withdraw labeller ``token``'s latest answer (reopening its query); returns that query's id.

        A trainer that already read the answer (``taken``) drops it from its dataset at its next
        read (``training_preferences``) and gets the new answer once the query closes again.

        Raises:
            LabellingError: no answer to undo (404).
        """
        with self._transaction() as db:
            row = db.execute(
                "SELECT id, query_id FROM labels WHERE token = ? AND undone = 0 ORDER BY id DESC LIMIT 1", (token,)
            ).fetchone()
            if row is None:
                raise LabellingError("undo: this labeller has no answer to undo", 404)
            label_id, query_id = row
            db.execute("UPDATE labels SET undone = 1 WHERE id = ?", (label_id,))
            db.execute("UPDATE queries SET closed = NULL WHERE id = ?", (query_id,))
            self._leases.get(query_id, {}).pop(token, None)
        return int(query_id)

    def answers(self, query_ids: list[int] | None = None) -> dict[int, list[float | None]]:
        """Confirmed answers per query (as labels; None for ``skip``), of closed queries only."""
        rows = self._read(
            "SELECT l.query_id, l.choice FROM labels l JOIN queries q ON q.id = l.query_id"
            " WHERE l.undone = 0 AND q.closed IS NOT NULL ORDER BY l.id"
        )
        out: dict[int, list[float | None]] = {}
        wanted = None if query_ids is None else set(query_ids)
        for query_id, choice in rows:
            if wanted is None or query_id in wanted:
                out.setdefault(int(query_id), []).append(CHOICES[choice])
        return out

    def closed_labels(self, query_ids: list[int]) -> np.ndarray:
        """``[len(query_ids)]`` float32 labels: mean non-skip answer of closed queries, NaN otherwise."""
        return labels_of(self.answers(query_ids), query_ids)

    def open_queries(self) -> list[int]:
        """Ids of the queries still open, oldest first."""
        return [int(row[0]) for row in self._read("SELECT id FROM queries WHERE closed IS NULL ORDER BY id")]

    def agreement(self) -> float:
        """Mean pairwise agreement (``pairwise_agreement``) over closed queries with ≥ 2 non-skip answers.

        Per query, Σ_v n_v (n_v − 1) / (n (n − 1)) over the answer values v given n_v times (n = Σ_v n_v).
        """
        ((value,),) = self._read(
            "WITH c AS (SELECT l.query_id, l.choice, COUNT(*) AS n FROM labels l JOIN queries q ON q.id = l.query_id"
            "  WHERE l.undone = 0 AND q.closed IS NOT NULL AND l.choice != 'skip' GROUP BY l.query_id, l.choice),"
            " t AS (SELECT SUM(n) AS n, SUM(n * (n - 1)) AS same FROM c GROUP BY query_id HAVING SUM(n) >= 2)"
            " SELECT AVG(CAST(same AS REAL) / (n * (n - 1))) FROM t"
        )
        return float("nan") if value is None else float(value)

    def stats(self, token: str | None = None) -> Stats:
        """Queue length, progress, labels per minute (last 5 minutes) and agreement."""
        ((queue, closed),) = self._read("SELECT SUM(closed IS NULL), SUM(closed IS NOT NULL) FROM queries")
        ((labels,),) = self._read("SELECT COUNT(*) FROM labels WHERE undone = 0")
        ((mine,),) = self._read("SELECT COUNT(*) FROM labels WHERE undone = 0 AND token = ?", (token or "",))
        ((recent,),) = self._read(
            "SELECT COUNT(*) FROM labels WHERE undone = 0 AND created >= ?", (time.time() - 300.0,)
        )
        ((labellers,),) = self._read("SELECT COUNT(*) FROM labellers")
        return Stats(
            int(queue or 0), int(closed or 0), int(labels), int(mine), recent / 5.0, int(labellers), self.agreement()
        )

    def taken(self, query_id: int) -> bool:
        """Whether a trainer has read query ``query_id``'s label (``training_preferences``)."""
        rows = self._read("SELECT taken FROM queries WHERE id = ?", (query_id,))
        return bool(rows) and rows[0][0] is not None

    # The preference dataset ----------------------------------------------------------
    def training_preferences(self) -> Preferences | None:
        """``export_preferences``, with the queries it holds marked as taken by the trainer.

        The trainer's dataset is this store's current state, read whole each feedback round: late
        labels arrive, undone ones leave and relabelled ones change without any bookkeeping of the
        trainer's own.
        """
        keep, labels = self._labelled()
        if keep:
            with self._transaction() as db:
                db.executemany(
                    "UPDATE queries SET taken = ? WHERE id = ? AND taken IS NULL", [(time.time(), q) for q in keep]
                )
        return self._dataset(keep, labels)

    def _labelled(self) -> tuple[list[int], np.ndarray]:
        """Ids of the closed queries with a label, oldest first, and their labels."""
        answers = self.answers()
        ids = sorted(answers)
        labels = self.closed_labels(ids)
        keep = [query_id for query_id, value in zip(ids, labels, strict=True) if not np.isnan(value)]
        return keep, labels[~np.isnan(labels)].astype(np.float32)

    def _dataset(self, keep: list[int], labels: np.ndarray) -> Preferences | None:
        return Preferences(pairs=self.pairs(keep), labels=labels) if keep else None

    def export_preferences(self) -> Preferences | None:
        """Every closed query with a label as ``Preferences`` (host numpy arrays), oldest first; None if none."""
        return self._dataset(*self._labelled())

    def import_preferences(self, prefs: Preferences, labeller: str = "import") -> list[int]:
        """Add labelled pairs (e.g. of an earlier study) as closed queries answered by ``labeller``.

        A label of 1, 0 or 0.5 is stored as ``left``, ``right`` or ``equal``; other values cannot be
        represented by one answer and raise ``ValueError``.
        """
        values = np.asarray(prefs.labels, np.float64)
        choice_of = {1.0: "left", 0.0: "right", 0.5: "equal"}
        bad = [float(v) for v in values if float(v) not in choice_of]
        if bad:
            raise ValueError(f"prefs.labels: expected values in {{0, 0.5, 1}}, got {bad[:5]}")
        token = self.add_labeller(labeller, token=f"import:{labeller}")
        ids = self.add_queries(prefs.pairs)
        for query_id, value in zip(ids, values, strict=True):
            self.add_label(token, query_id, choice_of[float(value)])
        return ids


def save_preferences(path: str | os.PathLike, prefs: Preferences) -> Path:
    """Write a preference dataset as ``.npz`` (fields ``labels`` and ``pairs.<name>``), atomically."""
    from rewardlab._io import atomic_write_bytes

    arrays: dict[str, Any] = {"labels": np.asarray(prefs.labels, np.float32)}
    arrays.update({f"pairs.{k}": np.asarray(v) for k, v in prefs.pairs._asdict().items() if v is not None})
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return atomic_write_bytes(path, buffer.getvalue())


def load_preferences(path: str | os.PathLike) -> Preferences:
    """Read a preference dataset written by ``save_preferences``."""
    with np.load(Path(path)) as arrays:
        pairs = FragmentPairs(**{k[len("pairs.") :]: arrays[k] for k in arrays.files if k.startswith("pairs.")})
        return Preferences(pairs=pairs, labels=arrays["labels"])
