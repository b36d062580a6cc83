"""Human labelling: the SQLite store, the FastAPI app (TestClient), the human teacher and the online loop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from rewardlab.labelling import (
    HumanTeacher,
    LabellingError,
    LabelStore,
    clip_path,
    labelling_paths,
    load_preferences,
    pairwise_agreement,
    save_preferences,
)
from rewardlab.preferences import label, make_teacher, synthetic_pairs


def _pairs(num: int = 3, length: int = 4) -> object:
    returns = np.stack([np.arange(num, dtype=np.float32), np.zeros(num, np.float32)], axis=1)
    pairs = synthetic_pairs(returns, length=length, obs_dim=3)
    obs = np.random.default_rng(0).normal(size=np.shape(pairs.obs)).astype(np.float32)
    return pairs._replace(obs=obs)


@pytest.fixture
def client(tmp_path):
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from rewardlab.labelling import create_app

    teacher = HumanTeacher(tmp_path, min_labels=0)
    teacher.ask(_pairs())
    with TestClient(create_app(tmp_path)) as test_client:
        test_client.run_dir = tmp_path
        yield test_client


def _login(client, name: str = "ada") -> dict[str, str]:
    response = client.post("/api/labellers", json={"name": name})
    assert response.status_code == 201
    return {"X-Labeller": response.json()["token"]}


# The store ------------------------------------------------------------------------------
def test_store_labels_mean_of_answers_and_round_trips_the_dataset(tmp_path):
    store = LabelStore(tmp_path / "labels.sqlite")
    pairs = _pairs(3)
    ids = store.add_queries(pairs, labels_wanted=2)
    ada, bob = store.add_labeller("ada"), store.add_labeller("bob")
    for query_id, (a, b) in zip(ids, [("left", "left"), ("left", "equal"), ("skip", "skip")], strict=True):
        assert store.add_label(ada, query_id, a)["closed"] is False
        assert store.add_label(bob, query_id, b)["closed"] is True
    # Means of the non-skip answers: (1 + 1) / 2, (1 + 0.5) / 2; the all-skip query has no label.
    np.testing.assert_allclose(store.closed_labels(ids), [1.0, 0.75, np.nan])
    prefs = store.export_preferences()
    np.testing.assert_allclose(prefs.labels, [1.0, 0.75])
    np.testing.assert_array_equal(prefs.pairs.obs, np.asarray(pairs.obs)[:2])
    # Agreement: query 1 agrees (1), query 2 does not (0); the all-skip query has no pair of answers.
    assert store.agreement() == pytest.approx(0.5)
    assert store.stats(ada).labels == 6
    # The dataset format: save, load, import into a fresh store, export again.
    path = save_preferences(tmp_path / "prefs.npz", prefs._replace(labels=np.array([1.0, 0.5], np.float32)))
    loaded = load_preferences(path)
    other = LabelStore(tmp_path / "other.sqlite")
    other.import_preferences(loaded)
    again = other.export_preferences()
    np.testing.assert_allclose(again.labels, [1.0, 0.5])
    np.testing.assert_array_equal(again.pairs.rews, np.asarray(pairs.rews)[:2])


def test_pairwise_agreement_by_hand():
    assert pairwise_agreement([1.0, 1.0, 0.0]) == pytest.approx(1 / 3)
    assert pairwise_agreement([0.5, 0.5]) == 1.0
    assert np.isnan(pairwise_agreement([1.0]))


def test_store_refuses_closed_unknown_and_repeated_answers(tmp_path):
    store = LabelStore(tmp_path / "labels.sqlite")
    [query_id] = store.add_queries(_pairs(1), labels_wanted=2)
    ada = store.add_labeller("ada")
    store.add_label(ada, query_id, "right")
    with pytest.raises(LabellingError, match="already answered") as info:
        store.add_label(ada, query_id, "left")
    assert info.value.status == 409
    with pytest.raises(LabellingError, match="unknown query") as info:
        store.add_label(ada, 999, "left")
    assert info.value.status == 404
    with pytest.raises(LabellingError, match="choice"):
        store.add_label(ada, query_id, "up")
    # Undo reopens; the labeller answers again.
    assert store.undo(ada) == query_id
    store.add_label(ada, query_id, "left")
    assert store.answers() == {}  # still open: two labellers wanted


def test_clip_path_keeps_to_the_clips_folder(tmp_path):
    good = "c0123456789abcdef_1.gif"
    assert clip_path(tmp_path, good) == (tmp_path / good).resolve()
    for name in ("../labels.sqlite", f"{good}/../../x", "/etc/passwd", "c0123456789abcdef_2.gif", f"..%2F{good}"):
        assert clip_path(tmp_path, name) is None


# The app ------------------------------------------------------------------------------
def test_app_serves_page_queries_clips_and_labels(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "/static/app.js" in page.text and "http" not in page.text.replace("http-equiv", "")  # nothing remote
    assert client.get("/static/app.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/static/app.css").headers["content-type"].startswith("text/css")
    headers = _login(client)
    query = client.get("/api/next", headers=headers).json()
    assert query["stats"]["queue"] == 3
    first = query["query"]
    assert first["id"] == 1 and [clip.rsplit("_", 1)[1] for clip in first["clips"]] == ["0.gif", "1.gif"]
    clip = client.get(first["clips"][0])
    assert clip.status_code == 200 and clip.headers["content-type"] == "image/gif" and clip.content[:6] == b"GIF89a"
    posted = client.post("/api/labels", json={"query_id": 1, "choice": "left", "seconds": 1.5}, headers=headers)
    assert posted.status_code == 201 and posted.json()["closed"] is True
    assert posted.json()["stats"]["queue"] == 2 and posted.json()["stats"]["mine"] == 1
    assert client.get("/api/next", headers=headers).json()["query"]["id"] == 2
    # Undo: query 1 comes back.
    undone = client.post("/api/undo", headers=headers).json()
    assert undone["query_id"] == 1 and undone["taken"] is False  # no trainer has read it
    assert client.get("/api/next", headers=headers).json()["query"]["id"] == 1


def test_app_answers_clear_4xx(client):
    headers = _login(client)
    assert client.post("/api/labels", json={"query_id": 42, "choice": "left"}, headers=headers).status_code == 404
    assert client.post("/api/labels", json={"query_id": 1, "choice": "left"}, headers=headers).status_code == 201
    closed = client.post("/api/labels", json={"query_id": 1, "choice": "right"}, headers=_login(client, "bob"))
    assert closed.status_code == 409 and "closed" in closed.json()["detail"]
    assert client.post("/api/labels", json={"query_id": 2, "choice": "maybe"}, headers=headers).status_code == 422
    assert client.post("/api/labels", json={"query_id": "x", "choice": "left"}, headers=headers).status_code == 422
    assert client.post("/api/labels", json={"query_id": 2, "choice": "left"}).status_code == 401
    assert (
        client.post("/api/labels", json={"query_id": 2, "choice": "left"}, headers={"X-Labeller": "no"}).status_code
        == 401
    )
    assert client.post("/api/labellers", json={"name": ""}).status_code == 422
    assert client.post("/api/undo", headers=_login(client, "eve")).status_code == 404


def test_app_refuses_path_traversal(client):
    secret = client.run_dir / "labelling" / "secret.gif"
    secret.write_bytes(b"GIF89a secret")
    for path in (
        "/clips/../labels.sqlite",
        "/clips/..%2Flabels.sqlite",
        "/clips/%2e%2e%2fsecret.gif",
        "/clips/c0123456789abcdef_0.gif",  # well formed, but no query lists it
        "/static/../_store.py",
        "/static/index.html%00.js",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert b"secret" not in response.content and b"SQLite" not in response.content


def test_app_several_labellers_and_agreement(tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from rewardlab.labelling import create_app

    HumanTeacher(tmp_path, labels_wanted=2, min_labels=0).ask(_pairs(2))
    with TestClient(create_app(tmp_path)) as client:
        ada, bob = _login(client, "ada"), _login(client, "bob")
        for headers, choices in ((ada, ["left", "right"]), (bob, ["left", "left"])):
            for query_id, choice in zip([1, 2], choices, strict=True):
                assert client.get("/api/next", headers=headers).json()["query"]["id"] == query_id
                client.post("/api/labels", json={"query_id": query_id, "choice": choice}, headers=headers)
        assert client.get("/api/next", headers=ada).json()["query"] is None
        stats = client.get("/api/stats").json()
        assert stats["labellers"] == 2 and stats["closed"] == 2 and stats["agreement"] == pytest.approx(0.5)
    np.testing.assert_allclose(LabelStore(labelling_paths(tmp_path)[0]).export_preferences().labels, [1.0, 0.5])


def test_app_access_key_and_loopback_default(tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from rewardlab.labelling import create_app, is_loopback, serve

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    with pytest.raises(ValueError, match="access key"):
        serve(tmp_path, host="0.0.0.0")
    with TestClient(create_app(tmp_path, access_key="sesame")) as client:
        assert client.get("/").status_code == 401
        assert client.get("/api/stats", headers={"X-Access-Key": "wrong"}).status_code == 401
        assert client.get("/?key=sesame").status_code == 200  # sets the cookie the page's requests carry
        assert client.get("/api/stats").status_code == 200


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_server(run_dir: Path, port: int) -> subprocess.Popen:
    code = f"from rewardlab.labelling import serve; serve({str(run_dir)!r}, port={port})"
    process = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONUNBUFFERED": "1"})
    import httpx

    while True:  # no wall-clock bound: the test fails by pytest's own timeout if ever
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/stats", timeout=1.0)
            return process
        except httpx.TransportError:
            assert process.poll() is None, "the labelling server exited"
            time.sleep(0.1)


def test_killed_server_loses_no_confirmed_label_and_resumes(tmp_path):
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("uvicorn")
    HumanTeacher(tmp_path, min_labels=0).ask(_pairs(6))
    port = _free_port()
    server = _start_server(tmp_path, port)
    base = f"http://127.0.0.1:{port}"
    try:
        token = httpx.post(f"{base}/api/labellers", json={"name": "ada"}).json()["token"]
        headers = {"X-Labeller": token}
        confirmed = []
        for choice in ["left", "right", "equal", "left"]:
            query = httpx.get(f"{base}/api/next", headers=headers).json()["query"]
            response = httpx.post(
                f"{base}/api/labels", json={"query_id": query["id"], "choice": choice}, headers=headers
            )
            assert response.status_code == 201
            confirmed.append((query["id"], choice))
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait()
    store = LabelStore(labelling_paths(tmp_path)[0])
    assert [(q, c) for q, c in store._db.execute("SELECT query_id, choice FROM labels ORDER BY id")] == confirmed
    # A new server on the same run goes on where the labeller stopped, with the same token.
    server = _start_server(tmp_path, port)
    try:
        query = httpx.get(f"{base}/api/next", headers=headers).json()
        assert query["query"]["id"] == 5 and query["stats"]["mine"] == 4
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait()


# The teacher and the online loop ---------------------------------------------------------
def _answer_all(store: LabelStore, token: str, choice_of, stop: threading.Event) -> None:
    while not stop.is_set():
        query = store.next_query(token)
        if query is None:
            time.sleep(0.02)
            continue
        store.add_label(token, query.id, choice_of(store.pairs([query.id])))


def _oracle_choice(pair) -> str:
    returns = np.asarray(pair.rews).sum(axis=-1)[0]
    return "left" if returns[0] > returns[1] else "right" if returns[0] < returns[1] else "equal"


def test_human_teacher_waits_for_labels_or_hands_them_over_later(tmp_path):
    pairs = _pairs(3)
    teacher = make_teacher("human", run_dir=tmp_path, min_labels=0, poll_seconds=0.01)
    assert isinstance(teacher, HumanTeacher)
    assert np.isnan(teacher(pairs, np.random.default_rng(0))).all()  # asynchronous: nothing answered yet
    store = teacher.store
    token = store.add_labeller("ada")
    for query_id in [1, 2]:
        store.add_label(token, query_id, _oracle_choice(store.pairs([query_id])))
    late = teacher.training_preferences()
    np.testing.assert_allclose(late.labels, [0.5, 1.0])  # returns (0, 0) tie, then (1, 0)
    assert store.taken(1) and store.taken(2) and not store.taken(3)
    # A restarted trainer reads the same dataset from the store.
    np.testing.assert_allclose(HumanTeacher(tmp_path).training_preferences().labels, [0.5, 1.0])
    # Undo after the trainer took the label: the query reopens and leaves the dataset until answered again.
    assert store.undo(token) == 2 and store.taken(2)
    np.testing.assert_allclose(teacher.training_preferences().labels, [0.5])
    store.add_label(token, 2, "right")
    np.testing.assert_allclose(teacher.training_preferences().labels, [0.5, 0.0])
    store.undo(token)
    # Waiting: the call returns once every query is answered.
    waiting = HumanTeacher(tmp_path, poll_seconds=0.01)
    stop = threading.Event()
    thread = threading.Thread(target=_answer_all, args=(waiting.store, token, _oracle_choice, stop))
    thread.start()
    try:
        prefs = label(pairs, waiting, np.random.default_rng(0))
    finally:
        stop.set()
        thread.join()
    np.testing.assert_allclose(prefs.labels, [0.5, 1.0, 1.0])


def test_human_teacher_needs_a_run_dir():
    import rewardlab.labelling  # noqa: F401 - registers "human"

    with pytest.raises(ValueError, match="run_dir"):
        make_teacher("human")


class _LateHuman(HumanTeacher):
    """Goes on at once (min_labels=0); its labeller answers each round's queries just after the round."""

    def __call__(self, pairs, rng):
        labels = super().__call__(pairs, rng)
        token = self.store.add_labeller("ada", token="ada")
        for query_id in self.store.open_queries():
            self.store.add_label(token, query_id, _oracle_choice(self.store.pairs([query_id])))
        return labels


