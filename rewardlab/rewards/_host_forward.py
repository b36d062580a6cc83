"""NumPy forward pass of a flat-input ``RewardModel``, for small host batches, behind one factory.

On CPU, XLA's matrix multiply is several times slower than OpenBLAS for a handful of rows,
and each jitted call adds its dispatch cost (figures in docs/benchmarks.md). Env stepping
scores a few transitions per step, so ``as_reward_fn`` computes small batches with this
mirror of ``RewardModel.apply`` (same features, same layer order, float32 throughout);
``tests/test_reward_fn.py`` checks the two agree. Models with image inputs always use the
jitted path.

:func:`host_forward` is the only entry point: it picks the pass that fits the model and
returns an object with two calls, both giving member rewards ``[E, n]``:

* ``forward(obs, acts, next_obs, dones, n)`` on inputs already validated against the spaces;
* ``forward.call_unchecked(obs, acts, next_obs, dones, n)`` on raw inputs: the pass checks
  itself whether they have exactly the layout it reads (the env-stepping hot path) and
  returns None otherwise, and the caller then validates and calls ``forward``.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np

from rewardlab._checks import NonFiniteError, check_finite_array
from rewardlab.rewards._model import RewardModel
from rewardlab.rewards._normalizer import NORMALIZE_CLIP, NORMALIZE_EPSILON, stats_get
from rewardlab.rewards._spaces import Leaf

_SQRT_2_OVER_PI = np.float32(math.sqrt(2.0 / math.pi))


def _gelu(x: np.ndarray) -> np.ndarray:
    # The tanh approximation, as jax.nn.gelu(approximate=True).
    return 0.5 * x * (1.0 + np.tanh(_SQRT_2_OVER_PI * (x + np.float32(0.044715) * x * x * x)))


_ACTIVATIONS = {
    "relu": lambda x: np.maximum(x, 0.0, out=x),
    "tanh": lambda x: np.tanh(x, out=x),
    "leaky_relu": lambda x: np.where(x >= 0, x, np.float32(0.01) * x),
    "gelu": _gelu,
    "silu": lambda x: x / (1.0 + np.exp(-x)),
}


def supports_host_forward(model: Any) -> bool:
    """True when no observation leaf is an image (the CNN stays on the jitted path)."""
    return all(leaf.kind != "image" for leaf in model.obs_leaves)


def _host_layers(mlp: dict, ensemble_size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Host float32 copies (kernel, bias) of an MLP's layers: [in, out] / [out] for one member,
    [E, in, out] / [E, 1, out] for an ensemble."""
    layers = mlp["layers"]
    out = []
    for index in sorted(layers):
        kernel = np.ascontiguousarray(np.asarray(layers[index]["kernel"], np.float32))  # [E, in, out]
        bias = np.asarray(layers[index]["bias"], np.float32)  # [E, out]
        if ensemble_size == 1:
            out.append((kernel[0], bias[0]))  # plain 2-D products for the common case
        else:
            out.append((kernel, bias[:, None, :]))
    return out


