"""``rewardlab`` command: one entry point, a subcommand per capability."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, cast

os.environ.setdefault("MUJOCO_GL", "egl")

import typer

app = typer.Typer(
    name="rewardlab",
    help="Learn and shape rewards for RL agents: preference learning, reward wrappers, distances.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # usage errors print as one plain "Error: ..." line, not a box
)


def _print_version(value: bool) -> None:
    if value:
        import rewardlab

        typer.echo(f"rewardlab {rewardlab.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", help="Print rewardlab's version and exit.", is_eager=True, callback=_print_version
    ),
) -> None:
    """rewardlab: reward learning for Stable-Baselines3 agents on gymnasium environments."""


@app.command()
def quickstart(
    env_id: str = typer.Option("Pendulum-v1", "--env", help="gymnasium environment id."),
    total_timesteps: int = typer.Option(100_000, min=1, help="PPO env steps for each agent."),
    labels: int = typer.Option(200, min=0, help="Preference labels the teacher gives."),
    teacher: str = typer.Option(
        "oracle",
        help="Simulated teacher (oracle, stochastic, myopic, skip, equal, mistake), or human: label in the browser "
        "with `rewardlab label serve RUN_DIR`.",
    ),
    seed: int = typer.Option(0, help="Seed of agents, envs, queries and teacher noise."),
    eval_episodes: int = typer.Option(10, min=1, help="Episodes per policy in the final evaluation."),
    feedback_until: float = typer.Option(
        0.3, help="Fraction of the PPO steps by which every label is asked, in (0, 1]."
    ),
    out: Path = typer.Option(Path("runs"), help="Parent folder of the run folder."),
    progress: bool = typer.Option(True, help="Print the stages and show progress bars."),
    parallel: bool = typer.Option(True, help="Train the true-reward PPO in a second process at the same time."),
) -> None:
    """Learn a reward from synthetic preferences online, train PPO on it, compare with PPO on the true reward."""
    import torch

    torch.set_num_threads(1)
    from rich.console import Console
    from rich.table import Table

    from experiments.quickstart import Args, main
    from rewardlab._io import check_folder
    from rewardlab.cli._common import check_env_id, one_line_errors

    console = Console()
    with one_line_errors():
        # typer gives the teacher as a str; Args checks it is one of its choices (check_choices).
        args = Args(
            env_id=env_id,
            total_timesteps=total_timesteps,
            labels=labels,
            teacher=cast(Any, teacher),
            seed=seed,
            eval_episodes=eval_episodes,
            feedback_until=feedback_until,
            out_dir=out,
            parallel=parallel,
            progress=progress,
        )
        check_env_id(env_id)
        check_folder(out, "out")
    with one_line_errors(created=Path(out) / args.name):  # a failed run leaves no empty run folder
        summary = main(args)
    table = Table(title=f"{env_id}: true return of each policy ({eval_episodes} episodes)")
    table.add_column("policy")
    table.add_column("true return", justify="right")
    table.add_row("PPO on learned reward", f"{summary['return_learned']:.1f}")
    table.add_row("PPO on true reward", f"{summary['return_true']:.1f}")
    table.add_row("random", f"{summary['return_random']:.1f}")
    console.print(table)
    note = summary["normalized_return_note"]
    normalized = f"undefined ({note.split(': ', 1)[-1]})" if note else f"{summary['normalized_return']:.3f}"
    console.print(
        f"normalized return {normalized} | reward correlation: per transition "
        f"{summary['pearson_transition']:.3f}, per 50-step segment {summary['pearson_segment']:.3f} | "
        f"labels {summary['labels_used']} | {summary['wall_s']:.0f} s"
    )
    console.print(
        f"run folder: {summary['run_dir']} (summary.json, learning_curve.png, reward_model.rlab, tensorboard/)"
    )


from rewardlab.cli._sweep import report as _report_command  # noqa: E402
from rewardlab.cli._sweep import sweep as _sweep_command  # noqa: E402

app.command("sweep")(_sweep_command)
app.command("report")(_report_command)

from rewardlab.cli._distance import distance as _distance_command  # noqa: E402

app.command("distance")(_distance_command)

from rewardlab.cli._irl import irl_expert as _irl_expert_command  # noqa: E402

app.command("irl-expert")(_irl_expert_command)

from rewardlab.cli._llm import llm_app as _llm_app  # noqa: E402

app.add_typer(_llm_app, name="llm")

from rewardlab.cli._label import label_app as _label_app  # noqa: E402

app.add_typer(_label_app, name="label")

from rewardlab.cli._vlm import vlm_app as _vlm_app  # noqa: E402

app.add_typer(_vlm_app, name="vlm")

from rewardlab.cli._search import eureka as _eureka_command  # noqa: E402

app.command("eureka")(_eureka_command)

from rewardlab.cli._train import train as _train_command  # noqa: E402

app.command("train")(_train_command)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
