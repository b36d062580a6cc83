"""A sweep target whose seed-1 run returns text for a metric the others return as a number."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Args:
    scale: float = 1.0
    seed: int = 0


def main(args: Args) -> dict[str, object]:
    score: object = "diverged" if args.seed == 1 else args.scale * (args.seed + 1)
    return {"score": score, "ok": args.seed != 1}
