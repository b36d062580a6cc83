"""BARFI on the detour gridworld: a misaligned auxiliary reward breaks the naive sum, not the learned blend.

The task (:func:`rewardlab_envs.detour_gridworld`): a sparse primary reward (+1 for entering
the goal) and a designer's auxiliary reward, either ``good`` (a distance-to-goal heuristic) or
``bad`` (paying for entering a detour cell, which the naive sum circles for ever). Four ways to
use the two rewards, each trained with the same exact softmax policy-gradient learner and the
same budget (``outer_iterations`` × ``inner_steps`` gradient steps):

* ``primary``: r_p alone;
* ``naive``: r_p + r_aux;
* ``shaping``: r_p + γ h(s') − h(s), potential-based shaping with the heuristic h as potential;
* ``barfi``: r_φ = φ1 + φ2·r_p + φ3·r_aux with a learned γ_φ, starting at the naive sum, φ
  learned by the bilevel loop (:func:`rewardlab.bilevel.barfi`).

Every method runs ``seeds`` seeds (random initial policies) in one vmapped call. Reported:
the primary return J_p under the environment's discount, as a fraction of the optimal policy's,
with 95 % bootstrap intervals over seeds; learning curves; BARFI's learned coefficients
(averaged over the state-actions the policy visits) and γ_φ over outer iterations.

Run: ``python -m experiments.barfi --auxiliary both`` (figures and a table in the run folder;
docs/barfi.md has them), or as a sweep: ``rewardlab sweep experiments/barfi.toml``.

References:
    Gupta, Chandak, Jordan, Thomas and da Silva, "Behavior Alignment via Reward Function
    Optimization", NeurIPS 2023.
    Ng, Harada and Russell, "Policy invariance under reward transformations", ICML 1999.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Literal

import jax
import numpy as np

from rewardlab._io import atomic_write_figure, atomic_write_json
from rewardlab.bilevel import BarfiConfig, BarfiResult, barfi, optimal_primary_return, tabular_problem
from rewardlab.shaping import potential_shaping
from rewardlab.sweeps import Logger, check_choices, parse_args, stratified_bootstrap_ci
from rewardlab_envs import detour_gridworld

METHODS = ("primary", "naive", "shaping", "barfi")
BASELINE_COEFFICIENTS = {"primary": (0.0, 1.0, 0.0), "naive": (0.0, 1.0, 1.0), "shaping": (0.0, 1.0, 1.0)}


@dataclasses.dataclass(frozen=True)
class Args:
    """Arguments of the BARFI study.

    Attributes:
        auxiliary: the auxiliary reward: ``good``, ``bad``, or ``both`` (one after the other).
        hypergradient: BARFI's outer gradient: ``neumann``, ``cg`` or ``unrolled``.
        seeds: seeds per method (a vmap axis), from ``seed`` on.
        seed: first seed.
        outer_iterations: outer updates of φ (and points of the learning curves).
        inner_steps: inner policy-gradient steps per outer iteration.
        learning_rate: inner step size.
        outer_learning_rate: Adam step size of φ.
        neumann_terms: Neumann-series terms of the implicit gradient.
        horizon: steps of the occupancy measure.
        scale: the auxiliary reward's scale c.
        initial_policy_scale: std of the random initial policy logits.
        out_dir: parent folder of the run folder.
        run_name: run folder name; empty for the default, which encodes the design and seeds.
        figures: draw the learning-curve and coefficient figures.
    """

    auxiliary: Literal["good", "bad", "both"] = "both"
    hypergradient: Literal["neumann", "cg", "unrolled"] = "neumann"
    seeds: int = 8
    seed: int = 0
    outer_iterations: int = 100
    inner_steps: int = 20
    learning_rate: float = 5.0
    outer_learning_rate: float = 0.1
    neumann_terms: int = 10
    horizon: int = 50
    scale: float = 0.1
    initial_policy_scale: float = 1.0
    out_dir: Path = Path("runs")
    run_name: str = ""
    figures: bool = True

    def __post_init__(self) -> None:
        check_choices(self)
        for name in ("seeds", "outer_iterations", "inner_steps", "neumann_terms", "horizon"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "neumann_terms" else 1):
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")

    @property
    def name(self) -> str:
        """The run folder's name: environment, auxiliary reward, outer gradient and seeds."""
        return (
            self.run_name
            or f"barfi-detour-{self.auxiliary}-{self.hypergradient}-seeds{self.seed}-{self.seed + self.seeds - 1}"
        )

    def config(self, hypergradient: str) -> BarfiConfig:
        """The loop's settings for one method (``"none"`` for the fixed-reward baselines)."""
        unroll = min(10, self.inner_steps)
        return BarfiConfig(
            outer_iterations=self.outer_iterations,
            inner_steps=self.inner_steps,
            learning_rate=self.learning_rate,
            outer_learning_rate=self.outer_learning_rate,
            hypergradient=hypergradient,  # type: ignore[arg-type]
            neumann_terms=self.neumann_terms,
            unroll_steps=unroll,
            horizon=self.horizon,
            initial_policy_scale=self.initial_policy_scale,
        )


