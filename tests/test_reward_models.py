"""RewardModel: forward pass against a NumPy reference, encodings, ensembles, shaping, normalisation."""

from __future__ import annotations

import json

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rewardlab.rewards import (
    RewardModel,
    RewardNetConfig,
    RewardParams,
    RunningStats,
    is_image_space,
    space_from_dict,
    space_to_dict,
)
from rewardlab.testing._numpy_reward import (
    numpy_mlp_forward,
    numpy_normalize,
    numpy_running_moments,
    numpy_shaped_reward,
)

OBS_SPACE = gym.spaces.Box(-np.inf, np.inf, (4,), np.float64)
ACT_SPACE = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
SMALL_CNN = dict(cnn_channels=(4, 8), cnn_kernel_sizes=(4, 3), cnn_strides=(2, 1))


def member_layers(params: RewardParams, member: int, head: str = "g") -> list[tuple[np.ndarray, np.ndarray]]:
    layers = params.net.to_pure_dict()[head]["layers"]
    return [(np.asarray(layers[i]["kernel"][member]), np.asarray(layers[i]["bias"][member])) for i in sorted(layers)]


def set_layer(params: RewardParams, head: str, index: int, kernel: np.ndarray, bias: np.ndarray) -> RewardParams:
    """Return params with layer ``index`` of ``head`` replaced (all members)."""
    net = jax.tree.map(lambda x: x, params.net)  # a copy of the State
    layer = net[head]["layers"][index]
    layer["kernel"].value = jnp.broadcast_to(jnp.asarray(kernel, jnp.float32), layer["kernel"].value.shape)
    layer["bias"].value = jnp.broadcast_to(jnp.asarray(bias, jnp.float32), layer["bias"].value.shape)
    return params._replace(net=net)


def batch(rng: np.random.Generator, n: int, obs_dim: int = 4, act_dim: int = 2):
    obs = rng.normal(size=(n, obs_dim))
    acts = rng.uniform(-1, 1, (n, act_dim)).astype(np.float32)
    next_obs = rng.normal(size=(n, obs_dim))
    dones = rng.uniform(size=n) < 0.3
    return obs, acts, next_obs, dones


# Config and spaces ---------------------------------------------------------------------------
def test_config_round_trip_and_validation():
    config = RewardNetConfig(
        inputs=("obs", "act", "next_obs", "done"), hidden_sizes=[32, 16], ensemble_size=3, potential_shaping=True
    )
    assert config.hidden_sizes == (32, 16)
    data = json.loads(json.dumps(config.to_dict()))
    assert RewardNetConfig.from_dict(data) == config
    hash(config)
    with pytest.raises(ValueError, match="inputs"):
        RewardNetConfig(inputs=("obs", "reward"))
    with pytest.raises(ValueError, match="inputs"):
        RewardNetConfig(inputs=())
    with pytest.raises(ValueError, match="activation"):
        RewardNetConfig(activation="sigmoid")
    with pytest.raises(ValueError, match="ensemble_size"):
        RewardNetConfig(ensemble_size=0)
    with pytest.raises(ValueError, match="discount"):
        RewardNetConfig(discount=1.5)
    with pytest.raises(ValueError, match="hidden_sizes"):
        RewardNetConfig(hidden_sizes=(0,))
    with pytest.raises(ValueError, match="cnn_channels"):
        RewardNetConfig(cnn_channels=(8,), cnn_kernel_sizes=(3, 3), cnn_strides=(1, 1))
    with pytest.raises(ValueError, match="unknown"):
        RewardNetConfig.from_dict({"hidden": [3]})


def test_space_round_trip_strict_json():
    space = gym.spaces.Dict(
        [
            ("z_pos", gym.spaces.Box(np.array([-np.inf, 0.0]), np.array([np.inf, 2.5]), dtype=np.float64)),
            ("a_img", gym.spaces.Box(0, 255, (8, 8, 3), np.uint8)),
            ("mode", gym.spaces.Discrete(3, start=-1)),
            ("bits", gym.spaces.MultiBinary(4)),
            ("multi", gym.spaces.MultiDiscrete([2, 5])),
        ]
    )
    text = json.dumps(space_to_dict(space), allow_nan=False)  # strict JSON: no Infinity literals
    rebuilt = space_from_dict(json.loads(text))
    assert rebuilt == space
    assert list(rebuilt.spaces) == ["z_pos", "a_img", "mode", "bits", "multi"]  # key order kept
    assert is_image_space(space["a_img"]) and not is_image_space(space["z_pos"])
    with pytest.raises(ValueError, match="Tuple"):
        space_to_dict(gym.spaces.Tuple([gym.spaces.Discrete(2)]))
    with pytest.raises(ValueError, match="unknown space type"):
        space_from_dict({"type": "Graph"})


