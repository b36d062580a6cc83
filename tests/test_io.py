"""Atomic writes: the umask decides the mode, and a writer killed mid-write leaves nothing behind for long."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rewardlab._io import atomic_write_bytes, atomic_write_json

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it afterwards."""
    saved = os.umask(0o022)
    os.umask(saved)

    def set_umask(value: int) -> None:
        os.umask(value)

    yield set_umask
    os.umask(saved)


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664), (0o000, 0o666)])
def test_new_files_follow_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    path = atomic_write_bytes(tmp_path / "x.bin", b"abc")
    assert path.stat().st_mode & 0o777 == mode
    atomic_write_json(tmp_path / "x.json", {"a": 1})
    assert (tmp_path / "x.json").stat().st_mode & 0o777 == mode
    assert (path.stat().st_mode & 0o777) == (0o666 & ~mask)


def _age(path: Path, seconds: float = 60.0) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_a_stale_temp_file_of_the_same_target_is_removed_by_the_next_write(tmp_path):
    target = tmp_path / "results.parquet"
    stale = tmp_path / ".results.parquet.ab12cd34.tmp"  # a writer killed mid-write left it
    legacy = tmp_path / ".results.parquet.k3_x9z0q.tmp"  # the tempfile.mkstemp shape of earlier versions
    for leftover in (stale, legacy):
        leftover.write_bytes(b"half a file")
        _age(leftover)
    untouched = {
        "other target": tmp_path / ".other.parquet.ab12cd34.tmp",
        "other shape": tmp_path / ".results.parquet.notatemp.partial",
        "longer name": tmp_path / ".results.parquet.ab12cd345.tmp",
        "the user's file": tmp_path / "results.parquet.ab12cd34.tmp",
    }
    for path in untouched.values():
        path.write_bytes(b"keep")
        _age(path)
    fresh = tmp_path / ".results.parquet.ffff0000.tmp"  # made after the write started: left alone
    fresh.write_bytes(b"new")
    os.utime(fresh, (time.time() + 60, time.time() + 60))

    atomic_write_bytes(target, b"whole")

    assert target.read_bytes() == b"whole"
    assert not stale.exists() and not legacy.exists()
    assert all(path.exists() for path in untouched.values())
    assert fresh.exists()


_WRITER = """
import os, sys, time
from rewardlab import _io
real_replace = os.replace
def stall(src, dst):
    print("WRITTEN", flush=True)  # the temporary file holds the data and its lock; the rename never comes
    time.sleep(600)
os.replace = stall
_io.atomic_write_bytes(sys.argv[1], b"x" * 1_000_000)
"""


def _start_writer(target: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(target)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "WRITTEN"
    return process


def _temps(folder: Path, name: str) -> list[Path]:
    return sorted(folder.glob(f".{name}.*.tmp"))


def test_a_writer_killed_mid_write_leaves_a_temp_file_that_the_next_write_removes(tmp_path):
    target = tmp_path / "reward.rlab"
    process = _start_writer(target)
    process.send_signal(signal.SIGKILL)
    process.wait()
    (leftover,) = _temps(tmp_path, target.name)
    assert leftover.stat().st_size == 1_000_000 and not target.exists()
    _age(leftover, 1.0)  # mtime resolution: the next write starts strictly later
    atomic_write_bytes(target, b"whole")
    assert target.read_bytes() == b"whole"
    assert _temps(tmp_path, target.name) == []


def test_a_live_concurrent_writer_keeps_its_temp_file_however_old(tmp_path):
    target = tmp_path / "reward.rlab"
    process = _start_writer(target)
    try:
        (live,) = _temps(tmp_path, target.name)
        _age(live, 3600.0)
        atomic_write_bytes(target, b"mine")
        assert target.read_bytes() == b"mine"
        assert _temps(tmp_path, target.name) == [live]  # its writer holds the lock: not stale
    finally:
        process.kill()
        process.wait()
    atomic_write_bytes(target, b"after")  # the writer is gone now: its file goes
    assert _temps(tmp_path, target.name) == []


def test_a_failed_write_removes_its_own_temp_file_and_keeps_the_old_file(tmp_path, monkeypatch):
    target = atomic_write_bytes(tmp_path / "x.bin", b"old")

    def failing_replace(src, dst):
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="simulated crash"):
        atomic_write_bytes(target, b"new")
    monkeypatch.undo()
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["x.bin"]
