"""Count-based exploration bonuses (global and episodic) and the product of a global and an episodic bonus.

Every bonus here is a stateful ``RewardFn`` ``fn(obs, acts, next_obs, dones) -> [N] float32``
that scores the state reached, s' = ``next_obs``, under one contract that the reward wrappers
already keep (``rewardlab.wrappers``): each call is ONE step of N envs, row i is env i (the
same N on every call), and ``dones[i]`` ends env i's episode, so episodic state of row i is
cleared after row i is scored. Global state (counts, trained networks) accumulates over every
call. Composition is by nesting wrappers in ``mode="add"``: r = r_ext + c₁·b₁ + c₂·b₂, or by
:class:`ProductBonus` for b = b_global · b_episodic.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Bonus(Protocol):
    """An exploration bonus: a stateful ``RewardFn`` over one vectorised step (row i = env i).

    ``episodic`` says whether its state is reset at each episode end (``dones[i]``).
    """

    episodic: bool

    def __call__(self, obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray: ...

    def state_dict(self) -> dict[str, Any]:
        """The state that lasts across episodes (counts, trained networks, normalisers), as arrays and builtins."""
        ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from a :meth:`state_dict`; episodic state starts afresh (a resumed run resets its envs)."""
        ...


def select_leaves(obs: Any, keys: Sequence[str] | None) -> list[np.ndarray]:
    """The arrays of a batch of observations: ``obs`` itself, or its dict entries ``keys`` (all, sorted, when None).

    Raises:
        ValueError: a key of ``keys`` is missing from a dict observation.
    """
    if not isinstance(obs, Mapping):
        return [np.asarray(obs)]
    names = sorted(obs) if keys is None else list(keys)
    missing = [key for key in names if key not in obs]
    if missing:
        raise ValueError(f"obs_keys: expected keys of the observation {sorted(obs)}, missing {missing}")
    return [np.asarray(obs[key]) for key in names]


def state_keys(obs: Any, keys: Sequence[str] | None) -> list[bytes]:
    """One hashable key per row of a batch of observations: the bytes of its selected leaves.

    Example:
        >>> state_keys(np.array([[0, 1], [0, 1], [1, 0]], np.int8), None)
        [b'\\x00\\x01', b'\\x00\\x01', b'\\x01\\x00']
    """
    leaves = select_leaves(obs, keys)
    n = leaves[0].shape[0]
    rows = [np.ascontiguousarray(leaf.reshape(n, -1)) for leaf in leaves]
    return [b"".join(leaf[i].tobytes() for leaf in rows) for i in range(n)]


def check_dones(dones: Any, fn: str) -> np.ndarray:
    dones = np.asarray(dones, bool)
    if dones.ndim != 1:
        raise ValueError(f"dones: expected a [N] array for {fn}, got shape {dones.shape}")
    return dones


