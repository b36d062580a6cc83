"""Bradley–Terry model and loss, fragments and the transition buffer, query selection, metrics."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardlab._types import FragmentPairs, Preferences, Trajectory
from rewardlab.preferences import (
    PREFERENCE_MODELS,
    PairScorer,
    PreferenceModel,
    TransitionBuffer,
    accuracy_from_probabilities,
    bradley_terry_loss,
    bradley_terry_probability,
    compose,
    disagreement_score,
    entropy_score,
    expected_calibration_error,
    fragment_trajectories,
    myopic,
    oracle,
    pearson_correlation,
    preference_accuracy,
    preference_calibration,
    preference_loss,
    preference_probabilities,
    random_fragmenter,
    reward_correlation,
    segment_return,
    segment_scores,
    select_queries,
    synthetic_pairs,
)
from rewardlab.testing import numpy_bradley_terry_probability, numpy_preference_loss


class StandInParams(NamedTuple):
    net: Any  # {"w": [E, D], "b": [E]}
    obs_stats: Any = None


class LinearEnsemble:
    """r_e(s, a) = w_e · [s, a] + b_e: the RewardModel interface with known outputs."""

    def __init__(self, obs_dim: int, act_dim: int, ensemble_size: int = 1) -> None:
        self.obs_dim, self.act_dim, self.ensemble_size = obs_dim, act_dim, ensemble_size

    def init(self, key: jax.Array) -> StandInParams:
        w = 0.5 * jax.random.normal(key, (self.ensemble_size, self.obs_dim + self.act_dim))
        return StandInParams({"w": w, "b": jnp.zeros(self.ensemble_size)})

    def apply(self, params, obs, acts, next_obs, dones):
        x = jnp.concatenate([jnp.asarray(obs, jnp.float32), jnp.asarray(acts, jnp.float32)], axis=-1)
        return jnp.einsum("nd,ed->en", x, params.net["w"]) + params.net["b"][:, None]


def _random_pairs(
    rng: np.random.Generator, num_pairs: int, length: int, obs_dim: int = 3, act_dim: int = 2
) -> FragmentPairs:
    obs = rng.normal(size=(num_pairs, 2, length, obs_dim)).astype(np.float32)
    acts = rng.normal(size=(num_pairs, 2, length, act_dim)).astype(np.float32)
    dones = np.zeros((num_pairs, 2, length), bool)
    return FragmentPairs(obs, acts, obs + 1, dones, rng.normal(size=(num_pairs, 2, length)).astype(np.float32))


# -- Bradley–Terry ---------------------------------------------------------------------------


def test_probability_hand_computed():
    assert float(bradley_terry_probability(2.0, 0.0)) == pytest.approx(1 / (1 + math.exp(-2)), rel=1e-6)
    assert float(bradley_terry_probability(2.0, 0.0, temperature=2.0)) == pytest.approx(0.7310586, rel=1e-6)
    assert float(bradley_terry_probability(0.0, 2.0, temperature=0.5)) == pytest.approx(1 / (1 + math.exp(4)), rel=1e-5)
    assert float(bradley_terry_probability(3.0, 3.0)) == 0.5


def test_label_noise_formula():
    eps = 0.2
    p = 1 / (1 + math.exp(-1.5))
    assert float(bradley_terry_probability(1.5, 0.0, label_noise=eps)) == pytest.approx(
        eps / 2 + (1 - eps) * p, rel=1e-6
    )
    # Saturated model: P' tends to ε/2 and 1 − ε/2, and the loss stays bounded by −log(ε/2).
    assert float(bradley_terry_probability(1e4, 0.0, label_noise=eps)) == pytest.approx(1 - eps / 2, rel=1e-6)
    assert float(bradley_terry_probability(-1e4, 0.0, label_noise=eps)) == pytest.approx(eps / 2, rel=1e-5)
    assert float(bradley_terry_loss(-1e4, 0.0, 1.0, label_noise=eps)) == pytest.approx(-math.log(eps / 2), rel=1e-5)
    assert float(bradley_terry_loss(0.7, -0.3, 0.25, temperature=0.5, label_noise=eps)) == pytest.approx(
        -(
            0.25 * math.log(numpy_bradley_terry_probability(0.7, -0.3, 0.5, eps))
            + 0.75 * math.log(1 - numpy_bradley_terry_probability(0.7, -0.3, 0.5, eps))
        ),
        rel=1e-5,
    )


def test_segment_return_discount():
    assert float(segment_return(jnp.array([1.0, 2.0, 4.0]))) == 7.0
    assert float(segment_return(jnp.array([1.0, 2.0, 4.0]), 0.5)) == pytest.approx(0.25 + 1 + 4)


def test_discounted_return_model_is_the_myopic_teachers_return():
    """The learner's discounted_return score is the myopic teacher's return: γ runs back from the end."""
    rng = np.random.default_rng(0)
    rews = rng.normal(size=(64, 2, 5)).astype(np.float32)
    rews[0] = [
        [4.0, 0.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0, 3.0],
    ]  # myopic (γ = 0.5): 0.25 vs 3, from the start 4 vs 0.19
    pairs = synthetic_pairs(rews)._replace(obs=rews[..., None])  # obs = r, so r(s, a) = obs with w = [1, 0]
    model = LinearEnsemble(1, 1)
    params = StandInParams({"w": jnp.array([[1.0, 0.0]]), "b": jnp.zeros(1)})
    scores = np.asarray(
        segment_scores(model, params, pairs, preference_model=PreferenceModel("discounted_return", discount=0.5))
    )[0]
    np.testing.assert_allclose(scores, rews @ 0.5 ** np.arange(4, -1, -1), rtol=1e-5)
    assert scores[0, 0] < scores[0, 1]
    labels = compose(myopic(0.5), oracle())(pairs, np.random.default_rng(0))
    np.testing.assert_array_equal(labels, (scores[:, 0] > scores[:, 1]).astype(np.float32))


@settings(max_examples=40, deadline=None)
@given(
    st.floats(-50, 50),
    st.floats(-50, 50),
    st.floats(0.0, 1.0),
    st.floats(0.1, 10.0),
    st.floats(0.0, 0.5),
)
def test_swapping_pair_flips_probability_and_label(return_1, return_2, y, temperature, eps):
    p = float(bradley_terry_probability(return_1, return_2, temperature, eps))
    q = float(bradley_terry_probability(return_2, return_1, temperature, eps))
    assert p + q == pytest.approx(1.0, abs=1e-6)
    loss = float(bradley_terry_loss(return_1, return_2, y, temperature, eps))
    swapped = float(bradley_terry_loss(return_2, return_1, 1 - y, temperature, eps))
    assert loss == pytest.approx(swapped, rel=1e-4, abs=1e-5)
    assert math.isfinite(loss)


@pytest.mark.parametrize(
    ("name", "discount", "temperature", "eps"),
    [("partial_return", None, 1.0, 0.0), ("partial_return", 1.0, 2.5, 0.1), ("discounted_return", 0.9, 0.7, 0.05)],
)
def test_preference_loss_matches_numpy_reference(name, discount, temperature, eps):
    rng = np.random.default_rng(0)
    model = LinearEnsemble(3, 2, ensemble_size=3)
    params = model.init(jax.random.key(1))
    pairs = _random_pairs(rng, 6, 4)
    labels = np.array([1.0, 0.0, 0.5, 1.0, 0.25, 0.0], np.float32)
    weights = rng.integers(0, 3, size=(3, 6)).astype(np.float32)
    prefs = Preferences(pairs, labels)
    rewards = np.asarray(model.apply(params, pairs.obs.reshape(-1, 3), pairs.acts.reshape(-1, 2), None, None)).reshape(
        3, 6, 2, 4
    )
    preference_model = PreferenceModel(name, temperature=temperature, discount=discount, label_noise=eps)
    reference = dict(temperature=temperature, discount=1.0 if discount is None else discount, label_noise=eps)
    expected = numpy_preference_loss(rewards, labels, **reference, weights=weights)
    got = preference_loss(model, params, prefs, preference_model=preference_model, weights=weights)
    assert float(got) == pytest.approx(expected, rel=1e-5)
    unweighted = numpy_preference_loss(rewards, labels, **reference)
    assert float(preference_loss(model, params, prefs, preference_model=preference_model)) == pytest.approx(
        unweighted, rel=1e-5
    )
    jitted = jax.jit(lambda p: preference_loss(model, p, prefs, preference_model=preference_model, weights=weights))
    assert float(jitted(params)) == pytest.approx(expected, rel=1e-5)
    # Hashable and compared by value: a static argument of jax.jit compiles once for equal models.
    static = jax.jit(lambda p, pm: preference_loss(model, p, prefs, preference_model=pm), static_argnums=1)
    assert float(static(params, preference_model)) == pytest.approx(unweighted, rel=1e-5)
    static(params, PreferenceModel(name, temperature=temperature, discount=discount, label_noise=eps))
    assert static._cache_size() == 1


def test_preference_loss_gradients_finite_for_extreme_and_masked_pairs():
    rng = np.random.default_rng(1)
    model = LinearEnsemble(3, 2, ensemble_size=2)
    params = model.init(jax.random.key(0))
    pairs = _random_pairs(rng, 4, 3)
    pairs = pairs._replace(obs=pairs.obs * np.float32(1e4))
    weights = np.array([[1, 0, 0, 0], [0, 0, 0, 0]], np.float32)  # second member fully masked
    grads = jax.grad(
        lambda net: preference_loss(
            model,
            params._replace(net=net),
            Preferences(pairs, np.array([0.0, 1.0, 0.5, 1.0], np.float32)),
            weights=weights,
        )
    )(params.net)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
    assert float(jnp.abs(grads["w"][1]).sum()) == 0.0


def test_preference_model_dispatch_errors():
    model = LinearEnsemble(3, 2)
    params = model.init(jax.random.key(0))
    prefs = Preferences(_random_pairs(np.random.default_rng(0), 2, 3), np.ones(2, np.float32))
    assert PREFERENCE_MODELS == ("partial_return", "discounted_return", "regret")
    with pytest.raises(
        ValueError,
        match=r"preference_model: expected a PreferenceModel, e.g. PreferenceModel\('regret'\), got 'regret' \(str\)",
    ):
        preference_loss(model, params, prefs, preference_model="regret")
    with pytest.raises(
        ValueError, match=r"regret.*advantage"
    ):  # the regret model needs the candidate reward's advantage
        preference_loss(model, params, prefs, preference_model=PreferenceModel("regret"))


def test_preference_model_fields_are_checked_and_discount_resolved():
    assert PreferenceModel() == PreferenceModel("partial_return", 1.0, 1.0, 0.0)
    assert PreferenceModel("discounted_return").discount == 0.99
    assert PreferenceModel("discounted_return", discount=0.9).discount == 0.9
    assert PreferenceModel("regret").discount == 1.0
    assert hash(PreferenceModel(temperature=2)) == hash(PreferenceModel(temperature=2.0))
    with pytest.raises(
        ValueError, match=r"name: expected one of \('partial_return', 'discounted_return', 'regret'\), got 'cubic'"
    ):
        PreferenceModel("cubic")
    with pytest.raises(ValueError, match="discount: the partial_return model sums undiscounted terms"):
        PreferenceModel("partial_return", discount=0.9)
    with pytest.raises(ValueError, match="discount: the regret model sums undiscounted terms"):
        PreferenceModel("regret", discount=0.5)
    with pytest.raises(ValueError, match=r"discount: expected a value in \(0, 1\], got 1.5"):
        PreferenceModel("discounted_return", discount=1.5)
    with pytest.raises(ValueError, match=r"temperature: expected a temperature > 0, got 0.0"):
        PreferenceModel(temperature=0.0)
    with pytest.raises(ValueError, match=r"label_noise: expected a value in \[0, 1\), got 1.0"):
        PreferenceModel(label_noise=1.0)


def test_preference_loss_rejects_malformed_inputs():
    model = LinearEnsemble(3, 2)
    params = model.init(jax.random.key(0))
    prefs = Preferences(_random_pairs(np.random.default_rng(0), 2, 3), np.ones(2, np.float32))
    with pytest.raises(ValueError, match="labels"):
        preference_loss(model, params, Preferences(prefs.pairs, np.array([1.0, 2.0], np.float32)))
    with pytest.raises(ValueError, match=r"weights.*\(2,\)"):
        preference_loss(model, params, prefs, weights=np.ones(3))
    with pytest.raises(ValueError, match=r"pairs.obs.*\[B, 2, L\]"):
        preference_loss(model, params, Preferences(prefs.pairs._replace(obs=np.zeros((2, 2, 4, 3))), prefs.labels))


def test_probabilities_swap_segments():
    model = LinearEnsemble(3, 2, ensemble_size=2)
    params = model.init(jax.random.key(3))
    pairs = _random_pairs(np.random.default_rng(2), 5, 4)
    swapped = jax.tree.map(lambda x: None if x is None else x[:, ::-1], pairs)
    p = preference_probabilities(model, params, pairs)
    q = preference_probabilities(model, params, swapped)
    assert p.shape == (2, 5)
    np.testing.assert_allclose(np.asarray(p + q), 1.0, atol=1e-6)


# -- Buffer and fragments ----------------------------------------------------------------------


def _fill(buffer: TransitionBuffer, steps: int, episode_lengths: list[int]) -> None:
    """obs = [env, episode counter, t in episode]; env e's episodes have length episode_lengths[e]."""
    num_envs = buffer.num_envs
    t_in_episode = np.zeros(num_envs, int)
    episode = np.zeros(num_envs, int)
    for _ in range(steps):
        obs = np.stack([np.arange(num_envs), episode, t_in_episode], axis=1).astype(np.float32)
        dones = t_in_episode == np.array(episode_lengths) - 1
        buffer.add(obs, np.zeros((num_envs, 1), np.float32), obs + 0.5, dones, t_in_episode.astype(np.float32))
        t_in_episode = np.where(dones, 0, t_in_episode + 1)
        episode = episode + dones


