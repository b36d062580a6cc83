"""A ring buffer of vec-env transitions and the random fragmenter that samples segment pairs.

Storage is ``[capacity_steps, num_envs, ...]``: each env's stream stays contiguous in time,
so a segment is a run of consecutive steps of one env. Every stored step carries an episode
id (a fresh id is drawn for the step after each ``done``); a segment of L steps starting at
step t of env e is valid iff it lies inside the buffer and steps t and t + L − 1 belong to
the same episode. Segments therefore never cross episode boundaries (a segment may end
with the episode's last step). Episodes shorter than L yield no segment at all: they are
never padded; ``can_sample`` says whether any valid segment exists, and ``sample_pairs``
raises otherwise.

References:
    Christiano et al., "Deep reinforcement learning from human preferences", NeurIPS 2017
    (random segment pairs); Lee et al., "PEBBLE", ICML 2021.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

import jax
import numpy as np

from rewardlab._checks import check_generator
from rewardlab._types import FragmentPairs, Trajectory, Transitions


def _space_shape(space: Any) -> Any:
    """Expected per-item shapes of a gymnasium space: a shape tuple or a dict of them (None if unknown)."""
    if space is None:
        return None
    spaces = getattr(space, "spaces", None)
    if isinstance(spaces, dict):
        return {key: _space_shape(sub) for key, sub in spaces.items()}
    shape = getattr(space, "shape", None)
    return None if shape is None else tuple(shape)


class TransitionBuffer:
    """Ring buffer of the last ``capacity_steps`` vec-env steps of ``num_envs`` envs.

    Each ``add`` appends one vec-env step (leading axis ``num_envs``); arrays are allocated
    from the first batch (dtypes kept). Observations may be dicts of arrays.

    Args:
        capacity_steps: vec-env steps kept (total transitions = capacity_steps × num_envs).
        num_envs: envs per step.
        observation_space: optional gymnasium space; per-env observation shapes are checked against it.
        action_space: optional gymnasium space; per-env action shapes are checked against it.

    Example:
        >>> import numpy as np
        >>> buffer = TransitionBuffer(capacity_steps=100, num_envs=2)
        >>> for t in range(10):
        ...     obs = np.full((2, 3), t, np.float32)
        ...     buffer.add(obs, np.zeros((2, 1)), obs + 1, np.array([t == 4, False]), np.ones(2))
        >>> len(buffer), buffer.can_sample(6)
        (20, True)
        >>> pairs = buffer.sample_pairs(4, 6, np.random.default_rng(0))
        >>> pairs.obs.shape
        (4, 2, 6, 3)
    """

    def __init__(
        self, capacity_steps: int, num_envs: int, observation_space: Any = None, action_space: Any = None
    ) -> None:
        if not isinstance(capacity_steps, (int, np.integer)) or capacity_steps < 1:
            raise ValueError(f"capacity_steps: expected an integer >= 1, got {capacity_steps!r}")
        if not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs: expected an integer >= 1, got {num_envs!r}")
        self.capacity_steps = int(capacity_steps)
        self.num_envs = int(num_envs)
        self.observation_space = observation_space
        self.action_space = action_space
        self._obs_shape = _space_shape(observation_space)
        self._act_shape = _space_shape(action_space)
        self._storage: dict[str, Any] | None = None
        self._pos = 0  # next slot to write
        self._steps = 0  # filled slots
        self._current_episode = np.arange(self.num_envs, dtype=np.int64)
        self._next_episode = self.num_envs

    # Writing -----------------------------------------------------------------------------
    def _check_leaf(self, name: str, value: np.ndarray, expected: Any) -> None:
        if value.ndim < 1 or value.shape[0] != self.num_envs:
            raise ValueError(f"{name}: expected leading axis num_envs={self.num_envs}, got shape {value.shape}")
        if (
            expected is not None
            and tuple(value.shape[1:]) != tuple(expected)
            and value.size != self.num_envs * int(np.prod(expected))
        ):
            raise ValueError(f"{name}: expected shape ({self.num_envs}, *{tuple(expected)}), got {value.shape}")

    def _check_tree(self, name: str, tree: Any, expected: Any) -> Any:
        if isinstance(tree, dict):
            if isinstance(expected, dict) and set(tree) != set(expected):
                raise ValueError(f"{name}: expected keys {sorted(expected)}, got {sorted(tree)}")
            return {
                key: self._check_tree(
                    f"{name}[{key!r}]", value, None if not isinstance(expected, dict) else expected[key]
                )
                for key, value in tree.items()
            }
        value = np.asarray(tree)
        self._check_leaf(name, value, None if isinstance(expected, dict) else expected)
        if expected is not None and not isinstance(expected, dict):
            value = value.reshape(self.num_envs, *expected)
        return value

    def add(
        self, obs: Any, acts: Any, next_obs: Any, dones: Any, rews: Any, factors: Any = None, *, terminated: Any = None
    ) -> None:
        """Append one vec-env step.

        Args:
            obs: ``[num_envs, *obs_shape]`` s_t (or a dict of such arrays).
            acts: ``[num_envs, *act_shape]`` a_t.
            next_obs: ``[num_envs, *obs_shape]`` s_{t+1} (the terminal observation where done).
            dones: ``[num_envs]`` bool, the episode ended after this step.
            rews: ``[num_envs]`` true reward.
            factors: optional ``[num_envs, K]`` reward factors (must be given on every call once given).
            terminated: ``[num_envs]`` bool, s_{t+1} is terminal (a subset of ``dones``; the rest
                are time-limit truncations). None: every done step is taken as terminated.

        Raises:
            ValueError: a shape disagrees with ``num_envs``, the spaces or earlier batches.
        """
        batch = {
            "obs": self._check_tree("obs", obs, self._obs_shape),
            "acts": self._check_tree("acts", acts, self._act_shape),
            "next_obs": self._check_tree("next_obs", next_obs, self._obs_shape),
            "dones": np.asarray(dones).astype(bool),
            "rews": np.asarray(rews, np.float32),
        }
        batch["terminated"] = batch["dones"] if terminated is None else np.asarray(terminated).astype(bool)
        for name in ("dones", "rews", "terminated"):
            if batch[name].shape != (self.num_envs,):
                raise ValueError(f"{name}: expected shape ({self.num_envs},) ([num_envs]), got {batch[name].shape}")
        if factors is not None:
            batch["factors"] = np.asarray(factors, np.float32)
            if batch["factors"].ndim != 2 or batch["factors"].shape[0] != self.num_envs:
                raise ValueError(
                    f"factors: expected shape ({self.num_envs}, K) ([num_envs, K]), got {batch['factors'].shape}"
                )
        batch["episode"] = self._current_episode.copy()
        if self._storage is None:
            self._storage = jax.tree.map(lambda x: np.zeros((self.capacity_steps, *x.shape), x.dtype), batch)
        elif ("factors" in self._storage) != ("factors" in batch):
            raise ValueError(
                f"factors: expected {'an array' if 'factors' in self._storage else 'None'} as in earlier batches, got {'None' if factors is None else 'an array'}"
            )
        try:
            jax.tree.map(lambda store, x: store.__setitem__(self._pos, x), self._storage, batch)
        except (ValueError, TypeError) as error:
            shapes = jax.tree.map(lambda x: x.shape[1:], self._storage)
            raise ValueError(f"add: batch does not match the stored per-step shapes {shapes}: {error}") from error
        ended = batch["dones"]
        count = int(ended.sum())
        self._current_episode[ended] = self._next_episode + np.arange(count)
        self._next_episode += count
        self._pos = (self._pos + 1) % self.capacity_steps
        self._steps = min(self._steps + 1, self.capacity_steps)

    def add_trajectory(self, trajectory: Trajectory) -> None:
        """Append a whole episode to a single-env buffer (``num_envs`` must be 1); the last step is done."""
        if self.num_envs != 1:
            raise ValueError(f"add_trajectory: expected a buffer with num_envs=1, got num_envs={self.num_envs}")
        steps = int(np.shape(trajectory.rews)[0])
        for t in range(steps):
            pick = lambda x, i=t: np.asarray(x)[i][None]  # noqa: E731
            self.add(
                jax.tree.map(pick, trajectory.obs),
                pick(trajectory.acts),
                jax.tree.map(lambda x, i=t: np.asarray(x)[i + 1][None], trajectory.obs),
                np.array([t == steps - 1]),
                pick(trajectory.rews),
                terminated=np.array([t == steps - 1 and bool(trajectory.terminated)]),
            )

    # Reading -----------------------------------------------------------------------------
    def __len__(self) -> int:
        """Stored transitions (steps × envs)."""
        return self._steps * self.num_envs

    def _slots(self) -> np.ndarray:
        """Storage slots in time order, oldest first: ``[steps]``."""
        start = (self._pos - self._steps) % self.capacity_steps
        return (start + np.arange(self._steps)) % self.capacity_steps

    def valid_starts(self, fragment_length: int) -> tuple[np.ndarray, np.ndarray]:
        """(time index, env) of every segment start whose L steps stay in one episode.

        Time indices count from the oldest stored step. Returns two int arrays of equal length.
        """
        if not isinstance(fragment_length, (int, np.integer)) or fragment_length < 1:
            raise ValueError(f"fragment_length: expected an integer >= 1, got {fragment_length!r}")
        if self._storage is None or self._steps < fragment_length:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        episode = self._storage["episode"][self._slots()]  # [steps, num_envs]
        same = episode[: self._steps - fragment_length + 1] == episode[fragment_length - 1 :]
        times, envs = np.nonzero(same)
        return times, envs

    def can_sample(self, fragment_length: int) -> bool:
        """Whether at least two distinct segments of ``fragment_length`` steps exist."""
        return len(self.valid_starts(fragment_length)[0]) >= 2

    def longest_episode_steps(self) -> int:
        """Length of the longest (possibly unfinished) episode stretch held in the buffer."""
        if self._storage is None:
            return 0
        episode = self._storage["episode"][self._slots()]
        _, counts = np.unique(episode, return_counts=True)
        return int(counts.max())

    def _gather(self, time_index: np.ndarray, env_index: np.ndarray) -> dict[str, Any]:
        slots = self._slots()[time_index]
        return jax.tree.map(lambda x: x[slots, env_index], self._storage)

    def sample_pairs(self, num_pairs: int, fragment_length: int, rng: np.random.Generator) -> FragmentPairs:
        """Sample B pairs of L-step segments uniformly over valid segment starts.

        The 2B segments are drawn without replacement when enough valid starts exist, else with
        replacement. Segments never cross episode boundaries.

        Args:
            num_pairs: B >= 1.
            fragment_length: L >= 1.
            rng: numpy generator.

        Returns:
            ``FragmentPairs`` of host numpy arrays ``[B, 2, L, ...]`` (``factors`` when stored).

        Raises:
            ValueError: bad arguments, or no episode in the buffer has ``fragment_length`` steps.
        """
        if not isinstance(num_pairs, (int, np.integer)) or num_pairs < 1:
            raise ValueError(f"num_pairs: expected an integer >= 1, got {num_pairs!r}")
        check_generator("rng", rng)
        time_starts, env_starts = self.valid_starts(fragment_length)
        if len(time_starts) == 0:
            raise ValueError(
                f"fragment_length: no segment of {fragment_length} steps fits inside one episode "
                f"(longest stored episode stretch: {self.longest_episode_steps()} steps); collect more data or shorten segments"
            )
        count = 2 * int(num_pairs)
        pick = rng.choice(len(time_starts), size=count, replace=count > len(time_starts))
        offsets = np.arange(fragment_length)
        time_index = (time_starts[pick][:, None] + offsets).reshape(num_pairs, 2, fragment_length)
        env_index = np.broadcast_to(env_starts[pick].reshape(num_pairs, 2, 1), time_index.shape)
        data = self._gather(time_index, env_index)
        return FragmentPairs(
            data["obs"],
            data["acts"],
            data["next_obs"],
            data["dones"],
            data["rews"],
            data.get("factors"),
            data["terminated"] & data["dones"],
        )

    def sample_transitions(self, num_transitions: int, rng: np.random.Generator) -> Transitions:
        """Uniformly sampled stored transitions (without replacement when possible)."""
        if not isinstance(num_transitions, (int, np.integer)) or num_transitions < 1:
            raise ValueError(f"num_transitions: expected an integer >= 1, got {num_transitions!r}")
        check_generator("rng", rng)
        if len(self) == 0:
            raise ValueError("sample_transitions: the buffer is empty")
        flat = rng.choice(len(self), size=num_transitions, replace=num_transitions > len(self))
        data = self._gather(flat // self.num_envs, flat % self.num_envs)
        terminated = data["terminated"] & data["dones"]
        return Transitions(
            data["obs"], data["acts"], data["next_obs"], terminated, data["dones"] & ~terminated, data["rews"]
        )


@runtime_checkable
class Fragmenter(Protocol):
    """Samples fragment pairs: ``(buffer, num_pairs, fragment_length, rng) -> FragmentPairs``."""

    def __call__(
        self, buffer: TransitionBuffer, num_pairs: int, fragment_length: int, rng: np.random.Generator
    ) -> FragmentPairs: ...


def random_fragmenter(
    buffer: TransitionBuffer, num_pairs: int, fragment_length: int, rng: np.random.Generator
) -> FragmentPairs:
    """The uniform random fragmenter (Christiano et al.): ``buffer.sample_pairs``."""
    return buffer.sample_pairs(num_pairs, fragment_length, rng)


def fragment_trajectories(
    trajectories: Iterable[Trajectory], num_pairs: int, fragment_length: int, rng: np.random.Generator
) -> FragmentPairs:
    """Random segment pairs from a list of episodes (segments stay inside one episode).

    Example:
        >>> import numpy as np
        >>> from rewardlab._types import Trajectory
        >>> episodes = [Trajectory(np.arange(11.0)[:, None], np.zeros((10, 1)), np.ones(10), True)] * 2
        >>> fragment_trajectories(episodes, 3, 4, np.random.default_rng(0)).rews.shape
        (3, 2, 4)
    """
    trajectories = list(trajectories)
    if not trajectories:
        raise ValueError("trajectories: expected at least one Trajectory, got none")
    total = sum(int(np.shape(t.rews)[0]) for t in trajectories)
    buffer = TransitionBuffer(capacity_steps=max(total, 1), num_envs=1)
    for trajectory in trajectories:
        buffer.add_trajectory(trajectory)
    return buffer.sample_pairs(num_pairs, fragment_length, rng)
