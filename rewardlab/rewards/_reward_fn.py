"""``as_reward_fn``: a ``RewardModel`` as a batched NumPy ``RewardFn`` for the env-stepping hot path."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rewardlab.rewards._host_forward import FlatHostForward, HostForward, supports_flat_host_forward, supports_host_forward
from rewardlab.rewards._model import RewardModel, RewardParams, _expected, _leaf_shape_ok
from rewardlab.rewards._spaces import Leaf

AGGREGATES = ("mean", "min", "mean_minus_std")
MIN_BUCKET = 8
DEFAULT_HOST_BATCH_LIMIT = 128


def bucket_size(n: int) -> int:
    """Padded batch size: the next power of two >= n, at least 8."""
    return max(MIN_BUCKET, 1 << (int(n) - 1).bit_length())


def _leaf_dtype(leaf: Leaf) -> np.dtype:
    if leaf.kind == "image":
        return np.dtype(np.uint8)  # send bytes, scale on device
    if leaf.kind in ("discrete", "multi_discrete"):
        return np.dtype(np.int32)
    return np.dtype(np.float32)


class ModelRewardFn:
    """A ``RewardFn`` backed by a ``RewardModel`` (see ``as_reward_fn``).

    Attributes:
        model: the reward model.
        params: the current parameters (swap with ``set_params``).
        aggregate: how ensemble members are combined.
        alpha: weight of the standard deviation in ``"mean_minus_std"``.
        host_batch_limit: batches of at most this many transitions run as a NumPy forward pass
            (models without image inputs; 0 = always the jitted path).
        num_traces: how many times the jitted function was traced (one per padded batch size).
        returns_checked_rewards: True: every call returns a fresh finite float32 ``[N]`` array
            (or raises), so the wrappers skip their own output checks.
    """

    returns_checked_rewards = True

    def __init__(
        self, model: RewardModel, params: RewardParams, aggregate: str = "mean", alpha: float = 1.0, host_batch_limit: int = DEFAULT_HOST_BATCH_LIMIT
    ) -> None:
        if not isinstance(model, RewardModel):
            raise ValueError(f"model: expected a RewardModel, got {type(model).__name__}")
        if aggregate not in AGGREGATES:
            raise ValueError(f"aggregate: expected one of {AGGREGATES}, got {aggregate!r}")
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)) or not np.isfinite(alpha):
            raise ValueError(f"alpha: expected a finite float, got {alpha!r}")
        if isinstance(host_batch_limit, bool) or not isinstance(host_batch_limit, (int, np.integer)) or host_batch_limit < 0:
            raise ValueError(f"host_batch_limit: expected an integer >= 0, got {host_batch_limit!r}")
        self.model = model
        self.host_batch_limit = int(host_batch_limit) if supports_host_forward(model) else 0
        self._host: HostForward | FlatHostForward | None = None
        self._host_class = FlatHostForward if supports_flat_host_forward(model) else HostForward
        act_shape = model.act_leaves[0].shape if model.act_leaves else ()
        self._flat_shapes = (model.obs_leaves[0].shape, act_shape)
        self.aggregate = aggregate
        self.alpha = float(alpha)
        self.num_traces = 0
        self._treedef = None
        self._leaf_specs: list[tuple[tuple[int, ...], np.dtype]] = []
        self.set_params(params)
        # Host plan per argument: (name, leaves, padded dtypes, used by the model, is a Dict space).
        self._plan = []
        for argument, leaves, use in (
            ("obs", model.obs_leaves, model.uses["obs"]),
            ("acts", model.act_leaves, model.uses["act"]),
            ("next_obs", model.obs_leaves, model.uses["next_obs"]),
        ):
            self._plan.append((argument, leaves, tuple(_leaf_dtype(leaf) for leaf in leaves), use, bool(leaves[0].path)))
        self._use_dones = model.uses["done"]
        self._jitted = jax.jit(self._run)

    # Device side -----------------------------------------------------------------------------
    def _run(self, leaves: tuple[jax.Array, ...], obs: Any, acts: Any, next_obs: Any, dones: Any) -> jax.Array:
        self.num_traces += 1  # runs at trace time only
        params = jax.tree.unflatten(self._treedef, leaves)
        rewards = self.model._reward_core(params, obs, acts, next_obs, dones)  # [E, B]
        if self.aggregate == "mean":
            return jnp.mean(rewards, axis=0)
        if self.aggregate == "min":
            return jnp.min(rewards, axis=0)
        return jnp.mean(rewards, axis=0) - self.alpha * jnp.std(rewards, axis=0)

    # Host side -------------------------------------------------------------------------------
    @property
    def params(self) -> RewardParams:
        return self._params

    def set_params(self, params: RewardParams) -> None:
        """Swap in new parameters of the same structure and shapes (no recompilation).

        Raises:
            ValueError: ``params`` differ in structure, shape or dtype from the model's.
        """
        if not isinstance(params, tuple) or not hasattr(params, "net") or not hasattr(params, "obs_stats"):
            raise ValueError(f"params: expected RewardParams(net, obs_stats), got {type(params).__name__}")
        leaves, treedef = jax.tree.flatten(params)
        specs = [(tuple(np.shape(leaf)), np.dtype(leaf.dtype)) for leaf in leaves]
        if self._treedef is not None:
            if treedef != self._treedef:
                raise ValueError(f"params: expected the structure {self._treedef}, got {treedef}")
            if specs != self._leaf_specs:
                diffs = [f"leaf {i}: expected {a}, got {b}" for i, (a, b) in enumerate(zip(self._leaf_specs, specs)) if a != b]
                raise ValueError(f"params: shapes/dtypes differ from the current params: {'; '.join(diffs)}")
        self._treedef, self._leaf_specs = treedef, specs
        self._leaves = tuple(jax.device_put(leaves))
        self._params = params
        if self.host_batch_limit > 0:
            self._host = self._host_class(self.model, params)

    def _check(self, argument: str, value: Any, leaves: tuple[Leaf, ...], is_dict: bool, n: int) -> Any:
        """Validated array (or dict of arrays) of ``argument``."""
        if not is_dict:
            leaf = leaves[0]
            x = np.asarray(value)
            shape = x.shape
            if not shape or shape[0] != n or not _leaf_shape_ok(leaf, shape[1:]):
                self._shape_error(argument, leaf, shape, n)
            return x
        if not isinstance(value, dict):
            raise ValueError(f"{argument}: expected a dict of arrays (Dict space), got {type(value).__name__}")
        for leaf in leaves:
            x = value
            for key in leaf.path:
                if not isinstance(x, dict) or key not in x:
                    raise ValueError(f"{leaf.describe(argument)}: missing; expected an array of shape {_expected(leaf)}")
                x = x[key]
            shape = np.shape(x)
            if not shape or shape[0] != n or not _leaf_shape_ok(leaf, shape[1:]):
                self._shape_error(argument, leaf, shape, n)
        return value

    @staticmethod
    def _pad(value: Any, leaves: tuple[Leaf, ...], dtypes: tuple[np.dtype, ...], is_dict: bool, n: int, bucket: int) -> Any:
        if not is_dict:
            if n == bucket:
                return np.asarray(value, dtypes[0])
            padded = np.zeros((bucket, *value.shape[1:]), dtypes[0])
            padded[:n] = value
            return padded
        out: dict = {}
        for leaf, dtype in zip(leaves, dtypes):
            x = value
            for key in leaf.path:
                x = x[key]
            x = np.asarray(x)
            padded = np.zeros((bucket, *x.shape[1:]), dtype)
            padded[:n] = x
            target = out
            for key in leaf.path[:-1]:
                target = target.setdefault(key, {})
            target[leaf.path[-1]] = padded
        return out

    def _aggregate_host(self, member_rewards: np.ndarray) -> np.ndarray:
        if member_rewards.shape[0] == 1:
            return np.array(member_rewards[0], np.float32)
        if self.aggregate == "mean":
            return np.mean(member_rewards, axis=0, dtype=np.float32)
        if self.aggregate == "min":
            return np.min(member_rewards, axis=0)
        return (np.mean(member_rewards, axis=0) - np.float32(self.alpha) * np.std(member_rewards, axis=0)).astype(np.float32)

    @staticmethod
    def _shape_error(argument: str, leaf: Leaf, shape: tuple[int, ...], n: int) -> None:
        raise ValueError(f"{leaf.describe(argument)}: expected shape {_expected(leaf)} with N={n} (from dones), got {tuple(shape)}")

    def __call__(self, obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
        """Rewards ``[N]`` float32 of N transitions (NumPy in, NumPy out).

        Raises:
            ValueError: a shape does not match the model's spaces (names the argument).
            FloatingPointError: the reward is NaN or infinite.
        """
        dones = np.asarray(dones)
        if dones.ndim != 1:
            raise ValueError(f"dones: expected shape [N], got {dones.shape}")
        n = dones.shape[0]
        if n == 0:
            raise ValueError("dones: expected a batch of N >= 1 transitions, got N=0")
        if n <= self.host_batch_limit and self._host_class is FlatHostForward:
            # The env-stepping hot path: plain arrays of exactly the model's shapes, checked inline;
            # anything else takes the general path below, which validates and explains.
            obs_array, acts_array, next_array = np.asarray(obs), np.asarray(acts), np.asarray(next_obs)
            obs_shape, act_shape = self._flat_shapes
            if (
                obs_array.shape[1:] == obs_shape == next_array.shape[1:]
                and acts_array.shape[1:] == act_shape
                and obs_array.shape[0] == next_array.shape[0] == acts_array.shape[0] == n
            ):
                member_rewards = self._host(obs_array, acts_array, next_array, dones, n)
                # One member: its row of a fresh array is the answer, no copy needed.
                rewards = member_rewards[0] if member_rewards.shape[0] == 1 else self._aggregate_host(member_rewards)
                # r·r is finite when every r is (and costs a third of isfinite().all() for a few rows).
                if not math.isfinite(rewards.dot(rewards)) and not np.isfinite(rewards).all():
                    self._raise_non_finite(rewards, n)
                return rewards
        values = [self._check(argument, value, leaves, is_dict, n) for (argument, leaves, _, _, is_dict), value in zip(self._plan, (obs, acts, next_obs))]
        if n <= self.host_batch_limit:
            member_rewards = self._host(values[0], values[1], values[2], dones, n)  # [E, n]
            rewards = self._aggregate_host(member_rewards)
        else:
            bucket = bucket_size(n)
            args = [self._pad(value, leaves, dtypes, is_dict, n, bucket) if use else None for (_, leaves, dtypes, use, is_dict), value in zip(self._plan, values)]
            if self._use_dones:
                padded_dones = np.zeros(bucket, np.float32)
                padded_dones[:n] = dones
            else:
                padded_dones = None
            # Slice on the host: indexing the device array would dispatch another computation.
            rewards = np.array(self._jitted(self._leaves, args[0], args[1], args[2], padded_dones))[:n]
        if not np.isfinite(rewards).all():
            self._raise_non_finite(rewards, n)
        return rewards

    @staticmethod
    def _raise_non_finite(rewards: np.ndarray, n: int) -> None:
        bad = np.flatnonzero(~np.isfinite(rewards))
        raise FloatingPointError(
            f"reward model returned {bad.size} non-finite reward(s) out of {n} (first at index {bad[0]}: {rewards[bad[0]]}); "
            "check the inputs for NaN/inf and the parameters for divergence"
        )


def as_reward_fn(
    model: RewardModel,
    params: RewardParams,
    *,
    aggregate: str = "mean",
    alpha: float = 1.0,
    host_batch_limit: int = DEFAULT_HOST_BATCH_LIMIT,
) -> ModelRewardFn:
    """Wrap a reward model as a batched NumPy ``RewardFn`` (the host-boundary contract).

    The ensemble's rewards r_e (shape [E, N]) are combined into one reward per transition:
    ``"mean"``: (1/E) Σ_e r_e; ``"min"``: min_e r_e (worst case); ``"mean_minus_std"``:
    mean − α·std (population std over members), the conservative reward of Coste et al.,
    "Reward Model Ensembles Help Mitigate Overoptimization", ICLR 2024.

    The function is jitted once per padded batch size: N is padded to the next power of two
    (at least 8) and the padding is dropped from the output, so varying batch sizes compile
    at most log2 of the largest N programs. Batches of at most ``host_batch_limit``
    transitions of models without image inputs skip XLA and run the same network as a NumPy
    forward pass from host copies of the parameters (XLA's CPU matmul and dispatch cost more
    than the whole product for a few rows; this is the env-stepping hot path). Inputs are
    validated against the model's spaces; rewards must be finite.

    Args:
        model: the reward model.
        params: its parameters (``set_params`` swaps them later without recompiling).
        aggregate: ``"mean"``, ``"min"`` or ``"mean_minus_std"``.
        alpha: α of ``"mean_minus_std"``.
        host_batch_limit: largest N computed by the NumPy forward pass (0: always jitted).

    Returns:
        A callable ``fn(obs, acts, next_obs, dones) -> np.ndarray[N] float32`` with ``.model``,
        ``.params`` and ``.set_params(params)``.

    Raises:
        ValueError: unknown ``aggregate`` or malformed ``params``.

    Example:
        >>> import gymnasium as gym, jax, numpy as np
        >>> from rewardlab.rewards import RewardModel, RewardNetConfig
        >>> model = RewardModel(RewardNetConfig(hidden_sizes=(8,), ensemble_size=2),
        ...                     gym.spaces.Box(-1, 1, (3,)), gym.spaces.Box(-1, 1, (2,)))
        >>> fn = as_reward_fn(model, model.init(jax.random.key(0)), aggregate="min")
        >>> rewards = fn(np.zeros((5, 3)), np.zeros((5, 2)), np.zeros((5, 3)), np.zeros(5, bool))
        >>> rewards.shape, rewards.dtype
        ((5,), dtype('float32'))
    """
    return ModelRewardFn(model, params, aggregate, alpha, host_batch_limit)
