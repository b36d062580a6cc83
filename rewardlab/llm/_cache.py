"""``ChatCache``: replies on disk keyed by the full request, so a rerun or a resumed search costs no tokens."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from rewardlab._io import sqlite_write

_SCHEMA = """
CREATE TABLE IF NOT EXISTS replies (
    key TEXT PRIMARY KEY,
    request TEXT NOT NULL,
    reply TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def request_key(request: dict[str, Any]) -> str:
    """SHA-256 of the request as canonical JSON (sorted keys, no spaces).

    Example:
        >>> request_key({"b": 1, "a": [1, 2]}) == request_key({"a": [1, 2], "b": 1})
        True
    """
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class ChatCache:
    """A SQLite file of chat replies keyed by ``request_key`` of the full request.

    Write-ahead logging lets several processes (a search's workers) read while one writes; each
    ``put`` is one transaction, so a crash leaves either the whole reply or none of it.

    Args:
        path: the database file (its folder is created).

    Example:
        >>> import tempfile, pathlib
        >>> cache = ChatCache(pathlib.Path(tempfile.mkdtemp()) / "chat.sqlite")
        >>> cache.put({"model": "m", "messages": []}, {"content": "hi"})
        >>> cache.get({"messages": [], "model": "m"})
        {'content': 'hi'}
        >>> cache.get({"model": "other", "messages": []}) is None
        True
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as connection:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=60.0, isolation_level=None)

    def get(self, request: dict[str, Any]) -> dict[str, Any] | None:
        """The stored reply of ``request``, or None."""
        connection = self._connect()
        try:
            row = connection.execute("SELECT reply FROM replies WHERE key = ?", (request_key(request),)).fetchone()
        finally:
            connection.close()
        return None if row is None else json.loads(row[0])

    def put(self, request: dict[str, Any], reply: dict[str, Any]) -> None:
        """Store ``reply`` under ``request`` (replacing an earlier one), in one transaction."""
        encoded_request = json.dumps(request, sort_keys=True, ensure_ascii=False)
        encoded_reply = json.dumps(reply, sort_keys=True, ensure_ascii=False)
        sqlite_write(
            self.path,
            [
                (
                    "INSERT OR REPLACE INTO replies (key, request, reply, created) VALUES (?, ?, ?, ?)",
                    (request_key(request), encoded_request, encoded_reply, time.time()),
                )
            ],
        )

    def __len__(self) -> int:
        connection = self._connect()
        try:
            return int(connection.execute("SELECT COUNT(*) FROM replies").fetchone()[0])
        finally:
            connection.close()
