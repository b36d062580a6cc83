"""Outer gradients of a bilevel problem: implicit differentiation (Neumann series, conjugate gradient) and unrolling.

The problem is  max_φ J_o(θ*(φ), φ)  with  θ*(φ) = argmax_θ f(θ, φ). At a stationary point of the
inner objective (∇_θ f = 0, H = ∇²_θ f negative definite) the implicit function theorem gives

    dJ_o/dφ = ∂_φ J_o + (∂²f/∂φ∂θ) p,     p = (−H)⁻¹ ∇_θ J_o,

and the mixed term is one vector–Jacobian product, ∂_φ ⟨∇_θ f(θ, φ), p⟩ with p held fixed.
Only Hessian-vector products H v = ∂_ε ∇_θ f(θ + ε v, φ) (``jax.jvp`` of ``jax.grad``,
forward over reverse) are formed, never H itself:

* Neumann series: (−H)⁻¹ = α Σ_j (I + αH)^j for 0 < α < 2/λ_max(−H);
  v_0 = g, v_{j+1} = v_j + α H v_j, p ≈ α Σ_{j=0}^{n} v_j (n = ``terms``). n = 0 is the
  first-order approximation p = α g. With α the inner learning rate, n terms equal n steps
  of differentiating through the inner updates at the fixed point.
* Conjugate gradient on (−H + δI) p = g, ``iterations`` fixed steps (exact after dim(θ)
  steps in exact arithmetic when −H is positive definite).
* Unrolled differentiation: the gradient of J_o(θ_K(φ)) through K inner steps
  θ_{k+1} = θ_k + α ∇_θ f(θ_k, φ) from a θ_0 held fixed.

Each function takes pytrees for θ and φ and is jittable and vmappable.

References:
    Gupta et al., "Behavior Alignment via Reward Function Optimization", NeurIPS 2023 (the
    Neumann approximation of the implicit gradient for reward blends).
    Lorraine, Vicol and Duvenaud, "Optimizing Millions of Hyperparameters by Implicit
    Differentiation", AISTATS 2020 (Neumann series of the inverse Hessian).
    Rajeswaran, Finn, Kakade and Levine, "Meta-Learning with Implicit Gradients", NeurIPS 2019
    (conjugate gradient on Hessian-vector products).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import jax
import jax.numpy as jnp

Objective = Callable[[Any, Any], jax.Array]  # (θ, φ) -> scalar
Hypergradient = Literal["neumann", "cg", "unrolled"]
HYPERGRADIENTS: tuple[str, ...] = ("neumann", "cg", "unrolled")


def _tree_add(x: Any, y: Any, scale: float | jax.Array = 1.0) -> Any:
    return jax.tree.map(lambda a, b: a + scale * b, x, y)


def _tree_dot(x: Any, y: Any) -> jax.Array:
    return sum((jnp.vdot(a, b) for a, b in zip(jax.tree.leaves(x), jax.tree.leaves(y), strict=True)), jnp.zeros(()))


def hessian_vector_product(objective: Objective, theta: Any, phi: Any, vector: Any) -> Any:
    """H v with H = ∇²_θ f(θ, φ): forward-mode differentiation of the reverse-mode gradient (no Hessian is formed).

    Example:
        >>> import jax.numpy as jnp
        >>> f = lambda theta, phi: -0.5 * jnp.sum(phi * theta**2)
        >>> hessian_vector_product(f, jnp.ones(2), jnp.array([1.0, 3.0]), jnp.ones(2)).tolist()
        [-1.0, -3.0]
    """
    return jax.jvp(lambda t: jax.grad(objective)(t, phi), (theta,), (vector,))[1]


def neumann_inverse_hvp(objective: Objective, theta: Any, phi: Any, vector: Any, *, terms: int, step: float) -> Any:
    """p ≈ (−H)⁻¹ v by the Neumann series α Σ_{j=0}^{terms} (I + αH)^j v (H = ∇²_θ f, negative definite).

    Args:
        objective: the inner objective f(θ, φ), maximised over θ.
        theta: the inner solution θ (a pytree).
        phi: the outer parameters φ.
        vector: v, a pytree shaped like ``theta``.
        terms: n ≥ 0, the number of Hessian-vector products (static).
        step: α > 0; the series converges when α < 2/λ_max(−H).

    Returns:
        p, shaped like ``theta``.

    Example:
        >>> import jax.numpy as jnp
        >>> f = lambda theta, phi: -0.5 * jnp.sum(theta**2)  # H = −I: (−H)⁻¹ v = v
        >>> neumann_inverse_hvp(f, jnp.zeros(2), None, jnp.array([1.0, 2.0]), terms=40, step=0.5).round(4).tolist()
        [1.0, 2.0]
    """
    if int(terms) < 0:
        raise ValueError(f"terms: expected an integer >= 0, got {terms!r}")

    def body(carry: tuple[Any, Any], _: None) -> tuple[tuple[Any, Any], None]:
        term, total = carry
        term = _tree_add(term, hessian_vector_product(objective, theta, phi, term), step)
        return (term, _tree_add(total, term)), None

    (_, total), _ = jax.lax.scan(body, (vector, vector), None, length=int(terms))
    return jax.tree.map(lambda x: step * x, total)


def conjugate_gradient_inverse_hvp(
    objective: Objective, theta: Any, phi: Any, vector: Any, *, iterations: int, damping: float = 0.0
) -> Any:
    """p ≈ (−H + δI)⁻¹ v by ``iterations`` steps of conjugate gradient on Hessian-vector products.

    Fixed-length (``lax.scan``, no early stop), so it traces once and vmaps; a step whose
    curvature pᵀ(−H + δI)p is not positive leaves the iterate where it is.

    Example:
        >>> import jax.numpy as jnp
        >>> f = lambda theta, phi: -0.5 * jnp.sum(jnp.array([1.0, 4.0]) * theta**2)
        >>> conjugate_gradient_inverse_hvp(f, jnp.zeros(2), None, jnp.array([1.0, 2.0]), iterations=2).round(4).tolist()
        [1.0, 0.5]
    """
    if int(iterations) < 1:
        raise ValueError(f"iterations: expected an integer >= 1, got {iterations!r}")

    def matvec(v: Any) -> Any:
        hv = hessian_vector_product(objective, theta, phi, v)
        return jax.tree.map(lambda a, b: -a + damping * b, hv, v)

    def body(carry: tuple[Any, Any, Any, jax.Array], _: None) -> tuple[tuple[Any, Any, Any, jax.Array], None]:
        x, residual, direction, residual_norm = carry
        product = matvec(direction)
        curvature = _tree_dot(direction, product)
        usable = (curvature > 0) & (residual_norm > 0)
        alpha = jnp.where(usable, residual_norm / jnp.where(usable, curvature, 1.0), 0.0)
        x = _tree_add(x, direction, alpha)
        residual = _tree_add(residual, product, -alpha)
        new_norm = _tree_dot(residual, residual)
        beta = jnp.where(usable, new_norm / jnp.where(residual_norm > 0, residual_norm, 1.0), 0.0)
        direction = _tree_add(residual, direction, beta)
        return (x, residual, direction, new_norm), None

    zeros = jax.tree.map(jnp.zeros_like, vector)
    start = (zeros, vector, vector, _tree_dot(vector, vector))
    (x, _, _, _), _ = jax.lax.scan(body, start, None, length=int(iterations))
    return x


def implicit_gradient(
    inner_objective: Objective,
    outer_objective: Objective,
    theta: Any,
    phi: Any,
    *,
    method: Literal["neumann", "cg"] = "neumann",
    terms: int = 10,
    step: float = 0.1,
    iterations: int = 10,
    damping: float = 0.0,
) -> Any:
    """dJ_o/dφ = ∂_φ J_o + ∂_φ ⟨∇_θ f(θ, φ), p⟩, p = (−∇²_θ f)⁻¹ ∇_θ J_o (implicit function theorem).

    ``theta`` should be (close to) a maximiser of ``inner_objective`` for this ``phi``.

    Args:
        inner_objective: f(θ, φ), maximised by the inner learner.
        outer_objective: J_o(θ, φ), maximised by the outer loop (BARFI: the primary return, which
            does not depend on φ directly).
        theta: the inner solution.
        phi: the outer parameters.
        method: ``"neumann"`` (``terms``, ``step``) or ``"cg"`` (``iterations``, ``damping``).
        terms: Neumann terms n.
        step: Neumann step α.
        iterations: conjugate-gradient steps.
        damping: δ added to −H for conjugate gradient.

    Returns:
        The gradient, shaped like ``phi``.

    Raises:
        ValueError: an unknown ``method``.

    Example:
        >>> import jax.numpy as jnp
        >>> # θ*(φ) = φ (f = −(θ − φ)²/2), J_o = −(θ − 2)²/2: dJ_o/dφ = 2 − φ
        >>> f = lambda theta, phi: -0.5 * (theta - phi) ** 2
        >>> J = lambda theta, phi: -0.5 * (theta - 2.0) ** 2
        >>> round(float(implicit_gradient(f, J, 0.5, 0.5, method="cg", iterations=1)), 4)
        1.5
    """
    if method not in ("neumann", "cg"):
        raise ValueError(f"method: expected 'neumann' or 'cg' (unrolled gradients: unrolled_gradient), got {method!r}")
    outer_theta, outer_phi = jax.grad(outer_objective, argnums=(0, 1))(theta, phi)
    if method == "neumann":
        p = neumann_inverse_hvp(inner_objective, theta, phi, outer_theta, terms=terms, step=step)
    else:
        p = conjugate_gradient_inverse_hvp(
            inner_objective, theta, phi, outer_theta, iterations=iterations, damping=damping
        )
    p = jax.lax.stop_gradient(p)
    mixed = jax.grad(lambda f_phi: _tree_dot(jax.grad(inner_objective)(theta, f_phi), p))(phi)
    return _tree_add(outer_phi, mixed)


def unrolled_gradient(
    inner_objective: Objective, outer_objective: Objective, theta: Any, phi: Any, *, steps: int, learning_rate: float
) -> Any:
    """dJ_o(θ_K(φ), φ)/dφ through K inner gradient-ascent steps θ_{k+1} = θ_k + α ∇_θ f(θ_k, φ) from θ_0 = ``theta``.

    Example:
        >>> f = lambda theta, phi: -0.5 * (theta - phi) ** 2
        >>> J = lambda theta, phi: -0.5 * (theta - 2.0) ** 2
        >>> round(float(unrolled_gradient(f, J, 0.5, 0.5, steps=50, learning_rate=0.5)), 4)  # θ_K → φ
        1.5
    """
    if int(steps) < 1:
        raise ValueError(f"steps: expected an integer >= 1, got {steps!r}")
    start = jax.lax.stop_gradient(theta)

    def unrolled(outer_phi: Any) -> jax.Array:
        def body(t: Any, _: None) -> tuple[Any, None]:
            return _tree_add(t, jax.grad(inner_objective)(t, outer_phi), learning_rate), None

        final, _ = jax.lax.scan(body, start, None, length=int(steps))
        return outer_objective(final, outer_phi)

    return jax.grad(unrolled)(phi)
