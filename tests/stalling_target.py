"""A sweep target whose seed-1 run deadlocks (idle forever), for the run-timeout tests."""

from __future__ import annotations

import dataclasses
import threading


@dataclasses.dataclass(frozen=True)
class Args:
    seed: int = 0


def _wait_forever() -> None:
    threading.Event().wait()  # never set: the process sits idle, like a deadlocked run


def main(args: Args) -> dict[str, float]:
    if args.seed == 1:
        _wait_forever()
    return {"value": float(args.seed)}
