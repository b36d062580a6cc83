"""Experts, demonstrations and the AIRL/GAIL training shell on fixed-horizon gymnasium tasks.

The expert is an SB3 agent (PPO or SAC, tuned settings from :func:`rewardlab.rl.make_agent`)
trained on the true reward; nothing is downloaded. Its demonstrations are ``Transitions``
saved with :func:`save_demonstrations`. :func:`train_adversarial` runs AIRL or GAIL with an SB3
generator and returns the discriminator, the agent and the round figures.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecEnv

from rewardlab._types import Transitions
from rewardlab.irl._adversarial import AdversarialCallback, AdversarialConfig, make_discriminator
from rewardlab.rewards import RewardModel, RewardParams
from rewardlab.rl import default_num_envs, make_agent
from rewardlab.wrappers import RewardVecEnvWrapper

DEFAULT_HORIZONS = {"Pendulum-v1": 200, "HalfCheetah-v5": 1000}


def make_task_env(env_id: str, num_envs: int = 1, seed: int = 0, fixed_horizon: int | None = None) -> VecEnv:
    """An SB3 VecEnv of ``rewardlab_envs.make(env_id, fixed_horizon=...)`` (default horizon per env, see ``DEFAULT_HORIZONS``)."""
    import rewardlab_envs

    horizon = DEFAULT_HORIZONS.get(env_id) if fixed_horizon is None else fixed_horizon
    if not isinstance(num_envs, int) or num_envs < 1:
        raise ValueError(f"num_envs: expected an integer >= 1, got {num_envs!r}")
    return make_vec_env(lambda: rewardlab_envs.make(env_id, fixed_horizon=horizon), n_envs=num_envs, seed=seed)


def train_expert(env_id: str, algo: str = "sac", total_timesteps: int = 20_000, seed: int = 0, fixed_horizon: int | None = None, **overrides: Any) -> Any:
    """An SB3 ``algo`` agent trained on the true reward of the fixed-horizon task ``env_id``."""
    if not isinstance(total_timesteps, int) or total_timesteps < 1:
        raise ValueError(f"total_timesteps: expected an integer >= 1, got {total_timesteps!r}")
    venv = make_task_env(env_id, default_num_envs(algo, env_id), seed, fixed_horizon)
    agent = make_agent(algo, venv, env_id, seed=seed, **overrides)
    agent.learn(total_timesteps)
    return agent


def rollout(agent: Any, env_id: str, num_episodes: int, seed: int = 0, fixed_horizon: int | None = None, deterministic: bool = True) -> tuple[Transitions, np.ndarray]:
    """``num_episodes`` episodes of ``agent`` (None: uniform random actions) as ``Transitions`` and the true returns ``[num_episodes]``."""
    if not isinstance(num_episodes, int) or num_episodes < 1:
        raise ValueError(f"num_episodes: expected an integer >= 1, got {num_episodes!r}")
    venv = make_task_env(env_id, 1, seed, fixed_horizon)
    venv.action_space.seed(seed)
    obs = venv.reset()
    columns: dict[str, list] = {"obs": [], "acts": [], "next_obs": [], "dones": [], "rews": []}
    returns, episode_return = [], 0.0
    while len(returns) < num_episodes:
        if agent is None:
            action = np.array([venv.action_space.sample()])
        else:
            action, _ = agent.predict(obs, deterministic=deterministic)
        next_obs, reward, done, infos = venv.step(action)
        true_next = infos[0]["terminal_observation"][None] if done[0] else next_obs
        for name, value in (("obs", obs), ("acts", action), ("next_obs", true_next), ("dones", done), ("rews", reward)):
            columns[name].append(np.asarray(value)[0])
        episode_return += float(reward[0])
        if done[0]:
            returns.append(episode_return)
            episode_return = 0.0
        obs = next_obs
    venv.close()
    transitions = Transitions(
        np.stack(columns["obs"]).astype(np.float32),
        np.stack(columns["acts"]),
        np.stack(columns["next_obs"]).astype(np.float32),
        np.asarray(columns["dones"], bool),
        np.asarray(columns["rews"], np.float32),
    )
    return transitions, np.asarray(returns, np.float64)


def evaluate_return(agent: Any, env_id: str, num_episodes: int = 10, seed: int = 10_000, fixed_horizon: int | None = None) -> float:
    """Mean true return of ``agent`` (deterministic actions; None = uniform random) over ``num_episodes``."""
    return float(rollout(agent, env_id, num_episodes, seed, fixed_horizon)[1].mean())


class AdversarialResult(NamedTuple):
    """What :func:`train_adversarial` returns."""

    agent: Any  # the SB3 generator
    model: RewardModel  # the discriminator's reward model (AIRL: shaped; ``base_reward`` is g)
    params: RewardParams  # its final parameters
    history: list[dict[str, float]]  # one record per discriminator round


def train_adversarial(
    env_id: str,
    expert: Transitions,
    *,
    algo: str = "sac",
    total_timesteps: int = 20_000,
    config: AdversarialConfig = AdversarialConfig(),
    seed: int = 0,
    fixed_horizon: int | None = None,
    num_envs: int | None = None,
    progress_bar: bool = False,
    **overrides: Any,
) -> AdversarialResult:
    """Run AIRL or GAIL (``config.method``) on ``env_id`` from ``expert`` transitions with an SB3 generator.

    The generator's discount is ``config.discount`` (the potential term's γ), unless overridden.

    Raises:
        ValueError: bad arguments, or expert transitions that do not fit the env's spaces.
    """
    if not isinstance(total_timesteps, int) or total_timesteps < 1:
        raise ValueError(f"total_timesteps: expected an integer >= 1, got {total_timesteps!r}")
    num_envs = default_num_envs(algo, env_id) if num_envs is None else num_envs
    venv = RewardVecEnvWrapper(make_task_env(env_id, num_envs, seed, fixed_horizon))
    model = make_discriminator(venv.observation_space, venv.action_space, config)
    obs_shape, act_shape = venv.observation_space.shape, venv.action_space.shape
    if np.shape(expert.obs)[1:] != obs_shape or np.shape(expert.next_obs)[1:] != obs_shape:
        raise ValueError(f"expert: expected observations [N, {', '.join(map(str, obs_shape))}], got {np.shape(expert.obs)}")
    if act_shape and np.shape(expert.acts)[1:] != act_shape:
        raise ValueError(f"expert: expected actions [N, {', '.join(map(str, act_shape))}], got {np.shape(expert.acts)}")
    params = model.init(seed)
    overrides.setdefault("gamma", config.discount)
    agent = make_agent(algo, venv, env_id, seed=seed, **overrides)
    callback = AdversarialCallback(venv, model, params, expert, config, seed=seed)
    agent.learn(total_timesteps, callback=callback, progress_bar=progress_bar)
    return AdversarialResult(agent, model, callback.params, callback.history)
