"""Functional JAX MountainCar and CartPole with a primary and a good or bad auxiliary reward (BARFI's control settings).

The dynamics are pure JAX functions with gymnasium ``FuncEnv``'s method names (``initial``,
``transition``, ``observation``, ``terminal``), so a whole learner jits and vmaps over them.
CartPole is gymnasium's own ``CartPoleFunctional`` (``gymnasium.envs.phys2d``); gymnasium has
no functional MountainCar, so :class:`MountainCarFunctional` re-writes ``MountainCar-v0``'s
dynamics (three actions: push left, none, right).

Each task pairs the dynamics with ``components(obs, action, next_obs) -> (r_p, r_aux)`` and a
potential h(obs) for potential-based shaping:

* MountainCar: r_p = 1 on reaching the flag (sparse; the episode ends there). The heuristic
  rewards speed, h = c·|v|/v_max: with the ``"good"`` sign (+) it pays for pumping energy,
  which is how the car gets up the hill; with the ``"bad"`` sign (−) it pays for standing still.
* CartPole: r_p = 1 for every step the pole is up (gymnasium's reward). The heuristic is about
  the pole's angle, h = c·(1 − 2|θ|/θ_max): ``"good"`` pays for an upright pole; ``"bad"``
  (the sign flipped, c = 2 by default) makes every upright step cost more than the primary
  reward pays, so the naive sum r_p + r_aux is maximised by dropping the pole at once.

r_aux(s, a, s') = h(s') with h = 0 on terminal states.

References:
    Gupta, Chandak, Jordan, Thomas and da Silva, "Behavior Alignment via Reward Function
    Optimization", NeurIPS 2023 (MountainCar and CartPole with good and bad heuristics).
    Moore, "Efficient Memory-based Learning for Robot Control", PhD thesis, 1990 (MountainCar).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

Components = Callable[[jax.Array, jax.Array, jax.Array], tuple[jax.Array, jax.Array]]


class MountainCarFunctional:
    """``MountainCar-v0``'s dynamics as pure JAX functions; observations scaled to about [−1, 1].

    The state is (position, velocity); the observation is ((position + 0.3)/0.9, velocity/0.07),
    so a linear policy sees both on the same scale. Terminal: position ≥ 0.5.

    Example:
        >>> import jax
        >>> env = MountainCarFunctional()
        >>> state = env.initial(jax.random.key(0))
        >>> env.observation(env.transition(state, 2, None), None).shape
        (2,)
    """

    min_position = -1.2
    max_position = 0.6
    max_speed = 0.07
    goal_position = 0.5
    force = 0.001
    gravity = 0.0025

    def initial(self, rng: jax.Array) -> jax.Array:
        """Position uniform in [−0.6, −0.4), velocity 0."""
        return jnp.array([jax.random.uniform(rng, minval=-0.6, maxval=-0.4), 0.0], jnp.float32)

    def transition(self, state: jax.Array, action: Any, rng: Any = None) -> jax.Array:
        """v ← clip(v + (a − 1)·force − cos(3x)·gravity); x ← clip(x + v); v = 0 at the left wall."""
        del rng
        position, velocity = state[0], state[1]
        velocity = jnp.clip(
            velocity + (jnp.asarray(action) - 1) * self.force - jnp.cos(3 * position) * self.gravity,
            -self.max_speed,
            self.max_speed,
        )
        position = jnp.clip(position + velocity, self.min_position, self.max_position)
        velocity = jnp.where((position <= self.min_position) & (velocity < 0), 0.0, velocity)
        return jnp.stack([position, velocity]).astype(jnp.float32)

    def observation(self, state: jax.Array, rng: Any = None) -> jax.Array:
        """((x + 0.3)/0.9, v/0.07)."""
        del rng
        return jnp.stack([(state[0] + 0.3) / 0.9, state[1] / self.max_speed])

    def terminal(self, state: jax.Array, rng: Any = None) -> jax.Array:
        """x ≥ 0.5 (the flag)."""
        del rng
        return state[0] >= self.goal_position


class ControlTask(NamedTuple):
    """A functional environment with its two reward components and the shaping potential."""

    env: Any  # FuncEnv-like: initial, transition, observation, terminal
    num_actions: int
    components: Components  # (obs, action, next_obs) -> (r_p, r_aux)
    potential: Callable[[jax.Array], jax.Array]  # h(obs), 0 on terminal observations
    discount: float


class _MountainCarRewards:
    # hashable module-level callables, so a jitted learner compiles once per task
    def __init__(self, sign: float, scale: float) -> None:
        self.sign, self.scale = sign, scale

    def terminal(self, obs: jax.Array) -> jax.Array:
        return obs[0] * 0.9 - 0.3 >= MountainCarFunctional.goal_position

    def potential(self, obs: jax.Array) -> jax.Array:
        return jnp.where(self.terminal(obs), 0.0, self.sign * self.scale * jnp.abs(obs[1]))

    def __call__(self, obs: jax.Array, action: jax.Array, next_obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        return self.terminal(next_obs).astype(jnp.float32), self.potential(next_obs)


class _CartPoleRewards:
    angle_limit = 12 * 2 * 3.141592653589793 / 360
    position_limit = 2.4

    def __init__(self, sign: float, scale: float) -> None:
        self.sign, self.scale = sign, scale

    def terminal(self, obs: jax.Array) -> jax.Array:
        return (jnp.abs(obs[0]) > self.position_limit) | (jnp.abs(obs[2]) > self.angle_limit)

    def potential(self, obs: jax.Array) -> jax.Array:
        upright = 1.0 - 2.0 * jnp.abs(obs[2]) / self.angle_limit
        return jnp.where(self.terminal(obs), 0.0, self.sign * self.scale * upright)

    def __call__(self, obs: jax.Array, action: jax.Array, next_obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        return 1.0 - self.terminal(next_obs).astype(jnp.float32), self.potential(next_obs)


def mountain_car_task(auxiliary: str = "bad", *, scale: float = 1.0, discount: float = 0.99) -> ControlTask:
    """MountainCar with the speed heuristic h = ±c·|v|/v_max (``"good"``: +, ``"bad"``: −).

    Raises:
        ValueError: an unknown ``auxiliary`` or a negative ``scale``.

    Example:
        >>> import jax.numpy as jnp
        >>> task = mountain_car_task("bad")
        >>> [round(float(x), 3) for x in task.components(jnp.zeros(2), 0, jnp.array([0.0, 1.0]))]
        [0.0, -1.0]
    """
    sign = _sign(auxiliary, scale)
    return ControlTask(MountainCarFunctional(), 3, *_pair(_MountainCarRewards(sign, scale)), discount)


def cart_pole_task(auxiliary: str = "bad", *, scale: float | None = None, discount: float = 0.99) -> ControlTask:
    """CartPole with the pole-angle heuristic h = ±c·(1 − 2|θ|/θ_max) (``"good"``: +, ``"bad"``: −).

    Args:
        auxiliary: ``"good"`` or ``"bad"``.
        scale: c; None for 0.5 with the good sign and 2 with the bad one (so that a bad upright
            step costs more than the primary reward pays).
        discount: γ.

    Raises:
        ValueError: an unknown ``auxiliary`` or a negative ``scale``.

    Example:
        >>> import jax.numpy as jnp
        >>> task = cart_pole_task("bad")
        >>> [round(float(x), 3) for x in task.components(jnp.zeros(4), 0, jnp.zeros(4))]
        [1.0, -2.0]
    """
    from gymnasium.envs.phys2d.cartpole import CartPoleFunctional

    c = (0.5 if auxiliary == "good" else 2.0) if scale is None else scale
    sign = _sign(auxiliary, c)
    return ControlTask(CartPoleFunctional(), 2, *_pair(_CartPoleRewards(sign, c)), discount)


def _sign(auxiliary: str, scale: float) -> float:
    if auxiliary not in ("good", "bad"):
        raise ValueError(f"auxiliary: expected 'good' or 'bad', got {auxiliary!r}")
    if not scale >= 0:
        raise ValueError(f"scale: expected a number >= 0, got {scale!r}")
    return 1.0 if auxiliary == "good" else -1.0


def _pair(rewards: Any) -> tuple[Components, Callable[[jax.Array], jax.Array]]:
    return rewards, rewards.potential
