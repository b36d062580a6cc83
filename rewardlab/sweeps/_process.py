"""What every backend's run process shares: how many runs fit this machine, thread limits, the timeout message."""

from __future__ import annotations

import os
import sys

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
