"""Report of a VLM-RM sweep over seeds: a table with bootstrap intervals, the α figure and the PPO curves.

Reads the run folders of a sweep of :mod:`experiments.vlm_rm` (``rewardlab sweep
experiments/vlm_rm_hopper.toml``) and writes

* a Markdown table: per seed, the small CLIP's held-out caption accuracy, the true return of PPO
  on the VLM reward and on the env reward, and the EPIC distance; below it, the mean over seeds
  with a 95 % percentile-bootstrap interval of the mean;
* a Markdown table of the Pearson correlation of the VLM reward with the task reward for every α,
  random and trained-policy rollouts, mean over seeds [95 % bootstrap interval];
* ``<prefix>_alpha.png``: that correlation against α, mean over seeds with its band, thin lines
  the seeds;
* ``<prefix>_ppo.png``: the true return of training episodes of both agents against env steps
  (each seed's episodes averaged in bins, then the mean over seeds with a bootstrap band).

Run: ``python -m experiments.vlm_rm_report runs/sweeps/vlm_rm_hopper --figures docs/figures --prefix vlm_hopper``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab._io import atomic_write_figure
from rewardlab.sweeps import mean_band, stratified_bootstrap_ci


def load_runs(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """The finished runs of a VLM-RM sweep: each run's ``results.json`` with its ``curves.json`` and seed.

    Raises:
        ValueError: ``sweep_dir`` holds no finished VLM-RM run.
    """
    runs = []
    for folder in sorted(Path(sweep_dir).glob("runs/*")):
        results, curves = folder / "results.json", folder / "curves.json"
        if not results.is_file():
            continue
        run = json.loads(results.read_text())
        run["seed"] = (
            json.loads((folder / "args.json").read_text()).get("seed") if (folder / "args.json").is_file() else None
        )
        run["curves"] = json.loads(curves.read_text()) if curves.is_file() else {}
        runs.append(run)
    if not runs:
        raise ValueError(
            f"sweep_dir: expected a sweep folder with finished VLM-RM runs (runs/*/results.json), got {sweep_dir}"
        )
    return runs


def _fmt(value: float) -> str:
    return f"{value:.1f}" if abs(value) >= 100 else f"{value:.3g}"


def _interval(values: Sequence[float]) -> str:
    ci = stratified_bootstrap_ci(np.asarray(values, np.float64), statistic=lambda x: x.mean(axis=-1))
    return f"{_fmt(ci.estimate)} [{_fmt(ci.low)}, {_fmt(ci.high)}]"


def summary_table(runs: list[dict[str, Any]]) -> str:
    """Per-seed rows and the mean over seeds with its 95 % bootstrap interval (Markdown)."""
    columns = [
        ("CLIP held-out accuracy", "clip_heldout_accuracy"),
        ("PPO on the VLM reward: true return", "ppo_vlm_reward_return"),
        ("PPO on the env reward: true return", "ppo_true_reward_return"),
        ("random policy", "random_return"),
        ("EPIC(VLM, task)", "epic_distance"),
    ]
    lines = ["| seed | " + " | ".join(name for name, _ in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for run in runs:
        lines.append(f"| {run['seed']} | " + " | ".join(_fmt(run.get(key, float("nan"))) for _, key in columns) + " |")
    lines.append(
        "| mean [95 % CI] | "
        + " | ".join(_interval([run[key] for run in runs if key in run]) for _, key in columns)
        + " |"
    )
    return "\n".join(lines)


def correlation_table(runs: list[dict[str, Any]]) -> str:
    """Pearson correlation with the task reward per α and policy: mean over seeds [95 % CI] (Markdown)."""
    alphas = list(runs[0]["correlation"]["random"])
    lines = ["| α | " + " | ".join(alphas) + " |", "|---" * (len(alphas) + 1) + "|"]
    for policy in runs[0]["correlation"]:
        values = [[run["correlation"][policy][alpha] for run in runs] for alpha in alphas]
        lines.append(f"| {policy} rollouts | " + " | ".join(_interval(v) for v in values) + " |")
    return "\n".join(lines)


def plot_alpha(runs: list[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Correlation with the task reward against α: mean over seeds with its band, thin lines the seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6), layout="constrained")
    for policy, color in zip(runs[0]["correlation"], ("tab:blue", "tab:orange"), strict=False):
        alphas = np.array([float(a) for a in runs[0]["correlation"][policy]])
        curves = np.array([[run["correlation"][policy][a] for a in run["correlation"][policy]] for run in runs])
        mean, low, high = mean_band(curves)
        for curve in curves:
            ax.plot(alphas, curve, color=color, alpha=0.25, linewidth=0.8)
        ax.plot(alphas, mean, color=color, marker="o", label=f"{policy} rollouts (n={len(runs)})")
        ax.fill_between(alphas, low, high, color=color, alpha=0.2)
    ax.axhline(0.0, color="grey", linewidth=0.6)
    ax.set_xlabel("α (weight of the goal-baseline direction)")
    ax.set_ylabel("Pearson(R_VLM, task reward)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return atomic_write_figure(path, fig, dpi=110, close=True)


def plot_ppo(runs: list[dict[str, Any]], path: str | Path, title: str = "", bins: int = 20) -> Path:
    """True return of training episodes against env steps, both agents: binned per seed, mean and band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    last = max(max(run["curves"][k]["steps"] or [0]) for run in runs for k in run["curves"])
    edges = np.linspace(0, last, bins + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    fig, ax = plt.subplots(figsize=(5.5, 3.6), layout="constrained")
    for key, label, color in (
        ("true", "PPO on the env reward", "tab:green"),
        ("vlm", "PPO on the VLM reward", "tab:red"),
    ):
        curves = []
        for run in runs:
            steps = np.asarray(run["curves"].get(key, {}).get("steps", []), np.float64)
            returns = np.asarray(run["curves"].get(key, {}).get("returns", []), np.float64)
            if not steps.size:
                continue
            which = np.clip(np.digitize(steps, edges) - 1, 0, bins - 1)
            binned = np.array([returns[which == b].mean() if np.any(which == b) else np.nan for b in range(bins)])
            # Bins without a finished episode carry the last value forward.
            for b in range(1, bins):
                if np.isnan(binned[b]):
                    binned[b] = binned[b - 1]
            curves.append(binned)
        if not curves:
            continue
        array = np.array(curves)
        keep = ~np.isnan(array).any(axis=0)
        mean, low, high = mean_band(array[:, keep])
        ax.plot(centres[keep], mean, color=color, label=f"{label} (n={len(curves)})")
        ax.fill_between(centres[keep], low, high, color=color, alpha=0.2)
    ax.set_xlabel("env steps")
    ax.set_ylabel("true episode return")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return atomic_write_figure(path, fig, dpi=110, close=True)


def report(sweep_dir: str | Path, figures: str | Path | None = None, prefix: str = "vlm") -> str:
    """The Markdown tables of a VLM-RM sweep; the two figures under ``figures`` when given."""
    runs = load_runs(sweep_dir)
    text = summary_table(runs) + "\n\n" + correlation_table(runs) + "\n"
    if figures is not None:
        env_id = runs[0].get("env_id", "")
        plot_alpha(runs, Path(figures) / f"{prefix}_alpha.png", f"{env_id}: correlation with the task reward")
        plot_ppo(runs, Path(figures) / f"{prefix}_ppo.png", f"{env_id}: PPO's true return while training")
    return text


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", help="a sweep folder of experiments.vlm_rm runs")
    parser.add_argument("--figures", default=None, help="folder for the figures (none: tables only)")
    parser.add_argument("--prefix", default="vlm", help="file name prefix of the figures")
    args = parser.parse_args(argv)
    print(report(args.sweep_dir, args.figures, args.prefix))


if __name__ == "__main__":
    main()
