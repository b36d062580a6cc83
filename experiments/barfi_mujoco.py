"""BARFI on HalfCheetah-v5 with a PPO inner learner: the control cost weighted well (×1) and badly (×4).

``python -m experiments.barfi --env HalfCheetah-v5`` runs this study through the BARFI
experiment's CLI (:mod:`experiments.barfi`). The primary reward is the forward reward,
r_p = (x' − x)/dt (HalfCheetah-v5's ``reward_forward``); the auxiliary reward is the control
cost, r_aux = −w·c·‖a‖² with c = 0.1 (HalfCheetah-v5's ``ctrl_cost_weight``), so that w = 1
(``auxiliary="good"``) makes r_p + r_aux the env's own reward and w = 4 (``"bad"``) a cost four
times heavier. Both components match the env's named reward factors
(:func:`rewardlab_envs.factor_spec`: ``forward_reward`` and ``control_cost``; test).

The reward function needs x, which HalfCheetah hides by default: the env is made with
``exclude_current_positions_from_observation=False``, the reward wrapper sees x and the policy
does not (:class:`HidePosition` drops it again).

Four methods, each a PPO agent on one :func:`rewardlab.bilevel.barfi_sb3` loop (the fixed ones with
``update_blend=False``, so every method logs the same way): the primary reward alone; the naive sum
r_p + r_aux; potential-based shaping with r_aux as the potential; BARFI, one global (φ1, φ2, φ3)
learned with the first-order outer gradient from PPO's rollouts. r_aux pays on entering a state,
as h(s') in the other studies: h(s_{t+1}) = r_aux(a_t), the cost of the action that led there (a
function of the state augmented with the last action), so shaping adds γ h(s_{t+1}) − h(s_t) =
γ r_aux(a_t) − r_aux(a_{t−1}), h = 0 at an episode's start. The shaped return telescopes, so every
policy's shaped return is its primary return: shaping keeps the primary reward's optima.

The primary-only runs do not depend on w; they run once per seed and appear under both weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecEnvWrapper

from rewardlab._io import atomic_write_json
from rewardlab.bilevel import FirstOrderConfig, FirstOrderResult, barfi_sb3, table_blend
from rewardlab.rl import make_agent

ENV_ID = "HalfCheetah-v5"
CONTROL_COST = 0.1  # HalfCheetah-v5's ctrl_cost_weight
CONTROL_COST_WEIGHTS = {"good": 1.0, "bad": 4.0}
FIXED_COEFFICIENTS = {"primary": (0.0, 1.0, 0.0), "naive": (0.0, 1.0, 1.0), "shaping": (0.0, 1.0, 1.0)}
# SB3's PPO defaults with shorter rollouts (more updates in a short budget); the Zoo's tuned HalfCheetah
# settings (a 2e-5 step, 256-wide networks) are for 1M steps.
PPO_SETTINGS: dict[str, Any] = dict(
    n_steps=1024,
    batch_size=64,
    n_epochs=10,
    learning_rate=3e-4,
    gamma=0.99,
    gae_lambda=0.95,
    clip_range=0.2,
    ent_coef=0.0,
    vf_coef=0.5,
    max_grad_norm=0.5,
    policy_kwargs={},
)


class HidePosition(VecEnvWrapper):
    """Drops observation entry 0 (HalfCheetah's x, which the reward needs and the policy should not see)."""

    def __init__(self, venv: VecEnv) -> None:
        space = venv.observation_space
        assert isinstance(space, gym.spaces.Box)
        hidden = gym.spaces.Box(space.low[1:], space.high[1:], dtype=space.dtype)  # type: ignore[arg-type]
        super().__init__(venv, observation_space=hidden)

    def reset(self) -> np.ndarray:
        return np.asarray(self.venv.reset())[:, 1:]

    def step_wait(self) -> Any:
        obs, rewards, dones, infos = self.venv.step_wait()
        for info in infos:
            if "terminal_observation" in info:
                info["terminal_observation"] = info["terminal_observation"][1:]
        return np.asarray(obs)[:, 1:], rewards, dones, infos


class ControlCostComponents:
    """(r_p, r_aux) = ((x' − x)/dt, −w·c·‖a‖²) from observations that start with x."""

    def __init__(self, weight: float, dt: float) -> None:
        self.weight = float(weight)
        self.dt = float(dt)

    def __call__(self, obs: Any, acts: Any, next_obs: Any, dones: Any) -> tuple[np.ndarray, np.ndarray]:
        del dones
        forward = (np.asarray(next_obs)[:, 0] - np.asarray(obs)[:, 0]) / self.dt
        cost = -self.weight * CONTROL_COST * np.square(np.asarray(acts, np.float64)).sum(axis=1)
        return forward.astype(np.float32), cost.astype(np.float32)


class ShapedControlCost:
    """(r_p, γ h(s_{t+1}) − h(s_t)) with h(s_{t+1}) = r_aux(a_t): shaping with the control cost as potential.

    Keeps h(s_t) of every env between calls; h = 0 after an episode ends.
    """

    def __init__(self, components: ControlCostComponents, discount: float, num_envs: int) -> None:
        self.components = components
        self.discount = float(discount)
        self.potential = np.zeros(num_envs, np.float64)

    def __call__(self, obs: Any, acts: Any, next_obs: Any, dones: Any) -> tuple[np.ndarray, np.ndarray]:
        primary, auxiliary = self.components(obs, acts, next_obs, dones)
        next_potential = np.asarray(auxiliary, np.float64)
        shaping = self.discount * next_potential - self.potential
        self.potential = np.where(np.asarray(dones, bool), 0.0, next_potential)
        return primary, shaping.astype(np.float32)


class SeedResults(NamedTuple):
    """One method's results stacked over seeds (the fields main() reads)."""

    primary_return: np.ndarray  # [N, I] mean primary return of the episodes ending in each outer iteration
    auxiliary_return: np.ndarray  # [N, I]
    coefficients: np.ndarray  # [N, I, 3]
    discount: np.ndarray  # [N, I]
    timesteps: np.ndarray  # [N, I]
    diverged: np.ndarray  # [N] bool


def make_venv(seed: int, episode_steps: int = 1000) -> DummyVecEnv:
    """One HalfCheetah-v5 with x in the observation and ``episode_steps``-step episodes, seeded."""
    venv = DummyVecEnv(
        [lambda: gym.make(ENV_ID, exclude_current_positions_from_observation=False, max_episode_steps=episode_steps)]
    )
    venv.seed(seed)
    return venv


def run_one(
    method: str,
    weight: float,
    seed: int,
    outer_iterations: int,
    inner_timesteps: int,
    outer_learning_rate: float,
    episode_steps: int = 1000,
) -> FirstOrderResult:
    """One method on one seed; PPO's rollouts are ``min(1024, inner_timesteps)`` steps."""
    venv = make_venv(seed, episode_steps)
    settings = {**PPO_SETTINGS, "n_steps": min(PPO_SETTINGS["n_steps"], inner_timesteps)}
    dt = float(venv.envs[0].unwrapped.dt)  # type: ignore[attr-defined]
    components: Any = ControlCostComponents(weight, dt)
    if method == "shaping":
        components = ShapedControlCost(components, PPO_SETTINGS["gamma"], venv.num_envs)
    blend = table_blend(1, FIXED_COEFFICIENTS.get(method, (0.0, 1.0, 1.0)))
    config = FirstOrderConfig(
        outer_iterations=outer_iterations,
        inner_timesteps=inner_timesteps,
        outer_learning_rate=outer_learning_rate,
        discount=PPO_SETTINGS["gamma"],
        update_blend=method == "barfi",
    )
    return barfi_sb3(
        lambda env: make_agent("ppo", env, ENV_ID, seed=seed, **settings),
        venv,
        components,
        config,
        blend=blend,
        blend_inputs=lambda obs, acts: np.zeros(np.asarray(acts).shape[0], np.int32),
        policy_env=HidePosition,
    )


def run_job(
    method: str,
    auxiliary: str,
    seed: int,
    outer_iterations: int,
    inner_timesteps: int,
    outer_learning_rate: float,
    episode_steps: int,
    path: str,
) -> dict[str, Any]:
    """One run, written to ``path`` as JSON; a file there with the same settings is read instead (resume)."""
    settings = {
        "method": method,
        "control_cost_weight": 1.0 if method == "primary" else CONTROL_COST_WEIGHTS[auxiliary],
        "seed": seed,
        "outer_iterations": outer_iterations,
        "inner_timesteps": inner_timesteps,
        "outer_learning_rate": outer_learning_rate if method == "barfi" else None,
        "episode_steps": episode_steps,
    }
    target = Path(path)
    if target.exists():
        stored = json.loads(target.read_text())
        if stored.get("settings") == settings:
            return stored
    import torch

    torch.set_num_threads(1)
    result = run_one(
        method,
        CONTROL_COST_WEIGHTS[auxiliary],
        seed,
        outer_iterations,
        inner_timesteps,
        outer_learning_rate,
        episode_steps,
    )
    record = {
        "settings": settings,
        "primary_return": result.primary_return.tolist(),
        "auxiliary_return": result.auxiliary_return.tolist(),
        "coefficients": result.coefficients.tolist(),
        "discount": result.discount.tolist(),
        "timesteps": result.timesteps.tolist(),
        "gradient_norm": result.gradient_norm.tolist(),
        "diverged_at": result.diverged_at,
    }
    atomic_write_json(target, record)
    return record


def run_halfcheetah(args: Any, auxiliary: str, run_dir: Path, cache: dict[str, Any]) -> dict[str, SeedResults]:
    """The four methods over ``args.seeds`` seeds at the control-cost weight of ``auxiliary``.

    The first call runs every job of ``args.auxiliary`` (both weights for ``"both"``) on
    ``args.workers`` processes and keeps them in ``cache``; the primary-only runs do not depend on
    the weight and run once per seed. Each run is written to ``run_dir/halfcheetah/<name>.json``
    when it finishes and read back on a rerun with the same settings, so a study cut short resumes.
    """
    out = run_dir / "halfcheetah"
    out.mkdir(parents=True, exist_ok=True)
    if not cache:
        auxiliaries = ("good", "bad") if args.auxiliary == "both" else (args.auxiliary,)
        jobs = {}
        for seed in range(args.seed, args.seed + args.seeds):
            jobs[f"primary-seed{seed}"] = ("primary", auxiliaries[0], seed)
            for name in auxiliaries:
                for method in ("naive", "shaping", "barfi"):
                    jobs[f"{name}-{method}-seed{seed}"] = (method, name, seed)
        common = (args.outer_iterations, args.inner_timesteps, args.outer_learning_rate, args.episode_horizon)
        if args.workers == 1:
            for key, (method, name, seed) in jobs.items():
                cache[key] = run_job(method, name, seed, *common, str(out / f"{key}.json"))
        else:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            context = multiprocessing.get_context("spawn")  # JAX's threads do not survive a fork
            with ProcessPoolExecutor(args.workers, mp_context=context) as pool:
                futures = {
                    key: pool.submit(run_job, method, name, seed, *common, str(out / f"{key}.json"))
                    for key, (method, name, seed) in jobs.items()
                }
                cache.update({key: future.result() for key, future in futures.items()})
    results: dict[str, SeedResults] = {}
    for method in ("primary", "naive", "shaping", "barfi"):
        runs = [
            cache[f"primary-seed{seed}" if method == "primary" else f"{auxiliary}-{method}-seed{seed}"]
            for seed in range(args.seed, args.seed + args.seeds)
        ]
        results[method] = SeedResults(
            primary_return=np.array([run["primary_return"] for run in runs], np.float64),
            auxiliary_return=np.array([run["auxiliary_return"] for run in runs], np.float64),
            coefficients=np.array([run["coefficients"] for run in runs], np.float64),
            discount=np.array([run["discount"] for run in runs], np.float64),
            timesteps=np.array([run["timesteps"] for run in runs], np.int64),
            diverged=np.array([run["diverged_at"] >= 0 for run in runs]),
        )
    return results


def load_runs(folder: Path) -> dict[str, Any]:
    """The per-run JSON files of a study folder, keyed by file stem."""
    return {path.stem: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}
