"""``HumanTeacher``: the online loop's teacher that asks people through the labelling server.

Each feedback round puts the actively selected pairs on the queue of ``RUN_DIR``'s store (with
their clips) and then either waits until ``min_labels`` of them are labelled (``min_labels=None``:
all of them) or, with ``min_labels=0``, returns at once. Queries answered after their round are not
lost: ``late_preferences()`` hands them over at a later round (the online loop calls it when the
teacher has it). A restarted trainer reopens the store and collects the queries still open.
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
        # Queries asked and not yet handed to the trainer: those of an earlier trainer on this run too.
        self.pending: list[int] = self.store.open_queries()

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
        answers = self.wait(ids, wanted)  # one snapshot: a query is either labelled here or pending
        self.pending += [query_id for query_id in ids if query_id not in answers]
        return labels_of(answers, ids)

    def late_preferences(self) -> Preferences | None:
        """Labels that arrived for queries of earlier rounds since the last call (None if none)."""
        if not self.pending:
            return None
        answered = self.store.answers(self.pending)
        done = [query_id for query_id in self.pending if query_id in answered]
        self.pending = [query_id for query_id in self.pending if query_id not in answered]
        labels = labels_of(answered, done)
        keep = [query_id for query_id, value in zip(done, labels, strict=True) if not np.isnan(value)]
        if not keep:
            return None
        return Preferences(pairs=self.store.pairs(keep), labels=labels[~np.isnan(labels)])


def make_human_teacher(**kwargs: Any) -> HumanTeacher:
    """``make_teacher("human", run_dir=...)``: a ``HumanTeacher`` with those arguments."""
    if "run_dir" not in kwargs:
        raise ValueError("run_dir: the human teacher needs the run folder its labelling server reads")
    return HumanTeacher(**kwargs)
