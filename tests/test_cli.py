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
