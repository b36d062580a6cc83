"""Smoke tests of the study scripts in experiments/ with tiny budgets."""

from __future__ import annotations

import dataclasses

import pytest

from experiments import bandit, bpref
from rewardlab.sweeps import Sweep, load_sweep, parse_args, read_metrics


def test_study_sweep_files_load():
    for name, runs in (("bandit", 24), ("bpref", 120), ("delivery_prefs", 32)):
        sweep = load_sweep(f"experiments/{name}.toml")
        assert len(sweep.runs()) == runs
    names = [run.name for run in load_sweep("experiments/bpref.toml").runs()]
    assert names[0] == "Pendulum-v1__teacher=oracle__labels=200__seed0"
    assert any(name.startswith("HalfCheetah-v5__teacher=equal__labels=1000__seed4") for name in names)


def test_experiment_arguments_parse_from_the_command_line():
    args = parse_args(
        bpref.Args, ["--env-id", "HalfCheetah-v5", "--teacher", "myopic", "--labels", "50", "--seed", "3"]
    )
    assert args == bpref.Args(env_id="HalfCheetah-v5", teacher="myopic", labels=50, seed=3)
    with pytest.raises(SystemExit):
        parse_args(bpref.Args, ["--teacher", "psychic"])
    assert parse_args(bandit.Args, ["--learning-rate", "0.5"]).learning_rate == 0.5


def test_bpref_rejects_bad_arguments():
    with pytest.raises(ValueError, match="env_id: expected one of"):
        bpref.Args(env_id="CartPole-v1")
    with pytest.raises(ValueError, match="teacher: expected one of"):
        bpref.Args(teacher="noisy!")


@pytest.mark.slow
def test_bpref_sweep_on_both_environments_with_tiny_budgets(tmp_path):
    tiny = bpref.Args(
        labels=20, total_timesteps=2048, feedback_rounds=2, first_feedback_step=512, eval_episodes=1, ensemble_size=2
    )
    sweep = Sweep(
        bpref.main, tiny, grid={"env_id": ["Pendulum-v1", "HalfCheetah-v5"], "teacher": ["mistake"], "seed": [0]}
    )
    results = sweep.run(tmp_path, workers=2, log=None)
    assert (results["status"] == "ok").all(), results["error"].tolist()
    assert set(results["env_id"]) == {"Pendulum-v1", "HalfCheetah-v5"}
    assert (results["labels_used"] > 0).all()
    for run in results["run"]:
        metrics = read_metrics(tmp_path / "runs" / run)
        assert {"true_return", "train_accuracy"} <= set(metrics["name"])
        assert list((tmp_path / "runs" / run / "tensorboard").iterdir())  # SB3's own TensorBoard logs
    assert dataclasses.replace(tiny, env_id="HalfCheetah-v5").algo == ""
