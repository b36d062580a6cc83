"""Quickstart: a reward learned online from synthetic preferences vs the true reward.

On one environment (Pendulum-v1 by default): learn a reward online from a simulated
teacher's preferences while PPO trains on it (:func:`rewardlab.rl.train_pbrl`); train PPO on
the true reward with the same budget; evaluate both and a uniformly random policy on the
true reward (:func:`rewardlab.rl.rollout`, the same episodes for each policy); correlate the
learned reward with the true one on those episodes (Pearson's ρ per transition and per
50-step segment). The figure of merit is the normalised return

    (R_learned − R_random) / (R_true − R_random),

each R the mean true return over ``eval_episodes`` deterministic episodes. It is defined only
when the true-reward agent beats the random policy (R_true > R_random): with a short budget it
may not, and the ratio would then exceed 1 or flip sign for no reason of the learned reward's.
There ``normalized_return`` is NaN, ``normalized_return_note`` says why (it is empty when the
ratio is defined), the reason is printed, and the raw returns are the figures to compare.

``summary.json`` keys: ``env_id``, ``seed``, ``teacher``, ``total_timesteps``,
``feedback_until``; ``return_learned``, ``return_true``, ``return_random`` (mean true returns);
``normalized_return`` and ``normalized_return_note``; ``pearson_transition``,
``pearson_segment``; ``labels_used``, ``wall_s``, ``run_dir``.

The run folder holds ``summary.json``, ``curves.npz`` (both agents' learning curves and
the feedback rounds), ``learning_curve.png``, the reward-model checkpoint
``reward_model.rlab``, the true-reward agent ``ppo_true_reward.zip``, the run's metrics
table and TensorBoard logs (``tensorboard/``: SB3's and the run logger's).

With ``teacher="human"`` the labels come from people: each feedback round's queries are put on
the run's labelling queue (``RUN_DIR/labelling``, clips drawn from the environment's own frames),
``rewardlab label serve RUN_DIR`` serves the page, and training waits for each round's answers. The
labels stay in the run folder: a rerun of the same command trains on them from its first round.

Run: ``rewardlab quickstart`` (or ``make quickstart``), or
``python -m experiments.quickstart --seed 1``; docs/benchmarks.md has the figures.
"""

from __future__ import annotations

import dataclasses
import io
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Literal

import jax
import numpy as np
from stable_baselines3 import PPO

from rewardlab._io import atomic_write_bytes, atomic_write_figure, atomic_write_json
from rewardlab.preferences import Teacher, make_teacher, pearson_correlation
from rewardlab.rewards import RewardModel, RewardNetConfig, as_reward_fn, save_reward_model
from rewardlab.rl import (
    EpisodeReturns,
    PbRLConfig,
    Policy,
    RandomPolicy,
    default_num_envs,
    make_agent,
    make_env,
    make_task_env,
    rollout,
    train_pbrl,
)
from rewardlab.sweeps import Logger, RunLogger, check_choices, parse_args
from rewardlab.wrappers import RewardVecEnvWrapper

SEGMENT_STEPS = 50  # length of the segments whose learned and true returns are correlated


