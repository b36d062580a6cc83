"""Tests of the delivery gridworld, its tabular MDP, random MDPs and registration."""

from __future__ import annotations

import doctest

import gymnasium as gym
import jax
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import rewardlab_envs as envs
from rewardlab_envs import _delivery, _dynamics, _registration, _tabular

UP, DOWN, LEFT, RIGHT = range(4)
W = 10  # width of DEFAULT_BOARD


def idx(row: int, col: int) -> int:
    return row * W + col


def phi(**on: float) -> list[float]:
    vec = dict.fromkeys(envs.FEATURE_NAMES, 0.0)
    vec.update(on)
    return [vec[name] for name in envs.FEATURE_NAMES]


def value_iteration(mdp: envs.TabularMDP, tol: float = 1e-9) -> tuple[np.ndarray, np.ndarray]:
    """Slow numpy reference: Q(s,a) = Σ_s' T (r + γ V(s')), V = max_a Q."""
    transitions = mdp.transitions.astype(np.float64)
    reward = mdp.reward.astype(np.float64)
    values = np.zeros(mdp.num_states)
    for _ in range(100_000):
        q_values = (transitions * (reward + mdp.discount * values[None, None, :])).sum(-1)
        new_values = q_values.max(1)
        if np.abs(new_values - values).max() < tol:
            return new_values, q_values
        values = new_values
    raise AssertionError("value iteration did not converge")


# -- the default board, hand-computed transitions -----------------------------------------

HAND_CASES = [
    # (start cell, action, next cell, features)
    ((0, 0), UP, (0, 0), phi(gas=1)),  # off the grid: stay, road surface cost
    ((0, 3), RIGHT, (0, 4), phi(gas=1, roadblock=1)),  # onto a roadblock on road
    ((3, 0), DOWN, (4, 0), phi(gas=1, coin=1)),  # onto a coin on road: nets 0
    ((4, 4), RIGHT, (4, 5), phi(mud=1, coin=1)),  # onto a coin on mud
    ((3, 3), RIGHT, (3, 4), phi(mud=1)),  # road -> mud: mud replaces gas
    ((5, 4), LEFT, (5, 3), phi(gas=1)),  # mud -> road
    ((3, 4), UP, (3, 4), phi(mud=1)),  # into a house from mud: stay, mud surface
    ((4, 0), LEFT, (4, 0), phi(gas=1)),  # bump on a coin cell: no coin again
    ((0, 5), DOWN, (1, 5), phi(gas=1)),
    ((1, 7), RIGHT, (1, 8), phi(goal=1)),  # goal: +50 only, no gas
    ((1, 5), RIGHT, (1, 6), phi(sheep=1)),  # sheep: -50 only
    ((1, 8), DOWN, (1, 8), phi()),  # out of the goal: absorbing, zero
    ((1, 1), UP, (1, 1), phi()),  # house cells: absorbing, zero (unreachable)
]


@pytest.mark.parametrize(("cell", "action", "next_cell", "features"), HAND_CASES)
def test_default_board_hand_computed_transitions(cell, action, next_cell, features):
    mdp = envs.delivery_mdp()
    s, s_next = idx(*cell), idx(*next_cell)
    assert mdp.transitions[s, action, s_next] == 1.0
    np.testing.assert_array_equal(mdp.features[s, action, s_next], features)
    expected_reward = float(np.dot(features, [-1, 50, -50, 1, -1, -2]))
    assert mdp.reward[s, action, s_next] == expected_reward
    # all other successors carry neither probability nor features
    others = np.arange(mdp.num_states) != s_next
    assert not mdp.transitions[s, action, others].any() and not mdp.features[s, action, others].any()


