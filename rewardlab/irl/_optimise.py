"""An optimiser loop that stops at a tolerance: one ``lax.while_loop``, per-step metrics in fixed-size buffers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp


def minimise_until(
    step: Callable[[Any], tuple[Any, dict[str, jax.Array]]],
    carry: Any,
    num_steps: int,
    stop_metric: str,
    tolerance: float | jax.Array,
) -> tuple[Any, dict[str, jax.Array], jax.Array, jax.Array]:
    """Run ``carry, metrics = step(carry)`` until ``metrics[stop_metric] ≤ tolerance`` or ``num_steps`` steps (pure).

    ``step`` measures its metrics at the carry it receives, then updates it. When the measured
    ``stop_metric`` is within ``tolerance`` the update is discarded and the loop stops, so the
    returned carry is the one that met the tolerance. Under ``vmap`` each lane stops on its own
    (finished lanes keep their carry while the others run).

    Returns:
        ``(carry, metrics, steps, converged)``: metrics ``[num_steps]`` each, entries after the
        stop repeating the last measured value; ``steps`` the number of measured steps (int32);
        ``converged`` whether the tolerance was met (bool).

    Example:
        >>> import jax.numpy as jnp
        >>> halve = lambda x: (x / 2, {"size": x})
        >>> x, metrics, steps, converged = minimise_until(halve, jnp.float32(1.0), 10, "size", 0.1)
        >>> float(x), metrics["size"].tolist()[:6], int(steps), bool(converged)
        (0.0625, [1.0, 0.5, 0.25, 0.125, 0.0625, 0.0625], 5, True)
    """
    shapes = jax.eval_shape(step, carry)[1]
    buffers = {name: jnp.zeros((num_steps,) + value.shape, value.dtype) for name, value in shapes.items()}

    def body(state: tuple[jax.Array, Any, dict[str, jax.Array], jax.Array]) -> tuple:
        index, carry, buffers, _ = state
        new_carry, metrics = step(carry)
        done = metrics[stop_metric] <= tolerance
        carry = jax.tree.map(lambda new, old: jnp.where(done, old, new), new_carry, carry)
        buffers = {name: buffers[name].at[index].set(metrics[name]) for name in buffers}
        return index + 1, carry, buffers, done

    def running(state: tuple[jax.Array, Any, dict[str, jax.Array], jax.Array]) -> jax.Array:
        index, _, _, done = state
        return (index < num_steps) & ~done

    start = (jnp.asarray(0, jnp.int32), carry, buffers, jnp.asarray(False))
    steps, carry, buffers, converged = jax.lax.while_loop(running, body, start)
    positions = jnp.arange(num_steps)
    last = jnp.maximum(steps - 1, 0)
    metrics = {
        name: jnp.where((positions < steps).reshape((-1,) + (1,) * (buffer.ndim - 1)), buffer, buffer[last])
        for name, buffer in buffers.items()
    }
    return carry, metrics, steps, converged
