"""``rewardlab train``: bad input, a short run per kind of intrinsic reward, and a resumed ONI run.

ONI's replies come from a stand-in OpenAI-compatible endpoint that answers each prompt with the
reply recorded from the local model (tests/data/llm_replies/nethack_oni.json).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rewardlab.cli import app
from rewardlab.intrinsic import MOTIF_SHORT_PROMPT, LabelStore

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chat_standin import ChatStandIn

pytest.importorskip("minihack")
runner = CliRunner()
RECORDED = json.loads((Path(__file__).parent / "data" / "llm_replies" / "nethack_oni.json").read_text())
REPLIES = {r["request"]["messages"][-1]["content"]: r["reply"] for r in RECORDED["records"]}


class _Endpoint(ChatStandIn):
    """Answers chat completions with the recorded reply of the prompt (an unknown prompt: HTTP 500)."""

    def __init__(self) -> None:
        self.prompts: list[str] = []

        def answer(body: dict) -> tuple[int, str | dict]:
            prompt = body["messages"][-1]["content"]
            self.prompts.append(prompt)
            content = REPLIES.get(prompt)
            return (200, content) if content is not None else (500, {"error": {"message": "unknown prompt"}})

        super().__init__(answer)


def _train(tmp_path: Path, *options: str):
    return runner.invoke(app, ["train", "--out", str(tmp_path), "--num-envs", "2", "--n-steps", "64", *options])


def test_message_reward_on_an_env_without_messages_names_the_argument(tmp_path: Path) -> None:
    result = _train(tmp_path, "--env", "CartPole-v1", "--intrinsic", "oni", "--total-timesteps", "128")
    assert result.exit_code == 2
    assert "intrinsic: 'oni' rewards game messages" in result.output and "CartPole-v1" in result.output
    assert not any(tmp_path.iterdir())  # a refused run leaves no folder


def test_unknown_intrinsic_names_the_argument(tmp_path: Path) -> None:
    result = _train(tmp_path, "--intrinsic", "curiosity")
    assert result.exit_code == 2 and "intrinsic" in result.output and "curiosity" in result.output


def test_counts_run_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    options = ("--env", "MiniHack-Room-5x5-v0", "--intrinsic", "counts", "--checkpoint-every", "128", "--name", "r")
    first = _train(tmp_path, *options, "--total-timesteps", "128")
    assert first.exit_code == 0, first.output
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["env_steps"] == 128
    second = _train(tmp_path, *options, "--total-timesteps", "256")
    assert second.exit_code == 0, second.output
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["env_steps"] == 256  # 128 more, not 256 from scratch


def test_oni_run_labels_through_the_endpoint_and_resumes_with_its_label_cache(tmp_path: Path) -> None:
    endpoint = _Endpoint()
    try:
        options = ("--env", "MiniHack-KeyRoom-S5-v0", "--intrinsic", "oni", "--base-url", endpoint.url, "--name", "oni")
        first = _train(tmp_path, *options, "--total-timesteps", "256")
        assert first.exit_code == 0, first.output
        assert "ONI:" in first.output and "annotator died" not in first.output
        store = LabelStore(tmp_path / "oni" / "labels.sqlite")
        labels, pending = store.labels(), store.pending()  # pending: still queued when the run ended
        assert labels and not set(pending) & store.labelled()
        asked = len(endpoint.prompts)
        assert asked == len(store.labelled())  # one request per distinct message, each stored
        second = _train(tmp_path, *options, "--total-timesteps", "512")
        assert second.exit_code == 0, second.output
        again = LabelStore(tmp_path / "oni" / "labels.sqlite").labels()
        assert labels.items() <= again.items()  # every label kept
        assert set(pending) <= set(again)  # the resumed run asked for the pending messages
        assert not set(endpoint.prompts[asked:]) & set(endpoint.prompts[:asked])  # none asked twice
    finally:
        endpoint.close()


def test_motif_both_orders_asks_each_pair_twice_and_keeps_the_setting_with_its_labels(tmp_path: Path) -> None:
    from experiments.nethack_intrinsic import Args, main

    endpoint = ChatStandIn(lambda body: (200, '{"best": "1"}'))  # a model that always prefers the first description
    try:
        args = Args(
            intrinsic="motif", total_timesteps=64, num_envs=2, n_steps=32, motif_pairs=6, motif_collect_steps=200
        )
        args = dataclasses.replace(args, base_url=endpoint.url, both_orders=True, run_dir=str(tmp_path / "m"))
        main(args)
        saved = json.loads((tmp_path / "m" / "motif_labels.json").read_text())
        asked = {r["messages"][-1]["content"] for r in endpoint.requests}  # distinct prompts: the reply cache dedupes
        both_ways = {MOTIF_SHORT_PROMPT.format(first=a, second=b) for a, b in saved["pairs"]}
        both_ways |= {MOTIF_SHORT_PROMPT.format(first=b, second=a) for a, b in saved["pairs"]}
        assert saved["both_orders"] is True and asked == both_ways
        assert set(saved["labels"]) == {0.5}  # the position bias, asked both ways, gives ties
        options = ("--intrinsic", "motif", "--base-url", endpoint.url, "--name", "m", "--total-timesteps", "128")
        other = _train(tmp_path, *options)  # the CLI without --both-orders: the folder's labels were asked both ways
        assert other.exit_code == 2 and "both_orders=True" in other.output and "both_orders=False" in other.output
    finally:
        endpoint.close()


def test_both_orders_flag_reaches_the_study_and_is_for_motif_only(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "motif_labels.json").write_text(json.dumps({"pairs": [["a", "b"]], "labels": [1.0]}))
    result = _train(
        tmp_path, "--intrinsic", "motif", "--base-url", "http://127.0.0.1:9/v1", "--name", "m", "--both-orders"
    )
    assert result.exit_code == 2 and "both_orders=False" in result.output and "both_orders=True" in result.output
    result = _train(tmp_path, "--intrinsic", "oni", "--both-orders", "--name", "o")
    assert result.exit_code == 2 and "both_orders" in result.output and "'oni'" in result.output
    assert not (tmp_path / "o").exists()
