"""Preference learning on a K-armed bandit: how the teacher and the label budget shape a learned reward.

A hidden reward vector r* ∈ R^K is learned from pairwise comparisons of arms by
minimising the Bradley–Terry loss (Bradley & Terry 1952; Christiano et al. 2017)

    L(r) = −mean[ y log σ(r_i − r_j) + (1 − y) log σ(r_j − r_i) ]

by full-batch gradient descent, with labels y from a B-Pref simulated teacher (Lee et
al. 2021): ``oracle`` (y = 1[r*_i > r*_j]), ``stochastic`` (y ~ Bernoulli σ(β(r*_i − r*_j)))
or ``mistake`` (the oracle, flipped with probability 0.1). NumPy only, no agent and no
compilation, so a run costs next to nothing: the sweep layer's own test and demonstration study.

Run one: ``python -m experiments.bandit --teacher mistake --labels 50``; sweep it:
``rewardlab sweep experiments/bandit.toml``.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np

from rewardlab.sweeps import Logger, check_choices, parse_args


@dataclasses.dataclass(frozen=True)
class Args:
    """Arguments of the bandit preference-learning study.

    Attributes:
        num_arms: arms K of the bandit.
        labels: preference labels (pairs of distinct arms) the teacher gives.
        teacher: ``oracle``, ``stochastic`` (β = 1) or ``mistake`` (ε = 0.1).
        learning_rate: gradient-descent step size on the Bradley–Terry loss.
        num_steps: gradient steps.
        log_every: gradient steps between logged points of the learning curve.
        seed: seed of the bandit, the queries and the teacher.
    """

    num_arms: int = 10
    labels: int = 100
    teacher: Literal["oracle", "stochastic", "mistake"] = "oracle"
    learning_rate: float = 1.0
    num_steps: int = 200
    log_every: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        check_choices(self)
        for name in ("num_arms", "labels", "num_steps", "log_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < (2 if name == "num_arms" else 1):
                raise ValueError(f"{name}: expected an integer >= {2 if name == 'num_arms' else 1}, got {value!r}")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def main(args: Args, logger: Logger | None = None) -> dict[str, float]:
    """Learn the arm rewards; return final loss, correlation with r*, and regret of the greedy arm."""
    rng = np.random.default_rng(args.seed)
    true_reward = rng.normal(size=args.num_arms)
    first = rng.integers(args.num_arms, size=args.labels)
    second = (first + rng.integers(1, args.num_arms, size=args.labels)) % args.num_arms
    margin = true_reward[first] - true_reward[second]
    if args.teacher == "oracle":
        y = (margin > 0).astype(float)
    elif args.teacher == "stochastic":
        y = (rng.random(args.labels) < _sigmoid(margin)).astype(float)
    else:
        y = np.where(rng.random(args.labels) < 0.1, margin <= 0, margin > 0).astype(float)

    reward = np.zeros(args.num_arms)
    loss = float("nan")
    for step in range(args.num_steps + 1):
        logits = reward[first] - reward[second]
        loss = float(np.mean(np.logaddexp(0.0, -logits) * y + np.logaddexp(0.0, logits) * (1 - y)))
        if not np.isfinite(loss) or np.abs(reward).max() > 1e6:
            raise FloatingPointError(
                f"Bradley-Terry training diverged at step {step} (learning_rate={args.learning_rate})"
            )
        if logger is not None and step % args.log_every == 0:
            logger.log(step, loss=loss, correlation=float(np.corrcoef(reward, true_reward)[0, 1]) if step else 0.0)
        if step == args.num_steps:
            break
        grad_logits = (_sigmoid(logits) - y) / args.labels
        grad = np.bincount(first, grad_logits, args.num_arms) - np.bincount(second, grad_logits, args.num_arms)
        reward -= args.learning_rate * grad * args.num_arms
    return {
        "final_loss": loss,
        "correlation": float(np.corrcoef(reward, true_reward)[0, 1]),
        "regret": float(true_reward.max() - true_reward[int(np.argmax(reward))]),
    }


if __name__ == "__main__":
    print(main(parse_args(Args)))
