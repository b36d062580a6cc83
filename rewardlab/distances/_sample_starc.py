"""Sample-based STARC with the value canonicalisation, V^π from least-squares temporal differences.

On coverage transitions (s_i, a_i, s'_i) collected by a policy π, the value canonicalisation
C_VAL(R)(s,a,s') = R(s,a,s') + γ V^π(s') − V^π(s) is estimated with a linear value function
V(s) = φ(s)ᵀw fitted by LSTD (Bradtke & Barto 1996):

    w = (Φᵀ(Φ − γ(1 − d)Φ') + λI)⁻¹ Φᵀ r,

with Φ, Φ' the features of s and s'. LSTD is linear in r, so for a potential Φ_pot(s) = φ(s)ᵀθ
in the span of the features, shaping r + γΦ_pot(s') − Φ_pot(s) moves w by exactly −θ and the
canonical reward does not change: with features rich enough to represent the potentials of
interest, STARC's invariance holds exactly (up to the ridge λ). The single observed s' stands in
for E_{S'~T(s,a)}; S'-redistribution is therefore not quotiented out. Then, as in the tabular
case, s(R) = ĉ/‖ĉ‖ with the empirical L_p norm over the N transitions and d = ‖s(R_A) − s(R_B)‖.

References:
    Skalse et al., "STARC: A General Framework For Quantifying Differences Between Reward
    Functions", ICLR 2024 (C_VAL; the continuous case with a learned V^π).
    Bradtke & Barto, "Linear Least-Squares Algorithms for Temporal Difference Learning", MLJ 1996.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from rewardlab._types import RewardFn, Transitions
from rewardlab.distances._common import check_canonical, check_sample_settings, check_transitions, norm_order
from rewardlab.distances._sample import SampleDistance, confidence_interval


def random_fourier_features(
    observations: Any, num_features: int = 256, *, seed: int = 0, bandwidth: float = 1.0
) -> Callable[[Any], np.ndarray]:
    """φ(s) = [1, ŝ, sqrt(2/D) cos(Wŝ + b)] with ŝ standardised by ``observations``' mean and std.

    W ~ N(0, 1/bandwidth²), b ~ U[0, 2π) (Rahimi & Recht 2007): a generic basis for V^π and for
    potentials of continuous states.

    Example:
        >>> phi = random_fourier_features(np.random.default_rng(0).normal(size=(100, 3)), 16)
        >>> phi(np.zeros((4, 3))).shape
        (4, 20)
    """
    observations = np.asarray(observations, np.float64).reshape(len(observations), -1)
    mean, std = observations.mean(0), observations.std(0) + 1e-8
    rng = np.random.default_rng(seed)
    weights = rng.normal(scale=1.0 / bandwidth, size=(observations.shape[1], int(num_features)))
    offsets = rng.uniform(0.0, 2.0 * np.pi, int(num_features))

    def features(obs: Any) -> np.ndarray:
        standard = (np.asarray(obs, np.float64).reshape(len(obs), -1) - mean) / std
        return np.concatenate(
            [np.ones((len(standard), 1)), standard, np.sqrt(2.0 / num_features) * np.cos(standard @ weights + offsets)],
            axis=1,
        )

    return features


def lstd_values(
    features_t: np.ndarray, features_tp1: np.ndarray, rewards: np.ndarray, discount_t: np.ndarray, ridge: float
) -> np.ndarray:
    """LSTD weights ``[F, K]`` for K reward columns ``rewards [N, K]``; ``discount_t [N]`` = γ(1 − terminated).

    Only termination stops the bootstrap: a time-limit truncation keeps γ, since s' has a value.
    """
    a = features_t.T @ (features_t - discount_t[:, None] * features_tp1) / len(features_t)
    b = features_t.T @ rewards / len(features_t)
    return np.linalg.solve(a + ridge * np.eye(a.shape[0]), b)


def sample_starc_distance(
    reward_a: RewardFn,
    reward_b: RewardFn,
    transitions: Transitions,
    discount: float,
    *,
    features: Callable[[Any], Any] | None = None,
    num_features: int = 256,
    ridge: float = 1e-6,
    num_transitions: int = 4096,
    num_seeds: int = 5,
    seed: int = 0,
    confidence: float = 0.95,
    norm: Any = 2,
    metric: Any = 2,
) -> SampleDistance:
    """STARC distance (value canonicalisation under the data's policy) from samples, with LSTD for V^π.

    Args:
        reward_a: any ``RewardFn`` (only evaluated on the coverage transitions).
        reward_b: same.
        transitions: coverage data collected by the policy π whose V^π canonicalises
            (e.g. :func:`rewardlab.rl.rollout_transitions` of a random policy).
        discount: γ < 1.
        features: ``obs [N, ...] -> [N, F]`` basis of V^π; default
            :func:`random_fourier_features` of the coverage states with ``num_features``.
        num_features: D of the default features.
        ridge: λ of LSTD.
        num_transitions: N transitions per seed (both the LSTD fit and the distance).
        num_seeds: independent subsamples.
        seed: base seed.
        confidence: level of the interval over seeds.
        norm: n, 1, 2 or ``"inf"`` (empirical over the N transitions).
        metric: m, 1, 2 or ``"inf"``.

    Returns:
        :class:`SampleDistance`; values lie in [0, 2] when ``norm == metric``.

    Raises:
        ValueError: bad counts, norms, discount or transitions.

    Example:
        >>> from rewardlab import Transitions
        >>> rng = np.random.default_rng(0)
        >>> s = rng.normal(size=(512, 2)); t = s + 0.1 * rng.normal(size=(512, 2))
        >>> data = Transitions(s, rng.normal(size=(512, 1)), t, np.zeros(512, bool), np.zeros(512, bool), np.zeros(512))
        >>> reward = lambda o, a, n, d: -np.sum(n**2, 1) + a[:, 0]
        >>> shaped = lambda o, a, n, d: 3 * reward(o, a, n, d) + 0.9 * n[:, 0] - o[:, 0]  # Φ(s) = s₀, in the span
        >>> round(sample_starc_distance(reward, shaped, data, 0.9, num_transitions=256, num_seeds=2).mean, 3)
        0.0
    """
    size = check_transitions(transitions)
    for name, value in (("num_transitions", num_transitions), ("num_seeds", num_seeds), ("num_features", num_features)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    check_sample_settings(discount, seed, confidence, below_one=True)  # γ < 1 for V^π to exist
    norm_p, metric_p = norm_order("norm", norm), norm_order("metric", metric)
    obs, next_obs = np.asarray(transitions.obs), np.asarray(transitions.next_obs)
    if features is None:
        features = random_fourier_features(np.concatenate([obs, next_obs]), num_features, seed=seed)
    dones = np.asarray(transitions.dones, bool)
    terminated = np.asarray(transitions.terminated, bool)  # truncated steps bootstrap: V(s') is not 0 there
    per_seed_values: list[float] = []
    for k in range(int(num_seeds)):
        rng = np.random.default_rng(seed + k)
        index = rng.choice(size, int(num_transitions), replace=num_transitions > size)
        batch = (
            obs[index],
            jax.tree.map(lambda x: np.asarray(x)[index], transitions.acts),  # noqa: B023 - tree.map calls it at once
            next_obs[index],
            dones[index],
        )
        rewards = np.stack([np.asarray(fn(*batch), np.float64) for fn in (reward_a, reward_b)], axis=1)  # [N, 2]
        check_canonical("reward_a", rewards[:, 0])
        check_canonical("reward_b", rewards[:, 1])
        features_t = np.asarray(features(batch[0]), np.float64)
        features_tp1 = np.asarray(features(batch[2]), np.float64)
        discount_t = discount * (1.0 - terminated[index])
        weights = lstd_values(features_t, features_tp1, rewards, discount_t, ridge)
        canonical = rewards + discount_t[:, None] * (features_tp1 @ weights) - features_t @ weights  # [N, 2]
        standardized = []
        for column, reward in zip(canonical.T, rewards.T, strict=True):
            scale = _empirical_norm(column, norm_p)
            trivial = np.max(np.abs(column)) <= 1e-6 * max(np.max(np.abs(reward)), 1e-30)
            standardized.append(np.zeros_like(column) if trivial or scale == 0 else column / scale)
        per_seed_values.append(_empirical_norm(standardized[0] - standardized[1], metric_p))
    per_seed = np.asarray(per_seed_values)
    mean, low, high = confidence_interval(per_seed, confidence)
    return SampleDistance(mean, low, high, per_seed)


def _empirical_norm(values: np.ndarray, order: float) -> float:
    """(mean |x|^p)^{1/p}, the L_p norm under the empirical coverage distribution (max for p = ∞)."""
    if order == np.inf:
        return float(np.max(np.abs(values)))
    return float(np.mean(np.abs(values) ** order) ** (1.0 / order))
