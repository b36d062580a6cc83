"""AIRL and GAIL on fixed-horizon control tasks: imitation return, and the transferred reward g retrained with PPO.

1. An SB3 expert (``expert_algo``, tuned settings) is trained on the true reward of
   ``env_id`` (Pendulum-v1 or HalfCheetah-v5, fixed horizon) and ``demo_episodes`` of its
   deterministic behaviour are saved as demonstrations (``demos.rlab``), or loaded from
   ``demos_path``.
2. AIRL (or GAIL) trains a JAX discriminator against an SB3 generator (``algo``) for
   ``total_timesteps`` env steps.
3. The generator's true return is normalised by the expert's and a uniform-random policy's:
   (R − R_random)/(R_expert − R_random).
4. AIRL only, with ``transfer_total_timesteps`` > 0: the reward transferred to changed dynamics, as
   in Fu et al.'s transfer experiments. The target env is ``env_id`` with its bodies' masses
   times ``transfer_mass_scale`` (:class:`rewardlab_envs.ChangedDynamics`; Pendulum's pole, or
   the MuJoCo bodies ``transfer_bodies``). A fresh PPO agent is trained from scratch there on
   the learned g alone (no potential term, no discriminator updates), and another on the true
   reward with the same budget; the transfer score is g's true return normalised by that
   agent's and a uniform-random policy's in the target env. AIRL's disentanglement argument
   holds for a state-only g (``reward_inputs=("obs",)``, the default); ``("obs", "act")`` is
   the comparison the paper makes.

Run: ``python -m experiments.adversarial_irl --env-id Pendulum-v1 --method airl --algo sac``; the transfer
study is the sweep ``experiments/airl_transfer.toml``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Literal

from rewardlab import RewardFn
from rewardlab._io import atomic_write_json
from rewardlab.irl import AdversarialConfig, load_demonstrations, save_demonstrations, train_adversarial, train_expert
from rewardlab.rewards import as_reward_fn
from rewardlab.rl import (
    DEFAULT_HORIZONS,
    Policy,
    default_num_envs,
    evaluate_policy,
    make_agent,
    make_env,
    make_task_env,
    rollout,
)
from rewardlab.sweeps import Logger, check_choices, parse_args
from rewardlab.wrappers import RewardVecEnvWrapper
from rewardlab_envs import ChangedDynamics


@dataclasses.dataclass(frozen=True)
class Args:
    """Arguments of the adversarial IRL study.

    Attributes:
        env_id: Pendulum-v1 or HalfCheetah-v5 (fixed-horizon episodes).
        method: airl or gail.
        algo: SB3 generator, sac or ppo.
        expert_algo: SB3 expert trained on the true reward, sac or ppo.
        expert_total_timesteps: env steps of expert training.
        demo_episodes: expert episodes kept as demonstrations.
        demos_path: load demonstrations from this file instead of training an expert ("" = train).
        demos_cache: a folder shared by runs: the demonstrations of one (env_id, expert_algo,
            expert_total_timesteps, demo_episodes, seed) are made once, kept there and reused ("" = off).
        total_timesteps: env steps of adversarial training.
        reward_inputs: inputs of g (("obs",): state-only, the transferable AIRL reward; ("obs", "act")).
        hidden_sizes: widths of the discriminator MLPs.
        round_steps: env steps between discriminator rounds.
        updates_per_round: discriminator Adam steps per round.
        discount: γ of the generator and of AIRL's potential term.
        generator_reward: log_odds (Fu et al.'s log D − log(1 − D) = f − log π for AIRL) or shaped
            (AIRL's f alone, the entropy left to the RL algorithm).
        transfer_total_timesteps: PPO env steps on the learned g alone, and on the true reward, in the
            changed-dynamics env (0 = skip; AIRL only).
        transfer_mass_scale: the transfer env's masses are the training env's times this (1 = same dynamics).
        transfer_bodies: MuJoCo bodies whose mass changes (empty: all; Pendulum takes none).
        eval_episodes: episodes per evaluated policy.
        seed: seed of everything.
        out_dir: run folder for results.json and demos.rlab ("" writes nothing).
    """

    env_id: Literal["Pendulum-v1", "HalfCheetah-v5"] = "Pendulum-v1"
    method: Literal["airl", "gail"] = "airl"
    algo: Literal["sac", "ppo"] = "sac"
    expert_algo: Literal["sac", "ppo"] = "sac"
    expert_total_timesteps: int = 10_000
    demo_episodes: int = 10
    demos_path: str = ""
    demos_cache: str = ""
    total_timesteps: int = 15_000
    reward_inputs: tuple[str, ...] = ("obs",)
    hidden_sizes: tuple[int, ...] = (64, 64)
    round_steps: int = 1000
    updates_per_round: int = 16
    discount: float = 0.99
    generator_reward: Literal["log_odds", "shaped"] = "log_odds"
    transfer_total_timesteps: int = 0
    transfer_mass_scale: float = 1.0
    transfer_bodies: tuple[str, ...] = ()
    eval_episodes: int = 10
    seed: int = 0
    out_dir: str = "runs/adversarial_irl"

    def __post_init__(self) -> None:
        check_choices(self)
        for name in (
            "expert_total_timesteps",
            "demo_episodes",
            "total_timesteps",
            "eval_episodes",
            "round_steps",
            "updates_per_round",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
        if not isinstance(self.transfer_total_timesteps, int) or self.transfer_total_timesteps < 0:
            raise ValueError(
                f"transfer_total_timesteps: expected an integer >= 0, got {self.transfer_total_timesteps!r}"
            )
        if not (isinstance(self.transfer_mass_scale, int | float) and 0 < self.transfer_mass_scale < float("inf")):
            raise ValueError(f"transfer_mass_scale: expected a finite number > 0, got {self.transfer_mass_scale!r}")
        if not self.reward_inputs or not set(self.reward_inputs) <= {"obs", "act", "next_obs"}:
            raise ValueError(
                f"reward_inputs: expected a non-empty subset of ('obs', 'act', 'next_obs'), got {self.reward_inputs!r}"
            )

    @property
    def run_name(self) -> str:
        inputs = "-".join(self.reward_inputs)
        return f"{self.env_id}_{self.method}-{self.algo}_{inputs}_seed{self.seed}"


def _normalised(value: float, expert: float, random: float) -> float:
    return (value - random) / (expert - random)


def _true_return(policy: Policy | None, args: Args, mass_scale: float = 1.0) -> float:
    """Mean true return of ``policy`` (None: uniform random) over ``eval_episodes`` fixed-horizon episodes."""
    env = make_env(args.env_id, fixed_horizon=DEFAULT_HORIZONS[args.env_id])
    if mass_scale != 1.0:
        env = ChangedDynamics(env, mass_scale, args.transfer_bodies)
    return evaluate_policy(policy, env, args.eval_episodes, seed=10_000).true_return


def _transfer_agent(args: Args, reward_fn: RewardFn | None) -> float:
    """True return, in the changed-dynamics env, of PPO trained there from scratch on ``reward_fn`` (None: the true reward)."""
    venv = make_task_env(
        args.env_id,
        default_num_envs("ppo", args.env_id),
        args.seed + 7,
        fixed_horizon=DEFAULT_HORIZONS[args.env_id],
        wrapper_class=ChangedDynamics if args.transfer_mass_scale != 1.0 else None,
        wrapper_kwargs={"mass_scale": args.transfer_mass_scale, "bodies": args.transfer_bodies},
    )
    if reward_fn is not None:
        venv = RewardVecEnvWrapper(venv, reward_fn)
    agent = make_agent("ppo", venv, args.env_id, seed=args.seed + 7)
    agent.learn(args.transfer_total_timesteps)
    return _true_return(agent, args, args.transfer_mass_scale)


def main(args: Args, logger: Logger | None = None) -> dict[str, float]:
    """Train (or load) the expert, run AIRL/GAIL, optionally retrain PPO on g; return normalised returns."""
    import torch

    torch.set_num_threads(1)
    start = time.perf_counter()
    out = Path(args.out_dir) / args.run_name if args.out_dir else None
    cached = (
        Path(args.demos_cache)
        / f"{args.env_id}_{args.expert_algo}-{args.expert_total_timesteps}_{args.demo_episodes}ep_seed{args.seed}.rlab"
        if args.demos_cache
        else None
    )
    if args.demos_path or (cached is not None and cached.exists()):
        source = args.demos_path or str(cached)
        demos, metadata = load_demonstrations(source)
        if metadata.get("env_id") != args.env_id:
            raise ValueError(
                f"demos_path: demonstrations in {source} are for {metadata.get('env_id')!r}, expected {args.env_id!r}"
            )
    else:
        expert = train_expert(args.env_id, args.expert_algo, args.expert_total_timesteps, seed=args.seed)
        demo_episodes = rollout(
            expert,
            make_env(args.env_id, fixed_horizon=DEFAULT_HORIZONS[args.env_id]),
            args.demo_episodes,
            seed=args.seed + 1,
        )
        demos = demo_episodes.transitions
        metadata = {
            "env_id": args.env_id,
            "expert_algo": args.expert_algo,
            "expert_total_timesteps": args.expert_total_timesteps,
            "seed": args.seed,
            "demo_return": float(demo_episodes.returns.mean()),
            "expert_return": _true_return(expert, args),
        }
        for path in (out / "demos.rlab" if out is not None else None, cached):
            if path is not None:
                save_demonstrations(path, demos, metadata)
    expert_return = float(metadata.get("expert_return", metadata["demo_return"]))
    random_return = _true_return(None, args)
    expert_seconds = time.perf_counter() - start

    config = AdversarialConfig(
        method=args.method,
        reward_inputs=args.reward_inputs,
        hidden_sizes=args.hidden_sizes,
        discount=args.discount,
        generator_reward=args.generator_reward,
        round_steps=args.round_steps,
        updates_per_round=args.updates_per_round,
    )
    generator_env = RewardVecEnvWrapper(
        make_task_env(
            args.env_id,
            default_num_envs(args.algo, args.env_id),
            args.seed,
            fixed_horizon=DEFAULT_HORIZONS[args.env_id],
        )
    )
    generator = make_agent(args.algo, generator_env, args.env_id, seed=args.seed, gamma=config.discount)
    result = train_adversarial(generator, demos, args.total_timesteps, config, seed=args.seed)
    if logger is not None:
        for record in result.history:
            logger.log(int(record["timestep"]), **{k: v for k, v in record.items() if k != "timestep"})
    imitation_return = _true_return(generator, args)
    summary = {
        "expert_return": expert_return,
        "random_return": random_return,
        "imitation_return": imitation_return,
        "normalized_return": _normalised(imitation_return, expert_return, random_return),
        "discriminator_loss": result.history[-1]["loss"] if result.history else float("nan"),
        "expert_seconds": expert_seconds,
    }
    if args.method == "airl" and args.transfer_total_timesteps > 0:
        transfer_return = _transfer_agent(args, as_reward_fn(result.model, result.params, use="base_reward"))
        oracle_return = _transfer_agent(args, None)
        transfer_random = _true_return(None, args, args.transfer_mass_scale)
        summary["transfer_return"] = transfer_return
        summary["transfer_oracle_return"] = oracle_return
        summary["transfer_random_return"] = transfer_random
        summary["transfer_normalized_return"] = _normalised(transfer_return, oracle_return, transfer_random)
    summary["wall_s"] = time.perf_counter() - start
    if out is not None:
        atomic_write_json(
            out / "results.json", {"args": dataclasses.asdict(args), "summary": summary, "history": result.history}
        )
    return summary


if __name__ == "__main__":
    print(json.dumps(main(parse_args(Args)), indent=1))
