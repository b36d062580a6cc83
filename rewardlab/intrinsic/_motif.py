"""Motif: an intrinsic reward from an LLM's preferences between game messages.

Klissarov et al., "Motif: Intrinsic motivation from artificial intelligence feedback", ICLR 2024.
An LLM compares pairs of messages (captions of events) with :data:`MOTIF_PROMPT`
(:func:`label_message_pairs`, through ``rewardlab.llm.ChatClient`` or any client with the same
``chat`` method); a Bradley–Terry model with one reward per distinct message is fitted to the
labels (:func:`fit_message_rewards`); :class:`MotifBonus` gives the agent
r̃ = 1[r̂ > ε]·r̂ / N_ep(msg)^β, r̂ the reward normalised over the labelled messages and N_ep the
message's count in the current episode.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rewardlab.intrinsic._counts import check_dones

MOTIF_PROMPT = (
    "I will present you with two short gameplay descriptions.\n"
    "First, tell me about your knowledge of NetHack. Mention the goal of NetHack. "
    "Prefer agents that maximize their score in the game, for instance by killing monsters, "
    "collecting gold or going down the stairs in the dungeon.\n"
    "Then, write an analysis describing the semantics of each description strictly using information "
    "from the descriptions (which may be empty) and your knowledge of NetHack. "
    "Provide a comparison of the two descriptions.\n"
    "Finally, respond by explicitly declaring which description best fits your criteria, following the format "
    "`Best description: 1` or `Best description: 2`. If both contain undesirable events, say `None`.\n\n"
    'Description 1: "{first}"\n'
    'Description 2: "{second}"\n'
)
"""The paper's pairwise prompt (with its score-seeking modifier); ``{first}`` and ``{second}`` are the messages."""

MOTIF_SHORT_PROMPT = (
    "Two short messages from the game NetHack. The goal is to maximize the score: kill monsters, collect gold "
    "and items, find passages and go down the stairs.\n"
    'Description 1: "{first}"\n'
    'Description 2: "{second}"\n'
    'Which description is better? Answer in JSON: {{"best": "1"}}, {{"best": "2"}} or {{"best": "None"}}.\n'
)
"""A short pairwise prompt for small models, with the answer constrained to :data:`MOTIF_SCHEMA`."""

MOTIF_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"best": {"type": "string", "enum": ["1", "2", "None"]}},
    "required": ["best"],
    "additionalProperties": False,
}
"""The JSON schema of a constrained pairwise answer (``response_format``): ``{"best": "1" | "2" | "None"}``."""

_ANSWER = re.compile(r"best(?: description)?\W*(1|2|none)", re.IGNORECASE)


class ChatLike(Protocol):
    """A chat client: ``rewardlab.llm.ChatClient`` or anything with its ``chat`` method (a reply with ``content``)."""

    def chat(
        self,
        messages: list[dict[str, str]],
        *,
        temperature: float = ...,
        max_tokens: int = ...,
        json_schema: dict[str, Any] | None = ...,
    ) -> Any: ...


def parse_preference(reply: str) -> float | None:
    """The label of an LLM reply: 1.0 (the first message preferred), 0.0 (the second), 0.5 (``None``: neither), None if unparsable.

    The last ``Best description: …`` in the reply counts; a constrained reply ``{"best": "1"}``
    (:data:`MOTIF_SCHEMA`) reads the same way.

    Example:
        >>> parse_preference("... so. Best description: 2"), parse_preference("Best description: None")
        (0.0, 0.5)
        >>> parse_preference('{"best": "1"}')
        1.0
        >>> parse_preference("I cannot tell") is None
        True
    """
    answers = _ANSWER.findall(reply)
    if not answers:
        return None
    return {"1": 1.0, "2": 0.0}.get(answers[-1].lower(), 0.5)


