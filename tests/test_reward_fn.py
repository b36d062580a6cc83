"""as_reward_fn: agreement with RewardModel.apply, any reward model, aggregation, bucketing without recompiles, validation, NaN guard."""

from __future__ import annotations

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rewardlab import NonFiniteError, RewardFn
from rewardlab.rewards import (
    FunctionReward,
    RewardModel,
    RewardModelLike,
    RewardNetConfig,
    aggregate_ensemble,
    as_reward_fn,
    bucket_size,
)
from rewardlab.rewards._aggregate import aggregate_ensemble_host
from rewardlab.rewards._host_forward import host_forward

OBS_SPACE = gym.spaces.Box(-np.inf, np.inf, (17,), np.float64)  # HalfCheetah shapes
ACT_SPACE = gym.spaces.Box(-1.0, 1.0, (6,), np.float32)


@pytest.fixture(scope="module")
def cheetah():
    """obs + act + next_obs, shaped, ensemble of 3, with fitted input statistics."""
    config = RewardNetConfig(
        inputs=("obs", "act", "next_obs"), hidden_sizes=(32, 32), ensemble_size=3, potential_shaping=True
    )
    model = RewardModel(config, OBS_SPACE, ACT_SPACE)
    rng = np.random.default_rng(0)
    params = model.update_normalizer(model.init(jax.random.key(0)), rng.normal(1.0, 2.0, (64, 17)))
    return model, params