def test_fragments_stay_inside_episodes():
    buffer = TransitionBuffer(capacity_steps=200, num_envs=3)
    _fill(buffer, 150, [7, 12, 30])
    pairs = buffer.sample_pairs(300, 8, np.random.default_rng(0))
    assert pairs.obs.shape == (300, 2, 8, 3) and pairs.dones.shape == (300, 2, 8)
    env, episode, t = pairs.obs[..., 0], pairs.obs[..., 1], pairs.obs[..., 2]
    assert (env == env[..., :1]).all() and (episode == episode[..., :1]).all()
    np.testing.assert_array_equal(np.diff(t, axis=-1), 1)  # consecutive steps of one episode
    assert not pairs.dones[..., :-1].any()  # a done can only be the last step
    assert (env != 0).all()  # env 0's episodes (7 steps) are shorter than L = 8 and never sampled
    np.testing.assert_array_equal(pairs.rews, t)


def test_ring_buffer_wraps_and_keeps_streams_contiguous():
    buffer = TransitionBuffer(capacity_steps=20, num_envs=2)
    _fill(buffer, 53, [100, 100])  # one long episode per env; slots wrapped twice
    assert len(buffer) == 40
    pairs = buffer.sample_pairs(200, 10, np.random.default_rng(1))
    t = pairs.obs[..., 2]
    assert t.min() >= 33 and t.max() <= 52  # only the last 20 steps remain
    np.testing.assert_array_equal(np.diff(t, axis=-1), 1)
    starts = set(map(int, t[..., 0].ravel()))
    assert starts == set(range(33, 44))  # every valid start, including those that cross the wrap


