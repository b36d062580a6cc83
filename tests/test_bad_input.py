"""Random invalid values at the public constructors and entry points (hypothesis).

Every call must either raise a ``ValueError`` or ``TypeError`` (the library's own error types
derive from them) whose message starts with the name of the bad argument, or return a finite,
documented result: never a NaN, a silently switched-off feature or a NumPy/JAX internal error.
"""

from __future__ import annotations

import math
import re

import gymnasium as gym
import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from experiments.quickstart import normalized_return
from rewardlab import NonFiniteError, Transitions
from rewardlab.distances import distance_matrix, epic_distance, sample_epic_distance, starc_distance
from rewardlab.preferences import (
    SimulatedTeacher,
    equal,
    label,
    make_teacher,
    mistake,
    myopic,
    skip,
    stochastic,
    synthetic_pairs,
)
from rewardlab.rewards import FunctionReward, RewardModel, RewardNetConfig, as_reward_fn
from rewardlab.wrappers import RewardMix

FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Values a hostile user passes where a number is expected: non-finite, out of range, of the wrong type.
BAD_SCALARS = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, -1.0, -1e-9, 1.0 + 1e-9, 2.0, 1e300, 0.0, 1.0, 0.5]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["0.5", "nan", None, True, False, complex(0.5, 0.1), [0.5], (0.5,), {}, object()]),
    st.integers(-5, 5),
)


def _is_real(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _expect(call, argument: str, valid: bool):
    """Run ``call``; it must succeed when ``valid``, and otherwise raise naming ``argument`` first."""
    if not valid:
        with pytest.raises((ValueError, TypeError)) as caught:
            call()
        message = str(caught.value)
        assert re.match(rf"^{re.escape(argument)}\b", message), f"message does not name {argument}: {message}"
        return None
    return call()


def _in(value, low, high, *, low_open=False, high_open=False, allow_inf=False) -> bool:
    if not _is_real(value) or math.isnan(value) or (math.isinf(value) and not allow_inf):
        return False
    above = value > low if low_open else value >= low
    below = value < high if high_open else value <= high
    return above and below


# --------------------------------------------------------------------------- teachers


TEACHER_FIELDS = {
    # field: predicate of a valid value
    "rationality": lambda v: _in(v, 0.0, math.inf, low_open=True, allow_inf=True),
    "gamma": lambda v: _in(v, 0.0, 1.0, low_open=True),
    "eps_mistake": lambda v: _in(v, 0.0, 1.0),
    "skip_quantile": lambda v: _in(v, 0.0, 1.0),
    "equal_quantile": lambda v: _in(v, 0.0, 1.0),
    "skip_threshold": lambda v: v is None or _in(v, -math.inf, math.inf),
    "equal_margin": lambda v: v is None or _in(v, -math.inf, math.inf),
}


@FAST
@given(field=st.sampled_from(sorted(TEACHER_FIELDS)), value=BAD_SCALARS)
def test_simulated_teacher_settings(field, value):
    teacher = _expect(lambda: SimulatedTeacher(**{field: value}), field, TEACHER_FIELDS[field](value))
    if teacher is not None:  # a valid teacher labels in {0, 0.5, 1} or skips
        pairs = synthetic_pairs(np.random.default_rng(0).normal(size=(8, 2)))
        labels = teacher(pairs, np.random.default_rng(0))
        assert set(np.unique(labels[~np.isnan(labels)]).tolist()) <= {0.0, 0.5, 1.0}
        assert getattr(teacher, field) == value  # the setting is kept, not replaced by a default


STAGES = {
    "eps": (lambda v: mistake(v), lambda v: _in(v, 0.0, 1.0)),
    "gamma": (lambda v: myopic(v), lambda v: _in(v, 0.0, 1.0, low_open=True)),
    "rationality": (lambda v: stochastic(v), lambda v: _in(v, 0.0, math.inf, low_open=True, allow_inf=True)),
    "quantile": (lambda v: skip(quantile=v), lambda v: _in(v, 0.0, 1.0)),
    "margin": (lambda v: equal(margin=v), lambda v: v is None or _in(v, -math.inf, math.inf)),
}


@FAST
@given(argument=st.sampled_from(sorted(STAGES)), value=BAD_SCALARS)
def test_teacher_stages(argument, value):
    build, valid = STAGES[argument]
    _expect(lambda: build(value), argument, valid(value))


@FAST
@given(
    rews=st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=2 * 2 * 3, max_size=2 * 2 * 3),
    name=st.sampled_from(sorted(["oracle", "stochastic", "myopic", "skip", "equal", "mistake"])),
)
def test_teachers_on_non_finite_true_rewards(rews, name):
    pairs = synthetic_pairs(np.asarray(rews, np.float32).reshape(2, 2, 3))
    valid = bool(np.isfinite(pairs.rews).all())
    prefs = _expect(lambda: label(pairs, make_teacher(name), np.random.default_rng(0)), "pairs.rews", valid)
    if prefs is not None:
        assert np.isin(prefs.labels, [0.0, 0.5, 1.0]).all()


