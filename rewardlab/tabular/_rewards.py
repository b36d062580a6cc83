"""Parameterised rewards over a finite MDP: one family for preference learning and inverse RL.

A :class:`TabularReward` r_θ is a pure, differentiable map from parameters θ to a reward
table over the MDP's index axes, ``[S]`` r(s), ``[S, A]`` r(s, a) or ``[S, A, S']``
r(s, a, s') (the forms :func:`rewardlab.tabular.expand_reward` accepts):

* :func:`tabular_reward` — a free table, r_θ = θ;
* :func:`linear_reward` — linear in features φ ``[..., K]``, r_θ = φ·θ with θ ∈ R^K;
* :func:`mlp_reward` — an MLP of the features, r_θ = MLP_θ(φ).

``table(params)`` gives the whole table, for planners (value iteration, MCE IRL's soft
backups): ``jax.grad``, ``jit`` and ``vmap`` (over stacked params) go through it and through
the planner. ``apply(params, obs, acts, next_obs, dones) -> [1, N]`` looks the table up at
integer state/action indices: the reward-model contract of the rest of the library (the
preference losses and trainers, ``rewardlab.rewards.as_reward_fn``), with one ensemble member.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

Array = Any


class TabularRewardParams(NamedTuple):
    """Parameters of a :class:`TabularReward`; gradients are taken w.r.t. ``net``."""

    net: Any  # [K] weights (linear), the table itself (table), or ((W [in, out], b [out]), ...) layers (mlp)


class TabularReward:
    """A reward r_θ over a finite MDP as two pure functions, ``init`` and ``table``, plus index lookups.

    Build one with :func:`tabular_reward`, :func:`linear_reward` or :func:`mlp_reward`.
    Instances compare (and hash) by identity, so a compiled trainer can be cached per reward.

    Attributes:
        name: ``"table"``, ``"linear"`` or ``"mlp"``.
        reward_shape: ``(S,)``, ``(S, A)`` or ``(S, A, S')``, the shape of ``table(params)``.
        features: ``[*reward_shape, K]`` φ of ``linear``/``mlp`` rewards; None for a free table.
        ensemble_size: 1 (``apply`` returns one member).

    Example:
        >>> import jax.numpy as jnp, numpy as np
        >>> reward = linear_reward(jnp.eye(2)[None].repeat(3, axis=0))  # φ(s, a) = e_a: [S=3, A=2, K=2]
        >>> params = TabularRewardParams(jnp.array([1.0, -1.0]))
        >>> reward.table(params).tolist()
        [[1.0, -1.0], [1.0, -1.0], [1.0, -1.0]]
        >>> reward.apply(params, np.array([0, 2]), np.array([1, 0]), None, None).tolist()
        [[-1.0, 1.0]]
    """

    ensemble_size = 1

    def __init__(
        self,
        name: str,
        reward_shape: Sequence[int],
        init: Callable[[Any], Any],  # (PRNG key, or whatever init() was given for rewards without random weights)
        table: Callable[[Any], jax.Array],
        features: jax.Array | None = None,
        param_shape: tuple[int, ...] | None = None,
    ) -> None:
        self.name = name
        self.reward_shape = tuple(int(n) for n in reward_shape)
        self.features = features
        self._init = init
        self._table = table
        self._param_shape = param_shape

    def __repr__(self) -> str:
        return f"TabularReward({self.name!r}, reward_shape={self.reward_shape})"

    def init(self, key: jax.Array | int | None = None) -> TabularRewardParams:
        """Initial parameters: zeros for ``table``/``linear`` (``key`` unused), LeCun-normal layers for ``mlp``.

        Raises:
            ValueError: ``key`` is None for an ``mlp`` reward.
        """
        if isinstance(key, int) and not isinstance(key, bool):
            key = jax.random.key(key)
        if key is None and self.name == "mlp":
            raise ValueError(
                "key: an mlp reward draws its initial weights; expected a PRNG key or an int seed, got None"
            )
        return TabularRewardParams(self._init(key))

    def table(self, params: TabularRewardParams) -> jax.Array:
        """The reward table r_θ: ``reward_shape`` (pure; differentiable in ``params.net``).

        Raises:
            ValueError: ``params`` is not a ``TabularRewardParams``, or ``params.net`` has the wrong shape.
        """
        if not isinstance(params, tuple) or not hasattr(params, "net"):
            raise ValueError(f"params: expected TabularRewardParams(net), got {type(params).__name__}")
        if self._param_shape is not None and tuple(jnp.shape(params.net)) != self._param_shape:
            raise ValueError(f"params.net: expected shape {self._param_shape}, got {tuple(jnp.shape(params.net))}")
        return self._table(params.net)

    def lookup(self, array: Array, obs: Array, acts: Array, next_obs: Array) -> jax.Array:
        """``array[obs, acts, next_obs]`` over the reward's index axes (as many as ``reward_shape`` has).

        Args:
            array: ``[*reward_shape, ...]``, e.g. the table ``[*reward_shape]`` or the features ``[*reward_shape, K]``.
            obs: int state indices s, any shape ``[...]``.
            acts: int action indices a of the same shape (unused, may be None, for an ``[S]`` reward).
            next_obs: int next-state indices s' of the same shape (used by an ``[S, A, S']`` reward only).

        Returns:
            ``[..., *array.shape[len(reward_shape):]]``.

        Raises:
            ValueError: an index argument the reward needs is None, not integer, or of another shape than ``obs``.
        """
        indices: list[jax.Array] = []
        for argument, value in (("obs", obs), ("acts", acts), ("next_obs", next_obs))[: len(self.reward_shape)]:
            if value is None:
                raise ValueError(f"{argument}: an {self.reward_shape}-shaped reward needs integer indices, got None")
            value = jnp.asarray(value)
            if not jnp.issubdtype(value.dtype, jnp.integer):
                raise ValueError(f"{argument}: expected integer state/action indices, got dtype {value.dtype}")
            if indices and value.shape != indices[0].shape:
                raise ValueError(f"{argument}: expected the shape of obs {indices[0].shape}, got {value.shape}")
            indices.append(value)
        return jnp.asarray(array)[tuple(indices)]

    def apply(self, params: TabularRewardParams, obs: Array, acts: Array, next_obs: Array, dones: Array) -> jax.Array:
        """r_θ at N transitions given as index arrays ``[N]``: ``[1, N]`` (the reward-model contract; ``dones`` unused).

        Raises:
            ValueError: ``obs`` is not ``[N]``, or as :meth:`table` and :meth:`lookup`.
        """
        del dones
        if obs is None or jnp.ndim(obs) != 1:
            raise ValueError(
                f"obs: expected integer state indices of shape [N], got shape {None if obs is None else jnp.shape(obs)}"
            )
        return self.lookup(self.table(params), obs, acts, next_obs)[None]


def _check_reward_shape(argument: str, shape: tuple[int, ...]) -> None:
    if not 1 <= len(shape) <= 3 or min(shape) < 1:
        raise ValueError(f"{argument}: expected [S], [S, A] or [S, A, S'] with positive sizes, got {shape}")


def tabular_reward(shape: Sequence[int]) -> TabularReward:
    """One free parameter per entry: r_θ = θ with θ of ``shape`` ([S], [S, A] or [S, A, S']), zeros at init.

    Raises:
        ValueError: ``shape`` has not 1 to 3 positive sizes.

    Example:
        >>> import jax
        >>> model = tabular_reward((3, 2))
        >>> model.table(model.init()).shape
        (3, 2)
    """
    shape = tuple(int(n) for n in shape)
    _check_reward_shape("shape", shape)
    return TabularReward("table", shape, lambda key: jnp.zeros(shape, jnp.float32), lambda net: net, param_shape=shape)


def linear_reward(features: Array) -> TabularReward:
    """r_θ = φ·θ over features ``[S, K]``, ``[S, A, K]`` or ``[S, A, S', K]``; θ ∈ R^K, zeros at init.

    Raises:
        ValueError: ``features`` is not of rank 2 to 4.

    Example:
        >>> import jax.numpy as jnp
        >>> model = linear_reward(jnp.eye(3)[:, None, :].repeat(2, axis=1))  # [S=3, A=2, K=3]
        >>> model.table(TabularRewardParams(jnp.array([1.0, 2.0, 3.0]))).tolist()
        [[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]
    """
    if features is None or not 2 <= jnp.ndim(features) <= 4:
        raise ValueError(
            f"features: expected [S, K], [S, A, K] or [S, A, S', K], got {None if features is None else jnp.shape(features)}"
        )
    features = jnp.asarray(features, jnp.float32)
    num_features = features.shape[-1]
    return TabularReward(
        "linear",
        features.shape[:-1],
        lambda key: jnp.zeros(num_features, jnp.float32),
        lambda net: features @ net,
        features=features,
        param_shape=(num_features,),
    )


def mlp_reward(
    features: Array, hidden_sizes: Sequence[int] = (32, 32), activation: Callable = jax.nn.tanh
) -> TabularReward:
    """r_θ = MLP_θ(φ) applied to every entry of features ``[..., F]`` (F inputs, one output).

    Layers are initialised with LeCun-normal weights and zero biases; ``params.net`` is a
    tuple of (W, b) pairs.

    Raises:
        ValueError: ``features`` is not of rank 2 to 4, or a hidden size is not positive.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> model = mlp_reward(jnp.ones((4, 2, 3)), hidden_sizes=(8,))
        >>> model.table(model.init(jax.random.key(0))).shape
        (4, 2)
    """
    if features is None or not 2 <= jnp.ndim(features) <= 4:
        raise ValueError(
            f"features: expected [S, F], [S, A, F] or [S, A, S', F], got {None if features is None else jnp.shape(features)}"
        )
    features = jnp.asarray(features, jnp.float32)
    sizes = (features.shape[-1], *(int(n) for n in hidden_sizes), 1)
    if min(sizes) < 1:
        raise ValueError(f"hidden_sizes: expected positive widths, got {tuple(hidden_sizes)}")
    initializer = jax.nn.initializers.lecun_normal()

    def init(key: jax.Array) -> tuple[tuple[jax.Array, jax.Array], ...]:
        keys = jax.random.split(key, len(sizes) - 1)
        return tuple(
            (initializer(k, (n_in, n_out), jnp.float32), jnp.zeros(n_out, jnp.float32))
            for k, n_in, n_out in zip(keys, sizes[:-1], sizes[1:], strict=True)
        )

    def table(net: tuple[tuple[jax.Array, jax.Array], ...]) -> jax.Array:
        x = features
        for index, (weight, bias) in enumerate(net):
            x = x @ weight + bias
            if index < len(net) - 1:
                x = activation(x)
        return x[..., 0]

    return TabularReward("mlp", features.shape[:-1], init, table, features=features)
