"""The Ray backend on a real local Ray (2 CPUs, no dashboard): same runs, same results as the local backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.bandit import Args, main
from rewardlab.sweeps import Sweep, load_results, make_report, run_sweep

ray = pytest.importorskip("ray")


def test_ray_sweep_of_12_runs_matches_the_local_backend_and_resumes(tmp_path):
    sweep = Sweep(
        main,
        Args(num_steps=30, log_every=10),
        grid={"teacher": ["oracle", "stochastic", "mistake"], "seed": [0, 1, 2, 3]},
    )
    # one run finished earlier and one half-written: the Ray sweep skips the first and redoes the second
    done = sweep.runs()[0]
    run_sweep(
        Sweep(main, Args(num_steps=30, log_every=10), grid={"teacher": ["oracle"], "seed": [0]}),
        tmp_path,
        workers=1,
        log=None,
    )
    marker = (tmp_path / "runs" / done.name / "result.json").read_text()
    half = tmp_path / "runs" / sweep.runs()[1].name
    half.mkdir()
    (half / "stale.txt").write_text("x")

    lines = []
    results = run_sweep(sweep, tmp_path, backend="ray", workers=2, log=lines.append)  # a local Ray started on demand
    assert not ray.is_initialized()  # and shut down again
    assert "1 already complete, 11 to run on ray" in lines[0]
    assert len(results) == 12 and results["run"].is_unique and (results["status"] == "ok").all()
    assert (tmp_path / "runs" / done.name / "result.json").read_text() == marker
    assert not (half / "stale.txt").exists()
    assert not [p for p in (tmp_path / "runs").iterdir() if p.name.startswith(".")]  # no staging leftovers
    for run in sweep.runs()[::5]:
        row = results.set_index("run").loc[run.name]
        assert row["correlation"] == pytest.approx(main(run.args)["correlation"])
        run_dir = tmp_path / "runs" / run.name
        assert json.loads((run_dir / "result.json").read_text())["status"] == "ok"
        assert (run_dir / "metrics.sqlite").is_file() and list((run_dir / "tensorboard").iterdir())
    assert len(load_results(tmp_path)) == 12
    report = make_report(tmp_path, metrics=["correlation"], curves=["loss"])
    assert [path.name for path in report.figures] == [
        "final_correlation.png",
        "curve_loss.png",
        "curves_loss_by_design.png",
    ]


@pytest.mark.slow
def test_ray_initialised_by_the_user_is_kept_and_crashes_are_recorded(tmp_path):
    sweep = Sweep(main, Args(num_steps=20), grid={"learning_rate": [0.5, 1e9], "seed": [0]})
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        results = run_sweep(sweep, tmp_path, backend="ray", log=None).set_index("run")
        assert ray.is_initialized()  # a Ray the caller started stays up
    finally:
        ray.shutdown()
    assert results.loc["learning_rate=0.5__seed0", "status"] == "ok"
    assert results.loc["learning_rate=1e+09__seed0", "status"] == "failed"
    assert "FloatingPointError" in results.loc["learning_rate=1e+09__seed0", "error"]


@pytest.mark.slow
def test_ray_cancels_a_stalled_run_at_run_timeout(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent))  # the local Ray's workers get this path
    import stalling_target

    sweep = Sweep(stalling_target.main, stalling_target.Args(), grid={"seed": [0, 1]})
    results = run_sweep(sweep, tmp_path, backend="ray", workers=2, run_timeout=20, log=None).set_index("run")
    assert results.loc["seed0", "status"] == "ok"
    assert results.loc["seed1", "status"] == "failed"
    assert "run_timeout=20" in results.loc["seed1", "error"]
