"""Behaviour-alignment rewards: r_φ = φ1 + φ2·r_p + φ3·r_aux and a learned discount γ_φ = sigmoid(p).

BARFI (Gupta et al. 2023) blends a primary reward r_p (the task, often sparse) and an
auxiliary reward r_aux (a designer's heuristic) with coefficients that may depend on the
state and action:

    r_φ(s, a) = φ1(s, a) + φ2(s, a)·r_p(s, a) + φ3(s, a)·r_aux(s, a),   γ_φ = sigmoid(p).

How φ depends on (s, a) is a strategy behind :class:`BlendParameterisation`: a free table
(:func:`table_blend`, one row of three coefficients per input index), linear in features
(:func:`linear_blend`) or a small network of the features (:func:`network_blend`). Every
parameterisation starts at the same coefficients (by default (0, 1, 1), the naive sum
r_p + r_aux), so the outer loop begins where a designer who adds the two rewards would be.

References:
    Gupta, Chandak, Jordan, Thomas and da Silva, "Behavior Alignment via Reward Function
    Optimization", NeurIPS 2023 (arXiv:2310.19007).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np

Array = Any

NAIVE_SUM = (0.0, 1.0, 1.0)
"""Coefficients (φ1, φ2, φ3) of the naive sum r_p + r_aux, where every parameterisation starts by default."""


@runtime_checkable
class BlendParameterisation(Protocol):
    """How the blend coefficients (φ1, φ2, φ3) depend on the inputs (state/action indices or features).

    ``init(key)`` returns the parameters (a pytree of float arrays); ``coefficients(params,
    inputs)`` maps inputs ``[..., *input_shape]`` to coefficients ``[..., 3]``, a pure JAX
    function differentiable in ``params``.
    """

    def init(self, key: jax.Array) -> Any:
        """Initial parameters."""
        ...

    def coefficients(self, params: Any, inputs: Array) -> jax.Array:
        """(φ1, φ2, φ3) at every input: ``[..., 3]``."""
        ...


class BlendParams(NamedTuple):
    """The outer variables of BARFI: the blend's parameters and the discount's logit."""

    blend: Any  # parameters of the BlendParameterisation
    discount_logit: jax.Array  # [] p, with γ_φ = sigmoid(p)


def _initial(initial_coefficients: Sequence[float]) -> jax.Array:
    values = np.asarray(initial_coefficients, np.float64)
    if values.shape != (3,) or not np.all(np.isfinite(values)):
        raise ValueError(
            f"initial_coefficients: expected three finite numbers (φ1, φ2, φ3), got {tuple(initial_coefficients)!r}"
        )
    return jnp.asarray(values, jnp.float32)


class TableBlend:
    """A free table of coefficients, one row per integer input index: φ = params[inputs].

    Example:
        >>> import jax.numpy as jnp
        >>> blend = table_blend(4)
        >>> blend.coefficients(blend.init(None), jnp.array([0, 3])).tolist()
        [[0.0, 1.0, 1.0], [0.0, 1.0, 1.0]]
    """

    def __init__(self, num_inputs: int, initial_coefficients: Sequence[float] = NAIVE_SUM) -> None:
        if isinstance(num_inputs, bool) or not isinstance(num_inputs, (int, np.integer)) or num_inputs < 1:
            raise ValueError(f"num_inputs: expected a positive integer, got {num_inputs!r}")
        self.num_inputs = int(num_inputs)
        self.initial_coefficients = _initial(initial_coefficients)

    def __repr__(self) -> str:
        return f"TableBlend(num_inputs={self.num_inputs})"

    def init(self, key: jax.Array | None) -> jax.Array:
        """``[num_inputs, 3]`` rows equal to the initial coefficients (``key`` unused)."""
        del key
        return jnp.broadcast_to(self.initial_coefficients, (self.num_inputs, 3))

    def coefficients(self, params: jax.Array, inputs: Array) -> jax.Array:
        """``params[inputs]``: integer inputs ``[...]`` to ``[..., 3]``."""
        return jnp.asarray(params)[jnp.asarray(inputs)]


class LinearBlend:
    """Coefficients linear in features: φ = x W + b, W ``[F, 3]`` (zeros at init), b the initial coefficients.

    Example:
        >>> import jax.numpy as jnp
        >>> blend = linear_blend(2)
        >>> params = blend.init(None)
        >>> blend.coefficients(params, jnp.ones((5, 2))).shape
        (5, 3)
    """

    def __init__(self, num_features: int, initial_coefficients: Sequence[float] = NAIVE_SUM) -> None:
        if isinstance(num_features, bool) or not isinstance(num_features, (int, np.integer)) or num_features < 1:
            raise ValueError(f"num_features: expected a positive integer, got {num_features!r}")
        self.num_features = int(num_features)
        self.initial_coefficients = _initial(initial_coefficients)

    def __repr__(self) -> str:
        return f"LinearBlend(num_features={self.num_features})"

    def init(self, key: jax.Array | None) -> tuple[jax.Array, jax.Array]:
        """(W ``[F, 3]`` zeros, b ``[3]`` the initial coefficients); ``key`` unused."""
        del key
        return jnp.zeros((self.num_features, 3), jnp.float32), self.initial_coefficients

    def coefficients(self, params: tuple[jax.Array, jax.Array], inputs: Array) -> jax.Array:
        """x W + b for features ``[..., F]``: ``[..., 3]``."""
        weight, bias = params
        return jnp.asarray(inputs, jnp.float32) @ weight + bias


class NetworkBlend:
    """Coefficients from an MLP of the features, φ = MLP(x); the last layer starts at zero weights and the
    initial coefficients as its bias, so the blend starts at ``initial_coefficients`` everywhere.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> blend = network_blend(2, hidden_sizes=(8,))
        >>> params = blend.init(jax.random.key(0))
        >>> blend.coefficients(params, jnp.ones((5, 2)))[0].tolist()
        [0.0, 1.0, 1.0]
    """

    def __init__(
        self,
        num_features: int,
        hidden_sizes: Sequence[int] = (32,),
        initial_coefficients: Sequence[float] = NAIVE_SUM,
        activation: Callable[[jax.Array], jax.Array] = jax.nn.tanh,
    ) -> None:
        if isinstance(num_features, bool) or not isinstance(num_features, (int, np.integer)) or num_features < 1:
            raise ValueError(f"num_features: expected a positive integer, got {num_features!r}")
        sizes = tuple(int(n) for n in hidden_sizes)
        if any(n < 1 for n in sizes):
            raise ValueError(f"hidden_sizes: expected positive widths, got {tuple(hidden_sizes)!r}")
        self.num_features = int(num_features)
        self.hidden_sizes = sizes
        self.initial_coefficients = _initial(initial_coefficients)
        self.activation = activation

    def __repr__(self) -> str:
        return f"NetworkBlend(num_features={self.num_features}, hidden_sizes={self.hidden_sizes})"

    def init(self, key: jax.Array) -> tuple[tuple[jax.Array, jax.Array], ...]:
        """LeCun-normal hidden layers, zero biases; a zero last layer with the initial coefficients as bias.

        Raises:
            ValueError: ``key`` is None.
        """
        if key is None:
            raise ValueError("key: a network blend draws its hidden weights; expected a PRNG key, got None")
        sizes = (self.num_features, *self.hidden_sizes)
        keys = jax.random.split(key, max(1, len(sizes) - 1))
        initializer = jax.nn.initializers.lecun_normal()
        layers = [
            (initializer(k, (n_in, n_out), jnp.float32), jnp.zeros(n_out, jnp.float32))
            for k, n_in, n_out in zip(keys, sizes[:-1], sizes[1:], strict=False)
        ]
        layers.append((jnp.zeros((sizes[-1], 3), jnp.float32), self.initial_coefficients))
        return tuple(layers)

    def coefficients(self, params: tuple[tuple[jax.Array, jax.Array], ...], inputs: Array) -> jax.Array:
        """MLP(x) for features ``[..., F]``: ``[..., 3]``."""
        x = jnp.asarray(inputs, jnp.float32)
        for index, (weight, bias) in enumerate(params):
            x = x @ weight + bias
            if index < len(params) - 1:
                x = self.activation(x)
        return x


def table_blend(num_inputs: int, initial_coefficients: Sequence[float] = NAIVE_SUM) -> TableBlend:
    """A :class:`TableBlend` over ``num_inputs`` indices (e.g. S for φ(s), S·A for φ(s, a)).

    Raises:
        ValueError: ``num_inputs`` is not a positive integer, or the initial coefficients are not 3 finite numbers.
    """
    return TableBlend(num_inputs, initial_coefficients)


def linear_blend(num_features: int, initial_coefficients: Sequence[float] = NAIVE_SUM) -> LinearBlend:
    """A :class:`LinearBlend` over ``num_features`` features.

    Raises:
        ValueError: ``num_features`` is not a positive integer, or the initial coefficients are not 3 finite numbers.
    """
    return LinearBlend(num_features, initial_coefficients)


def network_blend(
    num_features: int,
    hidden_sizes: Sequence[int] = (32,),
    initial_coefficients: Sequence[float] = NAIVE_SUM,
    activation: Callable[[jax.Array], jax.Array] = jax.nn.tanh,
) -> NetworkBlend:
    """A :class:`NetworkBlend`: an MLP of ``num_features`` features with ``hidden_sizes`` hidden widths.

    Raises:
        ValueError: a size is not positive, or the initial coefficients are not 3 finite numbers.
    """
    return NetworkBlend(num_features, hidden_sizes, initial_coefficients, activation)


def blend_rewards(coefficients: Array, primary: Array, auxiliary: Array) -> jax.Array:
    """r_φ = φ1 + φ2·r_p + φ3·r_aux, elementwise.

    Args:
        coefficients: ``[..., 3]`` (φ1, φ2, φ3).
        primary: ``[...]`` r_p.
        auxiliary: ``[...]`` r_aux, the shape of ``primary``.

    Returns:
        ``[...]`` r_φ.

    Raises:
        ValueError: the shapes do not match.

    Example:
        >>> import jax.numpy as jnp
        >>> blend_rewards(jnp.array([[1.0, 2.0, -1.0]]), jnp.array([3.0]), jnp.array([4.0])).tolist()
        [3.0]
    """
    coefficients = jnp.asarray(coefficients)
    primary, auxiliary = jnp.asarray(primary), jnp.asarray(auxiliary)
    if primary.shape != auxiliary.shape:
        raise ValueError(f"auxiliary: expected the shape of primary {primary.shape}, got {auxiliary.shape}")
    if coefficients.shape != primary.shape + (3,):
        raise ValueError(f"coefficients: expected shape {primary.shape + (3,)}, got {coefficients.shape}")
    return coefficients[..., 0] + coefficients[..., 1] * primary + coefficients[..., 2] * auxiliary


def learned_discount(discount_logit: Array) -> jax.Array:
    """γ_φ = sigmoid(p) ∈ (0, 1).

    Example:
        >>> float(learned_discount(0.0))
        0.5
    """
    return jax.nn.sigmoid(jnp.asarray(discount_logit))


def discount_logit(discount: float) -> jax.Array:
    """p = log(γ / (1 − γ)), the logit with sigmoid(p) = γ.

    Raises:
        ValueError: ``discount`` is not in (0, 1).

    Example:
        >>> round(float(learned_discount(discount_logit(0.9))), 6)
        0.9
    """
    if isinstance(discount, bool) or not isinstance(discount, (int, float, np.floating)) or not 0.0 < discount < 1.0:
        raise ValueError(f"discount: expected a number in (0, 1), got {discount!r}")
    return jnp.asarray(np.log(discount / (1.0 - discount)), jnp.float32)


def check_blend(blend: Any, params: Any, inputs: Array, expected_shape: tuple[int, ...], name: str = "blend") -> None:
    """Check at the door that a parameterisation gives float coefficients ``[*expected_shape, 3]`` differentiable in φ.

    The coefficients must change with the parameters: a blend whose Jacobian is zero
    everywhere (rounded, cast to integers, or behind ``stop_gradient``) leaves the outer
    gradient at zero, and an outer loop that silently stands still is a defect, not a result.

    Raises:
        TypeError: ``blend`` does not follow :class:`BlendParameterisation`, its coefficients are not
            floats, or they cannot be differentiated (a host function, an integer cast inside ``grad``).
        ValueError: the coefficients have another shape, are not finite, or do not depend on the parameters.
    """
    if not isinstance(blend, BlendParameterisation):
        raise TypeError(
            f"{name}: expected a BlendParameterisation (init(key), coefficients(params, inputs)), got {type(blend).__name__}"
        )
    try:
        coefficients = jax.eval_shape(blend.coefficients, params, inputs)
    except Exception as error:  # any tracing failure means the blend is not a pure JAX function
        raise TypeError(
            f"{name}: coefficients(params, inputs) must be a pure JAX function; tracing failed: {error}"
        ) from error
    if tuple(coefficients.shape) != tuple(expected_shape) + (3,):
        raise ValueError(
            f"{name}: expected coefficients of shape {tuple(expected_shape) + (3,)}, got {coefficients.shape}"
        )
    if not jnp.issubdtype(coefficients.dtype, jnp.floating):
        raise TypeError(f"{name}: expected float coefficients (differentiable in φ), got dtype {coefficients.dtype}")
    leaves = jax.tree.leaves(params)
    if not leaves or not all(jnp.issubdtype(jnp.result_type(leaf), jnp.floating) for leaf in leaves):
        raise TypeError(f"{name}: expected float parameters, got dtypes {[str(jnp.result_type(x)) for x in leaves]}")
    values = blend.coefficients(params, inputs)
    if not bool(jnp.all(jnp.isfinite(values))):
        raise ValueError(f"{name}: expected finite initial coefficients, got non-finite values")
    try:
        gradient = jax.grad(lambda p: jnp.sum(blend.coefficients(p, inputs) ** 2 + blend.coefficients(p, inputs)))(
            params
        )
    except Exception as error:  # any differentiation failure is reported with its cause
        raise TypeError(f"{name}: the coefficients are not differentiable in the parameters: {error}") from error
    if not any(bool(jnp.any(leaf != 0)) for leaf in jax.tree.leaves(gradient)):
        raise ValueError(
            f"{name}: the coefficients do not depend differentiably on the parameters (zero gradient everywhere: "
            "rounding, an integer cast or stop_gradient); the outer gradient would be zero"
        )
