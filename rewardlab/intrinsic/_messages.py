"""Game messages for LLM feedback: collecting them from rollouts, pairing them, and a hand-written oracle.

The oracle (:func:`oracle_label`) is a few keyword rules over NetHack messages: progress (finding,
picking up, killing, stairs, gold) is good, danger (being hit, dying, hunger) is bad, the rest
neutral. It is no judge of play, only a fixed reference to measure how often an LLM's labels
agree with obvious readings (:func:`label_agreement`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

GOOD_PATTERNS: tuple[str, ...] = (
    r"\byou find\b",
    r"\bhidden (passage|door)\b",
    r"\bgold pieces?\b",
    r"\byou (kill|destroy)\b",
    r"\bis killed\b",
    r"\bstair(case|s)? (down|up)\b",
    r"\bthere is a staircase\b",
    r"\byou see here\b",
    r"\b[a-z] - \b",  # an item picked up: "f - a blessed +1 dagger."
    r"\bwelcome to experience level\b",
    r"\byou feel (much )?better\b",
    r"\bunlock(s|ed)?\b",
    r"\bkey\b",
)
"""Regular expressions (lower case) of messages the oracle calls good."""

BAD_PATTERNS: tuple[str, ...] = (
    r"\bhits?!",
    r"\bouch\b",
    r"\bbites?!",
    r"\byou die\b",
    r"\bkills you\b",
    r"\byou are (beginning to feel )?(hungry|weak)\b",
    r"\byou feel (feverish|weak|deathly)\b",
    r"\bthe [a-z ]+ (misses|stings|touches) you\b",
    r"\byou are hit\b",
    r"\bwater\b.*\b(drown|swim)\b",
)
"""Regular expressions (lower case) of messages the oracle calls bad (checked before the good ones)."""

ORACLE_MESSAGES: tuple[tuple[str, float], ...] = (
    ("You find a hidden passage.", 1.0),
    ("You find a hidden door.", 1.0),
    ("You kill the newt!", 1.0),
    ("You destroy the lichen!", 1.0),
    ("There is a staircase down here.", 1.0),
    ("You see here 12 gold pieces.", 1.0),
    ("$ - 7 gold pieces.", 1.0),
    ("f - a blessed +1 dagger.", 1.0),
    ("Welcome to experience level 2.", 1.0),
    ("You see here a key.", 1.0),
    ("You hear the footsteps of a guard on patrol.", 0.0),
    ("It's solid stone.", 0.0),
    ("It's a wall.", 0.0),
    ("You hear some noises in the distance.", 0.0),
    ("There is a doorway here.", 0.0),
    ("You hear a door open.", 0.0),
    ("Never mind.", 0.0),
    ("You see no objects here.", 0.0),
    ("Hello Agent, welcome to NetHack!  You are a chaotic male human Rogue.", 0.0),
    ("Really attack the kitten?", 0.0),
    ("The jackal bites!", -1.0),
    ("The newt misses you.", -1.0),
    ("You are beginning to feel hungry.", -1.0),
    ("You die...", -1.0),
)
"""Hand-written NetHack messages with the oracle's label (1 good, 0 neutral, −1 bad): a fixed agreement set."""

_GOOD = [re.compile(p) for p in GOOD_PATTERNS]
_BAD = [re.compile(p) for p in BAD_PATTERNS]


def oracle_label(message: str) -> float:
    """The hand-written oracle: −1.0 (bad), 1.0 (good) or 0.0 (neutral, and the empty message).

    Example:
        >>> oracle_label("You find a hidden passage."), oracle_label("You hear the footsteps of a guard on patrol.")
        (1.0, 0.0)
        >>> oracle_label("The jackal bites!")
        -1.0
    """
    text = message.strip().lower()
    if not text:
        return 0.0
    if any(p.search(text) for p in _BAD):
        return -1.0
    return 1.0 if any(p.search(text) for p in _GOOD) else 0.0


