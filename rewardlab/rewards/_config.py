"""Static configuration of a reward network (frozen, JSON-serialisable)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

INPUT_NAMES = ("obs", "act", "next_obs", "done")
ACTIVATIONS = ("relu", "tanh", "leaky_relu", "gelu", "silu")


def _int_tuple(name: str, value: Any, *, allow_empty: bool) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ValueError(f"{name}: expected a sequence of positive integers, got {value!r}")
    items = tuple(value)
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (int, np.integer)) or item < 1:
            raise ValueError(f"{name}: expected a sequence of positive integers, got {value!r}")
    if not items and not allow_empty:
        raise ValueError(f"{name}: expected at least one entry, got {value!r}")
    return tuple(int(item) for item in items)


@dataclasses.dataclass(frozen=True)
class RewardNetConfig:
    """Architecture of a learned reward r(s, a, s', done) (hashable, JSON round-trips).

    The reward head g is an MLP over the features of ``inputs``, concatenated in the order
    given. With ``potential_shaping`` the model returns the shaped reward
    r = g(·) + γ (1 − done) h(s') − h(s) with a second MLP h over s (Ng et al., 1999; the
    AIRL reward of Fu et al., 2018).

    Example:
        >>> config = RewardNetConfig(inputs=("obs", "act", "next_obs"), hidden_sizes=(64, 64))
        >>> RewardNetConfig.from_dict(config.to_dict()) == config
        True
    """

    inputs: tuple[str, ...] = ("obs", "act")  # subset of ("obs", "act", "next_obs", "done"), in feature order
    hidden_sizes: tuple[int, ...] = (256, 256)  # widths of the hidden layers of g and h (() = linear)
    activation: str = "relu"  # relu | tanh | leaky_relu | gelu | silu
    ensemble_size: int = 1  # E independently initialised members, stacked on a leading axis
    normalize_inputs: bool = True  # running mean/var normalisation of non-image observation inputs, clipped to ±5
    potential_shaping: bool = False  # r = g + γ(1 − done) h(s') − h(s)
    discount: float = 0.99  # γ of the potential term
    cnn_channels: tuple[int, ...] = (32, 64, 64)  # output channels per conv layer for image observations
    cnn_kernel_sizes: tuple[int, ...] = (8, 4, 3)  # square kernel size per conv layer
    cnn_strides: tuple[int, ...] = (4, 2, 1)  # stride per conv layer

    def __post_init__(self) -> None:
        inputs = self.inputs
        if isinstance(inputs, str) or not hasattr(inputs, "__iter__"):
            raise ValueError(f"inputs: expected a tuple of names from {INPUT_NAMES}, got {inputs!r}")
        inputs = tuple(inputs)
        if not inputs:
            raise ValueError(f"inputs: expected at least one of {INPUT_NAMES}, got ()")
        unknown = [name for name in inputs if name not in INPUT_NAMES]
        if unknown:
            raise ValueError(f"inputs: expected names from {INPUT_NAMES}, got unknown {unknown}")
        if len(set(inputs)) != len(inputs):
            raise ValueError(f"inputs: expected distinct names, got {inputs}")
        object.__setattr__(self, "inputs", inputs)
        object.__setattr__(self, "hidden_sizes", _int_tuple("hidden_sizes", self.hidden_sizes, allow_empty=True))
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation: expected one of {ACTIVATIONS}, got {self.activation!r}")
        if (
            isinstance(self.ensemble_size, bool)
            or not isinstance(self.ensemble_size, (int, np.integer))
            or self.ensemble_size < 1
        ):
            raise ValueError(f"ensemble_size: expected an integer >= 1, got {self.ensemble_size!r}")
        object.__setattr__(self, "ensemble_size", int(self.ensemble_size))
        for name in ("normalize_inputs", "potential_shaping"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}: expected a bool, got {getattr(self, name)!r}")
        discount = self.discount
        if (
            isinstance(discount, bool)
            or not isinstance(discount, (int, float))
            or not math.isfinite(discount)
            or not 0.0 <= discount <= 1.0
        ):
            raise ValueError(f"discount: expected a float in [0, 1], got {discount!r}")
        object.__setattr__(self, "discount", float(discount))
        channels = _int_tuple("cnn_channels", self.cnn_channels, allow_empty=False)
        kernels = _int_tuple("cnn_kernel_sizes", self.cnn_kernel_sizes, allow_empty=False)
        strides = _int_tuple("cnn_strides", self.cnn_strides, allow_empty=False)
        if not len(channels) == len(kernels) == len(strides):
            raise ValueError(
                "cnn_channels, cnn_kernel_sizes, cnn_strides: expected equal lengths, got "
                f"{len(channels)}, {len(kernels)}, {len(strides)}"
            )
        object.__setattr__(self, "cnn_channels", channels)
        object.__setattr__(self, "cnn_kernel_sizes", kernels)
        object.__setattr__(self, "cnn_strides", strides)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (tuples become lists)."""
        return {
            field.name: list(value) if isinstance(value := getattr(self, field.name), tuple) else value
            for field in dataclasses.fields(self)
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RewardNetConfig:
        """Inverse of ``to_dict``; unknown keys raise ``ValueError`` (missing keys take defaults)."""
        if not isinstance(data, dict):
            raise ValueError(f"data: expected a dict, got {type(data).__name__}")
        names = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"data: unknown RewardNetConfig fields {unknown}, expected a subset of {sorted(names)}")
        kwargs: dict[str, Any] = {
            key: tuple(value) if isinstance(value, list) else value for key, value in data.items()
        }
        return cls(**kwargs)