def run_methods(args: Args, auxiliary: str) -> tuple[dict[str, BarfiResult], float, np.ndarray]:
    """Every method over the seeds on one auxiliary reward.

    Returns:
        The results per method, the optimal policy's primary return, and BARFI's final φ3
        averaged over the state-actions where the auxiliary reward pays (``[N]``).
    """
    task = detour_gridworld(auxiliary, scale=args.scale)
    mdp = task.mdp
    problem = tabular_problem(mdp.transitions, mdp.initial_state_dist, mdp.reward, task.auxiliary, mdp.discount)
    alive = mdp.discount * (1.0 - np.asarray(mdp.terminal, np.float32))
    shaping = potential_shaping(0.0, task.potential[:, None, None], task.potential[None, None, :], alive[None, None, :])
    shaping = np.where(np.asarray(mdp.transitions) > 0, np.asarray(shaping), 0.0)
    shaped = tabular_problem(mdp.transitions, mdp.initial_state_dist, mdp.reward, shaping, mdp.discount)
    keys = jax.random.split(jax.random.key(args.seed), args.seeds)
    num_inputs = int(np.prod(problem.primary.shape))
    fixed = args.config("none")
    results = {}
    for method in METHODS:
        if method == "barfi":
            results[method] = barfi(problem, args.config(args.hypergradient), keys)
        else:
            start = np.broadcast_to(np.asarray(BASELINE_COEFFICIENTS[method], np.float32), (num_inputs, 3))
            results[method] = barfi(shaped if method == "shaping" else problem, fixed, keys, blend_params=start)
    results = jax.device_get(results)
    pays = np.asarray(problem.auxiliary) != 0  # [S, A]
    final_phi3 = np.asarray(results["barfi"].params.blend)[..., 2].reshape((args.seeds, *pays.shape))
    return results, float(optimal_primary_return(problem, args.horizon)), final_phi3[:, pays].mean(axis=1)


def _interval(values: np.ndarray) -> tuple[float, float, float]:
    interval = stratified_bootstrap_ci(np.asarray(values, np.float64), statistic=lambda x: np.mean(x, axis=-1))
    return float(interval.estimate), float(interval.low), float(interval.high)


def plot_study(path: Path, curves: dict[str, dict[str, np.ndarray]], optimum: dict[str, float]) -> None:
    """Primary return (fraction of optimal) against outer iterations, one panel per auxiliary reward."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 3.6), dpi=120, squeeze=False)
    for ax, (auxiliary, per_method) in zip(axes[0], curves.items(), strict=True):
        for method, returns in per_method.items():
            fraction = returns / optimum[auxiliary]  # [N, I]
            mean = fraction.mean(axis=0)
            low, high = np.percentile(fraction, [2.5, 97.5], axis=0)
            steps = np.arange(1, fraction.shape[1] + 1)
            ax.plot(steps, mean, label=method)
            ax.fill_between(steps, low, high, alpha=0.2)
        ax.set_title(f"{auxiliary} auxiliary reward")
        ax.set_xlabel("outer iteration")
        ax.set_ylim(-0.05, 1.05)
    axes[0][0].set_ylabel("primary return / optimal")
    axes[0][-1].legend(loc="lower right")
    fig.tight_layout()
    atomic_write_figure(path, fig, close=True)


def plot_coefficients(path: Path, learned: dict[str, BarfiResult]) -> None:
    """BARFI's visited-average (φ1, φ2, φ3) and γ_φ over outer iterations, mean ± range over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(learned), figsize=(5 * len(learned), 3.6), dpi=120, squeeze=False)
    for ax, (auxiliary, result) in zip(axes[0], learned.items(), strict=True):
        series = {
            "φ1 (bias)": np.asarray(result.coefficients)[..., 0],
            "φ2 (× r_p)": np.asarray(result.coefficients)[..., 1],
            "φ3 (× r_aux)": np.asarray(result.coefficients)[..., 2],
            "γ_φ": np.asarray(result.discount),
        }
        for label, values in series.items():
            steps = np.arange(1, values.shape[1] + 1)
            ax.plot(steps, values.mean(axis=0), label=label)
            ax.fill_between(steps, values.min(axis=0), values.max(axis=0), alpha=0.2)
        ax.set_title(f"learned blend, {auxiliary} auxiliary reward")
        ax.set_xlabel("outer iteration")
    axes[0][-1].legend(loc="best")
    fig.tight_layout()
    atomic_write_figure(path, fig, close=True)


