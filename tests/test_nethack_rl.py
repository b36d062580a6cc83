"""SB3 on NetHack-like envs: the glyph/stats features extractor and PPO on MiniHack."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

import rewardlab_envs  # registers rewardlab/MiniHack-…
from rewardlab.rl import NetHackExtractor

pytest.importorskip("minihack")


def _ppo(n_steps: int) -> PPO:
    torch.set_num_threads(1)
    venv = DummyVecEnv([lambda: Monitor(gym.make("rewardlab/MiniHack-Room-5x5-v0")) for _ in range(2)])
    return PPO(
        "MultiInputPolicy",
        venv,
        n_steps=n_steps,
        batch_size=64,
        n_epochs=1,
        policy_kwargs=dict(features_extractor_class=NetHackExtractor, features_extractor_kwargs=dict(features_dim=64)),
        seed=0,
        device="cpu",
    )


def test_extractor_reads_glyph_ids_and_rejects_other_spaces() -> None:
    env = gym.make("rewardlab/MiniHack-Room-5x5-v0")
    extractor = NetHackExtractor(env.observation_space, features_dim=16)
    assert extractor.num_glyphs == rewardlab_envs.MAX_GLYPH + 1
    obs, _ = env.reset(seed=0)
    batch = {key: torch.as_tensor(np.asarray(value, np.float32))[None] for key, value in obs.items()}
    features = extractor(batch)
    assert features.shape == (1, 16) and torch.isfinite(features).all()
    other = dict(batch)
    other["glyphs"] = torch.zeros_like(batch["glyphs"])  # a different map gives different features
    assert not torch.allclose(extractor(other), features)
    with pytest.raises(ValueError, match="observation_space"):
        NetHackExtractor(gym.spaces.Box(0, 1, (3,)))
    with pytest.raises(ValueError, match="features_dim"):
        NetHackExtractor(env.observation_space, features_dim=0)


def test_ppo_updates_the_extractor_on_room() -> None:
    model = _ppo(n_steps=128)
    before = model.policy.features_extractor.embedding.weight.detach().clone()
    model.learn(256)
    assert model.num_timesteps == 256
    assert not torch.equal(before, model.policy.features_extractor.embedding.weight)


@pytest.mark.slow
def test_ppo_runs_a_few_thousand_steps_on_room() -> None:
    model = _ppo(n_steps=256)
    model.learn(4096)
    assert model.num_timesteps == 4096
    assert len(model.ep_info_buffer) > 0  # Room-5x5 episodes end (goal or time limit) within the budget