# --------------------------------------------------------------------------- reward mix and the reward adapter


@FAST
@given(weight=BAD_SCALARS, env_weight=BAD_SCALARS)
def test_reward_mix_weights(weight, env_weight):
    valid_weight = _in(weight, -math.inf, math.inf)
    if not valid_weight:
        _expect(lambda: RewardMix("add", weight=weight), "weight", False)
    else:
        mix = _expect(
            lambda: RewardMix("weighted", weight=weight, env_weight=env_weight),
            "env_weight",
            _in(env_weight, -math.inf, math.inf),
        )
        if mix is not None:
            assert mix.weight == weight and mix.env_weight == env_weight


@FAST
@given(coefficient=BAD_SCALARS, host_batch_limit=BAD_SCALARS)
def test_reward_adapter_settings(coefficient, host_batch_limit):
    model = FunctionReward(lambda s, a, t, d: s[:, 0], ensemble_size=2)
    valid_limit = isinstance(host_batch_limit, int) and not isinstance(host_batch_limit, bool) and host_batch_limit >= 0
    _expect(lambda: as_reward_fn(model, host_batch_limit=host_batch_limit), "host_batch_limit", valid_limit)
    _expect(
        lambda: as_reward_fn(model, aggregate="mean_minus_std", coefficient=coefficient),
        "coefficient",
        _in(coefficient, -math.inf, math.inf),
    )


OBS_SPACE = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
DISCRETE = RewardModel(
    RewardNetConfig(inputs=("obs", "act"), hidden_sizes=(8,)), OBS_SPACE, gym.spaces.Discrete(4, start=1)
)
DISCRETE_PARAMS = DISCRETE.init(jax.random.key(0))
BOX = RewardModel(
    RewardNetConfig(inputs=("obs", "act", "next_obs"), hidden_sizes=(8,)), OBS_SPACE, gym.spaces.Box(-1, 1, (2,))
)
BOX_PARAMS = BOX.init(jax.random.key(0))
REWARD_FNS = {
    # host path (NumPy forward pass) and jitted path, one compiled batch size each
    (name, limit): as_reward_fn(model, params, host_batch_limit=limit)
    for name, model, params in (("discrete", DISCRETE, DISCRETE_PARAMS), ("box", BOX, BOX_PARAMS))
    for limit in (128, 0)
}
BAD_CODES = st.one_of(
    st.sampled_from([math.nan, math.inf, -1.0, 0.0, 0.5, 1.0, 2.5, 4.0, 5.0, 1e12]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-10, 10),
)


@FAST
@given(codes=st.lists(BAD_CODES, min_size=4, max_size=4), limit=st.sampled_from([128, 0]))
def test_discrete_actions(codes, limit):
    fn = REWARD_FNS["discrete", limit]
    acts = np.asarray(codes, np.float64)
    valid = bool(np.all(np.isfinite(acts) & (acts == np.floor(acts)) & (acts >= 1) & (acts <= 4)))
    rewards = _expect(lambda: fn(np.zeros((4, 3)), acts, np.zeros((4, 3)), np.zeros(4, bool)), "acts", valid)
    if rewards is not None:
        assert np.isfinite(rewards).all()


