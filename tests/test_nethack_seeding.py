"""rewardlab_envs' NLE/MiniHack envs: ``reset(seed=)`` seeds NetHack's own RNGs, so runs follow from their seed."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from rewardlab_envs import game_seeds, make_nethack

pytest.importorskip("minihack")


def _rollout(env: gym.Env, seed: int | None, actions: np.ndarray) -> list[tuple[Any, ...]]:
    """Observations, messages and rewards of ``actions`` from ``reset(seed=seed)``; ends with the episode."""
    obs, info = env.reset(seed=seed)
    record: list[tuple[Any, ...]] = [(*(obs[key].tobytes() for key in sorted(obs)), info["message"])]
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(int(action))
        record.append((*(obs[key].tobytes() for key in sorted(obs)), info["message"], float(reward)))
        if terminated or truncated:
            break
    return record


@pytest.mark.parametrize("env_id", ["MiniHack-Room-5x5-v0", "NetHackScore-v0"])
def test_same_seed_same_episodes_other_seed_other_episodes(env_id: str) -> None:
    first, second = make_nethack(env_id), make_nethack(env_id)
    actions = np.random.default_rng(0).integers(first.action_space.n, size=50)
    episode = _rollout(first, 3, actions)
    assert len(episode) > 10
    assert _rollout(second, 3, actions) == episode
    # Later unseeded resets continue from the seed: the same next episode in both envs, not the first again.
    following = _rollout(first, None, actions)
    assert _rollout(second, None, actions) == following
    assert following != episode
    assert first.unwrapped.get_seeds()[2] is False  # NetHack's own reseeding stays off
    assert _rollout(second, 4, actions) != episode
    first.close()
    second.close()


def test_game_seeds_are_derived_from_the_seed() -> None:
    core, disp, lgen = game_seeds(0)
    assert game_seeds(0) == (core, disp, lgen) and len({core, disp, lgen}) == 3
    assert all(0 <= s < 2**63 for s in (core, disp, lgen))
    assert game_seeds(1) != game_seeds(0)
    env = make_nethack("MiniHack-Room-5x5-v0")
    env.reset(seed=0)
    assert env.unwrapped.get_seeds() == (core, disp, False, lgen)
    env.close()


def test_unseeded_resets_keep_nle_random_seeding() -> None:
    env = make_nethack("MiniHack-Room-5x5-v0")
    env.reset()
    seeds = env.unwrapped.get_seeds()
    env.reset()
    assert env.unwrapped.get_seeds() != seeds
    env.close()


def test_challenge_env_refuses_game_seeds_with_a_warning() -> None:
    env = make_nethack("NetHackChallenge-v0")
    assert not env.seeds_game
    with pytest.warns(UserWarning, match="refuses game seeds"):
        env.reset(seed=0)
    env.close()


def test_seeded_vector_envs_repeat() -> None:
    from rewardlab.rl import make_task_env

    runs = []
    for _ in range(2):
        venv = make_task_env("rewardlab/MiniHack-Room-5x5-v0", num_envs=2, seed=5)
        venv.action_space.seed(0)
        frames = [venv.reset()]
        for _ in range(20):
            frames.append(venv.step(np.array([venv.action_space.sample() for _ in range(2)]))[0])
        runs.append(frames)
        venv.close()
    for one, other in zip(*runs, strict=True):
        assert all(np.array_equal(one[key], other[key]) for key in one)
    assert not np.array_equal(runs[0][0]["blstats"][0], runs[0][0]["blstats"][1])  # env i starts from seed 5 + i
