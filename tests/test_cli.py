"""The ``rewardlab`` command line: help texts and one-line errors."""

from typer.testing import CliRunner

from rewardlab.cli import app

runner = CliRunner()


def test_help_lists_quickstart():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "quickstart" in result.output


def test_quickstart_help_documents_options():
    result = runner.invoke(app, ["quickstart", "--help"])
    assert result.exit_code == 0
    for option in ("--env", "--total-timesteps", "--labels", "--teacher", "--seed", "--feedback-until", "--out"):
        assert option in result.output


def test_bad_teacher_is_a_one_line_error(tmp_path):
    result = runner.invoke(
        app, ["quickstart", "--teacher", "psychic", "--total-timesteps", "64", "--out", str(tmp_path), "--no-progress"]
    )
    assert result.exit_code == 2
    assert "teacher" in result.output


def test_negative_timesteps_rejected():
    result = runner.invoke(app, ["quickstart", "--total-timesteps", "-5"])
    assert result.exit_code != 0
    assert "timesteps" in result.output


def test_feedback_until_outside_unit_interval_is_a_one_line_error(tmp_path):
    result = runner.invoke(
        app,
        ["quickstart", "--feedback-until", "1.5", "--total-timesteps", "64", "--out", str(tmp_path), "--no-progress"],
    )
    assert result.exit_code == 2
    assert "feedback_until" in result.output and "(0, 1]" in result.output


def _one_line_error(result, *needles: str, code: int = 2) -> None:
    assert result.exit_code == code, result.output
    text = result.output.strip()
    assert text.startswith("error: ") and "\n" not in text and "Traceback" not in text, text
    for needle in needles:
        assert needle in text, text


def test_version():
    import rewardlab

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"rewardlab {rewardlab.__version__}"


def test_an_unknown_env_id_is_a_one_line_error_and_leaves_no_folder(tmp_path):
    out = tmp_path / "runs"
    result = runner.invoke(app, ["quickstart", "--env", "Nope-v0", "--total-timesteps", "64", "--out", str(out)])
    _one_line_error(result, "env: unknown gymnasium environment id 'Nope-v0'")
    assert not out.exists()
    for command in (["distance", "a.rlab", "b.rlab", "--env", "Nope-v0"], ["irl-expert", "--env", "Nope-v0"]):
        _one_line_error(
            runner.invoke(app, [*command, "--out", str(out)] if "irl" in command[0] else command), "Nope-v0"
        )
    assert not out.exists()


def test_an_output_path_that_is_a_file_is_a_one_line_error(tmp_path):
    file = tmp_path / "notes.txt"
    file.write_text("mine")
    sweep_file = tmp_path / "s.toml"
    sweep_file.write_text('target = "experiments.bandit:main"\n[grid]\nseed = [0]\n')
    commands = {
        "quickstart": ["quickstart", "--total-timesteps", "64", "--out", str(file)],
        "sweep": ["sweep", str(sweep_file), "--out", str(file)],
        "sweep below": ["sweep", str(sweep_file), "--out", str(file / "sweep")],
        "sweep dry run": ["sweep", str(sweep_file), "--out", str(file), "--dry-run"],
    }
    for command in commands.values():
        _one_line_error(runner.invoke(app, command), "out: expected a folder", str(file))
    _one_line_error(runner.invoke(app, ["irl-expert", "--out", str(tmp_path)]), "out: expected a file to write")
    _one_line_error(runner.invoke(app, ["irl-expert", "--out", str(file / "d.rlab")]), "below the file")
    assert file.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "s.toml"]


def test_an_unknown_distance_metric_lists_every_value_with_the_default(tmp_path):
    result = runner.invoke(app, ["distance", "a.rlab", "b.rlab", "--metric", "cosine"])
    _one_line_error(result, "metric: expected one of pearson (EPIC, the default), 1, 2, inf, got 'cosine'")
    assert "pearson (EPIC, the default)" in " ".join(runner.invoke(app, ["distance", "--help"]).output.split())


def test_a_sweep_over_runs_with_other_arguments_is_refused_until_forced(tmp_path):
    sweep_file = tmp_path / "s.toml"
    out = tmp_path / "sweep"
    sweep_file.write_text('target = "experiments.bandit:main"\n[base]\nnum_steps = 5\n[grid]\nseed = [0]\n')
    command = ["sweep", str(sweep_file), "--out", str(out), "--workers", "1", "--quiet"]
    assert runner.invoke(app, command).exit_code == 0
    sweep_file.write_text('target = "experiments.bandit:main"\n[base]\nnum_steps = 6\n[grid]\nseed = [0]\n')
    _one_line_error(runner.invoke(app, command), "out: 1 finished run(s)", "num_steps: 5 -> 6", "--force")
    listing = runner.invoke(app, [*command, "--dry-run"]).output
    assert "seed0\tok, made with other arguments (num_steps: 5 -> 6)" in listing
    result = runner.invoke(app, [*command, "--force"])
    assert result.exit_code == 0, result.output
    assert "1 runs complete (0 failed)" in result.output