# Forward pass ---------------------------------------------------------------------------------
def test_linear_model_hand_computed():
    """hidden_sizes=() is r = w·x + b; with w, b set by hand the reward is known exactly."""
    model = RewardModel(
        RewardNetConfig(inputs=("obs", "act"), hidden_sizes=(), normalize_inputs=False), OBS_SPACE, ACT_SPACE
    )
    params = model.init(jax.random.key(0))
    w = np.array([[1.0], [2.0], [0.0], [-1.0], [0.5], [3.0]])
    params = set_layer(params, "g", 0, w, np.array([0.25]))
    obs = np.array([[1.0, 1.0, 5.0, 2.0]])
    acts = np.array([[2.0, -1.0]], np.float32)
    # 1 + 2 + 0 − 2 + 1 − 3 + 0.25
    np.testing.assert_allclose(model.apply(params, obs, acts, None, None), [[-0.75]], rtol=1e-6)


@pytest.mark.parametrize("activation", ["relu", "tanh", "leaky_relu", "gelu", "silu"])
def test_mlp_matches_numpy_reference(activation):
    config = RewardNetConfig(
        inputs=("obs", "act", "next_obs", "done"), hidden_sizes=(8, 5), activation=activation, ensemble_size=2
    )
    model = RewardModel(config, OBS_SPACE, ACT_SPACE)
    rng = np.random.default_rng(1)
    params = model.init(jax.random.key(1))
    params = model.update_normalizer(params, rng.normal(2.0, 3.0, (50, 4)))
    obs, acts, next_obs, dones = batch(rng, 6)
    obs[0, 0] = 1e3  # clipped at +5 after normalising
    rewards = np.asarray(model.apply(params, obs, acts, next_obs, dones))
    assert rewards.shape == (2, 6) and rewards.dtype == np.float32
    mean, var = np.asarray(params.obs_stats.mean), np.asarray(params.obs_stats.var)
    features = np.concatenate(
        [
            numpy_normalize(obs, mean, var),
            acts,
            numpy_normalize(next_obs, mean, var),
            dones[:, None].astype(np.float64),
        ],
        axis=1,
    )
    for member in range(2):
        expected = numpy_mlp_forward(member_layers(params, member), features, activation)
        np.testing.assert_allclose(rewards[member], expected, rtol=2e-5, atol=2e-5)


def test_normalised_inputs_are_clipped_to_five():
    model = RewardModel(
        RewardNetConfig(inputs=("obs",), hidden_sizes=()), gym.spaces.Box(-np.inf, np.inf, (1,)), ACT_SPACE
    )
    params = set_layer(model.init(jax.random.key(0)), "g", 0, np.array([[2.0]]), np.array([1.0]))
    params = params._replace(obs_stats=RunningStats(jnp.array([1.0]), jnp.array([4.0]), jnp.array(10.0)))
    obs = np.array([[3.0], [1e6], [-1e6]], np.float32)
    # (3 − 1)/2 = 1 → 2·1 + 1; ±1e6 → ±5 → ±10 + 1
    np.testing.assert_allclose(model.apply(params, obs, None, None, None)[0], [3.0, 11.0, -9.0], rtol=1e-6)


def test_jit_and_non_jit_apply_agree():
    model = RewardModel(
        RewardNetConfig(inputs=("obs", "act", "next_obs"), hidden_sizes=(4,), potential_shaping=True),
        OBS_SPACE,
        ACT_SPACE,
    )
    params = model.init(jax.random.key(3))
    data = batch(np.random.default_rng(3), 7)
    jitted = np.asarray(model.apply(params, *data))
    with jax.disable_jit():
        eager = np.asarray(model.apply(params, *data))
    np.testing.assert_allclose(jitted, eager, rtol=1e-5, atol=1e-6)


def test_gradients_with_respect_to_net_are_finite():
    model = RewardModel(
        RewardNetConfig(inputs=("obs", "act"), hidden_sizes=(16,), ensemble_size=2, potential_shaping=True),
        OBS_SPACE,
        ACT_SPACE,
    )
    params = model.init(jax.random.key(4))
    data = batch(np.random.default_rng(4), 5)
    grads = jax.grad(lambda net: jnp.sum(model.apply(params._replace(net=net), *data)))(params.net)
    leaves = jax.tree.leaves(grads)
    assert all(np.all(np.isfinite(g)) for g in leaves)
    assert any(np.any(g != 0) for g in leaves)


