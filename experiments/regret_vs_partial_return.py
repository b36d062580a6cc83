"""Regret vs partial return: which preference model, for teaching and for learning, recovers the reward?

Knox et al. ("Models of human preference for learning reward functions", TMLR 2024) argue
that people judge segments by their regret, −Σ_t A*(s_t, a_t), not by their partial return
Σ_t r_t, and that a learner assuming the regret model recovers a reward with the same
optimal behaviour from fewer preferences, while the partial-return learner may not recover
an equivalent reward at all. This study repeats the synthetic-preference experiment:

* domains: Knox's 10×10 delivery gridworld (``num_seeds`` seeds) or ``num_mdps`` random
  delivery MDPs (random boards and feature weights, one seed each);
* segment pairs: random start state, uniformly random actions, ``segment_length`` = 3 steps;
* teacher: labels from the ``regret`` or the ``partial_return`` model of the true reward,
  Boltzmann-rational with ``teacher_rationality`` β (P = logistic(β Δ));
* learner: the linear reward r = w·φ over the six cell features, trained by Bradley–Terry
  under the ``regret`` model (exact value iteration of the candidate reward, differentiated
  end to end) or the ``partial_return`` model, full batch with Adam;
* evaluation: scaled return (V^π − V^unif)/(V* − V^unif) of the policy greedy on the
  learned reward (> 0.9: near-optimal), the same for acting greedily on the learned function
  as an advantage, and whether the learned reward is *equivalent* (its optimal action is
  optimal in every non-terminal state).

Every (MDP, seed) is one lane of a single ``jax.vmap``: one jitted program per run.

Run one: ``python -m experiments.regret_vs_partial_return --teacher regret --learner regret``;
sweep: ``rewardlab sweep experiments/regret_vs_partial_return.toml``; figure:
``python -m experiments.regret_vs_partial_return plot runs/sweeps/regret_vs_partial_return``.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from rewardlab.preferences import (
    PreferenceModel,
    TabularRegretModel,
    evaluate_tabular_reward,
    fit_tabular_reward,
    make_teacher,
    sample_tabular_pairs,
    successor_feature_library,
    tabular_advantage_fn,
)
from rewardlab.sweeps import Logger, check_choices, parse_args
from rewardlab.tabular import linear_reward, tabular_reward
from rewardlab_envs import TabularMDP, delivery_mdp, random_delivery_mdp


@dataclasses.dataclass(frozen=True)
class Args:
    """Arguments of the regret-vs-partial-return study.

    Attributes:
        domain: ``delivery`` (Knox's board) or ``random`` (random delivery MDPs).
        teacher: preference model that generates the labels: ``regret`` or ``partial_return``.
        learner: preference model the learner assumes: ``regret`` or ``partial_return``.
        labels: labelled segment pairs per (MDP, seed), the label budget.
        num_mdps: random MDPs (``domain = random``).
        num_seeds: seeds per MDP (segments, labels, initialisation).
        segment_length: steps per segment (Knox et al.: 3).
        teacher_rationality: rationality β of the teacher, P = logistic(β Δ); 0 means a noiseless teacher.
        parameterization: ``linear`` (r = w·φ) or ``table`` (free r(s, a, s')).
        temperature: τ of the regret learner's soft value iteration (0: hard max).
        value_model: the regret learner's V*/Q* of the candidate reward: ``exact`` (value iteration) or
            ``successor_features`` (Knox et al.'s softmax over a library of random greedy policies).
        library_size: policies in the successor-feature library.
        num_sweeps: value-iteration sweeps per planning call of the regret learner.
        exact_values: after the sweeps, solve the greedy policy's values exactly (the regret
            learner's advantages then have the teacher's precision; the sweeps alone leave an
            error up to γ^num_sweeps·max|V|, 0.92·max|V| for 80 sweeps at the delivery board's γ = 0.999).
        eval_sweeps: value-iteration sweeps of the teacher's true advantage and of the evaluation.
        num_steps: full-batch Adam steps.
        learning_rate: Adam step size.
        board_size: side of the random boards.
        log_every: steps between logged points of the training-loss curve.
        seed: base seed of the MDPs (random domain) and the segment pairs.
    """

    domain: Literal["delivery", "random"] = "delivery"
    teacher: Literal["regret", "partial_return"] = "regret"
    learner: Literal["regret", "partial_return"] = "regret"
    labels: int = 300
    num_mdps: int = 30
    num_seeds: int = 10
    segment_length: int = 3
    teacher_rationality: float = 1.0
    parameterization: Literal["linear", "table"] = "linear"
    temperature: float = 0.0
    value_model: Literal["exact", "successor_features"] = "exact"
    library_size: int = 64
    num_sweeps: int = 80
    exact_values: bool = True
    eval_sweeps: int = 1000
    num_steps: int = 400
    learning_rate: float = 0.5
    board_size: int = 10
    log_every: int = 25
    seed: int = 0

    def __post_init__(self) -> None:
        check_choices(self)
        for name in (
            "labels",
            "num_mdps",
            "num_seeds",
            "segment_length",
            "num_sweeps",
            "eval_sweeps",
            "num_steps",
            "log_every",
            "board_size",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
        if self.teacher_rationality < 0:
            raise ValueError(f"teacher_rationality: expected >= 0 (0: noiseless), got {self.teacher_rationality!r}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate: expected > 0, got {self.learning_rate!r}")


def _mdps(args: Args) -> list[TabularMDP]:
    if args.domain == "delivery":
        return [delivery_mdp()]
    return [random_delivery_mdp(args.seed * 1000 + index, args.board_size) for index in range(args.num_mdps)]


def _teacher(args: Args, mdp: TabularMDP) -> Any:
    rationality = float("inf") if args.teacher_rationality == 0 else float(args.teacher_rationality)
    if args.teacher == "regret":
        return make_teacher(
            "regret", advantage_fn=tabular_advantage_fn(mdp, num_sweeps=args.eval_sweeps), rationality=rationality
        )
    return make_teacher("oracle", rationality=rationality)


def _stack(trees: list[Any]) -> Any:
    return jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *trees)


def main(args: Args, logger: Logger | None = None) -> dict[str, float]:
    """Train the learner on the teacher's labels in every (MDP, seed); return the mean figures."""
    start = time.perf_counter()
    mdps = _mdps(args)
    seeds_per_mdp = args.num_seeds if args.domain == "delivery" else 1
    pairs_all, labels_all = [], []
    for index, mdp in enumerate(mdps):
        keys = jax.random.split(jax.random.key(args.seed * 7919 + index), seeds_per_mdp)
        sample = jax.vmap(
            lambda key, mdp=mdp: sample_tabular_pairs(
                mdp.transitions,
                mdp.reward,
                mdp.initial_state_dist,
                key,
                args.labels,
                args.segment_length,
                None,
                mdp.terminal,
            )
        )
        pairs = jax.tree.map(np.asarray, sample(keys))
        teacher = _teacher(args, mdp)
        rng = np.random.default_rng([args.seed, index])
        labels = [
            teacher(jax.tree.map(lambda x, j=j: x[j], pairs), rng) for j in range(seeds_per_mdp)
        ]  # one call per seed
        pairs_all.append(pairs)
        labels_all.append(np.stack(labels))
    pairs = _stack(pairs_all)  # [M, seeds, B, 2, L]
    labels = jnp.asarray(np.stack(labels_all))  # [M, seeds, B]
    arrays = _stack(mdps)
    discount = float(mdps[0].discount)

    def lane(mdp: TabularMDP, library: Any, pairs: Any, labels: jax.Array, key: jax.Array) -> tuple[jax.Array, Any]:
        reward = (
            linear_reward(mdp.features) if args.parameterization == "linear" else tabular_reward(mdp.transitions.shape)
        )
        model = TabularRegretModel(
            reward,
            mdp.transitions,
            discount,  # the planner's γ stays a static Python float
            value_model=args.value_model,
            temperature=args.temperature,
            num_sweeps=args.num_sweeps,
            exact_values=args.exact_values,
            library=library,
        )
        params, metrics = fit_tabular_reward(
            model,
            pairs,
            labels,
            key,
            preference_model=PreferenceModel(args.learner),
            num_steps=args.num_steps,
            learning_rate=args.learning_rate,
        )
        evaluation = evaluate_tabular_reward(
            mdp.transitions,
            mdp.reward,
            reward.table(params),
            discount,
            mdp.initial_state_dist,
            mdp.terminal,
            num_sweeps=args.eval_sweeps,
        )
        return metrics["loss"], evaluation

    per_seed = jax.vmap(lane, in_axes=(None, None, 0, 0, 0))

    def per_mdp_lane(mdp_arrays: TabularMDP, pairs: Any, labels: jax.Array, key: jax.Array) -> tuple[jax.Array, Any]:
        library_key, seeds_key = jax.random.split(key)
        library = None
        if args.value_model == "successor_features":
            library = successor_feature_library(
                mdp_arrays.transitions,
                mdp_arrays.features,
                discount,
                library_key,
                args.library_size,
                num_sweeps=args.num_sweeps,
            )
        return per_seed(mdp_arrays, library, pairs, labels, jax.random.split(seeds_key, seeds_per_mdp))

    per_mdp = jax.vmap(per_mdp_lane)
    keys = jax.random.split(jax.random.key(args.seed + 1), len(mdps))
    losses, evaluation = jax.jit(per_mdp)(arrays, pairs, labels, keys)
    losses = np.asarray(losses).reshape(-1, args.num_steps)
    if logger is not None:
        for step in range(0, args.num_steps, args.log_every):
            logger.log(step, loss=float(losses[:, step].mean()))
    scaled = np.asarray(evaluation.scaled_return, np.float64).ravel()
    as_advantage = np.asarray(evaluation.scaled_return_as_advantage, np.float64).ravel()
    optimal_actions = np.asarray(evaluation.optimal_action_fraction, np.float64).ravel()
    finite = np.isfinite(scaled)  # V* = V^unif (a degenerate MDP) leaves the scaled return undefined
    return {
        "scaled_return": float(np.mean(scaled[finite])),
        "scaled_return_median": float(np.median(scaled[finite])),
        "near_optimal_fraction": float(np.mean(scaled[finite] > 0.9)),
        "equivalent_fraction": float(np.mean(optimal_actions >= 0.999)),
        "optimal_action_fraction": float(np.mean(optimal_actions)),
        "scaled_return_as_advantage": float(np.mean(as_advantage[np.isfinite(as_advantage)])),
        "final_loss": float(losses[:, -1].mean()),
        "lanes": int(scaled.size),
        "undefined_lanes": int((~finite).sum()),
        "wall_s": time.perf_counter() - start,
    }


def plot(sweep_dir: str, out_path: str | None = None) -> str:
    """Median scaled return and near-optimal share vs preferences: a line per (teacher, learner), a column per domain."""
    from rewardlab.sweeps import load_results

    results = load_results(sweep_dir)
    return plot_results(results[results["status"] == "ok"], out_path or f"{sweep_dir}/scaled_return.png")


def plot_results(results: Any, out_path: str) -> str:
    """The figure of :func:`plot` from a results table (columns domain, teacher, learner, labels, metrics)."""

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rewardlab._io import atomic_write_figure

    domains = sorted(results["domain"].unique())
    colors = {
        ("regret", "regret"): "C3",
        ("regret", "partial_return"): "C2",
        ("partial_return", "regret"): "C1",
        ("partial_return", "partial_return"): "C0",
    }
    metrics = (
        ("scaled_return_median", "median scaled return"),
        ("near_optimal_fraction", "share with scaled return > 0.9"),
    )
    figure, axes = plt.subplots(
        len(metrics), len(domains), figsize=(5 * len(domains), 3.4 * len(metrics)), squeeze=False
    )
    for column, domain in enumerate(domains):
        part = results[results["domain"] == domain]
        for (teacher, learner), group in part.groupby(["teacher", "learner"]):
            group = group.sort_values("labels")
            for row, (metric, _) in enumerate(metrics):
                axes[row][column].plot(
                    group["labels"],
                    group[metric],
                    marker="o",
                    color=colors[teacher, learner],
                    label=f"{teacher} labels, {learner} learner",
                )
        for row, (_, name) in enumerate(metrics):
            ax = axes[row][column]
            ax.set_xscale("log")
            ax.set_xlabel("preferences")
            ax.set_ylabel(name)
            ax.set_title(domain)
            if row == 0:
                ax.set_ylim(-3, 1.1)
                ax.axhline(0.9, color="grey", lw=0.5, ls="--")
    axes[-1][0].legend(fontsize=7)
    figure.tight_layout()
    atomic_write_figure(out_path, figure, dpi=100, close=True)
    return out_path


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "plot":
        print(plot(*sys.argv[2:4]))
    else:
        print(main(parse_args(Args)))
