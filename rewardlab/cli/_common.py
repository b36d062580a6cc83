"""What every ``rewardlab`` command shares: one-line errors, and the checks of env ids and output paths.

Errors are one line on stderr, ``error: <argument>: <what was expected>, got <value>``, and
the exit code says whose the fault is: 2 for bad input (a usage error: an unknown env id, an
output path that is a file, a value out of range), 1 for a failure of the machine (a disk
full, a permission denied). Input is checked before anything is written, so a refused
command leaves no folder behind.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import typer

USAGE_ERROR = 2
"""Exit code of a command refused for bad input."""
RUNTIME_ERROR = 1
"""Exit code of a command that failed on the machine (file system, permissions)."""


def fail(message: str, code: int = USAGE_ERROR) -> NoReturn:
    """Print ``error: message`` as one line on stderr and exit with ``code``."""
    from rich.console import Console

    Console(stderr=True, highlight=False, soft_wrap=True).print(f"[red]error:[/red] {message}", markup=True)
    raise typer.Exit(code)


def check_env_id(env_id: str, what: str = "env") -> str:
    """``env_id`` if gymnasium knows it (rewardlab's own envs registered); ValueError naming ``what`` otherwise.

    Example:
        >>> check_env_id("Pendulum-v1")
        'Pendulum-v1'
        >>> check_env_id("Pendulum-v0")
        Traceback (most recent call last):
        ...
        ValueError: env: unknown gymnasium environment id 'Pendulum-v0' (Environment version v0 for `Pendulum` is deprecated. Please use `Pendulum-v1` instead.)
    """
    import gymnasium as gym
    from gymnasium.envs.registration import find_highest_version, parse_env_id

    import rewardlab_envs  # noqa: F401 - registers the library's own envs

    if not isinstance(env_id, str) or not env_id:
        raise ValueError(f"{what}: expected a gymnasium environment id such as 'Pendulum-v1', got {env_id!r}")
    module, _, name = env_id.rpartition(":")  # gym.make's "module:Env-v0" imports the module first
    if module:
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise ValueError(f"{what}: cannot import {module!r}, named in {env_id!r} ({error})") from None
    try:
        gym.spec(name)
    except gym.error.Error as error:
        try:  # an id without version: gym.make takes the latest version
            namespace, base, version = parse_env_id(name)
            if version is None and find_highest_version(namespace, base) is not None:
                return env_id
        except gym.error.Error:
            pass
        raise ValueError(
            f"{what}: unknown gymnasium environment id {env_id!r} ({' '.join(str(error).split())})"
        ) from None
    return env_id


@contextlib.contextmanager
def one_line_errors(*, created: Path | None = None) -> Iterator[None]:
    """Turn the errors of a command's body into one-line errors and exit codes.

    ``ValueError`` and gymnasium's errors (bad input) exit with :data:`USAGE_ERROR`, ``OSError``
    with :data:`RUNTIME_ERROR`. ``created``: a folder the body may create (with its parents);
    if the command fails, the empty folders it left from the first one missing now down are
    removed (files are never removed).
    """
    import gymnasium as gym

    missing = [] if created is None else [folder for folder in (created, *created.parents) if not folder.exists()]
    top = missing[-1] if missing else None
    try:
        yield
    except (ValueError, gym.error.Error) as error:
        _remove_empty(top)
        fail(str(error), USAGE_ERROR)
    except OSError as error:
        _remove_empty(top)
        fail(str(error), RUNTIME_ERROR)


def _remove_empty(folder: Path | None) -> None:
    """Remove ``folder`` and the empty folders inside it, bottom-up; a folder holding a file stays."""
    if folder is None or not folder.is_dir():
        return
    for root, _, _ in sorted(os.walk(folder), key=lambda entry: -len(entry[0])):
        with contextlib.suppress(OSError):  # not empty: something worth keeping is there
            os.rmdir(root)