# Ensembles ------------------------------------------------------------------------------------
def test_ensemble_members_differ_and_vmap_equals_loop():
    config = RewardNetConfig(inputs=("obs", "act"), hidden_sizes=(16, 16), ensemble_size=4)
    model = RewardModel(config, OBS_SPACE, ACT_SPACE)
    single = RewardModel(
        RewardNetConfig(inputs=("obs", "act"), hidden_sizes=(16, 16), ensemble_size=1), OBS_SPACE, ACT_SPACE
    )
    params = model.init(jax.random.key(5))
    kernels = np.asarray(params.net["g"]["layers"][0]["kernel"].value)
    assert kernels.shape == (4, 6, 16)
    for i in range(4):
        for j in range(i):
            assert not np.allclose(kernels[i], kernels[j])
    data = batch(np.random.default_rng(5), 9)
    stacked = np.asarray(model.apply(params, *data))
    for member in range(4):
        member_params = params._replace(net=jax.tree.map(lambda x, m=member: x[m : m + 1], params.net))
        np.testing.assert_allclose(
            stacked[member], np.asarray(single.apply(member_params, *data))[0], rtol=1e-6, atol=1e-6
        )
    assert len({tuple(np.round(row, 5)) for row in stacked}) == 4


def test_init_is_deterministic_per_key():
    model = RewardModel(RewardNetConfig(hidden_sizes=(8,)), OBS_SPACE, ACT_SPACE)
    a, b, c = model.init(jax.random.key(7)), model.init(jax.random.key(7)), model.init(8)
    assert all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a.net), jax.tree.leaves(c.net), strict=True))


# Potential shaping ----------------------------------------------------------------------------
def test_potential_shaping_matches_formula():
    config = RewardNetConfig(
        inputs=("obs", "act"), hidden_sizes=(8,), potential_shaping=True, discount=0.9, ensemble_size=2
    )
    model = RewardModel(config, OBS_SPACE, ACT_SPACE)
    params = model.init(jax.random.key(6))
    obs, acts, next_obs, dones = batch(np.random.default_rng(6), 6)
    shaped = np.asarray(model.apply(params, obs, acts, next_obs, dones))
    g = np.asarray(model.base_reward(params, obs, acts, None, None))
    h, h_next = np.asarray(model.potential(params, obs)), np.asarray(model.potential(params, next_obs))
    for member in range(2):
        expected = numpy_shaped_reward(g[member], h[member], h_next[member], dones, 0.9)
        np.testing.assert_allclose(shaped[member], expected, rtol=1e-5, atol=1e-5)
    assert not np.allclose(shaped, g)


def test_potential_shaping_telescopes_over_a_trajectory():
    """Constant g = c, random h: Σ_t γ^t r_t = Σ_t γ^t c − h(s_0) when the last step is terminal."""
    gamma, c, steps = 0.95, 0.7, 12
    config = RewardNetConfig(inputs=("obs", "act"), hidden_sizes=(16,), potential_shaping=True, discount=gamma)
    model = RewardModel(config, OBS_SPACE, ACT_SPACE)
    params = model.init(jax.random.key(11))
    params = set_layer(params, "g", 1, np.zeros((16, 1)), np.array([c]))  # g ≡ c
    rng = np.random.default_rng(11)
    states = rng.normal(size=(steps + 1, 4))
    acts = rng.uniform(-1, 1, (steps, 2)).astype(np.float32)
    dones = np.zeros(steps, bool)
    dones[-1] = True
    rewards = np.asarray(model.apply(params, states[:-1], acts, states[1:], dones))[0].astype(np.float64)
    np.testing.assert_allclose(np.asarray(model.base_reward(params, states[:-1], acts, None, None))[0], c, rtol=1e-6)
    discounts = gamma ** np.arange(steps)
    h0 = float(np.asarray(model.potential(params, states[:1]))[0, 0])
    assert abs(h0) > 1e-3  # the test would be vacuous with h(s0) = 0
    np.testing.assert_allclose(discounts @ rewards, discounts.sum() * c - h0, rtol=1e-5, atol=1e-5)


def test_potential_requires_shaping():
    model = RewardModel(RewardNetConfig(hidden_sizes=(4,)), OBS_SPACE, ACT_SPACE)
    with pytest.raises(ValueError, match="potential_shaping"):
        model.potential(model.init(0), np.zeros((2, 4)))


