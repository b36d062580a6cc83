"""Gymnasium spaces: JSON descriptions and how each leaf becomes network features.

An observation (or action) space is split into leaves: a plain space is one leaf, a
``Dict`` space one leaf per (nested) key. Each leaf is encoded by its space:

* image ``Box`` (uint8, rank 3, bounds [0, 255]; HxWxC, or CxHxW when the first axis is the
  smallest, the Stable-Baselines3 convention): scaled by 1/255 and sent through a CNN;
* other ``Box``: flattened to float32 (observations may be normalised with running statistics);
* ``Discrete(n, start)``: one-hot of ``x − start`` (n features);
* ``MultiBinary``: flattened to float32;
* ``MultiDiscrete(nvec, start)``: one-hot of every entry, concatenated (Σ nvec features).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np

from rewardlab._checks import check_finite_array


def _encode_float(value: float) -> float | str:
    value = float(value)
    if math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def _decode_float(value: float | str) -> float:
    return float(value)


def _encode_bound(bound: np.ndarray) -> Any:
    flat = np.asarray(bound, np.float64).reshape(-1)
    if flat.size and np.all(flat == flat[0]):
        return _encode_float(flat[0])
    return [_encode_float(value) for value in flat]


def _decode_bound(value: Any, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    if isinstance(value, list):
        flat = np.array([_decode_float(v) for v in value], np.float64)
        if flat.size != math.prod(shape):
            raise ValueError(f"Box bound: expected {math.prod(shape)} values for shape {shape}, got {flat.size}")
        return flat.reshape(shape).astype(dtype)
    return np.full(shape, _decode_float(value), np.float64).astype(dtype)


def space_to_dict(space: gym.Space) -> dict[str, Any]:
    """A JSON-serialisable description of ``space`` (Box, Discrete, MultiBinary, MultiDiscrete, Dict).

    Non-finite Box bounds are written as the strings ``"inf"``, ``"-inf"``, ``"nan"`` so the
    result is strict JSON; a uniform bound is written as one number.

    Args:
        space: a gymnasium space.

    Returns:
        A dict with a ``"type"`` key and the space's parameters; ``space_from_dict`` inverts it.

    Raises:
        ValueError: the space type is not supported.

    Example:
        >>> import gymnasium as gym, numpy as np
        >>> space_to_dict(gym.spaces.Box(-1.0, 1.0, (2,), np.float32))
        {'type': 'Box', 'shape': [2], 'dtype': 'float32', 'low': -1.0, 'high': 1.0}
        >>> space_to_dict(gym.spaces.Discrete(3))
        {'type': 'Discrete', 'n': 3, 'start': 0}
    """
    if isinstance(space, gym.spaces.Box):
        return {
            "type": "Box",
            "shape": list(space.shape),
            "dtype": np.dtype(space.dtype).name,
            "low": _encode_bound(space.low),
            "high": _encode_bound(space.high),
        }
    if isinstance(space, gym.spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, gym.spaces.MultiBinary):
        return {"type": "MultiBinary", "n": np.asarray(space.n).tolist()}
    if isinstance(space, gym.spaces.MultiDiscrete):
        return {
            "type": "MultiDiscrete",
            "nvec": np.asarray(space.nvec).tolist(),
            "start": np.asarray(space.start).tolist(),
            "dtype": np.dtype(space.dtype).name,
        }
    if isinstance(space, gym.spaces.Dict):
        return {"type": "Dict", "spaces": [[key, space_to_dict(sub)] for key, sub in space.spaces.items()]}
    raise ValueError(
        f"space: expected a gymnasium Box, Discrete, MultiBinary, MultiDiscrete or Dict space, got {type(space).__name__}"
    )


def space_from_dict(data: dict[str, Any]) -> gym.Space:
    """Rebuild a space from ``space_to_dict`` output (Dict key order is preserved).

    Args:
        data: the description.

    Returns:
        The gymnasium space.

    Raises:
        ValueError: unknown ``"type"`` or malformed fields.

    Example:
        >>> import gymnasium as gym
        >>> space = gym.spaces.Dict({"pos": gym.spaces.Box(-1, 1, (3,)), "mode": gym.spaces.Discrete(4)})
        >>> space_from_dict(space_to_dict(space)) == space
        True
    """
    if not isinstance(data, dict) or "type" not in data:
        raise ValueError(f"data: expected a dict with a 'type' key, got {data!r}")
    kind = data["type"]
    try:
        if kind == "Box":
            shape = tuple(int(n) for n in data["shape"])
            dtype = np.dtype(data["dtype"])
            low = _decode_bound(data["low"], shape, dtype)
            high = _decode_bound(data["high"], shape, dtype)
            return gym.spaces.Box(low=low, high=high, shape=shape, dtype=dtype)
        if kind == "Discrete":
            return gym.spaces.Discrete(int(data["n"]), start=int(data.get("start", 0)))
        if kind == "MultiBinary":
            return gym.spaces.MultiBinary(data["n"])
        if kind == "MultiDiscrete":
            nvec = np.asarray(data["nvec"], np.int64)
            return gym.spaces.MultiDiscrete(
                nvec,
                dtype=np.dtype(data.get("dtype", "int64")),
                start=np.asarray(data.get("start", np.zeros_like(nvec))),
            )
        if kind == "Dict":
            return gym.spaces.Dict([(str(key), space_from_dict(sub)) for key, sub in data["spaces"]])
    except (KeyError, TypeError) as error:
        raise ValueError(f"data: malformed {kind} space description {data!r}: {error!r}") from error
    raise ValueError(f"data: unknown space type {kind!r}, expected Box, Discrete, MultiBinary, MultiDiscrete or Dict")


def is_image_space(space: gym.Space) -> bool:
    """Box of uint8 with rank 3 and bounds [0, 255] (the Stable-Baselines3 definition, any channel count)."""
    return (
        isinstance(space, gym.spaces.Box)
        and np.dtype(space.dtype) == np.uint8
        and len(space.shape) == 3
        and bool(np.all(space.low == 0))
        and bool(np.all(space.high == 255))
    )


@dataclasses.dataclass(frozen=True)
class Leaf:
    """One array of an observation or action and how it becomes features."""

    path: tuple[str, ...]  # Dict keys from the root; () for a plain space
    kind: str  # "image" | "box" | "discrete" | "multi_binary" | "multi_discrete"
    shape: tuple[int, ...]  # per-sample shape of the array
    features: int  # flat features produced (0 for images: the CNN decides)
    normalize: bool  # running mean/var normalisation applies (non-image observation Box)
    sizes: tuple[int, ...] = ()  # categories per entry (discrete: (n,); multi_discrete: nvec flattened)
    starts: tuple[int, ...] = ()  # first category per entry
    channels_first: bool = False  # image stored CxHxW

    def describe(self, argument: str) -> str:
        """``obs`` or ``obs["pixels"]["left"]``, for error messages."""
        return argument + "".join(f"[{key!r}]" for key in self.path)

    @property
    def image_hwc(self) -> tuple[int, int, int]:
        """Image shape as (height, width, channels)."""
        if self.channels_first:
            channels, height, width = self.shape
            return height, width, channels
        height, width, channels = self.shape
        return height, width, channels


def space_leaves(space: gym.Space, *, is_observation: bool, path: tuple[str, ...] = ()) -> tuple[Leaf, ...]:
    """Leaves of ``space`` in key order, with their encodings (see the module docstring)."""
    if isinstance(space, gym.spaces.Dict):
        if not space.spaces:
            raise ValueError(f"space{''.join(f'[{k!r}]' for k in path)}: expected a non-empty Dict space")
        return tuple(
            leaf
            for key, sub in space.spaces.items()
            for leaf in space_leaves(sub, is_observation=is_observation, path=(*path, key))
        )
    if isinstance(space, gym.spaces.Box):
        shape = tuple(int(n) for n in space.shape)
        if is_observation and is_image_space(space):
            return (Leaf(path, "image", shape, 0, False, channels_first=int(np.argmin(shape)) == 0),)
        return (Leaf(path, "box", shape, math.prod(shape), is_observation),)
    if isinstance(space, gym.spaces.Discrete):
        return (Leaf(path, "discrete", (), int(space.n), False, (int(space.n),), (int(space.start),)),)
    if isinstance(space, gym.spaces.MultiBinary):
        shape = tuple(int(n) for n in np.atleast_1d(space.n))
        return (Leaf(path, "multi_binary", shape, math.prod(shape), False),)
    if isinstance(space, gym.spaces.MultiDiscrete):
        sizes = tuple(int(n) for n in np.asarray(space.nvec).reshape(-1))
        starts = tuple(int(n) for n in np.asarray(space.start).reshape(-1))
        return (Leaf(path, "multi_discrete", tuple(int(n) for n in space.shape), sum(sizes), False, sizes, starts),)
    raise ValueError(
        f"space{''.join(f'[{k!r}]' for k in path)}: expected a gymnasium Box, Discrete, MultiBinary, MultiDiscrete "
        f"or Dict space, got {type(space).__name__}"
    )


def leaf_shape_ok(leaf: Leaf, trailing: tuple[int, ...]) -> bool:
    """True when a batch whose per-sample shape is ``trailing`` fits ``leaf``.

    Discrete values may come as [N] or [N, 1] (SB3 replay buffers store the latter).
    """
    return trailing == leaf.shape or (leaf.kind == "discrete" and trailing == (1,))


def expected_shape(leaf: Leaf) -> str:
    """The batch shape ``leaf`` takes, for error messages: ``[N, 17]``, ``[N] (or [N, 1])``."""
    shape = ", ".join(["N", *map(str, leaf.shape)])
    return f"[{shape}]" + (" (or [N, 1])" if leaf.kind == "discrete" else "")


def get_leaf(tree: Any, path: tuple[str, ...]) -> Any:
    """The array at ``path`` inside a (nested) dict of arrays."""
    for key in path:
        tree = tree[key]
    return tree


def check_leaf_values(leaf: Leaf, x: np.ndarray, argument: str) -> None:
    """Raise unless the host batch ``x`` [N, *leaf.shape] holds valid values of ``leaf``'s space.

    One vectorised pass per leaf: numeric dtype everywhere; Box: finite; image: finite and in
    [0, 255]; MultiBinary: 0 or 1; Discrete/MultiDiscrete: integers in [start, start + n − 1]
    (a float array is accepted when every value is a whole number).

    Raises:
        TypeError: a string, object, complex or other non-numeric dtype (names the argument).
        ValueError: a value outside the space: NaN or ±inf, a fractional or out-of-range code
            (names the argument, the valid range and the first offending row).
    """
    name = leaf.describe(argument)
    kind = x.dtype.kind
    if kind not in "biuf":
        raise TypeError(f"{name}: expected a numeric (bool, integer or float) array, got dtype {x.dtype}")
    if leaf.kind == "box":
        if kind == "f" and not np.isfinite(x).all():
            check_finite_array(name, x)
        return
    if leaf.kind == "image":
        if x.dtype != np.uint8 and (x.size and not (np.isfinite(x).all() and x.min() >= 0 and x.max() <= 255)):
            raise ValueError(f"{name}: expected finite pixel values in [0, 255], got min {x.min()} max {x.max()}")
        return
    if leaf.kind == "multi_binary":
        if kind != "b" and not ((x == 0) | (x == 1)).all():
            row = int(np.argwhere((x != 0) & (x != 1))[0][0])
            raise ValueError(f"{name}: expected MultiBinary values 0 or 1, got {x[row].tolist()!r} at row {row}")
        return
    codes = x.reshape(x.shape[0], len(leaf.sizes))
    starts = np.asarray(leaf.starts)
    ends = starts + np.asarray(leaf.sizes)  # exclusive
    valid = (codes >= starts) & (codes < ends)  # NaN compares False
    if kind == "f":
        valid &= codes == np.floor(codes)
    if not valid.all():
        row, entry = (int(i) for i in np.argwhere(~valid)[0])
        if leaf.kind == "discrete":
            expected = f"integers in [{leaf.starts[0]}, {leaf.starts[0] + leaf.sizes[0] - 1}] (Discrete({leaf.sizes[0]}, start={leaf.starts[0]}))"
        else:
            expected = f"integers in [start, start + nvec − 1] per entry (MultiDiscrete(nvec={list(leaf.sizes)}, start={list(leaf.starts)}))"
        raise ValueError(f"{name}: expected {expected}, got {codes[row, entry].item()!r} at row {row}")


def encode_leaf(leaf: Leaf, x: jax.Array) -> jax.Array:
    """Features of a batch ``x`` of shape [N, *leaf.shape]: [N, features] float32, or [N, H, W, C] in [0, 1] for images.

    Not checked (this runs under ``jit``): a Discrete or MultiDiscrete code outside the space
    (out of range, fractional, NaN) gives an all-zero one-hot block, in this pure path and in
    the NumPy host pass alike; ``as_reward_fn`` raises on such inputs (``check_leaf_values``).
    """
    n = x.shape[0]
    if leaf.kind == "image":
        image = jnp.asarray(x, jnp.float32) / 255.0
        return jnp.transpose(image, (0, 2, 3, 1)) if leaf.channels_first else image
    if leaf.kind in ("box", "multi_binary"):
        return jnp.reshape(jnp.asarray(x, jnp.float32), (n, leaf.features))
    # Categorical leaves: one-hot every entry, then concatenate. Codes are compared in their own
    # dtype (no cast to int): a fractional, NaN or out-of-range code gives an all-zero block, as the
    # NumPy host pass does; ``as_reward_fn`` rejects such codes before either runs.
    codes = jnp.reshape(jnp.asarray(x), (n, len(leaf.sizes)))
    blocks = [
        jax.nn.one_hot(codes[:, i] - start, size, dtype=jnp.float32)
        for i, (size, start) in enumerate(zip(leaf.sizes, leaf.starts, strict=True))
    ]
    return blocks[0] if len(blocks) == 1 else jnp.concatenate(blocks, axis=-1)
