"""ONI: an intrinsic reward from an LLM's labels of game messages, learned online and asynchronously.

Zheng et al., "Online intrinsic rewards for decision making agents from large language model
feedback", 2024. The learner's messages go to an :class:`AnnotationWorker` (a thread with a queue):
it labels them in batches with an LLM (:class:`LLMLabeller`: :data:`ONI_PROMPT`, the reply
constrained to :data:`ONI_SCHEMA`), stores every label in a :class:`LabelStore` (SQLite, one
transaction per batch, so a killed run keeps each label it was told) and retrains the reward
model after each batch. :class:`ONIBonus` scores messages with the latest model and never waits
for the LLM: a message not labelled yet gets the model's guess (0 for the hashing model). Its
reward has Motif's shape, r̃ = 1[r̂ > ε]·r̂ / N_ep(msg)^β.

Reward models (:class:`RewardModelKind`): ``"hashing"`` (a table message → label),
``"classification"`` (logistic regression on hashed word features: P(helpful | msg)) and
``"ranking"`` (a linear score on the same features fitted by Bradley–Terry to pairs of a helpful
and an unhelpful message). The last two generalise to messages not labelled yet.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import queue
import re
import sqlite3
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple, Protocol

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rewardlab._io import sqlite_write
from rewardlab.intrinsic._counts import check_dones
from rewardlab.intrinsic._motif import ChatLike

logger = logging.getLogger("rewardlab.intrinsic")

ONI_PROMPT = (
    "You judge events in the game NetHack. The goal is to survive, explore the dungeon, find items and gold, "
    "defeat monsters and go down the stairs.\n"
    "Is this game message a sign of progress toward that goal? "
    'Answer in JSON: {{"helpful": "yes"}} or {{"helpful": "no"}}.\n\n'
    'Message: "{message}"\n'
)
"""ONI's per-message question (a binary label); ``{message}`` is the message."""

ONI_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"helpful": {"type": "string", "enum": ["yes", "no"]}},
    "required": ["helpful"],
    "additionalProperties": False,
}
"""The JSON schema of the label reply (``response_format``): a local server decodes under it, so replies parse."""

RewardModelKind = Literal["hashing", "classification", "ranking"]
REWARD_MODEL_KINDS: tuple[str, ...] = ("hashing", "classification", "ranking")
"""The reward models :class:`ONIBonus` can retrain as labels arrive."""

_YES_NO = re.compile(r"\b(yes|no)\b", re.IGNORECASE)


def parse_label(reply: str) -> float | None:
    """The label of an LLM reply: 1.0 (helpful), 0.0 (not), None if unparsable.

    Reads ``{"helpful": "yes" | "no"}`` (the schema's reply), else the last ``yes``/``no`` word.

    Example:
        >>> parse_label('{"helpful": "yes"}'), parse_label("I would say no."), parse_label("maybe") is None
        (1.0, 0.0, True)
    """
    try:
        decoded = json.loads(reply)
    except (json.JSONDecodeError, TypeError):
        decoded = None
    if isinstance(decoded, dict) and isinstance(decoded.get("helpful"), str):
        answer = decoded["helpful"].strip().lower()
        if answer in ("yes", "no"):
            return 1.0 if answer == "yes" else 0.0
    words = _YES_NO.findall(str(reply))
    if not words:
        return None
    return 1.0 if words[-1].lower() == "yes" else 0.0


class MessageLabeller(Protocol):
    """Labels a batch of messages: one ``(label, reply)`` per message, label 1.0, 0.0 or None (unparsable)."""

    def __call__(self, messages: Sequence[str]) -> list[tuple[float | None, str]]: ...


