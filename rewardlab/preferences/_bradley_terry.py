"""Bradley–Terry preference model over segment returns, and its cross-entropy loss.

A segment σ = (s_0, a_0, …, s_{L-1}, a_{L-1}) scored by a reward r has the return

    R(σ) = Σ_{t=0}^{L-1} γ^t r(s_t, a_t, s_{t+1})      (γ = 1: "partial return")

and the Bradley–Terry model with temperature τ and label noise ε says

    P(σ¹ ≻ σ²) = logistic((R(σ¹) − R(σ²)) / τ),        P' = ε/2 + (1 − ε) P.

The loss of a (soft) label y = P(σ¹ ≻ σ²) from the teacher (0.5 for ties) is the binary
cross-entropy −[y log P' + (1 − y) log(1 − P')].

The single-pair functions (``segment_return``, ``bradley_terry_probability``,
``bradley_terry_loss``) take unbatched inputs and are batched with ``jax.vmap``;
``preference_loss`` scores every transition of a batch of pairs with one call of the
reward model and averages the per-member losses of the ensemble. The functions over a batch
take the preference model (score, τ, γ, ε) as one :class:`PreferenceModel`.

References:
    Christiano et al., "Deep reinforcement learning from human preferences", NeurIPS 2017.
    Bradley & Terry, "Rank analysis of incomplete block designs", Biometrika 1952.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rewardlab._types import FragmentPairs, Preferences, RewardModelLike
from rewardlab.preferences._preference_model import PreferenceModel, check_preference_model


def segment_return(r_t: jax.Array, discount: float | jax.Array = 1.0) -> jax.Array:
    """Myopic return of one segment: R = Σ_{t=0}^{L−1} γ^{L−1−t} r_t, the last step weighing 1.

    The discount runs back from the segment's end, as a myopic teacher's does (B-Pref, Lee et
    al. 2021; :class:`rewardlab.preferences.myopic`): recent steps weigh more. With γ = 1 it is
    the partial return of Christiano et al.

    Args:
        r_t: ``[L]`` rewards of one segment.
        discount: in-segment discount γ.

    Returns:
        Scalar return.

    Example:
        >>> import jax.numpy as jnp
        >>> float(segment_return(jnp.array([4.0, 2.0, 1.0]), 0.5))  # 0.25·4 + 0.5·2 + 1
        3.0
    """
    r_t = jnp.asarray(r_t)
    weights = jnp.asarray(discount, r_t.dtype) ** jnp.arange(r_t.shape[0] - 1, -1, -1, dtype=r_t.dtype)
    return jnp.sum(weights * r_t)


def bradley_terry_logit(return_1: jax.Array, return_2: jax.Array, temperature: float | jax.Array = 1.0) -> jax.Array:
    """Logit of P(σ¹ ≻ σ²) under Bradley–Terry: (R¹ − R²) / τ."""
    return (return_1 - return_2) / temperature


def bradley_terry_probability(
    return_1: jax.Array,
    return_2: jax.Array,
    temperature: float | jax.Array = 1.0,
    label_noise: float | jax.Array = 0.0,
) -> jax.Array:
    """P'(σ¹ ≻ σ²) = ε/2 + (1 − ε)·logistic((R¹ − R²)/τ) for one pair.

    Args:
        return_1: return R¹ of the first segment (scalar).
        return_2: return R² of the second segment (scalar).
        temperature: τ > 0; small τ makes the model nearly deterministic.
        label_noise: ε in [0, 1): probability that the label is replaced by a coin flip.

    Returns:
        Scalar probability in [ε/2, 1 − ε/2].

    Example:
        >>> round(float(bradley_terry_probability(1.0, 0.0)), 4)
        0.7311
        >>> round(float(bradley_terry_probability(1.0, 0.0, label_noise=0.1)), 4)
        0.708
    """
    probability = jax.nn.sigmoid(bradley_terry_logit(return_1, return_2, temperature))
    return label_noise / 2 + (1 - label_noise) * probability


def _log_probabilities(logit: jax.Array, label_noise: float | jax.Array) -> tuple[jax.Array, jax.Array]:
    """Stable log P' and log(1 − P') of P' = ε/2 + (1 − ε)·logistic(logit)."""
    log_p = jax.nn.log_sigmoid(logit)
    log_q = jax.nn.log_sigmoid(-logit)
    label_noise = jnp.asarray(label_noise, log_p.dtype)
    # log(ε/2 + (1−ε)p) = logaddexp(log ε/2, log(1−ε) + log p); exact when ε = 0 as log 0 = −inf.
    log_half_noise = jnp.where(label_noise > 0, jnp.log(jnp.maximum(label_noise, 1e-38) / 2), -jnp.inf)
    log_keep = jnp.log1p(-label_noise)
    return jnp.logaddexp(log_half_noise, log_keep + log_p), jnp.logaddexp(log_half_noise, log_keep + log_q)


