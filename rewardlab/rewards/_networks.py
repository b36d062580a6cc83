"""Flax nnx modules of the reward network: MLP heads, a CNN for image leaves, the g/h pair.

The modules see preprocessed inputs only (normalised flat features, images in [0, 1] as
NHWC, one-hot actions); ``RewardModel`` owns preprocessing and the ensemble axis.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from rewardlab.rewards._config import RewardNetConfig
from rewardlab.rewards._spaces import Leaf

_ACTIVATIONS = {
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "leaky_relu": jax.nn.leaky_relu,  # negative slope 0.01
    "gelu": jax.nn.gelu,  # tanh approximation
    "silu": jax.nn.silu,
}


def activation_fn(name: str) -> Callable[[jax.Array], jax.Array]:
    """The elementwise nonlinearity called ``name``."""
    return _ACTIVATIONS[name]


class MLP(nnx.Module):
    """x → Linear → act → … → Linear(1): a scalar per row, [N, F] → [N]."""

    def __init__(self, in_features: int, hidden_sizes: Sequence[int], activation: str, *, rngs: nnx.Rngs) -> None:
        sizes = (in_features, *hidden_sizes, 1)
        self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in itertools.pairwise(sizes)])
        self.activation = activation

    def __call__(self, x: jax.Array) -> jax.Array:
        act = activation_fn(self.activation)
        for layer in self.layers[:-1]:
            x = act(layer(x))
        return self.layers[-1](x)[:, 0]


class CNN(nnx.Module):
    """Conv stack with VALID padding and the nonlinearity after every layer, flattened: [N, H, W, C] → [N, F]."""

    def __init__(
        self,
        image_hwc: tuple[int, int, int],
        channels: Sequence[int],
        kernel_sizes: Sequence[int],
        strides: Sequence[int],
        activation: str,
        *,
        rngs: nnx.Rngs,
    ) -> None:
        height, width, in_channels = image_hwc
        convs = []
        for out_channels, kernel, stride in zip(channels, kernel_sizes, strides, strict=True):
            height, width = (height - kernel) // stride + 1, (width - kernel) // stride + 1
            if height < 1 or width < 1:
                raise ValueError(
                    f"cnn_kernel_sizes/cnn_strides: image of shape {image_hwc} (HWC) shrinks to nothing after a "
                    f"{kernel}x{kernel} conv with stride {stride}; use smaller kernels or strides"
                )
            convs.append(
                nnx.Conv(in_channels, out_channels, (kernel, kernel), (stride, stride), padding="VALID", rngs=rngs)
            )
            in_channels = out_channels
        self.convs = nnx.List(convs)
        self.activation = activation
        self.out_features = height * width * in_channels

    def __call__(self, x: jax.Array) -> jax.Array:
        act = activation_fn(self.activation)
        for conv in self.convs:
            x = act(conv(x))
        return jnp.reshape(x, (x.shape[0], -1))


class ObservationEncoder(nnx.Module):
    """Concatenates the flat leaves (in leaf order), then the CNN features of the image leaves."""

    def __init__(self, leaves: tuple[Leaf, ...], config: RewardNetConfig, *, rngs: nnx.Rngs) -> None:
        self.is_image = tuple(leaf.kind == "image" for leaf in leaves)
        self.cnns = nnx.List(
            [
                CNN(
                    leaf.image_hwc,
                    config.cnn_channels,
                    config.cnn_kernel_sizes,
                    config.cnn_strides,
                    config.activation,
                    rngs=rngs,
                )
                for leaf in leaves
                if leaf.kind == "image"
            ]
        )
        self.features = sum(leaf.features for leaf in leaves) + sum(cnn.out_features for cnn in self.cnns)

    def __call__(self, blocks: Sequence[jax.Array]) -> jax.Array:
        flats = [block for block, image in zip(blocks, self.is_image, strict=True) if not image]
        images = [block for block, image in zip(blocks, self.is_image, strict=True) if image]
        parts = flats + [cnn(image) for cnn, image in zip(self.cnns, images, strict=True)]
        return parts[0] if len(parts) == 1 else jnp.concatenate(parts, axis=-1)

    def encode_pair(self, blocks: Sequence[jax.Array], next_blocks: Sequence[jax.Array]) -> tuple[jax.Array, jax.Array]:
        """Encode s and s' in one pass (stacked on the batch axis)."""
        n = blocks[0].shape[0]
        joint = self([jnp.concatenate([a, b], axis=0) for a, b in zip(blocks, next_blocks, strict=True)])
        return joint[:n], joint[n:]