class GlobalCountBonus:
    """b(s') = 1/√N(s'), N counting the visits of s' over all of training (this one included).

    Args:
        obs_keys: for dict observations, the entries that define a state (all when None; e.g.
            ``("glyphs",)`` or ``("blstats",)`` for NetHack, whose message changes every step).

    Example:
        >>> bonus = GlobalCountBonus()
        >>> s = np.array([[0], [0]])
        >>> [round(float(b), 4) for b in bonus(s, None, s, np.array([False, False]))]  # 1st and 2nd visit of state 0
        [1.0, 0.7071]
        >>> round(float(bonus(s[:1], None, np.array([[0]]), np.array([True]))[0]), 4)  # 1/√3: no reset
        0.5774
    """

    episodic = False

    def __init__(self, *, obs_keys: Sequence[str] | None = None) -> None:
        self.obs_keys = None if obs_keys is None else tuple(obs_keys)
        self.counts: Counter[bytes] = Counter()

    def __call__(self, obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
        check_dones(dones, "GlobalCountBonus")
        out = np.empty(len(dones), np.float32)
        for i, key in enumerate(state_keys(next_obs, self.obs_keys)):
            self.counts[key] += 1
            out[i] = 1.0 / np.sqrt(self.counts[key])
        return out

    def state_dict(self) -> dict[str, Any]:
        """The count table: ``keys`` (state bytes) and ``counts`` ([K] int64), for a checkpoint."""
        return {"keys": list(self.counts), "counts": np.fromiter(self.counts.values(), np.int64, len(self.counts))}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from a :meth:`state_dict`."""
        self.counts = Counter(dict(zip(state["keys"], (int(c) for c in state["counts"]), strict=True)))


class EpisodicCountBonus:
    """b(s') = 1/√N_ep(s'), N_ep counting the visits of s' in the current episode of that env.

    Row i's counts are cleared when ``dones[i]`` (after scoring): each episode starts afresh.

    Args:
        obs_keys: for dict observations, the entries that define a state (all when None).

    Example:
        >>> bonus = EpisodicCountBonus()
        >>> s = np.array([[0]])
        >>> [round(float(bonus(s, None, s, np.array([d]))[0]), 4) for d in (False, True, False)]  # reset after the 2nd
        [1.0, 0.7071, 1.0]
    """

    episodic = True

    def __init__(self, *, obs_keys: Sequence[str] | None = None) -> None:
        self.obs_keys = None if obs_keys is None else tuple(obs_keys)
        self.counts: list[Counter[bytes]] = []

    def __call__(self, obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
        dones = check_dones(dones, "EpisodicCountBonus")
        if not self.counts:
            self.counts = [Counter() for _ in range(len(dones))]
        if len(self.counts) != len(dones):
            raise ValueError(f"dones: expected N={len(self.counts)} envs (row i is env i), got {len(dones)}")
        out = np.empty(len(dones), np.float32)
        for i, key in enumerate(state_keys(next_obs, self.obs_keys)):
            self.counts[i][key] += 1
            out[i] = 1.0 / np.sqrt(self.counts[i][key])
            if dones[i]:
                self.counts[i].clear()
        return out

    def state_dict(self) -> dict[str, Any]:
        """Empty: all its state belongs to the running episodes, which a resumed run starts afresh."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Forget the counts of the running episodes (a resumed run resets its envs)."""
        self.counts = []


class ProductBonus:
    """b = b_global · b_episodic (Henaff et al., 2023), both bonuses updated on every call.

    Args:
        global_bonus: a bonus over all of training (counts, RND).
        episodic_bonus: a bonus reset at each episode end (episodic counts, E3B).

    Raises:
        ValueError: ``global_bonus`` is episodic or ``episodic_bonus`` is not.

    Example:
        >>> bonus = ProductBonus(GlobalCountBonus(), EpisodicCountBonus())
        >>> s = np.array([[0]])
        >>> [round(float(bonus(s, None, s, np.array([False]))[0]), 4) for _ in range(2)]  # 1·1, (1/√2)·(1/√2)
        [1.0, 0.5]
    """

    episodic = True

    def __init__(self, global_bonus: Bonus, episodic_bonus: Bonus) -> None:
        if getattr(global_bonus, "episodic", True):
            raise ValueError(f"global_bonus: expected a bonus with episodic=False, got {type(global_bonus).__name__}")
        if not getattr(episodic_bonus, "episodic", False):
            raise ValueError(
                f"episodic_bonus: expected a bonus with episodic=True, got {type(episodic_bonus).__name__}"
            )
        self.global_bonus = global_bonus
        self.episodic_bonus = episodic_bonus

    def __call__(self, obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
        b_global = np.asarray(self.global_bonus(obs, acts, next_obs, dones), np.float32)
        b_episodic = np.asarray(self.episodic_bonus(obs, acts, next_obs, dones), np.float32)
        return b_global * b_episodic

    def state_dict(self) -> dict[str, Any]:
        """The state of both bonuses, under ``global`` and ``episodic``."""
        return {"global": self.global_bonus.state_dict(), "episodic": self.episodic_bonus.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue both bonuses from a :meth:`state_dict`."""
        self.global_bonus.load_state_dict(state["global"])
        self.episodic_bonus.load_state_dict(state["episodic"])