def test_short_episodes_raise_clear_error():
    buffer = TransitionBuffer(capacity_steps=50, num_envs=1)
    _fill(buffer, 40, [5])
    assert not buffer.can_sample(6) and buffer.can_sample(5)
    with pytest.raises(ValueError, match=r"fragment_length.*longest stored episode stretch: 5"):
        buffer.sample_pairs(2, 6, np.random.default_rng(0))


def test_buffer_checks_shapes_and_samples_transitions():
    import gymnasium as gym

    buffer = TransitionBuffer(10, 2, gym.spaces.Box(-1, 1, (3,)), gym.spaces.Box(-1, 1, (1,)))
    with pytest.raises(ValueError, match="obs"):
        buffer.add(np.zeros((2, 4)), np.zeros((2, 1)), np.zeros((2, 3)), np.zeros(2), np.zeros(2))
    with pytest.raises(ValueError, match="num_envs=2"):
        buffer.add(np.zeros((3, 3)), np.zeros((3, 1)), np.zeros((3, 3)), np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="capacity_steps"):
        TransitionBuffer(0, 1)
    _fill(buffer, 5, [100, 100])
    sample = buffer.sample_transitions(10, np.random.default_rng(0))
    assert sample.obs.shape == (10, 3) and sample.rews.dtype == np.float32
    assert len({tuple(row) for row in sample.obs}) == 10  # without replacement


