"""Sample-based EPIC (and L_p after canonicalisation) for rewards over continuous spaces.

The EPIC canonicalisation (Gleave et al. 2021) is estimated by Monte Carlo: with M samples
(a_j, s'_j) from the coverage distribution's action and state marginals,

    Ĉ(R)(s,a,s') = R(s,a,s') + γ (1/M) Σ_j R(s', a_j, s'_j) − (1/M) Σ_j R(s, a_j, s'_j),

evaluated on N coverage transitions (the constant −γ E[R(S,A,S')] is dropped: it changes
neither the Pearson correlation nor, after centring, the L_p distance). Every coverage
transition needs R on 2M combinations, so one estimate evaluates R on 2·N·M inputs. The
distance is repeated over seeds (independent draws of the N transitions and M samples) and
reported with a Student-t confidence interval over the seeds.

A reward that exposes its pure JAX function (``pure_fn()``: the adapter
:func:`rewardlab.rewards.as_reward_fn` of any reward model, e.g.
``as_reward_fn(model, params)`` or ``as_reward_fn(FunctionReward(fn))``) runs as one jitted
program (the 2·N·M evaluations become large batched matmuls); any other
:class:`rewardlab.RewardFn` is called on the host in chunks.

References:
    Gleave et al., "Quantifying Differences in Reward Functions", ICLR 2021 (sample-based
    EPIC: 4096 coverage transitions, 4096 canonicalisation samples).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rewardlab._types import Obs, PureReward, RewardFn, Transitions, batch_size
from rewardlab.distances._common import (
    check_canonical,
    check_discount,
    check_sample_settings,
    check_transitions,
    norm_order,
)
from rewardlab.distances._tabular import pearson_distance

Array = Any

_HOST_CHUNK_TRANSITIONS = 1 << 16
_DEVICE_CHUNK_TRANSITIONS = 1 << 17


class SampleDistance(NamedTuple):
    """A distance estimated over seeds, with a confidence interval."""

    mean: float  # mean over seeds
    low: float  # lower end of the confidence interval of the mean
    high: float  # upper end
    per_seed: np.ndarray  # [num_seeds] the estimate of every seed


def pure_reward(reward: RewardFn) -> PureReward | None:
    """The pure JAX function behind ``reward`` (its ``pure_fn()``), or None for a host-only ``RewardFn``.

    The adapter of :func:`rewardlab.rewards.as_reward_fn` exposes its model's reward, with
    its aggregation of the ensemble, as ``pure_fn()``; any other callable is host-only.

    Raises:
        ValueError: ``reward`` is not callable.
    """
    if not callable(reward):
        raise ValueError(
            f"reward: expected a RewardFn (e.g. rewardlab.rewards.as_reward_fn(model, params)), got {type(reward).__name__}"
        )
    pure_fn = getattr(reward, "pure_fn", None)
    return pure_fn() if callable(pure_fn) else None


def _repeat_grid(states: Any, acts: Array, next_obs: Any, xp: Any) -> tuple[Any, Any, Any]:
    """Inputs for R(x_i, a_j, s'_j) over all i < C, j < M, row-major in (i, j)."""
    num_samples = batch_size(acts)
    num_states = batch_size(states)
    grid_states = jax.tree.map(lambda x: xp.repeat(x, num_samples, axis=0), states)
    grid_acts = jax.tree.map(lambda x: xp.tile(x, (num_states,) + (1,) * (x.ndim - 1)), acts)
    grid_next = jax.tree.map(lambda x: xp.tile(x, (num_states,) + (1,) * (x.ndim - 1)), next_obs)
    return grid_states, grid_acts, grid_next


def _outgoing_means_device(
    apply: PureReward, states: Any, sample_acts: Any, sample_next_obs: Any, chunk_states: int
) -> jax.Array:
    """m(x) = (1/M) Σ_j R(x, a_j, s'_j) for every state x, as one jitted loop over state chunks."""
    num_states = batch_size(states)
    num_samples = batch_size(sample_acts)
    num_chunks = -(-num_states // chunk_states)
    pad = num_chunks * chunk_states - num_states
    padded = jax.tree.map(lambda x: jnp.concatenate([x, jnp.repeat(x[:1], pad, axis=0)]) if pad else x, states)
    chunks = jax.tree.map(lambda x: x.reshape((num_chunks, chunk_states) + x.shape[1:]), padded)
    dones = jnp.zeros(chunk_states * num_samples, bool)

    def chunk_means(state_chunk: Obs) -> jax.Array:
        grid = _repeat_grid(state_chunk, sample_acts, sample_next_obs, jnp)
        return apply(grid[0], grid[1], grid[2], dones).reshape(chunk_states, num_samples).mean(axis=1)

    return jax.lax.map(chunk_means, chunks).reshape(-1)[:num_states]


def _outgoing_means_host(reward_fn: RewardFn, states: Any, sample_acts: Any, sample_next_obs: Any) -> np.ndarray:
    num_states = batch_size(states)
    num_samples = batch_size(sample_acts)
    chunk = max(1, _HOST_CHUNK_TRANSITIONS // num_samples)
    means = np.empty(num_states, np.float64)
    for start in range(0, num_states, chunk):
        block = jax.tree.map(lambda x: np.asarray(x[start : start + chunk]), states)  # noqa: B023 - tree.map calls it at once
        size = batch_size(block)
        grid = _repeat_grid(block, sample_acts, sample_next_obs, np)
        rewards = np.asarray(reward_fn(grid[0], grid[1], grid[2], np.zeros(size * num_samples, bool)), np.float64)
        means[start : start + size] = rewards.reshape(size, num_samples).mean(axis=1)
    return means


def _canonical_device(
    apply: PureReward,
    chunk_states: int,
    discount: Array,
    obs: Obs,
    acts: Array,
    next_obs: Obs,
    dones: Array,
    sample_acts: Array,
    sample_next_obs: Obs,
) -> jax.Array:
    rewards = apply(obs, acts, next_obs, dones)
    num = batch_size(obs)
    states = jax.tree.map(lambda x, y: jnp.concatenate([x, y]), obs, next_obs)
    means = _outgoing_means_device(apply, states, sample_acts, sample_next_obs, chunk_states)
    return rewards + discount * means[num:] - means[:num]


def canonicalizer(reward: RewardFn) -> Callable[..., np.ndarray]:
    """A reusable ``f(obs, acts, next_obs, dones, sample_acts, sample_next_obs, discount) -> [N]`` for ``reward``.

    Pure rewards compile once (per shape) into one program; host ``RewardFn``s run in chunks.
    """
    apply = pure_reward(reward)
    if apply is None:

        def host(
            obs: Obs,
            acts: Array,
            next_obs: Obs,
            dones: Array,
            sample_acts: Array,
            sample_next_obs: Obs,
            discount: Array,
        ) -> np.ndarray:
            states = jax.tree.map(lambda x, y: np.concatenate([np.asarray(x), np.asarray(y)]), obs, next_obs)
            means = _outgoing_means_host(reward, states, sample_acts, sample_next_obs)
            rewards = np.asarray(reward(obs, acts, next_obs, dones), np.float64)
            num = batch_size(obs)
            return rewards + discount * means[num:] - means[:num]

        return host
    jitted = jax.jit(_canonical_device, static_argnums=(0, 1))

    def device(
        obs: Obs, acts: Array, next_obs: Obs, dones: Array, sample_acts: Array, sample_next_obs: Obs, discount: Array
    ) -> np.ndarray:
        num_samples = batch_size(sample_acts)
        chunk_states = max(1, min(batch_size(obs) * 2, _DEVICE_CHUNK_TRANSITIONS // num_samples))
        as_jax = functools.partial(jax.tree.map, jnp.asarray)
        canonical = jitted(
            apply,
            chunk_states,
            jnp.float32(discount),
            as_jax(obs),
            as_jax(acts),
            as_jax(next_obs),
            jnp.asarray(dones),
            as_jax(sample_acts),
            as_jax(sample_next_obs),
        )
        return np.asarray(canonical)

    return device


def sample_epic_canonicalize(
    reward: RewardFn,
    obs: Any,
    acts: Array,
    next_obs: Any,
    dones: Array,
    sample_acts: Array,
    sample_next_obs: Any,
    discount: float,
) -> np.ndarray:
    """Monte Carlo EPIC canonical reward Ĉ(R) on N transitions, ``[N]`` (module docstring).

    Args:
        reward: a ``RewardFn``; one with ``pure_fn`` (``as_reward_fn``) runs jitted.
        obs: ``[N, *obs_shape]`` s of the transitions to canonicalise.
        acts: ``[N, *act_shape]`` a.
        next_obs: ``[N, *obs_shape]`` s'.
        dones: ``[N]`` done flags.
        sample_acts: ``[M, *act_shape]`` actions a_j ~ D_A.
        sample_next_obs: ``[M, *obs_shape]`` states s'_j ~ D_S.
        discount: γ.

    Example:
        >>> import numpy as np
        >>> from rewardlab.rewards import FunctionReward, as_reward_fn
        >>> potential = lambda s: s[:, 0] ** 2
        >>> shaped = as_reward_fn(FunctionReward(lambda s, a, t, d: a[:, 0] + 0.9 * potential(t) - potential(s)))
        >>> plain = as_reward_fn(FunctionReward(lambda s, a, t, d: a[:, 0]))
        >>> rng = np.random.default_rng(0)
        >>> s, a, t = rng.normal(size=(64, 1)), rng.normal(size=(64, 1)), rng.normal(size=(64, 1))
        >>> args = (s, a, t, np.zeros(64, bool), rng.normal(size=(32, 1)), rng.normal(size=(32, 1)), 0.9)
        >>> difference = sample_epic_canonicalize(plain, *args) - sample_epic_canonicalize(shaped, *args)
        >>> bool(np.allclose(difference, difference.mean(), atol=1e-4))  # shaping moves Ĉ by a constant only
        True
    """
    return canonicalizer(reward)(obs, acts, next_obs, dones, sample_acts, sample_next_obs, check_discount(discount))


def confidence_interval(per_seed: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): mean ± t_{(1+c)/2, n−1} · sd/√n over seeds (a point when n = 1)."""
    from scipy import stats

    per_seed = np.asarray(per_seed, np.float64)
    mean = float(per_seed.mean())
    if per_seed.size < 2:
        return mean, mean, mean
    half = float(stats.t.ppf(0.5 + confidence / 2, per_seed.size - 1) * per_seed.std(ddof=1) / math.sqrt(per_seed.size))
    return mean, mean - half, mean + half


def _standardized_lp(x: np.ndarray, y: np.ndarray, order: float) -> float:
    def unit(v: np.ndarray) -> np.ndarray:
        v = v - v.mean()
        norm = np.linalg.norm(v, ord=order) / (v.size ** (1.0 / order) if order != np.inf else 1.0)
        return v / norm if norm > 0 else v

    diff = unit(x) - unit(y)
    return float(np.max(np.abs(diff)) if order == np.inf else np.mean(np.abs(diff) ** order) ** (1.0 / order))


def sample_epic_distance(
    reward_a: RewardFn,
    reward_b: RewardFn,
    transitions: Transitions,
    discount: float,
    *,
    num_transitions: int = 4096,
    num_samples: int = 4096,
    num_seeds: int = 5,
    seed: int = 0,
    confidence: float = 0.95,
    metric: Any = "pearson",
) -> SampleDistance:
    """Sample-based EPIC distance between two rewards over continuous (or any) spaces.

    For each seed: draw ``num_transitions`` coverage transitions (s, a, s') from
    ``transitions`` and ``num_samples`` pairs (a_j, s'_j) with a_j from its actions and s'_j
    from its states (obs and next_obs pooled), independently; canonicalise both rewards
    (:func:`sample_epic_canonicalize`) and take D = sqrt((1 − ρ)/2) with ρ their Pearson
    correlation (``metric="pearson"``; EPIC), or the L_p distance (p = 1, 2, ``"inf"``) of the
    canonical rewards centred and scaled to unit mean-L_p norm. Potential shaping and
    positive scaling leave D ≈ 0 up to Monte Carlo error.

    Args:
        reward_a: a ``RewardFn``; one with ``pure_fn`` (``as_reward_fn(model, params)``,
            ``as_reward_fn(FunctionReward(fn))``) runs as one jitted program, others on the host.
        reward_b: same.
        transitions: coverage data (e.g. :func:`rewardlab.rl.rollout_transitions` of a random policy).
        discount: γ.
        num_transitions: N coverage transitions per seed.
        num_samples: M canonicalisation samples per seed.
        num_seeds: independent repetitions.
        seed: base seed; seed k uses ``seed + k``.
        confidence: level of the Student-t interval over seeds.
        metric: ``"pearson"`` (EPIC) or 1, 2, ``"inf"``.

    Returns:
        :class:`SampleDistance` (mean, interval, per-seed values).

    Raises:
        ValueError: bad counts, metric, ``confidence`` outside (0, 1), γ outside [0, 1], or
            transitions with too few rows; ``rewardlab.NonFiniteError`` (a ``ValueError``) for
            NaN or ±inf in the transitions or in a reward's values (named after the argument).
        TypeError: non-numeric transitions, counts or γ.

    References:
        Gleave et al., "Quantifying Differences in Reward Functions", ICLR 2021.

    Example:
        >>> import numpy as np
        >>> from rewardlab import Transitions
        >>> from rewardlab.rewards import FunctionReward, as_reward_fn
        >>> rng = np.random.default_rng(0)
        >>> obs = rng.normal(size=(256, 2)).astype(np.float32)
        >>> data = Transitions(obs, rng.normal(size=(256, 1)).astype(np.float32), np.roll(obs, -1, 0), np.zeros(256, bool), np.zeros(256, bool), np.zeros(256, np.float32))
        >>> reward = as_reward_fn(FunctionReward(lambda s, a, t, d: -jnp.sum(t**2, -1) - 0.1 * a[:, 0] ** 2))
        >>> negated = as_reward_fn(FunctionReward(lambda s, a, t, d: jnp.sum(t**2, -1) + 0.1 * a[:, 0] ** 2))
        >>> result = sample_epic_distance(reward, negated, data, 0.99, num_transitions=128, num_samples=64, num_seeds=2)
        >>> round(result.mean, 3)
        1.0
    """
    size = check_transitions(transitions)
    check_sample_settings(
        discount, seed, confidence, num_transitions=num_transitions, num_samples=num_samples, num_seeds=num_seeds
    )
    order = None if metric == "pearson" else norm_order("metric", metric)
    obs_pool = jax.tree.map(
        lambda x, y: np.concatenate([np.asarray(x), np.asarray(y)]), transitions.obs, transitions.next_obs
    )
    acts = np.asarray(transitions.acts)
    dones = np.asarray(transitions.dones, bool)
    canonicalize_a, canonicalize_b = canonicalizer(reward_a), canonicalizer(reward_b)
    per_seed_values: list[float] = []
    for k in range(int(num_seeds)):
        rng = np.random.default_rng(seed + k)
        index = rng.choice(size, int(num_transitions), replace=num_transitions > size)
        action_index = rng.integers(0, size, int(num_samples))
        state_index = rng.integers(0, 2 * size, int(num_samples))
        batch = (
            jax.tree.map(lambda x: np.asarray(x)[index], transitions.obs),  # noqa: B023 - tree.map calls it at once
            acts[index],
            jax.tree.map(lambda x: np.asarray(x)[index], transitions.next_obs),  # noqa: B023 - tree.map calls it at once
            dones[index],
            acts[action_index],
            jax.tree.map(lambda x: x[state_index], obs_pool),  # noqa: B023 - tree.map calls it at once
            discount,
        )
        canonical_a = canonicalize_a(*batch)
        canonical_b = canonicalize_b(*batch)
        check_canonical("reward_a", canonical_a)
        check_canonical("reward_b", canonical_b)
        if order is None:
            per_seed_values.append(
                float(pearson_distance(jnp.asarray(canonical_a, jnp.float32), jnp.asarray(canonical_b, jnp.float32)))
            )
        else:
            per_seed_values.append(
                _standardized_lp(np.asarray(canonical_a, np.float64), np.asarray(canonical_b, np.float64), order)
            )
    per_seed = np.asarray(per_seed_values)
    mean, low, high = confidence_interval(per_seed, confidence)
    return SampleDistance(mean, low, high, per_seed)
