"""PPO on MiniHack/NLE with an intrinsic reward: extrinsic only, + Motif, + ONI, or + an exploration bonus.

The agent is PPO (``MultiInputPolicy`` with :class:`rewardlab.rl.NetHackExtractor`) on ``num_envs``
copies of the env; its reward is r = r_ext + ``weight``·b, with b from ``rewardlab.intrinsic``
behind ``RewardVecEnvWrapper(mode="add")``:

- ``none``: extrinsic only;
- ``counts``: global × episodic counts over the glyph map (``ProductBonus``, Henaff et al. 2023);
- ``rnd`` (global) and ``e3b`` (episodic) over the glyph crop and the bottom-line stats;
- ``motif``: messages from ``motif_collect_steps`` random steps are paired (``motif_pairs``), the
  LLM labels the pairs (:data:`MOTIF_SHORT_PROMPT` under :data:`MOTIF_SCHEMA`; each pair in both
  orders with ``both_orders``), a Bradley–Terry
  reward per message is fitted, and :class:`MotifBonus` rewards the agent (Klissarov et al. 2024);
- ``oni``: :class:`ONIBonus` labels the learner's messages online in a background thread
  (Zheng et al. 2024), ``reward_model`` hashing, classification or ranking.

The LLM is the local model (``LocalServer``, started for the run) unless ``base_url`` names an
OpenAI-compatible endpoint. Everything a run needs to resume lives in its folder: the PPO
checkpoint (``checkpoint.zip``, every ``checkpoint_every`` steps), ONI's label store
(``labels.sqlite``), the LLM's reply cache (``llm_replies.sqlite``) and Motif's pairs and labels
(``motif_labels.json``) and the bonus's state (``bonus_state.rlab``, saved with each checkpoint:
count tables, RND's and E3B's networks, optimiser states and normalisers, Motif's and ONI's reward
models with their normalisation). A killed run started again with the same folder continues from
its checkpoint with every label and the bonus as it was; only episodic state (per-episode counts,
E3B's C⁻¹) starts afresh, as the resumed run starts new episodes.

Run one: ``python -m experiments.nethack_intrinsic --intrinsic oni``, or ``rewardlab train``;
sweep: ``rewardlab sweep experiments/nethack_intrinsic.toml``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rewardlab.sweeps import Logger, check_choices, parse_args

INTRINSIC = ("none", "counts", "rnd", "e3b", "motif", "oni")
MESSAGE_REWARDS = ("motif", "oni")

log = logging.getLogger("rewardlab.experiments")


@dataclasses.dataclass(frozen=True)
class Args:
    """Arguments of one run.

    Attributes:
        env_id: a MiniHack/NLE id (``MiniHack-Room-5x5-v0``) or any gymnasium id (bonuses other
            than Motif and ONI only).
        intrinsic: none, counts, rnd, e3b, motif or oni.
        total_timesteps: PPO env steps.
        num_envs: envs stepped together (DummyVecEnv).
        n_steps: PPO rollout length per env.
        weight: c in r = r_ext + c·b.
        reward_model: ONI's reward model: hashing, classification or ranking.
        beta: β of the message rewards' episodic count (Motif and ONI).
        motif_pairs: message pairs the LLM labels for Motif.
        motif_collect_steps: random env steps whose messages Motif pairs.
        both_orders: ask the LLM each of Motif's pairs in both orders and average the two labels,
            against its position bias (twice the requests; other intrinsic rewards ignore it).
        base_url: an OpenAI-compatible endpoint (None: start the local model).
        model: the model name at ``base_url`` (None: the client's default).
        checkpoint_every: env steps between checkpoints.
        log_every: env steps between logged points of the learning curve.
        seed: seed of the agent, the envs and the message pairs.
        run_dir: the run folder (None: the sweep logger's folder, else nowhere: no resume).
    """

    env_id: str = "MiniHack-Room-5x5-v0"
    intrinsic: Literal["none", "counts", "rnd", "e3b", "motif", "oni"] = "none"
    total_timesteps: int = 20_000
    num_envs: int = 4
    n_steps: int = 128
    weight: float = 0.1
    reward_model: Literal["hashing", "classification", "ranking"] = "hashing"
    beta: float = 3.0
    motif_pairs: int = 60
    motif_collect_steps: int = 2000
    both_orders: bool = False
    base_url: str | None = None
    model: str | None = None
    checkpoint_every: int = 4096
    log_every: int = 1024
    seed: int = 0
    run_dir: str | None = None

    def __post_init__(self) -> None:
        check_choices(self)
        for name in ("total_timesteps", "num_envs", "n_steps", "motif_pairs", "checkpoint_every", "log_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
        if not isinstance(self.both_orders, bool):
            raise ValueError(f"both_orders: expected true or false, got {self.both_orders!r}")
        if not isinstance(self.env_id, str) or not self.env_id:
            raise ValueError(f"env_id: expected a gymnasium environment id, got {self.env_id!r}")


def is_nethack(env_id: str) -> bool:
    """True for MiniHack and NLE ids (made by ``rewardlab_envs.make_nethack``)."""
    return env_id.removeprefix("rewardlab/").startswith(("MiniHack-", "NetHack"))


def make_env(env_id: str) -> Any:
    """One env: a NetHack-like id through ``rewardlab_envs.make_nethack``, any other through ``gym.make``."""
    import gymnasium as gym

    import rewardlab_envs

    if is_nethack(env_id):
        return rewardlab_envs.make_nethack(env_id.removeprefix("rewardlab/"))
    return gym.make(env_id)


def check_message_env(env: Any, args: Args) -> None:
    """ValueError naming ``intrinsic`` and ``env`` when a message reward is asked of an env without messages."""
    import gymnasium as gym

    space = env.observation_space
    if args.intrinsic in MESSAGE_REWARDS and not (isinstance(space, gym.spaces.Dict) and "message" in space.spaces):
        raise ValueError(
            f"intrinsic: {args.intrinsic!r} rewards game messages and needs an env whose observation has a "
            f"'message' entry (a MiniHack or NLE env); env {args.env_id!r} has {type(space).__name__} observations without one"
        )


def _chat_client(args: Args, run_dir: Path | None, stack: ExitStack) -> Any:
    from rewardlab.llm import ChatClient, LocalServer

    cache: Any = False if run_dir is None else run_dir / "llm_replies.sqlite"
    if args.base_url is None:
        server = stack.enter_context(LocalServer(context_tokens=2048))
        return server.client(cache=cache, timeout_s=600.0)
    return ChatClient(base_url=args.base_url, model=args.model, cache=cache)


def _motif_bonus(args: Args, run_dir: Path | None, client: Any) -> Any:
    from rewardlab._io import atomic_write_json
    from rewardlab.intrinsic import (
        MOTIF_SCHEMA,
        MOTIF_SHORT_PROMPT,
        MotifBonus,
        collect_messages,
        fit_message_rewards,
        label_message_pairs,
        message_pairs,
    )

    saved = None if run_dir is None else run_dir / "motif_labels.json"
    if saved is not None and saved.exists():
        stored = json.loads(saved.read_text())
        if stored.get("both_orders", False) != args.both_orders:
            raise ValueError(
                f"both_orders: the run folder {run_dir} holds Motif labels asked with "
                f"both_orders={stored.get('both_orders', False)}, this run asks both_orders={args.both_orders}; "
                "use the same setting or another run folder"
            )
        pairs = [tuple(p) for p in stored["pairs"]]
        labels = stored["labels"]
    else:
        env = make_env(args.env_id)
        messages = collect_messages(env, args.motif_collect_steps, seed=args.seed)
        env.close()
        pairs = message_pairs(list(messages), args.motif_pairs, seed=args.seed)
        labels = label_message_pairs(
            client,
            pairs,
            prompt=MOTIF_SHORT_PROMPT,
            json_schema=MOTIF_SCHEMA,
            max_tokens=16,
            both_orders=args.both_orders,
        )  # each reply lands in the run's reply cache as it comes: a killed labelling resumes for free
        if saved is not None:
            document = {"pairs": [list(p) for p in pairs], "labels": labels, "both_orders": args.both_orders}
            atomic_write_json(saved, document)
    if all(label is None for label in labels):
        raise ValueError("motif_pairs: the LLM gave no parsable label; nothing to fit")
    return MotifBonus(fit_message_rewards(pairs, labels), beta=args.beta)


def make_bonus(args: Args, env: Any, run_dir: Path | None, stack: ExitStack) -> Any:
    """The intrinsic reward of ``args.intrinsic`` (None for ``none``); LLM resources go on ``stack``."""
    from rewardlab.intrinsic import (
        E3BBonus,
        EpisodicCountBonus,
        GlobalCountBonus,
        LLMLabeller,
        ONIBonus,
        ProductBonus,
        RNDBonus,
    )

    check_message_env(env, args)
    nethack = is_nethack(args.env_id)
    state = ("glyphs",) if nethack else None
    features = ("glyphs_crop", "blstats") if nethack else None
    if args.intrinsic == "none":
        return None
    if args.intrinsic == "counts":
        return ProductBonus(GlobalCountBonus(obs_keys=state), EpisodicCountBonus(obs_keys=state))
    if args.intrinsic == "rnd":
        return RNDBonus(obs_keys=features, seed=args.seed)
    if args.intrinsic == "e3b":
        return E3BBonus(int(env.action_space.n), obs_keys=features, seed=args.seed)
    client = _chat_client(args, run_dir, stack)
    if args.intrinsic == "motif":
        return _motif_bonus(args, run_dir, client)
    store: Any = (run_dir or Path(stack.enter_context(_TemporaryFolder()))) / "labels.sqlite"
    bonus = ONIBonus(LLMLabeller(client), store, reward_model=args.reward_model, beta=args.beta)
    stack.callback(bonus.close)
    return bonus


BONUS_STATE = "bonus_state.rlab"


def save_checkpoint(agent: Any, bonus: Any, checkpoint: Path, bonus_state: Path | None) -> None:
    """The PPO checkpoint, then the bonus's state beside it, each written atomically.

    A kill between the two writes leaves a bonus state one checkpoint older than the agent's:
    :func:`resume_bonus` says so and continues from it.
    """
    import io

    from rewardlab._io import atomic_write_bytes
    from rewardlab.intrinsic import save_bonus_state

    buffer = io.BytesIO()
    agent.save(buffer)
    atomic_write_bytes(checkpoint, buffer.getvalue())
    if bonus is not None and bonus_state is not None:
        save_bonus_state(bonus_state, bonus, env_steps=agent.num_timesteps)


def resume_bonus(bonus: Any, bonus_state: Path | None, env_steps: int) -> None:
    """Continue ``bonus`` from the state saved beside the checkpoint (a run saved before there was one: afresh)."""
    from rewardlab.intrinsic import load_bonus_state

    if bonus_state is None or not bonus_state.exists():
        log.warning(
            "no saved bonus state in %s: the bonus starts afresh", None if bonus_state is None else bonus_state.parent
        )
        return
    saved_at = load_bonus_state(bonus_state, bonus)
    if saved_at != env_steps:
        log.warning(
            "the bonus state was saved at %d env steps, the checkpoint at %d; continuing from it", saved_at, env_steps
        )
    else:
        log.info("bonus state restored (%d env steps)", saved_at)


class _TemporaryFolder:
    def __enter__(self) -> str:
        import tempfile

        self._folder = tempfile.TemporaryDirectory()
        return self._folder.name

    def __exit__(self, *exc: object) -> None:
        self._folder.cleanup()


def main(args: Args, logger: Logger | None = None) -> dict[str, Any]:
    """Train; return the extrinsic return of the last episodes, the episodes, r_ext per env step, steps/s and the labels.

    ``reward_per_step`` (the extrinsic reward summed over this session's env steps ÷ those steps; in
    the log, over each ``log_every`` window) measures runs too short to finish episodes, as on
    NetHackScore, where it is the in-game score gained per step.
    """
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    from rewardlab.rl import NetHackExtractor
    from rewardlab.wrappers import RewardVecEnvWrapper

    torch.set_num_threads(1)
    run_dir = Path(args.run_dir) if args.run_dir else (logger.run_dir if logger is not None else None)
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
    probe = make_env(args.env_id)
    with ExitStack() as stack:
        bonus = make_bonus(args, probe, run_dir, stack)
        probe.close()
        venv: Any = DummyVecEnv([lambda: Monitor(make_env(args.env_id)) for _ in range(args.num_envs)])
        venv.seed(args.seed)
        if bonus is not None:
            venv = RewardVecEnvWrapper(venv, bonus, mode="add", weight=args.weight, name=args.intrinsic)
        checkpoint = None if run_dir is None else run_dir / "checkpoint.zip"
        bonus_state = None if run_dir is None else run_dir / BONUS_STATE
        if checkpoint is not None and checkpoint.exists():
            agent = PPO.load(checkpoint, env=venv, device="cpu")
            log.info("resuming %s at %d env steps", run_dir, agent.num_timesteps)
            if bonus is not None:
                resume_bonus(bonus, bonus_state, agent.num_timesteps)
        else:
            nethack = is_nethack(args.env_id)
            agent = PPO(
                "MultiInputPolicy" if nethack else "MlpPolicy",
                venv,
                n_steps=args.n_steps,
                batch_size=min(256, args.n_steps * args.num_envs),
                n_epochs=4,
                ent_coef=0.01,
                learning_rate=3e-4,
                policy_kwargs=dict(features_extractor_class=NetHackExtractor) if nethack else None,
                seed=args.seed,
                device="cpu",
            )
        returns: list[float] = []
        extrinsic = {"window": 0.0, "window_steps": 0, "total": 0.0, "steps": 0}  # r_ext summed per step

        class Curve(BaseCallback):
            def __init__(self) -> None:
                super().__init__()
                self.next_log = (agent.num_timesteps // args.log_every + 1) * args.log_every
                self.next_save = (agent.num_timesteps // args.checkpoint_every + 1) * args.checkpoint_every

            def _on_step(self) -> bool:
                for info, reward in zip(self.locals["infos"], self.locals["rewards"], strict=True):
                    if "episode" in info:
                        returns.append(float(info["episode"]["r"]))  # Monitor sits below the bonus: r_ext only
                    r_ext = float(info.get("true_reward", reward))  # the bonus's wrapper keeps r_ext there
                    extrinsic["window"] += r_ext
                    extrinsic["total"] += r_ext
                extrinsic["window_steps"] += len(self.locals["infos"])
                extrinsic["steps"] += len(self.locals["infos"])
                if self.num_timesteps >= self.next_log:
                    self.next_log += args.log_every
                    recent = returns[-20:]
                    metrics = {"return": float(np.mean(recent)) if recent else 0.0, "episodes": float(len(returns))}
                    if extrinsic["window_steps"]:
                        metrics["reward_per_step"] = extrinsic["window"] / extrinsic["window_steps"]
                        extrinsic["window"], extrinsic["window_steps"] = 0.0, 0
                    if hasattr(bonus, "stats"):
                        metrics.update({f"oni_{k}": v for k, v in bonus.stats().items()})
                    if logger is not None:
                        logger.log(self.num_timesteps, **metrics)
                if checkpoint is not None and self.num_timesteps >= self.next_save:
                    self.next_save += args.checkpoint_every
                    save_checkpoint(agent, bonus, checkpoint, bonus_state)
                return True

        started, steps_before = time.perf_counter(), agent.num_timesteps
        remaining = args.total_timesteps - agent.num_timesteps
        if remaining > 0:
            agent.learn(remaining, callback=Curve(), reset_num_timesteps=False)
        wall = time.perf_counter() - started
        if checkpoint is not None:
            save_checkpoint(agent, bonus, checkpoint, bonus_state)
        summary: dict[str, Any] = {
            "return": float(np.mean(returns[-50:])) if returns else float("nan"),
            "episodes": len(returns),
            "reward_per_step": extrinsic["total"] / extrinsic["steps"] if extrinsic["steps"] else float("nan"),
            "env_steps": int(agent.num_timesteps),
            "steps_per_s": (agent.num_timesteps - steps_before) / wall if wall > 0 else float("nan"),
        }
        if hasattr(bonus, "stats"):
            summary.update({f"oni_{k}": v for k, v in bonus.stats().items()})
            summary["annotator_error"] = None if bonus.error is None else f"{type(bonus.error).__name__}: {bonus.error}"
        venv.close()
    if "oni_labels" in summary and bonus is not None:  # the worker stored its last batch on closing
        summary["oni_labels"] = float(len(bonus.store.labels()))
    if run_dir is not None:
        from rewardlab._io import atomic_write_json

        atomic_write_json(run_dir / "summary.json", summary)
    return summary


if __name__ == "__main__":
    print(main(parse_args(Args)))