def test_buffer_dict_observations_and_factors():
    buffer = TransitionBuffer(16, 2)
    for step in range(12):
        obs = {"pos": np.full((2, 2), step, np.float32), "img": np.zeros((2, 4, 4, 1), np.uint8)}
        buffer.add(obs, np.zeros(2, np.int64), obs, np.zeros(2, bool), np.ones(2), factors=np.full((2, 3), step))
    pairs = random_fragmenter(buffer, 3, 4, np.random.default_rng(0))
    assert pairs.obs["img"].shape == (3, 2, 4, 4, 4, 1) and pairs.obs["img"].dtype == np.uint8
    assert pairs.factors.shape == (3, 2, 4, 3) and pairs.acts.shape == (3, 2, 4)
    np.testing.assert_array_equal(np.diff(pairs.factors[..., 0], axis=-1), 1)


def test_fragment_trajectories_does_not_cross_episodes():
    episodes = [
        Trajectory(np.arange(k + 1.0)[:, None] + 100 * k, np.zeros((k, 1)), np.ones(k), True) for k in (3, 9, 12)
    ]
    pairs = fragment_trajectories(episodes, 50, 6, np.random.default_rng(0))
    first = pairs.obs[..., 0, 0] // 100
    assert set(np.unique(first)) <= {9, 12}
    np.testing.assert_array_equal(np.diff(pairs.obs[..., 0], axis=-1), 1)
    assert pairs.dones[..., -1].sum() > 0 and not pairs.dones[..., :-1].any()