def test_delivery_mdp_invariants():
    mdp = envs.delivery_mdp()
    envs.validate_tabular_mdp(mdp)
    assert mdp.transitions.dtype == np.float32 and mdp.features.shape == (100, 4, 100, 6)
    assert tuple(mdp.feature_names) == ("gas", "goal", "sheep", "coin", "roadblock", "mud")
    np.testing.assert_array_equal(mdp.true_weights, [-1, 50, -50, 1, -1, -2])
    board = "".join(envs.DEFAULT_BOARD)
    np.testing.assert_array_equal(mdp.terminal, [ch in "GS" for ch in board])
    starts = np.array([ch not in "GSH" for ch in board])
    np.testing.assert_allclose(mdp.initial_state_dist, starts / starts.sum(), rtol=1e-6)
    np.testing.assert_allclose(mdp.features @ mdp.true_weights, mdp.reward)


def test_fixed_start_and_custom_weights():
    weights = np.array([-2, 10, -5, 3, -4, -1], dtype=np.float32)
    mdp = envs.delivery_mdp(weights=weights, start=(9, 1), discount=0.9)
    assert mdp.initial_state_dist[idx(9, 1)] == 1.0 and mdp.initial_state_dist.sum() == 1.0
    assert mdp.discount == 0.9
    assert mdp.reward[idx(3, 0), DOWN, idx(4, 0)] == -2 + 3  # gas + coin under the new weights
    envs.validate_tabular_mdp(mdp)


def test_optimal_policy_reaches_goal_from_every_start():
    mdp = envs.delivery_mdp()
    values, q_values = value_iteration(mdp)
    policy = q_values.argmax(1)
    model = envs.delivery_model()
    goal = idx(1, 8)
    for start in np.flatnonzero(mdp.initial_state_dist):
        state = start
        for _ in range(100):
            if mdp.terminal[state]:
                break
            state = model.next_state[state, policy[state]]
        assert state == goal, f"optimal policy from cell {divmod(int(start), W)} ends in {divmod(int(state), W)}"
    # next to the goal: one step, +50
    assert values[idx(1, 9)] == pytest.approx(50.0)
    # two road steps then the goal: -1 + γ·50
    assert values[idx(0, 7)] == pytest.approx(-1 + 0.999 * 50.0)


def test_tabular_mdp_passes_through_jit():
    mdp = envs.delivery_mdp()
    assert jax.tree.leaves(mdp.feature_names) == []
    total = jax.jit(lambda m: (m.transitions * m.reward).sum() * m.discount)(mdp)
    assert float(total) == pytest.approx(float((mdp.transitions * mdp.reward).sum()) * 0.999, rel=1e-5)
    rebuilt = jax.tree.map(lambda x: x, mdp)
    assert rebuilt.feature_names == mdp.feature_names and isinstance(rebuilt.feature_names, envs.FeatureNames)


def test_validate_tabular_mdp_rejects_broken_mdps():
    mdp = envs.delivery_mdp()
    bad_rows = mdp.transitions.copy()
    bad_rows[0, 0, 0] += 0.5
    with pytest.raises(ValueError, match="transitions"):
        envs.validate_tabular_mdp(mdp._replace(transitions=bad_rows))
    leaky_terminal = mdp.reward.copy()
    leaky_terminal[idx(1, 8), 0, idx(1, 8)] = 1.0
    with pytest.raises(ValueError, match="reward"):
        envs.validate_tabular_mdp(mdp._replace(reward=leaky_terminal))
    with pytest.raises(ValueError, match="true_weights"):
        envs.validate_tabular_mdp(mdp._replace(true_weights=np.zeros(3, np.float32)))
    with pytest.raises(ValueError, match="discount"):
        envs.validate_tabular_mdp(mdp._replace(discount=1.5))
    with pytest.raises(ValueError, match="reward == features"):
        envs.validate_tabular_mdp(mdp._replace(true_weights=mdp.true_weights * 2))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"board": ["..", "."]}, "equal"),
        ({"board": [".X"]}, "unknown"),
        ({"board": ["GS"]}, "start"),
        ({"board": ".G"}, "single str"),
        ({"weights": [1.0, 2.0]}, "weights"),
        ({"start": (1, 1)}, "start"),  # a house
        ({"start": (1, 8)}, "start"),  # the goal
        ({"start": 100}, "start"),
        ({"discount": -0.1}, "discount"),
    ],
)
def test_delivery_mdp_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        envs.delivery_mdp(**kwargs)


