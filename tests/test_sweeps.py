"""The sweep layer: specs, sweep files, the local backend, failures, kill-and-rerun, results and report."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import typing
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from experiments.bandit import Args, main
from rewardlab.cli import app
from rewardlab.sweeps import (
    Sweep,
    check_choices,
    iqm,
    load_metrics,
    load_results,
    load_sweep,
    loguniform,
    make_report,
    mean_band,
    parse_args,
    random_search,
    read_metrics,
    run_states,
    run_sweep,
    stratified_bootstrap_ci,
)
from rewardlab.sweeps._coerce import field_types

REPO = Path(__file__).resolve().parents[1]
GRID = {"teacher": ["oracle", "stochastic", "mistake"], "seed": [0, 1, 2, 3]}


def _sweep(**base) -> Sweep:
    return Sweep(main, Args(num_steps=30, log_every=10, **base), grid=GRID)


# Specs ------------------------------------------------------------------------------------------


def test_grid_names_designs_and_seeds():
    runs = _sweep().runs()
    assert len(runs) == 12
    assert len({run.name for run in runs}) == 12
    assert runs[0].name == "teacher=oracle__seed0"
    assert [run.design for run in runs[:4]] == ["teacher=oracle"] * 4
    assert [run.seed for run in runs[:4]] == [0, 1, 2, 3]
    assert runs[5].args == dataclasses.replace(Args(num_steps=30, log_every=10), teacher="stochastic", seed=1)


def test_run_names_encode_the_environment_when_the_args_have_one():
    @dataclasses.dataclass(frozen=True)
    class EnvArgs:
        env_id: str = "Pendulum-v1"
        labels: int = 10
        seed: int = 0

    names = [run.name for run in Sweep(main, EnvArgs(), grid={"labels": [10, 20], "seed": [0]}).runs()]
    assert names == ["Pendulum-v1__labels=10__seed0", "Pendulum-v1__labels=20__seed0"]


def test_random_search_is_reproducible_and_crossed_with_the_grid():
    search = random_search({"learning_rate": loguniform(1e-3, 1e-1)}, num_samples=3, seed=7)
    sweep = Sweep(main, Args(), grid={"seed": [0, 1]}, random=search)
    runs = sweep.runs()
    assert len(runs) == 6
    rates = [run.args.learning_rate for run in runs]
    assert rates == [run.args.learning_rate for run in sweep.runs()]
    assert all(1e-3 <= rate < 1e-1 for rate in rates)
    assert rates[0] == rates[1] and rates[0] != rates[2]  # seeds inner, samples outer


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ({"teachr": ["oracle"]}, "grid.teachr: not a field of Args"),
        ({"labels": ["many"]}, "grid.labels: expected int, got 'many'"),
        ({"labels": 5}, "grid.labels: expected a list of values"),
        ({"labels": []}, "grid.labels: expected at least one value"),
    ],
)
def test_bad_grids_name_the_field(grid, message):
    with pytest.raises(ValueError, match=message):
        Sweep(main, Args(), grid=grid)


def test_a_choice_outside_the_literal_is_caught_when_the_sweep_is_made():
    with pytest.raises(
        ValueError, match=r"grid.teacher: expected one of \('oracle', 'stochastic', 'mistake'\), got 'psychic'"
    ):
        Sweep(main, Args(), grid={"teacher": ["psychic"]})


def test_invalid_argument_combinations_are_caught_before_running():
    sweep = Sweep(main, Args(), grid={"labels": [0]})  # an int, but Args.__post_init__ wants >= 1
    with pytest.raises(ValueError, match=r"grid: the run .* labels: expected an integer >= 1"):
        sweep.runs()


# Choices of the studies' arguments ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ChoiceArgs:
    algo: Literal["ppo", "sac"] = "ppo"
    teacher: Literal["oracle", "mistake"] | None = None
    designs: tuple[Literal["single", "ensemble"], ...] = ("single",)
    name: str = "anything"

    def __post_init__(self) -> None:
        check_choices(self)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"algo": "td3"}, "algo: expected one of ('ppo', 'sac'), got 'td3'"),
        ({"teacher": "psychic"}, "teacher: expected Optional[Literal['oracle', 'mistake']], got 'psychic'"),
        ({"designs": ("single", "median")}, "designs: expected one of ('single', 'ensemble'), got 'median'"),
    ],
)
def test_check_choices_names_the_field_the_choices_and_the_value(overrides, message):
    assert ChoiceArgs(teacher="mistake", designs=("ensemble", "single")).teacher == "mistake"
    with pytest.raises(ValueError) as info:  # noqa: PT011 - the message is compared in full below
        ChoiceArgs(**overrides)
    assert str(info.value) == message


def test_check_choices_wants_a_dataclass_instance():
    with pytest.raises(ValueError, match="args: expected a dataclass instance, got type"):
        check_choices(ChoiceArgs)


STUDY_CHOICES = [
    ("bandit", "teacher", "psychic"),
    ("bpref", "teacher", "psychic"),
    ("bpref", "env_id", "CartPole-v1"),
    ("bpref", "algo", "td3"),
    ("heron", "env_id", "CartPole-v1"),
    ("heron", "method", "reward_sum"),
    ("heron", "algo", "td3"),
    ("adversarial_irl", "env_id", "CartPole-v1"),
    ("adversarial_irl", "method", "bc"),
    ("adversarial_irl", "algo", "td3"),
    ("adversarial_irl", "expert_algo", "td3"),
    ("irl_misspecification", "behaviours", ("optimal", "lazy")),
    ("overoptimization", "reward_design", "median"),
]


@pytest.mark.parametrize(("study", "field", "bad"), STUDY_CHOICES)
def test_every_study_checks_its_choices_through_the_literal(study, field, bad):
    import importlib

    args_cls = importlib.import_module(f"experiments.{study}").Args
    choices = typing.get_args(field_types(args_cls)[field])
    if typing.get_origin(field_types(args_cls)[field]) is tuple:  # tuple[Literal[...], ...]
        choices = typing.get_args(choices[0])
    wrong = bad[-1] if isinstance(bad, tuple) else bad
    with pytest.raises(ValueError) as info:  # noqa: PT011 - the message is compared in full below
        args_cls(**{field: bad})
    assert str(info.value) == f"{field}: expected one of {choices}, got {wrong!r}"


def test_study_choices_match_the_library_tables():
    import experiments.adversarial_irl
    import experiments.bpref
    import experiments.heron
    import experiments.irl_misspecification
    from rewardlab.irl import ADVERSARIAL_METHODS, BEHAVIOUR_MODELS
    from rewardlab.preferences import HERON_SIGMAS, TEACHER_PRESETS

    def choices(args_cls, field):
        tp = field_types(args_cls)[field]
        return typing.get_args(typing.get_args(tp)[0] if typing.get_origin(tp) is tuple else tp)

    assert choices(experiments.bpref.Args, "teacher") == tuple(TEACHER_PRESETS)
    assert choices(experiments.bpref.Args, "env_id") == tuple(experiments.bpref.DEFAULT_ALGO)
    assert choices(experiments.heron.Args, "env_id") == tuple(HERON_SIGMAS)
    assert choices(experiments.adversarial_irl.Args, "method") == ADVERSARIAL_METHODS
    assert choices(experiments.irl_misspecification.Args, "behaviours") == BEHAVIOUR_MODELS


def test_a_bad_choice_on_the_command_line_is_a_usage_error(capsys):
    with pytest.raises(SystemExit):
        parse_args(Args, ["--teacher", "psychic"])
    assert "--teacher: expected one of ('oracle', 'stochastic', 'mistake'), got 'psychic'" in capsys.readouterr().err


def test_base_must_be_a_dataclass_instance():
    with pytest.raises(ValueError, match="base: expected a dataclass instance"):
        Sweep(main, Args, grid={})


# Sweep files ------------------------------------------------------------------------------------


def _write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_toml_and_yaml_files_give_the_same_sweep(tmp_path):
    toml = _write(
        tmp_path,
        'target = "experiments.bandit:main"\n[base]\nnum_steps = 30\n[grid]\nteacher = ["oracle", "mistake"]\nseed = [0, 1]\n',
    )
    yaml = _write(
        tmp_path,
        "target: experiments.bandit:main\nbase: {num_steps: 30}\ngrid:\n  teacher: [oracle, mistake]\n  seed: [0, 1]\n",
        "s.yaml",
    )
    a, b = load_sweep(toml), load_sweep(yaml)
    assert [r.name for r in a.runs()] == [r.name for r in b.runs()]
    assert a.runs()[0].args.num_steps == 30
    assert a.name == "s"


def test_sweep_file_random_search(tmp_path):
    path = _write(
        tmp_path,
        'target = "experiments.bandit:main"\n[grid]\nseed = [0]\n'
        "[random]\nnum_samples = 4\n[random.space]\nlearning_rate = { loguniform = [0.01, 1.0] }\n"
        'teacher = { choice = ["oracle", "mistake"] }\n',
    )
    runs = load_sweep(path).runs()
    assert len(runs) == 4
    assert {run.args.teacher for run in runs} <= {"oracle", "mistake"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('target = "experiments.bandit:main"\n[grid]\nteachr = ["oracle"]\n', "grid.teachr: not a field of Args"),
        (
            'target = "experiments.bandit:main"\n[base]\nnum_steps = "many"\n',
            "base.num_steps: expected int, got 'many'",
        ),
        ('target = "experiments.bandit:main"\n[base]\nnum_steps = -1\n', "base: num_steps: expected an integer >= 1"),
        ('target = "experiments.nope:main"\n', "target: cannot import module 'experiments.nope'"),
        ('target = "experiments.bandit:mian"\n', "target: module 'experiments.bandit' has no attribute 'mian'"),
        ("[grid]\nseed = [0]\n", "target: missing"),
        ('target = "experiments.bandit:main"\nextra = 1\n', "extra: unknown key"),
        ('target = "experiments.bandit:main"\n[grid]\nseed = 3\n', "grid.seed: expected a list of values"),
        (
            'target = "experiments.bandit:main"\n[random]\nnum_samples = 2\n[random.space]\nlabels = { normal = [0, 1] }\n',
            "random.space.labels: unknown distribution 'normal'",
        ),
        (
            'target = "experiments.bandit:main"\n[random]\nnum_samples = 2\n[random.space]\nlearning_rate = { loguniform = [0, 1] }\n',
            "random.space.learning_rate.loguniform: loguniform: expected 0 < low < high",
        ),
        ('target = "experiments.bandit:main\n', "s.toml: invalid TOML"),
    ],
)
def test_bad_sweep_files_give_one_line_errors_naming_the_key(tmp_path, text, message):
    with pytest.raises(ValueError, match=message) as info:
        load_sweep(_write(tmp_path, text))
    assert "\n" not in str(info.value)


# Running ----------------------------------------------------------------------------------------


def _check_complete(sweep_dir: Path, expected: int = 12) -> pd.DataFrame:
    results = load_results(sweep_dir)
    assert len(results) == expected
    assert results["run"].is_unique
    assert sorted(p.name for p in (sweep_dir / "runs").iterdir()) == sorted(results["run"])
    return results


def test_local_sweep_of_12_runs_writes_runs_results_and_resumes(tmp_path):
    sweep = _sweep()
    results = run_sweep(sweep, tmp_path, workers=2, log=None)
    results = _check_complete(tmp_path)
    assert (results["status"] == "ok").all()
    assert set(results["teacher"]) == {"oracle", "stochastic", "mistake"}
    # a run's result equals calling the target directly: each run has its own seed
    row = results.set_index("run").loc["teacher=mistake__seed2"]
    direct = main(Args(num_steps=30, log_every=10, teacher="mistake", seed=2))
    assert row["correlation"] == pytest.approx(direct["correlation"])
    assert row["seed"] == 2
    run_dir = tmp_path / "runs" / "teacher=mistake__seed2"
    marker = json.loads((run_dir / "result.json").read_text())
    assert marker["status"] == "ok" and marker["args"]["teacher"] == "mistake"
    metrics = read_metrics(run_dir)
    assert list(metrics.columns) == ["step", "name", "value"]
    assert sorted(metrics[metrics["name"] == "loss"]["step"]) == [0, 10, 20, 30]
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    stacked = load_metrics(tmp_path)
    assert len(stacked) == 12 * 8 and set(stacked["design"]) == {f"teacher={t}" for t in GRID["teacher"]}
    # rerun: complete runs are skipped; a half-written one (torn marker, stray files) is wiped and redone
    half = tmp_path / "runs" / "teacher=oracle__seed1"
    (half / "stale.txt").write_text("left by a killed run")
    (half / "result.json").write_text('{"status": "ok", "metr')
    mtimes = {p.name: (p / "result.json").stat().st_mtime_ns for p in (tmp_path / "runs").iterdir() if p != half}
    lines = []
    run_sweep(sweep, tmp_path, workers=2, log=lines.append)
    assert "11 already complete, 1 to run" in lines[0]
    assert mtimes == {
        p.name: (p / "result.json").stat().st_mtime_ns for p in (tmp_path / "runs").iterdir() if p != half
    }
    assert not (half / "stale.txt").exists()
    assert json.loads((half / "result.json").read_text())["status"] == "ok"
    _check_complete(tmp_path)


def test_a_crashing_run_is_recorded_with_its_traceback_and_the_sweep_goes_on(tmp_path):
    sweep = Sweep(main, Args(num_steps=20), grid={"learning_rate": [0.1, 1e9], "seed": [0, 1]})
    results = run_sweep(sweep, tmp_path, workers=2, log=None).set_index("run")
    assert list(results["status"]) == ["ok", "ok", "failed", "failed"]
    assert results.loc["learning_rate=1e+09__seed0", "error"].startswith(
        "FloatingPointError: Bradley-Terry training diverged"
    )
    marker = json.loads((tmp_path / "runs" / "learning_rate=1e+09__seed0" / "result.json").read_text())
    assert "Traceback" in marker["traceback"] and "FloatingPointError" in marker["traceback"]
    assert "diverged" in (tmp_path / "runs" / "learning_rate=1e+09__seed0" / "output.log").read_text()
    # failed runs are complete: skipped on rerun unless asked to retry
    lines = []
    run_sweep(sweep, tmp_path, workers=2, log=lines.append)
    assert "4 already complete" in lines[0]
    run_sweep(sweep, tmp_path, workers=2, retry_failed=True, log=lines.append)
    assert any("2 to run" in line for line in lines)


def test_warm_workers_run_many_runs_each_with_its_own_seed(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    import random

    import warm_worker_target as target

    sweep = Sweep(target.main, target.Args(), grid={"seed": list(range(6))})
    results = run_sweep(sweep, tmp_path / "warm", workers=2, log=None).set_index("run")
    assert (results["status"] == "ok").all()
    assert results["pid"].nunique() <= 2  # two workers ran all six runs
    assert results["runs_before"].max() >= 2  # so some worker ran three or more
    # each run was seeded for itself, whatever ran before it in the same process
    assert results["draw"].tolist() == [random.Random(seed).random() for seed in range(6)]
    fresh = run_sweep(sweep, tmp_path / "fresh", workers=2, fresh_process=True, log=None)
    assert fresh["pid"].nunique() == 6 and (fresh["runs_before"] == 0).all()
    assert fresh["draw"].tolist() == results["draw"].tolist()


def test_a_run_that_kills_its_worker_is_recorded_and_a_new_worker_takes_the_rest(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    import warm_worker_target as target

    sweep = Sweep(target.main, target.Args(crash_seed=2), grid={"seed": list(range(5))})
    results = run_sweep(sweep, tmp_path, workers=1, log=None).set_index("run")
    assert results["status"].tolist() == ["ok", "ok", "failed", "ok", "ok"]
    assert results.loc["seed2", "error"] == "the run's process was killed by SIGKILL"
    assert results.loc["seed0", "pid"] == results.loc["seed1", "pid"]  # one warm worker ran both
    assert results.loc["seed3", "pid"] == results.loc["seed4", "pid"] != results.loc["seed0", "pid"]
    assert results.loc["seed3", "runs_before"] == 0  # the replacement is a fresh process
    assert json.loads((tmp_path / "runs" / "seed2" / "result.json").read_text())["status"] == "failed"
    lines: list[str] = []
    run_sweep(sweep, tmp_path, workers=1, log=lines.append)  # a failed run is complete: the rerun skips it
    assert "5 already complete, 0 to run" in lines[0]


def test_sweep_file_options_set_how_it_runs_and_the_command_line_overrides_them(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    monkeypatch.setenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")  # cache even this tiny program
    cache = tmp_path / "jax-cache"
    sweep_file = tmp_path / "warm.toml"
    sweep_file.write_text(
        'target = "warm_worker_target:main"\n[base]\njit = true\n[grid]\nseed = [0, 1, 2, 3]\n'
        f'[options]\nworkers = 2\nfresh_process = true\ncompile_cache = "{cache}"\n'
    )
    assert load_sweep(sweep_file).options == {"workers": 2, "fresh_process": True, "compile_cache": str(cache)}
    runner = CliRunner()
    result = runner.invoke(app, ["sweep", str(sweep_file), "--out", str(tmp_path / "a"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert load_results(tmp_path / "a")["pid"].nunique() == 4  # fresh_process from the file
    assert any(path.name.endswith("-cache") for path in cache.iterdir())  # the workers wrote JAX's cache
    result = runner.invoke(app, ["sweep", str(sweep_file), "--out", str(tmp_path / "b"), "--warm-workers", "--quiet"])
    assert result.exit_code == 0, result.output
    assert load_results(tmp_path / "b")["pid"].nunique() <= 2
    for options, message in (
        ("[options]\nbackend = 3\n", "options.backend: expected str, got 3"),
        ("[options]\nworkers = true\n", "options.workers: expected int, got True"),
        ("[options]\nnice = 1\n", "options.nice: unknown option; expected one of backend, workers"),
    ):
        sweep_file.write_text('target = "warm_worker_target:main"\n' + options)
        with pytest.raises(ValueError, match=message):
            load_sweep(sweep_file)
    with pytest.raises(ValueError, match="compile_cache: expected True, False or a folder, got 3"):
        run_sweep(_sweep(), tmp_path / "c", compile_cache=3, log=None)


def test_a_stalled_run_is_killed_at_run_timeout_with_its_stacks_and_the_sweep_finishes(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent))  # run processes import the target as this one does
    import stalling_target

    sweep = Sweep(stalling_target.main, stalling_target.Args(), grid={"seed": [0, 1]})
    results = run_sweep(sweep, tmp_path / "sweep", workers=2, run_timeout=15, log=None).set_index("run")
    assert results.loc["seed0", "status"] == "ok"
    assert results.loc["seed1", "status"] == "failed"
    assert "run_timeout=15" in results.loc["seed1", "error"]
    marker = json.loads((tmp_path / "sweep" / "runs" / "seed1" / "result.json").read_text())
    assert "_wait_forever" in marker["traceback"]  # the Python stacks when it was killed
    assert "_wait_forever" in (tmp_path / "sweep" / "runs" / "seed1" / "output.log").read_text()


def test_a_metric_of_several_kinds_is_stored_as_text_and_never_blocks_a_resume(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    import mixed_metric_target as target

    sweep = Sweep(target.main, target.Args(scale=2.0), grid={"seed": [0, 1, 2]})
    results = run_sweep(sweep, tmp_path, workers=2, log=None).set_index("run")
    assert list(results["status"]) == ["ok"] * 3
    assert list(results["score"]) == ["2.0", "diverged", "6.0"]  # numbers and text: the column is text
    assert list(results["ok"]) == [True, False, True]
    stored = load_results(tmp_path).set_index("run")
    assert list(stored["score"]) == ["2.0", "diverged", "6.0"]
    assert pd.to_numeric(stored["score"], errors="coerce").tolist()[::2] == [2.0, 6.0]
    # a rerun finds everything complete and rewrites the table, as does one after a torn marker
    lines: list[str] = []
    run_sweep(sweep, tmp_path, workers=2, log=lines.append)
    assert "3 already complete, 0 to run" in lines[0]
    (tmp_path / "runs" / "seed2" / "result.json").write_text('{"status": "ok"}')  # valid JSON, fields missing
    lines.clear()
    assert len(run_sweep(sweep, tmp_path, workers=2, log=lines.append)) == 3
    assert "2 already complete, 1 to run" in lines[0]
    # the report summarises the runs whose value is a number
    row = make_report(tmp_path, curves=[]).final_table.set_index("metric").loc["score"]
    assert row["runs"] == 2 and row["mean"] == pytest.approx(4.0)


def test_resuming_with_other_base_arguments_is_refused_until_forced(tmp_path):
    first = Sweep(main, Args(num_steps=20, log_every=10), grid={"seed": [0, 1]})
    run_sweep(first, tmp_path, workers=2, log=None)
    before = {p.name: (p / "result.json").stat().st_mtime_ns for p in (tmp_path / "runs").iterdir()}
    manifest = (tmp_path / "sweep.json").read_text()
    edited = Sweep(main, Args(num_steps=30, log_every=10), grid={"seed": [0, 1, 2]})
    with pytest.raises(
        ValueError, match=r"out_dir: 2 finished run\(s\) .* other arguments \(num_steps: 20 -> 30\).*force=True"
    ):
        run_sweep(edited, tmp_path, workers=2, log=None)
    assert (tmp_path / "sweep.json").read_text() == manifest  # refused before touching the folder
    assert {p.name: (p / "result.json").stat().st_mtime_ns for p in (tmp_path / "runs").iterdir()} == before
    states = run_states(edited, tmp_path)
    assert [(s.run.name, s.status, s.changed) for s in states] == [
        ("seed0", "ok", ("num_steps: 20 -> 30",)),
        ("seed1", "ok", ("num_steps: 20 -> 30",)),
        ("seed2", None, ()),
    ]
    results = run_sweep(edited, tmp_path, workers=2, force=True, log=None)
    assert len(results) == 3 and set(results["num_steps"]) == {30}
    assert all(not s.changed for s in run_states(edited, tmp_path))
    # extending the grid with the same base arguments still resumes
    lines: list[str] = []
    run_sweep(Sweep(main, Args(num_steps=30, log_every=10), grid={"seed": [0, 1, 2, 3]}), tmp_path, log=lines.append)
    assert "3 already complete, 1 to run" in lines[0]


def test_vmapped_grid_gives_distinct_float_values_distinct_labels():
    from rewardlab.sweeps import grid_designs

    _, labels = grid_designs({"lr": [0.123456789, 0.123456788], "labels": [10]})
    assert labels == ["lr=0.123456789__labels=10", "lr=0.123456788__labels=10"]


def test_distinct_float_values_get_distinct_design_names_that_stay_short():
    sweep = Sweep(main, Args(), grid={"learning_rate": [0.123456789, 0.123456788], "seed": [0, 1]})
    designs = [run.design for run in sweep.runs()]
    assert designs == ["learning_rate=0.123456789"] * 2 + ["learning_rate=0.123456788"] * 2
    assert len({run.name for run in sweep.runs()}) == 4
    short = Sweep(main, Args(), grid={"learning_rate": [0.1, 1 / 3, 1e-4, 1e9]}).runs()
    assert [run.design for run in short] == [
        "learning_rate=0.1",
        "learning_rate=0.3333",
        "learning_rate=0.0001",
        "learning_rate=1e+09",
    ]

    # values whose text is the same still get distinct names
    @dataclasses.dataclass(frozen=True)
    class AnyArgs:
        value: typing.Any = 0
        seed: int = 0

    names = [run.design for run in Sweep(main, AnyArgs(), grid={"value": [1, "1"]}).runs()]
    assert len(set(names)) == 2 and all(name.startswith("value=1__") for name in names)


def _nested_target(args: Args) -> dict[str, float]:
    return {"x": 1.0}


def test_a_lambda_or_nested_target_is_a_clear_error_before_anything_runs(tmp_path):
    def nested(args: Args) -> dict[str, float]:
        return {"x": 1.0}

    for fn, kind in ((lambda args: {"x": 1.0}, "a lambda"), (nested, "a nested function")):
        sweep = Sweep(fn, Args(num_steps=5), grid={"seed": [0]})
        with pytest.raises(ValueError, match=f"fn: .*expected a module-level function .*got {kind}"):
            run_sweep(sweep, tmp_path / "out", log=None)
    assert not (tmp_path / "out").exists()

    @dataclasses.dataclass(frozen=True)
    class LocalArgs:
        seed: int = 0

    with pytest.raises(ValueError, match=r"base: .*module-level dataclass, got .*LocalArgs"):
        run_sweep(Sweep(_nested_target, LocalArgs(), grid={"seed": [0]}), tmp_path / "out", log=None)
    assert not (tmp_path / "out").exists()


def test_an_output_folder_that_is_a_file_is_a_clear_error(tmp_path):
    file = tmp_path / "notes.txt"
    file.write_text("mine")
    for out in (file, file / "sweep"):
        with pytest.raises(ValueError, match="out_dir: expected a folder"):
            run_sweep(_sweep(), out, log=None)
    assert file.read_text() == "mine"


def test_bad_run_sweep_arguments(tmp_path):
    with pytest.raises(ValueError, match="backend: expected one of"):
        run_sweep(_sweep(), tmp_path, backend="slurm")
    with pytest.raises(ValueError, match="workers: expected an integer >= 1"):
        run_sweep(_sweep(), tmp_path, workers=0)
    with pytest.raises(ValueError, match="address: only the ray backend"):
        run_sweep(_sweep(), tmp_path, address="127.0.0.1:6379")
    with pytest.raises(ValueError, match="run_timeout: expected a number of seconds > 0"):
        run_sweep(_sweep(), tmp_path, run_timeout=0)


def test_ray_backend_without_ray_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ImportError, match=r"pip install 'rewardlab\[ray\]'"):
        run_sweep(_sweep(), tmp_path, backend="ray")
    assert not (tmp_path / "runs").exists()


def test_killed_sweep_is_finished_by_the_same_command_without_losing_or_duplicating_runs(tmp_path):
    sweep_file = tmp_path / "kill.toml"
    sweep_file.write_text(
        'target = "experiments.bandit:main"\n[base]\nnum_steps = 20000\nlog_every = 5000\n'
        '[grid]\nteacher = ["oracle", "stochastic", "mistake"]\nseed = [0, 1, 2, 3]\n'
    )
    out = tmp_path / "sweep"
    command = [
        sys.executable,
        "-m",
        "rewardlab.cli._main",
        "sweep",
        str(sweep_file),
        "--out",
        str(out),
        "--workers",
        "2",
        "--quiet",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def markers() -> dict[str, int]:
        runs = out / "runs"
        return {p.parent.name: p.stat().st_mtime_ns for p in runs.glob("*/result.json")} if runs.exists() else {}

    while len(markers()) < 3 and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the sweep finished before it could be killed"
    finished_before = markers()
    started = {p.name for p in (out / "runs").iterdir()}
    half_written = started - set(finished_before)
    time.sleep(3.0)  # runs of the killed sweep die with it: none may finish afterwards
    assert markers() == finished_before
    assert 3 <= len(finished_before) < 12

    rerun = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    results = _check_complete(out)
    assert (results["status"] == "ok").all()
    after = markers()
    assert {name: after[name] for name in finished_before} == finished_before  # finished runs untouched
    for name in half_written:  # half-written runs redone from scratch
        assert after[name] > max(finished_before.values())


def test_a_script_without_a_main_guard_runs_its_sweep_once(tmp_path):
    # spawn children would re-run such a script; with an importable target they must not.
    script = tmp_path / "study.py"
    script.write_text(
        "from rewardlab.sweeps import Sweep\n"
        "from experiments.bandit import Args, main\n"
        f"results = Sweep(main, Args(num_steps=50), grid={{'seed': range(3)}}).run({str(tmp_path / 'sweep')!r}, workers=2, log=None)\n"
        "print('RUNS', len(results), (results.status == 'ok').sum())\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("RUNS") == 1 and "RUNS 3 3" in done.stdout


# Statistics and report --------------------------------------------------------------------------


def test_iqm_by_hand():
    assert float(iqm(np.array([10.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, -50.0]))) == pytest.approx(3.5)  # keeps 2..5
    np.testing.assert_allclose(iqm(np.array([[1.0, 2.0, 3.0, 4.0], [4.0, 4.0, 4.0, 40.0]])), [2.5, 4.0])
    with pytest.raises(ValueError, match="scores: expected at least one score"):
        iqm(np.zeros(0))


def test_stratified_bootstrap_resamples_within_tasks():
    # Task A's runs all equal 0, task B's all equal 10: any stratified resample pools four 0s and four 10s.
    scores = np.array([[0.0, 10.0]] * 4)
    interval = stratified_bootstrap_ci(scores, statistic=lambda x: x.mean(axis=-1))
    assert interval == pytest.approx((5.0, 5.0, 5.0))
    wide = stratified_bootstrap_ci(np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]))
    assert wide.low < wide.estimate < wide.high
    assert stratified_bootstrap_ci([np.array([3.0])]) == (3.0, 3.0, 3.0)
    with pytest.raises(ValueError, match="scores_per_task: expected finite scores"):
        stratified_bootstrap_ci(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="confidence"):
        stratified_bootstrap_ci(np.ones(3), confidence=1.5)


def test_mean_band_contains_the_mean_and_collapses_for_identical_seeds():
    mean, low, high = mean_band(np.array([[1.0, 2.0, 3.0]] * 3))
    np.testing.assert_allclose([mean, low, high], [[1.0, 2.0, 3.0]] * 3)
    rng = np.random.default_rng(0)
    mean, low, high = mean_band(rng.normal(size=(6, 5)))
    assert np.all(low <= mean) and np.all(mean <= high) and np.all(high > low)


def test_report_and_cli(tmp_path):
    sweep_file = tmp_path / "bandit.toml"
    sweep_file.write_text(
        'target = "experiments.bandit:main"\n[base]\nnum_steps = 30\nlog_every = 10\n'
        '[grid]\nteacher = ["oracle", "stochastic", "mistake"]\nlearning_rate = [1.0]\nseed = [0, 1, 2, 3]\n'
    )
    runner = CliRunner()
    out = tmp_path / "sweep"
    result = runner.invoke(app, ["sweep", str(sweep_file), "--out", str(out), "--workers", "2", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "12 runs complete (0 failed)" in result.output
    result = runner.invoke(app, ["report", str(out)])
    assert result.exit_code == 0, result.output
    report_dir = out / "report"
    markdown = (report_dir / "report.md").read_text()
    assert "| teacher=oracle__learning_rate=1.0 | 4 | 0 |" in markdown
    for name in ("final_correlation.png", "final_regret.png", "curve_loss.png", "curve_correlation.png"):
        assert (report_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({name})" in markdown
    table = make_report(out, metrics=["correlation"], curves=["loss"]).final_table
    results = load_results(out)
    oracle = results[results["teacher"] == "oracle"]["correlation"].to_numpy()
    row = table[table["design"] == "teacher=oracle__learning_rate=1.0"].iloc[0]
    assert row["iqm"] == pytest.approx(float(iqm(oracle)))
    assert row["iqm_low"] <= row["iqm"] <= row["iqm_high"]
    assert row["mean"] == pytest.approx(oracle.mean())


def test_a_report_of_many_designs_labels_them_shortly_and_cuts_no_text_off(tmp_path, monkeypatch):
    import jax.numpy as jnp

    import rewardlab.sweeps._report as report_module
    from rewardlab.sweeps import vmap_sweep

    def fn(design, key):
        curve = jnp.arange(6.0) * design["a_rather_long_learning_rate"] + design["an_equally_long_label_budget"]
        return {"score": curve[-1], "curve": curve}

    grid = {"a_rather_long_learning_rate": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], "an_equally_long_label_budget": [10, 20]}
    vmap_sweep(fn, grid, seeds=[0, 1, 2], out_dir=tmp_path)
    drawn = []

    def checked_write(path, figure, **options):
        renderer = figure.canvas.get_renderer()
        figure.draw(renderer)
        drawn_bounds = figure.get_tightbbox(renderer)  # inches: every drawn text and axes
        width, height = figure.get_size_inches()
        assert drawn_bounds.x0 >= -0.01 and drawn_bounds.y0 >= -0.01, path
        assert drawn_bounds.x1 <= width + 0.01 and drawn_bounds.y1 <= height + 0.01, path
        drawn.append(Path(path).name)
        return original(path, figure, **options)

    original = report_module.atomic_write_figure
    monkeypatch.setattr(report_module, "atomic_write_figure", checked_write)
    report = make_report(tmp_path)
    assert drawn == ["final_score.png", "curve_curve.png", "curves_curve_by_design.png"]
    markdown = report.markdown_path.read_text()
    # 12 designs of 60 characters: the figures say D1..D12, a legend table names them
    assert "| D1 | a_rather_long_learning_rate=0.1__an_equally_long_label_budget=10 | 3 |" in markdown
    assert "| D12 | a_rather_long_learning_rate=0.6__an_equally_long_label_budget=20 | 3 |" in markdown
    assert "| D12 | a_rather_long_learning_rate=0.6__an_equally_long_label_budget=20 | 3 | 0 |" in markdown
    assert "![curve per design](curves_curve_by_design.png)" in markdown


def test_cli_errors_are_one_line_and_name_the_field(tmp_path):
    runner = CliRunner()
    bad = tmp_path / "bad.toml"
    bad.write_text('target = "experiments.bandit:main"\n[grid]\nlabelz = [1]\n')
    result = runner.invoke(app, ["sweep", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "grid.labelz: not a field of Args" in result.output
    assert result.output.strip().count("\n") == 0
    result = runner.invoke(app, ["sweep", str(tmp_path / "missing.toml")])
    assert result.exit_code == 2 and "file: no sweep file" in result.output
    good = tmp_path / "good.toml"
    good.write_text('target = "experiments.bandit:main"\n[grid]\nseed = [0]\n')
    result = runner.invoke(app, ["sweep", str(good), "--backend", "slurm", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "backend: expected one of" in result.output
    result = runner.invoke(app, ["sweep", str(good), "--workers", "0", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and result.output.strip() == "error: workers: expected an integer >= 1, got 0"
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "sweep_dir: no results.parquet" in result.output
    for command in ("sweep", "report"):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0
    help_text = runner.invoke(app, ["sweep", "--help"]).output
    for option in ("--out", "--backend", "--workers", "--address", "--retry-failed", "--run-timeout", "--dry-run"):
        assert option in help_text


def test_dry_run_lists_runs_and_their_state(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text('target = "experiments.bandit:main"\n[base]\nnum_steps = 5\n[grid]\nseed = [0, 1]\n')
    result = CliRunner().invoke(app, ["sweep", str(good), "--out", str(tmp_path / "o"), "--dry-run"])
    assert result.exit_code == 0
    assert "seed0\tto run" in result.output and "2 runs" in result.output
    assert not (tmp_path / "o").exists()


# Pure-JAX sweeps ----------------------------------------------------------------------------------


def test_vmap_sweep_matches_single_runs_and_reports(tmp_path):
    import jax

    from experiments.delivery_prefs import Args, study
    from experiments.delivery_prefs import main as delivery_main

    args = Args(max_labels=40, labels=40, newton_steps=5, planning_sweeps=40)
    grid = {"regret_teacher": [0.0, 1.0], "labels": [0, 40]}
    results = study(grid, seeds=[0, 1], args=args, out_dir=tmp_path)
    assert len(results) == 8 and results["run"].is_unique
    assert set(results["design"]) == {
        "regret_teacher=0.0__labels=0",
        "regret_teacher=0.0__labels=40",
        "regret_teacher=1.0__labels=0",
        "regret_teacher=1.0__labels=40",
    }
    # the vmapped call computes exactly what one run computes on its own
    row = results.set_index("run").loc["regret_teacher=1.0__labels=40__seed1"]
    single = delivery_main(dataclasses.replace(args, teacher_model="regret", labels=40, seed=1))
    for metric in ("scaled_return", "weight_cosine", "label_agreement", "final_loss"):
        assert row[metric] == pytest.approx(single[metric], rel=1e-4, abs=1e-5)
    assert (results["scaled_return"] <= 1.0 + 1e-4).all()
    no_labels = results[results["labels"] == 0]  # ŵ = 0: every action ties, the plan is the uniform policy
    np.testing.assert_allclose(no_labels["scaled_return"], 0.0, atol=1e-5)
    curves = load_metrics(tmp_path)
    assert sorted(curves["step"].unique()) == list(range(5)) and set(curves["name"]) == {"loss"}
    report = make_report(tmp_path, metrics=["scaled_return"])
    assert "regret_teacher=1.0__labels=40 | 2 | 0 |" in report.markdown_path.read_text()
    assert jax.config.jax_enable_x64 is False


def test_the_vmap_backend_writes_the_table_the_process_backend_writes(tmp_path):
    from experiments.delivery_prefs import Args as DeliveryArgs
    from experiments.delivery_prefs import main as delivery_main

    base = DeliveryArgs(max_labels=40, labels=40, newton_steps=5, planning_sweeps=40, log_every=2)
    grid = {"teacher_model": ["partial_return", "regret"], "labels": [0, 40], "seed": [0, 1]}
    sweep = Sweep(delivery_main, base, grid=grid)
    local = run_sweep(sweep, tmp_path / "local", workers=1, compile_cache=tmp_path / "cache", log=None)
    lines: list[str] = []
    vmapped = run_sweep(sweep, tmp_path / "vmap", backend="vmap", compile_cache=False, log=lines.append)
    assert "8 to run on vmap ->" in lines[0]
    assert (vmapped["status"] == "ok").all() and (vmapped["wall_s"] > 0).all()
    # same rows, columns and arguments; the metrics to float32 rounding (a batched product sums in another order)
    assert list(vmapped.columns) == list(local.columns) and vmapped["run"].tolist() == local["run"].tolist()
    metrics = ["scaled_return", "weight_cosine", "label_agreement", "final_loss"]
    others = [column for column in local.columns if column not in [*metrics, "wall_s"]]
    pd.testing.assert_frame_equal(vmapped[others], local[others])
    np.testing.assert_allclose(vmapped[metrics].to_numpy(), local[metrics].to_numpy(), rtol=1e-6, atol=1e-6)
    assert not np.allclose(local["scaled_return"], local["scaled_return"].iloc[0])  # the runs differ
    for run in ("teacher_model=regret__labels=40__seed1", "teacher_model=partial_return__labels=0__seed0"):
        pd.testing.assert_frame_equal(
            read_metrics(tmp_path / "vmap" / "runs" / run), read_metrics(tmp_path / "local" / "runs" / run), rtol=1e-6
        )
        assert sorted(read_metrics(tmp_path / "vmap" / "runs" / run)["step"]) == [0, 2, 4]
    # a vmapped sweep resumes like any other, and reports alike
    lines.clear()
    run_sweep(sweep, tmp_path / "vmap", backend="vmap", compile_cache=False, log=lines.append)
    assert "8 already complete, 0 to run" in lines[0]
    assert "| teacher_model=regret__labels=40 | 2 | 0 |" in make_report(tmp_path / "vmap").markdown_path.read_text()
    with pytest.raises(ValueError, match=r"backend: 'vmap' needs a target marked with a pure JAX core"):
        run_sweep(_sweep(), tmp_path / "bandit", backend="vmap", log=None)
    assert not (tmp_path / "bandit").exists()


def test_newton_step_is_the_gradient_of_the_library_bradley_terry_loss():
    import jax
    import jax.numpy as jnp

    from rewardlab.preferences import bradley_terry_loss

    rng = np.random.default_rng(0)
    phi = jnp.asarray(rng.normal(size=(30, 2, 6)), jnp.float32)
    labels = jnp.asarray(rng.random(30) < 0.5, jnp.float32)
    weights = jnp.asarray(rng.normal(size=6), jnp.float32)
    x = phi[:, 0] - phi[:, 1]

    def loss(w):
        predicted = phi @ w
        return jnp.mean(jax.vmap(bradley_terry_loss)(predicted[:, 0], predicted[:, 1], labels))

    p = jax.nn.sigmoid(x @ weights)
    np.testing.assert_allclose(x.T @ ((p - labels) / 30), jax.grad(loss)(weights), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(
        (x * (p * (1 - p) / 30)[:, None]).T @ x, jax.hessian(loss)(weights), rtol=1e-4, atol=1e-6
    )


def test_vmap_sweep_rejects_non_numeric_grids():
    from rewardlab.sweeps import vmap_sweep

    with pytest.raises(ValueError, match=r"grid.teacher: vmapped sweeps vary numbers only"):
        vmap_sweep(lambda design, key: {}, {"teacher": ["oracle"]}, seeds=[0])
    with pytest.raises(ValueError, match="seeds: expected at least one seed"):
        vmap_sweep(lambda design, key: {}, {"a": [1.0]}, seeds=[])
