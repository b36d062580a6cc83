"""Reward over-optimisation on Pendulum (Coste et al. 2024): one cell of the study per run.

A reward model is learned from preferences between segments of random-policy episodes
(Bradley–Terry loss; Christiano et al. 2017), labelled by a simulated teacher that flips
each label with probability ``noise`` (B-Pref's ``mistake``, Lee et al. 2021; 0 = oracle).
PPO then trains on the learned (proxy) reward only. At each checkpoint the harness
(:func:`rewardlab.rl.measure_overoptimization`) logs the proxy return, the true return, the
MMD² between the policy's visited states and the reward model's training states, and the
policy's divergence from its start KL(π ‖ π₀) on a fixed set of those states (the x-axis of
Gao et al.'s and Coste et al.'s over-optimisation curves). Reward designs (``reward_design``):

* ``single``: one network, r̂ = r_θ;
* an ensemble of E bootstrapped networks r_1..r_E combined by ``aggregate_ensemble``:
  ``mean`` (1/E) Σ_e r_e; ``min`` min_e r_e (Coste et al.'s worst-case optimisation, WCO);
  ``uncertainty_weighted`` mean − c·var (their UWO); ``mean_minus_std`` mean − c·std.

Every ensemble design of one seed uses the same labels and the same trained ensemble, and
every design of one seed starts PPO from the same initial policy, so designs are compared
seed by seed. Each proxy is standardised with the mean and standard deviation of its values
on the training transitions before PPO sees it.

Run one cell: ``python -m experiments.overoptimization --noise 0.25 --reward-design min --seed 3``;
the study: ``rewardlab sweep experiments/overoptimization.toml --workers 1`` (resumes when
rerun), then ``python -m experiments.overoptimization_report runs/sweeps/overoptimization``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any, Literal

import jax
import numpy as np

from rewardlab._io import atomic_write_json
from rewardlab._types import Trajectory
from rewardlab.preferences import default_optimizer, fragment_trajectories, label, make_teacher, train_reward
from rewardlab.rewards import RewardModel, RewardNetConfig, as_reward_fn, load_reward_model, save_reward_model
from rewardlab.rl import StandardizedRewardFn, make_env, measure_overoptimization, plot_overoptimization, rollout
from rewardlab.sweeps import Logger, check_choices, parse_args

DESIGNS = ("single", "mean", "min", "uncertainty_weighted", "mean_minus_std")
"""Reward designs: one network, or the ensemble under one of ``rewardlab.rewards.ENSEMBLE_AGGREGATES``."""

CHECKPOINT_METRICS = ("proxy_return", "true_return", "visitation_mmd", "policy_kl")
"""What every run logs at every checkpoint (the over-optimisation curve)."""


@dataclasses.dataclass(frozen=True)
class Args:
    """Arguments of one cell (design, noise, seed) of the over-optimisation study.

    Attributes:
        env_id: gymnasium environment id.
        reward_design: ``single`` (one network) or the ensemble's aggregate: ``mean``, ``min``,
            ``uncertainty_weighted`` (mean − c·var), ``mean_minus_std`` (mean − c·std).
        noise: the teacher's label-flip probability (0 = oracle).
        labels: preference labels of the reward model.
        total_timesteps: PPO env steps.
        num_checkpoints: evaluations along training (plus one before).
        eval_episodes: deterministic evaluation episodes per checkpoint.
        data_episodes: random-policy episodes the reward model's segments come from.
        fragment_length: steps per segment.
        ensemble_size: members of the ensemble designs.
        coefficient: c of ``mean_minus_std`` and ``uncertainty_weighted``.
        reward_epochs: passes over the labels when training a reward model (more overfits the flipped
            labels: docs/distances.md).
        kl_states: states (drawn once from the reward model's training states) on which KL(π ‖ π₀) is averaged.
        ppo_n_steps: PPO rollout length per env (None: the tuned 1024; small for smoke tests).
        ppo_batch_size: PPO minibatch size (None: the tuned size, 256 on Pendulum).
        reward_cache: folder where trained reward models are kept and looked up (empty: none); the
            ensemble designs of one (noise, seed) then train the ensemble once. Its key holds every
            argument the reward model depends on.
        seed: seed of everything (data, labels, reward model, PPO, evaluation).
        out_dir: parent folder of the run folder when run outside a sweep.
    """

    env_id: str = "Pendulum-v1"
    reward_design: Literal["single", "mean", "min", "uncertainty_weighted", "mean_minus_std"] = "mean_minus_std"
    noise: float = 0.25
    labels: int = 1000
    total_timesteps: int = 50_000
    num_checkpoints: int = 10
    eval_episodes: int = 3
    data_episodes: int = 20
    fragment_length: int = 25
    ensemble_size: int = 5
    coefficient: float = 1.0
    reward_epochs: int = 30
    kl_states: int = 512
    ppo_n_steps: int | None = None
    ppo_batch_size: int | None = None
    reward_cache: str = ""
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
            "kl_states",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
        for name in ("ppo_n_steps", "ppo_batch_size"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name}: expected None or an integer >= 1, got {value!r}")
        if isinstance(self.noise, bool) or not isinstance(self.noise, (int, float)) or not 0.0 <= self.noise < 0.5:
            raise ValueError(f"noise: expected a probability in [0, 0.5), got {self.noise!r}")
        if self.reward_design != "single" and self.ensemble_size < 2:
            raise ValueError(
                f"ensemble_size: expected >= 2 for reward_design {self.reward_design!r}, got {self.ensemble_size}"
            )

    @property
    def name(self) -> str:
        """The run folder's name outside a sweep."""
        noise = int(round(100 * self.noise))
        return f"overoptimization-{self.env_id}-{self.reward_design}-noise{noise}-{self.labels}labels-seed{self.seed}"


def ppo_kwargs(args: Args) -> dict[str, int]:
    """Overrides of the tuned PPO settings from ``ppo_n_steps`` and ``ppo_batch_size``."""
    kwargs: dict[str, int] = {}
    if args.ppo_n_steps is not None:
        kwargs.update(n_steps=args.ppo_n_steps, batch_size=min(64, 4 * args.ppo_n_steps))
    if args.ppo_batch_size is not None:
        kwargs["batch_size"] = args.ppo_batch_size
    return kwargs


def _flat_pair_inputs(pairs: Any) -> tuple[np.ndarray, ...]:
    """The segment pairs' transitions as flat ``[B·2·L, ...]`` reward-function inputs."""
    return tuple(
        np.asarray(x).reshape((-1,) + np.shape(x)[3:]) for x in (pairs.obs, pairs.acts, pairs.next_obs, pairs.dones)
    )


def reward_cache_path(args: Args) -> Path | None:
    """Where the reward model of ``args`` is cached (None without ``reward_cache``): one file per training setting."""
    if not args.reward_cache:
        return None
    members = 1 if args.reward_design == "single" else args.ensemble_size
    key = (
        f"{args.env_id.replace('/', '_')}-{members}members-noise{args.noise:g}-{args.labels}labels-"
        f"{args.reward_epochs}epochs-{args.fragment_length}steps-{args.data_episodes}episodes-seed{args.seed}"
    )
    return Path(args.reward_cache) / f"{key}.rlab"


def learn_proxy(args: Args, episodes: list[Trajectory], reference: tuple) -> tuple[StandardizedRewardFn, dict]:
    """Train the reward model of ``args.reward_design`` on ``args.labels`` labels flipped with probability ``args.noise``.

    Returns:
        The standardised proxy and its figures: ``train_accuracy``, ``label_agreement_with_truth``
        (labels that agree with the true segment returns), ``reward_correlation`` (Pearson, per
        transition of the labelled segments) and ``penalty_scale`` = std(r̂ − r̄)/std(r̄) on the
        training transitions, r̄ the ensemble mean (0 for ``single`` and ``mean``).
    """
    env = make_env(args.env_id)
    members = 1 if args.reward_design == "single" else args.ensemble_size
    model = RewardModel(
        RewardNetConfig(hidden_sizes=(64, 64), ensemble_size=members), env.observation_space, env.action_space
    )
    env.close()
    rng = np.random.default_rng(args.seed)
    pairs = fragment_trajectories(episodes, args.labels, args.fragment_length, rng)
    teacher = make_teacher("oracle") if args.noise == 0.0 else make_teacher("mistake", eps_mistake=args.noise)
    prefs = label(pairs, teacher, rng)
    cached = reward_cache_path(args)
    if cached is not None and cached.is_file() and cached.with_suffix(".json").is_file():
        model, params = load_reward_model(
            cached, observation_space=model.observation_space, action_space=model.action_space
        )
        train_accuracy = float(json.loads(cached.with_suffix(".json").read_text())["train_accuracy"])
    else:
        params, _, metrics = train_reward(
            model,
            model.init(args.seed),
            None,
            prefs,
            jax.random.key(args.seed),
            epochs=args.reward_epochs,
            batch_size=64,
            optimizer=default_optimizer(1e-3),
            bootstrap=members > 1,
        )
        train_accuracy = float(metrics["accuracy"][-1])
        if cached is not None:
            save_reward_model(cached, model, params)
            atomic_write_json(cached.with_suffix(".json"), {"train_accuracy": train_accuracy})
    aggregate = "mean" if args.reward_design == "single" else args.reward_design
    raw = as_reward_fn(model, params, aggregate=aggregate, coefficient=args.coefficient)
    mean = as_reward_fn(model, params, aggregate="mean")(*reference)
    values = raw(*reference)
    true = np.asarray(pairs.rews).reshape(-1)
    segment_returns = np.asarray(pairs.rews).sum(-1)
    info = {
        "train_accuracy": train_accuracy,
        "label_agreement_with_truth": float(
            np.mean((prefs.labels > 0.5) == (segment_returns[:, 0] > segment_returns[:, 1]))
        ),
        "reward_correlation": float(np.corrcoef(raw(*_flat_pair_inputs(pairs)), true)[0, 1]),
        "penalty_scale": float(np.std(values - mean) / (np.std(mean) + 1e-8)),
    }
    return StandardizedRewardFn(raw, float(np.mean(values)), float(np.std(values) + 1e-8)), info


def main(args: Args, logger: Logger | None = None) -> dict[str, float]:
    """Learn the proxy of one (design, noise, seed) cell, train PPO on it, return the run's final figures.

    Returns:
        ``start_true_return``, ``final_true_return``, ``peak_true_return``, ``mean_true_return``
        (over the checkpoints after the first), ``overoptimization`` (peak − final true return),
        ``final_proxy_return``, ``final_policy_kl``, ``max_policy_kl``, ``final_visitation_mmd``,
        the proxy's figures (:func:`learn_proxy`) and ``wall_s``; every checkpoint's
        ``CHECKPOINT_METRICS`` go to ``logger``.
    """
    import torch

    torch.set_num_threads(1)
    start = time.perf_counter()
    # The reward model's training distribution: episodes of the uniform random policy.
    data = rollout(None, make_env(args.env_id), args.data_episodes, seed=args.seed, seed_every_episode=True)
    obs = data.transitions.obs
    reference = (obs, data.transitions.acts, data.transitions.next_obs, np.zeros(len(obs), bool))
    proxy, info = learn_proxy(args, data.trajectories(), reference)
    kl_obs = obs[np.random.default_rng(args.seed + 1).choice(len(obs), min(args.kl_states, len(obs)), replace=False)]
    result = measure_overoptimization(
        args.env_id,
        proxy,
        obs,
        total_timesteps=args.total_timesteps,
        num_checkpoints=args.num_checkpoints,
        eval_episodes=args.eval_episodes,
        seed=args.seed,
        agent_kwargs=ppo_kwargs(args),
        kl_obs=kl_obs,
    )
    if logger is not None:
        for step, *values in zip(*result, strict=True):
            logger.log(int(step), **{name: float(v) for name, v in zip(CHECKPOINT_METRICS, values, strict=True)})
    true = np.asarray(result.true_return, np.float64)
    summary = {
        "start_true_return": float(true[0]),
        "final_true_return": float(true[-1]),
        "peak_true_return": float(true.max()),
        "mean_true_return": float(true[1:].mean()) if len(true) > 1 else float(true[0]),
        "overoptimization": float(true.max() - true[-1]),
        "final_proxy_return": float(result.proxy_return[-1]),
        "final_policy_kl": float(result.policy_kl[-1]),
        "max_policy_kl": float(np.max(result.policy_kl)),
        "final_visitation_mmd": float(result.visitation_mmd[-1]),
        **info,
        "wall_s": time.perf_counter() - start,
    }
    run_dir = logger.run_dir if logger is not None and logger.run_dir is not None else Path(args.out_dir) / args.name
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(
        run_dir / "summary.json",
        {
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(args).items()},
            "summary": summary,
            "checkpoints": result.to_dict(),
        },
    )
    plot_overoptimization(
        {f"{args.reward_design}, {int(round(100 * args.noise))}% noise": result},
        title=f"{args.env_id}: PPO on a learned reward ({args.labels} labels, seed {args.seed})",
        path=run_dir / "overoptimization.png",
    )
    print(
        f"{args.reward_design} noise {args.noise}: true return {true[0]:.0f} -> {true[-1]:.0f} (peak {true.max():.0f}), "
        f"KL {result.policy_kl[-1]:.2f}, {summary['wall_s']:.0f}s",
        flush=True,
    )
    return summary


if __name__ == "__main__":
    print(main(parse_args(Args)))
