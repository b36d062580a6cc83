"""Eureka and ICPL: generate K reward candidates, train on each, feed the best back, N times.

Eureka (Ma et al., "Eureka: Human-level reward design via coding large language models",
2023): each iteration asks the model for K reward functions; each is checked and trained on
briefly; its fitness is the task's own metric (here the true return of the deterministic
policy). The fittest candidate's code and its reward reflection (each component's values
along training, the true return along training and at the end) go into the next prompt, with
the errors of the candidates that failed. ICPL (Yu et al., "ICPL: Few-shot in-context
preference learning via LLMs", 2024) differs in who chooses: a :class:`PreferenceSource` ranks
the candidates' behaviour, and the preferred and least preferred codes condition the next
generation.

The run folder holds ``search.json`` (what was asked: method, task, env, model, settings),
``iterations/iteration_NNN.json`` (each iteration's messages, the replies, code, check errors,
training records with fitness, curves and components, the choice, timings), ``best_reward.json``
(the best :class:`~rewardlab.llm.CodeReward` with its prompt and origin) and ``summary.json``.
Every file is written atomically. An iteration whose file exists is read back, not redone, so
a killed search resumes where it stopped; with the client's reply cache, the replies of a
half-done iteration cost no tokens either.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from rewardlab._io import atomic_write_json
from rewardlab.llm import ChatClient, CodeError, CodeReward, error_feedback, reward_messages, reward_reflection
from rewardlab.search._candidates import (
    CandidateTrainer,
    GenerationConfig,
    TrainConfig,
    generate_candidates,
    probe_batch,
    train_all,
    train_candidate,
)
from rewardlab.search._context import env_context
from rewardlab.search._preferences import PreferenceSource

SEARCH_FORMAT = "rewardlab.search"


class SearchResult(NamedTuple):
    """What a search returns (and writes to ``summary.json``)."""

    run_dir: Path
    best_code: str | None  # None when no candidate ever trained
    best_fitness: float  # its true return (NaN without one)
    best_iteration: int  # -1 without one
    fitness_per_iteration: list[float]  # best fitness of each iteration (NaN where none trained)
    pass_rate_per_iteration: list[float]  # share of candidates that passed the checks
    iterations: list[dict[str, Any]]  # the iteration records


def _finite(values: Sequence[Any]) -> list[float]:
    return [float(v) for v in values if v is not None and np.isfinite(float(v))]


def reflection_text(candidate: dict[str, Any]) -> str:
    """Eureka's reward reflection for a trained candidate: its code, components and true return along training.

    Example:
        >>> text = reflection_text({"code": "def compute_reward(obs, act, next_obs, terminated): ...",
        ...     "components": {"angle": [-2.0, -1.0]}, "returns_along": [-900.0, -500.0], "fitness": -300.0})
        >>> print(text.splitlines()[-2])
        true return: [-900.00, -500.00, -300.00], max -300.00, mean -566.67, min -900.00
    """
    along = _finite(candidate.get("returns_along") or []) + [float(candidate["fitness"])]
    return f"Reward function:\n```python\n{str(candidate['code']).strip()}\n```\n" + reward_reflection(
        candidate.get("components") or {}, along, fitness_name="true return"
    )


def _code_failure(candidate: dict[str, Any]) -> bool:
    """A candidate that failed for its code, not because the endpoint refused the request (``LLMError``)."""
    errors = candidate.get("errors") or []
    return candidate.get("status") == "failed" and bool(errors) and errors[0].get("type") != "LLMError"


def failures_text(candidates: Sequence[dict[str, Any]]) -> str:
    """One line per candidate that failed for its code, with its first error (empty when none did).

    A request the endpoint refused (``LLMError``) is left out: the model cannot fix a server error.

    Example:
        >>> failures_text([{"index": 1, "status": "failed", "errors": [{"type": "NoCode", "message": "none", "line": None}]}])
        'Other candidates failed:\\ncandidate 1: NoCode: none'
    """
    lines = [f"candidate {c['index']}: {CodeError(**c['errors'][0])}" for c in candidates if _code_failure(c)]
    return "Other candidates failed:\n" + "\n".join(lines) if lines else ""


def eureka_feedback(record: dict[str, Any]) -> str | None:
    """The feedback an iteration gives the next one: the best candidate's reflection, or the errors.

    Only errors of the code count: when every failure was a refused request (``LLMError``),
    there is no feedback and the next iteration is asked the task again.
    """
    chosen = record.get("chosen")
    candidates = record["candidates"]
    if chosen is not None:
        text = reflection_text(candidates[chosen])
        failures = failures_text(candidates)
        return text + ("\n" + failures if failures else "")
    failed = [c for c in candidates if _code_failure(c)]
    if not failed:
        return None
    first = failed[0]
    return error_feedback([CodeError(**error) for error in first["errors"]], first.get("code"))


def icpl_feedback(record: dict[str, Any]) -> str | None:
    """ICPL's feedback: the preferred candidate (its code and reflection) and the least preferred one's code."""
    ranking = record.get("ranking") or []
    if not ranking:
        return eureka_feedback(record)
    candidates = record["candidates"]
    best = candidates[ranking[0]]
    text = "A person watched the policies trained with each reward function and preferred this one.\n"
    text += reflection_text(best)
    if len(ranking) > 1:
        worst = candidates[ranking[-1]]
        text += f"\nThey liked this one least:\n```python\n{str(worst['code']).strip()}\n```"
    return text


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """The settings of a search (what ``search.json`` records).

    Attributes:
        iterations: N, the generate-train-reflect rounds.
        candidates: K, replies asked for per iteration.
        generation: how replies are asked for (sampling, constrained decoding).
        training: how each checked candidate is trained and scored.
        workers: processes training candidates at once (1: in this process; 0: one per core).
        seed: first sampling seed; iteration i asks with seeds ``seed + i·K, ...``.
    """

    iterations: int = 5
    candidates: int = 4
    generation: GenerationConfig = dataclasses.field(default_factory=GenerationConfig)
    training: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    workers: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("iterations", "candidates"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")


def run_search(
    method: str,
    task: str,
    env_id: str,
    client: ChatClient,
    run_dir: str | Path,
    config: SearchConfig,
    *,
    choose: Callable[[list[dict[str, Any]]], list[int]],
    feedback: Callable[[dict[str, Any]], str | None],
    trainer: CandidateTrainer | None = None,
    notes: str | None = None,
    log: Callable[[str], None] | None = None,
) -> SearchResult:
    """The loop Eureka and ICPL share; ``choose`` ranks the trained candidates, ``feedback`` writes the next prompt's tail.

    Raises:
        ValueError: ``run_dir`` holds a search with other settings.
    """
    if not isinstance(task, str) or not task.strip():
        raise ValueError(f"task: expected a non-empty description, got {task!r}")
    run_dir = Path(run_dir)
    (run_dir / "iterations").mkdir(parents=True, exist_ok=True)
    header = {
        "format": SEARCH_FORMAT,
        "method": method,
        "task": task,
        "env_id": env_id,
        "model": client.model,
        "config": dataclasses.asdict(config),
    }
    header_path = run_dir / "search.json"
    if header_path.exists():
        stored = json.loads(header_path.read_text())
        if {k: stored.get(k) for k in header} != json.loads(json.dumps(header)):
            raise ValueError(
                f"run_dir: {str(run_dir)!r} holds a search with other settings ({header_path}); "
                "use another folder or the same settings to resume it"
            )
    else:
        atomic_write_json(header_path, header)
    say = log or (lambda message: None)
    context = env_context(env_id, notes)
    probe = probe_batch(env_id, config.generation.probe_transitions, config.training.seed)
    train = trainer if trainer is not None else train_candidate
    records: list[dict[str, Any]] = []
    next_feedback: str | None = None
    for iteration in range(config.iterations):
        path = run_dir / "iterations" / f"iteration_{iteration:03d}.json"
        if path.exists():
            record = json.loads(path.read_text())
            say(f"iteration {iteration}: on disk, not redone")
        else:
            record = _iteration(iteration, task, context, env_id, client, config, probe, train, choose, next_feedback)
            record["feedback_next"] = feedback(record)
            atomic_write_json(path, record)
            say(
                f"iteration {iteration}: {record['passed']}/{config.candidates} passed the checks, "
                f"best fitness {record['best_fitness']}"
            )
        records.append(record)
        next_feedback = record.get("feedback_next")
    return _finish(method, run_dir, records, config, task, env_id, client)


def _iteration(
    iteration: int,
    task: str,
    context: str,
    env_id: str,
    client: ChatClient,
    config: SearchConfig,
    probe: tuple[np.ndarray, ...],
    train: Callable[..., dict[str, Any]],
    choose: Callable[[list[dict[str, Any]]], list[int]],
    feedback: str | None,
) -> dict[str, Any]:
    messages = reward_messages(task, context, feedback=feedback)
    started = time.perf_counter()
    tokens_before = client.usage.completion_tokens
    candidates = generate_candidates(
        client,
        messages,
        config.candidates,
        config.generation,
        seed=config.seed + iteration * config.candidates,
        probe=probe,
    )
    generation_s = sum(c["latency_s"] for c in candidates)
    # The model's speed from the replies that carry a token count (a refused request reports none).
    reply_s = sum(c["latency_s"] for c in candidates if c["completion_tokens"] and not c["cached"])
    checks_s = time.perf_counter() - started - generation_s
    passed = [c for c in candidates if c["status"] == "checked"]
    started = time.perf_counter()
    trained = train_all([(c["code"], env_id, config.training) for c in passed], train, config.workers)
    training_s = time.perf_counter() - started
    for candidate, result in zip(passed, trained, strict=True):
        candidate.update(result)
    ok = [c for c in candidates if c["status"] == "trained"]
    ranking = [ok[position]["index"] for position in choose(ok)] if ok else []
    fitness = [c["fitness"] for c in ok]
    tokens = client.usage.completion_tokens - tokens_before
    return {
        "iteration": iteration,
        "messages": messages,
        "candidates": candidates,
        "passed": len(passed),
        "pass_rate": len(passed) / len(candidates),
        "ranking": ranking,
        "chosen": ranking[0] if ranking else None,
        "best_fitness": max(fitness) if fitness else None,
        "completion_tokens": tokens,
        "wall_s": {
            "generation": round(generation_s, 3),
            "checks": round(checks_s, 3),
            "training": round(training_s, 3),
        },
        "tokens_per_s": round(tokens / reply_s, 3) if reply_s > 0 else None,
    }


def _finish(
    method: str,
    run_dir: Path,
    records: list[dict[str, Any]],
    config: SearchConfig,
    task: str,
    env_id: str,
    client: ChatClient,
) -> SearchResult:
    best: tuple[float, int, dict[str, Any]] | None = None
    for record in records:
        chosen = record.get("chosen")
        if chosen is None:
            continue
        candidate = record["candidates"][chosen]
        key = float(candidate["fitness"])
        # Eureka keeps the fittest candidate of all; ICPL the latest preferred one.
        if best is None or method == "icpl" or key > best[0]:
            best = (key, record["iteration"], candidate)
    fitness = [float("nan") if r.get("best_fitness") is None else float(r["best_fitness"]) for r in records]
    pass_rate = [float(r["pass_rate"]) for r in records]
    summary: dict[str, Any] = {
        "method": method,
        "task": task,
        "env_id": env_id,
        "model": client.model,
        "fitness_per_iteration": fitness,
        "pass_rate_per_iteration": pass_rate,
        "best_fitness": None if best is None else best[0],
        "best_iteration": -1 if best is None else best[1],
        "completion_tokens": sum(int(r.get("completion_tokens") or 0) for r in records),
    }
    if best is not None:
        messages = records[best[1]]["messages"]
        origin = {"method": method, "model": client.model, "iteration": best[1], "candidate": best[2]["index"]}
        CodeReward(best[2]["code"], prompt=messages, origin=origin).save(run_dir / "best_reward.json")
    atomic_write_json(run_dir / "summary.json", summary)
    return SearchResult(
        run_dir=run_dir,
        best_code=None if best is None else best[2]["code"],
        best_fitness=float("nan") if best is None else best[0],
        best_iteration=-1 if best is None else best[1],
        fitness_per_iteration=fitness,
        pass_rate_per_iteration=pass_rate,
        iterations=records,
    )


def _by_fitness(candidates: list[dict[str, Any]]) -> list[int]:
    return [int(i) for i in np.argsort([-float(c["fitness"]) for c in candidates], kind="stable")]


def eureka(
    task: str,
    env_id: str,
    client: ChatClient,
    run_dir: str | Path,
    config: SearchConfig | None = None,
    *,
    trainer: CandidateTrainer | None = None,
    notes: str | None = None,
    log: Callable[[str], None] | None = None,
) -> SearchResult:
    """Eureka's search: K candidates per iteration, trained and scored on the true return; the fittest reflected back.

    Args:
        task: what the agent should do, in words.
        env_id: a gymnasium id; its layouts (and ``ENV_NOTES`` where listed) describe it.
        client: the chat client (its cache makes a resumed search free).
        run_dir: the run folder (created; an existing one with the same settings is resumed).
        config: iterations, candidates, generation and training settings, workers.
        trainer: trains one candidate (default :func:`train_candidate`; must be picklable for
            ``workers`` > 1).
        notes: the env's index meanings, over ``ENV_NOTES``.
        log: receives one line per iteration.

    Returns:
        A :class:`SearchResult`; the fittest candidate of all iterations is ``best_reward.json``.
    """
    return run_search(
        "eureka", task, env_id, client, run_dir, config or SearchConfig(),
        choose=_by_fitness, feedback=eureka_feedback, trainer=trainer, notes=notes, log=log,
    )  # fmt: skip


def icpl(
    task: str,
    env_id: str,
    client: ChatClient,
    run_dir: str | Path,
    source: PreferenceSource,
    config: SearchConfig | None = None,
    *,
    trainer: CandidateTrainer | None = None,
    notes: str | None = None,
    log: Callable[[str], None] | None = None,
) -> SearchResult:
    """ICPL's search: each iteration ``source`` ranks the trained candidates' behaviour; the preferred conditions the next.

    The arguments are :func:`eureka`'s, with ``source`` (a :class:`TrueReturnTeacher`, a
    :class:`TerminalPreference`, or any :class:`PreferenceSource`). The candidate kept is the
    latest preferred one.
    """
    return run_search(
        "icpl", task, env_id, client, run_dir, config or SearchConfig(),
        choose=source.rank, feedback=icpl_feedback, trainer=trainer, notes=notes, log=log,
    )  # fmt: skip