# Encodings ------------------------------------------------------------------------------------
def test_discrete_actions_are_one_hot():
    space = gym.spaces.Discrete(3, start=1)
    model = RewardModel(RewardNetConfig(inputs=("act",), hidden_sizes=()), OBS_SPACE, space)
    params = set_layer(model.init(0), "g", 0, np.array([[10.0], [20.0], [30.0]]), np.array([1.0]))
    acts = np.array([1, 2, 3, 2])
    np.testing.assert_allclose(model.apply(params, None, acts, None, None)[0], [11.0, 21.0, 31.0, 21.0])
    # SB3 replay buffers store Discrete actions as [N, 1] floats
    np.testing.assert_allclose(
        model.apply(params, None, acts[:, None].astype(np.float32), None, None)[0], [11.0, 21.0, 31.0, 21.0]
    )


def test_multi_discrete_and_multi_binary_actions():
    space = gym.spaces.MultiDiscrete([2, 3])
    model = RewardModel(RewardNetConfig(inputs=("act",), hidden_sizes=()), OBS_SPACE, space)
    w = np.array([[1.0], [2.0], [10.0], [20.0], [30.0]])
    params = set_layer(model.init(0), "g", 0, w, np.array([0.0]))
    np.testing.assert_allclose(model.apply(params, None, np.array([[0, 2], [1, 0]]), None, None)[0], [31.0, 12.0])
    bits = gym.spaces.MultiBinary(3)
    model = RewardModel(RewardNetConfig(inputs=("act",), hidden_sizes=()), OBS_SPACE, bits)
    params = set_layer(model.init(0), "g", 0, np.array([[1.0], [2.0], [4.0]]), np.array([0.0]))
    np.testing.assert_allclose(
        model.apply(params, None, np.array([[1, 0, 1], [0, 1, 1]], np.int8), None, None)[0], [5.0, 6.0]
    )


def test_dict_observations():
    space = gym.spaces.Dict(
        {
            "pos": gym.spaces.Box(-np.inf, np.inf, (3,)),
            "mode": gym.spaces.Discrete(4),
            "camera": gym.spaces.Box(0, 255, (8, 8, 1), np.uint8),
            "flags": gym.spaces.MultiBinary(2),
        }
    )
    config = RewardNetConfig(inputs=("obs", "act", "next_obs"), hidden_sizes=(16,), ensemble_size=2, **SMALL_CNN)
    model = RewardModel(config, space, gym.spaces.Discrete(2))
    params = model.init(jax.random.key(2))
    # Only the non-image Box leaf carries running statistics.
    assert set(params.obs_stats.mean) == {"pos"} and params.obs_stats.mean["pos"].shape == (3,)
    space.seed(0)
    samples = [space.sample() for _ in range(5)]
    obs = {key: np.stack([s[key] for s in samples]) for key in space.spaces}
    next_obs = {key: value[::-1].copy() for key, value in obs.items()}
    rewards = np.asarray(model.apply(params, obs, np.array([0, 1, 1, 0, 1]), next_obs, np.zeros(5)))
    assert rewards.shape == (2, 5) and np.all(np.isfinite(rewards))
    changed = dict(obs, camera=255 - obs["camera"])
    assert not np.allclose(model.apply(params, changed, np.array([0, 1, 1, 0, 1]), next_obs, np.zeros(5)), rewards)
    updated = model.update_normalizer(params, obs)
    np.testing.assert_allclose(updated.obs_stats.mean["pos"], obs["pos"].mean(0), rtol=1e-5)
    assert float(updated.obs_stats.count) == 5.0
    with pytest.raises(ValueError, match=r"obs\['camera'\].*missing"):
        model.apply(params, {k: v for k, v in obs.items() if k != "camera"}, np.zeros(5, int), next_obs, np.zeros(5))
    with pytest.raises(ValueError, match=r"obs\['pos'\]: expected shape \[N, 3\].*\(5, 2\)"):
        model.apply(params, dict(obs, pos=np.zeros((5, 2))), np.zeros(5, int), next_obs, np.zeros(5))