def label_message_pairs(
    client: ChatLike,
    pairs: Sequence[tuple[str, str]],
    *,
    max_tokens: int = 512,
    prompt: str = MOTIF_PROMPT,
    json_schema: dict[str, Any] | None = None,
    both_orders: bool = False,
) -> list[float | None]:
    """The LLM's label of each pair of messages (see :func:`parse_preference`).

    With ``both_orders`` each pair is also asked with the messages swapped and the label is
    (y(a, b) + 1 − y(b, a))/2 (the one parsable answer if the other is not): a model that always
    prefers the first description then gives 0.5, a tie, instead of a preference for whichever
    message happened to come first.

    Args:
        client: a chat client (``rewardlab.llm.ChatClient`` or anything with its ``chat`` method).
        pairs: the message pairs.
        max_tokens: most tokens per reply.
        prompt: the pairwise prompt with ``{first}`` and ``{second}`` fields (:data:`MOTIF_PROMPT`, the
            paper's; :data:`MOTIF_SHORT_PROMPT` for small models).
        json_schema: constrain each reply to this schema (:data:`MOTIF_SCHEMA`), so a small model's
            replies parse.
        both_orders: ask each pair in both orders and average (against position bias).

    Raises:
        ValueError: a pair is not two strings.
    """
    labels: list[float | None] = []
    for index, pair in enumerate(pairs):
        if len(pair) != 2 or not all(isinstance(m, str) for m in pair):
            raise ValueError(f"pairs[{index}]: expected (message, message) strings, got {pair!r}")
        label = _ask(client, prompt.format(first=pair[0], second=pair[1]), max_tokens, json_schema)
        if both_orders:
            swapped = _ask(client, prompt.format(first=pair[1], second=pair[0]), max_tokens, json_schema)
            if swapped is not None:
                label = 1.0 - swapped if label is None else (label + 1.0 - swapped) / 2
        labels.append(label)
    return labels


def _ask(client: ChatLike, content: str, max_tokens: int, json_schema: dict[str, Any] | None) -> float | None:
    kwargs: dict[str, Any] = {"temperature": 0.0, "max_tokens": max_tokens}
    if json_schema is not None:
        kwargs["json_schema"] = json_schema
    reply = client.chat([{"role": "user", "content": content}], **kwargs)
    return parse_preference(str(getattr(reply, "content", reply)))


class MessageRewards(NamedTuple):
    """A reward per distinct message (the hashing reward model): ``rewards[message_ids[msg]]``; unknown messages get 0."""

    message_ids: dict[str, int]
    rewards: np.ndarray

    def __call__(self, message: str) -> float:
        """r(message), 0 for a message never labelled."""
        i = self.message_ids.get(message)
        return 0.0 if i is None else float(self.rewards[i])


def fit_message_rewards(
    pairs: Sequence[tuple[str, str]],
    labels: Sequence[float | None],
    *,
    num_steps: int = 500,
    learning_rate: float = 0.1,
    l2: float = 1e-3,
) -> MessageRewards:
    """Bradley–Terry rewards of messages: P(m₁ ≻ m₂) = σ(r(m₁) − r(m₂)), fitted by Adam on the labels.

    Minimises −Σ [y log σ(r₁ − r₂) + (1 − y) log σ(r₂ − r₁)] / n + l2·‖r‖²/2 over one reward per
    distinct message; ties (y = 0.5) pull the two rewards together; unparsable labels (None) are dropped.

    Raises:
        ValueError: ``pairs`` and ``labels`` differ in length, or no label is usable.

    Example:
        >>> pairs = [("You find a hidden passage.", "You hear a door open.")] * 4
        >>> model = fit_message_rewards(pairs, [1.0, 1.0, 1.0, 0.0])
        >>> model("You find a hidden passage.") > model("You hear a door open.")
        True
    """
    if len(pairs) != len(labels):
        raise ValueError(f"labels: expected one per pair ({len(pairs)}), got {len(labels)}")
    kept = [(pair, y) for pair, y in zip(pairs, labels, strict=True) if y is not None]
    if not kept:
        raise ValueError("labels: expected at least one label that is not None, got none")
    index: dict[str, int] = {}
    for (a, b), _ in kept:
        index.setdefault(a, len(index))
        index.setdefault(b, len(index))
    first = jnp.array([index[a] for (a, _), _ in kept])
    second = jnp.array([index[b] for (_, b), _ in kept])
    y = jnp.array([label for _, label in kept], jnp.float32)
    optimizer = optax.adam(learning_rate)

    def loss_fn(r: jax.Array) -> jax.Array:
        logits = r[first] - r[second]
        nll = -(y * jax.nn.log_sigmoid(logits) + (1 - y) * jax.nn.log_sigmoid(-logits))
        return jnp.mean(nll) + 0.5 * l2 * jnp.sum(jnp.square(r))

    def step(carry: tuple[jax.Array, Any], _: None) -> tuple[tuple[jax.Array, Any], jax.Array]:
        r, state = carry
        loss, grads = jax.value_and_grad(loss_fn)(r)
        updates, state = optimizer.update(grads, state, r)
        return (optax.apply_updates(r, updates), state), loss

    r0 = jnp.zeros(len(index), jnp.float32)
    (r, _), _ = jax.lax.scan(step, (r0, optimizer.init(r0)), None, length=int(num_steps))
    return MessageRewards(index, np.asarray(r, np.float32))