# -- Query selection --------------------------------------------------------------------------


class ScaledEnsemble:
    """Member e rewards r_e(s) = c_e · s_0: members disagree more on pairs with a larger gap."""

    ensemble_size = 3

    def apply(self, params, obs, acts, next_obs, dones):
        return jnp.array([[0.0], [1.0], [3.0]]) * obs[None, :, 0]


def _gap_candidates(gaps: np.ndarray) -> FragmentPairs:
    pairs = synthetic_pairs(np.zeros((len(gaps), 2)))
    obs = np.zeros((len(gaps), 2, 1, 1), np.float32)
    obs[:, 0, 0, 0] = gaps
    return pairs._replace(obs=obs)


def test_disagreement_picks_max_variance_pairs():
    gaps = np.array([0.0, 0.3, 2.0, -0.1, 0.8, 5.0, 0.05])
    candidates = _gap_candidates(gaps)
    probabilities = np.asarray(preference_probabilities(ScaledEnsemble(), None, candidates))
    variance = probabilities.var(axis=0)
    expected = np.argsort(-variance)[:3]
    chosen = select_queries(PairScorer(ScaledEnsemble()), None, candidates, 3, "disagreement", np.random.default_rng(0))
    np.testing.assert_allclose(chosen.obs[:, 0, 0, 0], gaps[expected])
    # Members: P = σ(0), σ(g), σ(3g), whose variance grows with |g|: hand-ordered 5.0, 2.0, 0.8.
    np.testing.assert_allclose(chosen.obs[:, 0, 0, 0], [5.0, 2.0, 0.8])
    hand = np.var([0.5, 1 / (1 + math.exp(-0.8)), 1 / (1 + math.exp(-2.4))])
    assert float(disagreement_score(probabilities)[4]) == pytest.approx(hand, rel=1e-5)


