"""Report of an over-optimisation sweep: per-cell IQM and bootstrap intervals, paired differences, KL curves.

Reads a sweep folder of :mod:`experiments.overoptimization` runs (``rewardlab sweep
experiments/overoptimization.toml``) and writes

* a Markdown table per noise level: for every reward design the runs, mean, IQM and the 95%
  stratified-bootstrap interval of the IQM over seeds (Agarwal et al. 2021) of the final,
  mean and peak true return, the drop from peak to final, and the final KL(π ‖ π₀);
* paired differences: designs of one seed share the labels, the ensemble and PPO's initial
  policy, so each design is compared with the ensemble mean seed by seed, as the mean of
  the per-seed differences with a 95% percentile-bootstrap interval and the count of seeds
  where it is ahead;
* ``<prefix>_kl.png``: the over-optimisation curve, true return against KL(π ‖ π₀) (both the
  mean over seeds at each checkpoint, the band the bootstrap interval of the mean return,
  thin lines the seeds), one panel per noise level;
* ``<prefix>_final.png``: IQM and interval of the final and mean true return per design.

Run: ``python -m experiments.overoptimization_report runs/sweeps/overoptimization --figures docs/figures``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from experiments.overoptimization import DESIGNS
from rewardlab._io import atomic_write_bytes, atomic_write_figure
from rewardlab.sweeps import load_metrics, load_results, mean_band, stratified_bootstrap_ci

TABLE_METRICS = ("final_true_return", "mean_true_return", "peak_true_return", "overoptimization", "final_policy_kl")
"""Final metrics tabulated per cell."""

KL_LEVELS = (0.25, 0.5)
"""KL(π ‖ π₀) levels, in nats, at which designs are compared (``returns_at_kl``)."""

PROXY_METRICS = ("label_agreement_with_truth", "reward_correlation", "penalty_scale")
"""Figures of the learned proxy, tabulated per cell (their mean over seeds)."""


def _mean(values: np.ndarray) -> np.ndarray:
    return np.mean(values, axis=-1)


def ok_results(sweep_dir: str | Path) -> Any:
    """The sweep's finished runs (status ok), with ``noise`` and ``reward_design`` as columns."""
    results = load_results(sweep_dir)
    return results[results["status"] == "ok"].reset_index(drop=True)


def cell_table(results: Any, metrics: Sequence[str] = TABLE_METRICS, num_resamples: int = 2000) -> Any:
    """Per (noise, reward_design) and metric: runs, mean, IQM and its 95% stratified-bootstrap interval over seeds."""
    import pandas as pd

    rows = []
    for (noise, design), group in results.groupby(["noise", "reward_design"], sort=True):
        for metric in metrics:
            values = pd.to_numeric(group[metric], errors="coerce").to_numpy(np.float64)
            values = values[np.isfinite(values)]
            if not len(values):
                continue
            interval = stratified_bootstrap_ci(values, num_resamples=num_resamples)
            rows.append(
                dict(
                    noise=float(noise),
                    reward_design=str(design),
                    metric=metric,
                    runs=len(values),
                    mean=float(values.mean()),
                    iqm=interval.estimate,
                    iqm_low=interval.low,
                    iqm_high=interval.high,
                )
            )
    return pd.DataFrame(
        rows, columns=["noise", "reward_design", "metric", "runs", "mean", "iqm", "iqm_low", "iqm_high"]
    )


