"""Benchmark: cost of ``RewardVecEnvWrapper`` on an SB3 DummyVecEnv of 8 HalfCheetah-v5.

Random actions (pre-sampled) step two identical DummyVecEnvs of 8 HalfCheetah-v5: ``raw``
(no wrapper) and ``wrapped`` (``RewardVecEnvWrapper``, mode="replace", with a learned reward:
``as_reward_fn`` of a ``RewardModel`` with inputs (obs, act, next_obs) and a 2×256 MLP).
Short blocks of ``--block-steps`` vector steps run interleaved, raw then wrapped then
wrapped then raw ..., ``--rounds`` times, so load from other processes and drifts hit both
alike; rates are in env steps per second (vector steps × envs).

``ratio`` = wrapped steps/s ÷ raw steps/s of the same round, median over rounds (goal ≥
0.85); ``raw_steps_per_s``/``wrapped_steps_per_s`` are medians; ``ratio_of_best`` divides
each venv's fastest block (load from other processes only adds time). Per vector step, ``overhead_us``
= 1/wrapped − 1/raw splits into ``reward_call_us`` (the reward function alone on a batch of
8 transitions) and ``wrapper_bookkeeping_us`` (the wrapper around a free reward function
over a stub VecEnv that costs nothing: terminal observations, info dicts, checks, mixing).
``reward_call_in_loop_us`` is the mean time inside the reward function while stepping (colder
caches than when timed alone). ``reward_call_gflops`` = forward FLOPs 2·N·Σ d_in·d_out ÷ ``reward_call_us``, next to
``matmul_peak_gflops`` (a jitted float32 1024² ``jnp.dot``, same run, one thread).

    python -m benchmarks.wrapper_overhead [--rounds 60] [--block-steps 200]

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

from benchmarks._common import interleaved_rates, matmul_gflops, median, print_figures, single_threaded, time_call

single_threaded()

import argparse  # noqa: E402
import itertools  # noqa: E402
import time  # noqa: E402

import gymnasium as gym  # noqa: E402
import jax  # noqa: E402
import numpy as np  # noqa: E402
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv  # noqa: E402

from rewardlab.rewards import RewardModel, RewardNetConfig, as_reward_fn  # noqa: E402
from rewardlab.wrappers import RewardVecEnvWrapper  # noqa: E402

ENV_ID = "HalfCheetah-v5"
HIDDEN_SIZES = (256, 256)


class StubVecEnv(VecEnv):
    """A VecEnv that costs (almost) nothing: fixed observations, zero rewards, no episode ends."""

    def __init__(self, num_envs: int, observation_space: gym.Space, action_space: gym.Space) -> None:
        self._obs = np.zeros((num_envs, *observation_space.shape), observation_space.dtype)
        super().__init__(num_envs, observation_space, action_space)

    def reset(self):
        return self._obs.copy()

    def step_async(self, actions) -> None:
        pass

    def step_wait(self):
        infos = [{} for _ in range(self.num_envs)]
        return self._obs.copy(), np.zeros(self.num_envs, np.float32), np.zeros(self.num_envs, bool), infos

    def close(self) -> None:
        pass

    def get_attr(self, attr_name, indices=None):
        return [None] * self.num_envs

    def set_attr(self, attr_name, value, indices=None) -> None:
        pass

    def env_method(self, method_name, *method_args, indices=None, **method_kwargs):
        return [None] * self.num_envs

    def env_is_wrapped(self, wrapper_class, indices=None):
        return [False] * self.num_envs


def make_venv(num_envs: int, seed: int) -> DummyVecEnv:
    venv = DummyVecEnv([lambda: gym.make(ENV_ID)] * num_envs)
    venv.seed(seed)
    return venv


def bookkeeping_us(
    num_envs: int, observation_space: gym.Space, action_space: gym.Space, actions: np.ndarray, repeats: int
) -> float:
    """Per-step time of the wrapper itself: wrapped stub − stub, with a reward function that returns a constant."""
    free_rewards = np.zeros(num_envs, np.float32)
    stub = StubVecEnv(num_envs, observation_space, action_space)
    wrapped = RewardVecEnvWrapper(
        StubVecEnv(num_envs, observation_space, action_space), lambda o, a, n, d: free_rewards
    )
    stub.reset()
    wrapped.reset()
    stub_s = median(time_call(lambda: stub.step(actions), repeats, number=5000))
    wrapped_s = median(time_call(lambda: wrapped.step(actions), repeats, number=5000))
    return 1e6 * (wrapped_s - stub_s)


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-envs", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--block-steps", type=int, default=200, help="vector steps per timed block")
    args = parser.parse_args()
    start = time.perf_counter()

    raw = make_venv(args.num_envs, seed=0)
    observation_space, action_space = raw.observation_space, raw.action_space
    model = RewardModel(
        RewardNetConfig(inputs=("obs", "act", "next_obs"), hidden_sizes=HIDDEN_SIZES), observation_space, action_space
    )
    reward_fn = as_reward_fn(model, model.init(jax.random.key(0)))
    in_loop_seconds = [0.0, 0]  # total time inside the reward function while stepping, calls

    def timed_reward_fn(obs, acts, next_obs, dones):
        start = time.perf_counter()
        rewards = reward_fn(obs, acts, next_obs, dones)
        in_loop_seconds[0] += time.perf_counter() - start
        in_loop_seconds[1] += 1
        return rewards

    # The timed ratio uses the reward function itself; a separate pass below times it inside the loop.
    wrapped = RewardVecEnvWrapper(make_venv(args.num_envs, seed=0), reward_fn, mode="replace")

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
        for step_actions in actions[:50]:  # warm-up: first calls, caches
            venv.step(step_actions)
    rates = interleaved_rates({name: block(venv) for name, venv in venvs.items()}, args.rounds)
    wrapped.set_reward_fn(timed_reward_fn)
    for _ in range(5):
        block(wrapped)()
    reward_call_in_loop_us = 1e6 * in_loop_seconds[0] / in_loop_seconds[1]

    obs = raw.reset()
    next_obs, _, dones, _ = raw.step(actions[0])
    reward_call_us = 1e6 * median(
        time_call(lambda: reward_fn(obs, actions[0], next_obs, dones), repeats=11, number=2000)
    )
    wrapper_us = bookkeeping_us(args.num_envs, observation_space, action_space, actions[0], 11)
    for venv in venvs.values():
        venv.close()
    obs_dim, act_dim = observation_space.shape[0], action_space.shape[0]
    layer_sizes = [2 * obs_dim + act_dim, *HIDDEN_SIZES, 1]
    forward_flops = 2 * args.num_envs * sum(a * b for a, b in itertools.pairwise(layer_sizes))
    peak = matmul_gflops(size=1024, repeats=10)

    raw_rate, wrapped_rate = median(rates["raw"]), median(rates["wrapped"])
    round_ratios = [w / r for w, r in zip(rates["wrapped"], rates["raw"], strict=True)]
    raw_step_us, wrapped_step_us = 1e6 * args.num_envs / raw_rate, 1e6 * args.num_envs / wrapped_rate
    figures = {
        "benchmark": "wrapper_overhead",
        "env": ENV_ID,
        "num_envs": args.num_envs,
        "ratio": median(round_ratios),
        "ratio_of_medians": wrapped_rate / raw_rate,
        "ratio_quartiles": [float(q) for q in np.percentile(round_ratios, [25, 75])],
        # Each venv's fastest block: load from other processes only adds time, so on a shared
        # machine the fastest blocks come closest to the code's own cost.
        "ratio_of_best": max(rates["wrapped"]) / max(rates["raw"]),
        "raw_steps_per_s": raw_rate,
        "wrapped_steps_per_s": wrapped_rate,
        "raw_step_us": raw_step_us,
        "wrapped_step_us": wrapped_step_us,
        "overhead_us": wrapped_step_us - raw_step_us,
        "reward_call_us": reward_call_us,
        "reward_call_in_loop_us": reward_call_in_loop_us,
        "wrapper_bookkeeping_us": wrapper_us,
        "reward_call_gflops": forward_flops / reward_call_us / 1e3,
        "matmul_peak_gflops": peak,
        "rounds": args.rounds,
        "block_steps": args.block_steps,
        "seconds": time.perf_counter() - start,
    }
    print(
        f"raw {raw_rate:.0f} steps/s, wrapped {wrapped_rate:.0f} steps/s: ratio {figures['ratio']:.3f} (goal >= 0.85); "
        f"per vector step of {args.num_envs} envs: raw {raw_step_us:.0f} us, overhead {figures['overhead_us']:.1f} us "
        f"(reward call {reward_call_us:.1f} us alone, {reward_call_in_loop_us:.1f} us in the loop, "
        f"at {figures['reward_call_gflops']:.1f} GFLOP/s of a {peak:.1f} GFLOP/s matmul peak; "
        f"wrapper bookkeeping {wrapper_us:.1f} us)"
    )
    print_figures(figures)
    return figures


if __name__ == "__main__":
    main()
