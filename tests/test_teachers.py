"""Simulated B-Pref teachers and labelling."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardlab.preferences import (
    TEACHER_PRESETS,
    HeronTeacher,
    SimulatedTeacher,
    Teacher,
    TeacherStage,
    TeacherState,
    compose,
    equal,
    label,
    make_teacher,
    mistake,
    myopic,
    oracle,
    skip,
    stochastic,
    synthetic_pairs,
)


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_oracle_labels_and_ties():
    pairs = synthetic_pairs(np.array([[3.0, 1.0], [-2.0, 0.0], [1.5, 1.5]]), length=3)
    np.testing.assert_array_equal(oracle()(pairs, _rng()), [1.0, 0.0, 0.5])
    assert oracle()(pairs, _rng()).dtype == np.float32


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.floats(-100, 100), st.floats(-100, 100)), min_size=1, max_size=20))
def test_swapping_segments_flips_oracle_label(returns):
    returns = np.array(returns)
    pairs = synthetic_pairs(returns, length=2)
    swapped = synthetic_pairs(returns[:, ::-1], length=2)
    np.testing.assert_array_equal(oracle()(pairs, _rng()), 1.0 - oracle()(swapped, _rng()))


def test_myopic_weighting():
    # σ¹ = [10, 0, 0], σ² = [0, 0, 9]: undiscounted σ¹ wins; myopic γ = 0.9 gives 10·0.81 = 8.1 < 9.
    rews = np.array([[[10.0, 0.0, 0.0], [0.0, 0.0, 9.0]]])
    pairs = synthetic_pairs(rews)
    assert oracle()(pairs, _rng())[0] == 1.0
    assert compose(myopic(0.9), oracle())(pairs, _rng())[0] == 0.0
    assert myopic(0.9)(pairs, _rng())[0] == 0.0  # a stage alone is a full teacher (oracle decides)
    assert SimulatedTeacher(gamma=0.9)(pairs, _rng())[0] == 0.0
    # Weights γ^(L−1−t): σ¹ scores 10·γ², σ² scores 9, so the label flips at γ² = 0.9.
    assert compose(myopic(0.95), oracle())(pairs, _rng())[0] == 1.0  # 10·0.9025 = 9.025 > 9
    with pytest.raises(ValueError, match=r"myopic.*before"):
        compose(oracle(), myopic(0.9))(pairs, _rng())


def test_skip_threshold():
    pairs = synthetic_pairs(np.array([[-5.0, -3.0], [-5.0, 2.0], [4.0, 1.0], [-1.0, -1.0]]), length=2)
    labels = skip(threshold=0.0)(pairs, _rng())
    assert np.isnan(labels[[0, 3]]).all()
    np.testing.assert_array_equal(labels[[1, 2]], [0.0, 1.0])
    prefs = label(pairs, skip(threshold=0.0), _rng())
    assert prefs.labels.shape == (2,) and prefs.pairs.rews.shape == (2, 2, 2)
    np.testing.assert_allclose(prefs.pairs.rews.sum(-1), [[-5.0, 2.0], [4.0, 1.0]])
    # Quantile threshold over the 8 returns: q = 0.4 → −3 + 0.8·2 = −1.4 (linear interpolation); only pair 0
    # (max −3) has both returns below it.
    quantile_labels = skip(quantile=0.4)(pairs, _rng())
    assert np.isnan(quantile_labels).tolist() == [True, False, False, False]


def test_equal_margin():
    pairs = synthetic_pairs(np.array([[1.0, 1.2], [1.0, 3.0], [-2.0, -2.05]]), length=4)
    np.testing.assert_array_equal(equal(margin=0.25)(pairs, _rng()), [0.5, 0.0, 0.5])
    # Equal pairs stay 0.5 through mistakes, whatever the order of stages.
    for teacher in (compose(equal(margin=0.25), mistake(1.0)), compose(mistake(1.0), equal(margin=0.25))):
        np.testing.assert_array_equal(teacher(pairs, _rng()), [0.5, 1.0, 0.5])


def test_mistake_rate_matches_eps():
    rng = _rng(0)
    returns = rng.normal(size=(20_000, 2))
    pairs = synthetic_pairs(returns)
    truth = oracle()(pairs, rng)
    noisy = mistake(0.1)(pairs, _rng(1))
    rate = np.mean(noisy != truth)
    assert abs(rate - 0.1) < 4 * math.sqrt(0.1 * 0.9 / 20_000)
    np.testing.assert_array_equal(mistake(0.0)(pairs, _rng()), truth)
    np.testing.assert_array_equal(mistake(1.0)(pairs, _rng()), 1 - truth)


def test_stochastic_matches_bradley_terry_frequencies():
    # B-Pref: P(σ¹ ≻ σ²) = exp(βR¹) / (exp(βR¹) + exp(βR²)).
    gaps = np.array([0.0, 0.5, 1.0, -2.0])
    returns = np.stack([np.repeat(gaps, 5000), np.zeros(4 * 5000)], axis=1)
    labels = stochastic(rationality=2.0)(synthetic_pairs(returns), _rng(3)).reshape(4, 5000)
    expected = 1 / (1 + np.exp(-2.0 * gaps))
    np.testing.assert_allclose(labels.mean(axis=1), expected, atol=4 * 0.5 / math.sqrt(5000))
    assert set(np.unique(labels)) <= {0.0, 1.0}
    huge = synthetic_pairs(np.array([[1e6, -1e6], [-1e6, 1e6]]))
    np.testing.assert_array_equal(stochastic(rationality=1.0)(huge, _rng()), [1.0, 0.0])


def test_simulated_teacher_matches_composition_and_bpref_order():
    rng = _rng(5)
    pairs = synthetic_pairs(rng.normal(size=(500, 2, 6)))
    teacher = SimulatedTeacher(rationality=1.0, gamma=0.9, eps_mistake=0.2, skip_threshold=-1.0, equal_margin=0.1)
    composed = compose(skip(-1.0), equal(0.1), myopic(0.9), stochastic(1.0), mistake(0.2))
    np.testing.assert_array_equal(teacher(pairs, _rng(7)), composed(pairs, _rng(7)))
    labels = teacher(pairs, _rng(7))
    returns = pairs.rews.sum(-1)
    np.testing.assert_array_equal(np.isnan(labels), returns.max(1) < -1.0)
    tied = (np.abs(returns[:, 0] - returns[:, 1]) < 0.1) & ~np.isnan(labels)
    assert tied.any() and (labels[tied] == 0.5).all()
    assert isinstance(teacher, Teacher) and isinstance(composed, Teacher)


def test_make_teacher_presets_and_errors():
    assert set(TEACHER_PRESETS) == {"oracle", "stochastic", "myopic", "skip", "equal", "mistake"}
    assert make_teacher("myopic").gamma == 0.9 and make_teacher("stochastic").rationality == 1.0
    assert make_teacher("oracle", eps_mistake=0.3).eps_mistake == 0.3
    pairs = synthetic_pairs(_rng(0).normal(size=(100, 2)))
    assert np.isnan(make_teacher("skip")(pairs, _rng())).sum() > 0
    assert (make_teacher("equal")(pairs, _rng()) == 0.5).sum() == 10
    with pytest.raises(ValueError, match=r"name.*oracle"):
        make_teacher("genius")
    with pytest.raises(ValueError, match=r"overrides: unknown SimulatedTeacher fields \['temperature'\]"):
        make_teacher("oracle", temperature=2.0)
    with pytest.raises(ValueError, match=r"overrides: unknown HeronTeacher fields \['rationality'\]"):
        make_teacher("heron", signs=(1,), importance=(0,), rationality=1.0)
    assert isinstance(make_teacher("heron", signs=(1, -1), importance=(1, 0)), HeronTeacher)
    assert make_teacher("regret", advantage_fn=lambda *a: None).preference_model == "regret"
    with pytest.raises(ValueError, match=r"rationality: expected a number in \(0, inf\], got 0.0"):
        stochastic(rationality=0.0)
    with pytest.raises(ValueError, match="gamma"):
        myopic(1.5)
    with pytest.raises(ValueError, match="eps"):
        mistake(-0.1)


def test_a_new_stage_subclasses_the_public_base_and_composes():
    class prefer_second(TeacherStage):  # noqa: N801 - lowercase like the library's stages
        def update(self, pairs, state: TeacherState, rng: np.random.Generator) -> TeacherState:
            return state._replace(labels=np.zeros(len(state.returns)))

    pairs = synthetic_pairs(np.array([[1.0, 0.0], [0.0, 1.0]]))
    np.testing.assert_array_equal(prefer_second()(pairs, _rng()), [0.0, 0.0])  # alone: a full teacher
    np.testing.assert_array_equal(compose(prefer_second(), mistake(1.0))(pairs, _rng()), [1.0, 1.0])
    assert isinstance(prefer_second(), Teacher)


def test_label_validates_teacher_output():
    pairs = synthetic_pairs(np.array([[1.0, 0.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match=r"teacher.*\(2,\)"):
        label(pairs, lambda p, rng: np.zeros(3), _rng())
    with pytest.raises(ValueError, match=r"teacher.*\[0, 1\]"):
        label(pairs, lambda p, rng: np.array([2.0, 0.0]), _rng())
    with pytest.raises(ValueError, match="pairs"):
        label(pairs._replace(rews=np.zeros((2, 3))), oracle(), _rng())
    prefs = label(pairs, make_teacher("oracle"), _rng())
    np.testing.assert_array_equal(prefs.labels, [1.0, 0.0])


@pytest.mark.parametrize(
    ("field", "value", "error", "message"),
    [
        ("eps_mistake", math.nan, ValueError, r"eps_mistake: expected a finite number in \[0, 1\], got nan"),
        ("eps_mistake", -0.1, ValueError, r"eps_mistake: expected a finite number in \[0, 1\], got -0.1"),
        ("eps_mistake", 1.5, ValueError, r"eps_mistake: expected a finite number in \[0, 1\]"),
        ("skip_quantile", math.nan, ValueError, r"skip_quantile: expected a finite number in \[0, 1\], got nan"),
        ("skip_quantile", -0.5, ValueError, r"skip_quantile: expected a finite number in \[0, 1\]"),
        ("equal_quantile", math.nan, ValueError, r"equal_quantile: expected a finite number in \[0, 1\]"),
        ("equal_quantile", 2.0, ValueError, r"equal_quantile: expected a finite number in \[0, 1\]"),
        ("skip_threshold", math.nan, ValueError, r"skip_threshold: expected a finite number"),
        ("equal_margin", math.inf, ValueError, r"equal_margin: expected a finite number"),
        ("rationality", math.nan, ValueError, r"rationality: expected a number in \(0, inf\], got nan"),
        ("rationality", -math.inf, ValueError, r"rationality: expected a number in \(0, inf\]"),
        ("gamma", math.nan, ValueError, r"gamma: expected a finite number in \(0, 1\]"),
        ("rationality", "1.0", TypeError, r"rationality: expected a real number, got str"),
        ("eps_mistake", None, TypeError, r"eps_mistake: expected a real number, got NoneType"),
        ("skip_quantile", True, TypeError, r"skip_quantile: expected a real number, got bool"),
    ],
)
def test_simulated_teacher_rejects_settings_that_would_switch_a_feature_off(field, value, error, message):
    # A NaN or negative eps_mistake / quantile used to fail the `> 0` test and drop the stage silently.
    with pytest.raises(error, match=message):
        SimulatedTeacher(**{field: value})
    preset = {"eps_mistake": "mistake", "skip_quantile": "skip", "equal_quantile": "equal"}.get(field, "oracle")
    with pytest.raises(error, match=message):
        make_teacher(preset, **{field: value})


def test_stages_reject_nan_and_non_numbers():
    for stage, message in (
        (lambda: mistake(math.nan), r"eps: expected a finite number in \[0, 1\], got nan"),
        (lambda: skip(quantile=math.nan), r"quantile: expected a finite number in \[0, 1\], got nan"),
        (lambda: equal(margin=math.nan), r"margin: expected a finite number"),
        (lambda: myopic(math.nan), r"gamma: expected a finite number in \(0, 1\]"),
        (lambda: stochastic(math.nan), r"rationality: expected a number in \(0, inf\]"),
    ):
        with pytest.raises(ValueError, match=message):
            stage()
    with pytest.raises(TypeError, match=r"eps: expected a real number, got str"):
        mistake("0.1")


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_true_rewards_raise_instead_of_tying(bad):
    # NaN returns compare False both ways, so every pair holding one used to be labelled 0.5.
    rews = np.zeros((3, 2, 4), np.float32)
    rews[:, 0] = 1.0
    rews[1, 1, 2] = bad
    pairs = synthetic_pairs(rews)
    for teacher in (oracle(), SimulatedTeacher(eps_mistake=0.1), make_teacher("equal"), compose(myopic(0.9), oracle())):
        with pytest.raises(
            ValueError,
            match=r"^pairs.rews: expected finite values, got 1 NaN or infinite entry \(first at index \(1, 1, 2\)",
        ):
            teacher(pairs, _rng())
        with pytest.raises(ValueError, match=r"^pairs.rews: expected finite values"):
            label(pairs, teacher, _rng())
