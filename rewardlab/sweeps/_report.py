"""``rewardlab report``: a sweep folder turned into learning curves, an aggregate table and Markdown.

Per design (runs differing only by seed): learning curves of every logged metric, the
mean over seeds with a 95% bootstrap band; and for every final metric the number of
runs, mean, IQM and a 95% stratified-bootstrap interval of the IQM (rliable-style).
Written to ``SWEEP_DIR/report/`` as ``report.md``, ``curve_<metric>.png`` (every design on
one axes), ``curves_<metric>_by_design.png`` (a panel per design) and ``final_<metric>.png``.
Designs whose names are long are drawn by short labels (``D1``, ``D2``, ...) that a legend
table in ``report.md`` names.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from rewardlab._io import atomic_write_bytes, atomic_write_figure, check_folder
from rewardlab.sweeps._results import load_metrics, load_results
from rewardlab.sweeps._stats import mean_band, stratified_bootstrap_ci

_NOT_METRICS = {"run", "design", "seed", "status", "wall_s", "error"}


class Report(NamedTuple):
    """What :func:`make_report` wrote and computed."""

    markdown_path: Path  # report/report.md
    figures: list[Path]  # the PNGs
    final_table: Any  # DataFrame: design, metric, runs, failed, mean, iqm, iqm_low, iqm_high


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def final_metric_names(results: Any, args_fields: Sequence[str] = ()) -> list[str]:
    """Numeric columns of the results table that hold final metrics (not arguments or bookkeeping).

    A text column counts when some of its values read as numbers: the results table stores a
    metric as text when runs returned numbers and text for it (``"diverged"`` in one run), and
    the report then summarises the runs whose value is a number.
    """
    import pandas as pd

    names = []
    for column in results.columns:
        if column in _NOT_METRICS or column in args_fields:
            continue
        values = results[column].dropna()
        if results[column].dtype == bool or pd.api.types.is_bool_dtype(results[column].dtype):
            continue
        numeric = np.issubdtype(np.asarray(values).dtype, np.number)
        if numeric or (
            pd.api.types.is_string_dtype(values.dtype) and pd.to_numeric(values, errors="coerce").notna().any()
        ):
            names.append(column)
    return names


def final_table(results: Any, metrics: Sequence[str], confidence: float = 0.95, num_resamples: int = 2000) -> Any:
    """Per design and metric: runs, failed, mean, IQM and its stratified-bootstrap interval."""
    import pandas as pd

    rows = []
    for design, group in results.groupby("design", sort=False):
        ok = group[group["status"] == "ok"]
        for metric in metrics:
            values = pd.to_numeric(ok[metric], errors="coerce").to_numpy(dtype=np.float64)
            values = values[np.isfinite(values)]
            row = {
                "design": design,
                "metric": metric,
                "runs": len(values),
                "failed": int((group["status"] != "ok").sum()),
            }
            if len(values):
                interval = stratified_bootstrap_ci(values, num_resamples=num_resamples, confidence=confidence)
                row.update(
                    mean=float(values.mean()), iqm=interval.estimate, iqm_low=interval.low, iqm_high=interval.high
                )
            else:
                row.update(mean=math.nan, iqm=math.nan, iqm_low=math.nan, iqm_high=math.nan)
            rows.append(row)
    return pd.DataFrame(rows, columns=["design", "metric", "runs", "failed", "mean", "iqm", "iqm_low", "iqm_high"])


def design_curves(
    metrics: Any, name: str, num_points: int = 100
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]]:
    """Per design: (steps, mean, low, high, seeds) of metric ``name``, seeds interpolated onto shared steps.

    Each seed's curve is linearly interpolated onto ``num_points`` steps spanning the range
    every seed covers, so seeds logged at different steps still average point by point.
    """
    out = {}
    rows = metrics[metrics["name"] == name]
    for design, group in rows.groupby("design", sort=False):
        seeds = [(run_rows["step"].to_numpy(), run_rows["value"].to_numpy()) for _, run_rows in group.groupby("run")]
        seeds = [(s[np.isfinite(v)], v[np.isfinite(v)]) for s, v in seeds]
        seeds = [(s[np.argsort(s, kind="stable")], v[np.argsort(s, kind="stable")]) for s, v in seeds if len(s)]
        if not seeds:
            continue
        start = max(s[0] for s, _ in seeds)
        stop = min(s[-1] for s, _ in seeds)
        if stop < start:
            continue
        steps = np.unique(np.concatenate([s for s, _ in seeds]))
        steps = steps[(steps >= start) & (steps <= stop)]
        if len(steps) > num_points:
            steps = np.linspace(start, stop, num_points)
        curves = np.stack([np.interp(steps, s, v) for s, v in seeds])
        mean, low, high = mean_band(curves)
        out[design] = (steps, mean, low, high, len(seeds))
    return out


_SHORT_NAME_CHARS = 24  # a design name longer than this is drawn as its label (D1, D2, ...), named in the legend


def design_labels(designs: Sequence[str]) -> dict[str, str]:
    """Labels to draw for ``designs``: the names themselves when all are short, else ``D1``, ``D2``, ...

    The report's legend table maps each label back to its design.

    Example:
        >>> design_labels(["lr=0.1", "lr=1.0"])
        {'lr=0.1': 'lr=0.1', 'lr=1.0': 'lr=1.0'}
        >>> design_labels(["teacher_model=regret__labels=25", "teacher_model=regret__labels=200"])
        {'teacher_model=regret__labels=25': 'D1', 'teacher_model=regret__labels=200': 'D2'}
    """
    designs = list(dict.fromkeys(designs))
    if all(len(design) <= _SHORT_NAME_CHARS for design in designs):
        return {design: design for design in designs}
    return {design: f"D{index}" for index, design in enumerate(designs, start=1)}


def _save(fig: Any, path: Path) -> Path:
    return atomic_write_figure(path, fig, close=True)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plot_curves(curves: dict[str, Any], labels: dict[str, str], name: str, title: str, path: Path) -> Path:
    """Every design's mean curve and band on one axes, the legend outside it."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=110, layout="constrained")
    for design, (steps, mean, low, high, seeds) in curves.items():
        (line,) = ax.plot(steps, mean, label=f"{labels[design]} (n={seeds})")
        ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xlabel("step")
    ax.set_ylabel(name)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.legend(fontsize=7, loc="outside right upper", ncols=1 + len(curves) // 16)
    return _save(fig, path)


def _plot_curves_by_design(curves: dict[str, Any], labels: dict[str, str], name: str, title: str, path: Path) -> Path:
    """One panel per design (shared axes): its mean curve over seeds and the band, the other designs faint."""
    plt = _pyplot()
    columns = min(4, len(curves))
    rows = math.ceil(len(curves) / columns)
    fig, axes = plt.subplots(
        rows,
        columns,
        figsize=(2.6 * columns + 1.0, 2.0 * rows + 0.8),
        dpi=110,
        sharex=True,
        sharey=True,
        squeeze=False,
        layout="constrained",
    )
    for ax, (design, (steps, mean, low, high, seeds)) in zip(axes.flat, curves.items(), strict=False):
        for other, (other_steps, other_mean, *_) in curves.items():
            if other != design:
                ax.plot(other_steps, other_mean, color="0.8", linewidth=0.6)
        ax.fill_between(steps, low, high, color="C0", alpha=0.25, linewidth=0)
        ax.plot(steps, mean, color="C0")
        ax.set_title(f"{labels[design]} (n={seeds})", fontsize=8)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(curves) :]:
        ax.set_visible(False)
    fig.supxlabel("step", fontsize=9)
    fig.supylabel(name, fontsize=9)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def _plot_final(table: Any, labels: dict[str, str], metric: str, title: str, path: Path) -> Path:
    plt = _pyplot()
    rows = table[(table["metric"] == metric) & (table["runs"] > 0)]
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(rows) + 1.6), dpi=110, layout="constrained")
    positions = np.arange(len(rows))[::-1]
    ax.errorbar(
        rows["iqm"], positions, xerr=[rows["iqm"] - rows["iqm_low"], rows["iqm_high"] - rows["iqm"]], fmt="o", capsize=4
    )
    ticks = [f"{labels[d]} (n={n})" for d, n in zip(rows["design"], rows["runs"], strict=True)]
    ax.set_yticks(positions, ticks, fontsize=7)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_xlabel(f"{metric}: IQM and 95% stratified-bootstrap CI")
    ax.set_title(title)
    ax.grid(alpha=0.3, axis="x")
    return _save(fig, path)


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "–" if math.isnan(value) else f"{value:.4g}"
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def make_report(
    sweep_dir: str | os.PathLike,
    metrics: Sequence[str] | None = None,
    curves: Sequence[str] | None = None,
    out_dir: str | os.PathLike | None = None,
    confidence: float = 0.95,
) -> Report:
    """Write the report of a sweep folder: learning curves, final-performance table, Markdown.

    Args:
        sweep_dir: the sweep folder (holding ``results.parquet``).
        metrics: final metrics to tabulate; default every numeric final metric.
        curves: logged metrics to plot against step; default every logged metric.
        out_dir: where to write; default ``sweep_dir/report``.
        confidence: level of the intervals.

    Returns:
        :class:`Report` with the Markdown path, the figure paths and the final table.

    Raises:
        ValueError: not a sweep folder, no completed run, an unknown metric name, or an
            ``out_dir`` that is a file.
    """
    import json

    sweep_dir = Path(sweep_dir)
    results = load_results(sweep_dir)
    if not len(results):
        raise ValueError(f"sweep_dir: no completed run in {str(sweep_dir)!r} yet")
    manifest_path = sweep_dir / "sweep.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    args_fields = list(manifest.get("base", {}))
    available = final_metric_names(results, args_fields)
    if metrics is None:
        metrics = available
    for name in metrics:
        if name not in available:
            raise ValueError(f"metric: {name!r} is not a final metric of this sweep; expected one of {available}")
    logged = load_metrics(sweep_dir)
    logged_names = list(dict.fromkeys(logged["name"].tolist()))
    if curves is None:
        curves = logged_names
    for name in curves:
        if name not in logged_names:
            raise ValueError(f"curve: {name!r} was not logged by this sweep's runs; expected one of {logged_names}")

    out = check_folder(out_dir if out_dir is not None else sweep_dir / "report", "out_dir")
    out.mkdir(parents=True, exist_ok=True)
    title = manifest.get("name", sweep_dir.name)
    table = final_table(results, metrics, confidence=confidence)
    labels = design_labels(results["design"].astype(str).tolist())
    figures = []
    lines = [f"# Sweep report: {title}", ""]
    failed = results[results["status"] != "ok"]
    total = len(manifest.get("runs", [])) or len(results)
    lines += [
        (
            f"{len(results)} of {total} runs completed: {len(results) - len(failed)} ok, {len(failed)} failed. "
            f"Target `{manifest.get('target', '?')}`."
        ),
        "",
    ]
    if any(label != design for design, label in labels.items()):
        counts = results.groupby("design", sort=False).size()
        lines += ["## Designs", "", "The figures name each design by its label.", ""]
        lines.append(_markdown_table(["label", "design", "runs"], [(labels[d], d, int(counts[d])) for d in labels]))
        lines.append("")
    if len(metrics):
        lines += [
            "## Final performance",
            "",
            (
                f"Per design: runs, mean, interquartile mean (IQM) and its {confidence:.0%} stratified-bootstrap "
                "confidence interval over seeds (Agarwal et al. 2021)."
            ),
            "",
        ]
        for metric in metrics:
            rows = table[table["metric"] == metric]
            lines += [f"### {metric}", ""]
            columns = ["design", "runs", "failed", "mean", "iqm", "iqm_low", "iqm_high"]
            header = ["design", "runs", "failed", "mean", "IQM", "CI low", "CI high"]
            cells = [list(row) for row in rows[columns].itertuples(index=False)]
            if any(label != design for design, label in labels.items()):
                header = ["label", *header]
                cells = [[labels[row[0]], *row] for row in cells]
            lines.append(_markdown_table(header, cells))
            if (rows["runs"] > 0).any():
                path = _plot_final(
                    table, labels, metric, f"{title}: final {metric}", out / f"final_{_slug(metric)}.png"
                )
                figures.append(path)
                lines += ["", f"![final {metric}]({path.name})"]
            lines.append("")
    if len(curves):
        lines += ["## Learning curves", "", f"Mean over seeds with a {confidence:.0%} bootstrap band.", ""]
        for name in curves:
            per_design = design_curves(logged, name)
            if per_design:
                path = _plot_curves(per_design, labels, name, f"{title}: {name}", out / f"curve_{_slug(name)}.png")
                figures.append(path)
                lines += [f"![{name}]({path.name})", ""]
            if len(per_design) > 1:
                path = _plot_curves_by_design(
                    per_design, labels, name, f"{title}: {name} per design", out / f"curves_{_slug(name)}_by_design.png"
                )
                figures.append(path)
                lines += [f"![{name} per design]({path.name})", ""]
    if len(failed):
        lines += ["## Failed runs", ""]
        lines.append(_markdown_table(["run", "error"], failed[["run", "error"]].itertuples(index=False)))
        lines.append("")
    markdown = atomic_write_bytes(out / "report.md", "\n".join(lines).encode())
    return Report(markdown, figures, table)
