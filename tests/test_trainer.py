"""Reward training on preferences: learning, masking of padded batches, bucketing, bootstrap."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rewardlab._types import FragmentPairs, Preferences
from rewardlab.preferences import (
    PairScorer,
    PreferenceModel,
    RewardTrainer,
    TransitionBuffer,
    dataset_bucket,
    default_optimizer,
    label,
    make_teacher,
    preference_accuracy,
    preference_loss,
    reward_correlation,
    train_reward,
)


class StandInParams(NamedTuple):
    net: Any
    obs_stats: Any = None


class LinearEnsemble:
    """r_e(s, a) = w_e · [s, a]: the RewardModel interface, small and exact."""

    def __init__(self, obs_dim: int, act_dim: int, ensemble_size: int = 1) -> None:
        self.obs_dim, self.act_dim, self.ensemble_size = obs_dim, act_dim, ensemble_size

    def init(self, key: jax.Array) -> StandInParams:
        return StandInParams({"w": 0.1 * jax.random.normal(key, (self.ensemble_size, self.obs_dim + self.act_dim))})

    def apply(self, params, obs, acts, next_obs, dones):
        x = jnp.concatenate([jnp.asarray(obs, jnp.float32), jnp.asarray(acts, jnp.float32)], axis=-1)
        return jnp.einsum("nd,ed->en", x, params.net["w"])


TRUE_W = np.array([1.0, -0.5, 0.25, 0.0, 0.75, -1.0], np.float32)  # obs 4 + act 2


def _buffer(seed: int, steps: int = 400) -> TransitionBuffer:
    """Random-walk observations, random actions, linear true reward r = w·[s, a]; episodes of 100 steps."""
    rng = np.random.default_rng(seed)
    buffer = TransitionBuffer(capacity_steps=steps, num_envs=2)
    obs = rng.normal(size=(2, 4)).astype(np.float32)
    for t in range(steps):
        acts = rng.uniform(-1, 1, size=(2, 2)).astype(np.float32)
        next_obs = (0.9 * obs + 0.3 * rng.normal(size=(2, 4))).astype(np.float32)
        rews = np.concatenate([obs, acts], axis=1) @ TRUE_W
        buffer.add(obs, acts, next_obs, np.full(2, (t + 1) % 100 == 0), rews)
        obs = next_obs
    return buffer


def _oracle_prefs(buffer: TransitionBuffer, num_pairs: int, seed: int, length: int = 10) -> Preferences:
    rng = np.random.default_rng(seed)
    return label(buffer.sample_pairs(num_pairs, length, rng), make_teacher("oracle"), rng)


def test_training_on_oracle_labels_reaches_high_heldout_accuracy():
    buffer = _buffer(0)
    train, heldout = _oracle_prefs(buffer, 200, 1), _oracle_prefs(buffer, 300, 2)
    model = LinearEnsemble(4, 2, ensemble_size=3)
    params = model.init(jax.random.key(0))
    scorer = PairScorer(model)
    before = preference_accuracy(scorer, params, heldout)
    params, _opt_state, metrics = train_reward(
        model, params, None, train, jax.random.key(1), epochs=30, batch_size=32, optimizer=default_optimizer(3e-3)
    )
    after = preference_accuracy(scorer, params, heldout)
    assert metrics["loss"].shape == (30,) and metrics["accuracy"].shape == (30,)
    assert after > 0.9 and after > before
    assert metrics["loss"][-1] < metrics["loss"][0]
    assert reward_correlation(scorer, params, heldout.pairs)["segment"] > 0.9
    assert scorer.chunk_probabilities._cache_size() == 1  # 300 pairs = 3 chunks of 128, twice: one compilation


def test_epoch_loss_equals_full_dataset_loss_and_padding_is_skipped():
    # D = 5 pairs, batch 2: bucket 8, four minibatches: two full, one partial (1 pair), one only padding.
    buffer = _buffer(1, steps=200)
    prefs = _oracle_prefs(buffer, 5, 3)
    assert len(prefs.labels) == 5 and dataset_bucket(5, 2) == 8
    model = LinearEnsemble(4, 2, ensemble_size=2)
    params = model.init(jax.random.key(2))
    frozen = RewardTrainer(model, optax.sgd(0.0), batch_size=2)
    _, _, metrics = frozen.train(params, frozen.init(params), prefs, jax.random.key(0))
    assert metrics["loss"][0] == pytest.approx(float(preference_loss(model, params, prefs)), rel=1e-5)
    noisy = PreferenceModel(temperature=0.5, label_noise=0.1)  # the trainer's loss is preference_loss under its model
    frozen_noisy = RewardTrainer(model, optax.sgd(0.0), batch_size=2, preference_model=noisy)
    _, _, noisy_metrics = frozen_noisy.train(params, frozen_noisy.init(params), prefs, jax.random.key(0))
    assert noisy_metrics["loss"][0] == pytest.approx(
        float(preference_loss(model, params, prefs, preference_model=noisy)), rel=1e-5
    )
    assert noisy_metrics["loss"][0] != pytest.approx(metrics["loss"][0], rel=1e-3)
    expected_accuracy = preference_accuracy(PairScorer(model), params, prefs)
    assert metrics["accuracy"][0] == pytest.approx(expected_accuracy)
    adam = RewardTrainer(model, optax.adam(1e-2), batch_size=2)
    _, opt_state, _ = adam.train(params, adam.init(params), prefs, jax.random.key(0), epochs=3)
    assert int(opt_state[0].count) == 3 * 3  # ceil(5 / 2) real steps per epoch; the padding batch is skipped


def _growing_dataset_setup() -> tuple[TransitionBuffer, LinearEnsemble, RewardTrainer, StandInParams, Any]:
    """A buffer to draw pairs from and a fresh trainer (batches of 16) with its params and Adam state."""
    model = LinearEnsemble(4, 2)
    trainer = RewardTrainer(model, optax.adam(1e-3), batch_size=16)
    params = model.init(jax.random.key(0))
    return _buffer(2, steps=200), model, trainer, params, trainer.init(params)


def test_no_recompile_within_a_dataset_bucket():
    buffer, _model, trainer, params, opt_state = _growing_dataset_setup()
    for num_pairs in (17, 20, 31, 32):  # all in the 32-pair bucket
        params, opt_state, _ = trainer.train(
            params, opt_state, _oracle_prefs(buffer, num_pairs, num_pairs), jax.random.key(num_pairs)
        )
    assert trainer.epoch._cache_size() == 1
    trainer.train(params, opt_state, _oracle_prefs(buffer, 40, 40), jax.random.key(0))
    assert trainer.epoch._cache_size() == 2


def test_min_dataset_size_compiles_a_growing_dataset_once_and_trains_the_same():
    buffer, model, trainer, params, opt_state = _growing_dataset_setup()
    for num_pairs in (10, 40, 90, 120):  # four buckets without the budget, one with it
        params, opt_state, metrics = trainer.train(
            params,
            opt_state,
            _oracle_prefs(buffer, num_pairs, num_pairs),
            jax.random.key(num_pairs),
            min_dataset_size=120,
        )
        assert np.isfinite(metrics["loss"]).all()
    assert trainer.epoch._cache_size() == 1
    # Padding only adds skipped batches: a full pass over the same pairs gives the same loss.
    prefs = _oracle_prefs(buffer, 24, 5)
    start = model.init(jax.random.key(1))
    frozen = RewardTrainer(model, optax.sgd(0.0), batch_size=8)
    _, _, small = frozen.train(start, frozen.init(start), prefs, jax.random.key(2))
    _, _, padded = frozen.train(start, frozen.init(start), prefs, jax.random.key(2), min_dataset_size=200)
    np.testing.assert_allclose(padded["loss"], small["loss"], rtol=1e-6)
    with pytest.raises(ValueError, match="min_dataset_size: expected an integer >= 0"):
        trainer.train(params, opt_state, prefs, jax.random.key(0), min_dataset_size=-1)


def test_train_reward_continues_from_its_state_as_a_held_trainer_does_and_validates():
    buffer = _buffer(3, steps=200)
    prefs = _oracle_prefs(buffer, 12, 0)
    model = LinearEnsemble(4, 2)
    start = model.init(jax.random.key(0))
    optimizer = optax.adam(1e-3)
    params, opt_state, _ = train_reward(model, start, None, prefs, jax.random.key(0), optimizer=optimizer)
    params, opt_state, metrics = train_reward(
        model, params, opt_state, prefs, jax.random.key(1), optimizer=optimizer, epochs=2
    )
    assert metrics["loss"].shape == (2,) and np.isfinite(metrics["loss"]).all()
    # The same two calls on one held trainer: the same numbers, and one compilation for both.
    trainer = RewardTrainer(model, optimizer, batch_size=64)
    held, held_state, _ = trainer.train(start, trainer.init(start), prefs, jax.random.key(0))
    held, held_state, held_metrics = trainer.train(held, held_state, prefs, jax.random.key(1), epochs=2)
    np.testing.assert_array_equal(held.net["w"], params.net["w"])
    np.testing.assert_array_equal(held_metrics["loss"], metrics["loss"])
    assert trainer.epoch._cache_size() == 1
    with pytest.raises(ValueError, match="epochs"):
        train_reward(model, params, opt_state, prefs, jax.random.key(0), epochs=0)
    with pytest.raises(ValueError, match="batch_size"):
        train_reward(model, params, opt_state, prefs, jax.random.key(0), batch_size=0)
    with pytest.raises(ValueError, match=r"PreferenceModel\('regret'\) needs a model with advantage"):
        train_reward(model, params, opt_state, prefs, jax.random.key(0), preference_model=PreferenceModel("regret"))
    with pytest.raises(ValueError, match="preference_model: expected a PreferenceModel"):
        RewardTrainer(model, preference_model="regret")
    empty = Preferences(FragmentPairs(*(np.asarray(f)[:0] for f in prefs.pairs[:5])), prefs.labels[:0])
    with pytest.raises(ValueError, match="prefs"):
        train_reward(model, params, opt_state, empty, jax.random.key(0))


def test_bootstrap_members_diverge_and_weight_decay_shrinks():
    buffer = _buffer(4, steps=200)
    prefs = _oracle_prefs(buffer, 64, 0)
    model = LinearEnsemble(4, 2, ensemble_size=2)
    same = StandInParams({"w": jnp.zeros((2, 6))})
    plain, _, _ = train_reward(model, same, None, prefs, jax.random.key(0), epochs=3, optimizer=optax.sgd(0.1))
    np.testing.assert_allclose(plain.net["w"][0], plain.net["w"][1], rtol=1e-6)  # identical members stay identical
    boot, _, _ = train_reward(
        model, same, None, prefs, jax.random.key(0), epochs=3, optimizer=optax.sgd(0.1), bootstrap=True
    )
    assert float(jnp.abs(boot.net["w"][0] - boot.net["w"][1]).max()) > 1e-3
    decayed, _, _ = train_reward(
        model, plain, None, prefs, jax.random.key(0), epochs=2, optimizer=default_optimizer(1e-3, 10.0)
    )
    assert float(jnp.linalg.norm(decayed.net["w"])) < float(jnp.linalg.norm(plain.net["w"]))
