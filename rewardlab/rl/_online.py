"""Online preference-based RL with Stable-Baselines3 agents.

The loop alternates, inside one SB3 ``learn`` call: the agent collects experience on
the current learned reward; transitions go to a buffer; at each feedback round,
candidate fragment pairs are sampled from the buffer, the most informative ones are
selected, a teacher labels them, the reward model is trained on every label so far
and the new reward is swapped into the environment wrapper. For off-policy agents
(SAC) the replay buffer's rewards are relabelled after every reward update, as in
PEBBLE (Lee et al. 2021).

References:
    Christiano et al., "Deep reinforcement learning from human preferences", NeurIPS 2017.
    Lee, Smith & Abbeel, "PEBBLE: Feedback-efficient interactive RL via relabeling
    experience and unsupervised pre-training", ICML 2021.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple, Protocol, runtime_checkable

import jax
import numpy as np
import optax
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback

from rewardlab._types import FragmentPairs, Preferences, RewardFn
from rewardlab.preferences import (
    PairScorer,
    PreferenceModel,
    RewardTrainer,
    Teacher,
    TransitionBuffer,
    check_preference_model,
    label,
    preference_accuracy,
    select_queries,
)
from rewardlab.rewards import RewardModel, RewardParams, as_reward_fn
from rewardlab.rl._schedule import QUERY_SCHEDULES, labels_per_round
from rewardlab.wrappers import RewardVecEnvWrapper


@dataclasses.dataclass(frozen=True)
class PbRLConfig:
    """Settings of the online preference-learning loop.

    Attributes:
        labels: label budget over the whole run.
        num_rounds: number of feedback rounds; labels are split by ``query_schedule``.
        first_feedback_step: env steps (summed over envs) of experience collected before the
            first round; later rounds are spread evenly up to ``last_feedback_fraction`` of
            the training budget.
        last_feedback_fraction: fraction of ``total_timesteps`` by which all labels are asked.
        fragment_length: steps per segment σ.
        query_method: ``uniform``, ``disagreement`` or ``entropy``.
        candidate_multiplier: candidate pairs sampled per query asked (pool for selection).
        query_schedule: one of ``QUERY_SCHEDULES``.
        reward_epochs: passes over all labels at each round.
        reward_batch_size: pairs per gradient step.
        reward_learning_rate: Adam step size of the reward model.
        buffer_capacity_steps: vec-env steps kept in the fragment buffer.
        standardize_reward: rescale the learned reward to zero mean, unit variance over
            the buffer after each update (Bradley–Terry fixes the reward only up to a shift
            and, with saturated labels, up to scale; RL agents prefer unit scale).
        preference_model: the preference model of query scoring and reward training (score,
            temperature, in-segment discount, label noise); under ``PreferenceModel("regret")`` the
            reward model must have ``advantage``, e.g. ``ContinuousRegretModel``.
    """

    labels: int = 200
    num_rounds: int = 10
    first_feedback_step: int = 4096
    last_feedback_fraction: float = 0.6
    fragment_length: int = 50
    query_method: str = "disagreement"
    candidate_multiplier: int = 8
    query_schedule: str = "constant"
    reward_epochs: int = 30
    reward_batch_size: int = 32
    reward_learning_rate: float = 3e-4
    buffer_capacity_steps: int = 100_000
    standardize_reward: bool = True
    preference_model: PreferenceModel = PreferenceModel()

    def __post_init__(self) -> None:
        positive = (
            "num_rounds",
            "fragment_length",
            "candidate_multiplier",
            "reward_epochs",
            "reward_batch_size",
            "buffer_capacity_steps",
        )
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
        if not isinstance(self.labels, int) or self.labels < 0:
            raise ValueError(f"labels: expected an integer >= 0, got {self.labels!r}")
        if self.first_feedback_step < 0:
            raise ValueError(f"first_feedback_step: expected >= 0, got {self.first_feedback_step!r}")
        if not 0.0 < self.last_feedback_fraction <= 1.0:
            raise ValueError(f"last_feedback_fraction: expected a value in (0, 1], got {self.last_feedback_fraction!r}")
        if self.query_schedule not in QUERY_SCHEDULES:
            raise ValueError(f"query_schedule: expected one of {QUERY_SCHEDULES}, got {self.query_schedule!r}")
        if not self.reward_learning_rate > 0:
            raise ValueError(f"reward_learning_rate: expected > 0, got {self.reward_learning_rate!r}")
        check_preference_model(self.preference_model)


class StandardizedRewardFn:
    """``(r − shift) / scale`` of a wrapped ``RewardFn``; the statistics are set explicitly."""

    def __init__(self, reward_fn: RewardFn, shift: float = 0.0, scale: float = 1.0) -> None:
        self.reward_fn = reward_fn
        self.shift = float(shift)
        self.scale = float(scale)

    @property
    def model(self) -> Any:
        return getattr(self.reward_fn, "model", None)

    def __call__(self, obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
        raw = self.reward_fn(obs, acts, next_obs, dones)
        return ((raw - self.shift) / self.scale).astype(np.float32, copy=False)


class FeedbackRecord(NamedTuple):
    """Figures of one feedback round."""

    timestep: int  # agent env steps when the round ran
    labels_used: int  # labels in the dataset after the round (skipped queries excluded)
    queries_asked: int  # queries put to the teacher in this round
    loss: float  # final epoch's mean training loss
    train_accuracy: float  # final epoch's preference accuracy on the labels
    heldout_accuracy: float  # accuracy on this round's new labels before training on them (NaN in round 0)

    def metrics(self) -> dict[str, float]:
        """The round's figures by name, without ``timestep``: ``logger.log(record.timestep, **record.metrics())``."""
        return {name: float(value) for name, value in self._asdict().items() if name != "timestep"}