def paired_differences(
    results: Any, metric: str = "final_true_return", baseline: str = "mean", num_resamples: int = 2000
) -> Any:
    """Per noise and design: mean over seeds of (design − ``baseline``) in ``metric``, its 95% bootstrap interval, wins.

    Only seeds where both runs finished count. The interval resamples the per-seed
    differences (a percentile bootstrap of their mean).

    Example:
        >>> import pandas as pd
        >>> frame = pd.DataFrame(dict(noise=[0.1] * 4, reward_design=["mean", "min"] * 2, seed=[0, 0, 1, 1],
        ...                           final_true_return=[-100.0, -90.0, -200.0, -150.0]))
        >>> row = paired_differences(frame).iloc[0]
        >>> row.reward_design, int(row.seeds), float(row.difference), int(row.wins)
        ('min', 2, 30.0, 2)
    """
    import pandas as pd

    rows = []
    for noise, group in results.groupby("noise", sort=True):
        table = group.pivot_table(index="seed", columns="reward_design", values=metric, aggfunc="first")
        if baseline not in table:
            continue
        for design in table.columns:
            if design == baseline:
                continue
            both = table[[design, baseline]].dropna()
            if both.empty:
                continue
            difference = (both[design] - both[baseline]).to_numpy(np.float64)
            interval = stratified_bootstrap_ci(difference, statistic=_mean, num_resamples=num_resamples)
            rows.append(
                dict(
                    noise=float(noise),
                    reward_design=str(design),
                    metric=metric,
                    baseline=baseline,
                    seeds=len(difference),
                    difference=interval.estimate,
                    low=interval.low,
                    high=interval.high,
                    wins=int(np.sum(difference > 0)),
                )
            )
    return pd.DataFrame(
        rows, columns=["noise", "reward_design", "metric", "baseline", "seeds", "difference", "low", "high", "wins"]
    )


def checkpoint_curves(results: Any, metrics: Any) -> dict[tuple[float, str], dict[str, np.ndarray]]:
    """Per (noise, reward_design): ``step [C]``, ``true_return [S, C]`` and ``policy_kl [S, C]`` over the S seeds.

    Seeds whose checkpoints differ from the first seed's are left out (a sweep mixing budgets).
    """
    out: dict[tuple[float, str], dict[str, np.ndarray]] = {}
    cells = results.set_index("run")[["noise", "reward_design"]]
    for (noise, design), runs in cells.groupby(["noise", "reward_design"], sort=True):
        steps, returns, kls = None, [], []
        for run in runs.index:
            rows = metrics[metrics["run"] == run]
            true = rows[rows["name"] == "true_return"].sort_values("step")
            kl = rows[rows["name"] == "policy_kl"].sort_values("step")
            if true.empty or len(true) != len(kl):
                continue
            run_steps = true["step"].to_numpy()
            if steps is None:
                steps = run_steps
            if len(run_steps) != len(steps) or np.any(run_steps != steps):
                continue
            returns.append(true["value"].to_numpy(np.float64))
            kls.append(kl["value"].to_numpy(np.float64))
        if steps is not None and returns:
            out[(float(noise), str(design))] = dict(step=steps, true_return=np.stack(returns), policy_kl=np.stack(kls))
    return out


def returns_at_kl(results: Any, metrics: Any, levels: Sequence[float] = (0.25, 0.5)) -> Any:
    """Each run's true return at given KL(π ‖ π₀) levels: the results table with a ``true_return_at_kl<level>`` column each.

    The run's checkpoints (KL_c, R_c) are linearly interpolated at the level, with KL_c replaced by
    its running maximum so that the abscissa never decreases; a run whose KL never reaches the
    level gets NaN. Comparing designs at equal KL rather than at equal env steps separates how far
    optimisation moved the policy from what the true return was there (Coste et al.'s comparison).

    Example:
        >>> import pandas as pd
        >>> results = pd.DataFrame(dict(run=["a"]))
        >>> metrics = pd.DataFrame(dict(run=["a"] * 6, step=[0, 10, 20] * 2, name=["true_return"] * 3 + ["policy_kl"] * 3,
        ...                             value=[-900.0, -500.0, -700.0, 0.0, 0.4, 0.8]))
        >>> returns_at_kl(results, metrics, (0.2, 1.0))[["true_return_at_kl0.2", "true_return_at_kl1"]].values.tolist()
        [[-700.0, nan]]
    """
    out = results.copy()
    for level in levels:
        column = []
        for run in results["run"]:
            rows = metrics[metrics["run"] == run]
            true = rows[rows["name"] == "true_return"].sort_values("step")["value"].to_numpy(np.float64)
            kl = rows[rows["name"] == "policy_kl"].sort_values("step")["value"].to_numpy(np.float64)
            if len(true) == 0 or len(true) != len(kl) or np.max(kl) < level:
                column.append(np.nan)
                continue
            reach = np.maximum.accumulate(kl)
            first = int(np.argmax(reach >= level))  # the first checkpoint at or past the level
            if first == 0:
                column.append(float(true[0]))
                continue
            x0, x1, y0, y1 = reach[first - 1], reach[first], true[first - 1], true[first]
            column.append(float(y0 + (y1 - y0) * (level - x0) / (x1 - x0)))
        out[f"true_return_at_kl{level:g}"] = column
    return out


