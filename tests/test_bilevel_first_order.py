"""rewardlab.bilevel.barfi_sb3: the first-order outer gradient with an SB3 inner learner; HalfCheetah's components."""

from __future__ import annotations

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.vec_env import DummyVecEnv

from rewardlab.bilevel import (
    FirstOrderConfig,
    barfi_sb3,
    discounted_returns,
    linear_blend,
    policy_score_products,
)


def _pendulum_reward(obs, acts):
    """Pendulum-v1's reward from the pre-step observation (cos θ, sin θ, θ̇) and the torque."""
    theta = np.arctan2(obs[:, 1], obs[:, 0])
    torque = np.clip(acts[:, 0], -2.0, 2.0)
    return -(theta**2 + 0.1 * obs[:, 2] ** 2 + 0.001 * torque**2)


def _scaled_auxiliary(scale):
    def components(obs, acts, next_obs, dones):
        primary = _pendulum_reward(obs, acts)
        return primary, scale * primary

    return components


def _ppo(env, n_steps=64):
    return PPO("MlpPolicy", env, n_steps=n_steps, batch_size=64, n_epochs=1, device="cpu", seed=0)


def _venv(num_envs=2):
    venv = DummyVecEnv([lambda: gym.make("Pendulum-v1", max_episode_steps=50)] * num_envs)
    venv.seed(0)
    return venv


def test_the_pendulum_reward_from_observations_is_the_envs():
    env = gym.make("Pendulum-v1")
    obs, _ = env.reset(seed=1)
    for action in (-3.0, 0.5, 2.0):
        next_obs, reward, *_ = env.step(np.array([action], np.float32))
        assert _pendulum_reward(obs[None], np.array([[action]]))[0] == pytest.approx(reward, rel=1e-4, abs=1e-5)
        obs = next_obs


def test_discounted_returns_cut_at_episode_ends():
    rewards = np.array([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]])
    dones = np.array([[False, True], [True, False], [False, False]])
    returns = np.asarray(discounted_returns(rewards, dones, 0.5))
    np.testing.assert_allclose(returns[:, 0], [1.5, 1.0, 1.0])
    np.testing.assert_allclose(returns[:, 1], [2.0, 3.0, 2.0])


def test_score_products_match_per_sample_gradients():
    agent = _ppo(_venv())
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(5, 3)).astype(np.float32)
    acts = rng.normal(size=(5, 1)).astype(np.float32)
    advantages = rng.normal(size=5)
    products, norm = policy_score_products(agent.policy, obs, acts, advantages)
    parameters = [p for p in agent.policy.parameters() if p.requires_grad]
    rows = []
    for index in range(5):
        _, log_prob, _ = agent.policy.evaluate_actions(
            torch.as_tensor(obs[index : index + 1]), torch.as_tensor(acts[index : index + 1])
        )
        grads = torch.autograd.grad(log_prob.sum(), parameters, allow_unused=True)
        rows.append(
            torch.cat(
                [
                    (g if g is not None else torch.zeros_like(p)).reshape(-1)
                    for g, p in zip(grads, parameters, strict=True)
                ]
            )
        )
    jacobian = torch.stack(rows).double().numpy()  # [N, P]
    primary_gradient = (jacobian * advantages[:, None]).mean(axis=0)
    np.testing.assert_allclose(products, jacobian @ primary_gradient, rtol=1e-4, atol=1e-6)
    assert norm == pytest.approx(np.linalg.norm(primary_gradient), rel=1e-4)


@pytest.mark.parametrize("scale", [-1.0, 1.0])
def test_the_outer_gradient_has_the_known_sign(scale):
    """With r_aux = c·r_p, ∂/∂φ2 of the first-order gradient is ‖ĝ_p‖² > 0 and ∂/∂φ3 is c‖ĝ_p‖².

    Adam's first step moves every coordinate by its step size in its gradient's sign.
    """
    config = FirstOrderConfig(outer_iterations=1, inner_timesteps=128, outer_learning_rate=0.1)
    result = barfi_sb3(_ppo, _venv(), _scaled_auxiliary(scale), config)
    phi = np.asarray(result.params.blend)[0]
    assert phi[1] == pytest.approx(1.1, abs=1e-3)
    assert phi[2] == pytest.approx(1.0 + 0.1 * scale, abs=1e-3)
    assert result.gradient_norm[0] > 0
    np.testing.assert_allclose(result.coefficients[0], [0.0, 1.0, 1.0])  # the first iteration trains on the naive sum


