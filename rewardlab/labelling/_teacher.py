"""``HumanTeacher``: the online loop's teacher that asks people through the labelling server.

Each feedback round puts the actively selected pairs on the queue of ``RUN_DIR``'s store (with
their clips) and then either waits until ``min_labels`` of them are labelled (``min_labels=None``:
all of them) or, with ``min_labels=0``, returns at once. The store, not the trainer, holds the
dataset: the online loop reads it whole each round (``training_preferences``), so labels that
arrive after their round, answers a labeller undid or changed after the trainer read them, and the
labels of an earlier trainer on the same run all reach the reward model without bookkeeping.
"""

from __future__ import annotations

import os
import secrets
import time
from typing import Any

import numpy as np

from rewardlab._types import FragmentPairs, Preferences
from rewardlab.labelling._clips import ClipRenderer, observation_renderer, render_clips
from rewardlab.labelling._server import labelling_paths
from rewardlab.labelling._store import LabelStore, labels_of


class HumanTeacher:
    """Labels fragment pairs by asking labellers through the labelling server's queue.

    Args:
        run_dir: the run folder; the server of ``rewardlab label serve RUN_DIR`` reads the same store.
        renderer: draws a segment's observations as frames (default ``observation_renderer``).
        labels_wanted: labellers asked per query (agreement is reported when > 1).
        min_labels: labelled queries to wait for each round; None: all, 0: go on at once.
        poll_seconds: how often the store is read while waiting.
        timeout_seconds: give up waiting after this long (the unanswered queries arrive later); None: never.
        factor_names: names of the reward factors shown as bars when the pairs carry ``factors``.

    The call returns ``[B]`` labels with NaN for queries not (yet) answered, as the ``Teacher``
    protocol does for skipped pairs.
    """

    def __init__(
        self,
        run_dir: str | os.PathLike,
        renderer: ClipRenderer = observation_renderer,
        labels_wanted: int = 1,
        min_labels: int | None = None,
        poll_seconds: float = 0.5,
        timeout_seconds: float | None = None,
        factor_names: list[str] | None = None,
    ) -> None:
        if min_labels is not None and (not isinstance(min_labels, int) or min_labels < 0):
            raise ValueError(f"min_labels: expected None or an integer >= 0, got {min_labels!r}")
        if not poll_seconds > 0:
            raise ValueError(f"poll_seconds: expected > 0, got {poll_seconds!r}")
        store_path, self.clips_dir = labelling_paths(run_dir)
        self.clips_dir.mkdir(parents=True, exist_ok=True)
        self.store = LabelStore(store_path)
        self.renderer = renderer
        self.labels_wanted = labels_wanted
        self.min_labels = min_labels
        self.poll_seconds = poll_seconds
        self.timeout_seconds = timeout_seconds
        self.factor_names = factor_names

    def ask(self, pairs: FragmentPairs) -> list[int]:
        """Queue ``pairs``, their clips rendered first: the page never sees a query without its clips."""
        obs = np.asarray(pairs.obs)
        clips = [render_clips(self.clips_dir, secrets.token_hex(8), obs[b], self.renderer) for b in range(len(obs))]
        return self.store.add_queries(
            pairs, labels_wanted=self.labels_wanted, clips=clips, factor_names=self.factor_names
        )

    def wait(self, query_ids: list[int], min_labels: int) -> dict[int, list[float | None]]:
        """The answers of the closed queries among ``query_ids`` once ``min_labels`` are closed (or at the timeout)."""
        start = time.monotonic()
        while True:
            answers = self.store.answers(query_ids)
            if len(answers) >= min_labels:
                return answers
            if self.timeout_seconds is not None and time.monotonic() - start >= self.timeout_seconds:
                return answers
            time.sleep(self.poll_seconds)

    def __call__(self, pairs: FragmentPairs, rng: np.random.Generator) -> np.ndarray:
        ids = self.ask(pairs)
        wanted = len(ids) if self.min_labels is None else min(self.min_labels, len(ids))
        return labels_of(self.wait(ids, wanted), ids)

    def training_preferences(self) -> Preferences | None:
        """The run's whole labelled dataset as the store holds it now (see ``LabelStore.training_preferences``)."""
        return self.store.training_preferences()


def make_human_teacher(**kwargs: Any) -> HumanTeacher:
    """``make_teacher("human", run_dir=...)``: a ``HumanTeacher`` with those arguments."""
    if "run_dir" not in kwargs:
        raise ValueError("run_dir: the human teacher needs the run folder its labelling server reads")
    return HumanTeacher(**kwargs)
