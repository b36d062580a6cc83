"""Argument checks shared by the public entry points: numbers, arrays, PRNG keys.

Every check names the argument, the expected and the actual value, and raises ``TypeError``
for a value of the wrong kind (a string where a number is expected, a complex or object
array, an ``int`` where a PRNG key is expected) and ``ValueError`` for a value of the right
kind out of range (NaN, ±inf, a probability above 1). Array checks are one vectorised NumPy
call each, cheap enough for batch paths. Values that JAX is tracing (inside ``jit``,
``vmap`` or ``grad``) cannot be inspected: :func:`is_concrete` tells the callers when to
skip the value checks.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

NUMERIC_KINDS = "biuf"
"""NumPy dtype kinds of the arrays the library computes on: bool, signed and unsigned integers, floats."""


class NonFiniteError(ValueError, FloatingPointError):
    """NaN or ±inf where finite values are required (an input batch, a reward, a distance's reward table).

    Both a ``ValueError`` (a bad argument) and a ``FloatingPointError`` (what non-finite
    arithmetic raises elsewhere in the library), so either ``except`` catches it.
    """


def is_concrete(value: Any) -> bool:
    """False for a JAX tracer (a value inside ``jit``/``vmap``/``grad``), True otherwise."""
    import jax

    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(value))


def _interval(low: float, high: float, low_open: bool, high_open: bool) -> str:
    return f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def check_real(
    name: str,
    value: Any,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
    allow_inf: bool = False,
) -> float:
    """``value`` as a float after checking that it is a real number in the interval.

    Args:
        name: the argument's name, for the message.
        value: a Python or NumPy real number (a 0-d array is accepted; bool is not).
        low: lower bound of the interval.
        high: upper bound.
        low_open: exclude ``low``.
        high_open: exclude ``high``.
        allow_inf: accept ±inf (when the interval holds it); NaN is never accepted.

    Returns:
        ``float(value)``.

    Raises:
        TypeError: ``value`` is not a real number (a string, a bool, None, a complex, an array).
        ValueError: NaN, ±inf (unless ``allow_inf``), or outside the interval.

    Example:
        >>> check_real("eps", 0.25, low=0.0, high=1.0)
        0.25
        >>> check_real("eps", float("nan"), low=0.0, high=1.0)
        Traceback (most recent call last):
        ...
        ValueError: eps: expected a finite number in [0, 1], got nan
    """
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf":
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__} {value!r}")
    number = float(value)
    interval = _interval(low, high, low_open, high_open)
    finite = "" if allow_inf else "finite "
    if math.isnan(number) or (math.isinf(number) and not allow_inf):
        raise ValueError(f"{name}: expected a {finite}number in {interval}, got {value!r}")
    if number < low or number > high or (low_open and number == low) or (high_open and number == high):
        raise ValueError(f"{name}: expected a {finite}number in {interval}, got {value!r}")
    return number


def check_optional_real(name: str, value: Any, **bounds: Any) -> float | None:
    """None, or :func:`check_real` of ``value``."""
    return None if value is None else check_real(name, value, **bounds)


def check_int(name: str, value: Any, *, low: int | None = None) -> int:
    """``value`` as an int after checking that it is an integer (not a bool, not a float) >= ``low``.

    Raises:
        TypeError: not an integer.
        ValueError: below ``low``.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an integer, got {type(value).__name__} {value!r}")
    if low is not None and value < low:
        raise ValueError(f"{name}: expected an integer >= {low}, got {value!r}")
    return int(value)


def check_numeric_dtype(name: str, value: Any) -> None:
    """Raise unless ``value`` (an array, or anything with a ``dtype``) holds bool, integer or float values.

    Raises:
        TypeError: a string, object, complex, datetime or structured dtype.
    """
    dtype = getattr(value, "dtype", None)
    if dtype is None:
        dtype = np.asarray(value).dtype
    if np.dtype(dtype).kind not in NUMERIC_KINDS:
        raise TypeError(f"{name}: expected a numeric (bool, integer or float) array, got dtype {dtype}")


def as_numeric_array(name: str, value: Any, dtype: Any = None) -> np.ndarray:
    """``np.asarray(value, dtype)`` of a numeric array, with a message naming ``name`` when it is not one.

    Ragged nested lists, strings, objects and complex values raise a ``TypeError`` that names
    the argument instead of a NumPy internal error.

    Raises:
        TypeError: ``value`` is not an array of real numbers.
    """
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as error:  # ragged nested sequences
        raise TypeError(f"{name}: expected a numeric array, got {type(value).__name__} ({error})") from None
    check_numeric_dtype(name, array)
    return array if dtype is None else array.astype(dtype, copy=False)


def check_finite_array(name: str, value: Any) -> None:
    """Raise when a numeric array holds NaN or ±inf (one vectorised check; integers pass at once).

    Raises:
        NonFiniteError: (a ``ValueError``) names the argument, how many entries are not finite
            and the first one.
    """
    array = np.asarray(value)
    if array.dtype.kind != "f" or np.isfinite(array).all():
        return
    bad = np.argwhere(~np.isfinite(array))
    first = tuple(int(i) for i in bad[0])
    raise NonFiniteError(
        f"{name}: expected finite values, got {len(bad)} NaN or infinite entr{'y' if len(bad) == 1 else 'ies'} "
        f"(first at index {first if len(first) != 1 else first[0]}: {array[tuple(bad[0])]})"
    )


def check_prng_key(name: str, key: Any) -> Any:
    """``key`` after checking that it is a JAX PRNG key (``jax.random.key`` or a legacy ``PRNGKey``).

    Raises:
        TypeError: anything else (an int seed, a NumPy generator, a float array); the message
            says how to make a key from a seed.
    """
    import jax
    import jax.numpy as jnp

    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key
    if isinstance(key, (jax.Array, np.ndarray)) and key.dtype == jnp.uint32 and key.shape[-1:] == (2,):
        return key  # a legacy jax.random.PRNGKey (raw uint32 key data)
    kind = type(key).__name__ if not hasattr(key, "dtype") else f"{type(key).__name__} of dtype {key.dtype}"
    raise TypeError(f"{name}: expected a JAX PRNG key (e.g. jax.random.key(seed)), got {kind} {key!r}"[:300])


def check_generator(name: str, rng: Any) -> Any:
    """``rng`` after checking that it is a ``numpy.random.Generator``.

    Raises:
        TypeError: anything else (an int seed, a JAX key, the legacy ``RandomState``); the
            message says how to make one from a seed.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"{name}: expected a numpy.random.Generator (e.g. numpy.random.default_rng(seed)), "
            f"got {type(rng).__name__} {rng!r}"[:300]
        )
    return rng
