"""Reward over-optimisation on Pendulum: a single reward model vs a conservative ensemble, 0% and 25% label noise.

A reward model is learned from preferences between segments of random-policy episodes
(Bradley–Terry loss; Christiano et al. 2017), labelled by a simulated teacher that is
either perfect (``oracle``) or flips each label with probability ``noise`` (B-Pref's
``mistake``, Lee et al. 2021). PPO then trains on the learned (proxy) reward only. At each
checkpoint the harness (:func:`rewardlab.rl.measure_overoptimization`) logs the proxy
return, the true return and the MMD² between the policy's visited states and the reward
model's training states. Two reward designs are compared (Coste et al. 2024):

* ``single``: one network, r̂ = r_θ;
* ``ensemble``: E bootstrapped networks, the conservative r̂ = mean − α·std.

Each proxy is standardised with the mean and standard deviation of its values on the
training transitions before PPO sees it.

Run: ``python -m experiments.overoptimization --total-timesteps 50000``; writes
``summary.json`` and ``overoptimization.png`` in the run folder.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

import jax
import numpy as np

from rewardlab._io import atomic_write_json
from rewardlab._types import Trajectory
from rewardlab.preferences import default_optimizer, fragment_trajectories, label, make_teacher, train_reward
from rewardlab.rewards import RewardModel, RewardNetConfig, as_reward_fn
from rewardlab.rl import (
    OveroptimizationResult,
    StandardizedRewardFn,
    make_env,
    measure_overoptimization,
    plot_overoptimization,
    rollout,
)
from rewardlab.sweeps import Logger, check_choices, parse_args

DESIGNS = ("single", "ensemble")


@dataclasses.dataclass(frozen=True)
class Args:
    """Arguments of the over-optimisation study.

    Attributes:
        env_id: gymnasium environment id.
        total_timesteps: PPO env steps per (design, noise) run.
        num_checkpoints: evaluations along training (plus one before).
        eval_episodes: deterministic evaluation episodes per checkpoint.
        data_episodes: random-policy episodes the reward model's segments come from.
        labels: preference labels per reward model.
        fragment_length: steps per segment.
        noise_levels: label-flip probabilities of the teacher (0 = oracle).
        designs: reward designs, ``single`` and/or ``ensemble``.
        ensemble_size: members of the ensemble design.
        coefficient: α of the ensemble's conservative reward mean − α·std (``as_reward_fn``'s ``coefficient``).
        reward_epochs: passes over the labels when training a reward model.
        ppo_n_steps: PPO rollout length per env (None: the tuned 1024; small for smoke tests).
        ppo_batch_size: PPO minibatch size (None: the tuned size, 256 on Pendulum; the figures in
            docs/distances.md were measured with 64).
        seed: seed of everything.
        out_dir: parent folder of the run folder.
    """

    env_id: str = "Pendulum-v1"
    total_timesteps: int = 50_000
    num_checkpoints: int = 10
    eval_episodes: int = 3
    data_episodes: int = 20
    labels: int = 300
    fragment_length: int = 25
    noise_levels: tuple[float, ...] = (0.0, 0.25)
    designs: tuple[Literal["single", "ensemble"], ...] = DESIGNS
    ensemble_size: int = 5
    coefficient: float = 1.0
    reward_epochs: int = 100
    ppo_n_steps: int | None = None
    ppo_batch_size: int | None = None
    seed: int = 0
    out_dir: Path = Path("runs")

    def __post_init__(self) -> None:
        check_choices(self)
        for name in (
            "total_timesteps",
            "num_checkpoints",
            "eval_episodes",
            "data_episodes",
            "labels",
            "fragment_length",
            "ensemble_size",
            "reward_epochs",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
        for name in ("ppo_n_steps", "ppo_batch_size"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name}: expected None or an integer >= 1, got {value!r}")
        if not self.designs:
            raise ValueError(f"designs: expected a non-empty subset of {DESIGNS}, got {self.designs!r}")
        if not self.noise_levels or any(not 0.0 <= noise < 0.5 for noise in self.noise_levels):
            raise ValueError(f"noise_levels: expected probabilities in [0, 0.5), got {self.noise_levels!r}")

    @property
    def name(self) -> str:
        return f"overoptimization-{self.env_id}-ppo-{self.labels}labels-seed{self.seed}"


def ppo_kwargs(args: Args) -> dict[str, int]:
    """Overrides of the tuned PPO settings from ``ppo_n_steps`` and ``ppo_batch_size``."""
    kwargs = {}
    if args.ppo_n_steps is not None:
        kwargs.update(n_steps=args.ppo_n_steps, batch_size=min(64, 4 * args.ppo_n_steps))
    if args.ppo_batch_size is not None:
        kwargs["batch_size"] = args.ppo_batch_size
    return kwargs


def learn_proxy(
    args: Args, design: str, noise: float, episodes: list[Trajectory], reference: tuple
) -> tuple[StandardizedRewardFn, dict]:
    """Train the reward model of ``design`` on ``args.labels`` labels with flip probability ``noise``."""
    env = make_env(args.env_id)
    members = args.ensemble_size if design == "ensemble" else 1
    model = RewardModel(
        RewardNetConfig(hidden_sizes=(64, 64), ensemble_size=members), env.observation_space, env.action_space
    )
    env.close()
    rng = np.random.default_rng(args.seed)
    pairs = fragment_trajectories(episodes, args.labels, args.fragment_length, rng)
    teacher = make_teacher("oracle") if noise == 0.0 else make_teacher("mistake", eps_mistake=noise)
    prefs = label(pairs, teacher, rng)
    params, _, metrics = train_reward(
        model,
        model.init(args.seed),
        None,
        prefs,
        jax.random.key(args.seed),
        epochs=args.reward_epochs,
        batch_size=64,
        optimizer=default_optimizer(1e-3),
        bootstrap=design == "ensemble",
    )
    aggregate = "mean_minus_std" if design == "ensemble" else "mean"
    raw = as_reward_fn(model, params, aggregate=aggregate, coefficient=args.coefficient)
    values = raw(*reference)
    true = np.asarray(pairs.rews).reshape(-1)
    scored = raw(
        *(np.asarray(x).reshape((-1,) + np.shape(x)[3:]) for x in (pairs.obs, pairs.acts, pairs.next_obs, pairs.dones))
    )
    info = {
        "train_accuracy": float(metrics["accuracy"][-1]),
        "label_agreement_with_truth": float(
            np.mean(
                (prefs.labels > 0.5) == (np.asarray(pairs.rews).sum(-1)[:, 0] > np.asarray(pairs.rews).sum(-1)[:, 1])
            )
        ),
        "reward_correlation": float(np.corrcoef(scored, true)[0, 1]),
    }
    return StandardizedRewardFn(raw, float(np.mean(values)), float(np.std(values) + 1e-8)), info


def main(args: Args, logger: Logger | None = None) -> dict[str, float]:
    """Run every (design, noise) pair; return final and peak true returns per run."""
    # The reward model's training distribution: episodes of the uniform random policy.
    data = rollout(None, make_env(args.env_id), args.data_episodes, seed=args.seed, seed_every_episode=True)
    episodes = data.trajectories()
    obs = data.transitions.obs
    reference = (obs, data.transitions.acts, data.transitions.next_obs, np.zeros(len(obs), bool))
    runs: dict[str, OveroptimizationResult] = {}
    summary: dict[str, float] = {}
    details: dict[str, dict] = {}
    for noise in args.noise_levels:
        for design in args.designs:
            name = f"{design}-noise{int(round(100 * noise))}"
            proxy, info = learn_proxy(args, design, noise, episodes, reference)
            result = measure_overoptimization(
                args.env_id,
                proxy,
                obs,
                total_timesteps=args.total_timesteps,
                num_checkpoints=args.num_checkpoints,
                eval_episodes=args.eval_episodes,
                seed=args.seed,
                agent_kwargs=ppo_kwargs(args),
            )
            runs[name] = result
            print(
                f"{name}: true return {result.true_return[0]:.0f} -> {result.true_return[-1]:.0f}, "
                f"proxy return {result.proxy_return[0]:.1f} -> {result.proxy_return[-1]:.1f}",
                flush=True,
            )
            details[name] = {**info, **result.to_dict()}
            summary[f"{name}/final_true_return"] = float(result.true_return[-1])
            summary[f"{name}/peak_true_return"] = float(result.true_return.max())
            summary[f"{name}/final_proxy_return"] = float(result.proxy_return[-1])
            summary[f"{name}/final_visitation_mmd"] = float(result.visitation_mmd[-1])
            summary[f"{name}/reward_correlation"] = info["reward_correlation"]
            if logger is not None:
                for step, proxy_return, true_return, mmd in zip(*result, strict=True):
                    logger.log(
                        int(step),
                        **{
                            f"{name}/proxy_return": float(proxy_return),
                            f"{name}/true_return": float(true_return),
                            f"{name}/visitation_mmd": float(mmd),
                        },
                    )
    run_dir = logger.run_dir if logger is not None and logger.run_dir is not None else Path(args.out_dir) / args.name
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(
        run_dir / "summary.json",
        {
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(args).items()},
            "summary": summary,
            "runs": details,
        },
    )
    plot_overoptimization(
        runs,
        title=f"{args.env_id}: PPO on a learned reward ({args.labels} labels, {args.total_timesteps} steps)",
        path=run_dir / "overoptimization.png",
    )
    return summary


if __name__ == "__main__":
    print(main(parse_args(Args)))
