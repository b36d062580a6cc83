"""Slow NumPy reference of a reward network's forward pass (for tests only).

Written independently of ``rewardlab.rewards``: float64, one transition at a time, the
textbook formulas (dense layers, elementwise activations, input normalisation, potential
shaping) with no batching tricks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def numpy_activation(name: str, x: np.ndarray) -> np.ndarray:
    """relu, tanh, leaky_relu (slope 0.01), gelu (tanh approximation) or silu, elementwise in float64."""
    x = np.asarray(x, np.float64)
    if name == "relu":
        return np.where(x > 0, x, 0.0)
    if name == "tanh":
        return np.tanh(x)
    if name == "leaky_relu":
        return np.where(x >= 0, x, 0.01 * x)
    if name == "gelu":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    if name == "silu":
        return x / (1.0 + np.exp(-x))
    raise ValueError(f"name: unknown activation {name!r}")


def numpy_mlp_forward(
    layers: Sequence[tuple[np.ndarray, np.ndarray]], features: np.ndarray, activation: str = "relu"
) -> np.ndarray:
    """y_n = W_L^T φ(… φ(W_1^T x_n + b_1) …) + b_L for every row x_n, one row at a time.

    Args:
        layers: ``[(kernel [in, out], bias [out]), ...]``; the last layer has one output.
        features: ``[N, in]`` inputs.
        activation: nonlinearity after every layer but the last.

    Returns:
        ``[N]`` float64 outputs.
    """
    features = np.asarray(features, np.float64)
    outputs = np.empty(features.shape[0])
    for n, row in enumerate(features):
        hidden = row
        for index, (kernel, bias) in enumerate(layers):
            kernel = np.asarray(kernel, np.float64)
            bias = np.asarray(bias, np.float64)
            hidden = np.array(
                [
                    sum(hidden[i] * kernel[i, j] for i in range(kernel.shape[0])) + bias[j]
                    for j in range(kernel.shape[1])
                ]
            )
            if index < len(layers) - 1:
                hidden = numpy_activation(activation, hidden)
        outputs[n] = hidden[0]
    return outputs


def numpy_normalize(
    x: np.ndarray, mean: np.ndarray, var: np.ndarray, clip: float = 5.0, epsilon: float = 1e-8
) -> np.ndarray:
    """clip((x − μ) / sqrt(σ² + ε), −clip, clip) in float64."""
    z = (np.asarray(x, np.float64) - np.asarray(mean, np.float64)) / np.sqrt(np.asarray(var, np.float64) + epsilon)
    return np.minimum(np.maximum(z, -clip), clip)


def numpy_shaped_reward(
    g: np.ndarray, h_obs: np.ndarray, h_next_obs: np.ndarray, dones: np.ndarray, discount: float
) -> np.ndarray:
    """r_n = g_n + γ (1 − d_n) h(s'_n) − h(s_n), one transition at a time."""
    out = np.empty(len(g))
    for n in range(len(g)):
        out[n] = float(g[n]) + discount * (1.0 - float(dones[n])) * float(h_next_obs[n]) - float(h_obs[n])
    return out


def numpy_running_moments(batches: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, int]:
    """Mean, population variance and count of all rows of all batches together (the target of running statistics)."""
    rows = np.concatenate([np.asarray(b, np.float64).reshape(len(b), -1) for b in batches], axis=0)
    return rows.mean(axis=0), rows.var(axis=0), rows.shape[0]