def test_phi_stays_finite_and_the_agent_is_warm_started():
    config = FirstOrderConfig(outer_iterations=3, inner_timesteps=128, outer_learning_rate=0.2, learn_discount=True)
    result = barfi_sb3(_ppo, _venv(), _scaled_auxiliary(-1.0), config)
    assert result.timesteps.tolist() == [128, 256, 384]  # one agent, continuing
    assert not result.diverged and result.diverged_at == -1
    for array in (result.coefficients, result.discount, result.gradient_norm, result.primary_return):
        assert np.all(np.isfinite(array))
    assert result.episodes.tolist() == [2, 2, 2]  # 50-step episodes on 2 envs, 64 steps each per iteration
    assert 0.0 < result.agent.gamma < 1.0
    assert result.agent.gamma == pytest.approx(float(jax.nn.sigmoid(result.params.discount_logit)), rel=1e-6)
    assert result.discount[0] == pytest.approx(0.99)


def test_a_fixed_blend_never_moves_and_a_linear_blend_takes_features():
    fixed = barfi_sb3(
        _ppo,
        _venv(),
        _scaled_auxiliary(-1.0),
        FirstOrderConfig(outer_iterations=2, inner_timesteps=64, update_blend=False),
    )
    np.testing.assert_array_equal(np.asarray(fixed.params.blend)[0], [0.0, 1.0, 1.0])
    assert fixed.gradient_norm.tolist() == [0.0, 0.0]
    linear = barfi_sb3(
        _ppo,
        _venv(),
        _scaled_auxiliary(-1.0),
        FirstOrderConfig(outer_iterations=2, inner_timesteps=64),
        blend=linear_blend(3),
        blend_inputs=lambda obs, acts: np.asarray(obs, np.float32),
    )
    weight, _ = linear.params.blend
    assert np.all(np.isfinite(weight)) and np.any(np.asarray(weight) != 0)


def _wrong_shape(obs, acts, next_obs, dones):
    return _pendulum_reward(obs, acts)[:, None], _pendulum_reward(obs, acts)


def _not_finite(obs, acts, next_obs, dones):
    primary = _pendulum_reward(obs, acts)
    return primary, np.full_like(primary, np.nan)


class _RoundedBlend:
    def init(self, key):
        return jnp.array([[0.0, 1.0, 1.0]])

    def coefficients(self, params, inputs):
        return jnp.round(params[inputs])


def test_bad_input_is_named():
    small = FirstOrderConfig(outer_iterations=1, inner_timesteps=64)
    bad_settings = {
        "outer_iterations": dict(outer_iterations=0),
        "discount": dict(discount=1.0),
        "learn_discount": dict(learn_discount="yes"),
        "max_gradient_norm": dict(max_gradient_norm=0.0),
    }
    for name, bad in bad_settings.items():
        with pytest.raises(ValueError, match=name):
            FirstOrderConfig(**bad)
    with pytest.raises(ValueError, match=r"components: expected r_p of shape \(2,\)"):
        barfi_sb3(_ppo, _venv(), _wrong_shape, small)
    with pytest.raises(ValueError, match="r_aux has non-finite values"):
        barfi_sb3(_ppo, _venv(), _not_finite, small)
    with pytest.raises(TypeError, match="on-policy"):
        barfi_sb3(lambda env: SAC("MlpPolicy", env, device="cpu"), _venv(1), _scaled_auxiliary(1.0), small)
    with pytest.raises(ValueError, match="blend_inputs"):
        barfi_sb3(_ppo, _venv(), _scaled_auxiliary(1.0), small, blend=linear_blend(3))
    with pytest.raises(ValueError, match="zero gradient everywhere"):
        barfi_sb3(
            _ppo,
            _venv(),
            _scaled_auxiliary(1.0),
            small,
            blend=_RoundedBlend(),
            blend_inputs=lambda o, a: np.zeros(len(a), int),
        )
    with pytest.raises(TypeError, match="FirstOrderConfig"):
        barfi_sb3(_ppo, _venv(), _scaled_auxiliary(1.0), {"outer_iterations": 1})