def main(args: Args, logger: Logger | None = None) -> dict[str, Any]:
    """Run the study; return the summary (also ``summary.json`` and a Markdown table in the run folder).

    Without a ``logger`` the run folder is ``out_dir/<name>``; a sweep's logger brings its own.
    Logged curves: ``<auxiliary>/<method>/primary_fraction`` (mean over seeds) per outer
    iteration and BARFI's ``<auxiliary>/barfi/phi{1,2,3}`` and ``discount``.
    """
    start = time.perf_counter()
    run_dir = logger.run_dir if logger is not None and logger.run_dir is not None else Path(args.out_dir) / args.name
    run_dir.mkdir(parents=True, exist_ok=True)
    auxiliaries = ("good", "bad") if args.auxiliary == "both" else (args.auxiliary,)
    summary: dict[str, Any] = {"hypergradient": args.hypergradient, "seeds": args.seeds, "auxiliary": args.auxiliary}
    curves: dict[str, dict[str, np.ndarray]] = {}
    optimum: dict[str, float] = {}
    learned: dict[str, BarfiResult] = {}
    rows = []
    for auxiliary in auxiliaries:
        results, optimum[auxiliary], phi3_where_paid = run_methods(args, auxiliary)
        curves[auxiliary] = {method: np.asarray(result.primary_return) for method, result in results.items()}
        learned[auxiliary] = results["barfi"]
        summary[f"{auxiliary}/optimal_return"] = optimum[auxiliary]
        for method, result in results.items():
            fraction = np.asarray(result.primary_return)[:, -1] / optimum[auxiliary]
            estimate, low, high = _interval(fraction)
            summary[f"{auxiliary}/{method}/primary_fraction"] = estimate
            summary[f"{auxiliary}/{method}/primary_fraction_low"] = low
            summary[f"{auxiliary}/{method}/primary_fraction_high"] = high
            summary[f"{auxiliary}/{method}/diverged"] = int(np.sum(result.diverged))
            rows.append(
                f"| {auxiliary} | {method} | {estimate:.3f} [{low:.3f}, {high:.3f}] | {int(np.sum(result.diverged))} |"
            )
            if logger is not None:
                mean_curve = np.asarray(result.primary_return).mean(axis=0) / optimum[auxiliary]
                for step, value in enumerate(mean_curve):
                    logger.log(step, **{f"{auxiliary}/{method}/primary_fraction": float(value)})
        final = np.asarray(results["barfi"].coefficients)[:, -1]  # [N, 3]
        summary[f"{auxiliary}/barfi/coefficients"] = final.mean(axis=0).round(4).tolist()
        summary[f"{auxiliary}/barfi/phi3_where_auxiliary_pays"] = float(phi3_where_paid.mean())
        summary[f"{auxiliary}/barfi/discount"] = float(np.asarray(results["barfi"].discount)[:, -1].mean())
        if logger is not None:
            coefficients = np.asarray(results["barfi"].coefficients).mean(axis=0)
            discounts = np.asarray(results["barfi"].discount).mean(axis=0)
            for step in range(coefficients.shape[0]):
                logger.log(
                    step,
                    **{f"{auxiliary}/barfi/phi{k + 1}": float(coefficients[step, k]) for k in range(3)},
                    **{f"{auxiliary}/barfi/discount": float(discounts[step])},
                )
    table = "\n".join(
        [
            "| auxiliary reward | method | final primary return / optimal (95 % CI) | diverged seeds |",
            "|---|---|---|---|",
            *rows,
        ]
    )
    (run_dir / "table.md").write_text(table + "\n")
    if args.figures:
        plot_study(run_dir / "barfi_learning_curves.png", curves, optimum)
        plot_coefficients(run_dir / "barfi_coefficients.png", learned)
    summary["wall_s"] = float(time.perf_counter() - start)
    summary["run_dir"] = str(run_dir)
    atomic_write_json(run_dir / "summary.json", summary)
    return summary


if __name__ == "__main__":
    print(main(parse_args(Args)))