def bradley_terry_loss(
    return_1: jax.Array,
    return_2: jax.Array,
    label: jax.Array,
    temperature: float | jax.Array = 1.0,
    label_noise: float | jax.Array = 0.0,
) -> jax.Array:
    """Cross-entropy of a soft label under the Bradley–Terry model, for one pair.

    loss = −[y log P' + (1 − y) log(1 − P')], P' = ε/2 + (1 − ε)·logistic((R¹ − R²)/τ),
    computed in log space (``log_sigmoid``), finite for any returns.

    Args:
        return_1: return R¹ of σ¹ (scalar).
        return_2: return R² of σ² (scalar).
        label: y = P(σ¹ ≻ σ²) from the teacher, in [0, 1]; 0.5 for a tie.
        temperature: τ > 0.
        label_noise: ε in [0, 1).

    Returns:
        Scalar loss (nats).

    Example:
        >>> round(float(bradley_terry_loss(0.0, 0.0, 1.0)), 4)  # log 2
        0.6931
        >>> round(float(bradley_terry_loss(3.0, 1.0, 1.0)), 4)  # −log logistic(2)
        0.1269
    """
    log_p, log_q = _log_probabilities(bradley_terry_logit(return_1, return_2, temperature), label_noise)
    return -(label * log_p + (1 - label) * log_q)


# --- Preference models: per-segment scores s with P(σ¹ ≻ σ²) = logistic((s¹ − s²)/τ) ------------------------


def _flatten_pairs(pairs: FragmentPairs) -> tuple[Any, Any, Any, Any, tuple[int, int]]:
    """Transitions of B pairs flattened to [B*2*L, ...] for one call of the reward model."""
    num_pairs, length = np.shape(pairs.dones)[0], np.shape(pairs.dones)[2]

    def flat(x: Any) -> Any:
        return jnp.reshape(x, (num_pairs * 2 * length, *jnp.shape(x)[3:]))

    return (
        jax.tree.map(flat, pairs.obs),
        flat(pairs.acts),
        jax.tree.map(flat, pairs.next_obs),
        flat(pairs.dones),
        (num_pairs, length),
    )


def _partial_return_scores(model: RewardModelLike, params: Any, pairs: FragmentPairs, discount: float) -> jax.Array:
    obs, acts, next_obs, dones, (num_pairs, length) = _flatten_pairs(pairs)
    rewards = model.apply(params, obs, acts, next_obs, dones)  # [E, B*2*L]
    rewards = jnp.reshape(rewards, (rewards.shape[0], num_pairs, 2, length))
    return jax.vmap(jax.vmap(jax.vmap(segment_return, in_axes=(0, None)), in_axes=(0, None)), in_axes=(0, None))(
        rewards, discount
    )


def _regret_scores(model: Any, params: Any, pairs: FragmentPairs, discount: float) -> jax.Array:
    """Score −regret(σ) = Σ_t A(s_t, a_t) from the model's advantage of its candidate reward (Knox et al.)."""
    del discount
    if not callable(getattr(model, "advantage", None)):
        raise ValueError(
            f"model: PreferenceModel('regret') needs a model with advantage(params, obs, acts, next_obs, dones) -> [E, N] "
            f"(TabularRegretModel, ContinuousRegretModel), got {type(model).__name__}"
        )
    obs, acts, next_obs, dones, (num_pairs, length) = _flatten_pairs(pairs)
    advantages = model.advantage(params, obs, acts, next_obs, dones)  # [E, B*2*L]
    return jnp.sum(jnp.reshape(advantages, (advantages.shape[0], num_pairs, 2, length)), axis=-1)


# Each entry: (model, params, pairs, discount) -> scores [E, B, 2].
_SCORE_FNS: dict[str, Callable[[Any, Any, FragmentPairs, float], jax.Array]] = {
    "partial_return": _partial_return_scores,
    "discounted_return": _partial_return_scores,
    "regret": _regret_scores,
}