def oracle_preference(first: str, second: str) -> float:
    """The oracle's pairwise label in Motif's convention: 1.0 (first better), 0.0 (second), 0.5 (equal).

    Example:
        >>> oracle_preference("You hear a door open.", "You kill the newt!")
        0.0
    """
    a, b = oracle_label(first), oracle_label(second)
    return 1.0 if a > b else 0.0 if a < b else 0.5


def collect_messages(env: Any, num_steps: int, *, seed: int = 0, policy: Any = None) -> Counter[str]:
    """The non-empty messages seen in ``num_steps`` steps of ``env`` (``info["message"]``), with their counts.

    Args:
        env: a gymnasium env that puts the message text in ``info["message"]`` (``rewardlab_envs.make_nethack``).
        num_steps: env steps in all (episodes restart as they end).
        seed: seeds the first reset and the random actions.
        policy: ``policy(obs) -> action``; None for uniform random actions.

    Raises:
        ValueError: ``num_steps`` < 1, or the env's info has no ``message`` (an env without messages).
    """
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"num_steps: expected an integer >= 1, got {num_steps!r}")
    env.action_space.seed(seed)
    obs, info = env.reset(seed=seed)
    if "message" not in info:
        raise ValueError(
            f"env: expected info['message'] (a NetHack env from rewardlab_envs), got info keys {sorted(info)}"
        )
    messages: Counter[str] = Counter()
    for _ in range(num_steps):
        if info.get("message"):
            messages[str(info["message"])] += 1
        action = env.action_space.sample() if policy is None else policy(obs)
        obs, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            if info.get("message"):
                messages[str(info["message"])] += 1
            obs, info = env.reset()
    return messages


def message_pairs(messages: Sequence[str], num_pairs: int, *, seed: int = 0) -> list[tuple[str, str]]:
    """``num_pairs`` pairs of two different messages drawn uniformly (with replacement across pairs).

    Raises:
        ValueError: fewer than two distinct messages, or ``num_pairs`` < 0.

    Example:
        >>> message_pairs(["a", "b"], 2, seed=0) in ([("a", "b"), ("b", "a")], [("b", "a"), ("a", "b")],
        ...     [("a", "b"), ("a", "b")], [("b", "a"), ("b", "a")])
        True
    """
    distinct = sorted(set(messages))
    if len(distinct) < 2:
        raise ValueError(f"messages: expected at least two distinct messages, got {len(distinct)}")
    if num_pairs < 0:
        raise ValueError(f"num_pairs: expected an integer >= 0, got {num_pairs!r}")
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(num_pairs):
        i, j = rng.choice(len(distinct), 2, replace=False)
        pairs.append((distinct[int(i)], distinct[int(j)]))
    return pairs


def label_agreement(labels: Sequence[float | None], oracle: Sequence[float]) -> dict[str, float]:
    """How often parsed labels equal the oracle's, beside the agreement of the best constant answer.

    Returns ``n`` (labels), ``parsed`` (share not None), ``agreement`` (share of the parsed labels
    equal to the oracle's; NaN if none parsed) and ``constant_agreement`` (the share of the most
    common oracle label among them: what always giving one answer would score).

    Raises:
        ValueError: ``labels`` and ``oracle`` differ in length.

    Example:
        >>> label_agreement([1.0, 0.0, None, 1.0], [1.0, 1.0, 0.0, 1.0])
        {'n': 4.0, 'parsed': 0.75, 'agreement': 0.6666666666666666, 'constant_agreement': 1.0}
    """
    if len(labels) != len(oracle):
        raise ValueError(f"oracle: expected one label per LLM label ({len(labels)}), got {len(oracle)}")
    kept = [(float(y), float(o)) for y, o in zip(labels, oracle, strict=True) if y is not None]
    n = len(labels)
    if not kept:
        return {"n": float(n), "parsed": 0.0, "agreement": float("nan"), "constant_agreement": float("nan")}
    agree = sum(y == o for y, o in kept) / len(kept)
    constant = max(Counter(o for _, o in kept).values()) / len(kept)
    return {"n": float(n), "parsed": len(kept) / n if n else 0.0, "agreement": agree, "constant_agreement": constant}
