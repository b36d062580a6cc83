"""Benchmark: ONI's annotator with the local model: labels per second, label hit rate, the learner's steps/s.

Starts the local model (SmolLM2-135M through ``LocalServer``; ``--base-url`` for another
OpenAI-compatible endpoint) and measures:

- ``labels_per_s``: messages labelled per second by :class:`rewardlab.intrinsic.LLMLabeller`
  (ONI's prompt under its JSON schema, greedy, no reply cache), over the hand-written oracle set;
- ``label_hit_rate``: over a PPO run of ``--train-steps`` env steps on ``--env`` with
  :class:`ONIBonus` (hashing model, empty label store at the start), the share of scored
  messages that had a label when scored (the rest got reward 0 while their label was on the way);
- ``ratio``: the learner's env steps/s with ONI (annotator labelling in its thread, the server
  in its process) ÷ without any intrinsic reward, the median of per-round ratios of interleaved
  blocks of ``--block-steps`` steps (``steps_per_s_raw``, ``steps_per_s_oni``), goal ≥ 0.8.

    python -m benchmarks.llm_annotation [--messages 24] [--rounds 3] [--block-steps 512]

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

from benchmarks._common import interleaved_rates, median, print_figures, single_threaded

single_threaded()

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from contextlib import ExitStack  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from stable_baselines3 import PPO  # noqa: E402
from stable_baselines3.common.monitor import Monitor  # noqa: E402
from stable_baselines3.common.vec_env import DummyVecEnv  # noqa: E402

import rewardlab_envs  # noqa: E402
from benchmarks import nle_throughput  # noqa: E402
from rewardlab.intrinsic import ORACLE_MESSAGES, LLMLabeller, ONIBonus  # noqa: E402
from rewardlab.wrappers import RewardVecEnvWrapper  # noqa: E402


def make_agent(env_id: str, num_envs: int, n_steps: int, bonus: Any) -> PPO:
    """nle_throughput's PPO on ``num_envs`` ``env_id`` envs, with ONI's bonus added when given."""
    venv: Any = DummyVecEnv([lambda: Monitor(rewardlab_envs.make_nethack(env_id)) for _ in range(num_envs)])
    if bonus is not None:
        venv = RewardVecEnvWrapper(venv, bonus, mode="add", weight=0.1, name="oni")
    return nle_throughput.make_agent(venv, n_steps, seed=0)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="MiniHack-KeyRoom-S5-v0")
    parser.add_argument("--messages", type=int, default=len(ORACLE_MESSAGES))
    parser.add_argument("--train-steps", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--block-steps", type=int, default=512)
    parser.add_argument("--num-envs", type=int, default=4)
    parser.add_argument("--base-url", default=None)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message="pkg_resources")
    start = time.perf_counter()
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        client = nle_throughput.chat_client(stack, args.base_url)
        labeller = LLMLabeller(client)
        texts = [m for m, _ in ORACLE_MESSAGES][: args.messages]
        labeller(texts[:1])  # warm-up: the server's first request
        started = time.perf_counter()
        labels = labeller(texts)
        labels_per_s = len(texts) / (time.perf_counter() - started)
        parsed = sum(label is not None for label, _ in labels) / len(labels)

        n_steps = max(1, args.block_steps // args.num_envs)
        bonus = ONIBonus(LLMLabeller(client), folder / "labels.sqlite")
        stack.callback(bonus.close)
        agents = {"raw": make_agent(args.env, args.num_envs, n_steps, None)}
        agents["oni"] = make_agent(args.env, args.num_envs, n_steps, bonus)
        for agent in agents.values():
            agent.learn(2 * args.block_steps, reset_num_timesteps=False)  # warm-up

        def block(agent: PPO) -> Any:
            def run() -> int:
                before = agent.num_timesteps
                agent.learn(args.block_steps, reset_num_timesteps=False)
                return agent.num_timesteps - before

            return run

        rates = interleaved_rates({name: block(agent) for name, agent in agents.items()}, args.rounds)
        ratio = median([o / r for o, r in zip(rates["oni"], rates["raw"], strict=True)])
        remaining = args.train_steps - agents["oni"].num_timesteps
        if remaining > 0:
            agents["oni"].learn(remaining, reset_num_timesteps=False)
        stats = bonus.stats()
    figures = {
        "ratio": ratio,
        "labels_per_s": labels_per_s,
        "parsed": parsed,
        "label_hit_rate": stats["label_hit_rate"],
        "labels": stats["labels"],
        "steps_per_s_raw": median(rates["raw"]),
        "steps_per_s_oni": median(rates["oni"]),
        "oni_env_steps": int(agents["oni"].num_timesteps),
        "annotator_alive": stats["annotator_alive"],
        "env": args.env,
        "messages": len(texts),
        "seconds": time.perf_counter() - start,
    }
    print(
        f"{labels_per_s:.2f} labels/s ({parsed:.0%} parsed); label hit rate {stats['label_hit_rate']:.3f} over "
        f"{figures['oni_env_steps']} steps; learner {figures['steps_per_s_oni']:.0f} vs {figures['steps_per_s_raw']:.0f} "
        f"env steps/s: ratio {ratio:.3f} (goal >= 0.8)"
    )
    print_figures(figures)
    return figures


if __name__ == "__main__":
    main()
