"""Benchmark: PPO env steps/s on MiniHack with ``NetHackExtractor``, raw and with each exploration bonus.

PPO (``MultiInputPolicy`` with :class:`rewardlab.rl.NetHackExtractor`, ``n_steps`` × envs per
rollout, one epoch of minibatch 64) learns on a DummyVecEnv of ``--num-envs``
``rewardlab/MiniHack-Room-5x5-v0`` envs: ``raw`` (no wrapper) and one agent per bonus of
:mod:`rewardlab.intrinsic`, each behind ``RewardVecEnvWrapper(mode="add", weight=0.1)``:
global and episodic counts over the glyph map, RND and E3B over the glyph crop and the
bottom-line stats, and the product of global counts and E3B. Blocks of ``--block-steps`` env
steps (rollouts and updates) run interleaved, ``--rounds`` times, after a warm-up of two
training rounds of the bonuses' networks (their jit compilations), so load from other processes
hits every agent alike; rates are env steps per second, rollout and PPO update together.

``ratio`` = the lowest, over the bonuses, of the median per-round ratio bonus ÷ raw (goal ≥ 0.8);
``ratio_<name>`` and ``steps_per_s_<name>`` give each one.

    python -m benchmarks.nle_throughput [--rounds 3] [--block-steps 256] [--num-envs 4]

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

from benchmarks._common import interleaved_rates, median, print_figures, single_threaded

single_threaded()

import argparse  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import gymnasium as gym  # noqa: E402
from stable_baselines3 import PPO  # noqa: E402
from stable_baselines3.common.monitor import Monitor  # noqa: E402
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv  # noqa: E402

import rewardlab_envs  # noqa: E402, F401  (registers rewardlab/MiniHack-…)
from rewardlab.intrinsic import E3BBonus, EpisodicCountBonus, GlobalCountBonus, ProductBonus, RNDBonus  # noqa: E402
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
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message="pkg_resources")
    start = time.perf_counter()
    n_steps = max(1, args.block_steps // args.num_envs)

    def venv() -> DummyVecEnv:
        return DummyVecEnv([lambda: Monitor(gym.make(ENV_ID)) for _ in range(args.num_envs)])

    num_actions = int(gym.make(ENV_ID).action_space.n)  # type: ignore[attr-defined]
    agents = {"raw": make_agent(venv(), n_steps, 0)}
    for name, make_bonus in bonuses(num_actions).items():
        wrapped = RewardVecEnvWrapper(venv(), make_bonus(), mode="add", weight=0.1, name=name)
        agents[name] = make_agent(wrapped, n_steps, 0)

    def block(agent: PPO) -> Callable[[], int]:
        def run() -> int:
            before = agent.num_timesteps
            agent.learn(args.block_steps, reset_num_timesteps=False)
            return agent.num_timesteps - before

        return run

    for agent in agents.values():  # warm-up: rollouts, PPO updates and two bonus training rounds (jit compilations)
        agent.learn(2 * UPDATE_EVERY * args.num_envs, reset_num_timesteps=False)
    rates = interleaved_rates({name: block(agent) for name, agent in agents.items()}, args.rounds)
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
