"""Atomic file writes: a reader never sees a half-written file, a crash never leaves one for long.

Every atomic writer of the library (checkpoints, demonstrations, sweep files, figures) goes
through :func:`atomic_write_bytes`, so the rules below hold for all of them:

* the file appears whole or not at all (temporary file in the same folder, fsync, rename);
* its permission bits follow the umask, as ``open(path, "w")`` would give (``0o666 & ~umask``),
  not the ``0o600`` of :func:`tempfile.mkstemp`;
* a temporary file left by a writer that was killed mid-write (SIGKILL, a lost machine) is
  removed by the next write of the same target.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

_TEMP_CHARS = 8  # random characters of a temporary name, as tempfile.mkstemp uses


def _temp_pattern(name: str) -> re.Pattern[str]:
    """Temporary names of the target ``name``: ``.{name}.{8 of [a-z0-9_]}.tmp``.

    The same shape as the ``tempfile.mkstemp`` names earlier versions used, so their
    leftovers are cleaned too.
    """
    return re.compile(rf"\.{re.escape(name)}\.[a-z0-9_]{{{_TEMP_CHARS}}}\.tmp")


def _lock(fd: int, blocking: bool) -> bool:
    """An exclusive ``flock`` on ``fd``; False when another process holds one (non-blocking only)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: an open file cannot be removed anyway
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except OSError:
        return False
    return True


def _open_temp(path: Path) -> tuple[int, Path]:
    """Create and lock a new temporary file next to ``path``; return its descriptor and path.

    ``os.open`` with mode ``0o666`` lets the kernel apply the umask (and a folder's default
    ACL), exactly as for a file created by ``open``. The file is locked (``flock``) for as
    long as the writer lives; if a cleaner removed it between its creation and the lock,
    the name no longer points at this file and a new one is made.
    """
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(_TEMP_CHARS // 2)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        _lock(fd, blocking=True)
        try:
            if os.stat(tmp).st_ino == os.fstat(fd).st_ino:
                return fd, tmp
        except FileNotFoundError:
            pass
        os.close(fd)


def _remove_stale_temps(path: Path, started: float) -> None:
    """Remove the temporary files of ``path`` that writers killed mid-write left behind.

    A file is removed only when all three hold:

    1. its name has the shape of this writer's own temporary names for this target
       (``.{name}.{8 characters}.tmp``): nothing else in the folder is touched;
    2. it was last modified before this write started (``started``): a file made since
       belongs to a writer that runs now;
    3. no process holds its lock: every writer holds an exclusive ``flock`` on its temporary
       file from its creation to its rename, and the kernel releases it when the writer dies
       (even by SIGKILL), so a lock that can be taken means the writer is gone. A concurrent
       writer's live file is therefore never removed, however old it is.

    Errors (a file removed by someone else meanwhile, no permission) are ignored: cleaning is
    best-effort and never fails the write.
    """
    pattern = _temp_pattern(path.name)
    prefix = f".{path.name}."
    try:
        entries = [entry for entry in os.scandir(path.parent) if entry.name.startswith(prefix)]
    except OSError:
        return
    for entry in entries:
        if not pattern.fullmatch(entry.name):
            continue
        try:
            if not entry.is_file(follow_symlinks=False) or entry.stat(follow_symlinks=False).st_mtime >= started:
                continue
            fd = os.open(entry.path, os.O_RDONLY)
        except OSError:
            continue
        try:
            if _lock(fd, blocking=False):
                os.unlink(entry.path)
        except OSError:
            pass
        finally:
            os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, fsync, rename).

    The new file's mode is ``0o666 & ~umask``, as for a file created by ``open``. Before
    writing, temporary files of the same target left by writers that died mid-write are
    removed (the rule: :func:`_remove_stale_temps`).

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.bin"
        >>> _ = atomic_write_bytes(p, b"abc"); p.read_bytes()
        b'abc'
    """
    started = time.time()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(path, started)
    fd, tmp = _open_temp(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
            # renamed while still open, so the lock covers the temporary file until it is gone
            os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
    return path


def sqlite_write(path: str | os.PathLike, statements: Iterable[tuple[str, tuple[Any, ...]]]) -> None:
    """Run ``(sql, parameters)`` statements as one transaction on a fresh connection to ``path``.

    ``BEGIN IMMEDIATE`` takes the write lock first (other writers wait up to 60 s); any error rolls
    the whole transaction back, so a reader sees all of it or none; the connection is closed after.
    """
    connection = sqlite3.connect(path, timeout=60.0, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        for sql, parameters in statements:
            connection.execute(sql, parameters)
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    finally:
        connection.close()


def check_folder(path: str | os.PathLike, what: str) -> Path:
    """``path`` as a Path, checked to be usable as a folder: not a file, nor below one.

    Raises:
        ValueError: ``path`` or a folder above it is an existing file (the message names ``what``).

    Example:
        >>> import tempfile, pathlib
        >>> file = pathlib.Path(tempfile.mkdtemp()) / "notes.txt"; _ = file.write_text("x")
        >>> check_folder(file / "run", "out")
        Traceback (most recent call last):
        ...
        ValueError: out: expected a folder, got '.../notes.txt/run', below the file '.../notes.txt'
    """
    path = Path(path)
    for folder in (path, *path.parents):
        if folder.exists():
            if folder.is_dir():
                return path
            if folder == path:
                raise ValueError(f"{what}: expected a folder, got the file {str(path)!r}")
            raise ValueError(f"{what}: expected a folder, got {str(path)!r}, below the file {str(folder)!r}")
    return path


def check_file(path: str | os.PathLike, what: str) -> Path:
    """``path`` as a Path, checked to be usable as a file to write: not a folder, nor below a file.

    Raises:
        ValueError: ``path`` is an existing folder, or a folder above it is a file.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{what}: expected a file to write, got the folder {str(path)!r}")
    for folder in path.parents:
        if folder.exists():
            if not folder.is_dir():
                raise ValueError(f"{what}: expected a file to write, got {str(path)!r}, below the file {str(folder)!r}")
            break
    return path


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    return atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, default=_to_builtin) + "\n").encode())


def atomic_write_figure(path: str | os.PathLike, figure: Any, *, dpi: int | None = None, close: bool = False) -> Path:
    """Render a matplotlib ``figure`` in the format of ``path``'s suffix (PNG without one) and write it atomically.

    ``close=True`` also releases the figure (pyplot keeps every open figure alive).
    """
    import io

    path = Path(path)
    buffer = io.BytesIO()
    figure.savefig(buffer, format=path.suffix[1:] or "png", dpi=dpi)
    if close:
        import matplotlib.pyplot as plt

        plt.close(figure)
    return atomic_write_bytes(path, buffer.getvalue())


def _to_builtin(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")
