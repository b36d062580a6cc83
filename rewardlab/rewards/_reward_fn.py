"""``as_reward_fn``: any pure JAX reward model as the batched NumPy ``RewardFn`` of the host boundary.

One adapter, :class:`ModelRewardFn`, for every :class:`rewardlab._types.RewardModelLike`:
the model's member rewards ``[E, N]`` (from ``apply``, or the method named by ``use``) are
combined by :func:`rewardlab.rewards.aggregate_ensemble` inside one jitted program per
padded batch size. A ``RewardModel`` additionally gets its inputs validated against its
spaces and small batches computed by the NumPy host forward pass (``host_forward``).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np

from rewardlab._checks import NonFiniteError, check_numeric_dtype
from rewardlab._types import PureReward, RewardModelLike
from rewardlab.rewards._aggregate import aggregate_ensemble, aggregate_ensemble_host, check_aggregate
from rewardlab.rewards._host_forward import host_forward
from rewardlab.rewards._model import RewardModel
from rewardlab.rewards._spaces import Leaf, check_leaf_values, expected_shape, leaf_shape_ok

REWARD_METHODS = ("apply", "advantage", "base_reward")  # methods that give member rewards [E, N]
"""The model methods ``as_reward_fn(..., use=)`` may name: each gives member rewards ``[E, N]``."""
MIN_BUCKET = 8
DEFAULT_HOST_BATCH_LIMIT = 128


def _as_array(name: str, value: Any) -> np.ndarray:
    """``np.asarray(value)``, with ragged sequences reported against the argument ``name``."""
    try:
        return np.asarray(value)
    except ValueError as error:
        raise TypeError(f"{name}: expected an array (or a dict of arrays for a Dict space), got {error}") from None


def bucket_size(n: int) -> int:
    """Padded batch size: the next power of two >= n, at least 8."""
    return max(MIN_BUCKET, 1 << (int(n) - 1).bit_length())


def _leaf_dtype(leaf: Leaf) -> np.dtype:
    if leaf.kind == "image":
        return np.dtype(np.uint8)  # send bytes, scale on device
    if leaf.kind in ("discrete", "multi_discrete"):
        return np.dtype(np.int32)
    return np.dtype(np.float32)


def _pad_rows(x: Any, n: int, bucket: int) -> np.ndarray:
    """``x`` [n, ...] as [bucket, ...] with zero rows appended (its own dtype)."""
    x = np.asarray(x)
    if n == bucket:
        return x
    padded = np.zeros((bucket, *x.shape[1:]), x.dtype)
    padded[:n] = x
    return padded


class _SpaceInputs:
    """Inputs of a ``RewardModel``: validated against its spaces, padded leaf by leaf in the dtypes the network reads."""

    def __init__(self, model: RewardModel) -> None:
        # Per argument: (name, leaves, padded dtypes, used by the model, is a Dict space).
        self.plan = []
        for argument, leaves, use in (
            ("obs", model.obs_leaves, model.uses["obs"]),
            ("acts", model.act_leaves, model.uses["act"]),
            ("next_obs", model.obs_leaves, model.uses["next_obs"]),
        ):
            self.plan.append((argument, leaves, tuple(_leaf_dtype(leaf) for leaf in leaves), use, bool(leaves[0].path)))
        self.use_dones = model.uses["done"]

    @staticmethod
    def check_params(params: Any) -> None:
        if not isinstance(params, tuple) or not hasattr(params, "net") or not hasattr(params, "obs_stats"):
            raise ValueError(f"params: expected RewardParams(net, obs_stats), got {type(params).__name__}")

    def check(self, obs: Any, acts: Any, next_obs: Any, n: int) -> list[Any]:
        """Validated arrays (or dicts of arrays) of obs, acts, next_obs."""
        return [
            self._check(argument, value, leaves, is_dict, n)
            for (argument, leaves, _, _, is_dict), value in zip(self.plan, (obs, acts, next_obs), strict=True)
        ]

    def _check(self, argument: str, value: Any, leaves: tuple[Leaf, ...], is_dict: bool, n: int) -> Any:
        if not is_dict:
            leaf = leaves[0]
            x: Any = _as_array(argument, value)
            shape = x.shape
            if not shape or shape[0] != n or not leaf_shape_ok(leaf, shape[1:]):
                self._shape_error(argument, leaf, shape, n)
            check_leaf_values(leaf, x, argument)
            return x
        if not isinstance(value, dict):
            raise ValueError(f"{argument}: expected a dict of arrays (Dict space), got {type(value).__name__}")
        for leaf in leaves:
            x = value
            for key in leaf.path:
                if not isinstance(x, dict) or key not in x:
                    raise ValueError(
                        f"{leaf.describe(argument)}: missing; expected an array of shape {expected_shape(leaf)}"
                    )
                x = x[key]
            x = _as_array(leaf.describe(argument), x)
            shape = x.shape
            if not shape or shape[0] != n or not leaf_shape_ok(leaf, shape[1:]):
                self._shape_error(argument, leaf, shape, n)
            check_leaf_values(leaf, x, argument)
        return value

    @staticmethod
    def _shape_error(argument: str, leaf: Leaf, shape: tuple[int, ...], n: int) -> None:
        raise ValueError(
            f"{leaf.describe(argument)}: expected shape {expected_shape(leaf)} with N={n} (from dones), got {tuple(shape)}"
        )

    def pad(self, values: list[Any], dones: np.ndarray, n: int, bucket: int) -> list[Any]:
        """The jitted program's obs, acts, next_obs, dones: [bucket, ...], None where the model does not read them."""
        args = [
            self._pad(value, leaves, dtypes, is_dict, n, bucket) if use else None
            for (_, leaves, dtypes, use, is_dict), value in zip(self.plan, values, strict=True)
        ]
        if self.use_dones:
            padded_dones = np.zeros(bucket, np.float32)
            padded_dones[:n] = dones
        else:
            padded_dones = None
        return [*args, padded_dones]

    @staticmethod
    def _pad(
        value: Any, leaves: tuple[Leaf, ...], dtypes: tuple[np.dtype, ...], is_dict: bool, n: int, bucket: int
    ) -> Any:
        if not is_dict:
            if n == bucket:
                return np.asarray(value, dtypes[0])
            padded = np.zeros((bucket, *value.shape[1:]), dtypes[0])
            padded[:n] = value
            return padded
        out: dict = {}
        for leaf, dtype in zip(leaves, dtypes, strict=True):
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