def transitions(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return (
        rng.normal(1.0, 2.0, (n, 17)),
        rng.uniform(-1, 1, (n, 6)).astype(np.float32),
        rng.normal(1.0, 2.0, (n, 17)),
        rng.uniform(size=n) < 0.2,
    )


def test_bucket_sizes():
    assert [bucket_size(n) for n in (1, 7, 8, 9, 16, 17, 1000, 4096)] == [8, 8, 8, 16, 16, 32, 1024, 4096]


@pytest.mark.parametrize("host_batch_limit", [128, 0], ids=["numpy-host", "jit"])
def test_matches_model_apply_for_every_aggregate(cheetah, host_batch_limit):
    model, params = cheetah
    data = transitions(11)
    members = np.asarray(model.apply(params, *data))  # [3, 11]
    expected = {
        "mean": members.mean(0),
        "min": members.min(0),
        "mean_minus_std": members.mean(0) - 0.5 * members.std(0),
        "uncertainty_weighted": members.mean(0) - 0.5 * members.var(0),
    }
    for aggregate, target in expected.items():
        fn = as_reward_fn(model, params, aggregate=aggregate, coefficient=0.5, host_batch_limit=host_batch_limit)
        rewards = fn(*data)
        assert rewards.shape == (11,) and rewards.dtype == np.float32
        np.testing.assert_allclose(rewards, target, rtol=1e-5, atol=1e-5)
    assert isinstance(fn, RewardFn)


def test_host_and_jit_paths_agree_on_many_settings():
    """The NumPy hot path mirrors the jitted network: activations, Discrete/Dict inputs, done input."""
    obs_space = gym.spaces.Dict(
        {"x": gym.spaces.Box(-5, 5, (3,)), "k": gym.spaces.Discrete(3), "m": gym.spaces.MultiDiscrete([2, 2])}
    )
    act_space = gym.spaces.Discrete(4, start=1)
    rng = np.random.default_rng(1)
    n = 6
    obs = {"x": rng.normal(size=(n, 3)), "k": rng.integers(0, 3, n), "m": rng.integers(0, 2, (n, 2))}
    next_obs = {"x": rng.normal(size=(n, 3)), "k": rng.integers(0, 3, n), "m": rng.integers(0, 2, (n, 2))}
    acts, dones = rng.integers(1, 5, n), rng.uniform(size=n) < 0.5
    for activation in ("tanh", "gelu", "silu", "leaky_relu"):
        config = RewardNetConfig(
            inputs=("next_obs", "act", "done", "obs"),
            hidden_sizes=(8,),
            activation=activation,
            ensemble_size=2,
            potential_shaping=True,
        )
        model = RewardModel(config, obs_space, act_space)
        params = model.update_normalizer(model.init(2), obs)
        host = as_reward_fn(model, params)(obs, acts, next_obs, dones)
        jitted = as_reward_fn(model, params, host_batch_limit=0)(obs, acts, next_obs, dones)
        np.testing.assert_allclose(host, jitted, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(
            host, np.asarray(model.apply(params, obs, acts, next_obs, dones)).mean(0), rtol=1e-5, atol=1e-5
        )


def test_slices_agree_and_bucketing_does_not_recompile(cheetah):
    model, params = cheetah
    fn = as_reward_fn(model, params, host_batch_limit=0)  # always the jitted path
    data = transitions(8, seed=3)
    first5 = fn(*(x[:5] for x in data))
    first3 = fn(*(x[:3] for x in data))
    all8 = fn(*data)
    np.testing.assert_allclose(first3, first5[:3], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(first5, all8[:5], rtol=1e-6, atol=1e-6)
    assert fn.num_traces == 1  # N = 3, 5, 8 all pad to 8
    fn(*transitions(9))
    fn(*transitions(13))
    assert fn.num_traces == 2  # 9 and 13 share the 16 bucket
    assert fn._jitted._cache_size() == 2


def test_set_params_swaps_without_recompiling(cheetah):
    model, params = cheetah
    fn = as_reward_fn(model, params, host_batch_limit=0)
    host_fn = as_reward_fn(model, params)
    data = transitions(5)
    before = fn(*data)
    other = model.init(jax.random.key(42))
    fn.set_params(other)
    host_fn.set_params(other)
    after = fn(*data)
    assert fn.num_traces == 1
    assert fn.params is other
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, np.asarray(model.apply(other, *data)).mean(0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(host_fn(*data), after, rtol=1e-5, atol=1e-5)
    small = RewardModel(RewardNetConfig(inputs=("obs", "act", "next_obs"), hidden_sizes=(4,)), OBS_SPACE, ACT_SPACE)
    with pytest.raises(ValueError, match="params"):
        fn.set_params(small.init(0))


def test_input_validation_names_argument_expected_and_actual(cheetah):
    model, params = cheetah
    fn = as_reward_fn(model, params)
    obs, acts, next_obs, dones = transitions(4)
    with pytest.raises(ValueError, match=r"obs: expected shape \[N, 17\] with N=4 \(from dones\), got \(4, 16\)"):
        fn(obs[:, :16], acts, next_obs, dones)
    with pytest.raises(ValueError, match=r"acts: expected shape \[N, 6\] with N=4 \(from dones\), got \(3, 6\)"):
        fn(obs, acts[:3], next_obs, dones)
    with pytest.raises(ValueError, match=r"next_obs: expected shape \[N, 17\].*got \(4,\)"):
        fn(obs, acts, next_obs[:, 0], dones)
    with pytest.raises(ValueError, match=r"dones: expected shape \[N\], got \(4, 1\)"):
        fn(obs, acts, next_obs, dones[:, None])
    with pytest.raises(ValueError, match="N >= 1"):
        fn(obs[:0], acts[:0], next_obs[:0], dones[:0])
    with pytest.raises(ValueError, match="aggregate"):
        as_reward_fn(model, params, aggregate="max")
    with pytest.raises(ValueError, match="model"):
        as_reward_fn(object(), params)


@pytest.mark.parametrize("host_batch_limit", [128, 0], ids=["numpy-host", "jit"])
def test_non_finite_rewards_raise(cheetah, host_batch_limit):
    model, params = cheetah
    fn = as_reward_fn(model, params, host_batch_limit=host_batch_limit)
    obs, acts, next_obs, dones = transitions(4)
    acts = acts.copy()
    acts[2, 0] = np.nan
    with pytest.raises(FloatingPointError, match=r"acts: expected finite values.*index \(2, 0\)"):
        fn(obs, acts, next_obs, dones)
    poisoned = params._replace(net=jax.tree.map(lambda x: jnp.full_like(x, jnp.nan), params.net))
    fn.set_params(poisoned)
    with pytest.raises(FloatingPointError, match="4 non-finite"):
        fn(*transitions(4))


def test_dict_and_discrete_inputs_with_padding():
    obs_space = gym.spaces.Dict({"pos": gym.spaces.Box(-1, 1, (2,)), "mode": gym.spaces.Discrete(3)})
    model = RewardModel(RewardNetConfig(inputs=("obs", "act"), hidden_sizes=(8,)), obs_space, gym.spaces.Discrete(2))
    params = model.init(0)
    rng = np.random.default_rng(0)
    obs = {"pos": rng.uniform(-1, 1, (9, 2)), "mode": rng.integers(0, 3, 9)}
    acts = rng.integers(0, 2, 9)
    expected = np.asarray(model.apply(params, obs, acts, obs, np.zeros(9)))[0]
    for limit in (128, 0):
        fn = as_reward_fn(model, params, host_batch_limit=limit)
        np.testing.assert_allclose(fn(obs, acts, obs, np.zeros(9, bool)), expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(
            fn(obs, acts[:, None], obs, np.zeros(9, bool)), expected, rtol=1e-5, atol=1e-6
        )  # [N, 1] Discrete
        with pytest.raises(ValueError, match=r"obs\['mode'\]: missing"):
            fn({"pos": obs["pos"]}, acts, obs, np.zeros(9, bool))
        with pytest.raises(ValueError, match=r"obs: expected a dict"):
            fn(obs["pos"], acts, obs, np.zeros(9, bool))


def test_image_model_uses_the_jitted_path():
    image_space = gym.spaces.Box(0, 255, (3, 10, 10), np.uint8)  # channels first
    config = RewardNetConfig(
        inputs=("obs",), hidden_sizes=(8,), cnn_channels=(4,), cnn_kernel_sizes=(3,), cnn_strides=(2,)
    )
    model = RewardModel(config, image_space, ACT_SPACE)
    params = model.init(0)
    fn = as_reward_fn(model, params)
    assert fn.host_batch_limit == 0
    images = np.random.default_rng(0).integers(0, 256, (5, 3, 10, 10), dtype=np.uint8)
    rewards = fn(images, np.zeros((5, 6)), images, np.zeros(5, bool))
    np.testing.assert_allclose(
        rewards, np.asarray(model.apply(params, images, None, None, None))[0], rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("inputs", [("obs", "act", "next_obs"), ("next_obs", "done", "act"), ("obs",)])
@pytest.mark.parametrize("ensemble_size", [1, 3])
def test_flat_fast_path_agrees_with_jit_including_clipped_inputs(inputs, ensemble_size):
    config = RewardNetConfig(inputs=inputs, hidden_sizes=(16, 16), ensemble_size=ensemble_size)
    model = RewardModel(config, OBS_SPACE, ACT_SPACE)
    params = model.update_normalizer(model.init(jax.random.key(3)), np.random.default_rng(1).normal(1.0, 2.0, (64, 17)))
    obs, acts, next_obs, dones = transitions(9, seed=4)
    obs[0, 3], next_obs[1, 5] = 1e3, -1e3  # far beyond ±5 std: the clip must act
    host = as_reward_fn(model, params, aggregate="mean_minus_std")
    assert type(host_forward(model, params)).__name__ == "FlatHostForward"
    jitted = as_reward_fn(model, params, aggregate="mean_minus_std", host_batch_limit=0)
    np.testing.assert_allclose(
        host(obs, acts, next_obs, dones), jitted(obs, acts, next_obs, dones), rtol=1e-5, atol=1e-5
    )
    # Inputs of other layouts (lists, float64 actions) take the general path and agree too.
    np.testing.assert_allclose(
        host(obs.tolist(), acts.astype(np.float64), next_obs, dones),
        jitted(obs, acts, next_obs, dones),
        rtol=1e-5,
        atol=1e-5,
    )
    with pytest.raises(ValueError, match="next_obs"):
        host(obs, acts, next_obs[:, :5], dones)


@pytest.mark.parametrize("hidden_sizes", [(), (8,), (8, 8, 8)])
@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu", "silu", "leaky_relu"])
@pytest.mark.parametrize("ensemble_size", [1, 3])
def test_flat_fast_path_folds_biases_for_every_depth_and_activation(hidden_sizes, activation, ensemble_size):
    """Biases ride on a constant unit through act(1); nonzero biases and a linear model included."""
    config = RewardNetConfig(
        inputs=("obs", "act", "next_obs"), hidden_sizes=hidden_sizes, activation=activation, ensemble_size=ensemble_size
    )
    model = RewardModel(config, OBS_SPACE, ACT_SPACE)
    params = model.init(jax.random.key(0))
    leaves, treedef = jax.tree.flatten(params.net)
    keys = jax.random.split(jax.random.key(1), len(leaves))
    params = params._replace(
        net=jax.tree.unflatten(
            treedef, [x + 0.5 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys, strict=True)]
        )
    )
    obs, acts, next_obs, dones = transitions(7, seed=5)
    host = as_reward_fn(model, params)
    assert type(host_forward(model, params)).__name__ == "FlatHostForward"
    expected = as_reward_fn(model, params, host_batch_limit=0)(obs, acts, next_obs, dones)
    assert np.abs(expected).max() > 0.1
    np.testing.assert_allclose(host(obs, acts, next_obs, dones), expected, rtol=1e-5, atol=1e-5)


def test_flat_fast_path_normalises_explicitly_when_folding_would_lose_digits():
    model = RewardModel(RewardNetConfig(inputs=("obs", "act"), hidden_sizes=(16,)), OBS_SPACE, ACT_SPACE)
    rng = np.random.default_rng(2)
    params = model.update_normalizer(model.init(jax.random.key(1)), rng.normal(1e4, 1.0, (64, 17)))
    host = as_reward_fn(model, params)
    assert not host_forward(model, params).fold
    obs, acts = rng.normal(1e4, 1.0, (5, 17)), rng.uniform(-1, 1, (5, 6))
    expected = as_reward_fn(model, params, host_batch_limit=0)(obs, acts, obs, np.zeros(5, bool))
    np.testing.assert_allclose(host(obs, acts, obs, np.zeros(5, bool)), expected, rtol=1e-5, atol=1e-5)


def test_flat_fast_path_reuses_its_buffer_without_aliasing_threads_or_results():
    """The features buffer is per thread and per batch size: results stay right across calls and threads."""
    import sys
    import threading

    import cloudpickle

    model = RewardModel(
        RewardNetConfig(inputs=("obs", "act", "next_obs"), hidden_sizes=(256, 256)), OBS_SPACE, ACT_SPACE
    )
    params = model.update_normalizer(model.init(jax.random.key(4)), np.random.default_rng(3).normal(1.0, 2.0, (64, 17)))
    host = as_reward_fn(model, params)
    jitted = as_reward_fn(model, params, host_batch_limit=0)
    batches = [transitions(8, seed=seed) for seed in range(6)]
    expected = [jitted(*batch) for batch in batches]
    first = host(*batches[0])
    second = host(*batches[1])  # same n: the same buffer, refilled
    np.testing.assert_allclose(first, expected[0], rtol=1e-5, atol=1e-5)  # not overwritten by the second call
    np.testing.assert_allclose(second, expected[1], rtol=1e-5, atol=1e-5)

    errors: list[str] = []

    def worker(index: int) -> None:
        for _ in range(300):
            got = host(*batches[index])
            if not np.allclose(got, expected[index], rtol=1e-5, atol=1e-5):
                errors.append(f"thread {index}: {got} != {expected[index]}")
                return

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(len(batches))]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible, mid-call included
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert not errors, errors[0]

    restored = cloudpickle.loads(cloudpickle.dumps(host))  # per-thread buffers are not pickled
    np.testing.assert_allclose(restored(*batches[2]), expected[2], rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- any reward model


class TableEnsemble:
    """Three members r_e(s) = table[e, s] over integer states; advantage A_e(s) = r_e(s) − max_s' r_e(s')."""

    ensemble_size = 3

    def apply(self, params, obs, acts, next_obs, dones):
        return params["table"][:, obs]

    def advantage(self, params, obs, acts, next_obs, dones):
        return params["table"][:, obs] - jnp.max(params["table"], axis=1, keepdims=True)


TABLE = {"table": jnp.array([[1.0, -2.0], [3.0, 2.0], [2.0, 0.0]])}  # members × states
STATES = np.array([0, 1])


def _call(fn, states):
    n = len(states)
    return fn(states, np.zeros((n, 1), np.float32), states, np.zeros(n, bool))


@pytest.mark.parametrize(
    ("aggregate", "expected"),
    [
        ("mean", [2.0, 0.0]),
        ("min", [1.0, -2.0]),
        ("mean_minus_std", [2.0 - 0.5 * np.sqrt(2.0 / 3.0), 0.0 - 0.5 * np.sqrt(8.0 / 3.0)]),  # population std
        ("uncertainty_weighted", [2.0 - 0.5 * 2.0 / 3.0, 0.0 - 0.5 * 8.0 / 3.0]),  # population var
    ],
)
def test_any_model_aggregates_its_members_as_hand_computed(aggregate, expected):
    members = TABLE["table"]
    np.testing.assert_allclose(aggregate_ensemble(members, aggregate, 0.5), expected, rtol=1e-6)
    np.testing.assert_allclose(aggregate_ensemble_host(np.asarray(members), aggregate, 0.5), expected, rtol=1e-6)
    fn = as_reward_fn(TableEnsemble(), TABLE, aggregate=aggregate, coefficient=0.5)
    assert isinstance(fn, RewardFn) and fn.aggregate == aggregate and fn.coefficient == 0.5 and fn.host_batch_limit == 0
    rewards = _call(fn, STATES)
    assert rewards.shape == (2,) and rewards.dtype == np.float32
    np.testing.assert_allclose(rewards, expected, rtol=1e-6)
    pure = fn.pure_fn()
    np.testing.assert_allclose(jax.jit(pure)(STATES, jnp.zeros((2, 1)), STATES, jnp.zeros(2, bool)), rewards, rtol=1e-6)


def test_aggregate_ensemble_names_its_arguments():
    with pytest.raises(ValueError, match="member_rewards: expected shape \\[E, N\\]"):
        aggregate_ensemble(jnp.zeros(3))
    with pytest.raises(ValueError, match="aggregate: expected one of"):
        aggregate_ensemble(jnp.zeros((2, 3)), "max")


def test_use_picks_the_member_reward_method():
    advantage = as_reward_fn(TableEnsemble(), TABLE, use="advantage")
    np.testing.assert_allclose(_call(advantage, STATES), [0.0, -2.0])  # members [0, −3], [0, −1], [0, −2]
    with pytest.raises(ValueError, match=r"use: expected one of \('apply', 'advantage'\).*got 'base_reward'"):
        as_reward_fn(TableEnsemble(), TABLE, use="base_reward")
    with pytest.raises(ValueError, match=r"use: expected one of \('apply',\)"):
        as_reward_fn(FunctionReward(lambda s, a, t, d: s[:, 0]), use="advantage")


def test_base_reward_of_a_shaped_model_is_g_alone(cheetah):
    model, params = cheetah
    data = transitions(5)
    g = as_reward_fn(model, params, use="base_reward")
    assert g.host_batch_limit == 0  # the NumPy pass mirrors apply only
    expected = np.asarray(model.base_reward(params, *data)).mean(0)
    np.testing.assert_allclose(g(*data), expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(g(*data), as_reward_fn(model, params)(*data), atol=1e-3)  # apply adds γh(s') − h(s)


def test_bad_options_name_the_argument(cheetah):
    model, params = cheetah
    with pytest.raises(ValueError, match="aggregate: expected one of"):
        as_reward_fn(TableEnsemble(), TABLE, aggregate="median")
    for bad in (float("nan"), "1.0", True):
        with pytest.raises(ValueError, match="coefficient: expected a finite float"):
            as_reward_fn(model, params, aggregate="mean_minus_std", coefficient=bad)
    with pytest.raises(ValueError, match="host_batch_limit"):
        as_reward_fn(model, params, host_batch_limit=-1)
    with pytest.raises(ValueError, match=r"params: expected RewardParams.*got None"):
        as_reward_fn(model)
    with pytest.raises(ValueError, match="model: expected a reward model"):
        as_reward_fn(lambda o, a, n, d: o)


def test_pure_fn_equals_the_host_call_and_traces_under_jit_and_vmap(cheetah):
    model, params = cheetah
    data = transitions(6)
    for aggregate in ("mean", "min", "mean_minus_std"):
        fn = as_reward_fn(model, params, aggregate=aggregate)
        pure = fn.pure_fn()
        np.testing.assert_allclose(pure(*data), fn(*data), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(jax.jit(pure)(*data), fn(*data), rtol=1e-5, atol=1e-5)
        batched = jax.vmap(pure)(*(np.stack([x, x]) for x in data))  # two copies of the batch
        np.testing.assert_allclose(batched, np.stack([fn(*data)] * 2), rtol=1e-5, atol=1e-5)
    other = model.init(jax.random.key(7))
    np.testing.assert_allclose(
        fn.pure_fn(other)(*data),
        np.asarray(model.apply(other, *data)).mean(0) - np.asarray(model.apply(other, *data)).std(0),
        rtol=1e-5,
        atol=1e-5,
    )


def test_function_reward_is_a_model_without_parameters():
    single = FunctionReward(lambda s, a, t, d: -jnp.abs(t[:, 0]))
    assert isinstance(single, RewardModelLike) and single.init() == ()
    fn = as_reward_fn(single)
    next_obs = np.array([[0.5], [-2.0], [1.0]], np.float32)
    np.testing.assert_allclose(fn(np.zeros((3, 1)), None, next_obs, np.zeros(3, bool)), [-0.5, -2.0, -1.0])
    members = FunctionReward(lambda s, a, t, d: jnp.stack([t[:, 0], 3.0 * t[:, 0]]), ensemble_size=2)
    np.testing.assert_allclose(
        as_reward_fn(members, aggregate="min")(next_obs, None, next_obs, np.zeros(3, bool)), [0.5, -6.0, 1.0]
    )
    with pytest.raises(ValueError, match=r"fn: expected rewards of shape \[N\], got \(2, \d+\)"):
        as_reward_fn(FunctionReward(members.fn))(next_obs, None, next_obs, np.zeros(3, bool))
    with pytest.raises(ValueError, match=r"fn: expected member rewards of shape \[ensemble_size, N\] = \[3, N\]"):
        as_reward_fn(FunctionReward(members.fn, ensemble_size=3))(next_obs, None, next_obs, np.zeros(3, bool))
    with pytest.raises(ValueError, match="fn: expected a pure JAX function"):
        FunctionReward("reward")
    with pytest.raises(ValueError, match="ensemble_size: expected an integer >= 1"):
        FunctionReward(single.fn, ensemble_size=0)
    assert isinstance(RewardModel(RewardNetConfig(hidden_sizes=(4,)), OBS_SPACE, ACT_SPACE), RewardModelLike)


def test_any_model_pads_to_buckets_validates_and_swaps_params():
    fn = as_reward_fn(TableEnsemble(), TABLE)
    rng = np.random.default_rng(0)
    for n in range(1, 21):  # buckets 8, 16, 32
        states = rng.integers(0, 2, n)
        np.testing.assert_allclose(_call(fn, states), np.asarray(TABLE["table"]).mean(0)[states], rtol=1e-6)
    assert fn.num_traces == 3
    fn.set_params({"table": -TABLE["table"]})
    np.testing.assert_allclose(_call(fn, STATES), [-2.0, 0.0])
    assert fn.num_traces == 3
    with pytest.raises(ValueError, match="params: shapes/dtypes differ"):
        fn.set_params({"table": jnp.zeros((3, 4))})
    with pytest.raises(ValueError, match="params: expected the structure"):
        fn.set_params(TABLE["table"])
    with pytest.raises(
        ValueError, match=r"obs: expected arrays with a leading batch axis of N=2 \(from dones\), got shape \(3,\)"
    ):
        fn(np.zeros(3, int), np.zeros((2, 1)), STATES, np.zeros(2, bool))
    with pytest.raises(ValueError, match=r"dones: expected shape \[N\]"):
        fn(STATES, np.zeros((2, 1)), STATES, np.zeros((2, 1), bool))
    nan_table = {"table": TABLE["table"].at[1, 1].set(jnp.nan)}
    fn.set_params(nan_table)
    with pytest.raises(FloatingPointError, match=r"1 non-finite reward.*index 1"):
        _call(fn, STATES)


@pytest.fixture(scope="module")
def flat_model():
    """obs + act + next_obs, no shaping: the folded host pass (FlatHostForward)."""
    model = RewardModel(RewardNetConfig(inputs=("obs", "act", "next_obs"), hidden_sizes=(16,)), OBS_SPACE, ACT_SPACE)
    rng = np.random.default_rng(0)
    return model, model.update_normalizer(model.init(jax.random.key(0)), rng.normal(1.0, 2.0, (64, 17)))


@pytest.mark.parametrize("which", ["flat", "general"])
@pytest.mark.parametrize("host_batch_limit", [128, 0], ids=["numpy-host", "jit"])
def test_non_finite_inputs_raise_instead_of_being_clipped(request, which, host_batch_limit):
    # ±inf observations used to be clipped to ±5 by the normaliser and scored as a finite reward.
    model, params = request.getfixturevalue("flat_model" if which == "flat" else "cheetah")
    fn = as_reward_fn(model, params, host_batch_limit=host_batch_limit)
    for argument, name in enumerate(("obs", "acts", "next_obs")):
        for bad in (np.inf, -np.inf, np.nan):
            data = [np.array(x) for x in transitions(5)]
            data[argument][3, 1] = bad
            with pytest.raises(
                NonFiniteError,
                match=rf"^{name}: expected finite values, got 1 NaN or infinite entry \(first at index \(3, 1\)",
            ):
                fn(*data)
        # huge but finite inputs still score (x·x overflows float32; the exact check clears them)
        data[argument][3, 1] = 1e30
        with np.errstate(over="ignore"):
            assert np.isfinite(fn(*data)).all()


@pytest.fixture(scope="module")
def discrete_model():
    """Box(3) observations, Discrete(4, start=1) actions, MultiDiscrete([2, 3]) in a Dict next to them."""
    obs_space = gym.spaces.Dict({"x": gym.spaces.Box(-1, 1, (3,)), "m": gym.spaces.MultiDiscrete([2, 3])})
    model = RewardModel(
        RewardNetConfig(inputs=("obs", "act"), hidden_sizes=(8,)), obs_space, gym.spaces.Discrete(4, start=1)
    )
    return model, model.init(jax.random.key(1))


def _discrete_batch(n: int = 3):
    obs = {"x": np.zeros((n, 3), np.float32), "m": np.tile(np.array([[1, 2]]), (n, 1))}
    return obs, np.array([1, 2, 4][:n] + [3] * max(0, n - 3)), obs, np.zeros(n, bool)


@pytest.mark.parametrize("host_batch_limit", [128, 0], ids=["numpy-host", "jit"])
@pytest.mark.parametrize("bad", [0, 5, -1, 2.5, np.nan, 1e12])
def test_discrete_actions_outside_the_space_raise_on_both_paths(discrete_model, host_batch_limit, bad):
    model, params = discrete_model
    fn = as_reward_fn(model, params, host_batch_limit=host_batch_limit)
    obs, acts, next_obs, dones = _discrete_batch()
    acts = acts.astype(np.float64)
    acts[1] = bad
    with pytest.raises(
        ValueError, match=r"^acts: expected integers in \[1, 4\] \(Discrete\(4, start=1\)\), got .* at row 1"
    ):
        fn(obs, acts, next_obs, dones)
    # whole-number floats are valid codes and score as the integers
    acts[1] = 2.0
    np.testing.assert_array_equal(fn(obs, acts, next_obs, dones), fn(*_discrete_batch()))


@pytest.mark.parametrize("host_batch_limit", [128, 0], ids=["numpy-host", "jit"])
def test_multi_discrete_and_multi_binary_values_are_checked(discrete_model, host_batch_limit):
    model, params = discrete_model
    fn = as_reward_fn(model, params, host_batch_limit=host_batch_limit)
    obs, acts, next_obs, dones = _discrete_batch()
    obs = {**obs, "m": obs["m"].copy()}
    obs["m"][2, 1] = 3  # nvec 3: codes 0..2
    with pytest.raises(
        ValueError, match=r"^obs\['m'\]: expected integers in \[start, start \+ nvec − 1\].*got 3 at row 2"
    ):
        fn(obs, acts, next_obs, dones)
    binary = RewardModel(RewardNetConfig(inputs=("obs",), hidden_sizes=(4,)), gym.spaces.MultiBinary(3), ACT_SPACE)
    binary_fn = as_reward_fn(binary, binary.init(jax.random.key(0)), host_batch_limit=host_batch_limit)
    bits = np.array([[0, 1, 1], [1, 2, 0]])
    with pytest.raises(ValueError, match=r"^obs: expected MultiBinary values 0 or 1, got \[1, 2, 0\] at row 1"):
        binary_fn(bits, np.zeros((2, 6)), bits, np.zeros(2, bool))


def test_pure_path_gives_invalid_codes_an_all_zero_one_hot_like_the_host_pass(discrete_model):
    # Under jit nothing can raise: a fractional code must not be truncated to a valid one (the old
    # cast to int32 scored 2.5 as 2 while the host pass scored it as no action at all).
    model, params = discrete_model
    obs, _, next_obs, dones = _discrete_batch()
    pure = as_reward_fn(model, params).pure_fn()
    host = host_forward(model, params)

    def both(code):
        codes = np.array([code, code, code], np.float32)
        return np.asarray(pure(obs, codes, next_obs, dones)), host(obs, codes, next_obs, dones, 3).mean(0)

    fractional, out_of_range, valid = both(2.5), both(99.0), both(2.0)
    for values in (fractional, out_of_range, valid):
        np.testing.assert_allclose(values[0], values[1], rtol=1e-5, atol=1e-6)  # pure and host agree
    np.testing.assert_allclose(fractional[0], out_of_range[0], rtol=1e-6)
    assert not np.allclose(fractional[0], valid[0])


@pytest.mark.parametrize("host_batch_limit", [128, 0], ids=["numpy-host", "jit"])
def test_non_numeric_inputs_raise_type_errors_naming_the_argument(flat_model, discrete_model, host_batch_limit):
    model, params = flat_model
    fn = as_reward_fn(model, params, host_batch_limit=host_batch_limit)
    obs, acts, next_obs, dones = transitions(2)
    for bad in (obs.astype(str), obs.astype(object), obs.astype(np.complex64)):
        with pytest.raises(TypeError, match=r"^obs: expected a numeric \(bool, integer or float\) array, got dtype"):
            fn(bad, acts, next_obs, dones)
    with pytest.raises(TypeError, match=r"^acts: expected a numeric"):
        fn(obs, acts.astype(np.complex128), next_obs, dones)
    with pytest.raises(TypeError, match=r"^dones: expected a bool"):
        fn(obs, acts, next_obs, np.array(["no", "yes"]))
    with pytest.raises(TypeError, match=r"^next_obs: expected an array"):
        fn(obs, acts, [[1.0] * 17, [2.0]], dones)
    dict_model, dict_params = discrete_model
    dict_fn = as_reward_fn(dict_model, dict_params, host_batch_limit=host_batch_limit)
    obs, acts, next_obs, dones = _discrete_batch()
    with pytest.raises(TypeError, match=r"^obs\['x'\]: expected a numeric"):
        dict_fn({**obs, "x": obs["x"].astype(str)}, acts, next_obs, dones)
    generic = as_reward_fn(FunctionReward(lambda s, a, t, d: s[:, 0]))
    with pytest.raises(TypeError, match=r"^obs: expected a numeric"):
        generic(np.array([["a"], ["b"]]), np.zeros((2, 1)), np.zeros((2, 1)), np.zeros(2, bool))
