"""``rewardlab sweep FILE`` and ``rewardlab report SWEEP_DIR``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from rewardlab.cli._common import RUNTIME_ERROR, fail


def sweep(
    file: Path = typer.Argument(
        ..., help="Sweep file (.toml, .yaml): target = 'module:function', then tables base, grid and optionally random."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Sweep folder; default runs/sweeps/<sweep name>. Rerunning into it resumes."
    ),
    backend: str | None = typer.Option(
        None,
        help="local (warm worker processes on this machine), ray, or vmap (every run in one compiled call, for "
        "targets with a vmappable core); default the file's options.backend, else local.",
    ),
    workers: int | None = typer.Option(
        None, help="Runs at a time; default the CPU cores (local) or the local Ray's CPUs."
    ),
    address: str | None = typer.Option(
        None, help="Address of a running Ray cluster (with --backend ray); default starts a local Ray."
    ),
    retry_failed: bool = typer.Option(
        False, "--retry-failed", help="Redo runs recorded as failed (finished runs are always skipped)."
    ),
    threads_per_run: int | None = typer.Option(None, help="BLAS/XLA/torch threads per run; default cores ÷ workers."),
    run_timeout: float | None = typer.Option(
        None, help="Seconds a run may take; one still going then is killed and recorded as failed."
    ),
    force: bool = typer.Option(
        False,
        "--force",
        help="Redo finished runs made with other arguments (the base was edited) instead of refusing to resume.",
    ),
    fresh_process: bool | None = typer.Option(
        None,
        "--fresh-process/--warm-workers",
        help="local: a new process for every run (for targets that leak state), or warm workers that run many (default).",
    ),
    compile_cache: str | None = typer.Option(
        None,
        help="Folder of JAX's persistent compilation cache shared by the workers and later sweeps; 'off' for none. "
        "Default $JAX_COMPILATION_CACHE_DIR, else ~/.cache/rewardlab/jax.",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="List the runs and their state, run nothing."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress lines."),
) -> None:
    """Run every point of a sweep file, skipping runs already finished in the sweep folder.

    Each run gets its own seed and folder (args.json, output.log, metrics.sqlite,
    tensorboard/, result.json), on warm worker processes that import the target once; the
    sweep folder gets results.parquet, rebuilt after every run.
    Kill it and run the same command again to resume. A run is identified by all its
    arguments: if the sweep folder holds finished runs made with other arguments, the command
    refuses (use a new --out, or --force to redo them).
    """
    from rewardlab._io import check_folder
    from rewardlab.sweeps import load_sweep, run_states, run_sweep

    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # targets of the current project import as with `python -m`
    try:
        # checked here rather than by typer so that every error is the same one line
        if workers is not None and workers < 1:
            raise ValueError(f"workers: expected an integer >= 1, got {workers}")
        if threads_per_run is not None and threads_per_run < 1:
            raise ValueError(f"threads_per_run: expected an integer >= 1, got {threads_per_run}")
        spec = load_sweep(file)
        folder = out if out is not None else Path("runs") / "sweeps" / str(spec.name)
        check_folder(folder, "out")
        if dry_run:
            states = run_states(spec, folder)
            for state in states:
                text = "to run" if state.status is None else state.status
                if state.changed:
                    text += f", made with other arguments ({'; '.join(state.changed)})"
                typer.echo(f"{state.run.name}\t{text}")
            typer.echo(f"{len(states)} runs -> {folder}")
            return
        from rich.console import Console

        console = Console(stderr=True, highlight=False, soft_wrap=True)
        given = {
            "backend": backend,
            "workers": workers,
            "threads_per_run": threads_per_run,
            "run_timeout": run_timeout,
            "fresh_process": fresh_process,
            "compile_cache": None if compile_cache is None else False if compile_cache == "off" else compile_cache,
        }
        options = {**spec.options, **{name: value for name, value in given.items() if value is not None}}
        frame = run_sweep(
            spec,
            folder,
            address=address,
            retry_failed=retry_failed,
            log=None if quiet else console.print,
            force=force,
            **options,
        )
    except (ValueError, ImportError) as error:
        fail(str(error).replace("out_dir: ", "out: ", 1).replace("force=True (rewardlab sweep --force)", "--force"))
    except OSError as error:
        fail(str(error), RUNTIME_ERROR)
    failed = int((frame["status"] != "ok").sum()) if len(frame) else 0
    typer.echo(
        f"{len(frame)} runs complete ({failed} failed); results: {folder / 'results.parquet'}; "
        f"report: rewardlab report {folder}"
    )


def report(
    sweep_dir: Path = typer.Argument(..., help="A sweep folder (holding results.parquet)."),
    metric: list[str] | None = typer.Option(
        None, "--metric", help="Final metric to tabulate (repeatable); default: every numeric final metric."
    ),
    curve: list[str] | None = typer.Option(
        None, "--curve", help="Logged metric to plot against step (repeatable); default all."
    ),
    out: Path | None = typer.Option(None, "--out", help="Report folder; default SWEEP_DIR/report."),
) -> None:
    """Learning curves per design with bands over seeds, and a final-performance table (IQM, bootstrap CIs), as PNG and Markdown."""
    from rewardlab.sweeps import make_report

    try:
        result = make_report(sweep_dir, metrics=metric or None, curves=curve or None, out_dir=out)
    except ValueError as error:
        fail(str(error).replace("out_dir: ", "out: ", 1))
    except OSError as error:
        fail(str(error), RUNTIME_ERROR)
    typer.echo(f"report: {result.markdown_path} ({len(result.figures)} figures)")
