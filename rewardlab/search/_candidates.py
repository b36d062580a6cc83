"""Candidates: ask the model, take the code out, check it, probe it in the sandbox; then train on it.

A candidate's life is a record (a JSON-able dict) that fills up as it goes:

- ``generate_candidates`` asks the client for K replies (seeds ``seed, seed + 1, ...``), takes the
  code out (:func:`rewardlab.llm.extract_code`), runs the static checks, then one sandboxed call
  on a batch of the env's own transitions. A reply without code, rejected code and code that
  fails in the sandbox are ``status: "failed"`` with their ``errors`` (type, message, line);
  the others are ``status: "checked"``.
- :func:`train_candidate` trains an SB3 agent (PPO or SAC, ``rewardlab.rl.make_agent``) on the
  candidate's reward (``CodeReward`` through ``RewardVecEnvWrapper``, replacing the env's reward)
  and measures the task's own metric, the true return of the deterministic policy
  (``rewardlab.rl.evaluate_policy``): the candidate's ``fitness``. Along training it keeps each
  reward component's mean and the true episode returns at ``checkpoints`` evenly spaced points:
  the numbers Eureka's reward reflection shows the model.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Protocol

import numpy as np

from rewardlab.llm import (
    ChatClient,
    CodeError,
    CodeReward,
    LLMError,
    RewardCodeError,
    check_reward_code,
    extract_code,
    reply_schema,
)
from rewardlab.rl import EpisodeReturns, evaluate_policy, make_agent, make_env, make_task_env
from rewardlab.sweeps import default_workers


@dataclasses.dataclass(frozen=True)
class GenerationConfig:
    """How replies are asked for.

    Attributes:
        temperature: sampling temperature (K candidates differ by their seeds).
        max_tokens: most tokens per reply.
        constrained: decode under :func:`rewardlab.llm.reply_schema` (grammar-constrained JSON
            whose code starts with the contract's header); False leaves the reply free.
        single_expression: with ``constrained``, the stricter schema whose body is one expression.
        probe_transitions: transitions of random play the sandbox probe scores before training.
    """

    temperature: float = 0.7
    max_tokens: int = 400
    constrained: bool = True
    single_expression: bool = False
    probe_transitions: int = 64

    def schema(self) -> dict[str, Any] | None:
        """The JSON schema sent with each request (None when unconstrained)."""
        return reply_schema(single_expression=self.single_expression) if self.constrained else None


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How each checked candidate is trained and scored.

    Attributes:
        algo: ``"ppo"`` or ``"sac"``.
        total_timesteps: env steps of training per candidate.
        num_envs: parallel envs (0: ``rewardlab.rl.default_num_envs``).
        eval_episodes: deterministic episodes for the fitness (mean true return).
        checkpoints: points along training at which components and returns are summarised.
        agent_kwargs: keyword arguments for ``make_agent`` over the tuned ones (``n_steps``, ...).
        seed: seed of the agent, its envs and the evaluation episodes.
    """

    algo: str = "ppo"
    total_timesteps: int = 20_000
    num_envs: int = 0
    eval_episodes: int = 5
    checkpoints: int = 10
    agent_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.algo not in ("ppo", "sac"):
            raise ValueError(f"algo: expected 'ppo' or 'sac', got {self.algo!r}")
        for name in ("total_timesteps", "eval_episodes", "checkpoints"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")


class CandidateTrainer(Protocol):
    """Trains on one candidate's code and returns its training record (see :func:`train_candidate`)."""

    def __call__(self, code: str, env_id: str, config: TrainConfig) -> dict[str, Any]: ...


def _errors(errors: Sequence[CodeError]) -> list[dict[str, Any]]:
    return [error._asdict() for error in errors]


def probe_batch(env_id: str, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``size`` transitions of uniformly random play in ``env_id``: (obs, act, next_obs, dones)."""
    env = make_env(env_id)
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    rows: list[tuple[Any, Any, Any, bool]] = []
    while len(rows) < size:
        act = env.action_space.sample()
        next_obs, _, terminated, truncated, _ = env.step(act)
        rows.append((obs, act, next_obs, bool(terminated)))
        obs = env.reset()[0] if terminated or truncated else next_obs
    env.close()
    return tuple(np.asarray([row[i] for row in rows]) for i in range(4))  # type: ignore[return-value]


def check_candidate(reply: str, probe: tuple[np.ndarray, ...] | None) -> tuple[str | None, list[CodeError]]:
    """The code in ``reply`` and its errors: none found, the static checks, then a sandboxed call on ``probe``.

    Example:
        >>> check_candidate("no code here", None)[1][0].type
        'NoCode'
    """
    try:
        code = extract_code(reply)
    except RewardCodeError as error:
        return None, list(error.errors)
    errors = list(check_reward_code(code))
    if errors or probe is None:
        return code, errors
    with CodeReward(code) as reward:
        try:
            reward.evaluate(*probe)
        except RewardCodeError as error:
            return code, list(error.errors)
    return code, []


def generate_candidates(
    client: ChatClient,
    messages: list[dict[str, str]],
    count: int,
    config: GenerationConfig,
    *,
    seed: int = 0,
    probe: tuple[np.ndarray, ...] | None = None,
) -> list[dict[str, Any]]:
    """``count`` candidates for ``messages``: reply, code, check errors and status of each.

    A request the endpoint refuses (``LLMError``, e.g. llama.cpp's HTTP 500 for constrained
    output it cannot parse back) is a failed candidate of type ``LLMError``; an unreachable
    endpoint is not (it stops the search: nothing can be generated).

    Returns:
        One dict per candidate: ``index``, ``seed``, ``reply``, ``finish_reason``,
        ``completion_tokens``, ``cached``, ``code`` (None without), ``errors`` and ``status``
        (``"checked"`` or ``"failed"``).
    """
    from rewardlab.llm import EndpointUnreachableError

    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count: expected an integer >= 1, got {count!r}")
    candidates = []
    for index in range(count):
        record: dict[str, Any] = {"index": index, "seed": seed + index}
        started = time.perf_counter()
        try:
            reply = client.chat(
                messages,
                temperature=config.temperature,
                max_tokens=config.max_tokens,
                seed=seed + index,
                json_schema=config.schema(),
            )
        except EndpointUnreachableError:
            raise
        except LLMError as error:
            latency_s = round(time.perf_counter() - started, 3)  # a refused request still took its generation's time
            record.update(reply="", finish_reason="error", completion_tokens=0, cached=False, latency_s=latency_s)
            record.update(code=None, errors=_errors([CodeError("LLMError", str(error)[:300])]), status="failed")
            candidates.append(record)
            continue
        code, errors = check_candidate(reply.content, probe)
        record.update(
            reply=reply.content,
            finish_reason=reply.finish_reason,
            completion_tokens=reply.completion_tokens,
            cached=reply.cached,
            latency_s=round(reply.latency_s, 3),
            code=code,
            errors=_errors(errors),
            status="failed" if errors else "checked",
        )
        candidates.append(record)
    return candidates


class _ComponentRecorder:
    """A ``RewardFn`` around a ``CodeReward`` that sums each component's values per step."""

    returns_checked_rewards = True

    def __init__(self, reward: CodeReward) -> None:
        self.reward = reward
        self.sums: dict[str, float] = {}
        self.count = 0

    def __call__(self, obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
        output = self.reward.evaluate(obs, acts, next_obs, dones)
        for name, values in output.components.items():
            self.sums[name] = self.sums.get(name, 0.0) + float(np.mean(values))
        self.count += 1
        return output.reward

    def take(self) -> dict[str, float]:
        means = {name: total / max(self.count, 1) for name, total in self.sums.items()}
        self.sums, self.count = {}, 0
        return means


def train_candidate(code: str, env_id: str, config: TrainConfig) -> dict[str, Any]:
    """Train ``config.algo`` on ``code``'s reward in ``env_id``; score it on the env's own return.

    The agent sees only the candidate's reward (``RewardVecEnvWrapper`` in ``"replace"`` mode);
    SB3's ``Monitor`` below it records the true episode returns. Training runs in
    ``config.checkpoints`` equal chunks; after each, every component's mean per step and the
    mean true return of the episodes that ended in it are kept.

    Returns:
        ``status`` (``"trained"``, or ``"failed"`` with ``errors`` when the code failed in the
        sandbox during training), ``fitness`` (mean true return of ``eval_episodes``
        deterministic episodes), ``fitness_std``, ``components`` (name -> per-checkpoint means),
        ``returns_along`` (per-checkpoint mean true episode return, None where no episode
        ended), ``curve`` (``timesteps``, ``returns`` of every finished episode) and
        ``behaviour`` (mean and spread of each observation dimension over the evaluation
        episodes, their length: what a preference source is shown).
    """
    import torch

    from rewardlab.rl import default_num_envs, rollout
    from rewardlab.wrappers import RewardVecEnvWrapper

    torch.set_num_threads(1)
    num_envs = config.num_envs or default_num_envs(config.algo, env_id)
    reward = CodeReward(code)
    recorder = _ComponentRecorder(reward)
    venv = RewardVecEnvWrapper(make_task_env(env_id, num_envs, config.seed), reward_fn=recorder, mode="replace")
    try:
        agent = make_agent(config.algo, venv, env_id, seed=config.seed, **config.agent_kwargs)
        curve = EpisodeReturns()
        chunk = max(1, config.total_timesteps // config.checkpoints)
        components: dict[str, list[float]] = {}
        returns_along: list[float | None] = []
        seen = 0
        for point in range(config.checkpoints):
            steps = chunk if point < config.checkpoints - 1 else config.total_timesteps - chunk * point
            if steps <= 0:
                continue
            try:
                agent.learn(steps, callback=curve, reset_num_timesteps=point == 0)
            except RewardCodeError as error:
                return {"status": "failed", "errors": _errors(error.errors), "fitness": None}
            for name, value in recorder.take().items():
                components.setdefault(name, []).append(round(value, 6))
            finished = curve.returns[seen:]
            seen = len(curve.returns)
            returns_along.append(round(float(np.mean(finished)), 4) if finished else None)
        env = make_env(env_id)
        evaluation = evaluate_policy(agent, env, config.eval_episodes, seed=config.seed + 10_000)
        data = rollout(agent, env, 1, seed=config.seed + 10_000)
        env.close()
    finally:
        venv.close()
        reward.close()
    obs = np.asarray(data.transitions.obs, float)
    behaviour = {
        "episode_length": int(len(obs)),
        "obs_mean": np.round(obs.mean(axis=0), 4).tolist(),
        "obs_std": np.round(obs.std(axis=0), 4).tolist(),
        "true_return": round(float(data.returns[0]), 4),
    }
    return {
        "status": "trained",
        "errors": [],
        "fitness": round(evaluation.true_return, 4),
        "fitness_std": round(evaluation.true_return_std, 4),
        "components": components,
        "returns_along": returns_along,
        "curve": {"timesteps": list(curve.timesteps), "returns": [round(r, 4) for r in curve.returns]},
        "behaviour": behaviour,
    }


def _limit_threads() -> None:
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")


def train_all(
    jobs: Sequence[tuple[str, str, TrainConfig]],
    trainer: CandidateTrainer | Callable[[str, str, TrainConfig], dict[str, Any]],
    workers: int,
) -> list[dict[str, Any]]:
    """``trainer(*job)`` for every job: in this process when ``workers`` is 1, else in a spawned process pool.

    ``workers`` 0 takes ``rewardlab.sweeps.default_workers()`` (the cores this process may use).
    A trainer that raises gives ``status: "failed"`` with the exception as its error.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ValueError(f"workers: expected an integer >= 0, got {workers!r}")
    workers = workers or default_workers()
    if workers == 1 or len(jobs) <= 1:
        return [_guarded(trainer, job) for job in jobs]
    context = multiprocessing.get_context("spawn")  # this process may hold JAX's threads: never fork it
    with ProcessPoolExecutor(
        max_workers=min(workers, len(jobs)), mp_context=context, initializer=_limit_threads
    ) as pool:
        futures = [pool.submit(_guarded, trainer, job) for job in jobs]
        return [future.result() for future in futures]


def _guarded(trainer: Callable[..., dict[str, Any]], job: tuple[str, str, TrainConfig]) -> dict[str, Any]:
    try:
        return trainer(*job)
    except RewardCodeError as error:
        return {"status": "failed", "errors": _errors(error.errors), "fitness": None}
    except Exception as error:  # noqa: BLE001 - one candidate's failure must not stop the search
        return {
            "status": "failed",
            "errors": [CodeError(type(error).__name__, str(error)[:300])._asdict()],
            "fitness": None,
        }