@FAST
@given(
    values=st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=12, max_size=12),
    argument=st.sampled_from(["obs", "acts", "next_obs"]),
    limit=st.sampled_from([128, 0]),
)
def test_non_finite_observations_and_actions(values, argument, limit):
    fn = REWARD_FNS["box", limit]
    data = {
        "obs": np.zeros((4, 3), np.float32),
        "acts": np.zeros((4, 2), np.float32),
        "next_obs": np.zeros((4, 3), np.float32),
    }
    data[argument] = np.asarray(values[: data[argument].size], np.float32).reshape(data[argument].shape)
    valid = bool(np.isfinite(data[argument]).all())
    with np.errstate(over="ignore"):
        rewards = _expect(lambda: fn(data["obs"], data["acts"], data["next_obs"], np.zeros(4, bool)), argument, valid)
    if rewards is not None:
        assert np.isfinite(rewards).all()


WRONG_KINDS = st.sampled_from(
    [
        lambda shape: np.full(shape, "x"),
        lambda shape: np.zeros(shape, object),
        lambda shape: np.zeros(shape, np.complex64),
        lambda shape: np.zeros(shape, "datetime64[s]"),
        lambda shape: [[0.0] * (shape[1] - 1)] + [[0.0] * shape[1]] * (shape[0] - 1),  # ragged
    ]
)


@FAST
@given(
    make=WRONG_KINDS, argument=st.sampled_from(["obs", "acts", "next_obs", "dones"]), limit=st.sampled_from([128, 0])
)
def test_wrong_dtypes_name_the_argument(make, argument, limit):
    fn = REWARD_FNS["box", limit]
    data = {
        "obs": np.zeros((4, 3), np.float32),
        "acts": np.zeros((4, 2), np.float32),
        "next_obs": np.zeros((4, 3), np.float32),
        "dones": np.zeros(4, bool),
    }
    shape = (4, 1) if argument == "dones" else data[argument].shape
    bad = make(shape)
    data[argument] = np.asarray(bad).reshape(4) if argument == "dones" and not isinstance(bad, list) else bad
    if argument == "dones" and isinstance(bad, list):
        return  # a ragged dones is a shape error, covered elsewhere
    with pytest.raises((TypeError, ValueError)) as caught:
        fn(data["obs"], data["acts"], data["next_obs"], data["dones"])
    assert str(caught.value).startswith(argument), caught.value


@FAST
@given(
    key=st.one_of(
        st.integers(-3, 3), st.floats(), st.sampled_from(["0", None, np.zeros(2), np.zeros(3, np.uint32), object()])
    )
)
def test_prng_keys(key):
    valid = isinstance(key, int)  # RewardModel.init takes an int seed as well as a key
    _expect(lambda: BOX.init(key), "key", valid)


# --------------------------------------------------------------------------- distances


@pytest.fixture(scope="module")
def mdp():
    import rewardlab_envs

    return rewardlab_envs.random_mdp(4, 2, seed=0, discount=0.9)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(discount=BAD_SCALARS)
def test_distance_discounts(mdp, discount):
    valid = _in(discount, 0.0, 1.0)
    calls = [lambda: epic_distance(mdp.reward, -mdp.reward, discount)]
    calls.append(lambda: distance_matrix(np.stack([mdp.reward, -mdp.reward]), discount))
    if not valid:  # (valid values: the eager STARC is slow to compile for each new type of γ)
        calls.append(lambda: starc_distance(mdp.reward, -mdp.reward, mdp.transitions, discount))
    for call in calls:
        result = _expect(call, "discount", valid)
        if result is not None:
            assert np.isfinite(np.asarray(result)).all()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    dist=st.lists(
        st.one_of(st.floats(-2.0, 2.0), st.sampled_from([math.nan, math.inf, -math.inf, 0.0])), min_size=3, max_size=5
    ),
    entry=st.floats(allow_nan=True, allow_infinity=True),
)
def test_distance_distributions_and_rewards(mdp, dist, entry):
    dist = np.asarray(dist)
    valid_dist = dist.shape == (4,) and bool(np.isfinite(dist).all() and (dist >= 0).all() and dist.sum() > 0)
    distance = _expect(
        lambda: epic_distance(mdp.reward, 2.0 * mdp.reward + 1.0, 0.9, state_dist=dist), "state_dist", valid_dist
    )
    if distance is not None:
        assert 0.0 <= float(distance) <= 1e-3  # a positive affine map of the reward: distance 0
    reward = np.array(mdp.reward, np.float64)
    reward[1, 0, 2] = entry
    valid = math.isfinite(entry) and abs(entry) <= float(np.finfo(np.float32).max)  # rewards are float32 inside
    distance = _expect(lambda: epic_distance(mdp.reward, reward, 0.9), "reward_b", valid)
    if distance is not None:
        assert 0.0 <= float(distance) <= 1.0


