"""Demonstration files: one self-describing, checksummed file, no pickle, written atomically.

Same layout as reward-model checkpoints (:mod:`rewardlab.rewards._checkpoint`)::

    magic            8 bytes   b"RLABDEM\\x00"
    format_version   uint32
    header_length    uint64    H
    payload_length   uint64    P
    header           H bytes   UTF-8 JSON: format, versions, metadata, array table (name, shape, dtype)
    payload          P bytes   msgpack (flax.serialization) of {field: array}
    sha256           32 bytes  digest of everything above

The arrays are the fields of a :class:`rewardlab.Transitions` (array observations only).
Files written before ``Transitions`` split its ``dones`` into ``terminated`` and ``truncated``
hold one ``dones`` array; :func:`load_demonstrations` reads them under a stated assumption
(``legacy_dones``).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
from flax import serialization

from rewardlab._io import atomic_write_bytes
from rewardlab._types import Transitions
from rewardlab.rewards import CheckpointError

MAGIC = b"RLABDEM\x00"
FORMAT_VERSION = 1
FORMAT_NAME = "rewardlab.demonstrations"
_PREFIX = struct.Struct("<8sIQQ")
_DIGEST_SIZE = 32
_FIELDS = set(Transitions._fields)
_LEGACY_FIELDS = {"obs", "acts", "next_obs", "dones", "rews"}  # before terminated and truncated were apart


def _library_version() -> str:
    import rewardlab

    return str(rewardlab.__version__)


def save_demonstrations(
    path: str | os.PathLike, transitions: Transitions, metadata: dict[str, Any] | None = None
) -> Path:
    """Write demonstration transitions (and JSON-able ``metadata``) to one file, atomically.

    Args:
        path: destination file (parent folders are created).
        transitions: ``Transitions`` with array fields of one leading length N.
        metadata: e.g. env id, expert algorithm, seed, expert return.

    Returns:
        The path written.

    Raises:
        ValueError: non-array observations, mismatched leading lengths, or metadata that is not JSON.

    Example:
        >>> import numpy as np, tempfile, os
        >>> from rewardlab import Transitions
        >>> demos = Transitions(np.zeros((4, 3), np.float32), np.zeros((4, 1), np.float32),
        ...                     np.ones((4, 3), np.float32), np.zeros(4, bool), np.zeros(4, bool), np.zeros(4, np.float32))
        >>> path = save_demonstrations(os.path.join(tempfile.mkdtemp(), "demos.rlab"), demos, {"env_id": "Pendulum-v1"})
        >>> loaded, meta = load_demonstrations(path)
        >>> loaded.next_obs.shape, meta["env_id"]
        ((4, 3), 'Pendulum-v1')
    """
    if not isinstance(transitions, Transitions):
        raise ValueError(f"transitions: expected a Transitions, got {type(transitions).__name__}")
    arrays = {}
    for name, value in transitions._asdict().items():
        if isinstance(value, dict):
            raise ValueError(f"transitions.{name}: expected an array (dict observations are not supported), got a dict")
        arrays[name] = np.asarray(value)
    lengths = {name: array.shape[0] if array.ndim else None for name, array in arrays.items()}
    if len(set(lengths.values())) != 1 or None in lengths.values():
        raise ValueError(f"transitions: expected arrays with one common leading length N, got {lengths}")
    try:
        metadata_json = json.loads(json.dumps(metadata or {}, allow_nan=False))
    except (TypeError, ValueError) as error:
        raise ValueError(f"metadata: expected a JSON-serialisable dict, got {error}") from error
    header = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "library_version": _library_version(),
        "metadata": metadata_json,
        "arrays": [[name, list(array.shape), array.dtype.name] for name, array in arrays.items()],
    }
    header_bytes = json.dumps(header, sort_keys=True).encode("utf-8")
    payload = serialization.msgpack_serialize(arrays)
    body = _PREFIX.pack(MAGIC, FORMAT_VERSION, len(header_bytes), len(payload)) + header_bytes + payload
    return atomic_write_bytes(path, body + hashlib.sha256(body).digest())


def load_demonstrations(
    path: str | os.PathLike, *, legacy_dones: Literal["terminated", "truncated"] = "terminated"
) -> tuple[Transitions, dict[str, Any]]:
    """Read a file written by :func:`save_demonstrations`.

    Args:
        path: the file.
        legacy_dones: how to read a file written before ``terminated`` and ``truncated`` were
            recorded apart (it holds only ``dones``): ``"terminated"`` (the default, what those
            versions assumed: every episode end is terminal) or ``"truncated"`` (every end was a
            time limit, as in the fixed-horizon tasks of :func:`rewardlab.rl.make_env`). Such a
            file also raises a ``UserWarning`` that names the assumption.

    Returns:
        ``(transitions, metadata)``.

    Raises:
        CheckpointError: (a ``ValueError``) missing, truncated, corrupted (checksum), of another
            format or version, or with arrays that disagree with the header.
        ValueError: ``legacy_dones`` is neither ``"terminated"`` nor ``"truncated"``.
    """
    if legacy_dones not in ("terminated", "truncated"):
        raise ValueError(f"legacy_dones: expected 'terminated' or 'truncated', got {legacy_dones!r}")
    file = Path(path)
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"path: demonstration file not found: {str(file)!r}") from None
    except OSError as error:
        raise CheckpointError(f"path: cannot read demonstrations {str(file)!r}: {error}") from error
    if data[: len(MAGIC)] != MAGIC:
        raise CheckpointError(
            f"{file}: bad magic {data[: len(MAGIC)]!r}, expected {MAGIC!r}: not a rewardlab demonstration file"
        )
    if len(data) < _PREFIX.size:
        raise CheckpointError(
            f"{file}: truncated file ({len(data)} bytes, shorter than the {_PREFIX.size}-byte preamble)"
        )
    _, version, header_length, payload_length = _PREFIX.unpack_from(data)
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{file}: unsupported format version {version}; this rewardlab reads version {FORMAT_VERSION}"
        )
    expected_size = _PREFIX.size + header_length + payload_length + _DIGEST_SIZE
    if len(data) != expected_size:
        raise CheckpointError(f"{file}: expected {expected_size} bytes, got {len(data)} (truncated or trailing bytes)")
    body, digest = data[:-_DIGEST_SIZE], data[-_DIGEST_SIZE:]
    if hashlib.sha256(body).digest() != digest:
        raise CheckpointError(
            f"{file}: checksum mismatch (sha256 of the contents differs from the stored digest): the file is corrupted"
        )
    try:
        header = json.loads(body[_PREFIX.size : _PREFIX.size + header_length].decode("utf-8"))
        if header.get("format") != FORMAT_NAME:
            raise ValueError(f"format {header.get('format')!r}")
        table = {str(name): (tuple(int(n) for n in shape), str(dtype)) for name, shape, dtype in header["arrays"]}
        metadata = dict(header["metadata"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{file}: malformed header: {error}") from error
    try:
        arrays = serialization.msgpack_restore(body[_PREFIX.size + header_length :])
    except Exception as error:  # msgpack raises several unrelated types on bad input
        raise CheckpointError(f"{file}: cannot decode the payload: {error}") from error
    if not isinstance(arrays, dict) or set(arrays) != set(table) or set(table) not in (_FIELDS, _LEGACY_FIELDS):
        raise CheckpointError(f"{file}: expected the arrays {Transitions._fields}")
    for name, (shape, dtype) in table.items():
        array = np.asarray(arrays[name])
        if array.shape != shape or array.dtype.name != dtype:
            raise CheckpointError(
                f"{file}: array {name}: header says {shape} {dtype}, payload has {array.shape} {array.dtype.name}"
            )
    if set(table) == _LEGACY_FIELDS:
        warnings.warn(
            f"{file}: written before terminated and truncated were recorded apart; its episode ends are read as "
            f"{legacy_dones} (legacy_dones={legacy_dones!r})",
            UserWarning,
            stacklevel=2,
        )
        dones = np.asarray(arrays.pop("dones")).astype(bool)
        arrays["terminated"] = dones if legacy_dones == "terminated" else np.zeros_like(dones)
        arrays["truncated"] = dones if legacy_dones == "truncated" else np.zeros_like(dones)
    return Transitions(**{name: np.asarray(arrays[name]) for name in Transitions._fields}), metadata
