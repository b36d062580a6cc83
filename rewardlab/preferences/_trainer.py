"""Training a reward model (ensemble) on preferences with the Bradley–Terry loss and Optax.

One epoch is one jitted call: the labelled pairs are shuffled on device and a ``lax.scan``
runs one optimiser step per minibatch of ``batch_size`` pairs. The dataset is padded to a
size bucket (the next power of two, at least ``batch_size``) so that a growing dataset only
recompiles when it crosses a power of two; padded slots carry zero weight, the last partial
minibatch is masked, and minibatches made only of padding are skipped with ``lax.cond``
(no optimiser step, so Adam's moments are untouched).

References:
    Christiano et al., "Deep reinforcement learning from human preferences", NeurIPS 2017.
    Lee et al., "PEBBLE", ICML 2021 (ensemble of reward models trained on the same labels).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rewardlab._checks import check_prng_key
from rewardlab._types import FragmentPairs, Preferences, RewardModelLike
from rewardlab.preferences._bradley_terry import check_preferences, pair_losses, weighted_member_losses
from rewardlab.preferences._preference_model import PreferenceModel, check_preference_model


def default_optimizer(learning_rate: float = 3e-4, weight_decay: float = 0.0) -> optax.GradientTransformation:
    """Adam (``weight_decay`` = 0) or AdamW."""
    if not learning_rate > 0:
        raise ValueError(f"learning_rate: expected > 0, got {learning_rate!r}")
    if weight_decay < 0:
        raise ValueError(f"weight_decay: expected >= 0, got {weight_decay!r}")
    if weight_decay == 0:
        return optax.adam(learning_rate)
    return optax.adamw(learning_rate, weight_decay=weight_decay)


def dataset_bucket(num_pairs: int, batch_size: int) -> int:
    """Padded dataset size: the next power of two >= ``num_pairs``, at least ``batch_size``."""
    return max(int(batch_size), 1 << max(0, math.ceil(math.log2(max(num_pairs, 1)))))


def _pad_preferences(prefs: Preferences, size: int) -> Preferences:
    """Host-side padding to ``size`` pairs by repeating pair 0 (weights mask the copies)."""
    num_pairs = len(prefs.labels)
    index = np.concatenate([np.arange(num_pairs), np.zeros(size - num_pairs, np.int64)])
    take = lambda x: np.asarray(x)[index]  # noqa: E731
    pairs = prefs.pairs
    padded = FragmentPairs(
        jax.tree.map(take, pairs.obs),
        take(pairs.acts),
        jax.tree.map(take, pairs.next_obs),
        take(pairs.dones).astype(bool),
        take(pairs.rews).astype(np.float32),
        None,
        None if pairs.terminated is None else take(pairs.terminated).astype(bool),
    )
    return Preferences(padded, take(prefs.labels).astype(np.float32))


class EpochInputs(NamedTuple):
    """Arguments of ``RewardTrainer.epoch`` after the parameters and optimiser state."""

    data: Preferences  # pairs padded to the size bucket S: [S, 2, L, ...], labels [S]
    num_pairs: jax.Array  # int32 scalar: the first num_pairs entries are real
    member_weights: jax.Array  # [E, S] per-member pair weights (bootstrap counts or ones)


class RewardTrainer:
    """Thin shell around a jitted Bradley–Terry training epoch (static settings only).

    The epoch compiles once per dataset size bucket of this trainer: a loop that trains again
    and again keeps one trainer (``rl.train_pbrl`` does), where ``train_reward`` builds a new
    one, and compiles anew, on every call.

    Args:
        model: reward model with ``apply``/``ensemble_size`` (and ``update_normalizer``).
        optimizer: Optax transformation of ``params.net``; default Adam(3e-4).
        batch_size: pairs per optimiser step.
        preference_model: score, temperature τ, in-segment discount γ and label noise ε of the loss
            (under ``PreferenceModel("regret")`` the model needs ``advantage``, and a model's
            ``regret_auxiliary_loss(params, pairs, pair_weights)`` is added).
        bootstrap: weight every pair by an independent Poisson(1) count per member (drawn once
            per ``train`` call), an online bootstrap that decorrelates ensemble members.
        update_normalizer: merge the observations of the labelled pairs into the model's running
            input statistics once at the start of each ``train`` call (pairs passed again in a later
            call are merged again, so older labels weigh more in the statistics).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from typing import NamedTuple
        >>> class Params(NamedTuple):
        ...     net: jax.Array
        >>> class Linear:  # r = w·s, one ensemble member
        ...     ensemble_size = 1
        ...     def apply(self, params, obs, acts, next_obs, dones):
        ...         return (obs @ params.net)[None]
        >>> trainer = RewardTrainer(Linear(), default_optimizer(1e-2), batch_size=32)
        >>> params = Params(jnp.zeros(3))
        >>> opt_state = trainer.init(params)
    """

    def __init__(
        self,
        model: RewardModelLike,
        optimizer: optax.GradientTransformation | None = None,
        *,
        batch_size: int = 64,
        preference_model: PreferenceModel = PreferenceModel(),
        bootstrap: bool = False,
        update_normalizer: bool = True,
    ) -> None:
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size: expected an integer >= 1, got {batch_size!r}")
        check_preference_model(preference_model)
        self.model = model
        self.optimizer = default_optimizer() if optimizer is None else optimizer
        self.batch_size = int(batch_size)
        self.preference_model = preference_model
        self.bootstrap = bool(bootstrap)
        self.update_normalizer = bool(update_normalizer)
        self.epoch = jax.jit(self._epoch)

    def init(self, params: Any) -> optax.OptState:
        """Optimiser state for ``params.net``."""
        return self.optimizer.init(params.net)

    # Pure core ---------------------------------------------------------------------------
    def _loss(self, net: Any, params: Any, batch: Preferences, weights: jax.Array) -> tuple[jax.Array, jax.Array]:
        losses, probabilities = pair_losses(
            self.model, params._replace(net=net), batch, preference_model=self.preference_model
        )
        loss = jnp.mean(weighted_member_losses(losses, weights))
        auxiliary = getattr(self.model, "regret_auxiliary_loss", None)
        if self.preference_model.name == "regret" and auxiliary is not None:
            # Models that learn the candidate reward's Q alongside it (ContinuousRegretModel) add their TD loss.
            loss = loss + auxiliary(params._replace(net=net), batch.pairs, jnp.mean(weights, axis=0))
        return loss, probabilities

    def _epoch(
        self,
        params: Any,
        opt_state: Any,
        data: Preferences,
        num_pairs: jax.Array,
        member_weights: jax.Array,
        key: jax.Array,
    ) -> tuple[Any, Any, dict[str, jax.Array]]:
        """One pass over ``data`` (padded to a bucket; the first ``num_pairs`` are real)."""
        size = data.labels.shape[0]
        num_batches = -(-size // self.batch_size)
        slots = num_batches * self.batch_size
        sort_keys = jnp.where(jnp.arange(size) < num_pairs, jax.random.uniform(key, (size,)), 2.0)
        order = jnp.argsort(sort_keys)  # the real pairs in random order, then the padding
        order = jnp.concatenate([order, jnp.zeros(slots - size, order.dtype)]).reshape(num_batches, self.batch_size)
        valid = (jnp.arange(slots) < num_pairs).reshape(num_batches, self.batch_size)

        def train_step(
            carry: tuple[Any, Any], batch_index: tuple[jax.Array, jax.Array]
        ) -> tuple[tuple[Any, Any], jax.Array]:
            index, mask = batch_index

            def update(carry: tuple[Any, Any]) -> tuple[tuple[Any, Any], jax.Array]:
                params, opt_state = carry
                batch = jax.tree.map(lambda x: x[index], data)
                weights = mask.astype(jnp.float32)[None, :] * member_weights[:, index]
                (loss, probabilities), grads = jax.value_and_grad(self._loss, has_aux=True)(
                    params.net, params, batch, weights
                )
                updates, opt_state = self.optimizer.update(grads, opt_state, params.net)
                params = params._replace(net=optax.apply_updates(params.net, updates))
                mean_probability = jnp.mean(probabilities, axis=0)
                decided = mask & (batch.labels != 0.5)
                correct = decided & ((mean_probability > 0.5) == (batch.labels > 0.5))
                count = jnp.sum(mask)
                stats = jnp.stack([loss * count, count, jnp.sum(correct), jnp.sum(decided)]).astype(jnp.float32)
                return (params, opt_state), stats

            def skip(carry: tuple[Any, Any]) -> tuple[tuple[Any, Any], jax.Array]:
                return carry, jnp.zeros(4, jnp.float32)

            return jax.lax.cond(mask[0], update, skip, carry)

        (params, opt_state), stats = jax.lax.scan(train_step, (params, opt_state), (order, valid))
        totals = jnp.sum(stats, axis=0)
        metrics = {
            "loss": totals[0] / jnp.maximum(totals[1], 1.0),
            "accuracy": jnp.where(totals[3] > 0, totals[2] / jnp.maximum(totals[3], 1.0), jnp.nan),
        }
        return params, opt_state, metrics

    # Host shell ----------------------------------------------------------------------------
    def prepare(self, prefs: Preferences, key: jax.Array, min_dataset_size: int = 0) -> EpochInputs:
        """Device-side inputs of ``epoch``: the pairs padded to their size bucket (at least that of
        ``min_dataset_size`` pairs), count and member weights."""
        num_pairs = check_preferences(prefs)
        size = dataset_bucket(max(num_pairs, int(min_dataset_size)), self.batch_size)
        data = jax.device_put(_pad_preferences(prefs, size))
        ensemble_size = int(getattr(self.model, "ensemble_size", 1))
        if self.bootstrap:
            member_weights = jax.random.poisson(key, 1.0, (ensemble_size, size)).astype(jnp.float32)
        else:
            member_weights = jnp.ones((ensemble_size, size), jnp.float32)
        return EpochInputs(data, jnp.int32(num_pairs), member_weights)

    def train(
        self,
        params: Any,
        opt_state: Any,
        prefs: Preferences,
        key: jax.Array,
        *,
        epochs: int = 1,
        min_dataset_size: int = 0,
    ) -> tuple[Any, Any, dict[str, np.ndarray]]:
        """Run ``epochs`` epochs; returns (params, opt_state, {"loss": [epochs], "accuracy": [epochs]}).

        ``loss`` is the mean training loss over the epoch's pairs, ``accuracy`` the preference
        accuracy of the ensemble mean on the epoch's non-tied pairs, both before each step's update.
        ``min_dataset_size`` pads the dataset as if it held that many pairs: a loop whose dataset
        grows to a known budget compiles the epoch once (padding batches are skipped, not computed).
        """
        check_prng_key("key", key)
        if not isinstance(epochs, (int, np.integer)) or epochs < 1:
            raise ValueError(f"epochs: expected an integer >= 1, got {epochs!r}")
        if (
            isinstance(min_dataset_size, bool)
            or not isinstance(min_dataset_size, (int, np.integer))
            or min_dataset_size < 0
        ):
            raise ValueError(f"min_dataset_size: expected an integer >= 0, got {min_dataset_size!r}")
        num_pairs = check_preferences(prefs)
        if num_pairs == 0:
            raise ValueError("prefs: expected at least one labelled pair, got 0")
        if not hasattr(params, "net") or not hasattr(params, "_replace"):
            raise ValueError(
                f"params: expected a RewardParams-like NamedTuple with a 'net' field, got {type(params).__name__}"
            )
        if self.update_normalizer and hasattr(self.model, "update_normalizer"):
            length = np.shape(prefs.pairs.dones)[2]
            flat_obs = jax.tree.map(
                lambda x: np.reshape(np.asarray(x), (num_pairs * 2 * length, *np.shape(x)[3:])), prefs.pairs.obs
            )
            params = self.model.update_normalizer(params, flat_obs)
        key, prepare_key = jax.random.split(key)
        inputs = self.prepare(prefs, prepare_key, min_dataset_size)
        history: list[dict[str, jax.Array]] = []
        for epoch_key in jax.random.split(key, int(epochs)):
            params, opt_state, metrics = self.epoch(params, opt_state, *inputs, epoch_key)
            history.append(metrics)
        return params, opt_state, {name: np.asarray(jnp.stack([m[name] for m in history])) for name in history[0]}


def train_reward(
    model: RewardModelLike,
    params: Any,
    opt_state: Any,
    prefs: Preferences,
    key: jax.Array,
    *,
    epochs: int = 1,
    batch_size: int = 64,
    optimizer: optax.GradientTransformation | None = None,
    preference_model: PreferenceModel = PreferenceModel(),
    bootstrap: bool = False,
    update_normalizer: bool = True,
    min_dataset_size: int = 0,
) -> tuple[Any, Any, dict[str, np.ndarray]]:
    """Train a reward model on labelled pairs with the Bradley–Terry loss.

    Minimises (1/E) Σ_e mean_b −[y_b log P'_eb + (1 − y_b) log(1 − P'_eb)] over ``params.net``
    with ``optimizer`` (default Adam, lr 3e-4; ``default_optimizer(lr, weight_decay)`` gives
    AdamW). Each call builds a :class:`RewardTrainer` and compiles its epoch; to train again
    and again without recompiling, keep a ``RewardTrainer`` and call its ``train``.

    Args:
        model: reward model; ``params`` its ``RewardParams``.
        opt_state: state of ``optimizer`` for ``params.net``; None initialises it.
        prefs: B labelled pairs (labels in [0, 1]).
        key: JAX PRNG key (shuffling, bootstrap).
        epochs: passes over the data.
        batch_size: pairs per optimiser step.
        optimizer: Optax transformation of ``params.net``.
        preference_model: score, temperature, in-segment discount and label noise (see ``preference_loss``).
        bootstrap: Poisson(1) weights per member and pair.
        update_normalizer: merge the pairs' observations into the input statistics first.
        min_dataset_size: pad the dataset to the size bucket of this many pairs (see ``RewardTrainer.train``).

    Returns:
        ``(params, opt_state, metrics)`` with ``metrics["loss"]`` and ``metrics["accuracy"]`` of shape ``[epochs]``.

    Raises:
        ValueError: bad settings or malformed ``prefs``.

    Example:
        >>> import jax, jax.numpy as jnp, numpy as np
        >>> from typing import NamedTuple
        >>> from rewardlab._types import FragmentPairs
        >>> from rewardlab.preferences import label, oracle
        >>> class Params(NamedTuple):
        ...     net: jax.Array
        >>> class Linear:  # r = w·s, one ensemble member
        ...     ensemble_size = 1
        ...     def apply(self, params, obs, acts, next_obs, dones):
        ...         return (obs @ params.net)[None]
        >>> rng = np.random.default_rng(0)
        >>> obs = rng.normal(size=(256, 2, 5, 3)).astype(np.float32)  # B=256 pairs, L=5, true r = w·s
        >>> pairs = FragmentPairs(obs, obs[..., :1], obs, np.zeros((256, 2, 5), bool), obs @ np.float32([1, -1, 0.5]))
        >>> prefs = label(pairs, oracle(), rng)
        >>> params, opt_state, metrics = train_reward(Linear(), Params(jnp.zeros(3)), None, prefs, jax.random.key(0),
        ...                                           epochs=20, batch_size=32, optimizer=default_optimizer(1e-2))
        >>> metrics["accuracy"].shape, bool(metrics["accuracy"][-1] > 0.9)
        ((20,), True)
    """
    trainer = RewardTrainer(
        model,
        optimizer,
        batch_size=batch_size,
        preference_model=preference_model,
        bootstrap=bootstrap,
        update_normalizer=update_normalizer,
    )
    if opt_state is None:
        opt_state = trainer.init(params)
    return trainer.train(params, opt_state, prefs, key, epochs=epochs, min_dataset_size=min_dataset_size)
