"""Eureka on a gymnasium task against the sparse, the true and a hand-written reward.

A language model (the local SmolLM2-135M-Instruct by default, or any OpenAI-compatible
endpoint) writes reward code for ``task``; :func:`rewardlab.search.eureka` checks, trains on
(PPO, ``total_timesteps`` per candidate) and scores each candidate on the env's own return,
for ``iterations`` rounds of ``candidates``. Three baselines are trained the same way, through
the same sandboxed ``CodeReward`` path: the sparse reward (1 near the goal, else 0), the true
reward (the env's own formula, written to the contract) and a hand-written dense reward.
The best found reward's EPIC distance to the true one is measured on random-policy coverage
(:func:`rewardlab.distances.sample_epic_distance`, host path through the sandbox).

``summary.json`` keys: ``env_id``, ``task``, ``model``, ``constrained``, ``fitness_per_iteration`` (best
true return of each iteration, NaN where no candidate trained), ``pass_rate_per_iteration``
(share of candidates that passed the checks and the sandbox probe), ``best_fitness``,
``baselines`` (name -> true return of its agent), ``epic_best_vs_true`` (NaN without a best
reward), ``completion_tokens``, ``wall_s``, ``run_dir``. The search's own history is in the
run folder's ``search/`` (see :mod:`rewardlab.search`).

Run: ``python -m experiments.eureka --iterations 2 --candidates 2 --total-timesteps 5000``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rewardlab._io import atomic_write_json
from rewardlab.distances import sample_epic_distance
from rewardlab.llm import ChatClient, CodeReward, LocalServer
from rewardlab.rl import rollout_transitions
from rewardlab.search import GenerationConfig, SearchConfig, TrainConfig, eureka, train_all, train_candidate
from rewardlab.sweeps import Logger, RunLogger, check_choices, parse_args

# The task text of each env when none is given.
TASKS = {
    "Pendulum-v1": "Swing the pendulum up and keep it upright with little torque.",
    "HalfCheetah-v5": "Run forward as fast as possible with little control effort.",
}

_HEADER = "import numpy as np\n\ndef compute_reward(obs, act, next_obs, terminated):\n"

# Baseline rewards, written to the contract so that they train through the same sandboxed path.
BASELINES = {
    "Pendulum-v1": {
        "sparse": _HEADER + "    up = (obs[:, 0] > 0.95).astype(np.float64)\n    return up, {'up': up}\n",
        "true": _HEADER
        + "    theta = np.arctan2(obs[:, 1], obs[:, 0])\n"
        + "    cost = theta ** 2 + 0.1 * obs[:, 2] ** 2 + 0.001 * act[:, 0] ** 2\n"
        + "    return -cost, {'cost': cost}\n",
        "hand": _HEADER
        + "    height = next_obs[:, 0]\n    spin = -0.05 * np.abs(next_obs[:, 2])\n"
        + "    return height + spin, {'height': height, 'spin': spin}\n",
    },
    "HalfCheetah-v5": {
        "sparse": _HEADER + "    fast = (next_obs[:, 8] > 2.0).astype(np.float64)\n    return fast, {'fast': fast}\n",
        "true": _HEADER
        + "    run = next_obs[:, 8]\n    ctrl = -0.1 * np.sum(act ** 2, axis=1)\n"
        + "    return run + ctrl, {'run': run, 'ctrl': ctrl}\n",
        "hand": _HEADER
        + "    run = np.clip(next_obs[:, 8], -1.0, 4.0)\n    ctrl = -0.05 * np.sum(act ** 2, axis=1)\n"
        + "    return run + ctrl, {'run': run, 'ctrl': ctrl}\n",
    },
}


@dataclasses.dataclass(frozen=True)
class Args:
    """Arguments of the Eureka study.

    Attributes:
        env_id: Pendulum-v1 (classic control) or HalfCheetah-v5 (MuJoCo).
        task: the task text the model is given; empty: the env's own (``TASKS``).
        iterations: Eureka iterations N.
        candidates: candidates K per iteration.
        total_timesteps: PPO steps per candidate and per baseline.
        eval_episodes: deterministic episodes of each fitness.
        constrained: grammar-constrained JSON replies (``reply_schema``), else free text.
        single_expression: with ``constrained``, the one-expression schema.
        temperature: sampling temperature.
        max_tokens: most tokens per reply.
        base_url: an OpenAI-compatible endpoint; empty: a local server started here.
        model: the model name for ``base_url`` (empty: the client's default).
        workers: processes training candidates at once.
        seed: seed of sampling, agents and evaluation.
        out_dir: parent folder of the run folder.
        run_name: run folder name; empty for ``eureka-<env>-<constrained|free>-seed<seed>``.
    """

    env_id: Literal["Pendulum-v1", "HalfCheetah-v5"] = "Pendulum-v1"
    task: str = ""
    iterations: int = 2
    candidates: int = 2
    total_timesteps: int = 5_000
    eval_episodes: int = 3
    constrained: bool = True
    single_expression: bool = False
    temperature: float = 0.7
    max_tokens: int = 300
    base_url: str = ""
    model: str = ""
    workers: int = 1
    seed: int = 0
    out_dir: Path = Path("runs")
    run_name: str = ""

    def __post_init__(self) -> None:
        check_choices(self)
        for name in ("iterations", "candidates", "total_timesteps", "eval_episodes", "max_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")

    @property
    def name(self) -> str:
        """The run folder's name unless ``run_name`` is set."""
        mode = "constrained" if self.constrained else "free"
        return self.run_name or f"eureka-{self.env_id}-{mode}-seed{self.seed}"


def main(args: Args, logger: Logger | None = None) -> dict[str, Any]:
    """Run the study; return its summary (also ``summary.json`` in the run folder)."""
    started = time.perf_counter()
    run_logger = RunLogger(Path(args.out_dir) / args.name) if logger is None else logger
    run_dir = run_logger.run_dir if run_logger.run_dir is not None else Path(args.out_dir) / args.name
    run_dir.mkdir(parents=True, exist_ok=True)
    task = args.task or TASKS[args.env_id]
    training = TrainConfig(total_timesteps=args.total_timesteps, eval_episodes=args.eval_episodes, seed=args.seed)
    config = SearchConfig(
        iterations=args.iterations,
        candidates=args.candidates,
        generation=GenerationConfig(
            temperature=args.temperature,
            max_tokens=args.max_tokens,
            constrained=args.constrained,
            single_expression=args.single_expression,
        ),
        training=training,
        workers=args.workers,
        seed=args.seed,
    )
    with contextlib.ExitStack() as stack:
        if args.base_url:
            client = ChatClient(base_url=args.base_url, model=args.model or None)
        else:
            client = stack.enter_context(LocalServer()).client()
        result = eureka(task, args.env_id, client, run_dir / "search", config, log=print)
    codes = BASELINES[args.env_id]
    baselines_path = run_dir / "baselines.json"
    if baselines_path.exists():  # a resumed run does not retrain its baselines
        import json

        baselines = json.loads(baselines_path.read_text())
    else:
        trained = train_all([(code, args.env_id, training) for code in codes.values()], train_candidate, args.workers)
        baselines = {name: record["fitness"] for name, record in zip(codes, trained, strict=True)}
        atomic_write_json(baselines_path, baselines)
    epic = float("nan")
    if result.best_code is not None:
        coverage = rollout_transitions(args.env_id, 2_000, seed=args.seed)
        with CodeReward(result.best_code) as best, CodeReward(codes["true"]) as true:
            distance = sample_epic_distance(
                best, true, coverage, 0.99, num_transitions=256, num_samples=64, num_seeds=3, seed=args.seed
            )
        epic = float(distance.mean)
    summary = {
        "env_id": args.env_id,
        "task": task,
        "model": client.model,
        "constrained": args.constrained,
        "fitness_per_iteration": result.fitness_per_iteration,
        "pass_rate_per_iteration": result.pass_rate_per_iteration,
        "best_fitness": result.best_fitness,
        "baselines": baselines,
        "epic_best_vs_true": epic,
        "completion_tokens": sum(int(r.get("completion_tokens") or 0) for r in result.iterations),
        "wall_s": round(time.perf_counter() - started, 1),
        "run_dir": str(run_dir),
    }
    for step, (fitness, rate) in enumerate(
        zip(result.fitness_per_iteration, result.pass_rate_per_iteration, strict=True)
    ):
        if np.isfinite(fitness):
            run_logger.log(step, fitness=fitness, pass_rate=rate)
        else:
            run_logger.log(step, pass_rate=rate)
    atomic_write_json(run_dir / "summary.json", summary)
    return summary


if __name__ == "__main__":
    print(main(parse_args(Args)))
