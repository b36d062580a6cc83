"""The labelling page in a real browser: Debian's chromium driven by Playwright, keyboard only.

A real uvicorn server serves a run whose queries a ``HumanTeacher`` puts on the queue from the
trainer's side; the page labels ten of them with the arrow keys (and one undo), and the test checks
the SQLite store and the dataset the trainer received. ``python tests/test_labelling_browser.py PNG``
writes the documentation's screenshot (docs/figures/labelling.png).
"""

from __future__ import annotations

import shutil
import socket
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rewardlab.labelling import HumanTeacher, LabelStore, create_app, labelling_paths, pendulum_renderer
from rewardlab.preferences import label, synthetic_pairs

CHROMIUM = "/usr/bin/chromium"
KEYS = [
    "ArrowLeft",
    "ArrowRight",
    "ArrowUp",
    "ArrowLeft",
    "ArrowDown",
    "ArrowRight",
    "ArrowLeft",
    "ArrowUp",
    "ArrowRight",
    "ArrowLeft",
]
VALUES = {"ArrowLeft": 1.0, "ArrowRight": 0.0, "ArrowUp": 0.5, "ArrowDown": np.nan}
CHOICE = {"ArrowLeft": "left", "ArrowRight": "right", "ArrowUp": "equal", "ArrowDown": "skip"}


def _pendulum_pairs(num: int, length: int = 24) -> Any:
    """Pendulum-like fragment pairs: swinging angles as (cos θ, sin θ, θ̇), two reward factors."""
    rng = np.random.default_rng(0)
    start = rng.uniform(-np.pi, np.pi, size=(num, 2, 1))
    speed = rng.uniform(-0.3, 0.3, size=(num, 2, 1))
    theta = start + speed * np.arange(length)
    obs = np.stack([np.cos(theta), np.sin(theta), np.broadcast_to(speed * 20, theta.shape)], axis=-1)
    pairs = synthetic_pairs(np.zeros((num, 2, length)), obs_dim=3)
    factors = np.stack([np.cos(theta), -np.abs(np.broadcast_to(speed, theta.shape))], axis=-1)
    return pairs._replace(obs=obs.astype(np.float32), factors=factors.astype(np.float32))


class _Server:
    """uvicorn serving ``create_app(run_dir)`` on a free loopback port, in a thread."""

    def __init__(self, run_dir: Path) -> None:
        import uvicorn

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        config = uvicorn.Config(create_app(run_dir), host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        while not self.server.started:
            self.thread.join(0.05)
        return f"http://127.0.0.1:{self.port}/"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join()


def label_in_browser(run_dir: Path, keys: list[str], screenshot: Path | None = None) -> Any:
    """Queue ``len(keys)`` queries from a trainer thread, label them in chromium with ``keys`` (one undo
    after the third), and return the ``Preferences`` the trainer received."""
    from playwright.sync_api import sync_playwright

    teacher = HumanTeacher(run_dir, renderer=pendulum_renderer, poll_seconds=0.05, factor_names=["upright", "effort"])
    received: dict[str, Any] = {}

    def trainer() -> None:
        received["prefs"] = label(_pendulum_pairs(len(keys)), teacher, np.random.default_rng(0))

    worker = threading.Thread(target=trainer)
    with _Server(run_dir) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        page = browser.new_page(viewport={"width": 900, "height": 520})
        worker.start()
        page.goto(url)
        page.fill("#name", "ada")
        page.press("#name", "Enter")
        for index, key in enumerate(keys):
            query_id = index + 1
            page.wait_for_function(f"document.body.dataset.queryId === '{query_id}'")
            page.wait_for_function("[0, 1].every(s => document.getElementById('clip-' + s).naturalWidth > 0)")
            if screenshot is not None and index == 3:
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot))
            page.keyboard.press(key)
            page.wait_for_function(f"document.body.dataset.queryId !== '{query_id}'")
            if index == 2:  # take the third answer back and give it again
                page.keyboard.press("u")
                page.wait_for_function(f"document.body.dataset.queryId === '{query_id}'")
                page.keyboard.press(key)
                page.wait_for_function(f"document.body.dataset.queryId !== '{query_id}'")
        page.wait_for_selector("#empty:not([hidden])")
        assert page.inner_text("#mine") == str(len(keys))
        browser.close()
        worker.join()
    return received["prefs"]


def test_label_ten_queries_with_the_keyboard_in_chromium(tmp_path):
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    pytest.importorskip("playwright", reason="playwright is not installed: pip install playwright")
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.skip(f"chromium not found at {CHROMIUM}: apt-get install chromium (.ci/run does so as root)")
    prefs = label_in_browser(tmp_path, KEYS, screenshot=tmp_path / "page.png")
    assert (tmp_path / "page.png").read_bytes()[:4] == b"\x89PNG"
    expected = np.array([VALUES[key] for key in KEYS])
    # The trainer's dataset: the nine answered pairs (the skipped one has no label), in queue order.
    np.testing.assert_allclose(prefs.labels, expected[~np.isnan(expected)])
    np.testing.assert_allclose(prefs.pairs.obs, _pendulum_pairs(10).obs[~np.isnan(expected)], rtol=1e-6)
    # SQLite: eleven answers, the undone third among them, ten confirmed in key order.
    store = LabelStore(labelling_paths(tmp_path)[0])
    rows = store._db.execute("SELECT query_id, choice, undone, seconds FROM labels ORDER BY id").fetchall()
    assert len(rows) == 11 and rows[2][:3] == (3, "equal", 1)
    confirmed = [(query_id, choice) for query_id, choice, undone, _ in rows if not undone]
    assert confirmed == [(i + 1, CHOICE[key]) for i, key in enumerate(KEYS)]
    assert all(seconds is not None and seconds >= 0 for *_, seconds in rows)
    assert store.stats().queue == 0 and store.stats().closed == 10


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/figures/labelling.png")
    label_in_browser(Path(tempfile.mkdtemp()), KEYS, screenshot=out)
    print(f"wrote {out}")
