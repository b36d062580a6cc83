"""Exploration bonuses: hand-computed counts, E3B's quadratic form against a direct inverse, episode resets, wrappers."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from rewardlab.intrinsic import (
    E3BBonus,
    EpisodicCountBonus,
    GlobalCountBonus,
    ProductBonus,
    RNDBonus,
    sherman_morrison_update,
)
from rewardlab.wrappers import RewardWrapper

F, T = False, True


def test_global_counts_span_episodes_and_envs() -> None:
    bonus = GlobalCountBonus()
    s = np.array([[0], [1]])
    np.testing.assert_allclose(bonus(s, None, s, np.array([F, F])), [1.0, 1.0])
    np.testing.assert_allclose(bonus(s, None, np.array([[1], [1]]), np.array([T, F])), [2**-0.5, 3**-0.5])
    np.testing.assert_allclose(bonus(s, None, s, np.array([F, F])), [2**-0.5, 4**-0.5])  # no reset on dones


def test_episodic_counts_per_env_and_reset_on_episode_end() -> None:
    bonus = EpisodicCountBonus()
    s = np.array([[0], [0]])
    np.testing.assert_allclose(bonus(s, None, s, np.array([F, F])), [1.0, 1.0])  # env 1 does not see env 0's visit
    np.testing.assert_allclose(bonus(s, None, s, np.array([T, F])), [2**-0.5, 2**-0.5])
    np.testing.assert_allclose(bonus(s, None, s, np.array([F, F])), [1.0, 3**-0.5])  # env 0 starts afresh
    with pytest.raises(ValueError, match="N=2"):
        bonus(s[:1], None, s[:1], np.array([F]))


def test_dict_observation_keys_select_the_state() -> None:
    bonus = GlobalCountBonus(obs_keys=("pos",))
    obs = {"pos": np.array([[3, 4]]), "message": np.array([[1]])}
    other = {"pos": np.array([[3, 4]]), "message": np.array([[2]])}
    bonus(obs, None, obs, np.array([F]))
    assert bonus(obs, None, other, np.array([F]))[0] == pytest.approx(2**-0.5)  # the message is not part of the state
    with pytest.raises(ValueError, match="obs_keys"):
        GlobalCountBonus(obs_keys=("glyphs",))(obs, None, obs, np.array([F]))


def test_product_of_global_and_episodic() -> None:
    bonus = ProductBonus(GlobalCountBonus(), EpisodicCountBonus())
    s = np.array([[0]])
    values = [float(bonus(s, None, s, np.array([d]))[0]) for d in (F, T, F)]
    np.testing.assert_allclose(values, [1.0, 2**-0.5 * 2**-0.5, 3**-0.5 * 1.0], rtol=1e-6)
    with pytest.raises(ValueError, match="global_bonus"):
        ProductBonus(EpisodicCountBonus(), EpisodicCountBonus())


def test_e3b_quadratic_form_matches_a_direct_inverse_and_resets() -> None:
    rng = np.random.default_rng(0)
    ridge = 0.5
    bonus = E3BBonus(embedding=lambda x: x, ridge=ridge)
    states = rng.normal(size=(6, 2, 3))
    dones = np.zeros((6, 2), bool)
    dones[2, 0] = True  # env 0's episode ends at step 2
    seen: list[list[np.ndarray]] = [[], []]
    for t in range(6):
        got = bonus(states[t], None, states[t], dones[t])
        for i in range(2):
            c = ridge * np.eye(3) + sum((np.outer(p, p) for p in seen[i]), np.zeros((3, 3)))
            want = states[t, i] @ np.linalg.inv(c) @ states[t, i]
            assert got[i] == pytest.approx(want, rel=1e-5)
            seen[i] = [] if dones[t, i] else [*seen[i], states[t, i]]
    assert bonus(states[0], None, states[0], np.array([F, F]))[0] < states[0, 0] @ states[0, 0] / ridge  # C grew again


def test_sherman_morrison_matches_inverse() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(size=(4, 4))
    c = a @ a.T + np.eye(4)
    phi = rng.normal(size=4)
    np.testing.assert_allclose(sherman_morrison_update(np.linalg.inv(c), phi), np.linalg.inv(c + np.outer(phi, phi)))


def test_e3b_inverse_dynamics_trains_and_needs_actions() -> None:
    bonus = E3BBonus(num_actions=3, update_every=2, num_updates=2, embedding_dim=4, hidden_dim=8)
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(2, 5)).astype(np.float32)
    for _ in range(4):
        next_obs = rng.normal(size=(2, 5)).astype(np.float32)
        out = bonus(obs, np.array([0, 2]), next_obs, np.array([F, F]))
        assert out.shape == (2,) and np.isfinite(out).all() and (out > 0).all()
        obs = next_obs
    assert np.isfinite(float(bonus.last_loss))
    with pytest.raises(ValueError, match="num_actions"):
        E3BBonus()


def test_rnd_bonus_shrinks_on_a_state_seen_often() -> None:
    bonus = RNDBonus(update_every=1, num_updates=20, learning_rate=1e-2, seed=0)
    rng = np.random.default_rng(0)
    states = rng.normal(size=(16, 4)).astype(np.float32)
    first = bonus(states, None, states, np.zeros(16, bool))
    for _ in range(10):
        later = bonus(states, None, states, np.zeros(16, bool))
    assert later.mean() < 0.5 * first.mean()


def test_bonuses_compose_through_reward_wrappers() -> None:
    env = gym.make("CartPole-v1")
    env = RewardWrapper(env, EpisodicCountBonus(), mode="add", weight=0.5, name="episodic_count")
    env = RewardWrapper(env, GlobalCountBonus(), mode="add", weight=0.25, name="global_count")
    env.reset(seed=0)
    _, reward, _, _, info = env.step(0)
    assert info["reward_components"] == {"env": 1.0, "episodic_count": 1.0, "global_count": 1.0}
    assert reward == pytest.approx(1.0 + 0.5 + 0.25)  # r = r_ext + c₁·b₁ + c₂·b₂