# -- the gymnasium env --------------------------------------------------------------------


def test_env_agrees_with_tabular_mdp_on_random_rollouts():
    env = envs.DeliveryGridworld()
    mdp = env.tabular()
    rng = np.random.default_rng(0)
    obs, info = env.reset(seed=0)
    steps = 0
    while steps < 300:
        state, action = int(obs), int(rng.integers(4))
        obs, reward, terminated, truncated, info = env.step(action)
        assert mdp.transitions[state, action, int(obs)] == 1.0
        assert reward == pytest.approx(float(mdp.reward[state, action, int(obs)]))
        np.testing.assert_array_equal(info["reward_factors"], mdp.features[state, action, int(obs)])
        assert info["reward_factors"].dtype == np.float32 and info["state"] == int(obs)
        assert terminated == bool(mdp.terminal[int(obs)]) and not truncated
        steps += 1
        if terminated:
            obs, _ = env.reset()


def test_env_steps_from_terminal_state_are_absorbing():
    env = envs.DeliveryGridworld(start=(1, 9))
    env.reset(seed=0)
    obs, reward, terminated, _, _ = env.step(LEFT)
    assert (int(obs), reward, terminated) == (idx(1, 8), 50.0, True)
    for action in range(4):
        obs, reward, terminated, _, info = env.step(action)
        assert (int(obs), reward, terminated) == (idx(1, 8), 0.0, True)
        assert not info["reward_factors"].any()


@pytest.mark.parametrize("obs_mode", envs.DeliveryGridworld.OBS_MODES)
def test_obs_modes_encode_the_cell(obs_mode):
    env = envs.DeliveryGridworld(obs_mode=obs_mode)
    obs, info = env.reset(seed=3)
    for _ in range(20):
        assert env.observation_space.contains(obs)
        row, col = divmod(info["state"], W)
        if obs_mode == "index":
            assert int(obs) == info["state"]
        elif obs_mode == "onehot":
            assert obs.shape == (100,) and obs.sum() == 1.0 and int(obs.argmax()) == info["state"]
        else:
            np.testing.assert_array_equal(obs, [row, col])
        obs, _, terminated, _, info = env.step(env.action_space.sample())
        if terminated:
            obs, info = env.reset()


@pytest.mark.parametrize("obs_mode", envs.DeliveryGridworld.OBS_MODES)
def test_env_passes_gymnasium_env_checker(obs_mode):
    check_env(envs.DeliveryGridworld(obs_mode=obs_mode), skip_render_check=True)


def test_reset_start_option_and_uniform_starts():
    env = envs.DeliveryGridworld()
    _, info = env.reset(seed=0, options={"start": (9, 1)})
    assert info["state"] == idx(9, 1)
    starts = {env.reset(seed=seed)[1]["state"] for seed in range(200)}
    board = "".join(envs.DEFAULT_BOARD)
    assert all(board[s] not in "GSH" for s in starts) and len(starts) > 40


def test_env_argument_errors():
    with pytest.raises(ValueError, match="obs_mode"):
        envs.DeliveryGridworld(obs_mode="pixels")
    with pytest.raises(ValueError, match="render_mode"):
        envs.DeliveryGridworld(render_mode="human")
    env = envs.DeliveryGridworld()
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(4)