class HostForward:
    """Rewards ``[E, n]`` of a batch of validated NumPy inputs, from host copies of the params."""

    def __init__(self, model: Any, params: Any) -> None:
        config = model.config
        self.inputs = config.inputs
        self.shaping = config.potential_shaping
        self.discount = np.float32(config.discount)
        self.activation = _ACTIVATIONS[config.activation]
        self.ensemble_size = model.ensemble_size
        self.obs_leaves: tuple[Leaf, ...] = model.obs_leaves
        self.act_leaves: tuple[Leaf, ...] = model.act_leaves
        self.uses = model.uses
        net = params.net.to_pure_dict()
        self.g_layers = _host_layers(net["g"], self.ensemble_size)
        self.h_layers = _host_layers(net["h"], self.ensemble_size) if self.shaping else None
        # Per observation leaf: (mean, 1/sqrt(var + eps)) flattened, or None when not normalised.
        self.obs_norm: list[tuple[np.ndarray, np.ndarray] | None] = []
        for leaf in self.obs_leaves:
            if leaf.normalize and config.normalize_inputs:
                mean = np.asarray(stats_get(params.obs_stats.mean, leaf), np.float32).reshape(1, -1)
                std = np.sqrt(
                    np.asarray(stats_get(params.obs_stats.var, leaf), np.float32).reshape(1, -1)
                    + np.float32(NORMALIZE_EPSILON)
                )
                self.obs_norm.append((mean, std))
            else:
                self.obs_norm.append(None)

    @staticmethod
    def _leaf_features(leaf: Leaf, x: Any, rows: int) -> np.ndarray:
        if leaf.kind in ("box", "multi_binary"):
            return np.asarray(x, np.float32).reshape(rows, leaf.features)
        codes = np.asarray(x).reshape(rows, len(leaf.sizes))
        blocks = [
            (codes[:, i : i + 1] - start == np.arange(size)).astype(np.float32)  # zeros when out of range, like one_hot
            for i, (size, start) in enumerate(zip(leaf.sizes, leaf.starts, strict=True))
        ]
        return blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=1)

    def _obs_features(self, batches: tuple[Any, ...], n: int) -> np.ndarray:
        """Features of one or more observation batches stacked on the row axis: [len(batches) * n, F]."""
        rows = len(batches) * n
        parts = []
        for leaf, norm in zip(self.obs_leaves, self.obs_norm, strict=True):
            arrays = []
            for batch in batches:
                for key in leaf.path:
                    batch = batch[key]
                arrays.append(batch)
            if leaf.kind in ("box", "multi_binary"):
                # One float32 copy of every batch; normalise it in place.
                features = np.concatenate(arrays, axis=0, dtype=np.float32).reshape(rows, leaf.features)
            else:
                features = self._leaf_features(leaf, np.concatenate(arrays, axis=0), rows)
            if norm is not None:
                features -= norm[0]
                features /= norm[1]
                np.maximum(features, -NORMALIZE_CLIP, out=features)
                np.minimum(features, NORMALIZE_CLIP, out=features)
            parts.append(features)
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)

    def _mlp(self, layers: list[tuple[np.ndarray, np.ndarray]], x: np.ndarray) -> np.ndarray:
        for kernel, bias in layers[:-1]:
            x = x @ kernel
            x += bias
            x = self.activation(x)
        kernel, bias = layers[-1]
        out = x @ kernel
        out += bias
        out = out[..., 0]
        return out if self.ensemble_size > 1 else out[None]  # [E, rows]

    def call_unchecked(self, obs: Any, acts: Any, next_obs: Any, dones: Any, n: int) -> None:
        """None: this pass reads Dict, categorical and shaped inputs that must be validated first."""
        return None

    def __call__(self, obs: Any, acts: Any, next_obs: Any, dones: Any, n: int) -> np.ndarray:
        """``[E, n]`` member rewards of inputs validated against the spaces."""
        features = {}
        if self.uses["obs"] and self.uses["next_obs"]:
            both = self._obs_features((obs, next_obs), n)
            features["obs"], features["next_obs"] = both[:n], both[n:]
        elif self.uses["obs"]:
            both = features["obs"] = self._obs_features((obs,), n)
        elif self.uses["next_obs"]:
            features["next_obs"] = self._obs_features((next_obs,), n)
        done = np.asarray(dones, np.float32).reshape(n) if self.uses["done"] else None
        if "act" in self.inputs:
            parts = [self._leaf_features(leaf, _get(acts, leaf.path), n) for leaf in self.act_leaves]
            features["act"] = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
        if "done" in self.inputs:
            assert done is not None  # uses["done"] holds when the inputs name it
            features["done"] = done[:, None]
        parts = [features[name] for name in self.inputs]
        rewards = self._mlp(
            self.g_layers, parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1, dtype=np.float32)
        )
        if self.shaping:
            assert self.h_layers is not None and done is not None  # shaping builds h and reads dones
            potentials = self._mlp(self.h_layers, both)  # h(s), h(s') in one product
            rewards = rewards + self.discount * (1.0 - done) * potentials[:, n:] - potentials[:, :n]
        return rewards