@dataclasses.dataclass(frozen=True)
class Args:
    """Arguments of the quickstart study.

    Attributes:
        env_id: gymnasium environment id.
        total_timesteps: PPO env steps for each of the learned-reward and true-reward agents.
        labels: preference labels the teacher gives.
        teacher: simulated teacher (oracle, stochastic, myopic, skip, equal, mistake), or human: people
            answer through ``rewardlab label serve RUN_DIR`` (``rewardlab.labelling``).
        seed: seed of everything (agents, envs, queries, teacher, evaluation episodes).
        eval_episodes: episodes per policy for the final true-return evaluation.
        ensemble_size: reward-model ensemble members (queries picked by their disagreement).
        feedback_until: fraction of ``total_timesteps`` by which every label is asked
            (``PbRLConfig.last_feedback_fraction``); with 0.3, PPO spends the last 70 % of
            its steps on a reward that no longer changes (docs/benchmarks.md compares 0.3 and 0.6).
        out_dir: parent folder of the run folder.
        run_name: run folder name; empty for the default, which encodes env, reward design and seed.
        parallel: train the true-reward agent in a second process while the learned-reward
            agent trains in this one (one core each; the results are the same as in one process).
        progress: print the stages and show SB3's progress bars.
    """

    env_id: str = "Pendulum-v1"
    total_timesteps: int = 100_000
    labels: int = 200
    teacher: Literal["oracle", "stochastic", "myopic", "skip", "equal", "mistake", "human"] = "oracle"
    seed: int = 0
    eval_episodes: int = 10
    ensemble_size: int = 3
    feedback_until: float = 0.3
    out_dir: Path = Path("runs")
    run_name: str = ""
    parallel: bool = True
    progress: bool = False

    def __post_init__(self) -> None:
        check_choices(self)
        for name in ("total_timesteps", "eval_episodes", "ensemble_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
        if isinstance(self.labels, bool) or not isinstance(self.labels, int) or self.labels < 0:
            raise ValueError(f"labels: expected an integer >= 0, got {self.labels!r}")
        if (
            isinstance(self.feedback_until, bool)
            or not isinstance(self.feedback_until, (int, float))
            or not 0.0 < self.feedback_until <= 1.0
        ):
            raise ValueError(f"feedback_until: expected a fraction in (0, 1], got {self.feedback_until!r}")
        for name in ("parallel", "progress"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}: expected True or False, got {getattr(self, name)!r}")

    @property
    def name(self) -> str:
        """The run folder's name: env, reward design (teacher, label budget) and seed unless ``run_name`` is set."""
        return self.run_name or f"quickstart-{self.env_id}-ppo-pbrl-{self.teacher}-{self.labels}labels-seed{self.seed}"


def _teacher(args: Args, run_dir: Path) -> Teacher:
    """The run's teacher; a human teacher queues its queries in ``run_dir``'s labelling store."""
    if args.teacher != "human":
        return make_teacher(args.teacher)
    from rewardlab.labelling import HumanTeacher, env_renderer, observation_renderer

    try:
        renderer = env_renderer(args.env_id)
    except ValueError:  # an env whose observations do not determine a frame: draw the observations
        renderer = observation_renderer
    print(f"Human labels: run `rewardlab label serve {run_dir}` and open the URL it prints; training waits for them.")
    return HumanTeacher(run_dir, renderer=renderer)


def normalized_return(return_learned: float, return_true: float, return_random: float) -> tuple[float, str]:
    """(R_learned − R_random) / (R_true − R_random) and an empty note; NaN and the reason when undefined.

    The ratio measures the learned-reward agent on the scale from the random policy (0) to
    the true-reward agent (1); that scale exists only when R_true > R_random. Otherwise (a
    short budget, an agent that has not learned yet) the ratio says nothing about the learned
    reward: it would exceed 1 whenever R_learned < R_true < R_random, for instance.

    Returns:
        (normalised return, note): the note is "" when the ratio is defined, else it gives
        the raw returns and why the ratio is undefined (and the ratio is NaN).

    Example:
        >>> normalized_return(-150.0, -130.0, -1000.0)[0] == (-150.0 + 1000.0) / (-130.0 + 1000.0)
        True
        >>> value, note = normalized_return(-900.0, -1200.0, -1000.0)
        >>> value, note.split(":")[0]
        (nan, 'normalized_return undefined')
    """
    values = (return_learned, return_true, return_random)
    if not all(np.isfinite(values)):
        return float("nan"), f"normalized_return undefined: a return is not finite {values}"
    if return_true <= return_random:
        return float("nan"), (
            f"normalized_return undefined: the true-reward agent ({return_true:.1f}) does not beat the random "
            f"policy ({return_random:.1f}), so there is no scale to normalise on; compare the raw returns "
            f"(learned-reward agent {return_learned:.1f}); a longer total_timesteps lets the true-reward agent learn"
        )
    return float((return_learned - return_random) / (return_true - return_random)), ""


def segment_sums(values: np.ndarray, episode: np.ndarray, length: int) -> np.ndarray:
    """Sums over consecutive, non-overlapping ``length``-step segments inside each episode (a short tail is dropped).

    Example:
        >>> segment_sums(np.arange(7.0), np.array([0, 0, 0, 0, 0, 1, 1]), 2).tolist()
        [1.0, 5.0, 11.0]
    """
    sums = []
    for index in np.unique(episode):
        episode_values = values[episode == index]
        usable = (len(episode_values) // length) * length
        sums.append(episode_values[:usable].reshape(-1, length).sum(axis=1))
    return np.concatenate(sums) if sums else np.zeros(0)


def plot_learning_curves(
    path: Path, curves: dict[str, tuple[np.ndarray, np.ndarray]], random_return: float, title: str
) -> None:
    """True episode return against env steps, one smoothed line per agent, and the random policy's return."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for label, (steps, returns) in curves.items():
        if len(steps):
            window = max(1, len(returns) // 20)
            smooth = np.convolve(returns, np.ones(window) / window, mode="valid")
            ax.plot(steps[window - 1 :], smooth, label=label)
    ax.axhline(random_return, color="grey", linestyle="--", label="random policy")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("true episode return")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    atomic_write_figure(path, fig, close=True)


def train_true_agent(
    env_id: str, seed: int, total_timesteps: int, save_path: str, tensorboard_log: str | None, progress: bool
) -> tuple[list[int], list[float]]:
    """PPO on the true reward, saved to ``save_path``; returns its learning curve (timesteps, true returns).

    A module-level function so that a spawned process can run it.
    """
    import torch

    torch.set_num_threads(1)  # one core per agent: two threads each slow SB3 down on 2 cores
    agent = make_agent(
        "ppo",
        make_task_env(env_id, default_num_envs("ppo", env_id), seed),
        env_id,
        seed=seed,
        tensorboard_log=tensorboard_log,
    )
    curve = EpisodeReturns()
    agent.learn(total_timesteps, callback=curve, progress_bar=progress, tb_log_name="PPO_true_reward")
    agent.save(save_path)
    return list(curve.timesteps), list(curve.returns)


def main(args: Args, logger: Logger | None = None) -> dict[str, Any]:
    """Run the quickstart study; return its summary (also written to ``summary.json`` in the run folder).

    Without a ``logger`` the run folder is ``out_dir/<name>`` with its own :class:`RunLogger`;
    a sweep's logger brings its own run folder.
    """
    start = time.perf_counter()
    run_logger = RunLogger(Path(args.out_dir) / args.name) if logger is None else logger
    run_dir = run_logger.run_dir if run_logger.run_dir is not None else Path(args.out_dir) / args.name
    run_dir.mkdir(parents=True, exist_ok=True)
    tensorboard_dir = getattr(run_logger, "tensorboard_dir", None)
    tensorboard_log = None if tensorboard_dir is None else str(tensorboard_dir)
    say = print if args.progress else (lambda message: None)

    true_job = (args.env_id, args.seed, args.total_timesteps, str(run_dir / "ppo_true_reward.zip"), tensorboard_log)
    pool = None
    if args.parallel:
        # A spawned process (not forked: this one has JAX's threads running) trains the true-reward agent.
        pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        true_future = pool.submit(train_true_agent, *true_job, False)
        say(f"[1/3] PPO on the true reward ({args.total_timesteps} steps), in a second process")
    say(
        f"[{2 if args.parallel else 1}/3] PPO on a reward learned from {args.labels} {args.teacher} preferences ({args.total_timesteps} steps)"
    )
    venv = RewardVecEnvWrapper(
        make_task_env(args.env_id, default_num_envs("ppo", args.env_id), args.seed), mode="replace"
    )
    model = RewardModel(
        RewardNetConfig(inputs=("obs", "act"), hidden_sizes=(64, 64), ensemble_size=args.ensemble_size),
        venv.observation_space,
        venv.action_space,
    )
    params = model.init(jax.random.key(args.seed))
    learned_agent = make_agent("ppo", venv, args.env_id, seed=args.seed, tensorboard_log=tensorboard_log)
    learned_curve = EpisodeReturns()
    try:
        result = train_pbrl(
            learned_agent,
            model,
            params,
            _teacher(args, run_dir),
            args.total_timesteps,
            PbRLConfig(labels=args.labels, last_feedback_fraction=float(args.feedback_until)),
            seed=args.seed,
            progress_bar=args.progress,
            callbacks=[learned_curve],
        )
        save_reward_model(run_dir / "reward_model.rlab", model, result.params)
        if pool is None:
            say(f"[2/3] PPO on the true reward ({args.total_timesteps} steps)")
            true_timesteps, true_returns = train_true_agent(*true_job, args.progress)
        else:
            say("      waiting for PPO on the true reward")
            true_timesteps, true_returns = true_future.result()
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    true_agent = PPO.load(run_dir / "ppo_true_reward.zip", device="cpu")

    say(f"[3/3] Evaluating each policy on the true reward ({args.eval_episodes} episodes)")
    policies: dict[str, Policy] = {
        "learned": learned_agent,
        "true": true_agent,
        "random": RandomPolicy(venv.action_space, args.seed),
    }
    episodes = {}
    for name, policy in policies.items():
        env = make_env(args.env_id)
        episodes[name] = rollout(
            policy, env, args.eval_episodes, seed=10_000 + 1000 * args.seed, seed_every_episode=True
        )
        env.close()

    reward_fn = as_reward_fn(model, result.params)
    learned_r, true_r, segments_learned, segments_true = [], [], [], []
    for data in episodes.values():
        t = data.transitions
        predicted = reward_fn(t.obs, t.acts, t.next_obs, t.dones)
        true = np.asarray(t.rews, np.float64)
        learned_r.append(predicted)
        true_r.append(true)
        segments_learned.append(segment_sums(predicted, data.episode, SEGMENT_STEPS))
        segments_true.append(segment_sums(true, data.episode, SEGMENT_STEPS))

    summary: dict[str, Any] = {
        "env_id": args.env_id,
        "seed": args.seed,
        "teacher": args.teacher,
        "total_timesteps": args.total_timesteps,
        "feedback_until": args.feedback_until,
        "return_learned": float(episodes["learned"].returns.mean()),
        "return_true": float(episodes["true"].returns.mean()),
        "return_random": float(episodes["random"].returns.mean()),
        "pearson_transition": pearson_correlation(np.concatenate(learned_r), np.concatenate(true_r)),
        "pearson_segment": pearson_correlation(np.concatenate(segments_learned), np.concatenate(segments_true)),
        "labels_used": 0 if result.preferences is None else len(result.preferences.labels),
        "wall_s": 0.0,
    }
    summary["normalized_return"], summary["normalized_return_note"] = normalized_return(
        summary["return_learned"], summary["return_true"], summary["return_random"]
    )
    if summary["normalized_return_note"]:
        print(f"quickstart: {summary['normalized_return_note']}")

    for step, value in zip(learned_curve.timesteps, learned_curve.returns, strict=True):
        run_logger.log(step, true_return=value)
    for step, value in zip(true_timesteps, true_returns, strict=True):
        run_logger.log(step, true_reward_agent_return=value)
    for record in result.feedback:
        run_logger.log(record.timestep, **record.metrics())

    curves = {
        "PPO on learned reward": (np.asarray(learned_curve.timesteps), np.asarray(learned_curve.returns)),
        "PPO on true reward": (np.asarray(true_timesteps), np.asarray(true_returns)),
    }
    plot_learning_curves(
        run_dir / "learning_curve.png",
        curves,
        summary["return_random"],
        f"{args.env_id}: preference-learned vs true reward",
    )
    buffer = io.BytesIO()
    np.savez(
        buffer,
        learned_timesteps=curves["PPO on learned reward"][0],
        learned_returns=curves["PPO on learned reward"][1],
        true_timesteps=curves["PPO on true reward"][0],
        true_returns=curves["PPO on true reward"][1],
        feedback_timestep=np.asarray([r.timestep for r in result.feedback]),
        feedback_labels=np.asarray([r.labels_used for r in result.feedback]),
        feedback_loss=np.asarray([r.loss for r in result.feedback]),
    )
    atomic_write_bytes(run_dir / "curves.npz", buffer.getvalue())
    summary["wall_s"] = float(time.perf_counter() - start)
    summary["run_dir"] = str(run_dir)
    atomic_write_json(run_dir / "summary.json", summary)
    if logger is None:
        assert isinstance(run_logger, RunLogger)  # made above for a run without a sweep's logger
        run_logger.close()
    return summary


if __name__ == "__main__":
    print(main(parse_args(Args)))
