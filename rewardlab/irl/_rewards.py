"""Parameterised tabular rewards for IRL: a pair of pure functions, like an optax transformation.

``model.init(key) -> params`` and ``model.apply(params) -> reward`` where the reward is an
``[S]``, ``[S, A]`` or ``[S, A, S']`` array (any form :func:`rewardlab.tabular.expand_reward`
accepts). The feature arrays are closed over, so ``apply`` is a pure function of the params:
``jax.grad``, ``jit`` and ``vmap`` (over stacked params) work on it directly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

Array = Any


class ParametricTabularReward(NamedTuple):
    """A reward r_θ over a finite MDP as two pure functions."""

    init: Callable[[jax.Array], Any]  # key -> params pytree
    apply: Callable[[Any], jax.Array]  # params -> [S], [S, A] or [S, A, S'] reward
    name: str  # "tabular", "linear" or "mlp"


def tabular_reward(shape: Sequence[int]) -> ParametricTabularReward:
    """One free parameter per entry: r_θ = θ with θ of ``shape`` ([S], [S, A] or [S, A, S']), zeros at init.

    Example:
        >>> import jax
        >>> model = tabular_reward((3, 2))
        >>> model.apply(model.init(jax.random.key(0))).shape
        (3, 2)
    """
    shape = tuple(int(n) for n in shape)
    if not 1 <= len(shape) <= 3 or min(shape) < 1:
        raise ValueError(f"shape: expected [S], [S, A] or [S, A, S'] with positive sizes, got {shape}")
    return ParametricTabularReward(lambda key: jnp.zeros(shape, jnp.float32), lambda params: params, "tabular")


def linear_reward(features: Array) -> ParametricTabularReward:
    """r_θ = φ·θ over features ``[S, K]``, ``[S, A, K]`` or ``[S, A, S', K]``; θ ∈ R^K, zeros at init.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> model = linear_reward(jnp.eye(3)[:, None, :].repeat(2, axis=1))  # [S=3, A=2, K=3]
        >>> model.apply(jnp.array([1.0, 2.0, 3.0])).tolist()
        [[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]
    """
    features = jnp.asarray(features, jnp.float32)
    if not 2 <= features.ndim <= 4:
        raise ValueError(f"features: expected [S, K], [S, A, K] or [S, A, S', K], got shape {features.shape}")
    num_features = features.shape[-1]
    return ParametricTabularReward(lambda key: jnp.zeros(num_features, jnp.float32), lambda params: features @ params, "linear")


def mlp_reward(features: Array, hidden_sizes: Sequence[int] = (32, 32), activation: Callable = jax.nn.tanh) -> ParametricTabularReward:
    """r_θ = MLP_θ(φ) applied to every entry of features ``[..., F]`` (F inputs, one output).

    Layers are initialised with LeCun-normal weights and zero biases; the params are a tuple
    of (W, b) pairs.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> model = mlp_reward(jnp.ones((4, 2, 3)), hidden_sizes=(8,))
        >>> model.apply(model.init(jax.random.key(0))).shape
        (4, 2)
    """
    features = jnp.asarray(features, jnp.float32)
    if not 2 <= features.ndim <= 4:
        raise ValueError(f"features: expected [S, F], [S, A, F] or [S, A, S', F], got shape {features.shape}")
    sizes = (features.shape[-1], *(int(n) for n in hidden_sizes), 1)
    if min(sizes) < 1:
        raise ValueError(f"hidden_sizes: expected positive widths, got {tuple(hidden_sizes)}")
    initializer = jax.nn.initializers.lecun_normal()

    def init(key):
        keys = jax.random.split(key, len(sizes) - 1)
        return tuple(
            (initializer(k, (n_in, n_out), jnp.float32), jnp.zeros(n_out, jnp.float32))
            for k, n_in, n_out in zip(keys, sizes[:-1], sizes[1:])
        )

    def apply(params):
        x = features
        for index, (weight, bias) in enumerate(params):
            x = x @ weight + bias
            if index < len(params) - 1:
                x = activation(x)
        return x[..., 0]

    return ParametricTabularReward(init, apply, "mlp")