def _order(designs: Any) -> list[str]:
    return sorted(set(designs), key=lambda name: DESIGNS.index(name) if name in DESIGNS else len(DESIGNS))


def plot_kl_curves(curves: dict[tuple[float, str], dict[str, np.ndarray]], path: str | Path, title: str = "") -> Any:
    """True return against KL(π ‖ π₀), one panel per noise level, one line per reward design."""
    from matplotlib.figure import Figure

    noises = sorted({noise for noise, _ in curves})
    figure = Figure(figsize=(5.5 * max(1, len(noises)), 4.2))
    axes = np.atleast_1d(figure.subplots(1, max(1, len(noises)), sharey=True))
    for axis, noise in zip(axes, noises, strict=False):
        for design in _order(design for n, design in curves if n == noise):
            curve = curves[(noise, design)]
            color = f"C{DESIGNS.index(design) if design in DESIGNS else 9}"
            kl = curve["policy_kl"].mean(axis=0)
            mean, low, high = mean_band(curve["true_return"])
            seeds = curve["true_return"].shape[0]
            axis.plot(kl, mean, color=color, marker="o", markersize=3, label=f"{design} (n={seeds})")
            axis.fill_between(kl, low, high, color=color, alpha=0.15, linewidth=0)
            for seed_kl, seed_return in zip(curve["policy_kl"], curve["true_return"], strict=True):
                axis.plot(seed_kl, seed_return, color=color, alpha=0.2, linewidth=0.7)
        axis.legend(fontsize=7)
        axis.set_title(f"{int(round(100 * noise))}% flipped labels")
        axis.set_xlabel("KL(π ‖ π₀) on fixed states, nats")
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("true return (deterministic evaluation episodes)")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    atomic_write_figure(path, figure, dpi=110)
    return figure


def plot_final(table: Any, path: str | Path, metrics: Sequence[str] = ("final_true_return", "mean_true_return")) -> Any:
    """IQM with its 95% bootstrap interval per reward design, one panel per (metric, noise)."""
    from matplotlib.figure import Figure

    noises = sorted(set(table["noise"]))
    figure = Figure(figsize=(4.2 * max(1, len(noises)), 3.4 * len(metrics)))
    axes = np.asarray(figure.subplots(len(metrics), max(1, len(noises)), squeeze=False))
    for row, metric in enumerate(metrics):
        for column, noise in enumerate(noises):
            axis = axes[row, column]
            cells = table[(table["noise"] == noise) & (table["metric"] == metric)]
            designs = _order(cells["reward_design"])
            for index, design in enumerate(designs):
                cell = cells[cells["reward_design"] == design].iloc[0]
                color = f"C{DESIGNS.index(design) if design in DESIGNS else 9}"
                axis.errorbar(
                    cell["iqm"],
                    index,
                    xerr=[[cell["iqm"] - cell["iqm_low"]], [cell["iqm_high"] - cell["iqm"]]],
                    fmt="o",
                    color=color,
                    capsize=3,
                )
            axis.set_yticks(
                range(len(designs)), [f"{d} (n={int(cells[cells.reward_design == d].runs.iloc[0])})" for d in designs]
            )
            axis.set_title(f"{metric}, {int(round(100 * noise))}% noise", fontsize=9)
            axis.grid(alpha=0.3)
    figure.tight_layout()
    atomic_write_figure(path, figure, dpi=110)
    return figure


