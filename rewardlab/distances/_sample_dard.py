"""Sample-based DARD: the dynamics-aware canonicalisation estimated with a transition sampler.

For a coverage transition (s, a, s') and M samples a_j ~ D_A, u_j ~ T(s, a_j), v_j ~ T(s', a_j):

    Ĉ(R)(s,a,s') = R(s,a,s') + (1/M) Σ_j [γ R(s', a_j, v_j) − R(s, a_j, u_j) − γ R(u_j, a_j, v_j)],

the Monte Carlo form of Wulfe et al.'s C_T. Unlike EPIC it only evaluates R on transitions the
dynamics can produce (and one-step-apart pairs), so it needs a sampler of the dynamics: a pure
JAX ``dynamics(key, obs [K], acts [K]) -> next_obs [K]`` (a learned model, a differentiable
simulator, or the tabular ``T``). Each estimate evaluates R on N + 3·N·M inputs and draws
2·N·M next states, in one jitted program for both rewards (the same draws for each).

References:
    Wulfe et al., "Dynamics-Aware Comparison of Learned Reward Functions", ICLR 2022.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rewardlab._types import Array, Obs, PureReward, RewardFn, Transitions, batch_size
from rewardlab.distances._common import check_canonical, check_sample_settings, check_transitions
from rewardlab.distances._sample import SampleDistance, confidence_interval, pure_reward
from rewardlab.distances._tabular import pearson_distance

Dynamics = Callable[[jax.Array, Any, Any], Any]  # (key, obs [K], acts [K]) -> next_obs [K]

_CHUNK_TRANSITIONS = 1 << 16


def _dard_canonical(
    applies: tuple[PureReward, ...],
    dynamics: Dynamics,
    chunk: int,
    key: jax.Array,
    discount: Array,
    obs: Obs,
    acts: Array,
    next_obs: Obs,
    dones: Array,
    sample_acts: Array,
) -> jax.Array:
    """Ĉ(R) of every reward in ``applies`` on the same dynamics draws, ``[len(applies), N]``."""
    num_samples = batch_size(sample_acts)
    num = batch_size(obs)
    num_chunks = -(-num // chunk)
    pad = num_chunks * chunk - num

    def padded(x: jax.Array) -> jax.Array:
        x = jnp.concatenate([x, jnp.repeat(x[:1], pad, axis=0)]) if pad else x
        return x.reshape((num_chunks, chunk) + x.shape[1:])

    states, successors = jax.tree.map(padded, obs), jax.tree.map(padded, next_obs)
    keys = jax.random.split(key, num_chunks)
    no_dones = jnp.zeros(chunk * num_samples, bool)
    grid_acts = jax.tree.map(lambda x: jnp.tile(x, (chunk,) + (1,) * (x.ndim - 1)), sample_acts)
    size = chunk * num_samples

    def chunk_terms(args: tuple[jax.Array, Obs, Obs]) -> jax.Array:
        chunk_key, s, t = args
        grid_s = jax.tree.map(lambda x: jnp.repeat(x, num_samples, axis=0), s)
        grid_t = jax.tree.map(lambda x: jnp.repeat(x, num_samples, axis=0), t)
        # one dynamics call for u_j ~ T(s, a_j) and v_j ~ T(s', a_j) (one draw to compile)
        both = dynamics(
            chunk_key,
            jax.tree.map(lambda x, y: jnp.concatenate([x, y]), grid_s, grid_t),
            jax.tree.map(lambda x: jnp.concatenate([x, x]), grid_acts),
        )
        u = jax.tree.map(lambda x: x[:size], both)
        v = jax.tree.map(lambda x: x[size:], both)
        terms = [
            discount * apply(grid_t, grid_acts, v, no_dones)
            - apply(grid_s, grid_acts, u, no_dones)
            - discount * apply(u, grid_acts, v, no_dones)
            for apply in applies
        ]
        return jnp.stack(terms).reshape(len(applies), chunk, num_samples).mean(axis=2)

    means = jax.lax.map(chunk_terms, (keys, states, successors))  # [chunks, R, chunk]
    means = jnp.moveaxis(means, 1, 0).reshape(len(applies), -1)[:, :num]
    return jnp.stack([apply(obs, acts, next_obs, dones) for apply in applies]) + means


def sample_dard_distance(
    reward_a: RewardFn,
    reward_b: RewardFn,
    transitions: Transitions,
    discount: float,
    dynamics: Dynamics,
    *,
    num_transitions: int = 1024,
    num_samples: int = 256,
    num_seeds: int = 5,
    seed: int = 0,
    confidence: float = 0.95,
) -> SampleDistance:
    """Sample-based DARD distance D = sqrt((1 − ρ)/2) of the Monte Carlo DARD canonical rewards.

    For each seed: N coverage transitions drawn from ``transitions``, M actions a_j from its
    actions (D_A), successors drawn with ``dynamics`` (the same draws for both rewards).

    Args:
        reward_a: a ``RewardFn`` with a pure JAX function (``pure_fn``): ``as_reward_fn(model, params)``
            or ``as_reward_fn(FunctionReward(fn))``.
        reward_b: same.
        transitions: coverage data whose (s, a, s') follow the dynamics.
        discount: γ.
        dynamics: pure JAX ``(key, obs [K], acts [K]) -> next_obs [K]`` sampler of T.
        num_transitions: as in :func:`sample_epic_distance`.
        num_samples: as in :func:`sample_epic_distance`.
        num_seeds: as in :func:`sample_epic_distance`.
        seed: as in :func:`sample_epic_distance`.
        confidence: as in :func:`sample_epic_distance`.

    Returns:
        :class:`SampleDistance`.

    Raises:
        ValueError: a host-only ``RewardFn`` (DARD's grid needs the dynamics inside the program), bad counts,
            γ or ``confidence`` out of range; ``rewardlab.NonFiniteError`` for NaN or ±inf in the
            transitions or a reward's values (named after the argument).
        TypeError: non-numeric transitions or settings.

    References:
        Wulfe et al., "Dynamics-Aware Comparison of Learned Reward Functions", ICLR 2022.

    Example:
        >>> import numpy as np
        >>> from rewardlab import Transitions
        >>> from rewardlab.rewards import FunctionReward, as_reward_fn
        >>> step = lambda key, s, a: s + a + 0.1 * jax.random.normal(key, s.shape)  # s' = s + a + noise
        >>> rng = np.random.default_rng(0)
        >>> s, a = rng.normal(size=(512, 1)).astype(np.float32), rng.uniform(-1, 1, (512, 1)).astype(np.float32)
        >>> data = Transitions(s, a, s + a, np.zeros(512, bool), np.zeros(512, bool), np.zeros(512, np.float32))
        >>> reward = as_reward_fn(FunctionReward(lambda s, a, t, d: -jnp.abs(t[:, 0])))
        >>> shaped = as_reward_fn(FunctionReward(lambda s, a, t, d: -jnp.abs(t[:, 0]) + 0.9 * t[:, 0] ** 2 - s[:, 0] ** 2))
        >>> result = sample_dard_distance(reward, shaped, data, 0.9, step, num_transitions=128, num_samples=64, num_seeds=2)
        >>> result.mean < 0.05
        True
    """
    size = check_transitions(transitions)
    check_sample_settings(
        discount, seed, confidence, num_transitions=num_transitions, num_samples=num_samples, num_seeds=num_seeds
    )
    if not callable(dynamics):
        raise ValueError(
            f"dynamics: expected a pure JAX callable (key, obs, acts) -> next_obs, got {type(dynamics).__name__}"
        )
    applies = []
    for name, reward in (("reward_a", reward_a), ("reward_b", reward_b)):
        apply = pure_reward(reward)
        if apply is None:
            raise ValueError(
                f"{name}: sample-based DARD needs a pure JAX reward (as_reward_fn of a reward model, with pure_fn), "
                f"got a host-only {type(reward).__name__}"
            )
        applies.append(apply)
    chunk = max(1, min(int(num_transitions), _CHUNK_TRANSITIONS // int(num_samples)))
    jitted = jax.jit(_dard_canonical, static_argnums=(0, 1, 2))
    acts = np.asarray(transitions.acts)
    per_seed_values: list[float] = []
    for k in range(int(num_seeds)):
        rng = np.random.default_rng(seed + k)
        index = rng.choice(size, int(num_transitions), replace=num_transitions > size)
        batch = (
            jax.tree.map(lambda x: jnp.asarray(np.asarray(x)[index]), transitions.obs),  # noqa: B023 - tree.map calls it at once
            jnp.asarray(acts[index]),
            jax.tree.map(lambda x: jnp.asarray(np.asarray(x)[index]), transitions.next_obs),  # noqa: B023 - tree.map calls it at once
            jnp.asarray(np.asarray(transitions.dones, bool)[index]),
            jnp.asarray(acts[rng.integers(0, size, int(num_samples))]),
        )
        key = jax.random.key(seed + k)
        # the partitionable threefry variant makes XLA CPU compile long for every random draw
        with jax.threefry_partitionable(False):
            canonical = jitted(tuple(applies), dynamics, chunk, key, jnp.float32(discount), *batch)
        check_canonical("reward_a", canonical[0])
        check_canonical("reward_b", canonical[1])
        per_seed_values.append(float(pearson_distance(canonical[0], canonical[1])))
    per_seed = np.asarray(per_seed_values)
    mean, low, high = confidence_interval(per_seed, confidence)
    return SampleDistance(mean, low, high, per_seed)
