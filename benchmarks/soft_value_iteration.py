"""Benchmark: soft value iteration, one reward at a time vs a vmapped batch of 256 candidate rewards.

The regret preference model plans with every candidate reward it scores, so planning many
rewards at once is its inner loop. On two MDPs — Knox et al.'s 10×10 delivery gridworld
(S = 100, A = 4; candidate rewards r = φ·w with random w ∈ R⁶) and a random MDP with
S = 1000, A = 4, 5 successors per (s, a) (dense T; candidate rewards r(s, a) ~ N(0, 1)) —
``rewardlab.tabular.value_iteration`` runs 100 soft sweeps (τ = 1):

* ``single``: one jitted call per reward, called in a Python loop (``single_rewards`` calls,
  timed after compilation);
* ``batched``: ``jax.jit(jax.vmap(value_iteration))`` over 256 rewards in one call.

``vmap_speedup`` = 256 × (time per single call) ÷ (time of the batched call); time per sweep
= call time ÷ 100. Goal: ``vmap_speedup`` ≥ 20 (on the 1000-state MDP, where the batch turns
256 matrix-vector products per sweep into one matrix product). The figures use one CPU
thread (``single_threaded``) and are CPU seconds of this process (``time.process_time``), so
other load on a shared machine does not distort the ratio; wall-clock ratios are reported too.

    python -m benchmarks.soft_value_iteration [--repeats 3] [--single-rewards 16]

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import time

from benchmarks._common import median, print_figures, single_threaded, time_call

BATCH = 256
SWEEPS = 100
TEMPERATURE = 1.0


def _cpu_seconds(fn, repeats: int) -> list[float]:
    """CPU seconds of this process per call of ``fn`` (``repeats`` samples)."""
    samples = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        samples.append(time.process_time() - start)
    return samples


def _measure(name: str, transitions, rewards, discount: float, repeats: int, single_rewards: int) -> dict:
    import jax

    from rewardlab.tabular import value_iteration

    def plan(transitions, reward):
        return value_iteration(transitions, reward, discount, num_sweeps=SWEEPS, temperature=TEMPERATURE).state_values

    single = jax.jit(plan)
    batched = jax.jit(jax.vmap(plan, in_axes=(None, 0)))
    single(transitions, rewards[0]).block_until_ready()
    batched(transitions, rewards).block_until_ready()

    def run_single() -> None:
        out = [single(transitions, rewards[index]) for index in range(single_rewards)]
        jax.block_until_ready(out)

    run_batched = lambda: batched(transitions, rewards).block_until_ready()  # noqa: E731
    wall_single_s = median(time_call(run_single, repeats)) / single_rewards
    wall_batched_s = median(time_call(run_batched, repeats))
    single_s = median(_cpu_seconds(run_single, repeats)) / single_rewards
    batched_s = median(_cpu_seconds(run_batched, repeats))
    figures = {
        f"{name}_single_call_ms": single_s * 1e3,
        f"{name}_single_sweep_us": single_s / SWEEPS * 1e6,
        f"{name}_batched_call_ms": batched_s * 1e3,
        f"{name}_batched_sweep_us_per_reward": batched_s / SWEEPS / BATCH * 1e6,
        f"{name}_vmap_speedup": BATCH * single_s / batched_s,
        f"{name}_vmap_speedup_wall": BATCH * wall_single_s / wall_batched_s,
    }
    print(
        f"{name}: single {single_s * 1e3:.2f} ms/call ({single_s / SWEEPS * 1e6:.1f} µs/sweep), batched {BATCH} "
        f"{batched_s * 1e3:.1f} ms/call, speedup {figures[f'{name}_vmap_speedup']:.1f}"
    )
    return figures


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--single-rewards", type=int, default=16, help="rewards planned one at a time per repeat")
    args = parser.parse_args(argv)
    single_threaded()
    import jax
    import jax.numpy as jnp

    from rewardlab_envs import delivery_mdp, random_mdp

    delivery = delivery_mdp()
    weights = jax.random.normal(jax.random.key(0), (BATCH, delivery.features.shape[-1]))
    delivery_rewards = jnp.einsum("sapk,bk->bsap", jnp.asarray(delivery.features), weights)
    figures = _measure(
        "delivery",
        jnp.asarray(delivery.transitions),
        delivery_rewards,
        delivery.discount,
        args.repeats,
        args.single_rewards,
    )
    large = random_mdp(1000, 4, seed=0, branching=5)
    large_rewards = jax.random.normal(jax.random.key(1), (BATCH, 1000, 4))
    figures.update(
        _measure(
            "random1000",
            jnp.asarray(large.transitions),
            large_rewards,
            large.discount,
            args.repeats,
            args.single_rewards,
        )
    )
    figures.update(
        vmap_speedup=figures["random1000_vmap_speedup"],
        goal="vmap_speedup >= 20",
        batch=BATCH,
        sweeps=SWEEPS,
        temperature=TEMPERATURE,
        device=str(jax.devices()[0]),
    )
    print_figures(figures)
    return figures


if __name__ == "__main__":
    main()