def markdown(table: Any, paired: Any, proxies: Any) -> str:
    """The report's tables as Markdown."""
    lines = []
    for noise in sorted(set(table["noise"])):
        lines += [f"### {int(round(100 * noise))}% flipped labels", ""]
        metrics = list(dict.fromkeys(table["metric"]))
        lines.append("| reward design | runs | " + " | ".join(f"{m}: IQM [95% CI]" for m in metrics) + " |")
        lines.append("|---|---|" + "---|" * len(metrics))
        cells = table[table["noise"] == noise]
        for design in _order(cells["reward_design"]):
            rows = cells[cells["reward_design"] == design].set_index("metric")
            values = []
            for metric in metrics:
                if metric in rows.index:
                    r = rows.loc[metric]
                    digits = 2 if metric.endswith("policy_kl") else 0
                    text = f"{r.iqm:.{digits}f} [{r.iqm_low:.{digits}f}, {r.iqm_high:.{digits}f}]"
                    values.append(text if r.runs == rows["runs"].max() else f"{text} (n={int(r.runs)})")
                else:
                    values.append("")
            lines.append(f"| {design} | {int(rows['runs'].max())} | " + " | ".join(values) + " |")
        lines.append("")
    if len(proxies):
        lines += ["Proxy figures (mean over seeds):", ""]
        lines.append("| noise | reward design | " + " | ".join(PROXY_METRICS) + " |")
        lines.append("|---|---|" + "---|" * len(PROXY_METRICS))
        for (noise, design), row in proxies.iterrows():
            lines.append(f"| {noise:g} | {design} | " + " | ".join(f"{row[m]:.3f}" for m in PROXY_METRICS) + " |")
        lines.append("")
    if len(paired):
        lines += ["Paired differences against the ensemble mean (same seed):", ""]
        lines.append("| noise | reward design | metric | seeds | mean difference [95% CI] | seeds ahead |")
        lines.append("|---|---|---|---|---|---|")
        for _, row in paired.iterrows():
            lines.append(
                f"| {row.noise:g} | {row.reward_design} | {row.metric} | {row.seeds} | "
                f"{row.difference:+.0f} [{row.low:+.0f}, {row.high:+.0f}] | {row.wins}/{row.seeds} |"
            )
        lines.append("")
    return "\n".join(lines)


def report(sweep_dir: str | Path, figures: str | Path | None = None, prefix: str = "overoptimization") -> str:
    """Write the report's Markdown to ``SWEEP_DIR/overoptimization_report.md`` and its figures; return the Markdown."""
    import pandas as pd

    sweep_dir = Path(sweep_dir)
    results = ok_results(sweep_dir)
    if results.empty:
        raise ValueError(f"sweep_dir: no finished runs in {str(sweep_dir)!r}")
    metrics = load_metrics(sweep_dir)
    results = returns_at_kl(results, metrics, KL_LEVELS)
    at_kl = [f"true_return_at_kl{level:g}" for level in KL_LEVELS]
    table = cell_table(results, TABLE_METRICS + tuple(at_kl))
    paired = pd.concat(
        [paired_differences(results, metric) for metric in ("final_true_return", *at_kl)], ignore_index=True
    )
    proxies = results.groupby(["noise", "reward_design"])[list(PROXY_METRICS)].agg(
        lambda column: pd.to_numeric(column, errors="coerce").mean()
    )
    text = markdown(table, paired, proxies)
    atomic_write_bytes(sweep_dir / "overoptimization_report.md", text.encode())
    folder = Path(figures) if figures is not None else sweep_dir / "report"
    first = results.iloc[0]
    title = f"{first['env_id']}: PPO on a learned reward ({first['labels']} labels, {first['total_timesteps']} steps)"
    plot_kl_curves(checkpoint_curves(results, metrics), folder / f"{prefix}_kl.png", title=title)
    plot_final(table, folder / f"{prefix}_final.png")
    return text


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``SWEEP_DIR [--figures DIR] [--prefix NAME]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--figures", type=Path, default=None, help="folder of the PNGs (default SWEEP_DIR/report)")
    parser.add_argument("--prefix", default="overoptimization", help="file-name prefix of the PNGs")
    options = parser.parse_args(argv)
    print(report(options.sweep_dir, options.figures, options.prefix))


if __name__ == "__main__":
    main()