class MotifBonus:
    """Motif's intrinsic reward of the message of s': r̃ = 1[r̂ > ε]·r̂ / N_ep(msg)^β.

    r̂ = (r(msg) − μ)/σ with μ, σ the mean and standard deviation of r over the labelled messages,
    ε the ``threshold_quantile`` quantile of their normalised rewards, N_ep(msg) the message's count in
    the current episode of that env (this step included; reset when ``dones[i]``). The empty message
    gets 0. The message is read from ``next_obs[message_key]`` (NLE's NUL-padded bytes, as
    ``rewardlab_envs.make_nethack`` returns them). Follows the stateful ``RewardFn`` contract of
    :mod:`rewardlab.intrinsic` (row i = env i).

    Args:
        model: the message rewards (:func:`fit_message_rewards`).
        beta: β, the exponent of the episodic count (3 in the paper).
        threshold_quantile: the quantile of the normalised rewards below which r̃ = 0.
        message_key: the observation entry holding the message bytes.

    Raises:
        ValueError: ``beta`` < 0 or ``threshold_quantile`` outside [0, 1].
    """

    episodic = True

    def __init__(
        self, model: MessageRewards, *, beta: float = 3.0, threshold_quantile: float = 0.5, message_key: str = "message"
    ) -> None:
        if not beta >= 0:
            raise ValueError(f"beta: expected a float >= 0, got {beta!r}")
        if not 0.0 <= threshold_quantile <= 1.0:
            raise ValueError(f"threshold_quantile: expected a float in [0, 1], got {threshold_quantile!r}")
        rewards = np.asarray(model.rewards, np.float64)
        self.mean, self.std = float(rewards.mean()), float(rewards.std()) or 1.0
        self.threshold = float(np.quantile((rewards - self.mean) / self.std, threshold_quantile))
        self.model, self.beta, self.message_key = model, float(beta), message_key
        self.counts: list[Counter[str]] = []

    def normalised(self, message: str) -> float:
        """1[r̂ > ε]·r̂ of a message (before the episodic count), 0 for the empty message."""
        if not message:
            return 0.0
        r_hat = (self.model(message) - self.mean) / self.std
        return r_hat if r_hat > self.threshold else 0.0

    def __call__(self, obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
        dones = check_dones(dones, "MotifBonus")
        if not isinstance(next_obs, dict) or self.message_key not in next_obs:
            raise ValueError(
                f"next_obs: MotifBonus reads the message bytes from next_obs[{self.message_key!r}]; "
                f"got {type(next_obs).__name__} without it (an env without messages?)"
            )
        if not self.counts:
            self.counts = [Counter() for _ in range(len(dones))]
        if len(self.counts) != len(dones):
            raise ValueError(f"dones: expected N={len(self.counts)} envs (row i is env i), got {len(dones)}")
        out = np.zeros(len(dones), np.float32)
        for i, raw in enumerate(np.asarray(next_obs[self.message_key], np.uint8)):
            message = bytes(raw).split(b"\0", 1)[0].decode("latin-1").strip()
            if message:
                self.counts[i][message] += 1
                out[i] = self.normalised(message) / self.counts[i][message] ** self.beta
            if dones[i]:
                self.counts[i].clear()
        return out

    def state_dict(self) -> dict[str, Any]:
        """The message rewards and their normalisation (μ, σ, ε); the per-episode counts are left out."""
        return {
            "messages": sorted(self.model.message_ids, key=self.model.message_ids.__getitem__),  # position = id
            "rewards": np.asarray(self.model.rewards),
            "mean": self.mean,
            "std": self.std,
            "threshold": self.threshold,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from a :meth:`state_dict` (the per-episode counts start afresh)."""
        messages = list(state["messages"])
        self.model = MessageRewards({m: i for i, m in enumerate(messages)}, np.asarray(state["rewards"], np.float32))
        self.mean, self.std, self.threshold = float(state["mean"]), float(state["std"]), float(state["threshold"])
        self.counts = []
