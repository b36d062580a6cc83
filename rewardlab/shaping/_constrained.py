"""Constrained reward composition: Lagrange multipliers keep each cost component under a threshold.

The agent maximises the main reward subject to E[c_k] ≤ d_k for cost components c_k
(e.g. control effort, speed). The Lagrangian relaxation gives the composite reward

    r = r_main − Σ_k λ_k c_k,   λ_k ≥ 0,

and dual (projected gradient) ascent on the multipliers after each batch of experience,

    λ_k ← max(0, λ_k + η (ĉ_k − d_k)),   ĉ_k the mean cost of the training
transitions since the last update,

raises the weight of a component that exceeds its threshold and relaxes it otherwise.

References:
    Altman, "Constrained Markov Decision Processes", 1999.
    Tessler, Mankowitz & Mannor, "Reward Constrained Policy Optimization", ICLR 2019.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np

from rewardlab._types import RewardFn


class LagrangeState(NamedTuple):
    """Multipliers and the cost statistics gathered since the last update."""

    multipliers: Any  # [K] float32 λ_k ≥ 0
    cost_sums: Any  # [K] float64 Σ c_k since the last update
    count: Any  # [] number of transitions since the last update


def composite_reward(main: Any, costs: Any, multipliers: Any) -> Any:
    """r = r_main − Σ_k λ_k c_k for ``main`` [N], ``costs`` [N, K], ``multipliers`` [K].

    Example:
        >>> composite_reward(jnp.array([1.0]), jnp.array([[2.0, 1.0]]), jnp.array([0.5, 3.0])).tolist()
        [-3.0]
    """
    return main - costs @ multipliers


def dual_ascent(multipliers: Any, mean_costs: Any, thresholds: Any, learning_rate: float) -> Any:
    """λ ← max(0, λ + η(ĉ − d)), projected gradient ascent on the Lagrangian's dual.

    Example:
        >>> dual_ascent(jnp.array([0.0, 1.0]), jnp.array([2.0, 0.0]), jnp.array([1.0, 1.0]), 0.5).tolist()
        [0.5, 0.5]
    """
    return jnp.maximum(0.0, multipliers + learning_rate * (mean_costs - thresholds))


class ConstrainedRewardFn:
    """A ``RewardFn`` r = r_main − Σ_k λ_k c_k whose multipliers follow :func:`dual_ascent`.

    Only training rollouts may move the multipliers: calling the object itself (relabelling a
    replay buffer, evaluating a policy, measuring a distance) reads the current λ and changes
    nothing. :attr:`training_reward` is the same reward that also records each transition's
    costs; give it to the training env's reward wrapper, and :meth:`update_multipliers` (called
    by :class:`rewardlab.rl.LagrangeMultiplierCallback` at the end of each rollout) takes one
    ascent step from the mean costs recorded since the last step and resets them.

    Args:
        main: the main ``RewardFn``.
        costs: name → cost ``RewardFn`` c_k (higher is worse).
        thresholds: name → d_k, the largest allowed mean cost per step.
        learning_rate: η.
        initial_multiplier: λ_k at the start.

    Example:
        >>> import numpy as np
        >>> fn = ConstrainedRewardFn(lambda o, a, n, d: np.ones(2), {"effort": lambda o, a, n, d: np.full(2, 3.0)},
        ...                          {"effort": 1.0}, learning_rate=0.1)
        >>> fn(None, None, None, np.zeros(2)).tolist(), fn.update_multipliers()  # an evaluation call: no step
        ([1.0, 1.0], {'effort': 0.0})
        >>> fn.training_reward(None, None, None, np.zeros(2)).tolist(), fn.update_multipliers()
        ([1.0, 1.0], {'effort': 0.2})
        >>> fn(None, None, None, np.zeros(2)).tolist()  # 1 − 0.2 · 3
        [0.4000000059604645, 0.4000000059604645]
    """

    def __init__(
        self,
        main: RewardFn,
        costs: Mapping[str, RewardFn],
        thresholds: Mapping[str, float],
        *,
        learning_rate: float = 0.05,
        initial_multiplier: float = 0.0,
    ) -> None:
        if not callable(main):
            raise ValueError(f"main: expected a RewardFn, got {type(main).__name__}")
        if not costs:
            raise ValueError("costs: expected at least one named cost RewardFn, got none")
        if set(costs) != set(thresholds):
            raise ValueError(f"thresholds: expected one threshold per cost {sorted(costs)}, got {sorted(thresholds)}")
        if learning_rate <= 0 or initial_multiplier < 0:
            raise ValueError(
                f"learning_rate, initial_multiplier: expected > 0 and >= 0, got {learning_rate}, {initial_multiplier}"
            )
        self.main = main
        self.names = tuple(costs)
        self.costs = tuple(costs[name] for name in self.names)
        self.thresholds = np.array([thresholds[name] for name in self.names], np.float64)
        self.learning_rate = float(learning_rate)
        self.state = LagrangeState(
            np.full(len(self.names), initial_multiplier, np.float64), np.zeros(len(self.names)), 0
        )

    @property
    def multipliers(self) -> dict[str, float]:
        """name → current λ_k."""
        return {name: float(value) for name, value in zip(self.names, self.state.multipliers, strict=True)}

    def _evaluate(self, obs: Any, acts: Any, next_obs: Any, dones: Any) -> tuple[np.ndarray, np.ndarray]:
        main = np.asarray(self.main(obs, acts, next_obs, dones), np.float64)
        costs = np.stack(
            [np.asarray(cost(obs, acts, next_obs, dones), np.float64) for cost in self.costs], axis=-1
        )  # [N, K]
        return (main - costs @ self.state.multipliers).astype(np.float32), costs

    def __call__(self, obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
        """r = r_main − Σ_k λ_k c_k under the current multipliers; records nothing."""
        return self._evaluate(obs, acts, next_obs, dones)[0]

    def training_reward(self, obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
        """The same reward as a call, also recording the costs for the next :meth:`update_multipliers`.

        A ``RewardFn`` for the training env's reward wrapper only; every other caller uses the
        object itself so that its transitions do not move the multipliers.
        """
        rewards, costs = self._evaluate(obs, acts, next_obs, dones)
        self.state = self.state._replace(
            cost_sums=self.state.cost_sums + costs.sum(0), count=self.state.count + costs.shape[0]
        )
        return rewards

    def update_multipliers(self) -> dict[str, float]:
        """One dual-ascent step from the mean costs of the training transitions since the last step.

        Returns:
            name → λ_k after the step (unchanged when no training transition was recorded).
        """
        if self.state.count == 0:
            return self.multipliers
        mean_costs = self.state.cost_sums / self.state.count
        # host copy of dual_ascent, in float64
        multipliers = np.maximum(0.0, self.state.multipliers + self.learning_rate * (mean_costs - self.thresholds))
        self.last_mean_costs = dict(zip(self.names, map(float, mean_costs), strict=True))
        self.state = LagrangeState(multipliers, np.zeros_like(self.state.cost_sums), 0)
        return self.multipliers