class PbRLResult(NamedTuple):
    """What ``train_pbrl`` returns; the caller decides what to log or save."""

    params: RewardParams  # final reward-model parameters
    preferences: Preferences | None  # every label collected
    feedback: list[FeedbackRecord]  # one record per round
    episodes: dict[str, np.ndarray]  # ``timestep``, ``learned_return``, ``true_return`` per finished episode


def _concat_preferences(a: Preferences | None, b: Preferences) -> Preferences:
    if a is None:
        return b
    return jax.tree.map(lambda x, y: np.concatenate([np.asarray(x), np.asarray(y)], axis=0), a, b)


def _reward_factors(infos: Any) -> np.ndarray | None:
    """``[num_envs, K]`` reward factors from the envs' ``info["reward_factors"]`` (HERON), or None if absent."""
    if not infos or any("reward_factors" not in info for info in infos):
        return None
    return np.stack([np.asarray(info["reward_factors"], np.float32) for info in infos])


@runtime_checkable
class DatasetTeacher(Protocol):
    """A teacher that keeps the labelled dataset itself (``rewardlab.labelling.HumanTeacher``).

    The online loop then trains on ``training_preferences()`` read each round instead of
    appending each round's labels: labels may arrive late, be withdrawn or change.
    """

    def __call__(self, pairs: FragmentPairs, rng: np.random.Generator) -> np.ndarray: ...

    def training_preferences(self) -> Preferences | None: ...


