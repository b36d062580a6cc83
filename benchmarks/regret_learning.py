"""Benchmark: regret learner vs partial-return learner on regret-generated preferences.

Knox et al.'s delivery gridworld, 300 segment pairs (3 steps, random starts and actions)
labelled by a Boltzmann-rational regret teacher (β = 1), 10 seeds vmapped in one program;
a linear reward over the six cell features is learned under the ``regret`` model (exact
value iteration of the candidate reward, differentiated end to end) and under the
``partial_return`` model. Figures: mean scaled return (V^π − V^unif)/(V* − V^unif) of the
policy greedy on each learned reward (1 optimal, > 0.9 near-optimal), the share of seeds
above 0.9, and wall time. Expected (Knox et al., TMLR 2024): the regret learner is
near-optimal, the partial-return learner is not.

Continuous control (``--mujoco``, on by default): the cost of the regret model with a jointly
trained Q network (``ContinuousRegretModel``, 16 probe actions) against the partial-return
model with the same reward network, on HalfCheetah-v5 random-policy fragments (128 pairs ×
50 steps, oracle labels, Adam): seconds per training epoch of each (``continuous_epoch_s_*``),
their ratio (``continuous_cost_ratio``) and the final training accuracy.

    python -m benchmarks.regret_learning [--seeds 10] [--labels 300]

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse

from benchmarks._common import print_figures, single_threaded


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--labels", type=int, default=300)
    parser.add_argument(
        "--mujoco", type=int, default=1, help="also measure the continuous regret model's cost (1) or not (0)"
    )
    args = parser.parse_args(argv)
    single_threaded()
    from experiments.regret_vs_partial_return import Args
    from experiments.regret_vs_partial_return import main as run

    figures: dict = {}
    for learner, short in (("regret", "regret"), ("partial_return", "partial")):
        result = run(
            Args(domain="delivery", teacher="regret", learner=learner, labels=args.labels, num_seeds=args.seeds)
        )
        figures[f"scaled_return_{short}"] = result["scaled_return"]
        figures[f"near_optimal_fraction_{short}"] = result["near_optimal_fraction"]
        figures[f"optimal_action_fraction_{short}"] = result["optimal_action_fraction"]
        figures[f"wall_s_{short}"] = result["wall_s"]
        print(
            f"{learner} learner: scaled return {result['scaled_return']:.3f}, near-optimal {result['near_optimal_fraction']:.2f}, {result['wall_s']:.1f} s"
        )
    figures.update(labels=args.labels, seeds=args.seeds, teacher="regret (rationality 1)", domain="delivery")
    if args.mujoco:
        figures.update(_continuous_cost())
    print_figures(figures)
    return figures


def _continuous_cost(num_pairs: int = 128, length: int = 50, epochs: int = 10) -> dict:
    import time

    import gymnasium as gym
    import jax
    import numpy as np
    import optax

    from rewardlab._types import FragmentPairs
    from rewardlab.preferences import PreferenceModel, RewardTrainer, label, make_teacher
    from rewardlab.rewards import ContinuousRegretModel

    env = gym.make("HalfCheetah-v5")
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=0)
    steps = {"obs": [], "acts": [], "next_obs": [], "rews": []}
    for _ in range(2000):
        action = env.action_space.sample()
        next_obs, reward, terminated, truncated, _ = env.step(action)
        for key, value in zip(steps, (obs, action, next_obs, reward), strict=True):
            steps[key].append(value)
        obs = next_obs if not (terminated or truncated) else env.reset()[0]
    window = rng.integers(0, 2000 - length, size=(num_pairs, 2))[..., None] + np.arange(length)
    data = {key: np.asarray(value, np.float32)[window] for key, value in steps.items()}
    pairs = FragmentPairs(
        data["obs"], data["acts"], data["next_obs"], np.zeros((num_pairs, 2, length), bool), data["rews"]
    )
    prefs = label(pairs, make_teacher("oracle"), rng)
    figures = {}
    for name in ("regret", "partial_return"):
        model = ContinuousRegretModel(
            17, env.action_space.low, env.action_space.high, hidden_sizes=(64, 64), num_probe_actions=16
        )
        trainer = RewardTrainer(model, optax.adam(1e-3), batch_size=32, preference_model=PreferenceModel(name))
        train = lambda params, state, n: trainer.train(params, state, prefs, jax.random.key(1), epochs=n)  # noqa: E731, B023 - used only in this iteration
        params = model.init(jax.random.key(0))
        params, state, _ = train(params, trainer.init(params), 1)  # compile; the held trainer reuses it
        start = time.perf_counter()
        params, state, metrics = train(params, state, epochs)
        short = "regret" if name == "regret" else "partial"
        figures[f"continuous_epoch_s_{short}"] = (time.perf_counter() - start) / epochs
        figures[f"continuous_accuracy_{short}"] = float(metrics["accuracy"][-1])
    figures["continuous_cost_ratio"] = figures["continuous_epoch_s_regret"] / figures["continuous_epoch_s_partial"]
    print(
        f"HalfCheetah: regret {figures['continuous_epoch_s_regret']:.3f} s/epoch vs partial return {figures['continuous_epoch_s_partial']:.3f} s/epoch"
    )
    return figures


if __name__ == "__main__":
    main()