def test_entropy_picks_most_uncertain_mean_prediction():
    gaps = np.array([4.0, 0.0, -3.0, 0.2, 1.0])
    chosen = select_queries(
        PairScorer(ScaledEnsemble()), None, _gap_candidates(gaps), 2, "entropy", np.random.default_rng(0)
    )
    np.testing.assert_allclose(sorted(chosen.obs[:, 0, 0, 0]), [0.0, 0.2])
    probabilities = np.array([[0.5, 0.9], [0.5, 0.1]])
    np.testing.assert_allclose(entropy_score(probabilities), [math.log(2), math.log(2)], rtol=1e-6)


def test_uniform_selection_and_errors():
    candidates = _gap_candidates(np.arange(10.0))
    chosen = select_queries(PairScorer(ScaledEnsemble()), None, candidates, 10, "uniform", np.random.default_rng(0))
    assert sorted(chosen.obs[:, 0, 0, 0]) == list(np.arange(10.0))
    with pytest.raises(ValueError, match="method"):
        select_queries(PairScorer(ScaledEnsemble()), None, candidates, 2, "k-centre", np.random.default_rng(0))
    with pytest.raises(ValueError, match="num_queries"):
        select_queries(PairScorer(ScaledEnsemble()), None, candidates, 11, "uniform", np.random.default_rng(0))


def test_selection_scores_large_pools_in_chunks():
    gaps = np.linspace(-1.0, 1.0, 300)
    chosen = select_queries(
        PairScorer(ScaledEnsemble()), None, _gap_candidates(gaps), 1, "entropy", np.random.default_rng(0)
    )
    assert abs(chosen.obs[0, 0, 0, 0]) == pytest.approx(np.abs(gaps).min())


def test_a_held_scorer_compiles_once_for_any_number_of_pairs_and_agrees_with_the_plain_path():
    scorer = PairScorer(ScaledEnsemble(), chunk_pairs=4)
    for num_pairs in (1, 4, 7, 13):  # one, one, two and four chunks of 4 pairs
        candidates = _gap_candidates(np.linspace(-2.0, 2.0, num_pairs))
        chunked = scorer.probabilities(None, candidates)
        np.testing.assert_allclose(chunked, preference_probabilities(ScaledEnsemble(), None, candidates), rtol=1e-6)
        assert chunked.shape == (3, num_pairs)
        means = scorer.mean_rewards(None, candidates)  # members c = 0, 1, 3: mean reward (4/3)·s_0
        np.testing.assert_allclose(means[:, 0, 0], 4.0 / 3.0 * np.linspace(-2.0, 2.0, num_pairs), rtol=1e-6)
        select_queries(scorer, None, candidates, 1, "disagreement", np.random.default_rng(0))
    assert scorer.chunk_probabilities._cache_size() == 1
    assert scorer.chunk_mean_rewards._cache_size() == 1
    assert PairScorer(ScaledEnsemble()).chunk_probabilities._cache_size() == 0  # a new scorer owns new functions