class PreferenceFeedbackCallback(BaseCallback):
    """SB3 callback that runs the preference-feedback rounds during ``agent.learn``.

    The agent's env must be (or contain, outermost) a ``RewardVecEnvWrapper`` in
    ``replace`` mode: its ``last_transitions`` feed the buffer and its reward function
    is swapped after each update. Learned and true episode returns are logged as
    ``pbrl/learned_return`` and ``pbrl/true_return`` (TensorBoard when the agent has a
    ``tensorboard_log``), and feedback-round figures under ``pbrl/*``. When the envs report
    ``info["reward_factors"]`` (``rewardlab_envs.make``) the buffer keeps them, so fragment
    pairs carry ``factors`` for teachers that read them (``HeronTeacher``).
    """

    def __init__(
        self,
        reward_wrapper: RewardVecEnvWrapper,
        model: RewardModel,
        params: RewardParams,
        teacher: Teacher,
        config: PbRLConfig,
        total_timesteps: int,
        seed: int = 0,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        self.reward_wrapper = reward_wrapper
        self.reward_model = model
        self.params = params
        self.teacher = teacher
        self.config = config
        self.rng = np.random.default_rng(seed)
        self.key = jax.random.key(seed)
        self.optimizer = optax.adam(config.reward_learning_rate)
        self.opt_state = self.optimizer.init(params.net)
        # Kept for the whole run: query scoring and reward training each compile once, not once per round.
        self.scorer = PairScorer(model, preference_model=config.preference_model)
        self.trainer = RewardTrainer(
            model, self.optimizer, batch_size=config.reward_batch_size, preference_model=config.preference_model
        )
        self.preferences: Preferences | None = None
        self.feedback: list[FeedbackRecord] = []
        num_envs = reward_wrapper.num_envs
        self.buffer = TransitionBuffer(
            capacity_steps=max(1, config.buffer_capacity_steps // num_envs),
            num_envs=num_envs,
            observation_space=reward_wrapper.observation_space,
            action_space=reward_wrapper.action_space,
        )
        self.labels_schedule = labels_per_round(config.labels, config.num_rounds, config.query_schedule)
        last = max(config.first_feedback_step, int(config.last_feedback_fraction * total_timesteps))
        self.round_steps = np.linspace(config.first_feedback_step, last, config.num_rounds).astype(np.int64)
        self.next_round = 0
        self._learned_sum = np.zeros(num_envs)
        self._true_sum = np.zeros(num_envs)
        self._episodes: dict[str, list[float]] = {"timestep": [], "learned_return": [], "true_return": []}
        # One host reward function for the whole run; each update swaps its parameters
        # (set_params), so its jitted path compiles once per batch-size bucket, not per round.
        self._base_fn = as_reward_fn(model, params)
        self._reward_fn = StandardizedRewardFn(self._base_fn)
        reward_wrapper.set_reward_fn(self._reward_fn)

    # SB3 hooks -----------------------------------------------------------------------
    def _on_step(self) -> bool:
        batch = self.reward_wrapper.last_transitions
        assert batch is not None  # SB3 calls _on_step after a step of the wrapper
        self.buffer.add(
            batch.obs,
            batch.acts,
            batch.next_obs,
            batch.dones,
            batch.rews,
            _reward_factors(self.locals.get("infos")),
            terminated=batch.terminated,
        )
        self._learned_sum += np.asarray(self.locals["rewards"], dtype=np.float64)
        self._true_sum += np.asarray(batch.rews, dtype=np.float64)
        for env_index in np.flatnonzero(batch.dones):
            self._episodes["timestep"].append(self.num_timesteps)
            self._episodes["learned_return"].append(self._learned_sum[env_index])
            self._episodes["true_return"].append(self._true_sum[env_index])
            self.logger.record_mean("pbrl/learned_return", self._learned_sum[env_index])
            self.logger.record_mean("pbrl/true_return", self._true_sum[env_index])
            self._learned_sum[env_index] = 0.0
            self._true_sum[env_index] = 0.0
        while self.next_round < self.config.num_rounds and self.num_timesteps >= self.round_steps[self.next_round]:
            self._feedback_round(int(self.labels_schedule[self.next_round]))
            self.next_round += 1
        return True

    # Feedback --------------------------------------------------------------------------
    def _feedback_round(self, num_queries: int) -> None:
        cfg = self.config
        if num_queries > 0 and self.buffer.can_sample(cfg.fragment_length):
            candidates = self.buffer.sample_pairs(num_queries * cfg.candidate_multiplier, cfg.fragment_length, self.rng)
            queries = select_queries(self.scorer, self.params, candidates, num_queries, cfg.query_method, self.rng)
            new = label(queries, self.teacher, self.rng)
            heldout = float("nan")
            if len(new.labels) and self.preferences is not None:
                heldout = float(preference_accuracy(self.scorer, self.params, new))
            if isinstance(self.teacher, DatasetTeacher):
                # The teacher keeps the dataset (a human teacher's label store): read it whole, with
                # late labels, undone and changed answers as they are now.
                self.preferences = self.teacher.training_preferences()
            elif len(new.labels):
                self.preferences = _concat_preferences(self.preferences, new)
            self._train_reward()
            loss, train_accuracy = self._last_train
            record = FeedbackRecord(
                timestep=int(self.num_timesteps),
                labels_used=0 if self.preferences is None else len(self.preferences.labels),
                queries_asked=num_queries,
                loss=loss,
                train_accuracy=train_accuracy,
                heldout_accuracy=heldout,
            )
            self.feedback.append(record)
            for name, value in record.metrics().items():
                if not math.isnan(value):
                    self.logger.record(f"pbrl/{name}", value)

    def _train_reward(self) -> None:
        self._last_train = (float("nan"), float("nan"))
        if self.preferences is None:
            return
        self.key, train_key = jax.random.split(self.key)
        self.params, self.opt_state, metrics = self.trainer.train(
            self.params,
            self.opt_state,
            self.preferences,
            train_key,
            epochs=self.config.reward_epochs,
            min_dataset_size=self.config.labels,  # one compilation for the whole run
        )
        self._last_train = (float(np.asarray(metrics["loss"])[-1]), float(np.asarray(metrics["accuracy"])[-1]))
        base = self._base_fn
        base.set_params(self.params)
        shift, scale = 0.0, 1.0
        if self.config.standardize_reward:
            sample = self.buffer.sample_transitions(min(len(self.buffer), 20_000), self.rng)
            values = base(sample.obs, sample.acts, sample.next_obs, sample.dones)
            shift, scale = float(values.mean()), float(max(values.std(), 1e-6))
        self._reward_fn = StandardizedRewardFn(base, shift, scale)
        self.reward_wrapper.set_reward_fn(self._reward_fn)
        replay = getattr(self.model, "replay_buffer", None)  # ``self.model`` is the SB3 agent
        if isinstance(replay, ReplayBuffer):
            relabel_replay_buffer(replay, self._reward_fn, self.model)
            # SB3 stores the current step's transition after this callback returns: rescore it too.
            batch = self.reward_wrapper.last_transitions
            assert batch is not None  # set by the step that filled the rollout
            rewards = self.locals.get("rewards")
            if rewards is not None:
                rewards[...] = self._reward_fn(batch.obs, batch.acts, batch.next_obs, batch.dones)

    def result(self) -> PbRLResult:
        """The loop's outputs so far."""
        episodes = {name: np.asarray(values) for name, values in self._episodes.items()}
        return PbRLResult(self.params, self.preferences, list(self.feedback), episodes)


def relabel_replay_buffer(replay: ReplayBuffer, reward_fn: RewardFn, agent: Any, chunk: int = 4096) -> None:
    """Rewrite an SB3 replay buffer's rewards with ``reward_fn`` (PEBBLE relabelling).

    SB3 stores actions squashed to [-1, 1] for Box action spaces; they are unscaled back
    to the env's action range before scoring, so the reward model sees what it was
    trained on.
    """
    size = replay.buffer_size if replay.full else replay.pos
    if size == 0:
        return
    if replay.optimize_memory_usage:
        raise ValueError(
            "relabel_replay_buffer: replay buffers with optimize_memory_usage=True do not keep s'; create the agent with optimize_memory_usage=False"
        )
    num_envs = replay.n_envs
    obs = replay.observations[:size].reshape(size * num_envs, *replay.obs_shape)
    next_obs = replay.next_observations[:size].reshape(size * num_envs, *replay.obs_shape)
    acts = replay.actions[:size].reshape(size * num_envs, *replay.actions.shape[2:])
    dones = replay.dones[:size].reshape(size * num_envs)
    if (
        hasattr(agent, "policy")
        and hasattr(agent.policy, "unscale_action")
        and getattr(agent.policy, "squash_output", False)
    ):
        acts = agent.policy.unscale_action(acts)
    rewards = np.empty(size * num_envs, dtype=np.float32)
    for start in range(0, size * num_envs, chunk):
        stop = min(start + chunk, size * num_envs)
        rewards[start:stop] = reward_fn(obs[start:stop], acts[start:stop], next_obs[start:stop], dones[start:stop])
    replay.rewards[:size] = rewards.reshape(size, num_envs)


def train_pbrl(
    agent: Any,
    model: RewardModel,
    params: RewardParams,
    teacher: Teacher,
    total_timesteps: int,
    config: PbRLConfig = PbRLConfig(),
    seed: int = 0,
    progress_bar: bool = False,
    callbacks: list[BaseCallback] | None = None,
) -> PbRLResult:
    """Train an SB3 agent on a reward learned online from preferences.

    Args:
        agent: an SB3 algorithm (PPO, SAC, ...) whose env is a ``RewardVecEnvWrapper``
            in ``replace`` mode around the task's VecEnv.
        model: the reward model; ``params`` its initial parameters.
        teacher: labels fragment pairs (a simulated teacher, or a human interface).
        total_timesteps: agent env steps.
        config: loop settings.
        seed: seed of fragment sampling, query selection, teacher noise and reward training.
        progress_bar: show SB3's progress bar.
        callbacks: extra SB3 callbacks run alongside.

    Returns:
        ``PbRLResult`` with the final reward parameters, the labels and per-round figures.

    Raises:
        ValueError: the agent's env is not a ``RewardVecEnvWrapper`` or ``total_timesteps`` < 1.
    """
    if not isinstance(total_timesteps, int) or total_timesteps < 1:
        raise ValueError(f"total_timesteps: expected an integer >= 1, got {total_timesteps!r}")
    env = agent.get_env()
    if not isinstance(env, RewardVecEnvWrapper):
        raise ValueError(
            f"agent: expected an agent whose env is a RewardVecEnvWrapper (outermost), got {type(env).__name__}"
        )
    feedback = PreferenceFeedbackCallback(env, model, params, teacher, config, total_timesteps, seed=seed)
    agent.learn(total_timesteps, callback=[feedback, *(callbacks or [])], progress_bar=progress_bar)
    return feedback.result()