def check_fragment_pairs(pairs: Any, name: str = "pairs") -> tuple[int, int]:
    """Validate a ``FragmentPairs`` container; returns (B, L).

    Raises:
        ValueError: a field has the wrong leading axes ``[B, 2, L]`` or dones/rews have the wrong rank.
    """
    if not isinstance(pairs, FragmentPairs):
        raise ValueError(f"{name}: expected a FragmentPairs, got {type(pairs).__name__}")
    dones_shape = tuple(np.shape(pairs.dones))
    if len(dones_shape) != 3 or dones_shape[1] != 2:
        raise ValueError(f"{name}.dones: expected shape [B, 2, L], got {dones_shape}")
    if tuple(np.shape(pairs.rews)) != dones_shape:
        raise ValueError(f"{name}.rews: expected shape {dones_shape} ([B, 2, L]), got {tuple(np.shape(pairs.rews))}")
    for field in ("obs", "acts", "next_obs"):
        for leaf in jax.tree.leaves(getattr(pairs, field)):
            if tuple(np.shape(leaf))[:3] != dones_shape:
                raise ValueError(
                    f"{name}.{field}: expected leading axes {dones_shape} ([B, 2, L]), got {tuple(np.shape(leaf))}"
                )
    if pairs.factors is not None and tuple(np.shape(pairs.factors))[:3] != dones_shape:
        raise ValueError(
            f"{name}.factors: expected shape [B, 2, L, K] with [B, 2, L] = {dones_shape}, got {tuple(np.shape(pairs.factors))}"
        )
    return dones_shape[0], dones_shape[2]


def check_preferences(prefs: Any, name: str = "prefs") -> int:
    """Validate a ``Preferences`` container; returns B.

    Raises:
        ValueError: wrong container type, label shape not ``[B]`` or labels outside [0, 1].
    """
    if not isinstance(prefs, Preferences):
        raise ValueError(f"{name}: expected a Preferences, got {type(prefs).__name__}")
    num_pairs, _ = check_fragment_pairs(prefs.pairs, f"{name}.pairs")
    labels_shape = tuple(np.shape(prefs.labels))
    if labels_shape != (num_pairs,):
        raise ValueError(f"{name}.labels: expected shape ({num_pairs},) ([B]), got {labels_shape}")
    if not isinstance(prefs.labels, jax.core.Tracer):
        labels = np.asarray(prefs.labels)
        if labels.size and not (np.all(labels >= 0) and np.all(labels <= 1)):
            raise ValueError(
                f"{name}.labels: expected values in [0, 1] (NaN pairs must be dropped), got min {np.nanmin(labels) if np.isfinite(labels).any() else labels.min()} and max {labels.max()}"
            )
    return num_pairs


def segment_scores(
    model: RewardModelLike,
    params: Any,
    pairs: FragmentPairs,
    *,
    preference_model: PreferenceModel = PreferenceModel(),
) -> jax.Array:
    """Per-segment scores of every ensemble member: ``[E, B, 2]`` (returns for the return models).

    The reward model is applied once to the flattened ``[B*2*L]`` transitions.

    Args:
        model: a reward model with ``apply(params, obs, acts, next_obs, dones) -> [E, N]``.
        params: its parameters.
        pairs: B fragment pairs.
        preference_model: its ``name`` picks the score: ``"partial_return"`` (R = Σ r_t),
            ``"discounted_return"`` (R = Σ_t γ^{L−1−t} r_t, a myopic
            teacher's return, γ its ``discount``) or ``"regret"`` (score
            −regret(σ) = Σ_t A(s_t, a_t) from ``model.advantage``; Knox et al. 2024). Its
            temperature and label noise do not enter the scores.

    Returns:
        ``[E, B, 2]`` float32 scores.

    Raises:
        ValueError: ``preference_model`` is not a ``PreferenceModel``, or malformed ``pairs``.
    """
    check_preference_model(preference_model)
    check_fragment_pairs(pairs)
    assert preference_model.discount is not None  # __post_init__ fills the model's default
    return _SCORE_FNS[preference_model.name](model, params, pairs, preference_model.discount)


def preference_probabilities(
    model: RewardModelLike,
    params: Any,
    pairs: FragmentPairs,
    *,
    preference_model: PreferenceModel = PreferenceModel(),
) -> jax.Array:
    """P(σ¹ ≻ σ²) = logistic((s¹ − s²)/τ) of every ensemble member for every pair: ``[E, B]``.

    The model's probabilities without label noise (``preference_model.label_noise`` is not applied).
    """
    scores = segment_scores(model, params, pairs, preference_model=preference_model)
    return jax.vmap(jax.vmap(bradley_terry_probability, in_axes=(0, 0, None)), in_axes=(0, 0, None))(
        scores[..., 0], scores[..., 1], preference_model.temperature
    )


