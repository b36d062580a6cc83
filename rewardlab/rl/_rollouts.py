"""Rollouts, evaluation and task environments: the one place a policy meets an environment outside training.

Every study measures a policy the same way: :func:`rollout` runs whole episodes of an SB3
agent (anything with SB3's ``predict``) or of :class:`RandomPolicy` in one gymnasium env and
keeps the transitions, the episode of each and the true return of each episode,

    R_e = Σ_t r_t  (summed in float64 in step order, from the env's own rewards),

:func:`reward_returns` scores the same episodes under any ``RewardFn`` (R̂_e = Σ_t r̂_t), and
:func:`evaluate_policy` reduces both to means. Two seeding schemes exist because the studies'
figures were measured with them:

* ``seed_every_episode=False``: the env is reset with ``seed`` once; later episodes continue
  its random stream (what an SB3 ``VecEnv`` made with ``seed`` does, e.g. SB3's own
  ``evaluate_policy``);
* ``seed_every_episode=True``: episode e starts from ``reset(seed=seed + e)``, so each episode
  is the same whatever ran before it (evaluations at several checkpoints compare like with like).

Training envs come from :func:`make_task_env` (an SB3 ``VecEnv``), evaluation envs from
:func:`make_env`; both build ``rewardlab_envs.make`` with the library's wrappers (reward
factors, fixed horizon) when asked and plain ``gym.make`` dynamics otherwise.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecEnv

from rewardlab._types import RewardFn, Trajectory, Transitions

DEFAULT_HORIZONS: dict[str, int] = {"Pendulum-v1": 200, "HalfCheetah-v5": 1000}
"""Fixed episode lengths of the tasks the IRL studies use (AIRL needs fixed-horizon episodes)."""


def make_env(env_id: str, *, fixed_horizon: int | None = None, factors: bool = False) -> gym.Env:
    """One gymnasium env: ``rewardlab_envs.make(env_id, factors=factors, fixed_horizon=fixed_horizon)``.

    With the defaults this is ``gym.make(env_id)`` (rewardlab's own envs registered).

    Args:
        env_id: a registered gymnasium id.
        fixed_horizon: T ≥ 1 for episodes of exactly T steps, or None for the env's own ends
            (see :data:`DEFAULT_HORIZONS` for the IRL tasks' T).
        factors: report ``info["reward_factors"]`` (HERON teachers read them).

    Example:
        >>> env = make_env("Pendulum-v1", fixed_horizon=5)
        >>> rollout(None, env, 2).returns.shape
        (2,)
    """
    import rewardlab_envs

    return rewardlab_envs.make(env_id, factors=factors, fixed_horizon=fixed_horizon)


def make_task_env(
    env_id: str,
    num_envs: int = 1,
    seed: int = 0,
    *,
    fixed_horizon: int | None = None,
    factors: bool = False,
    wrapper_class: Callable[..., gym.Env] | None = None,
    wrapper_kwargs: Mapping[str, Any] | None = None,
) -> VecEnv:
    """An SB3 ``VecEnv`` of ``num_envs`` :func:`make_env` envs, each with a ``Monitor`` (true episode returns).

    Args:
        env_id: a registered gymnasium id.
        num_envs: parallel envs (``rewardlab.rl.default_num_envs`` gives the tuned count).
        seed: env i is reset with ``seed + i`` first; action spaces are seeded the same way.
        fixed_horizon: see :func:`make_env`.
        factors: see :func:`make_env`.
        wrapper_class: a ``gym.Wrapper`` put around each env above its ``Monitor`` (SB3's
            ``make_vec_env`` argument), e.g. a reward of the env's factors; the ``Monitor``
            below it still records the env's own return.
        wrapper_kwargs: keyword arguments of ``wrapper_class``.

    Raises:
        ValueError: ``num_envs`` is not an integer ≥ 1.

    Example:
        >>> venv = make_task_env("Pendulum-v1", num_envs=2, seed=0)
        >>> venv.num_envs, venv.reset().shape
        (2, (2, 3))
    """
    if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
        raise ValueError(f"num_envs: expected an integer >= 1, got {num_envs!r}")
    return make_vec_env(
        lambda: make_env(env_id, fixed_horizon=fixed_horizon, factors=factors),
        n_envs=num_envs,
        seed=seed,
        wrapper_class=wrapper_class,
        wrapper_kwargs=None if wrapper_kwargs is None else dict(wrapper_kwargs),
    )


@runtime_checkable
class Policy(Protocol):
    """What :func:`rollout` acts with: SB3's ``predict`` (every SB3 algorithm, :class:`RandomPolicy`)."""

    def predict(
        self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = False
    ) -> tuple[Any, Any]:
        """The action for one (unbatched) observation, and the recurrent state (None)."""


class RandomPolicy:
    """Uniform random actions from a copy of ``action_space`` seeded with ``seed``.

    The copy keeps the env's own action space (and its random stream) untouched.

    Example:
        >>> space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        >>> first, second = RandomPolicy(space, seed=3), RandomPolicy(space, seed=3)
        >>> bool(np.all(first.predict(None)[0] == second.predict(None)[0]))
        True
    """

    def __init__(self, action_space: gym.Space, seed: int | None = 0) -> None:
        self.action_space = copy.deepcopy(action_space)
        self.action_space.seed(seed)

    def predict(
        self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = False
    ) -> tuple[Any, None]:
        return self.action_space.sample(), None


class Rollout(NamedTuple):
    """E whole episodes of one policy, T transitions in all, in the order they happened."""

    transitions: Transitions  # [T] s, a, s' (the terminal observation at episode ends), done, true r (float32)
    episode: np.ndarray  # [T] int64 index 0..E-1 of each transition's episode
    returns: np.ndarray  # [E] float64 true return of each episode, summed in step order from the env's rewards
    terminated: np.ndarray  # [E] bool: the episode ended in a terminal state (False: a time limit)

    def trajectories(self) -> list[Trajectory]:
        """Each episode as a :class:`rewardlab.Trajectory` (``obs`` s_0 .. s_T)."""
        out = []
        for index in range(len(self.returns)):
            rows = np.flatnonzero(self.episode == index)
            obs = np.concatenate([self.transitions.obs[rows], self.transitions.next_obs[rows[-1:]]])
            out.append(
                Trajectory(obs, self.transitions.acts[rows], self.transitions.rews[rows], bool(self.terminated[index]))
            )
        return out


def _stack(values: list[Any]) -> np.ndarray:
    """Stack per-step values; floating point arrays as float32 (the library's observation dtype)."""
    array = np.asarray(values)
    return array.astype(np.float32) if array.dtype.kind == "f" else array


class _Step(NamedTuple):
    episode: int
    obs: Any
    action: Any
    next_obs: Any
    done: bool
    reward: Any
    terminated: bool


def _steps(
    policy: Policy, env: gym.Env, *, seed: int, seed_every_episode: bool, deterministic: bool
) -> Iterator[_Step]:
    """Endless steps of ``policy`` in ``env``: the one stepping loop behind the rollouts."""
    obs, _ = env.reset(seed=seed)
    episode = 0
    while True:
        action, _ = policy.predict(obs, deterministic=deterministic)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        done = bool(terminated or truncated)
        yield _Step(episode, obs, action, next_obs, done, reward, bool(terminated))
        if done:
            episode += 1
            obs, _ = env.reset(seed=seed + episode) if seed_every_episode else env.reset()
        else:
            obs = next_obs


def _transitions(steps: list[_Step]) -> Transitions:
    return Transitions(
        _stack([step.obs for step in steps]),
        np.stack([np.asarray(step.action) for step in steps]),
        _stack([step.next_obs for step in steps]),
        np.asarray([step.terminated for step in steps], bool),
        np.asarray([step.done and not step.terminated for step in steps], bool),
        np.asarray([step.reward for step in steps], np.float32),
    )


def rollout(
    policy: Policy | None,
    env: gym.Env,
    num_episodes: int,
    *,
    seed: int = 0,
    seed_every_episode: bool = False,
    deterministic: bool = True,
) -> Rollout:
    """Run ``num_episodes`` whole episodes of ``policy`` in ``env`` and keep every transition.

    Args:
        policy: an SB3 agent (or anything with its ``predict``); None for uniform random actions
            (:class:`RandomPolicy` seeded with ``seed``).
        env: one gymnasium env (:func:`make_env`); observations Box or Discrete.
        num_episodes: E ≥ 1.
        seed: the first episode starts from ``env.reset(seed=seed)``.
        seed_every_episode: episode e starts from ``env.reset(seed=seed + e)``; otherwise later
            episodes continue the env's random stream (as an SB3 ``VecEnv`` does).
        deterministic: the policy's deterministic (mode) action rather than a sample.

    Returns:
        :class:`Rollout` with T = the sum of the episode lengths.

    Raises:
        ValueError: ``num_episodes`` is not an integer ≥ 1.

    Example:
        >>> data = rollout(None, make_env("Pendulum-v1", fixed_horizon=4), 2, seed=0)
        >>> data.transitions.obs.shape, data.episode.tolist(), bool(data.transitions.dones[3])
        ((8, 3), [0, 0, 0, 0, 1, 1, 1, 1], True)
        >>> bool(np.isclose(data.returns.sum(), data.transitions.rews.sum(dtype=np.float64), rtol=1e-6))
        True
    """
    if isinstance(num_episodes, bool) or not isinstance(num_episodes, (int, np.integer)) or num_episodes < 1:
        raise ValueError(f"num_episodes: expected an integer >= 1, got {num_episodes!r}")
    if policy is None:
        policy = RandomPolicy(env.action_space, seed)
    steps: list[_Step] = []
    returns, terminals, total = [], [], 0.0
    for step in _steps(policy, env, seed=seed, seed_every_episode=seed_every_episode, deterministic=deterministic):
        steps.append(step)
        total += float(step.reward)  # in step order, in float64
        if step.done:
            returns.append(total)
            terminals.append(step.terminated)
            total = 0.0
            if step.episode + 1 == num_episodes:
                break
    episode_of = np.asarray([step.episode for step in steps], np.int64)
    return Rollout(_transitions(steps), episode_of, np.asarray(returns, np.float64), np.asarray(terminals, bool))


def rollout_transitions(
    env: gym.Env | str, num_steps: int, *, seed: int = 0, policy: Policy | None = None
) -> Transitions:
    """Coverage data: ``num_steps`` transitions of ``policy`` (uniform random by default) in ``env``.

    The sample-based distances (``rewardlab.distances``) take such data as their coverage
    distribution. Episodes continue across ends (the env is reset, unseeded, after each).

    Args:
        env: a gymnasium env or env id.
        num_steps: transitions to collect.
        seed: seeds the first reset and the random policy.
        policy: anything with SB3's ``predict`` (actions sampled, not the mode); None for
            :class:`RandomPolicy`.

    Returns:
        :class:`rewardlab.Transitions` with ``next_obs`` the terminal observation at episode ends.

    Raises:
        ValueError: ``num_steps`` is not a positive integer.

    Example:
        >>> data = rollout_transitions("Pendulum-v1", 10)
        >>> data.obs.shape, data.acts.shape
        ((10, 3), (10, 1))
    """
    if isinstance(num_steps, bool) or not isinstance(num_steps, (int, np.integer)) or num_steps < 1:
        raise ValueError(f"num_steps: expected a positive integer, got {num_steps!r}")
    owned = isinstance(env, str)
    instance = gym.make(env) if isinstance(env, str) else env
    try:
        steps = _steps(
            policy or RandomPolicy(instance.action_space, seed),
            instance,
            seed=seed,
            seed_every_episode=False,
            deterministic=False,
        )
        return _transitions([next(steps) for _ in range(int(num_steps))])
    finally:
        if owned:
            instance.close()


def reward_returns(reward_fn: RewardFn, data: Rollout) -> np.ndarray:
    """Return of each episode of ``data`` under ``reward_fn``: R̂_e = Σ_t r̂_t, ``[E]`` float64.

    ``reward_fn`` is called once per episode on that episode's transitions.

    Example:
        >>> data = rollout(None, make_env("Pendulum-v1", fixed_horizon=3), 2)
        >>> reward_returns(lambda obs, acts, next_obs, dones: np.ones(len(obs), np.float32), data).tolist()
        [3.0, 3.0]
    """
    totals = []
    for index in range(len(data.returns)):
        rows = np.flatnonzero(data.episode == index)
        piece = slice(rows[0], rows[-1] + 1)
        t = data.transitions
        values = np.asarray(reward_fn(t.obs[piece], t.acts[piece], t.next_obs[piece], t.dones[piece]), np.float64)
        totals.append(float(values.sum()))
    return np.asarray(totals, np.float64)


class Evaluation(NamedTuple):
    """What :func:`evaluate_policy` measures over E episodes."""

    true_return: float  # mean true return (1/E) Σ_e R_e
    true_return_std: float  # standard deviation of R_e over episodes
    reward_return: float  # mean return under the given ``reward_fn``, (1/E) Σ_e R̂_e (NaN without one)


def evaluate_policy(
    policy: Policy | None,
    env: gym.Env,
    num_episodes: int,
    *,
    seed: int = 0,
    seed_every_episode: bool = False,
    deterministic: bool = True,
    reward_fn: RewardFn | None = None,
) -> Evaluation:
    """Mean true return of ``policy`` over ``num_episodes`` episodes (and under ``reward_fn``, if given).

    The arguments are :func:`rollout`'s; ``reward_fn`` is scored with :func:`reward_returns`.

    Example:
        >>> env = make_env("Pendulum-v1", fixed_horizon=3)
        >>> result = evaluate_policy(None, env, 2, reward_fn=lambda o, a, n, d: np.zeros(len(o), np.float32))
        >>> result.true_return < 0.0, result.reward_return
        (True, 0.0)
    """
    data = rollout(
        policy, env, num_episodes, seed=seed, seed_every_episode=seed_every_episode, deterministic=deterministic
    )
    reward_return = float("nan") if reward_fn is None else float(np.mean(reward_returns(reward_fn, data)))
    return Evaluation(float(np.mean(data.returns)), float(np.std(data.returns)), reward_return)
