"""A sweep target that reports which process ran it, for the warm-worker tests; one seed may kill its process."""

from __future__ import annotations

import dataclasses
import os
import random
import signal

_RUNS_IN_THIS_PROCESS = [0]


@dataclasses.dataclass(frozen=True)
class Args:
    crash_seed: int = -1  # the run with this seed kills its own process (SIGKILL), as the OOM killer would
    jit: bool = False  # compile a small JAX program
    seed: int = 0


def main(args: Args) -> dict[str, float]:
    runs_before = _RUNS_IN_THIS_PROCESS[0]
    _RUNS_IN_THIS_PROCESS[0] += 1
    if args.seed == args.crash_seed:
        os.kill(os.getpid(), signal.SIGKILL)
    if args.jit:
        import jax
        import jax.numpy as jnp

        jax.jit(lambda x: jnp.cumsum(x * 2.0 + 1.0))(jnp.arange(3.0)).block_until_ready()
    return {"pid": float(os.getpid()), "runs_before": float(runs_before), "draw": random.random()}