def weighted_member_losses(losses: jax.Array, weights: jax.Array) -> jax.Array:
    """Per-member weighted mean Σ_b w_eb l_eb / Σ_b w_eb (0 where a member has no weight): ``[E]``."""
    weights = jnp.broadcast_to(weights, losses.shape)
    total = jnp.sum(weights, axis=-1)
    return jnp.sum(weights * losses, axis=-1) / jnp.maximum(total, jnp.finfo(losses.dtype).tiny)


def pair_losses(
    model: RewardModelLike,
    params: Any,
    prefs: Preferences,
    *,
    preference_model: PreferenceModel = PreferenceModel(),
) -> tuple[jax.Array, jax.Array]:
    """Bradley–Terry losses and probabilities (without label noise) of every member on every pair: two ``[E, B]`` arrays."""
    check_preferences(prefs)
    scores = segment_scores(model, params, prefs.pairs, preference_model=preference_model)
    temperature, label_noise = preference_model.temperature, preference_model.label_noise
    labels = jnp.asarray(prefs.labels, scores.dtype)
    per_pair = jax.vmap(bradley_terry_loss, in_axes=(0, 0, 0, None, None))
    losses = jax.vmap(per_pair, in_axes=(0, 0, None, None, None))(
        scores[..., 0], scores[..., 1], labels, temperature, label_noise
    )
    probabilities = jax.nn.sigmoid(bradley_terry_logit(scores[..., 0], scores[..., 1], temperature))
    return losses, probabilities


def preference_loss(
    model: RewardModelLike,
    params: Any,
    prefs: Preferences,
    *,
    preference_model: PreferenceModel = PreferenceModel(),
    weights: jax.Array | None = None,
) -> jax.Array:
    """Mean Bradley–Terry cross-entropy of a reward model (ensemble) on labelled pairs.

    Each ensemble member e has its own loss L_e = Σ_b w_eb ℓ_eb / Σ_b w_eb with
    ℓ_eb = −[y_b log P'_eb + (1 − y_b) log(1 − P'_eb)] and
    P'_eb = ε/2 + (1 − ε)·logistic((s¹_eb − s²_eb)/τ); the result is (1/E) Σ_e L_e, so
    the gradient trains every member on its own predictions (no averaging of rewards).

    Args:
        model: reward model with ``apply(params, obs, acts, next_obs, dones) -> [E, N]``.
        params: its parameters (differentiate w.r.t. them, e.g. ``params.net``).
        prefs: B labelled pairs, labels in [0, 1].
        preference_model: the score s (``PreferenceModel("regret")`` needs ``model.advantage``;
            see ``rewardlab.preferences.TabularRegretModel``), temperature τ, in-segment
            discount γ and label noise ε.
        weights: optional ``[B]`` (padding mask) or ``[E, B]`` (bootstrap counts per member) weights.

    Returns:
        Scalar loss.

    Raises:
        ValueError: ``preference_model`` is not a ``PreferenceModel``, malformed ``prefs`` or
            ``weights`` of the wrong shape.

    Example:
        >>> import jax.numpy as jnp, numpy as np
        >>> from rewardlab._types import FragmentPairs, Preferences
        >>> class TrueReward:  # reward = first observation feature; one ensemble member
        ...     def apply(self, params, obs, acts, next_obs, dones):
        ...         return obs[None, :, 0]
        >>> obs = np.array([[[[1.0], [1.0]], [[0.0], [0.0]]]], np.float32)  # B=1, L=2: R¹=2, R²=0
        >>> pairs = FragmentPairs(obs, np.zeros((1, 2, 2, 1)), obs, np.zeros((1, 2, 2), bool), np.zeros((1, 2, 2)))
        >>> prefs = Preferences(pairs, np.ones(1))
        >>> round(float(preference_loss(TrueReward(), None, prefs)), 4)  # −log σ(2)
        0.1269
        >>> round(float(preference_loss(TrueReward(), None, prefs, preference_model=PreferenceModel(temperature=2.0))), 4)  # −log σ(1)
        0.3133
    """
    losses, _ = pair_losses(model, params, prefs, preference_model=preference_model)
    if weights is None:
        weights = jnp.ones(losses.shape[1], losses.dtype)
    if tuple(jnp.shape(weights)) not in ((losses.shape[1],), tuple(losses.shape)):
        raise ValueError(
            f"weights: expected shape ({losses.shape[1]},) or {tuple(losses.shape)} ([B] or [E, B]), got {tuple(jnp.shape(weights))}"
        )
    return jnp.mean(weighted_member_losses(losses, jnp.asarray(weights, losses.dtype)))
