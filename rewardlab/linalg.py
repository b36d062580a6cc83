"""Dense linear algebra that is safe to batch (``vmap``) on XLA's CPU backend.

jaxlib's CPU LAPACK kernels split a batched call into chunks scheduled on XLA's intra-op
thread pool, and the pool thread that runs the kernel blocks until its chunks are done.
When as many batched kernels run at once as the pool has threads (independent solves in
one jitted function run concurrently), every pool thread waits for chunks that no thread
is free to run, and the program hangs, idle, for ever: with jax 0.10.2 on two cores, one
``jit`` of two ``jnp.linalg.solve`` calls on 300 × [100, 100] systems never returns.
Planning code hits this as soon as it is vmapped over MDPs or seeds (V^π, V^unif and V*
of a scaled return are three independent solves).

The functions here run a batch of matrices as a loop of single problems (a custom ``vmap``
rule; a batch of right-hand sides for one matrix stays one factorisation); the kernel runs
a single problem inline, so no pool thread waits on another. Independent solves still run concurrently, and on two cores
the loop is no slower than the kernel's own batch split. Small systems (N ≤ 16, e.g. the
Newton step of a linear reward) skip LAPACK: Gauss–Jordan elimination with partial
pivoting, unrolled, which vectorises across a batch instead of looping over it. ``solve``
keeps reverse-mode autodiff through a custom VJP.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


@jax.custom_batching.custom_vmap
def _lapack_solve(a: jax.Array, b: jax.Array) -> jax.Array:
    return jnp.linalg.solve(a, b)


@_lapack_solve.def_vmap
def _lapack_solve_batched(axis_size: int, in_batched: list[bool], a: jax.Array, b: jax.Array) -> tuple[jax.Array, bool]:
    a_batched, b_batched = in_batched
    if not a_batched:  # one matrix: factorise once, the batch becomes more right-hand sides
        if b.ndim == 2:  # [B, N]
            return _lapack_solve(a, b.T).T, True
        size, n, k = b.shape  # [B, N, K]
        columns = _lapack_solve(a, jnp.moveaxis(b, 0, 1).reshape(n, size * k))
        return jnp.moveaxis(columns.reshape(n, size, k), 1, 0), True
    if not b_batched:
        b = jnp.broadcast_to(b, (axis_size,) + b.shape)
    return jax.lax.map(lambda pair: _lapack_solve(*pair), (a, b)), True


SMALL_SYSTEM = 16  # largest N solved by unrolled elimination instead of LAPACK


def _gauss_jordan(a: jax.Array, b: jax.Array) -> jax.Array:
    """Solve a x = b by Gauss–Jordan elimination with partial pivoting, unrolled over the N pivots."""
    n = a.shape[-1]
    vector = b.ndim == 1
    augmented = jnp.concatenate([a, b[:, None] if vector else b], axis=1)
    rows = jnp.arange(n)
    for i in range(n):
        pivot = i + jnp.argmax(jnp.abs(augmented[i:, i]))
        order = jnp.where(rows == i, pivot, jnp.where(rows == pivot, i, rows))
        augmented = augmented[order]  # swap rows i and pivot
        augmented = augmented.at[i].set(augmented[i] / augmented[i, i])
        factors = augmented[:, i].at[i].set(0.0)
        augmented = augmented - factors[:, None] * augmented[i][None, :]
    x = augmented[:, n:]
    return x[:, 0] if vector else x


def _solve(a: jax.Array, b: jax.Array) -> jax.Array:
    if a.shape[-1] <= SMALL_SYSTEM:
        return _gauss_jordan(a, b)
    return _lapack_solve(a, b)


@jax.custom_vjp
def solve(a: jax.Array, b: jax.Array) -> jax.Array:
    """x with a x = b, for ``a`` [N, N] and ``b`` [N] or [N, K]; safe under ``vmap`` (see the module).

    Example:
        >>> import jax.numpy as jnp
        >>> solve(jnp.array([[2.0, 0.0], [0.0, 4.0]]), jnp.array([2.0, 2.0])).tolist()
        [1.0, 0.5]
    """
    _check_system(a, b)
    return _solve(a, b)


def _check_system(a: jax.Array, b: jax.Array) -> None:
    a_shape, b_shape = jnp.shape(a), jnp.shape(b)
    if len(a_shape) != 2 or a_shape[0] != a_shape[1]:
        raise ValueError(f"a: expected a square matrix [N, N], got shape {a_shape}")
    if len(b_shape) not in (1, 2) or b_shape[0] != a_shape[0]:
        raise ValueError(f"b: expected shape [N] or [N, K] with N = {a_shape[0]}, got {b_shape}")


def _solve_forward(a: jax.Array, b: jax.Array) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    _check_system(a, b)
    x = _solve(a, b)
    return x, (a, x)


def _solve_backward(residuals: tuple[jax.Array, jax.Array], cotangent: jax.Array) -> tuple[jax.Array, jax.Array]:
    # x = a⁻¹ b:  b̄ = a⁻ᵀ x̄,  ā = −b̄ xᵀ
    a, x = residuals
    grad_b = _solve(jnp.swapaxes(a, -1, -2), cotangent)
    grad_a = -jnp.outer(grad_b, x) if x.ndim == 1 else -grad_b @ x.T
    return grad_a, grad_b


solve.defvjp(_solve_forward, _solve_backward)


@jax.custom_batching.sequential_vmap
def pinv(a: jax.Array) -> jax.Array:
    """Moore–Penrose pseudo-inverse of one matrix; batches as a loop (see the module). Not differentiable in ``a``.

    Example:
        >>> import jax.numpy as jnp
        >>> pinv(jnp.array([[2.0], [0.0]])).tolist()
        [[0.5, 0.0]]
    """
    return jnp.linalg.pinv(a)
