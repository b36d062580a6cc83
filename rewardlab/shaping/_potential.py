"""Potential-based reward shaping F = γ Φ(s') − Φ(s), with Φ(terminal) = 0.

For any potential Φ the shaped reward r' = r + γ(1 − d)Φ(s') − Φ(s) keeps the optimal
policies of r (Ng et al. 1999); setting Φ = 0 at terminal states (d = 1) makes the shaped
discounted return telescope: Σ_t γ^t r'_t = Σ_t γ^t r_t − Φ(s_0) for every episode that
ends in a terminal state. Time-limit truncations are not terminal: pass ``terminal`` (not
``done``) when the two differ.

References:
    Ng, Harada & Russell, "Policy invariance under reward transformations: theory and
    application to reward shaping", ICML 1999.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rewardlab._types import RewardFn

Array = Any


def potential_shaping(r_t: Array, potential_tm1: Array, potential_t: Array, discount_t: Array) -> jax.Array:
    """r'_t = r_t + γ_t Φ(s_t) − Φ(s_{t−1}) for one transition (rlax naming; vmap for batches).

    ``discount_t`` = γ·(1 − terminal_t) puts Φ(terminal) = 0.

    Args:
        r_t: reward of the transition s_{t−1} → s_t.
        potential_tm1: Φ(s_{t−1}).
        potential_t: Φ(s_t).
        discount_t: γ, or 0 when s_t is terminal.

    Example:
        >>> float(potential_shaping(1.0, 2.0, 3.0, 0.5)), float(potential_shaping(1.0, 2.0, 3.0, 0.0))
        (0.5, -1.0)
    """
    return jnp.asarray(r_t) + discount_t * jnp.asarray(potential_t) - jnp.asarray(potential_tm1)


def shaped_rewards(rewards: Array, potentials: Array, discount: float, terminated: bool) -> jax.Array:
    """Shape one trajectory: r'_t = r_t + γ Φ(s_{t+1}) − Φ(s_t), Φ(s_T) = 0 if it is terminal.

    Args:
        rewards: ``[T]`` r_0 … r_{T−1}.
        potentials: ``[T + 1]`` Φ(s_0) … Φ(s_T).
        discount: γ.
        terminated: s_T is terminal (its potential is replaced by 0).

    Returns:
        ``[T]`` shaped rewards; with ``terminated`` their discounted sum is Σ γ^t r_t − Φ(s_0).

    Example:
        >>> r = shaped_rewards(jnp.array([0.0, 1.0]), jnp.array([5.0, 2.0, 7.0]), 0.5, True)
        >>> r.tolist(), float(r[0] + 0.5 * r[1])  # 0.5 · 1 − Φ(s0) = −4.5
        ([-4.0, -1.0], -4.5)
    """
    rewards = jnp.asarray(rewards)
    potentials = jnp.asarray(potentials, rewards.dtype)
    if potentials.shape != (rewards.shape[0] + 1,):
        raise ValueError(f"potentials: expected shape [T + 1]=({rewards.shape[0] + 1},), got {potentials.shape}")
    potentials = potentials.at[-1].multiply(jnp.where(terminated, 0.0, 1.0))
    return jax.vmap(potential_shaping, (0, 0, 0, None))(rewards, potentials[:-1], potentials[1:], discount)


def discounted_return(rewards: Array, discount: float) -> jax.Array:
    """Σ_t γ^t r_t of one trajectory ``[T]``."""
    rewards = jnp.asarray(rewards)
    return jnp.sum(rewards * discount ** jnp.arange(rewards.shape[0], dtype=rewards.dtype))


class PotentialShapedRewardFn:
    """A ``RewardFn`` r' = r + γ(1 − done)Φ(s') − Φ(s) from a reward and a potential.

    Args:
        reward_fn: the base ``RewardFn`` (None for the shaping term F alone).
        potential: ``Φ(obs [N, ...]) -> [N]`` (NumPy or JAX), e.g. :func:`rewardlab.rl.critic_potential`.
        discount: γ.

    The ``dones`` of the ``RewardFn`` contract include time-limit truncations, where Φ(s')
    is also set to 0 (as the learned shaping of :class:`rewardlab.rewards.RewardModel` does);
    use fixed-horizon or terminal-only episodes when the telescoping identity must hold exactly.

    Example:
        >>> import numpy as np
        >>> fn = PotentialShapedRewardFn(lambda o, a, n, d: np.ones(2), lambda s: s[:, 0], 0.9)
        >>> fn(np.array([[1.0], [1.0]]), None, np.array([[2.0], [2.0]]), np.array([False, True])).tolist()
        [1.7999999523162842, 0.0]
    """

    def __init__(self, reward_fn: RewardFn | None, potential: Callable[[Any], Any], discount: float) -> None:
        if not callable(potential):
            raise ValueError(f"potential: expected a callable obs -> [N], got {type(potential).__name__}")
        if not 0.0 <= discount <= 1.0:
            raise ValueError(f"discount: expected a value in [0, 1], got {discount!r}")
        self.reward_fn = reward_fn
        self.potential = potential
        self.discount = float(discount)

    def __call__(self, obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
        dones = np.asarray(dones, bool)
        phi = np.asarray(self.potential(obs), np.float32).reshape(-1)
        phi_next = np.asarray(self.potential(next_obs), np.float32).reshape(-1)
        if phi.shape != dones.shape or phi_next.shape != dones.shape:
            raise ValueError(f"potential: expected [N]={dones.shape} values, got {phi.shape} and {phi_next.shape}")
        base = 0.0 if self.reward_fn is None else np.asarray(self.reward_fn(obs, acts, next_obs, dones), np.float32)
        return (base + np.float32(self.discount) * np.where(dones, 0.0, phi_next) - phi).astype(np.float32)


def model_potential(model: Any, params: Any) -> Callable[[Any], np.ndarray]:
    """Φ(s) = h(s), the learned potential of a :class:`rewardlab.rewards.RewardModel` (ensemble mean)."""
    return lambda obs: np.asarray(jnp.mean(model.potential(params, obs), axis=0))