_COLUMNS = {
    "obs": np.random.default_rng(0).normal(size=(32, 2)).astype(np.float32),
    "acts": np.random.default_rng(1).normal(size=(32, 1)).astype(np.float32),
    "next_obs": np.random.default_rng(2).normal(size=(32, 2)).astype(np.float32),
    "rews": np.zeros(32, np.float32),
}
COVERAGE = Transitions(**{field: _COLUMNS.get(field, np.zeros(32, bool)) for field in Transitions._fields})
LINEAR = as_reward_fn(FunctionReward(lambda s, a, t, d: t[:, 0] - a[:, 0]))


@settings(max_examples=12, deadline=None)
@given(
    argument=st.sampled_from(["discount", "confidence", "seed", "num_samples"]),
    value=BAD_SCALARS,
)
def test_sample_distance_settings(argument, value):
    kwargs = {"discount": 0.9, "confidence": 0.95, "seed": 0, "num_samples": 4}
    kwargs[argument] = value
    valid = {
        "discount": _in(value, 0.0, 1.0),
        "confidence": _in(value, 0.0, 1.0, low_open=True, high_open=True),
        "seed": isinstance(value, int) and not isinstance(value, bool) and value >= 0,
        "num_samples": isinstance(value, int) and not isinstance(value, bool) and value >= 1,
    }[argument]
    discount = kwargs.pop("discount")
    result = _expect(
        lambda: sample_epic_distance(LINEAR, LINEAR, COVERAGE, discount, num_transitions=8, num_seeds=2, **kwargs),
        argument,
        valid,
    )
    if result is not None:
        assert np.isfinite(result.per_seed).all() and np.isfinite([result.mean, result.low, result.high]).all()


@settings(max_examples=8, deadline=None)
@given(obs=st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=2, max_size=2))
def test_sample_distance_coverage_data(obs):
    data = COVERAGE._replace(obs=np.concatenate([np.asarray(obs, np.float32)[None], COVERAGE.obs[1:]]))
    valid = bool(np.isfinite(obs).all())
    result = _expect(
        lambda: sample_epic_distance(LINEAR, LINEAR, data, 0.9, num_transitions=8, num_samples=4, num_seeds=1),
        "transitions.obs",
        valid,
    )
    if result is not None:
        assert np.isfinite(result.mean)


# --------------------------------------------------------------------------- the quickstart's figure of merit


@FAST
@given(returns=st.tuples(*[st.one_of(st.floats(-1e4, 1e4), st.sampled_from([math.nan, math.inf, -math.inf]))] * 3))
def test_quickstart_normalised_return_is_defined_or_explained(returns):
    learned, true, random = returns
    value, note = normalized_return(learned, true, random)
    if all(map(math.isfinite, returns)) and true > random:
        assert note == "" and value == pytest.approx((learned - random) / (true - random))
        if learned <= true:
            assert value <= 1.0 + 1e-12  # above 1 only when the learned-reward agent beats the true-reward one
    else:
        assert math.isnan(value) and note.startswith("normalized_return undefined")


def test_non_finite_error_is_a_value_error_and_a_floating_point_error():
    assert issubclass(NonFiniteError, ValueError) and issubclass(NonFiniteError, FloatingPointError)