class RewardNet(nnx.Module):
    """One ensemble member: g over the configured inputs and, with shaping, a potential h(s).

    g and h have separate encoders and MLPs; s and s' share g's encoder.
    """

    def __init__(
        self, config: RewardNetConfig, obs_leaves: tuple[Leaf, ...], act_features: int, *, rngs: nnx.Rngs
    ) -> None:
        self.inputs = config.inputs
        uses_obs = "obs" in config.inputs or "next_obs" in config.inputs
        self.encoder: ObservationEncoder | None = (
            ObservationEncoder(obs_leaves, config, rngs=rngs) if uses_obs else None
        )
        features = self.encoder.features if self.encoder is not None else 0
        widths = {"obs": features, "next_obs": features, "act": act_features, "done": 1}
        self.g = MLP(sum(widths[name] for name in config.inputs), config.hidden_sizes, config.activation, rngs=rngs)
        self.potential_encoder: ObservationEncoder | None
        self.h: MLP | None
        if config.potential_shaping:
            self.potential_encoder = ObservationEncoder(obs_leaves, config, rngs=rngs)
            self.h = MLP(self.potential_encoder.features, config.hidden_sizes, config.activation, rngs=rngs)
        else:
            self.potential_encoder = None
            self.h = None

    def base_reward(
        self,
        obs: Sequence[jax.Array] | None,
        acts: jax.Array | None,
        next_obs: Sequence[jax.Array] | None,
        dones: jax.Array | None,
    ) -> jax.Array:
        """g(inputs): [N]. ``obs``/``next_obs`` are per-leaf preprocessed blocks, ``dones`` [N, 1] float."""
        encoded: dict[str, Any] = {}
        encoder = self.encoder  # built whenever the inputs hold obs or next_obs, which are then given
        if "obs" in self.inputs and "next_obs" in self.inputs:
            assert encoder is not None and obs is not None and next_obs is not None
            encoded["obs"], encoded["next_obs"] = encoder.encode_pair(obs, next_obs)
        elif "obs" in self.inputs:
            assert encoder is not None and obs is not None
            encoded["obs"] = encoder(obs)
        elif "next_obs" in self.inputs:
            assert encoder is not None and next_obs is not None
            encoded["next_obs"] = encoder(next_obs)
        encoded["act"], encoded["done"] = acts, dones
        parts = [encoded[name] for name in self.inputs]
        return self.g(parts[0] if len(parts) == 1 else jnp.concatenate(parts, axis=-1))

    def potential(self, obs: Sequence[jax.Array]) -> jax.Array:
        """h(s): [N]."""
        assert self.h is not None and self.potential_encoder is not None  # built with potential_shaping
        return self.h(self.potential_encoder(obs))

    def potential_pair(self, obs: Sequence[jax.Array], next_obs: Sequence[jax.Array]) -> tuple[jax.Array, jax.Array]:
        """h(s), h(s') in one pass."""
        assert self.h is not None and self.potential_encoder is not None  # built with potential_shaping
        n = obs[0].shape[0]
        joint = self.h(
            self.potential_encoder([jnp.concatenate([a, b], axis=0) for a, b in zip(obs, next_obs, strict=True)])
        )
        return joint[:n], joint[n:]