class _ArrayInputs:
    """Inputs of any other reward model: pytrees of arrays whose every leaf has the leading batch axis N."""

    @staticmethod
    def check_params(params: Any) -> None:
        pass

    @staticmethod
    def check(obs: Any, acts: Any, next_obs: Any, n: int) -> list[Any]:
        for argument, value in (("obs", obs), ("acts", acts), ("next_obs", next_obs)):
            for leaf in jax.tree.leaves(value):
                if not hasattr(leaf, "dtype"):
                    leaf = _as_array(argument, leaf)
                check_numeric_dtype(argument, leaf)
                shape = tuple(np.shape(leaf))
                if not shape or shape[0] != n:
                    raise ValueError(
                        f"{argument}: expected arrays with a leading batch axis of N={n} (from dones), got shape {shape}"
                    )
        return [obs, acts, next_obs]

    @staticmethod
    def pad(values: list[Any], dones: np.ndarray, n: int, bucket: int) -> list[Any]:
        return [jax.tree.map(lambda x: _pad_rows(x, n, bucket), value) for value in (*values, dones)]


class ModelRewardFn:
    """A ``RewardFn`` backed by a pure JAX reward model (see ``as_reward_fn``).

    Attributes:
        model: the reward model (any ``RewardModelLike``).
        params: the current parameters (swap with ``set_params``).
        use: the model's method that gives the member rewards (``"apply"``, ``"advantage"``,
            ``"base_reward"``).
        aggregate: how ensemble members are combined (one of ``ENSEMBLE_AGGREGATES``).
        coefficient: c of ``"mean_minus_std"`` (mean − c·std) and ``"uncertainty_weighted"`` (mean − c·var).
        host_batch_limit: batches of at most this many transitions run as a NumPy forward pass
            (``RewardModel`` without image inputs, ``use="apply"``; 0 = always the jitted path).
        num_traces: how many times the jitted function was traced (one per padded batch size).
        returns_checked_rewards: True: every call returns a fresh finite float32 ``[N]`` array
            (or raises), so the wrappers skip their own output checks.
    """

    returns_checked_rewards = True

    def __init__(
        self,
        model: RewardModelLike,
        params: Any = None,
        *,
        aggregate: str = "mean",
        coefficient: float = 1.0,
        use: str = "apply",
        host_batch_limit: int = DEFAULT_HOST_BATCH_LIMIT,
    ) -> None:
        if not isinstance(model, RewardModelLike):
            raise ValueError(
                "model: expected a reward model (RewardModelLike: apply(params, obs, acts, next_obs, dones) -> [E, N] "
                f"and ensemble_size), got {type(model).__name__}"
            )
        available = tuple(name for name in REWARD_METHODS if callable(getattr(model, name, None)))
        if use not in available:
            raise ValueError(
                f"use: expected one of {available} (the member-reward methods of {type(model).__name__}), got {use!r}"
            )
        self.coefficient = check_aggregate(aggregate, coefficient)
        if (
            isinstance(host_batch_limit, bool)
            or not isinstance(host_batch_limit, (int, np.integer))
            or host_batch_limit < 0
        ):
            raise ValueError(f"host_batch_limit: expected an integer >= 0, got {host_batch_limit!r}")
        is_reward_model = isinstance(model, RewardModel)
        if params is None and is_reward_model:
            raise ValueError("params: expected RewardParams(net, obs_stats) (from model.init or training), got None")
        self.model = model
        self.use = use
        self.aggregate = aggregate
        self._method = getattr(model, use)
        self._inputs = _SpaceInputs(model) if isinstance(model, RewardModel) else _ArrayInputs()
        # The NumPy forward pass mirrors ``apply`` only.
        self._host_limit = int(host_batch_limit) if use == "apply" else 0
        self.host_batch_limit = 0
        self._host: Any = None
        self.num_traces = 0
        self._treedef = None
        self._leaf_specs: list[tuple[tuple[int, ...], np.dtype]] = []
        self.set_params(() if params is None else params)
        self._jitted = jax.jit(self._run)

    # Device side -----------------------------------------------------------------------------
    def _rewards(self, params: Any, obs: Any, acts: Any, next_obs: Any, dones: Any) -> jax.Array:
        """The aggregated reward ``[N]`` (pure)."""
        member_rewards = self._method(params, obs, acts, next_obs, dones)
        shape = tuple(np.shape(member_rewards))
        n = np.shape(dones)[0] if dones is not None else None
        if len(shape) != 2 or shape[0] != self.model.ensemble_size or (n is not None and shape[1] != n):
            raise ValueError(
                f"use: {type(self.model).__name__}.{self.use} must return member rewards [ensemble_size, N] = "
                f"[{self.model.ensemble_size}, {'N' if n is None else n}], got shape {shape}"
            )
        return aggregate_ensemble(member_rewards, self.aggregate, self.coefficient)

    def _run(self, leaves: tuple[jax.Array, ...], obs: Any, acts: Any, next_obs: Any, dones: Any) -> jax.Array:
        self.num_traces += 1  # runs at trace time only
        return self._rewards(jax.tree.unflatten(self._treedef, leaves), obs, acts, next_obs, dones)

    def pure_fn(self, params: Any = None) -> PureReward:
        """The pure JAX reward ``(obs, acts, next_obs, dones) -> [N]`` with the aggregation applied.

        Traceable under ``jit``, ``vmap`` and ``grad``; distances and shaping use it to run the
        reward inside their own programs. No padding and no host pass: its values equal the
        host call's up to float32 round-off.

        Args:
            params: parameters to close over (default: the current ``params``).
        """
        params = self._params if params is None else params

        def reward(obs: Any, acts: Any, next_obs: Any, dones: Any) -> jax.Array:
            return self._rewards(params, obs, acts, next_obs, dones)

        return reward

    # Host side -------------------------------------------------------------------------------
    @property
    def params(self) -> Any:
        return self._params

    def set_params(self, params: Any) -> None:
        """Swap in new parameters of the same structure and shapes (no recompilation).

        Raises:
            ValueError: ``params`` differ in structure, shape or dtype from the current ones.
        """
        self._inputs.check_params(params)
        leaves, treedef = jax.tree.flatten(params)
        device_leaves = tuple(jax.device_put(leaves))
        specs = [(tuple(np.shape(leaf)), np.dtype(leaf.dtype)) for leaf in device_leaves]
        if self._treedef is not None:
            if treedef != self._treedef:
                raise ValueError(f"params: expected the structure {self._treedef}, got {treedef}")
            if specs != self._leaf_specs:
                diffs = [
                    f"leaf {i}: expected {a}, got {b}"
                    for i, (a, b) in enumerate(zip(self._leaf_specs, specs, strict=True))
                    if a != b
                ]
                raise ValueError(f"params: shapes/dtypes differ from the current params: {'; '.join(diffs)}")
        self._treedef, self._leaf_specs = treedef, specs
        self._leaves = device_leaves
        self._params = params
        if self._host_limit > 0:
            self._host = host_forward(self.model, params)
            self.host_batch_limit = self._host_limit if self._host is not None else 0

    def __call__(self, obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
        """Rewards ``[N]`` float32 of N transitions (NumPy in, NumPy out).

        Raises:
            ValueError: a shape does not match the model's spaces, or a value lies outside
                them: a Discrete/MultiDiscrete code that is not an integer in range (negative,
                too large, fractional, NaN), a MultiBinary value other than 0/1 (names the
                argument and the valid range).
            TypeError: a string, object, complex or ragged input (names the argument).
            rewardlab.NonFiniteError: (a ``ValueError`` and a ``FloatingPointError``) a
                ``RewardModel`` input holds NaN or ±inf, or the reward is NaN or infinite.
        """
        dones = np.asarray(dones)
        if dones.dtype.kind not in "biuf":
            raise TypeError(f"dones: expected a bool (or numeric) array [N], got dtype {dones.dtype}")
        if dones.ndim != 1:
            raise ValueError(f"dones: expected shape [N], got {dones.shape}")
        n = dones.shape[0]
        if n == 0:
            raise ValueError("dones: expected a batch of N >= 1 transitions, got N=0")
        if n <= self.host_batch_limit:
            # The env-stepping hot path: the host pass takes plain inputs as they are, or declines.
            member_rewards = self._host.call_unchecked(obs, acts, next_obs, dones, n)
            if member_rewards is not None:
                rewards = aggregate_ensemble_host(member_rewards, self.aggregate, self.coefficient)
                # r·r is finite when every r is (and is cheaper than isfinite().all() for a few rows).
                if not math.isfinite(rewards.dot(rewards)) and not np.isfinite(rewards).all():
                    self._raise_non_finite(rewards, n)
                return rewards
        values = self._inputs.check(obs, acts, next_obs, n)
        if n <= self.host_batch_limit:
            member_rewards = self._host(values[0], values[1], values[2], dones, n)  # [E, n]
            rewards = aggregate_ensemble_host(member_rewards, self.aggregate, self.coefficient)
        else:
            args = self._inputs.pad(values, dones, n, bucket_size(n))
            # Slice on the host: indexing the device array would dispatch another computation.
            rewards = np.array(self._jitted(self._leaves, *args), np.float32)[:n]
        if not np.isfinite(rewards).all():
            self._raise_non_finite(rewards, n)
        return rewards

    @staticmethod
    def _raise_non_finite(rewards: np.ndarray, n: int) -> None:
        bad = np.flatnonzero(~np.isfinite(rewards))
        raise NonFiniteError(
            f"reward model returned {bad.size} non-finite reward(s) out of {n} (first at index {bad[0]}: {rewards[bad[0]]}); "
            "check the inputs for NaN/inf and the parameters for divergence"
        )


def as_reward_fn(
    model: RewardModelLike,
    params: Any = None,
    *,
    aggregate: str = "mean",
    coefficient: float = 1.0,
    use: str = "apply",
    host_batch_limit: int = DEFAULT_HOST_BATCH_LIMIT,
) -> ModelRewardFn:
    """Wrap any reward model as a batched NumPy ``RewardFn`` (the host-boundary contract).

    The model's member rewards r_e (``model.apply``, or the method named by ``use``; shape
    [E, N]) are combined into one reward per transition by ``aggregate_ensemble``:
    ``"mean"``: (1/E) Σ_e r_e; ``"min"``: min_e r_e (worst case); ``"mean_minus_std"``:
    mean − c·std; ``"uncertainty_weighted"``: mean − c·var (population statistics over
    members, c = ``coefficient``), the conservative rewards of Coste et al., "Reward Model
    Ensembles Help Mitigate Overoptimization", ICLR 2024.

    The function is jitted once per padded batch size: every input array is padded along its
    leading axis to the next power of two (at least 8) and the padding is dropped from the
    output, so varying batch sizes compile at most log2 of the largest N programs. Rewards
    must be finite. For a ``RewardModel`` the inputs are validated against its spaces, and
    batches of at most ``host_batch_limit`` transitions of models without image inputs skip
    XLA and run the same network as a NumPy forward pass from host copies of the parameters
    (XLA's CPU matmul and dispatch cost more than the whole product for a few rows; this is
    the env-stepping hot path). Other models get ``dones`` checked as [N] and every input
    array checked for the leading axis N.

    Args:
        model: any ``RewardModelLike`` (``RewardModel``, ``ContinuousRegretModel``, a tabular
            reward, ``FunctionReward``, ...).
        params: its parameters (``set_params`` swaps them later without recompiling); None for
            a model without parameters (``FunctionReward``).
        aggregate: one of ``ENSEMBLE_AGGREGATES``.
        coefficient: c of ``"mean_minus_std"`` and ``"uncertainty_weighted"``.
        use: the model's method that gives member rewards: ``"apply"`` (the reward),
            ``"advantage"`` (regret models: act on the learned advantage, Knox et al. 2024) or
            ``"base_reward"`` (AIRL's transferable g, Fu et al. 2018).
        host_batch_limit: largest N computed by the NumPy forward pass (0: always jitted).

    Returns:
        A :class:`ModelRewardFn`: ``fn(obs, acts, next_obs, dones) -> np.ndarray[N] float32``
        with ``.model``, ``.params``, ``.set_params(params)``, ``.aggregate``, ``.coefficient``
        and ``.pure_fn()`` (the pure JAX reward for distances and shaping).

    Raises:
        ValueError: ``model`` is not a reward model, ``use`` is not one of its member-reward
            methods, unknown ``aggregate``, a non-finite ``coefficient``, or malformed ``params``.

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
    return ModelRewardFn(
        model, params, aggregate=aggregate, coefficient=coefficient, use=use, host_batch_limit=host_batch_limit
    )