def test_cnn_on_84x84x3_uint8_images_channel_order():
    hwc = gym.spaces.Box(0, 255, (84, 84, 3), np.uint8)
    chw = gym.spaces.Box(0, 255, (3, 84, 84), np.uint8)
    config = RewardNetConfig(inputs=("obs", "act"), hidden_sizes=(32,), cnn_channels=(4, 8, 8))
    model_hwc = RewardModel(config, hwc, gym.spaces.Discrete(4))
    model_chw = RewardModel(config, chw, gym.spaces.Discrete(4))
    params = model_hwc.init(jax.random.key(9))
    kernel_shapes = [params.net["encoder"]["cnns"][0]["convs"][i]["kernel"].value.shape for i in range(3)]
    assert kernel_shapes == [(1, 8, 8, 3, 4), (1, 4, 4, 4, 8), (1, 3, 3, 8, 8)]  # 84 → 20 → 9 → 7
    assert params.obs_stats.mean == {}  # images are scaled by 1/255, never normalised
    images = np.random.default_rng(9).integers(0, 256, (3, 84, 84, 3), dtype=np.uint8)
    acts = np.array([0, 3, 1])
    rewards = np.asarray(model_hwc.apply(params, images, acts, None, None))
    assert rewards.shape == (1, 3) and np.all(np.isfinite(rewards))
    np.testing.assert_allclose(
        model_chw.apply(params, images.transpose(0, 3, 1, 2), acts, None, None), rewards, rtol=1e-5, atol=1e-6
    )
    # update_normalizer does not touch image inputs
    updated = model_hwc.update_normalizer(params, images)
    np.testing.assert_array_equal(model_hwc.apply(updated, images, acts, None, None), rewards)


def test_cnn_too_deep_for_the_image_is_rejected():
    with pytest.raises(ValueError, match="cnn_kernel_sizes"):
        RewardModel(RewardNetConfig(), gym.spaces.Box(0, 255, (10, 10, 3), np.uint8), ACT_SPACE)


# Normalisation --------------------------------------------------------------------------------
def test_running_statistics_merge_batches():
    model = RewardModel(RewardNetConfig(hidden_sizes=(4,)), gym.spaces.Box(-np.inf, np.inf, (2, 3)), ACT_SPACE)
    params = model.init(0)
    np.testing.assert_array_equal(params.obs_stats.mean, np.zeros((2, 3)))
    np.testing.assert_array_equal(params.obs_stats.var, np.ones((2, 3)))
    rng = np.random.default_rng(0)
    batches = [rng.normal(1.0, 2.0, (n, 2, 3)) for n in (7, 1, 30)]
    for b in batches:
        params = model.update_normalizer(params, b)
    mean, var, count = numpy_running_moments(batches)
    np.testing.assert_allclose(np.asarray(params.obs_stats.mean).reshape(-1), mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(params.obs_stats.var).reshape(-1), var, rtol=1e-5)
    assert float(params.obs_stats.count) == count
    jitted = jax.jit(model.update_normalizer)(model.init(0), batches[2])
    np.testing.assert_allclose(jitted.obs_stats.mean, batches[2].mean(0), rtol=1e-5, atol=1e-6)


def test_normalize_inputs_false_ignores_statistics():
    config = RewardNetConfig(inputs=("obs",), hidden_sizes=(4,), normalize_inputs=False)
    model = RewardModel(config, OBS_SPACE, ACT_SPACE)
    params = model.init(0)
    obs = np.random.default_rng(0).normal(5.0, 3.0, (4, 4))
    before = np.asarray(model.apply(params, obs, None, None, None))
    after = np.asarray(model.apply(model.update_normalizer(params, obs), obs, None, None, None))
    np.testing.assert_array_equal(before, after)


# Shapes at the door ---------------------------------------------------------------------------
def test_shape_errors_name_the_argument():
    model = RewardModel(
        RewardNetConfig(inputs=("obs", "act", "next_obs", "done"), hidden_sizes=(4,)), OBS_SPACE, ACT_SPACE
    )
    params = model.init(0)
    obs, acts, next_obs, dones = batch(np.random.default_rng(0), 3)
    with pytest.raises(ValueError, match=r"obs: expected shape \[N, 4\], got \(3, 5\)"):
        model.apply(params, np.zeros((3, 5)), acts, next_obs, dones)
    with pytest.raises(ValueError, match=r"acts: expected shape \[N, 2\], got \(3,\)"):
        model.apply(params, obs, np.zeros(3), next_obs, dones)
    with pytest.raises(ValueError, match=r"next_obs: expected a leading batch axis of N=3"):
        model.apply(params, obs, acts, next_obs[:2], dones)
    with pytest.raises(ValueError, match=r"dones: expected shape \[N\] with N=3, got \(3, 1\)"):
        model.apply(params, obs, acts, next_obs, dones[:, None])
    with pytest.raises(ValueError, match="next_obs: required"):
        model.apply(params, obs, acts, None, dones)
    with pytest.raises(ValueError, match="params"):
        model.apply({"net": 1}, obs, acts, next_obs, dones)
    with pytest.raises(ValueError, match="observation_space"):
        RewardModel(RewardNetConfig(), "Box(4)", ACT_SPACE)
    with pytest.raises(ValueError, match="config"):
        RewardModel({"inputs": ("obs",)}, OBS_SPACE, ACT_SPACE)
