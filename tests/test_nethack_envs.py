"""rewardlab_envs' NLE/MiniHack envs: the compact observation, the message in info, tty rendering."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import rewardlab_envs
from rewardlab_envs import crop_glyphs, decode_message, make_nethack, tty_text

pytest.importorskip("minihack")


def test_crop_is_centred_on_the_agent_and_padded() -> None:
    glyphs = np.arange(21 * 79, dtype=np.int16).reshape(21, 79)
    crop = crop_glyphs(glyphs, x=78, y=20, crop_size=5)
    assert crop[2, 2] == glyphs[20, 78]
    assert crop[1, 1] == glyphs[19, 77]
    assert (crop[3:, :] == rewardlab_envs.MAX_GLYPH).all()
    assert (crop[:, 3:] == 5976).all()
    with pytest.raises(ValueError, match="crop_size"):
        crop_glyphs(glyphs, 0, 0, 4)


def test_room_observation_info_message_and_rendering() -> None:
    env = gym.make("rewardlab/MiniHack-Room-5x5-v0", render_mode="rgb_array")
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert set(obs) == {"glyphs", "glyphs_crop", "blstats", "message"}
    assert info["message"] == decode_message(obs["message"])
    assert info["message"].startswith("Hello Agent")
    x, y = int(obs["blstats"][0]), int(obs["blstats"][1])
    assert obs["glyphs_crop"][4, 4] == obs["glyphs"][y, x]  # the agent sits at the centre of the crop
    frame = env.render()
    assert frame.shape == (24 * 14, 80 * 8, 3) and frame.dtype == np.uint8 and frame.max() > 0
    obs, _, _, _, info = env.step(0)
    assert isinstance(info["message"], str)


def test_ansi_render_shows_the_agent_and_bad_arguments_are_named() -> None:
    env = make_nethack("MiniHack-Corridor-R2-v0", render_mode="ansi")
    env.reset(seed=1)
    assert "@" in env.render()
    assert tty_text(np.array([[64, 32, 32]], np.uint8)) == "@"
    with pytest.raises(ValueError, match="env_id"):
        make_nethack("CartPole-v1")
    with pytest.raises(ValueError, match="crop_size"):
        make_nethack("MiniHack-Room-5x5-v0", crop_size=4)
    with pytest.raises(ValueError, match="render_mode"):
        make_nethack("MiniHack-Room-5x5-v0", render_mode="human")