class LLMLabeller:
    """A :class:`MessageLabeller` that asks a chat client :data:`ONI_PROMPT` about each message.

    Args:
        client: ``rewardlab.llm.ChatClient`` (the local model by default, any OpenAI-compatible
            endpoint otherwise) or anything with its ``chat`` method.
        prompt: the question, with a ``{message}`` field.
        json_schema: the reply's schema (None: free text, parsed by :func:`parse_label`).
        max_tokens: most tokens per reply.

    Raises:
        ValueError: ``prompt`` has no ``{message}`` field.
    """

    def __init__(
        self,
        client: ChatLike,
        *,
        prompt: str = ONI_PROMPT,
        json_schema: dict[str, Any] | None = ONI_SCHEMA,
        max_tokens: int = 16,
    ) -> None:
        if "{message}" not in prompt:
            raise ValueError(f"prompt: expected a template with a {{message}} field, got {prompt[:80]!r}")
        self.client, self.prompt, self.json_schema, self.max_tokens = client, prompt, json_schema, int(max_tokens)

    def request(self, message: str) -> list[dict[str, str]]:
        """The chat messages sent for one game message."""
        return [{"role": "user", "content": self.prompt.format(message=message)}]

    def __call__(self, messages: Sequence[str]) -> list[tuple[float | None, str]]:
        out: list[tuple[float | None, str]] = []
        for message in messages:
            kwargs: dict[str, Any] = {"temperature": 0.0, "max_tokens": self.max_tokens}
            if self.json_schema is not None:
                kwargs["json_schema"] = self.json_schema
            reply = self.client.chat(self.request(message), **kwargs)
            text = str(getattr(reply, "content", reply))
            out.append((parse_label(text), text))
        return out


_STORE_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS labels (message TEXT PRIMARY KEY, label REAL, reply TEXT NOT NULL, created REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS pending (message TEXT PRIMARY KEY, created REAL NOT NULL)",
)