@pytest.mark.slow
def test_online_loop_trains_on_human_labels_as_they_arrive(tmp_path):
    import jax
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    from rewardlab.rewards import RewardModel, RewardNetConfig
    from rewardlab.rl import PbRLConfig, train_pbrl
    from rewardlab.wrappers import RewardVecEnvWrapper

    venv = RewardVecEnvWrapper(make_vec_env("Pendulum-v1", n_envs=2, seed=0), mode="replace")
    model = RewardModel(
        RewardNetConfig(inputs=("obs", "act"), hidden_sizes=(16,)), venv.observation_space, venv.action_space
    )
    agent = PPO("MlpPolicy", venv, n_steps=64, batch_size=64, n_epochs=1, seed=0, device="cpu")
    config = PbRLConfig(
        labels=12, num_rounds=3, first_feedback_step=200, fragment_length=10, reward_epochs=2, candidate_multiplier=2
    )
    teacher = _LateHuman(tmp_path, min_labels=0)
    result = train_pbrl(agent, model, model.init(jax.random.key(0)), teacher, 1024, config, seed=0)
    # Every round's call returns no label (asynchronous); its labels arrive after the call and reach
    # the trainer through ``training_preferences`` within the same round.
    assert [r.labels_used for r in result.feedback] == [4, 8, 12]
    exported = teacher.store.export_preferences()
    np.testing.assert_allclose(result.preferences.labels, exported.labels)
    np.testing.assert_array_equal(result.preferences.pairs.obs, exported.pairs.obs)