def test_pair_scorer_applies_the_temperature_of_its_preference_model():
    candidates = _gap_candidates(np.array([1.0, -2.0]))
    warm = PreferenceModel(temperature=2.0)
    got = PairScorer(ScaledEnsemble(), preference_model=warm).probabilities(None, candidates)
    np.testing.assert_allclose(
        got, preference_probabilities(ScaledEnsemble(), None, candidates, preference_model=warm), rtol=1e-6
    )
    logistic = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    # Members c = 0, 1, 3 on gaps 1 and −2: P = logistic(c · gap / 2).
    np.testing.assert_allclose(
        got, [[0.5, 0.5], [logistic(0.5), logistic(-1.0)], [logistic(1.5), logistic(-3.0)]], rtol=1e-5
    )


def test_pair_scorer_rejects_bad_settings():
    with pytest.raises(
        ValueError, match=r"preference_model: expected a PreferenceModel, e.g. PreferenceModel\(\), got 'return'"
    ):
        PairScorer(ScaledEnsemble(), preference_model="return")
    with pytest.raises(ValueError, match="chunk_pairs: expected an integer >= 1, got 0"):
        PairScorer(ScaledEnsemble(), chunk_pairs=0)


# -- Metrics ----------------------------------------------------------------------------------


def test_ece_of_calibrated_data_is_small_and_of_overconfident_data_large():
    rng = np.random.default_rng(0)
    p = rng.random(200_000)
    y = (rng.random(p.shape) < p).astype(np.float32)
    assert expected_calibration_error(p, y) < 0.01
    overconfident = np.where(p > 0.5, 0.99, 0.01)
    assert expected_calibration_error(overconfident, y) > 0.2
    assert expected_calibration_error([1.0, 0.0], [1.0, 0.0]) == 0.0
    with pytest.raises(ValueError, match="labels"):
        expected_calibration_error([0.5], [0.5, 0.5])


def test_accuracy_and_pearson():
    assert accuracy_from_probabilities([0.9, 0.4, 0.6, 0.3], [1.0, 1.0, 0.5, 0.0]) == pytest.approx(2 / 3)
    assert math.isnan(accuracy_from_probabilities([0.9], [0.5]))
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=50), rng.normal(size=50)
    assert pearson_correlation(x, y) == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert pearson_correlation(x, 3 * x + 1) == pytest.approx(1.0)
    assert math.isnan(pearson_correlation(np.ones(5), x[:5]))


def test_reward_correlation_and_accuracy_of_true_reward_model():
    rng = np.random.default_rng(0)
    model = LinearEnsemble(3, 2, ensemble_size=2)
    params = model.init(jax.random.key(0))
    pairs = _random_pairs(rng, 40, 5)
    true = (
        np.asarray(model.apply(params, pairs.obs.reshape(-1, 3), pairs.acts.reshape(-1, 2), None, None))
        .mean(0)
        .reshape(40, 2, 5)
    )
    pairs = pairs._replace(rews=2.0 * true + 1.0)
    scorer = PairScorer(model)
    correlation = reward_correlation(scorer, params, pairs)
    assert correlation["transition"] == pytest.approx(1.0) and correlation["segment"] == pytest.approx(1.0)
    labels = (true.sum(-1)[:, 0] > true.sum(-1)[:, 1]).astype(np.float32)
    assert preference_accuracy(scorer, params, Preferences(pairs, labels)) == 1.0
    assert preference_accuracy(scorer, params, Preferences(pairs, 1 - labels)) == 0.0
    # Calibration of the ensemble mean against hand-computed bins of its own probabilities.
    probabilities = scorer.probabilities(params, pairs).mean(axis=0)
    assert preference_calibration(scorer, params, Preferences(pairs, labels)) == pytest.approx(
        expected_calibration_error(probabilities, labels)
    )