def test_render_modes():
    env = envs.DeliveryGridworld(start=(9, 1), render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    px = envs.DeliveryGridworld.CELL_PIXELS
    assert frame.shape == (10 * px, 10 * px, 3) and frame.dtype == np.uint8
    np.testing.assert_array_equal(frame[9 * px + px // 2, 1 * px + px // 2], _delivery._COLORS["agent"])
    np.testing.assert_array_equal(frame[1 * px + 2, 8 * px + 2], _delivery._COLORS["goal"])
    text = envs.DeliveryGridworld(start=(0, 0), render_mode="ansi")
    text.reset(seed=0)
    assert text.render().splitlines()[0] == "@...r....."


def test_registered_env_and_time_limit():
    _registration.register_envs()  # idempotent
    _registration.register_envs()
    env = gym.make("rewardlab/Delivery-v0", start=(0, 0))
    env.reset(seed=0)
    for t in range(1, 101):
        _, reward, terminated, truncated, _ = env.step(UP)  # bump forever
        assert reward == -1.0 and not terminated
        assert truncated == (t == 100)
    short = gym.make("rewardlab/Delivery-v0", max_episode_steps=7, obs_mode="onehot")
    assert short.spec.max_episode_steps == 7 and short.observation_space.shape == (100,)


def test_fixed_horizon_delivery_episode_has_exact_length():
    env = envs.make("rewardlab/Delivery-v0", fixed_horizon=12, start=(1, 9))
    env.reset(seed=0)
    rewards = []
    for t in range(1, 13):
        _, reward, terminated, truncated, info = env.step(LEFT)
        rewards.append(reward)
        assert not terminated and truncated == (t == 12) and info["env_terminated"]
    assert rewards == [50.0] + [0.0] * 11


# -- random MDPs ---------------------------------------------------------------------------


def test_random_delivery_task_is_seeded_and_follows_the_generator():
    task = envs.random_delivery_task(7)
    again = envs.random_delivery_task(7)
    assert task.board == again.board and np.array_equal(task.weights, again.weights)
    boards = {envs.random_delivery_task(seed).board for seed in range(10)}
    assert len(boards) == 10
    for seed in range(30):
        task = envs.random_delivery_task(seed, size=(6, 5))
        cells = "".join(task.board)
        assert len(task.board) == 6 and len(task.board[0]) == 5 and cells.count("G") == 1 and "H" not in cells
        assert cells.count("S") in {int(p * 30) for p in (0.0, 0.1, 0.3)}
        assert cells.count("c") + cells.count("C") in {int(p * 30) for p in (0.0, 0.1, 0.2)}
        for name, weight in zip(envs.FEATURE_NAMES, task.weights, strict=True):
            assert weight in envs.DEFAULT_WEIGHT_CHOICES[name]
    values = {float(w) for seed in range(200) for w in envs.random_delivery_task(seed, size=4).weights}
    assert values == {50.0, -50.0, 1.0, -1.0, -2.0, 0.0, -10.0, 10.0, 5.0}


def test_random_delivery_mdp_is_valid_and_matches_its_env():
    mdp = envs.random_delivery_mdp(11, size=(7, 9), discount=0.95)
    envs.validate_tabular_mdp(mdp)
    assert mdp.transitions.shape == (63, 4, 63) and mdp.discount == 0.95
    task = envs.random_delivery_task(11, size=(7, 9))
    env_mdp = envs.DeliveryGridworld(task.board, task.weights, discount=0.95).tabular()
    for field in ("transitions", "reward", "features", "initial_state_dist", "terminal", "true_weights"):
        np.testing.assert_array_equal(getattr(mdp, field), getattr(env_mdp, field))


def test_random_delivery_argument_errors():
    with pytest.raises(ValueError, match="size"):
        envs.random_delivery_task(0, size=(1, 1))
    with pytest.raises(ValueError, match="weight_choices"):
        envs.random_delivery_task(0, weight_choices={"fuel": (1.0,)})
    with pytest.raises(ValueError, match="weight_choices"):
        envs.random_delivery_task(0, weight_choices={"goal": ()})
    custom = envs.random_delivery_task(0, weight_choices={"goal": (7.0,)})
    assert custom.weights[1] == 7.0


def test_random_mdp_structure():
    mdp = envs.random_mdp(50, 3, seed=1, branching=4, num_terminal=5, discount=0.9)
    envs.validate_tabular_mdp(mdp)
    live = ~mdp.terminal
    assert mdp.terminal.sum() == 5 and mdp.terminal[-5:].all()
    np.testing.assert_array_equal((mdp.transitions[live] > 0).sum(-1), 4)
    assert mdp.features is None and mdp.true_weights is None and mdp.feature_names == ()
    np.testing.assert_allclose(mdp.initial_state_dist[live], 1 / 45, rtol=1e-6)
    same = envs.random_mdp(50, 3, seed=1, branching=4, num_terminal=5, discount=0.9)
    other = envs.random_mdp(50, 3, seed=2, branching=4, num_terminal=5, discount=0.9)
    assert np.array_equal(mdp.transitions, same.transitions) and np.array_equal(mdp.reward, same.reward)
    assert not np.array_equal(mdp.transitions, other.transitions)


def test_random_mdp_linear_features_and_scale():
    mdp = envs.random_mdp(30, 2, seed=0, branching=30, num_features=3)
    envs.validate_tabular_mdp(mdp)
    assert mdp.features.shape == (30, 2, 30, 3) and mdp.feature_names == ("feature_0", "feature_1", "feature_2")
    np.testing.assert_allclose(mdp.features @ mdp.true_weights, mdp.reward, atol=1e-6)
    assert (mdp.transitions > 0).all()  # full branching
    big = envs.random_mdp(1000, 4, seed=0, branching=3, reward_scale=2.0)
    envs.validate_tabular_mdp(big)
    assert 1.9 < big.reward.std() < 2.1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_states": 0}, "num_states"),
        ({"num_actions": 1.5}, "num_actions"),
        ({"branching": 11}, "branching"),
        ({"num_features": 0}, "num_features"),
        ({"num_terminal": 10}, "num_terminal"),
        ({"reward_scale": 0.0}, "reward_scale"),
        ({"discount": 1.1}, "discount"),
    ],
)
def test_random_mdp_argument_errors(kwargs, match):
    arguments = {"num_states": 10, "num_actions": 2, "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=match):
        envs.random_mdp(**arguments)


@pytest.mark.parametrize("module", [_tabular, _delivery, _registration, _dynamics])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_changed_dynamics_scales_pendulum_and_mujoco_masses():
    def next_obs(env):
        env.reset(seed=3)
        return env.step(np.full(env.action_space.shape, 0.5, dtype=np.float32))[0]

    plain, heavy = envs.make("Pendulum-v1"), envs.ChangedDynamics(envs.make("Pendulum-v1"), 2.0)
    assert heavy.unwrapped.m == 2.0 and heavy.original_masses.tolist() == [1.0]
    assert not np.allclose(next_obs(plain), next_obs(heavy))  # the same torque turns the heavier pole less
    assert envs.ChangedDynamics(envs.make("Pendulum-v1"), 1.0).unwrapped.m == 1.0

    cheetah = envs.ChangedDynamics(envs.make("HalfCheetah-v5"), 1.5, bodies=("bthigh", "fthigh"))
    model = cheetah.unwrapped.model
    changed = np.flatnonzero(~np.isclose(model.body_mass, cheetah.original_masses))
    assert [model.body(i).name for i in changed] == ["bthigh", "fthigh"]
    np.testing.assert_allclose(model.body_mass[changed], 1.5 * cheetah.original_masses[changed])
    everything = envs.ChangedDynamics(envs.make("HalfCheetah-v5"), 0.5).unwrapped.model
    np.testing.assert_allclose(everything.body_mass[1:], 0.5 * cheetah.original_masses[1:])
    assert not np.allclose(next_obs(envs.make("HalfCheetah-v5")), next_obs(cheetah))

    with pytest.raises(ValueError, match="mass_scale"):
        envs.ChangedDynamics(envs.make("Pendulum-v1"), 0.0)
    with pytest.raises(ValueError, match="bodies: unknown body 'tail'"):
        envs.ChangedDynamics(envs.make("HalfCheetah-v5"), 2.0, bodies=("tail",))
    with pytest.raises(ValueError, match="bodies"):
        envs.ChangedDynamics(envs.make("Pendulum-v1"), 2.0, bodies=("pole",))
    with pytest.raises(ValueError, match="env: expected Pendulum-v1 or a MuJoCo env"):
        envs.ChangedDynamics(gym.make("CartPole-v1"), 2.0)
