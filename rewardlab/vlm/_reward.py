"""``CLIPReward``: the goal-baseline CLIP reward of VLM-RM as a batched ``RewardFn`` over observations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rewardlab.vlm._clip import ClipEmbedder
from rewardlab.vlm._frames import FrameSource
from rewardlab.vlm._projection import GoalBaseline, goal_baseline, goal_baseline_reward


def _prompts(name: str, value: str | Sequence[str] | None) -> list[str] | None:
    if value is None:
        return None
    prompts = [value] if isinstance(value, str) else list(value)
    if not prompts or not all(isinstance(p, str) and p.strip() for p in prompts):
        raise ValueError(f"{name}: expected a non-empty prompt or a list of them, got {value!r}")
    return prompts


class CLIPReward:
    """R(s') = 1 − ½‖(x̂ − g)P‖² of the frame of each next observation, a ``RewardFn`` like any other.

    x̂ is the unit CLIP image embedding of the frame of s', g the mean unit embedding of the
    goal prompts, b that of the baseline prompts, d = g − b and P = α·ddᵀ/‖d‖² + (1 − α)I
    (:func:`goal_baseline`). A call renders the N next observations with the frame source
    (one renderer, one pass; image observations are their own frames) and embeds all N
    frames in one batch, so a vector env's step costs one forward pass. ``obs``, ``acts``
    and ``dones`` are accepted and not read: the reward is a function of s' alone.

    Wrappers, distances, shaping and sweeps take it unchanged; it has no ``pure_fn`` (the
    renderer and the torch model run on the host), so they call it on the host.

    Args:
        embedder: a :class:`ClipEmbedder` (:func:`load_clip`).
        frames: the frame source of the env (:func:`frame_source`), or None when the reward
            is given frames (:meth:`from_frames`) only.
        goal: one goal prompt or several (averaged).
        baseline: one baseline prompt or several (averaged); None only for ``alpha = 0``.
        alpha: α in [0, 1], the weight of the goal-baseline direction.
        cache: keep the image embedding of every next observation seen (keyed by its float32
            bytes) and render only new ones: for sample-based distances, whose grids repeat
            the same states many times. Off for training, where states rarely repeat.

    Raises:
        ValueError: bad prompts or ``alpha`` (see :func:`goal_baseline`).

    References:
        Rocamonde et al., "Vision-Language Models are Zero-Shot Reward Models for
        Reinforcement Learning", ICLR 2024.
    """

    returns_checked_rewards = True

    def __init__(
        self,
        embedder: ClipEmbedder,
        frames: FrameSource | None,
        goal: str | Sequence[str],
        baseline: str | Sequence[str] | None = None,
        *,
        alpha: float = 0.0,
        cache: bool = False,
    ) -> None:
        if not isinstance(embedder, ClipEmbedder):
            raise ValueError(f"embedder: expected a ClipEmbedder (load_clip), got {type(embedder).__name__}")
        self.embedder = embedder
        self.frames = frames
        self.goal = _prompts("goal", goal)
        self.baseline = _prompts("baseline", baseline)
        assert self.goal is not None
        self.goal_embeddings = embedder.embed_texts(self.goal)
        self.baseline_embeddings = None if self.baseline is None else embedder.embed_texts(self.baseline)
        self.spec: GoalBaseline = goal_baseline(self.goal_embeddings, self.baseline_embeddings, alpha)
        self.cache: dict[bytes, np.ndarray] | None = {} if cache else None

    def __repr__(self) -> str:
        return f"CLIPReward({self.embedder.name!r}, goal={self.goal!r}, baseline={self.baseline!r}, alpha={self.alpha})"

    @property
    def alpha(self) -> float:
        """α, the weight of the goal-baseline direction."""
        return self.spec.alpha

    def with_alpha(self, alpha: float) -> CLIPReward:
        """The same reward with another α (the prompt embeddings are reused, not recomputed)."""
        other = object.__new__(CLIPReward)
        other.__dict__.update(self.__dict__)
        other.spec = goal_baseline(self.goal_embeddings, self.baseline_embeddings, alpha)
        return other

    def from_embeddings(self, image_embeddings: Any) -> np.ndarray:
        """Rewards ``[N]`` float32 of image embeddings ``[N, D]``."""
        return goal_baseline_reward(image_embeddings, self.spec)

    def from_frames(self, frames: Any) -> np.ndarray:
        """Rewards ``[N]`` float32 of RGB frames ``uint8 [N, H, W, 3]`` (embedded in one batch)."""
        return self.from_embeddings(self.embedder.embed_images(frames))

    def render(self, next_obs: Any) -> np.ndarray:
        """The frames ``uint8 [N, S, S, 3]`` of next observations.

        Raises:
            ValueError: the reward has no frame source.
        """
        if self.frames is None:
            raise ValueError("frames: this CLIPReward has no frame source; pass one, or call from_frames(frames)")
        return self.frames.render(next_obs)

    def __call__(self, obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
        """Rewards ``[N]`` float32 of N transitions: the frames of ``next_obs`` scored against the goal.

        Raises:
            ValueError: ``dones`` is not ``[N]`` or ``next_obs`` has another leading axis.
        """
        del obs, acts
        dones = np.asarray(dones)
        if dones.ndim != 1 or dones.shape[0] < 1:
            raise ValueError(f"dones: expected shape [N] with N >= 1, got {dones.shape}")
        if np.shape(next_obs)[0] != dones.shape[0]:
            raise ValueError(f"next_obs: expected N={dones.shape[0]} rows (from dones), got {np.shape(next_obs)[0]}")
        if self.cache is None:
            return self.from_frames(self.render(next_obs))
        return self.from_embeddings(self.cached_embeddings(next_obs))

    def cached_embeddings(self, next_obs: Any) -> np.ndarray:
        """Image embeddings ``[N, D]`` of next observations, rendering and embedding only those not cached."""
        rows = np.ascontiguousarray(next_obs, np.float32)
        keys = [row.tobytes() for row in rows]
        assert self.cache is not None
        missing = {key: i for i, key in enumerate(keys) if key not in self.cache}
        if missing:
            embeddings = self.embedder.embed_images(self.render(rows[list(missing.values())]))
            self.cache.update(zip(missing, embeddings, strict=True))
        return np.stack([self.cache[key] for key in keys])
