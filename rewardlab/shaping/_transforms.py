"""Chainable reward transforms with explicit state, in the style of ``optax``.

A :class:`RewardTransform` is a pair of pure functions

    init(num_streams) -> state
    apply(state, rewards, *, dones=None, reference=None) -> (rewards, state)

over a batch of N rewards (one per parallel env stream, or any flat batch); ``dones`` [N]
marks episode ends (for per-episode state) and ``reference`` [N] is a reference reward (for
the Bradley–Terry transform). :func:`chain` composes transforms left to right;
:func:`transformed_reward_fn` runs a (jitted) transform behind the host ``RewardFn`` contract
so any reward can be transformed inside the wrappers. Ensembles are combined before any
transform, by the reward itself: ``as_reward_fn(model, params, aggregate=...)``
(:func:`rewardlab.rewards.aggregate_ensemble`).

References:
    Wang et al., "Transforming and Combining Rewards for Aligning Large Language Models",
    ICML 2024 (the log-sigmoid transform u = log σ(r − r_ref)).
    Brockman et al., OpenAI Baselines ``VecNormalize`` (running return/reward normalisation).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rewardlab._types import RewardFn

Array = Any


class RewardTransform(NamedTuple):
    """``init(num_streams) -> state``; ``apply(state, rewards, *, dones, reference) -> (rewards, state)``."""

    init: Callable[[int], Any]
    apply: Callable[..., tuple[jax.Array, Any]]


class EmptyState(NamedTuple):
    """State of a stateless transform."""


class RunningNormState(NamedTuple):
    """Running moments of the rewards seen so far (Chan et al. parallel update)."""

    count: jax.Array  # type: ignore[assignment]  # [] float32 number of rewards merged; the field shadows tuple.count
    mean: jax.Array  # [] float32
    var: jax.Array  # [] float32 population variance
    frozen: jax.Array  # [] bool: statistics no longer updated


class MovingAverageState(NamedTuple):
    """Exponential moving average of the batch-mean reward, with its bias correction."""

    average: jax.Array  # [] float32 biased EMA
    weight: jax.Array  # [] float32 1 − decay^t, the correction


class AccumulatedState(NamedTuple):
    """Reward accumulated so far in the current episode of every stream."""

    accumulated: jax.Array  # [num_streams] float32


# --------------------------------------------------------------------------- elementwise transforms


def _empty_init(num_streams: int = 1) -> EmptyState:
    return EmptyState()


def identity() -> RewardTransform:
    """Rewards unchanged."""

    def apply(state: EmptyState, rewards: Array, **_: Any) -> tuple[jax.Array, EmptyState]:
        return jnp.asarray(rewards), state

    return RewardTransform(_empty_init, apply)


def scale(factor: float) -> RewardTransform:
    """r ← factor · r."""

    def apply(state: EmptyState, rewards: Array, **_: Any) -> tuple[jax.Array, EmptyState]:
        return factor * jnp.asarray(rewards), state

    return RewardTransform(_empty_init, apply)


def clip(low: float | None = None, high: float | None = None) -> RewardTransform:
    """r ← clip(r, low, high) (either bound may be None).

    Example:
        >>> t = clip(-1.0, 1.0)
        >>> t.apply(t.init(3), jnp.array([-3.0, 0.5, 2.0]))[0].tolist()
        [-1.0, 0.5, 1.0]
    """
    if low is not None and high is not None and low > high:
        raise ValueError(f"low: expected low <= high, got low={low}, high={high}")

    def apply(state: EmptyState, rewards: Array, **_: Any) -> tuple[jax.Array, EmptyState]:
        return jnp.clip(jnp.asarray(rewards), low, high), state

    return RewardTransform(_empty_init, apply)


def bradley_terry_transform(reference: float | None = None) -> RewardTransform:
    """u = log σ(r − r_ref), Wang et al.'s transform of Bradley–Terry rewards.

    The reference r_ref is the ``reference`` argument of ``apply`` (a reference reward per
    transition, e.g. a baseline policy's reward) or, when that is None, the constant given
    here. u ≤ 0; summing transformed rewards of several properties acts as a soft logical
    AND: a property far below its reference dominates the sum (log σ(x) ≈ x for x ≪ 0),
    one far above saturates at 0.

    Args:
        reference: constant r_ref used when ``apply`` gets no ``reference``.

    References:
        Wang et al., "Transforming and Combining Rewards for Aligning Large Language Models", ICML 2024.

    Example:
        >>> t = bradley_terry_transform(reference=0.0)
        >>> [round(x, 4) for x in t.apply(t.init(2), jnp.array([0.0, 10.0]))[0].tolist()]
        [-0.6931, -0.0]
    """

    constant = reference

    def apply(
        state: EmptyState, rewards: Array, *, reference: Array | None = None, **_: Any
    ) -> tuple[jax.Array, EmptyState]:
        ref = reference if reference is not None else constant
        if ref is None:
            raise ValueError(
                "reference: bradley_terry_transform needs a reference reward (argument or constant), got None"
            )
        return jax.nn.log_sigmoid(jnp.asarray(rewards) - ref), state

    return RewardTransform(_empty_init, apply)


# --------------------------------------------------------------------------- stateful transforms


def running_normalize(*, center: bool = False, epsilon: float = 1e-8, frozen: bool = False) -> RewardTransform:
    """r ← (r − μ·center)/sqrt(σ² + ε) with running moments μ, σ² of all rewards seen.

    The moments merge each batch before it is normalised (Chan et al.'s parallel update:
    μ' = μ + δ n/(c + n), σ²' = (cσ² + n v + δ² c n/(c + n))/(c + n)). Once frozen (see
    :func:`freeze`) the statistics stop updating, e.g. for evaluation.

    Args:
        center: subtract the running mean too (default: scale only, keeping the sign of r).
        epsilon: added to the variance.
        frozen: start frozen (with μ = 0, σ² = 1).

    Example:
        >>> t = running_normalize(center=True)
        >>> rewards, state = t.apply(t.init(4), jnp.array([1.0, 2.0, 3.0, 4.0]))
        >>> [round(x, 3) for x in rewards.tolist()], float(state.count)
        ([-1.342, -0.447, 0.447, 1.342], 4.0)
    """

    def init(num_streams: int = 1) -> RunningNormState:
        return RunningNormState(jnp.float32(0.0), jnp.float32(0.0), jnp.float32(1.0), jnp.asarray(frozen))

    def apply(state: RunningNormState, rewards: Array, **_: Any) -> tuple[jax.Array, RunningNormState]:
        rewards = jnp.asarray(rewards, jnp.float32)
        n = jnp.float32(rewards.size)
        batch_mean = jnp.mean(rewards)
        batch_var = jnp.var(rewards)
        total = state.count + n
        delta = batch_mean - state.mean
        mean = state.mean + delta * n / total
        var = jnp.where(
            state.count > 0,
            (state.count * state.var + n * batch_var + delta**2 * state.count * n / total) / total,
            batch_var,
        )
        updated = RunningNormState(total, mean, var, state.frozen)
        state = jax.tree.map(lambda old, new: jnp.where(state.frozen, old, new), state, updated)
        shift = state.mean if center else 0.0
        return (rewards - shift) / jnp.sqrt(state.var + epsilon), state

    return RewardTransform(init, apply)


def moving_average_centering(decay: float = 0.99) -> RewardTransform:
    """r ← r − m̂, m̂ the bias-corrected exponential moving average of batch-mean rewards.

    m_t = decay·m_{t−1} + (1 − decay)·mean(r_t), m̂_t = m_t/(1 − decay^t), updated before centring.

    Example:
        >>> t = moving_average_centering(0.5)
        >>> rewards, state = t.apply(t.init(2), jnp.array([1.0, 3.0]))
        >>> rewards.tolist()
        [-1.0, 1.0]
    """
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"decay: expected a value in [0, 1), got {decay!r}")

    def init(num_streams: int = 1) -> MovingAverageState:
        return MovingAverageState(jnp.float32(0.0), jnp.float32(0.0))

    def apply(state: MovingAverageState, rewards: Array, **_: Any) -> tuple[jax.Array, MovingAverageState]:
        rewards = jnp.asarray(rewards, jnp.float32)
        average = decay * state.average + (1.0 - decay) * jnp.mean(rewards)
        weight = decay * state.weight + (1.0 - decay)
        return rewards - average / weight, MovingAverageState(average, weight)

    return RewardTransform(init, apply)


def cap_accumulated(cap: float, *, floor: float | None = None) -> RewardTransform:
    """Cap the reward accumulated within an episode: Σ_t r'_t ≤ cap (and ≥ floor) per stream.

    r'_t = clip(r_t, floor − A_t, cap − A_t) with A_t the (capped) sum so far in the stream's
    episode; A resets to 0 after a step with ``dones`` set. Stops a reward hacker from
    harvesting unbounded reward from one bonus (e.g. a count or novelty term).

    Args:
        cap: largest episode total.
        floor: smallest episode total (None: unbounded below).

    Example:
        >>> t = cap_accumulated(1.0)
        >>> state = t.init(2)
        >>> r1, state = t.apply(state, jnp.array([0.75, 0.5]), dones=jnp.array([False, True]))
        >>> r2, state = t.apply(state, jnp.array([0.75, 0.5]), dones=jnp.array([False, False]))
        >>> r1.tolist(), r2.tolist()
        ([0.75, 0.5], [0.25, 0.5])
    """
    if floor is not None and floor > cap:
        raise ValueError(f"floor: expected floor <= cap, got floor={floor}, cap={cap}")

    def init(num_streams: int = 1) -> AccumulatedState:
        return AccumulatedState(jnp.zeros(int(num_streams), jnp.float32))

    def apply(
        state: AccumulatedState, rewards: Array, *, dones: Array | None = None, **_: Any
    ) -> tuple[jax.Array, AccumulatedState]:
        rewards = jnp.asarray(rewards, jnp.float32)
        if rewards.shape != state.accumulated.shape:
            raise ValueError(f"rewards: expected one reward per stream {state.accumulated.shape}, got {rewards.shape}")
        low = -jnp.inf if floor is None else floor - state.accumulated
        capped = jnp.clip(rewards, low, cap - state.accumulated)
        accumulated = state.accumulated + capped
        if dones is not None:
            accumulated = jnp.where(jnp.asarray(dones, bool), 0.0, accumulated)
        return capped, AccumulatedState(accumulated)

    return RewardTransform(init, apply)


# --------------------------------------------------------------------------- composition


def chain(*transforms: RewardTransform) -> RewardTransform:
    """Apply ``transforms`` left to right; the state is the tuple of their states.

    Example:
        >>> t = chain(clip(-1.0, 1.0), scale(10.0))
        >>> t.apply(t.init(2), jnp.array([0.05, 7.0]))[0].tolist()
        [0.5, 10.0]
    """
    if not transforms:
        raise ValueError("transforms: expected at least one RewardTransform, got none")
    for index, transform in enumerate(transforms):
        if not isinstance(transform, RewardTransform):
            raise ValueError(f"transforms[{index}]: expected a RewardTransform, got {type(transform).__name__}")

    def init(num_streams: int = 1) -> tuple[Any, ...]:
        return tuple(transform.init(num_streams) for transform in transforms)

    def apply(state: tuple[Any, ...], rewards: Array, **context: Any) -> tuple[jax.Array, tuple[Any, ...]]:
        new_states = []
        for transform, transform_state in zip(transforms, state, strict=True):
            rewards, transform_state = transform.apply(transform_state, rewards, **context)
            new_states.append(transform_state)
        return rewards, tuple(new_states)

    return RewardTransform(init, apply)


def freeze(state: Any, frozen: bool = True) -> Any:
    """The same state with every running normaliser frozen (or unfrozen)."""
    if isinstance(state, RunningNormState):
        return state._replace(frozen=jnp.asarray(frozen))
    if isinstance(state, tuple) and not hasattr(state, "_fields"):
        return tuple(freeze(item, frozen) for item in state)
    return state


# --------------------------------------------------------------------------- host adapter


class TransformedRewardFn:
    """A ``RewardFn`` that runs a jitted :class:`RewardTransform` on another reward's output.

    Keeps the transform state between calls (created on the first call with one stream per
    transition of the batch, i.e. per env). An ensemble is aggregated by the reward itself
    (``as_reward_fn(model, params, aggregate="mean_minus_std", coefficient=1.0)``).

    Attributes:
        state: the transform's current state (``None`` before the first call).
    """

    def __init__(self, reward: RewardFn, transform: RewardTransform) -> None:
        if not isinstance(transform, RewardTransform):
            raise ValueError(f"transform: expected a RewardTransform, got {type(transform).__name__}")
        if not callable(reward):
            raise ValueError(
                f"reward: expected a RewardFn (e.g. rewardlab.rewards.as_reward_fn(model, params)), got {type(reward).__name__}"
            )
        self.transform = transform
        self.reward = reward
        self._apply = jax.jit(transform.apply)
        self._frozen = False
        self.state: Any = None
        self.reference_fn: RewardFn | None = None

    def freeze(self, frozen: bool = True) -> None:
        """Stop (or restart) updating every running normaliser in the chain."""
        if self.state is not None:
            self.state = freeze(self.state, frozen)
        self._frozen = frozen

    def __call__(self, obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
        rewards = np.asarray(self.reward(obs, acts, next_obs, dones), np.float32)
        dones = np.asarray(dones, bool)
        if self.state is None:
            self.state = self.transform.init(dones.shape[0])
            if self._frozen:
                self.state = freeze(self.state)
        reference = (
            None if self.reference_fn is None else np.asarray(self.reference_fn(obs, acts, next_obs, dones), np.float32)
        )
        out, self.state = self._apply(self.state, rewards, dones=dones, reference=reference)
        return np.asarray(out, np.float32)


def transformed_reward_fn(
    reward: RewardFn, transform: RewardTransform, *, reference_fn: RewardFn | None = None
) -> TransformedRewardFn:
    """Wrap ``reward`` (any ``RewardFn``) with ``transform``.

    Args:
        reward: the reward to transform (an ensemble aggregated by ``as_reward_fn(..., aggregate=...)``).
        transform: e.g. ``chain(running_normalize(), clip(-5, 5))``.
        reference_fn: a ``RewardFn`` giving the reference reward of
            :func:`bradley_terry_transform` for each transition.

    Returns:
        A :class:`TransformedRewardFn` (a ``RewardFn``) for the wrappers.

    Example:
        >>> import numpy as np
        >>> fn = transformed_reward_fn(lambda o, a, n, d: np.array([1.0, 3.0]), chain(running_normalize(), clip(-1.0, 1.0)))
        >>> fn(None, None, None, np.zeros(2, bool)).tolist()
        [1.0, 1.0]
    """
    adapter = TransformedRewardFn(reward, transform)
    adapter.reference_fn = reference_fn
    return adapter
