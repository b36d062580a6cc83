"""A bonus's state on disk, beside an agent's checkpoint, so that a resumed run continues its bonus.

Layout::

    magic      8 bytes   b"RLABBNS\\x00"
    payload    zlib (level 1) of msgpack (flax.serialization) of
               {"format", "version", "bonus": class name, "env_steps", "state": bonus.state_dict()}

The file is written atomically (:func:`rewardlab._io.atomic_write_bytes`): a run killed while
saving keeps the previous file whole. No pickle: the state is arrays, numbers, strings and bytes.
"""

from __future__ import annotations

import logging
import os
import zlib
from pathlib import Path
from typing import Any

from flax import serialization

from rewardlab._io import atomic_write_bytes

MAGIC = b"RLABBNS\x00"
FORMAT_NAME = "rewardlab.bonus_state"
FORMAT_VERSION = 1

logger = logging.getLogger("rewardlab.intrinsic")


class BonusStateError(ValueError):
    """A bonus-state file is not one, is corrupted, of another version, or of another bonus."""


def save_bonus_state(path: str | os.PathLike, bonus: Any, *, env_steps: int) -> Path:
    """Write ``bonus.state_dict()`` to ``path`` atomically, tagged with the bonus's class and ``env_steps``.

    Args:
        path: the file to write (replaced whole).
        bonus: a bonus of :mod:`rewardlab.intrinsic` (anything with ``state_dict``).
        env_steps: the agent's env steps when the state was taken (compared with its checkpoint on load).

    Returns:
        The path written.
    """
    document = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "bonus": type(bonus).__name__,
        "env_steps": int(env_steps),
        "state": bonus.state_dict(),
    }
    return atomic_write_bytes(path, MAGIC + zlib.compress(serialization.msgpack_serialize(document), 1))


def read_bonus_state(path: str | os.PathLike) -> dict[str, Any]:
    """The saved document: ``bonus`` (class name), ``env_steps`` and ``state``.

    Raises:
        BonusStateError: not a bonus-state file, corrupted, or of another format version.
    """
    data = Path(path).read_bytes()
    if not data.startswith(MAGIC):
        raise BonusStateError(f"{path}: not a bonus-state file (expected the magic bytes {MAGIC!r})")
    try:
        document = serialization.msgpack_restore(zlib.decompress(data[len(MAGIC) :]))
    except Exception as error:  # zlib and msgpack raise several unrelated types on bad input
        raise BonusStateError(f"{path}: corrupted bonus-state file ({type(error).__name__}: {error})") from error
    if not isinstance(document, dict) or document.get("format") != FORMAT_NAME:
        raise BonusStateError(f"{path}: expected a {FORMAT_NAME!r} document")
    if document.get("version") != FORMAT_VERSION:
        raise BonusStateError(
            f"{path}: format version {document.get('version')!r}, this library reads {FORMAT_VERSION}"
        )
    return document


def load_bonus_state(path: str | os.PathLike, bonus: Any) -> int:
    """Continue ``bonus`` from the state saved at ``path``; returns the env steps it was saved at.

    Raises:
        BonusStateError: the file is unreadable (see :func:`read_bonus_state`) or holds the state of
            another class of bonus than ``bonus``'s.
    """
    document = read_bonus_state(path)
    if document["bonus"] != type(bonus).__name__:
        raise BonusStateError(
            f"{path}: holds the state of a {document['bonus']}, expected one of a {type(bonus).__name__}"
        )
    bonus.load_state_dict(document["state"])
    return int(document["env_steps"])