class FlatHostForward:
    """The common case in a handful of NumPy calls: one flat Box observation, one Box action (or none).

    Features ``[n, F + 1]`` are laid out in ``config.inputs`` order in a per-thread buffer,
    with a column of ones that carries the first layer's bias. The layers run
    on transposed activations, one column per transition (``h = Wᵀ·xᵀ``, then ``Wᵀ·h``): for
    the few rows of env stepping OpenBLAS multiplies a [257, 257] by a [257, 8] matrix faster
    than an [8, 257] by a [257, 257] one, and the big product is most of the call.
    Every later bias rides on an extra hidden unit held at act(1), so the pass is one product
    and one activation per layer.
    Normalisation is folded into the first layer:
    clip((x − μ)/σ, ±5)·W + b = clip(x, μ ± 5σ)·(W/σ) + (b − (μ/σ)·W), so the inputs are only
    clipped, in place, in raw units (μ = 0, σ = 1 and no clip on action and done columns). The
    fold is computed in float64; when some |μ/σ| is large the float32 product would lose
    digits, and the inputs are normalised explicitly instead. Env stepping calls the reward
    once per vector step with a few rows, after the simulator has cooled the caches and
    branch predictors, so every NumPy call saved shows up in the env's steps per second;
    ``tests/test_reward_fn.py`` checks this path against the jitted model.
    """

    FOLD_LIMIT = 16.0  # largest |μ/σ| folded into the first layer

    def __init__(self, model: Any, params: Any) -> None:
        config = model.config
        self.ensemble_size = model.ensemble_size
        self.activation = _ACTIVATIONS[config.activation]
        (obs_leaf,) = model.obs_leaves
        self.inputs = config.inputs
        self._argument_index = tuple({"obs": 0, "act": 1, "next_obs": 2, "done": 3}[name] for name in config.inputs)
        columns_mean, columns_std, columns_clip = [], [], []
        for name in config.inputs:
            if name in ("obs", "next_obs"):
                width = obs_leaf.features
                if obs_leaf.normalize and config.normalize_inputs:
                    mean = np.asarray(params.obs_stats.mean, np.float64).reshape(-1)
                    std = np.sqrt(
                        np.asarray(params.obs_stats.var, np.float32).reshape(-1) + np.float32(NORMALIZE_EPSILON)
                    ).astype(np.float64)
                    columns_mean.append(mean)
                    columns_std.append(std)
                    columns_clip.append(np.full(width, NORMALIZE_CLIP))
                    continue
            elif name == "act":
                width = model.act_leaves[0].features
            else:
                width = 1
            columns_mean.append(np.zeros(width))
            columns_std.append(np.ones(width))
            columns_clip.append(np.full(width, np.inf))
        widths = [len(column) for column in columns_mean]
        self._column_slices = tuple(slice(sum(widths[:i]), sum(widths[: i + 1])) for i in range(len(widths)))
        mean, std, clip = (np.concatenate(columns) for columns in (columns_mean, columns_std, columns_clip))
        layers = _host_layers(params.net.to_pure_dict()["g"], self.ensemble_size)
        kernel, bias = layers[0]  # [F, H] / [H], or [E, F, H] / [E, 1, H]
        kernel64, bias64 = kernel.astype(np.float64), bias.astype(np.float64)
        self.fold = bool(np.max(np.abs(mean / std), initial=0.0) <= self.FOLD_LIMIT)
        if self.fold:
            # Clip in raw units; normalisation lives in the kernel and bias.
            self.low = (mean - clip * std).astype(np.float32)[None]
            self.high = (mean + clip * std).astype(np.float32)[None]
            kernel64 = kernel64 / std[:, None]
            bias64 = bias64 - (mean[:, None] * kernel64).sum(axis=-2, keepdims=bias64.ndim == 3)
        else:
            self.mean = np.append(mean, 0.0).astype(np.float32)[None]  # the ones column stays 1
            self.std = np.append(std, 1.0).astype(np.float32)[None]
            self.low, self.high = (-clip).astype(np.float32)[None], clip.astype(np.float32)[None]
        self.clipped = bool(np.isfinite(clip).any())
        # Clip bounds per feature, [1, F + 1]; the ones column is held at 1.
        self.low = np.append(self.low, 1.0).astype(np.float32)[None]
        self.high = np.append(self.high, 1.0).astype(np.float32)[None]
        # Every layer's bias rides on a constant unit: the first kernel gets an extra output
        # column that is 1 before the activation (from the features' ones column), so c = act(1)
        # after it; each later kernel gets an extra row bias / c and, for hidden layers, the
        # same extra column 1 / c. The forward pass is then products and activations only.
        constant = float(self.activation(np.ones(1, np.float32))[0])  # act(1): nonzero for every activation
        layers64 = [(kernel64, bias64)] + [
            (np.asarray(k, np.float64), np.asarray(b, np.float64)) for k, b in layers[1:]
        ]
        self.kernels = []
        for index, (kernel64, bias64) in enumerate(layers64):
            scale = 1.0 if index == 0 else constant  # the value of the unit that carries this bias
            bias_row = bias64.reshape(kernel64.shape[:-2] + (1, kernel64.shape[-1])) / scale
            extended = np.concatenate([kernel64, bias_row], axis=-2)  # [..., in + 1, out]
            if index < len(layers64) - 1:
                unit = np.zeros(extended.shape[:-1] + (1,))
                unit[..., -1, 0] = 1.0 / scale
                extended = np.concatenate([extended, unit], axis=-1)
            self.kernels.append(
                np.ascontiguousarray(np.swapaxes(extended, -1, -2), dtype=np.float32)
            )  # [..., out, in + 1]
        if self.ensemble_size == 1:  # a vector-matrix product straight to the [n] rewards
            self.kernels[-1] = np.ascontiguousarray(self.kernels[-1][0])
        # Inputs that need a reshape to [n, features] (multi-dimensional observations; dones).
        shapes = {
            "obs": obs_leaf.shape,
            "next_obs": obs_leaf.shape,
            "act": model.act_leaves[0].shape if model.act_leaves else (),
            "done": (),
        }
        self._reshape = tuple(len(shapes[name]) != 1 for name in config.inputs)
        self.relu = config.activation == "relu"
        # The transposed kernels ([E,] out, in) of the products followed by an activation; the
        # last of self.kernels is the output.
        self.hidden_kernels = self.kernels[:-1]
        # Per thread and batch size n: a features buffer [n, F + 1] (its ones column set once; the
        # inputs are copied into views of it, cheaper than a concatenation between MuJoCo
        # steps) and operands of the batch's full shape (clip bounds, ReLU zeros): NumPy's
        # ufuncs take a fast path when no operand is broadcast or a scalar, so np.maximum(x,
        # zeros) beats np.maximum(x, 0.0) for a few rows. Per thread, so that threads calling
        # one reward function never share a buffer.
        self._local = threading.local()
        # The plain layout ``call_unchecked`` takes without validation: per-sample shapes of s and a.
        self._obs_shape = obs_leaf.shape
        self._act_shape = model.act_leaves[0].shape if model.act_leaves else ()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_local"]  # per-thread buffers: rebuilt on first use
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._local = threading.local()

    def _operands(self, n: int) -> tuple[Any, ...]:
        features = np.ones((n, self.low.shape[1]), np.float32)  # the last column stays 1
        views = tuple(
            (features[:, columns], self._argument_index[i], self._reshape[i])
            for i, columns in enumerate(self._column_slices)
        )
        low, high = (
            np.ascontiguousarray(np.broadcast_to(bound, (n, bound.shape[1]))) for bound in (self.low, self.high)
        )
        zeros = []
        if self.relu:
            for kernel in self.hidden_kernels:
                zeros.append(np.zeros(kernel.shape[:-1] + (n,), np.float32))
        operands = (features, features.reshape(-1), views, low, high, zeros)
        per_n = getattr(self._local, "per_n", None)
        if per_n is None:
            per_n = self._local.per_n = {}
        per_n[n] = operands
        return operands

    def call_unchecked(self, obs: Any, acts: Any, next_obs: Any, dones: np.ndarray, n: int) -> np.ndarray | None:
        """``[E, n]`` of raw inputs that are plain arrays of exactly the model's shapes, else None.

        The env-stepping hot path: the shapes are checked here, inline; anything else (lists,
        Dict observations, [N, 1] actions, wrong shapes) returns None, and the caller validates
        (with messages that explain) and calls the instance. ``dones`` must already be ``[n]``.
        """
        try:
            obs, acts, next_obs = np.asarray(obs), np.asarray(acts), np.asarray(next_obs)
        except ValueError:  # ragged sequences: the validating path names the argument
            return None
        obs_shape = self._obs_shape
        if (
            obs.shape[1:] == obs_shape == next_obs.shape[1:]
            and acts.shape[1:] == self._act_shape
            and obs.shape[0] == next_obs.shape[0] == acts.shape[0] == n
            and obs.dtype.kind in "fiub"  # other dtypes take the validating path, which names them
            and next_obs.dtype.kind in "fiub"
            and acts.dtype.kind in "fiub"
        ):
            return self(obs, acts, next_obs, dones, n)
        return None

    def __call__(
        self, obs: np.ndarray, acts: np.ndarray, next_obs: np.ndarray, dones: np.ndarray, n: int
    ) -> np.ndarray:
        """``[E, n]`` member rewards of inputs validated against the spaces."""
        try:
            x, flat, views, low, high, zeros = self._local.per_n[n]
        except (AttributeError, KeyError):
            x, flat, views, low, high, zeros = self._operands(n)
        arguments = (obs, acts, next_obs, dones)
        for view, index, reshape in views:  # [n, F + 1] features, cast to float32 as they are copied
            view[...] = arguments[index].reshape(n, -1) if reshape else arguments[index]
        # NaN or ±inf inputs must raise, not be clipped into range: x·x is finite when every
        # entry is (one BLAS call on a flat view of x); when it is not, an exact check tells
        # overflow from a bad input.
        if not math.isfinite(flat.dot(flat)) and not np.isfinite(x).all():
            self._raise_non_finite(arguments)
        if not self.fold:
            x -= self.mean
            x /= self.std
        if self.clipped:
            np.maximum(x, low, out=x)  # np.clip costs several times more for a few rows
            np.minimum(x, high, out=x)
        x = x.T  # a view: BLAS reads it transposed
        if self.relu:
            for kernel, zero in zip(self.hidden_kernels, zeros, strict=True):
                x = kernel @ x
                np.maximum(x, zero, out=x)
        else:
            activation = self.activation
            for kernel in self.hidden_kernels:
                x = activation(kernel @ x)
        out = self.kernels[-1] @ x  # [n], or [E, 1, n]
        return out[None] if self.ensemble_size == 1 else out[:, 0]  # [E, n]

    def _raise_non_finite(self, arguments: tuple[Any, ...]) -> None:
        names = (("obs", "obs"), ("act", "acts"), ("next_obs", "next_obs"), ("done", "dones"))
        for (feature, name), value in zip(names, arguments, strict=True):
            if feature in self.inputs and np.asarray(value).dtype.kind == "f":
                check_finite_array(name, value)
        raise NonFiniteError("obs, acts, next_obs, dones: expected finite values")  # unreachable: one of them is not


