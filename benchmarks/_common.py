"""Small helpers shared by the benchmarks: single-threaded setup, timing, matmul peak, the JSON line."""

from __future__ import annotations

import json
import math
import os
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any


def single_threaded() -> None:
    """One thread for XLA, BLAS and torch, and EGL for MuJoCo (call before importing jax/numpy users).

    The benchmarks share a small machine; pinning every library to one thread makes figures
    comparable between runs and keeps the other cores free.
    """
    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    import torch

    torch.set_num_threads(1)


def time_call(fn: Callable[[], Any], repeats: int, number: int = 1) -> list[float]:
    """Seconds per call of ``fn``: ``repeats`` samples, each the mean over ``number`` calls."""
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - start) / number)
    return samples


def interleaved_rates(
    blocks: dict[str, Callable[[], int]],
    rounds: int,
    alternate: bool = True,
    settle: dict[str, Callable[[], None]] | None = None,
) -> dict[str, list[float]]:
    """Work units per second of each named block, run in turn ``rounds`` times (A B, B A, A B, ...).

    Interleaving makes slow drifts and bursts of load from other processes hit every block
    alike; ``alternate`` reverses the order every other round so a linear drift cancels too.
    Take medians of each list, or of per-round ratios. Each block returns how many units it did.
    ``settle[name]``, run after block ``name`` outside its timing, ends background work the block
    started (a request in flight) so that it does not load the next block.
    """
    rates: dict[str, list[float]] = {name: [] for name in blocks}
    names = list(blocks)
    for index in range(rounds):
        for name in reversed(names) if alternate and index % 2 else names:
            start = time.perf_counter()
            units = blocks[name]()
            rates[name].append(units / (time.perf_counter() - start))
            if settle is not None and name in settle:
                settle[name]()
    return rates


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def matmul_gflops(size: int = 2048, repeats: int = 10) -> float:
    """Best-of-``repeats`` GFLOP/s of a jitted float32 ``size``×``size`` ``jnp.dot`` (2·n³ FLOPs), measured now."""
    import jax
    import jax.numpy as jnp

    matmul = jax.jit(jnp.dot)
    a = jax.random.normal(jax.random.key(0), (size, size), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (size, size), jnp.float32)
    matmul(a, b).block_until_ready()
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(a, b).block_until_ready()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def print_figures(figures: dict[str, Any]) -> None:
    """Print the benchmark's figures as one JSON object on the last line of output."""
    print(json.dumps(figures, sort_keys=False), flush=True)
