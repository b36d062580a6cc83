"""What every backend's run process shares: how many runs fit this machine, thread limits, the compilation cache, the timeout message."""

from __future__ import annotations

import os
import sys
from pathlib import Path

_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def default_workers() -> int:
    """Worker processes of the local backend: the CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


def limit_threads(threads: int | None) -> None:
    """Cap BLAS/OpenMP/XLA/torch threads of this process at ``threads`` (unless the user set them)."""
    if threads is None:
        return
    for name in _THREAD_VARIABLES:
        os.environ.setdefault(name, str(threads))
    if threads == 1 and "XLA_FLAGS" not in os.environ:
        os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


def timeout_message(run_timeout: float) -> str:
    """The error recorded for a run killed at ``run_timeout`` seconds."""
    return f"the run exceeded run_timeout={run_timeout:g} s and was killed"


CACHE_VARIABLE = "JAX_COMPILATION_CACHE_DIR"
_MIN_COMPILE_TIME_VARIABLE = "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"
_MIN_COMPILE_TIME_S = "0.1"  # JAX's default, 1 s, leaves a worker recompiling every smaller program


def default_compile_cache() -> Path:
    """The default folder of JAX's persistent compilation cache: ``$XDG_CACHE_HOME/rewardlab/jax`` (``~/.cache/...``)."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "rewardlab" / "jax"


def compile_cache_environment(compile_cache: bool | str | os.PathLike) -> dict[str, str]:
    """Environment variables that point a run process's JAX at a persistent compilation cache.

    JAX reads ``JAX_COMPILATION_CACHE_DIR`` when it is imported and then writes every program
    that took at least ``JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS`` to compile into that
    folder, and loads it from there instead of compiling it again, in any process on this
    machine with the same JAX, XLA flags and shapes. The cache is trusted code: point it at a
    folder only you can write.

    Args:
        compile_cache: True for ``$JAX_COMPILATION_CACHE_DIR`` if the user set it, else
            :func:`default_compile_cache`; a folder; or False for no cache.

    Returns:
        The variables to set in a run process (empty for no cache); a minimum compile time
        the user set is kept.

    Raises:
        ValueError: ``compile_cache`` is neither a bool nor a path.

    Example:
        >>> compile_cache_environment("/tmp/jax-cache")["JAX_COMPILATION_CACHE_DIR"]
        '/tmp/jax-cache'
        >>> compile_cache_environment(False)
        {}
    """
    if compile_cache is False:
        return {}
    if compile_cache is True:
        folder = os.environ.get(CACHE_VARIABLE) or str(default_compile_cache())
    elif isinstance(compile_cache, (str, os.PathLike)) and str(compile_cache):
        folder = str(Path(compile_cache).expanduser())
    else:
        raise ValueError(f"compile_cache: expected True, False or a folder, got {compile_cache!r}")
    return {
        CACHE_VARIABLE: folder,
        _MIN_COMPILE_TIME_VARIABLE: os.environ.get(_MIN_COMPILE_TIME_VARIABLE, _MIN_COMPILE_TIME_S),
    }
