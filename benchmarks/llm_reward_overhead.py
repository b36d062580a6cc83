"""Benchmark: cost of a sandboxed generated reward (``CodeReward``) on an SB3 DummyVecEnv of 8 HalfCheetah-v5.

Random actions (pre-sampled) step two identical DummyVecEnvs of 8 HalfCheetah-v5: ``raw`` (no
wrapper) and ``wrapped`` (``RewardVecEnvWrapper``, mode="replace", with a ``CodeReward`` of a
hand-written forward-progress reward in the contract's form, computed in its sandbox worker:
one batch of 8 transitions per vector step, one round trip). Short blocks of ``--block-steps``
vector steps run interleaved, ``--rounds`` times, so load from other processes hits both alike.

``ratio`` = wrapped steps/s ÷ raw steps/s of the same round, median over rounds (goal ≥ 0.7);
``reward_call_us`` is one sandboxed call on a batch of 8 alone; ``worker_start_s`` the worker's
start (NumPy import, limits, filter, loading the code).

    python -m benchmarks.llm_reward_overhead [--rounds 30] [--block-steps 200]

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

from benchmarks._common import interleaved_rates, median, print_figures, single_threaded, time_call

single_threaded()

import argparse  # noqa: E402
import time  # noqa: E402

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
from stable_baselines3.common.vec_env import DummyVecEnv  # noqa: E402

from rewardlab.llm import CodeReward, SandboxLimits  # noqa: E402
from rewardlab.wrappers import RewardVecEnvWrapper  # noqa: E402

ENV_ID = "HalfCheetah-v5"
# HalfCheetah-v5's observation 8 is the torso's forward velocity; the control cost is 0.1·‖a‖².
REWARD_CODE = """import numpy as np

def compute_reward(obs, act, next_obs, terminated):
    forward = next_obs[:, 8]
    control = -0.1 * np.sum(np.square(act), axis=1)
    return forward + control, {"forward": forward, "control": control}
"""


def make_venv(num_envs: int, seed: int) -> DummyVecEnv:
    venv = DummyVecEnv([lambda: gym.make(ENV_ID)] * num_envs)
    venv.seed(seed)
    return venv


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-envs", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--block-steps", type=int, default=200, help="vector steps per timed block")
    parser.add_argument("--poll-us", type=float, default=SandboxLimits().poll_us, help="SandboxLimits.poll_us")
    args = parser.parse_args()
    start = time.perf_counter()

    reward = CodeReward(
        REWARD_CODE,
        origin={"by": "hand", "benchmark": "llm_reward_overhead"},
        limits=SandboxLimits(poll_us=args.poll_us),
    )
    started = time.perf_counter()
    reward.sandbox.start()
    worker_start_s = time.perf_counter() - started
    raw = make_venv(args.num_envs, seed=0)
    wrapped = RewardVecEnvWrapper(make_venv(args.num_envs, seed=0), reward, mode="replace")
    action_space = raw.action_space
    rng = np.random.default_rng(0)
    actions = rng.uniform(
        action_space.low, action_space.high, (args.block_steps, args.num_envs, *action_space.shape)
    ).astype(np.float32)

    def block(venv):
        def run() -> int:
            for step_actions in actions:
                venv.step(step_actions)
            return args.block_steps * args.num_envs

        return run

    venvs = {"raw": raw, "wrapped": wrapped}
    for venv in venvs.values():
        venv.reset()
        for step_actions in actions[:50]:  # warm-up
            venv.step(step_actions)
    rates = interleaved_rates({name: block(venv) for name, venv in venvs.items()}, args.rounds)

    obs = raw.reset()
    next_obs, _, dones, _ = raw.step(actions[0])
    reward_call_us = 1e6 * median(time_call(lambda: reward(obs, actions[0], next_obs, dones), repeats=11, number=200))
    for venv in venvs.values():
        venv.close()
    reward.close()

    raw_rate, wrapped_rate = median(rates["raw"]), median(rates["wrapped"])
    round_ratios = [w / r for w, r in zip(rates["wrapped"], rates["raw"], strict=True)]
    raw_step_us, wrapped_step_us = 1e6 * args.num_envs / raw_rate, 1e6 * args.num_envs / wrapped_rate
    figures = {
        "benchmark": "llm_reward_overhead",
        "env": ENV_ID,
        "num_envs": args.num_envs,
        "ratio": median(round_ratios),
        "ratio_of_best": max(rates["wrapped"]) / max(rates["raw"]),
        "raw_steps_per_s": raw_rate,
        "wrapped_steps_per_s": wrapped_rate,
        "raw_step_us": raw_step_us,
        "wrapped_step_us": wrapped_step_us,
        "overhead_us": wrapped_step_us - raw_step_us,
        "reward_call_us": reward_call_us,
        "worker_start_s": worker_start_s,
        "rounds": args.rounds,
        "block_steps": args.block_steps,
        "poll_us": args.poll_us,
        "seconds": time.perf_counter() - start,
    }
    print(
        f"raw {raw_rate:.0f} steps/s, wrapped {wrapped_rate:.0f} steps/s: ratio {figures['ratio']:.3f} (goal >= 0.7); "
        f"per vector step of {args.num_envs} envs: raw {raw_step_us:.0f} us, overhead {figures['overhead_us']:.0f} us "
        f"(sandboxed reward call {reward_call_us:.0f} us alone); worker start {worker_start_s:.2f} s"
    )
    print_figures(figures)
    return figures


if __name__ == "__main__":
    main()
