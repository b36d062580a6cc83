"""Benchmark: PPO env steps/s on MiniHack with ``NetHackExtractor``, raw, with each exploration bonus and with ONI.

PPO (``MultiInputPolicy`` with :class:`rewardlab.rl.NetHackExtractor`, ``n_steps`` × envs per
rollout, one epoch of minibatch 64) learns on a DummyVecEnv of ``--num-envs``
``rewardlab/MiniHack-Room-5x5-v0`` envs: ``raw`` (no wrapper) and one agent per bonus of
:mod:`rewardlab.intrinsic`, each behind ``RewardVecEnvWrapper(mode="add", weight=0.1)``:
global and episodic counts over the glyph map, RND and E3B over the glyph crop and the
bottom-line stats, the product of global counts and E3B, and ONI's reward (:class:`ONIBonus`,
hashing model) with its :class:`AnnotationWorker` labelling through the local model
(SmolLM2-135M, ``LocalServer`` over HTTP; ``--base-url`` for another endpoint; ``--no-oni``
leaves it out). Blocks of ``--block-steps`` env steps (rollouts and updates) run interleaved,
``--rounds`` times, after a warm-up of two training rounds of the bonuses' networks (their jit
compilations), so load from other processes hits every agent alike; rates are env steps per
second, rollout and PPO update together.

Labelling runs during ONI's blocks and only then: the worker starts with a backlog (the
hand-written oracle messages, then every message the learner meets), its labeller asks the model
only while ONI's block runs, and after the block the request in flight is let finish outside
the timing, so the other agents' blocks run without the model's load. ``oni_labels_measured``
counts the labels made during ONI's measured blocks, ``oni_backlog`` the messages still queued.

``ratio`` = the lowest, over the bonuses and ONI, of the median per-round ratio wrapper ÷ raw
(goal ≥ 0.8); ``ratio_<name>`` and ``steps_per_s_<name>`` give each one.

    python -m benchmarks.nle_throughput [--rounds 3] [--block-steps 256] [--num-envs 4] [--no-oni]

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

from benchmarks._common import interleaved_rates, median, print_figures, single_threaded

single_threaded()

import argparse  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from contextlib import ExitStack  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gymnasium as gym  # noqa: E402
from stable_baselines3 import PPO  # noqa: E402
from stable_baselines3.common.monitor import Monitor  # noqa: E402
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv  # noqa: E402

import rewardlab_envs  # noqa: E402, F401  (registers rewardlab/MiniHack-…)
from rewardlab.intrinsic import (  # noqa: E402
    ORACLE_MESSAGES,
    E3BBonus,
    EpisodicCountBonus,
    GlobalCountBonus,
    LLMLabeller,
    MessageLabeller,
    ONIBonus,
    ProductBonus,
    RNDBonus,
)
from rewardlab.llm import ChatClient, LocalServer  # noqa: E402
from rewardlab.rl import NetHackExtractor  # noqa: E402
from rewardlab.wrappers import RewardVecEnvWrapper  # noqa: E402

ENV_ID = "rewardlab/MiniHack-Room-5x5-v0"
NETWORK_KEYS = ("glyphs_crop", "blstats")
UPDATE_EVERY = 64  # RND and E3B train every 64 vector steps (their default)


def bonuses(num_actions: int) -> dict[str, Callable[[], Any]]:
    """The bonuses measured, by name (fresh state for each agent)."""
    return {
        "global_count": lambda: GlobalCountBonus(obs_keys=("glyphs",)),
        "episodic_count": lambda: EpisodicCountBonus(obs_keys=("glyphs",)),
        "rnd": lambda: RNDBonus(obs_keys=NETWORK_KEYS),
        "e3b": lambda: E3BBonus(num_actions, obs_keys=NETWORK_KEYS),
        "product": lambda: ProductBonus(
            GlobalCountBonus(obs_keys=("glyphs",)), E3BBonus(num_actions, obs_keys=NETWORK_KEYS)
        ),
    }


def chat_client(stack: ExitStack, base_url: str | None) -> Any:
    """A client of the local model (its ``LocalServer`` started on ``stack``) or of ``base_url``; no reply cache."""
    if base_url is None:
        server = stack.enter_context(LocalServer(context_tokens=2048))
        return server.client(cache=False, timeout_s=600.0)
    return ChatClient(base_url=base_url, cache=False)


class GatedLabeller:
    """A labeller that asks its inner labeller one message at a time, only while its gate is open.

    ``pause()`` closes the gate and waits for the request in flight; ``stop()`` opens it for good
    and answers the messages not asked yet with no label, so that the worker can close.
    """

    def __init__(self, inner: MessageLabeller) -> None:
        self.inner = inner
        self.gate = threading.Event()
        self.stopped = False
        self.labelled = 0
        self.busy_s = 0.0
        self._busy = threading.Lock()

    def __call__(self, messages: Sequence[str]) -> list[tuple[float | None, str]]:
        out: list[tuple[float | None, str]] = []
        for message in messages:
            while not self.stopped:
                self.gate.wait()
                with self._busy:
                    if self.gate.is_set() and not self.stopped:  # not paused between the wait and the lock
                        started = time.perf_counter()
                        out.extend(self.inner([message]))
                        self.busy_s += time.perf_counter() - started
                        self.labelled += 1
                        break
            else:
                out.append((None, "not asked: the benchmark ended"))
        return out

    def open(self) -> None:
        self.gate.set()

    def pause(self) -> None:
        self.gate.clear()
        with self._busy:  # the request in flight ends
            pass

    def stop(self) -> None:
        self.stopped = True
        self.gate.set()


def make_agent(venv: VecEnv, n_steps: int, seed: int) -> PPO:
    return PPO(
        "MultiInputPolicy",
        venv,
        n_steps=n_steps,
        batch_size=64,
        n_epochs=1,
        policy_kwargs=dict(features_extractor_class=NetHackExtractor),
        seed=seed,
        device="cpu",
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--block-steps", type=int, default=256)
    parser.add_argument("--num-envs", type=int, default=4)
    parser.add_argument("--oni", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--base-url", default=None)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message="pkg_resources")
    start = time.perf_counter()
    n_steps = max(1, args.block_steps // args.num_envs)

    def venv() -> DummyVecEnv:
        return DummyVecEnv([lambda: Monitor(gym.make(ENV_ID)) for _ in range(args.num_envs)])

    num_actions = int(gym.make(ENV_ID).action_space.n)  # type: ignore[attr-defined]
    with ExitStack() as stack:
        agents = {"raw": make_agent(venv(), n_steps, 0)}
        for name, make_bonus in bonuses(num_actions).items():
            wrapped = RewardVecEnvWrapper(venv(), make_bonus(), mode="add", weight=0.1, name=name)
            agents[name] = make_agent(wrapped, n_steps, 0)
        gated = None
        if args.oni:
            gated = GatedLabeller(LLMLabeller(chat_client(stack, args.base_url)))
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            oni = ONIBonus(gated, folder / "labels.sqlite")
            stack.callback(oni.close)
            stack.callback(gated.stop)  # runs first: the worker's batch ends without asking the rest
            oni.worker.submit([message for message, _ in ORACLE_MESSAGES])  # the backlog: labelling never idles
            agents["oni"] = make_agent(RewardVecEnvWrapper(venv(), oni, mode="add", weight=0.1, name="oni"), n_steps, 0)

        def block(name: str, agent: PPO) -> Callable[[], int]:
            def run() -> int:
                if name == "oni" and gated is not None:
                    gated.open()
                before = agent.num_timesteps
                agent.learn(args.block_steps, reset_num_timesteps=False)
                return agent.num_timesteps - before

            return run

        settle = {} if gated is None else {"oni": gated.pause}
        for (
            name,
            agent,
        ) in agents.items():  # warm-up: rollouts, PPO updates and two bonus training rounds (jit compilations)
            if name in settle:
                assert gated is not None
                gated.open()
            agent.learn(2 * UPDATE_EVERY * args.num_envs, reset_num_timesteps=False)
            if name in settle:
                settle[name]()
        labelled_before, busy_before = (0, 0.0) if gated is None else (gated.labelled, gated.busy_s)
        rates = interleaved_rates(
            {name: block(name, agent) for name, agent in agents.items()}, args.rounds, settle=settle
        )
        oni_figures = {}
        if gated is not None:
            oni_figures = {
                "oni_labels_measured": gated.labelled - labelled_before,
                "oni_labelling_s": gated.busy_s - busy_before,
                "oni_backlog": oni.worker.queued,
                "oni_annotator_alive": float(oni.worker.alive),
            }
    figures: dict[str, Any] = {}
    ratios = {}
    for name in agents:
        figures[f"steps_per_s_{name}"] = median(rates[name])
        if name != "raw":
            ratios[name] = median([b / r for b, r in zip(rates[name], rates["raw"], strict=True)])
            figures[f"ratio_{name}"] = ratios[name]
    figures = {
        "ratio": min(ratios.values()),
        "worst": min(ratios, key=ratios.__getitem__),
        **figures,
        **oni_figures,
        "num_envs": args.num_envs,
        "rounds": args.rounds,
        "block_steps": args.block_steps,
        "seconds": time.perf_counter() - start,
    }
    print(
        f"raw {figures['steps_per_s_raw']:.0f} env steps/s; "
        + ", ".join(f"{name} {ratios[name]:.3f}" for name in ratios)
        + f": ratio {figures['ratio']:.3f} ({figures['worst']}, goal >= 0.8)"
    )
    print_figures(figures)
    return figures


if __name__ == "__main__":
    main()