class LabelStore:
    """Every label on disk: a SQLite file with the labelled messages and those waiting for a label.

    Each write is one transaction (write-ahead log), so a run killed at any point keeps every
    label written before and loses none half-written; messages taken for labelling are marked
    ``pending`` first and a resumed run asks for them again.

    Args:
        path: the database file (its folder is created).

    Example:
        >>> import tempfile, pathlib
        >>> store = LabelStore(pathlib.Path(tempfile.mkdtemp()) / "labels.sqlite")
        >>> store.add_pending(["You find a hidden passage.", "It's a wall."])
        >>> store.put([("You find a hidden passage.", 1.0, '{"helpful": "yes"}')])
        >>> store.labels(), store.pending()
        ({'You find a hidden passage.': 1.0}, ["It's a wall."])
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = self._connect()
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            for statement in _STORE_SCHEMA:
                connection.execute(statement)
        finally:
            connection.close()

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=60.0, isolation_level=None)

    def _write(self, statements: Iterable[tuple[str, tuple[Any, ...]]]) -> None:
        sqlite_write(self.path, statements)

    def add_pending(self, messages: Iterable[str]) -> None:
        """Mark messages as waiting for a label (one transaction)."""
        now = time.time()
        self._write(("INSERT OR IGNORE INTO pending (message, created) VALUES (?, ?)", (m, now)) for m in messages)

    def put(self, results: Iterable[tuple[str, float | None, str]]) -> None:
        """Store ``(message, label, reply)`` rows and clear them from pending, in one transaction."""
        now = time.time()
        statements: list[tuple[str, tuple[Any, ...]]] = []
        for message, label, reply in results:
            value = None if label is None else float(label)
            statements.append(
                (
                    "INSERT OR REPLACE INTO labels (message, label, reply, created) VALUES (?, ?, ?, ?)",
                    (message, value, reply, now),
                )
            )
            statements.append(("DELETE FROM pending WHERE message = ?", (message,)))
        self._write(statements)

    def _query(self, sql: str) -> list[tuple[Any, ...]]:
        connection = self._connect()
        try:
            return connection.execute(sql).fetchall()
        finally:
            connection.close()

    def labels(self) -> dict[str, float]:
        """The usable labels: message → label (unparsable replies left out)."""
        return {
            m: float(y)
            for m, y in self._query("SELECT message, label FROM labels WHERE label IS NOT NULL ORDER BY created")
        }

    def labelled(self) -> set[str]:
        """Every message with a stored reply, parsable or not (it is not asked again)."""
        return {m for (m,) in self._query("SELECT message FROM labels")}

    def replies(self) -> dict[str, str]:
        """message → the raw reply stored with its label."""
        return dict(self._query("SELECT message, reply FROM labels"))

    def pending(self) -> list[str]:
        """Messages taken for labelling whose label is not stored yet (in order of arrival)."""
        return [m for (m,) in self._query("SELECT message FROM pending ORDER BY created, rowid")]

    def __len__(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM labels")[0][0])


# Reward models -----------------------------------------------------------------------------------
_TOKEN = re.compile(r"[a-z]+|\d+")


def message_features(messages: Sequence[str], dim: int = 1024) -> np.ndarray:
    """Hashed bag of words and word pairs of each message, L2-normalised: [len(messages), dim] float32.

    Tokens are lower-case words (numbers become ``<num>``); CRC-32 hashes them, so features are the
    same in every process.

    Example:
        >>> x = message_features(["You find 5 gold pieces.", "You find 12 gold pieces."], dim=64)
        >>> x.shape, bool(np.allclose(x[0], x[1]))
        ((2, 64), True)
    """
    out = np.zeros((len(messages), dim), np.float32)
    for row, message in enumerate(messages):
        words = ["<num>" if w.isdigit() else w for w in _TOKEN.findall(message.lower())]
        for token in words + [a + " " + b for a, b in itertools.pairwise(words)]:
            out[row, zlib.crc32(token.encode()) % dim] += 1.0
        norm = np.linalg.norm(out[row])
        if norm > 0:
            out[row] /= norm
    return out


def _padded(n: int) -> int:
    return 1 << max(3, (n - 1).bit_length())  # power-of-two sizes: few distinct shapes to compile


@jax.jit
def _fit_logistic(x: jax.Array, y: jax.Array, mask: jax.Array, l2: float) -> tuple[jax.Array, jax.Array]:
    optimizer = optax.adam(0.1)

    def loss_fn(params: tuple[jax.Array, jax.Array]) -> jax.Array:
        w, b = params
        logits = x @ w + b
        nll = optax.sigmoid_binary_cross_entropy(logits, y)
        return jnp.sum(nll * mask) / jnp.maximum(jnp.sum(mask), 1.0) + 0.5 * l2 * jnp.sum(w * w)

    def step(carry: Any, _: None) -> tuple[Any, None]:
        params, state = carry
        grads = jax.grad(loss_fn)(params)
        updates, state = optimizer.update(grads, state, params)
        return (optax.apply_updates(params, updates), state), None

    params0 = (jnp.zeros(x.shape[1], jnp.float32), jnp.zeros((), jnp.float32))
    (params, _), _ = jax.lax.scan(step, (params0, optimizer.init(params0)), None, length=300)
    return params


@jax.jit
def _fit_ranking(better: jax.Array, worse: jax.Array, mask: jax.Array, l2: float) -> jax.Array:
    optimizer = optax.adam(0.1)

    def loss_fn(w: jax.Array) -> jax.Array:
        nll = -jax.nn.log_sigmoid(better @ w - worse @ w)
        return jnp.sum(nll * mask) / jnp.maximum(jnp.sum(mask), 1.0) + 0.5 * l2 * jnp.sum(w * w)

    def step(carry: Any, _: None) -> tuple[Any, None]:
        w, state = carry
        grads = jax.grad(loss_fn)(w)
        updates, state = optimizer.update(grads, state, w)
        return (optax.apply_updates(w, updates), state), None

    w0 = jnp.zeros(better.shape[1], jnp.float32)
    (w, _), _ = jax.lax.scan(step, (w0, optimizer.init(w0)), None, length=300)
    return w


class MessageScorer(NamedTuple):
    """A fitted reward model of messages with its normalisation: ``reward(msg)`` = 1[r̂ > ε]·r̂.

    ``table`` holds r of the labelled messages (the hashing model's whole model); ``weights`` and
    ``bias`` a linear model over :func:`message_features` (None for the hashing model, whose
    unlabelled messages get r̂ = 0).
    """

    kind: str
    table: dict[str, float]
    weights: np.ndarray | None
    bias: float
    mean: float
    std: float
    threshold: float
    num_labels: int

    def raw(self, messages: Sequence[str]) -> np.ndarray:
        """r(msg) of each message before normalisation (NaN: the hashing model has no label for it)."""
        if self.weights is None:
            return np.array([self.table.get(m, np.nan) for m in messages], np.float64)
        logits = message_features(messages, len(self.weights)) @ self.weights + self.bias
        return 1.0 / (1.0 + np.exp(-logits)) if self.kind == "classification" else logits.astype(np.float64)

    def reward(self, messages: Sequence[str]) -> np.ndarray:
        """1[r̂ > ε]·r̂ with r̂ = (r − μ)/σ, 0 for the empty message and for messages the model cannot score."""
        r_hat = (self.raw(messages) - self.mean) / self.std
        out = np.where(np.isfinite(r_hat) & (r_hat > self.threshold), r_hat, 0.0)
        return np.where([bool(m) for m in messages], out, 0.0).astype(np.float32)


def fit_reward_model(
    labels: Mapping[str, float],
    kind: RewardModelKind = "hashing",
    *,
    threshold_quantile: float = 0.0,
    dim: int = 1024,
    l2: float = 1e-3,
    max_pairs: int = 4096,
    seed: int = 0,
) -> MessageScorer:
    """Fit an ONI reward model to labels (message → 1.0 helpful / 0.0 not) and its normalisation.

    ``hashing``: r(msg) = label. ``classification``: r(msg) = σ(wᵀx + b), logistic regression on
    x = :func:`message_features` (Adam, L2 ``l2``). ``ranking``: r(msg) = wᵀx, Bradley–Terry
    −log σ(wᵀx₊ − wᵀx₋) over pairs of a helpful and an unhelpful message (at most ``max_pairs``,
    drawn with ``seed``). μ and σ are the mean and standard deviation of r over the labelled
    messages and ε the ``threshold_quantile`` quantile of their r̂. The default quantile 0 keeps
    every message scored above the lowest: with binary labels a median threshold would equal the
    helpful messages' r̂ whenever most labels are helpful, and reward nothing.

    Raises:
        ValueError: an unknown ``kind``, or ``threshold_quantile`` outside [0, 1].

    Example:
        >>> scorer = fit_reward_model({"You find a hidden passage.": 1.0, "It's a wall.": 0.0, "It's solid stone.": 0.0})
        >>> [round(float(r), 3) for r in scorer.reward(["You find a hidden passage.", "It's a wall.", "Never seen."])]
        [1.414, 0.0, 0.0]
    """
    if kind not in REWARD_MODEL_KINDS:
        raise ValueError(f"kind: expected one of {REWARD_MODEL_KINDS}, got {kind!r}")
    if not 0.0 <= threshold_quantile <= 1.0:
        raise ValueError(f"threshold_quantile: expected a float in [0, 1], got {threshold_quantile!r}")
    messages = list(labels)
    y = np.array([labels[m] for m in messages], np.float32)
    weights: np.ndarray | None = None
    bias = 0.0
    if kind != "hashing" and messages and 0 < y.sum() < len(y):  # both classes: a linear model is identifiable
        x = message_features(messages, dim)
        if kind == "classification":
            n = _padded(len(messages))
            xp, yp, mask = np.zeros((n, dim), np.float32), np.zeros(n, np.float32), np.zeros(n, np.float32)
            xp[: len(y)], yp[: len(y)], mask[: len(y)] = x, y, 1.0
            w, b = _fit_logistic(jnp.asarray(xp), jnp.asarray(yp), jnp.asarray(mask), float(l2))
            weights, bias = np.asarray(w, np.float64), float(b)
        else:
            good, bad = np.flatnonzero(y > 0.5), np.flatnonzero(y <= 0.5)
            pairs = np.stack(np.meshgrid(good, bad, indexing="ij"), -1).reshape(-1, 2)
            if len(pairs) > max_pairs:
                pairs = pairs[np.random.default_rng(seed).choice(len(pairs), max_pairs, replace=False)]
            n = _padded(len(pairs))
            better, worse, mask = (
                np.zeros((n, dim), np.float32),
                np.zeros((n, dim), np.float32),
                np.zeros(n, np.float32),
            )
            better[: len(pairs)], worse[: len(pairs)], mask[: len(pairs)] = x[pairs[:, 0]], x[pairs[:, 1]], 1.0
            weights = np.asarray(
                _fit_ranking(jnp.asarray(better), jnp.asarray(worse), jnp.asarray(mask), float(l2)), np.float64
            )
    table = {m: float(v) for m, v in zip(messages, y, strict=True)}
    scorer = MessageScorer(kind, table, weights, bias, 0.0, 1.0, np.inf, len(messages))
    if not messages:
        return scorer
    r = scorer.raw(messages)
    mean, std = float(r.mean()), float(r.std()) or 1.0
    threshold = float(np.quantile((r - mean) / std, threshold_quantile))
    return scorer._replace(mean=mean, std=std, threshold=threshold)


# The annotation worker ---------------------------------------------------------------------------
_STOP = object()


class AnnotationWorker:
    """Labels messages in a background thread: a queue in, batches to the labeller, labels to disk.

    ``submit`` never blocks (an unbounded queue; a message already labelled, queued or pending is
    skipped). The thread takes up to ``batch_size`` messages at a time (waiting at most
    ``batch_wait_s`` for a batch to fill), marks them pending in the store, labels them, stores
    the labels in one transaction and calls ``on_labels(store_labels)`` with all usable labels
    (the retraining hook). Messages pending in the store when the worker starts (a killed run)
    are queued first.

    If the labeller (or ``on_labels``) raises, the worker logs the error on the
    ``rewardlab.intrinsic`` logger, keeps it in ``error`` and stops; the messages of that batch
    stay pending on disk, so no label is lost and a restarted worker asks for them again.

    Args:
        labeller: the :class:`MessageLabeller`.
        store: the :class:`LabelStore` (or its path).
        batch_size: most messages per labeller call.
        batch_wait_s: seconds to wait for a batch to fill once one message is queued.
        on_labels: called in the worker thread after each stored batch with every usable label.
    """

    def __init__(
        self,
        labeller: MessageLabeller,
        store: LabelStore | str | os.PathLike,
        *,
        batch_size: int = 8,
        batch_wait_s: float = 0.05,
        on_labels: Callable[[dict[str, float]], None] | None = None,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size: expected an integer >= 1, got {batch_size!r}")
        self.labeller = labeller
        self.store = store if isinstance(store, LabelStore) else LabelStore(store)
        self.batch_size, self.batch_wait_s, self.on_labels = batch_size, float(batch_wait_s), on_labels
        self.error: BaseException | None = None
        self.labelled = 0  # labels stored by this worker
        self.batches = 0
        self.busy_s = 0.0  # seconds spent in the labeller
        self._queue: queue.Queue[Any] = queue.Queue()
        self._known = self.store.labelled()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="rewardlab-annotation", daemon=True)
        for message in self.store.pending():
            self._enqueue(message)
        self._thread.start()

    def _enqueue(self, message: str) -> bool:
        with self._lock:
            if message in self._known:
                return False
            self._known.add(message)
        self._queue.put(message)
        return True

    def submit(self, messages: Iterable[str]) -> int:
        """Queue the messages not labelled or queued yet; returns how many were queued. Never blocks."""
        return sum(self._enqueue(m) for m in messages if m)

    @property
    def alive(self) -> bool:
        """True while the thread runs."""
        return self._thread.is_alive()

    @property
    def queued(self) -> int:
        """Messages waiting in the queue."""
        return self._queue.qsize()

    def _take_batch(self) -> list[str] | None:
        first = self._queue.get()
        if first is _STOP:
            return None
        batch = [first]
        deadline = time.monotonic() + self.batch_wait_s
        while len(batch) < self.batch_size:
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if item is _STOP:
                self._queue.put(_STOP)
                break
            batch.append(item)
        return batch

    def _run(self) -> None:
        while True:
            batch = self._take_batch()
            if batch is None:
                return
            try:
                self.store.add_pending(batch)
                started = time.perf_counter()
                results = self.labeller(batch)
                self.busy_s += time.perf_counter() - started
                if len(results) != len(batch):
                    raise ValueError(f"labeller: expected {len(batch)} labels, got {len(results)}")
                self.store.put((m, label, reply) for m, (label, reply) in zip(batch, results, strict=True))
                self.labelled += len(batch)
                self.batches += 1
                if self.on_labels is not None:
                    self.on_labels(self.store.labels())
            except Exception as error:  # noqa: BLE001 - a dead annotator is a logged fallback, never a crash of the learner
                self.error = error
                logger.error(
                    "annotation worker stopped: %s: %s; unlabelled messages get reward 0, %d messages stay pending in %s",
                    type(error).__name__,
                    error,
                    len(batch) + self._queue.qsize(),
                    self.store.path,
                )
                return

    def join(self, timeout: float | None = None) -> None:
        """Wait until every queued message is labelled (or the worker died), then stop the thread."""
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def close(self) -> None:
        """Stop after the current batch; messages still queued are marked pending in the store (asked first next time)."""
        left: list[str] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP:
                left.append(item)
        self._queue.put(_STOP)
        self._thread.join()
        if left:
            self.store.add_pending(left)


class ONIBonus:
    """ONI's intrinsic reward of the message of s', with its labels from an :class:`AnnotationWorker`.

    r̃ = 1[r̂ > ε]·r̂ / N_ep(msg)^β: r̂ = (r(msg) − μ)/σ under the latest reward model
    (:func:`fit_reward_model` of ``reward_model`` kind, retrained in the worker thread after each
    batch of labels), μ, σ over the labelled messages, ε their ``threshold_quantile`` quantile,
    N_ep the message's count in env i's current episode (this step included). Every non-empty
    message is submitted for a label; the learner never waits. Follows the stateful ``RewardFn``
    contract of :mod:`rewardlab.intrinsic` (row i = env i). A dead annotator (``error`` set) is
    logged once; labelled messages keep their reward and the others get 0 (hashing) or the last
    model's guess.

    Args:
        labeller: a :class:`MessageLabeller` (e.g. ``LLMLabeller(ChatClient())``).
        store: the label cache: a :class:`LabelStore` or a file path; a resumed run starts from its labels.
        reward_model: ``"hashing"``, ``"classification"`` or ``"ranking"``.
        beta: β, the exponent of the episodic count.
        threshold_quantile: the quantile of the normalised rewards below which r̃ = 0.
        message_key: the observation entry with the message bytes.
        batch_size: the worker's batch size.

    Raises:
        ValueError: an unknown ``reward_model``, ``beta`` < 0 or ``threshold_quantile`` outside [0, 1].
    """

    episodic = True

    def __init__(
        self,
        labeller: MessageLabeller,
        store: LabelStore | str | os.PathLike,
        *,
        reward_model: RewardModelKind = "hashing",
        beta: float = 3.0,
        threshold_quantile: float = 0.0,
        message_key: str = "message",
        batch_size: int = 8,
    ) -> None:
        if reward_model not in REWARD_MODEL_KINDS:
            raise ValueError(f"reward_model: expected one of {REWARD_MODEL_KINDS}, got {reward_model!r}")
        if not beta >= 0:
            raise ValueError(f"beta: expected a float >= 0, got {beta!r}")
        if not 0.0 <= threshold_quantile <= 1.0:
            raise ValueError(f"threshold_quantile: expected a float in [0, 1], got {threshold_quantile!r}")
        self.reward_model, self.beta, self.threshold_quantile = reward_model, float(beta), float(threshold_quantile)
        self.message_key = message_key
        self.store = store if isinstance(store, LabelStore) else LabelStore(store)
        self.scorer = self._fit(self.store.labels())
        self.refits = 0
        self.counts: list[Counter[str]] = []
        self.calls = 0
        self.scored = 0  # non-empty messages scored
        self.unlabelled = 0  # of them, with no label at the time
        self._reported = False
        self.worker = AnnotationWorker(labeller, self.store, batch_size=batch_size, on_labels=self._retrain)

    def _fit(self, labels: dict[str, float]) -> MessageScorer:
        return fit_reward_model(labels, self.reward_model, threshold_quantile=self.threshold_quantile)

    def _retrain(self, labels: dict[str, float]) -> None:
        self.scorer = self._fit(labels)  # one reference swap: the learner reads whole models only
        self.refits += 1

    @property
    def error(self) -> BaseException | None:
        """The annotator's error once it died, else None."""
        return self.worker.error

    def stats(self) -> dict[str, float]:
        """Labels stored, queued, refits, the share of scored messages that had a label, and the annotator's state."""
        return {
            "labels": float(self.scorer.num_labels),
            "labelled_by_worker": float(self.worker.labelled),
            "queued": float(self.worker.queued),
            "refits": float(self.refits),
            "label_hit_rate": 1.0 - self.unlabelled / self.scored if self.scored else 0.0,
            "annotator_alive": float(self.worker.alive),
        }

    def __call__(self, obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
        dones = check_dones(dones, "ONIBonus")
        if not isinstance(next_obs, Mapping) or self.message_key not in next_obs:
            raise ValueError(
                f"next_obs: ONIBonus reads the message bytes from next_obs[{self.message_key!r}]; "
                f"got {type(next_obs).__name__} without it (an env without messages?)"
            )
        if not self.counts:
            self.counts = [Counter() for _ in range(len(dones))]
        if len(self.counts) != len(dones):
            raise ValueError(f"dones: expected N={len(self.counts)} envs (row i is env i), got {len(dones)}")
        if self.worker.error is not None and not self._reported:
            self._reported = True
            logger.warning("ONIBonus: the annotator died (%s); unlabelled messages get reward 0", self.worker.error)
        messages = [
            bytes(raw).split(b"\0", 1)[0].decode("latin-1").strip()
            for raw in np.asarray(next_obs[self.message_key], np.uint8)
        ]
        self.worker.submit(messages)
        scorer = self.scorer
        rewards = scorer.reward(messages)
        out = np.zeros(len(dones), np.float32)
        for i, message in enumerate(messages):
            if message:
                self.scored += 1
                self.unlabelled += message not in scorer.table
                self.counts[i][message] += 1
                out[i] = rewards[i] / self.counts[i][message] ** self.beta
            if dones[i]:
                self.counts[i].clear()
        self.calls += 1
        return out

    def state_dict(self) -> dict[str, Any]:
        """The reward model with its normalisation (μ, σ, ε) and the counters of :meth:`stats`.

        The labels themselves live in the store; the per-episode message counts are left out (a
        resumed run starts new episodes).
        """
        scorer = self.scorer
        return {
            "scorer": {
                "kind": scorer.kind,
                "messages": list(scorer.table),
                "labels": np.fromiter(scorer.table.values(), np.float64, len(scorer.table)),
                "weights": None if scorer.weights is None else np.asarray(scorer.weights),
                "bias": scorer.bias,
                "mean": scorer.mean,
                "std": scorer.std,
                "threshold": scorer.threshold,
                "num_labels": scorer.num_labels,
            },
            "refits": self.refits,
            "calls": self.calls,
            "scored": self.scored,
            "unlabelled": self.unlabelled,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from a :meth:`state_dict`.

        The saved reward model is used as it is, unless the store holds labels it was not fitted
        on (labelled after the save, before the run stopped): then it is refitted on the store's
        labels, as after any batch.

        Raises:
            ValueError: the saved model is of another ``reward_model`` kind.
        """
        saved = state["scorer"]
        if saved["kind"] != self.reward_model:
            raise ValueError(f"state: expected a {self.reward_model!r} reward model, got {saved['kind']!r}")
        weights = saved["weights"]
        self.scorer = MessageScorer(
            kind=str(saved["kind"]),
            table={m: float(y) for m, y in zip(saved["messages"], saved["labels"], strict=True)},
            weights=None if weights is None else np.asarray(weights, np.float64),
            bias=float(saved["bias"]),
            mean=float(saved["mean"]),
            std=float(saved["std"]),
            threshold=float(saved["threshold"]),
            num_labels=int(saved["num_labels"]),
        )
        self.refits, self.calls = int(state["refits"]), int(state["calls"])
        self.scored, self.unlabelled = int(state["scored"]), int(state["unlabelled"])
        self.counts = []
        labels = self.store.labels()
        if labels.keys() != self.scorer.table.keys():
            logger.info(
                "ONIBonus: %d labels stored since the saved reward model; refitting",
                len(labels) - len(self.scorer.table),
            )
            self._retrain(labels)

    def close(self) -> None:
        """Stop the annotation worker (labels already stored stay on disk)."""
        self.worker.close()

    def __enter__(self) -> ONIBonus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
