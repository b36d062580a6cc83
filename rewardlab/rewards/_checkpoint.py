"""Reward-model checkpoints: one self-describing file, no pickle, written atomically.

Layout (all integers little-endian)::

    magic            8 bytes   b"RLABRWD\\x00"
    format_version   uint32
    header_length    uint64    H
    payload_length   uint64    P
    header           H bytes   UTF-8 JSON: format version, library version, config, spaces, parameter table
    payload          P bytes   msgpack (flax.serialization) of {parameter path: array}
    sha256           32 bytes  digest of everything above

The parameter table lists every leaf of ``RewardParams`` by its pytree path with shape and
dtype; loading rebuilds the model from the header, checks the table against the params the
model would create, and unflattens into that structure.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Any

import gymnasium as gym
import jax
import numpy as np
from flax import serialization

from rewardlab._io import atomic_write_bytes
from rewardlab.rewards._config import RewardNetConfig
from rewardlab.rewards._model import RewardModel, RewardParams
from rewardlab.rewards._spaces import space_from_dict, space_to_dict

MAGIC = b"RLABRWD\x00"
FORMAT_VERSION = 1
FORMAT_NAME = "rewardlab.reward_model"
_PREFIX = struct.Struct("<8sIQQ")
_DIGEST_SIZE = 32


class CheckpointError(ValueError):
    """A reward-model checkpoint is missing, truncated, corrupted, of another version or mismatched."""


def _library_version() -> str:
    import rewardlab

    return str(rewardlab.__version__)


def _leaf_table(params: Any) -> tuple[list[tuple[str, Any]], Any]:
    """[(path string, leaf)] in flattening order, and the treedef."""
    pairs, treedef = jax.tree_util.tree_flatten_with_path(params)
    return [(jax.tree_util.keystr(path), leaf) for path, leaf in pairs], treedef


def save_reward_model(path: str | os.PathLike, model: RewardModel, params: RewardParams) -> Path:
    """Write ``model`` (config and spaces) and ``params`` to one checkpoint file, atomically.

    The bytes go to a temporary file in the destination directory, are flushed and fsynced,
    then ``os.replace`` moves it over ``path``: a crash leaves the old file or the new one,
    never a partial file. The file's mode follows the umask (``0o666 & ~umask``), and the
    temporary file of a save killed mid-write is removed by the next save to ``path``
    (``rewardlab._io`` states the rule).

    Args:
        path: destination file (parent directories are created).
        model: the reward model.
        params: its parameters (device or host arrays).

    Returns:
        The path written.

    Raises:
        ValueError: ``model`` or ``params`` are not a RewardModel and its RewardParams.

    Example:
        >>> import gymnasium as gym, jax, numpy as np, tempfile, os
        >>> from rewardlab.rewards import RewardModel, RewardNetConfig
        >>> model = RewardModel(RewardNetConfig(hidden_sizes=(8,)), gym.spaces.Box(-1, 1, (3,)), gym.spaces.Discrete(2))
        >>> params = model.init(jax.random.key(0))
        >>> path = os.path.join(tempfile.mkdtemp(), "reward.rlab")
        >>> _ = save_reward_model(path, model, params)
        >>> loaded_model, loaded_params = load_reward_model(path)
        >>> obs = np.ones((2, 3), np.float32)
        >>> bool(np.array_equal(model.apply(params, obs, np.array([0, 1]), obs, np.zeros(2)),
        ...                     loaded_model.apply(loaded_params, obs, np.array([0, 1]), obs, np.zeros(2))))
        True
    """
    if not isinstance(model, RewardModel):
        raise ValueError(f"model: expected a RewardModel, got {type(model).__name__}")
    if not isinstance(params, tuple) or not hasattr(params, "net") or not hasattr(params, "obs_stats"):
        raise ValueError(f"params: expected RewardParams(net, obs_stats), got {type(params).__name__}")
    table, _ = _leaf_table(params)
    expected, _ = _leaf_table(jax.eval_shape(model.init, jax.random.key(0)))
    _check_table(
        [(name, tuple(np.shape(leaf)), np.dtype(leaf.dtype).name) for name, leaf in table],
        [(name, tuple(spec.shape), np.dtype(spec.dtype).name) for name, spec in expected],
        error=ValueError,
        what="params",
    )
    arrays = {name: np.asarray(leaf) for name, leaf in table}
    header = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "library_version": _library_version(),
        "config": model.config.to_dict(),
        "observation_space": space_to_dict(model.observation_space),
        "action_space": space_to_dict(model.action_space),
        "params": [[name, list(array.shape), array.dtype.name] for name, array in arrays.items()],
    }
    header_bytes = json.dumps(header, sort_keys=True, allow_nan=False).encode("utf-8")
    payload = serialization.msgpack_serialize(arrays)
    body = _PREFIX.pack(MAGIC, FORMAT_VERSION, len(header_bytes), len(payload)) + header_bytes + payload
    data = body + hashlib.sha256(body).digest()

    return atomic_write_bytes(path, data)


def _check_table(
    actual: list[tuple[str, tuple, str]], expected: list[tuple[str, tuple, str]], *, error: type, what: str
) -> None:
    actual_map = {name: (shape, dtype) for name, shape, dtype in actual}
    expected_map = {name: (shape, dtype) for name, shape, dtype in expected}
    missing = [name for name in expected_map if name not in actual_map]
    extra = [name for name in actual_map if name not in expected_map]
    if missing or extra:
        raise error(
            f"{what}: parameter structure mismatch: missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {extra[:5]}{'...' if len(extra) > 5 else ''}"
        )
    for name, (shape, dtype) in expected_map.items():
        if actual_map[name] != (shape, dtype):
            raise error(
                f"{what}: parameter structure mismatch at {name}: expected shape {shape} {dtype}, "
                f"got {actual_map[name][0]} {actual_map[name][1]}"
            )


def load_reward_model(
    path: str | os.PathLike, *, observation_space: gym.Space | None = None, action_space: gym.Space | None = None
) -> tuple[RewardModel, RewardParams]:
    """Read a checkpoint written by ``save_reward_model``.

    Args:
        path: the file.
        observation_space: when given, must equal the stored observation space.
        action_space: when given, must equal the stored action space.

    Returns:
        ``(model, params)``; the model is rebuilt from the stored config and spaces.

    Raises:
        CheckpointError: (a ``ValueError``) the file is missing or unreadable, truncated, has a
            bad magic number, a checksum mismatch, an unsupported format version, a malformed
            header, spaces that differ from the given ones, or parameters whose structure does
            not match the model.
    """
    file = Path(path)
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"path: checkpoint file not found: {str(file)!r}") from None
    except OSError as error:
        raise CheckpointError(f"path: cannot read checkpoint {str(file)!r}: {error}") from error
    if len(data) < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
        if len(data) < len(MAGIC) and MAGIC.startswith(data):
            raise CheckpointError(
                f"{file}: truncated checkpoint ({len(data)} bytes, shorter than the {len(MAGIC)}-byte magic)"
            )
        raise CheckpointError(
            f"{file}: bad magic {data[: len(MAGIC)]!r}, expected {MAGIC!r}: not a rewardlab reward-model checkpoint"
        )
    if len(data) < _PREFIX.size:
        raise CheckpointError(
            f"{file}: truncated checkpoint ({len(data)} bytes, shorter than the {_PREFIX.size}-byte preamble)"
        )
    _, version, header_length, payload_length = _PREFIX.unpack_from(data)
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{file}: unsupported format version {version}; this rewardlab ({_library_version()}) reads version {FORMAT_VERSION}"
        )
    expected_size = _PREFIX.size + header_length + payload_length + _DIGEST_SIZE
    if len(data) < expected_size:
        raise CheckpointError(f"{file}: truncated checkpoint: expected {expected_size} bytes, got {len(data)}")
    if len(data) > expected_size:
        raise CheckpointError(
            f"{file}: {len(data) - expected_size} unexpected trailing bytes after the checksum (expected {expected_size} bytes)"
        )
    body, digest = data[:-_DIGEST_SIZE], data[-_DIGEST_SIZE:]
    if hashlib.sha256(body).digest() != digest:
        raise CheckpointError(
            f"{file}: checksum mismatch (sha256 of the contents differs from the stored digest): the file is corrupted"
        )
    header_bytes = body[_PREFIX.size : _PREFIX.size + header_length]
    payload = body[_PREFIX.size + header_length :]
    try:
        header = json.loads(header_bytes.decode("utf-8"))
        if header.get("format") != FORMAT_NAME or header.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"format {header.get('format')!r} version {header.get('format_version')!r}")
        config = RewardNetConfig.from_dict(header["config"])
        stored_observation_space = space_from_dict(header["observation_space"])
        stored_action_space = space_from_dict(header["action_space"])
        stored_table = [
            (str(name), tuple(int(n) for n in shape), str(dtype)) for name, shape, dtype in header["params"]
        ]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{file}: malformed header: {error}") from error
    for argument, given, stored in (
        ("observation_space", observation_space, stored_observation_space),
        ("action_space", action_space, stored_action_space),
    ):
        if given is None:
            continue
        try:
            given_description = space_to_dict(given)
        except ValueError as error:
            raise CheckpointError(f"{argument}: {error}") from error
        if given_description != space_to_dict(stored):
            raise CheckpointError(f"{argument} mismatch: the checkpoint {file} was saved for {stored}, got {given}")
    try:
        model = RewardModel(config, stored_observation_space, stored_action_space)
    except ValueError as error:
        raise CheckpointError(f"{file}: cannot rebuild the model from the header: {error}") from error
    expected_pairs, treedef = _leaf_table(jax.eval_shape(model.init, jax.random.key(0)))
    expected_table = [(name, tuple(spec.shape), np.dtype(spec.dtype).name) for name, spec in expected_pairs]
    _check_table(stored_table, expected_table, error=CheckpointError, what=str(file))
    try:
        arrays = serialization.msgpack_restore(payload)
    except Exception as error:  # msgpack raises several unrelated types on bad input
        raise CheckpointError(f"{file}: cannot decode the parameter payload: {error}") from error
    if not isinstance(arrays, dict):
        raise CheckpointError(f"{file}: parameter payload: expected a mapping of arrays, got {type(arrays).__name__}")
    _check_table(
        [(str(name), tuple(np.shape(value)), np.asarray(value).dtype.name) for name, value in arrays.items()],
        expected_table,
        error=CheckpointError,
        what=f"{file} payload",
    )
    leaves = [jax.numpy.asarray(arrays[name]) for name, _, _ in expected_table]
    params = jax.tree.unflatten(treedef, leaves)
    return model, params