def test_halfcheetah_components_are_the_envs_named_factors():
    from experiments.barfi_mujoco import CONTROL_COST, ControlCostComponents, HidePosition, ShapedControlCost, make_venv
    from rewardlab_envs import make

    weight = 4.0
    env = make(
        "HalfCheetah-v5", exclude_current_positions_from_observation=False, ctrl_cost_weight=CONTROL_COST * weight
    )
    assert env.get_wrapper_attr("factor_spec").names == ("forward_reward", "control_cost")
    components = ControlCostComponents(weight, env.unwrapped.dt)
    obs, _ = env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(5):
        action = rng.uniform(-1, 1, size=6).astype(np.float32)
        next_obs, _, _, _, info = env.step(action)
        primary, auxiliary = components(obs[None], action[None], next_obs[None], np.array([False]))
        forward, cost = info["reward_factors"]
        assert primary[0] == pytest.approx(forward, rel=1e-4, abs=1e-5)
        assert auxiliary[0] == pytest.approx(-cost, rel=1e-4, abs=1e-6)
        obs = next_obs
    venv = HidePosition(make_venv(0, episode_steps=3))
    assert venv.observation_space.shape == (17,) and venv.reset().shape == (1, 17)
    # shaping with the control cost as potential telescopes: Σ_t γ^t F_t = γ^T h(s_T) with h(s_0) = 0
    shaped = ShapedControlCost(ControlCostComponents(1.0, 0.05), 0.9, num_envs=1)
    costs, total = [], 0.0
    for t in range(4):
        acts = rng.uniform(-1, 1, size=(1, 6))
        _, shaping = shaped(np.zeros((1, 18)), acts, np.zeros((1, 18)), np.array([t == 3]))
        costs.append(-0.1 * np.square(acts).sum())
        total += 0.9**t * float(shaping[0])
    assert total == pytest.approx(0.9**4 * costs[-1], rel=1e-5)
    assert shaped.potential.tolist() == [0.0]  # reset after the episode's end


def test_the_halfcheetah_study_parses_and_refuses_other_outer_gradients():
    from experiments import barfi as study
    from rewardlab.sweeps import load_sweep, parse_args

    args = parse_args(study.Args, ["--env", "HalfCheetah-v5", "--inner-timesteps", "512", "--workers", "2"])
    assert (args.hypergradient, args.inner_timesteps, args.workers) == ("first_order", 512, 2)
    with pytest.raises(ValueError, match="takes 'first_order' only"):
        study.Args(env="HalfCheetah-v5", hypergradient="cg")
    with pytest.raises(ValueError, match="'first_order' is for HalfCheetah-v5"):
        study.Args(hypergradient="first_order")
    with pytest.raises(ValueError, match="workers"):
        study.Args(env="HalfCheetah-v5", workers=0)
    runs = load_sweep("experiments/barfi_halfcheetah.toml").runs()
    assert len(runs) == 2


@pytest.mark.slow
def test_the_halfcheetah_study_runs_from_the_cli(tmp_path):
    from experiments.barfi import Args, main

    args = Args(
        env="HalfCheetah-v5",
        seeds=1,
        outer_iterations=2,
        inner_timesteps=64,
        episode_horizon=64,
        out_dir=tmp_path,
        figures=False,
    )
    summary = main(args)
    assert summary["hypergradient"] == "first_order"
    for auxiliary in ("good", "bad"):
        for method in ("primary", "naive", "shaping", "barfi"):
            assert np.isfinite(summary[f"{auxiliary}/{method}/primary_fraction"])
    # The primary-only run is shared by both weights: primary-seed0 and {good,bad}-{naive,shaping,barfi}-seed0.
    names = sorted(path.stem for path in (tmp_path / args.name / "halfcheetah").glob("*.json"))
    expected = ["primary-seed0"] + [f"{w}-{m}-seed0" for w in ("good", "bad") for m in ("naive", "shaping", "barfi")]
    assert names == sorted(expected)