def supports_flat_host_forward(model: Any) -> bool:
    """One plain (non-Dict) Box observation, a plain Box action if used, no potential shaping."""
    obs_leaves, act_leaves = model.obs_leaves, model.act_leaves
    if (
        len(obs_leaves) != 1
        or obs_leaves[0].path != ()
        or obs_leaves[0].kind != "box"
        or model.config.potential_shaping
    ):
        return False
    return not (  # one guard per condition above; this one reads as the others
        "act" in model.config.inputs
        and (len(act_leaves) != 1 or act_leaves[0].path != () or act_leaves[0].kind != "box")
    )


def host_forward(model: Any, params: Any) -> HostForward | FlatHostForward | None:
    """The NumPy forward pass of ``model`` at ``params``, or None when the model has none.

    A ``RewardModel`` without image inputs gets one: the folded, transposed pass for one flat
    Box observation and Box action (or none), the general one otherwise. Other reward models
    (and image models) return None and always run jitted. The result is called as
    ``forward(obs, acts, next_obs, dones, n)`` on validated inputs, or
    ``forward.call_unchecked(...)`` on raw ones (see the module docstring); both give
    ``[E, n]`` float32 member rewards of the model's ``apply``.
    """
    if not isinstance(model, RewardModel) or not supports_host_forward(model):
        return None
    if supports_flat_host_forward(model):
        return FlatHostForward(model, params)
    return HostForward(model, params)


def _get(tree: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        tree = tree[key]
    return tree