def test_concurrent_labellers_get_different_queries(tmp_path):
    store = LabelStore(tmp_path / "labels.sqlite")
    store.add_queries(_pairs(3), labels_wanted=2)
    tokens = [store.add_labeller(name) for name in "abcde"]
    # Two labellers share query 1 (two answers wanted), the next two query 2, the fifth query 3.
    assert [store.next_query(token).id for token in tokens] == [1, 1, 2, 2, 3]
    assert store.next_query(tokens[0]).id == 1  # asking again keeps one's own query
    store.add_label(tokens[0], 1, "left")
    assert store.next_query(tokens[0]).id == 3  # query 2 is leased to two others, 3 to one


def test_cli_prints_the_url_and_needs_a_key_beyond_loopback(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import rewardlab.labelling
    from rewardlab.cli import app

    calls = []
    monkeypatch.setattr(rewardlab.labelling, "serve", lambda *args, **kwargs: calls.append((args, kwargs)))
    local = CliRunner().invoke(app, ["label", "serve", str(tmp_path), "--port", "8123"])
    assert local.exit_code == 0 and "http://127.0.0.1:8123/" in local.output and "key=" not in local.output
    assert calls[-1][1] == {"host": "127.0.0.1", "port": 8123, "access_key": None}
    public = CliRunner().invoke(app, ["label", "serve", str(tmp_path), "--host", "0.0.0.0"])
    key = calls[-1][1]["access_key"]
    assert public.exit_code == 0 and key and f"?key={key}" in public.output


def test_a_store_written_before_taken_was_recorded_opens_and_gains_it(tmp_path):
    import sqlite3

    path = tmp_path / "labels.sqlite"
    store = LabelStore(path)
    store.add_queries(_pairs(1))
    store.close()
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE queries DROP COLUMN taken")  # the schema of earlier versions
    db.commit()
    db.close()
    reopened = LabelStore(path)
    token = reopened.add_labeller("ada")
    reopened.add_label(token, 1, "left")
    assert not reopened.taken(1)
    assert reopened.training_preferences().labels.tolist() == [1.0] and reopened.taken(1)


def test_quickstart_with_a_human_teacher_trains_on_labels_given_through_the_store(tmp_path, capsys):
    from experiments.quickstart import Args, main

    args = Args(
        total_timesteps=2048,
        labels=6,
        eval_episodes=1,
        ensemble_size=1,
        out_dir=tmp_path,
        parallel=False,
        teacher="human",
    )
    run_dir = tmp_path / args.name
    store_path, clips_dir = labelling_paths(run_dir)
    stop = threading.Event()

    def labeller() -> None:  # a person at the page, answering what the run puts on the queue
        while not store_path.exists() and not stop.is_set():
            time.sleep(0.05)
        store = LabelStore(store_path)
        _answer_all(store, store.add_labeller("ada"), _oracle_choice, stop)

    thread = threading.Thread(target=labeller)
    thread.start()
    try:
        summary = main(args)
    finally:
        stop.set()
        thread.join()
    assert summary["teacher"] == "human" and summary["labels_used"] == 6
    assert f"rewardlab label serve {run_dir}" in capsys.readouterr().out
    store = LabelStore(store_path)
    exported = store.export_preferences()
    assert len(exported.labels) == 6 and all(store.taken(query_id) for query_id in range(1, 7))
    # The clips are the environment's own frames (pygame's Pendulum), not drawn observations.
    clip = sorted(clips_dir.glob("*.gif"))[0]
    from PIL import Image

    frame = np.asarray(Image.open(clip).convert("RGB"))
    assert frame.shape == (160, 160, 3) and len(sorted(clips_dir.glob("*.gif"))) == 12
    colours, counts = np.unique(frame.reshape(-1, 3), axis=0, return_counts=True)
    assert colours[counts.argmax()].tolist() == [255, 255, 255]  # gymnasium's canvas; drawn observations use 250
