"""Simulated teachers that label fragment pairs from the true reward (B-Pref).

A teacher is any callable ``(pairs, rng) -> labels [B] float32`` with
``labels[b] = P(σ¹ ≻ σ²)`` (1: σ¹ preferred, 0: σ² preferred, 0.5: equally preferable,
NaN: skipped). The B-Pref behaviours are small stages that compose like ``optax.chain``:

* ``oracle()``: label 1[R¹ > R²] (0.5 on an exact tie).
* ``stochastic(rationality)``: label ~ Bernoulli(exp(βR¹) / (exp(βR¹) + exp(βR²))), β the rationality.
* ``myopic(gamma)``: the decision uses R = Σ_t γ^{L−1−t} r_t (recent steps weigh more).
* ``skip(threshold)``: no label (NaN) when max(R¹, R²) < threshold (undiscounted returns).
* ``equal(margin)``: label 0.5 when |R¹ − R²| < margin (undiscounted returns).
* ``mistake(eps)``: flip the decided label with probability ε.
* ``regret(advantage_fn)``: the decision uses −regret(σ) = Σ_t A*(s_t, a_t) of the true reward
  (Knox et al.'s regret preference model) instead of the partial return.

``compose(myopic(0.9), stochastic(rationality=1.0), mistake(0.1))`` applies the stages in order
to a ``TeacherState``; whatever the order, skipped pairs end as NaN and equal pairs as 0.5
(B-Pref applies the equal rule after mistakes, and 1 − 0.5 = 0.5 anyway). Return
transforms (``myopic``) must come before deciders (``oracle``, ``stochastic``); when no
decider is given the oracle decides. ``SimulatedTeacher`` bundles the B-Pref settings;
``make_teacher`` (in the teacher registry) builds a teacher by name.

Conventions that differ from B-Pref's code: B-Pref's label 1 means σ² preferred; here
1 means σ¹ preferred. B-Pref's rationality constant β is the teachers' ``rationality`` (P = logistic(β ΔR)),
the inverse of the ``temperature`` τ of ``preference_loss`` (P = logistic(ΔR / τ)); the two
agree at 1. B-Pref sets the skip and equal thresholds to ε_skip/ε_equal times the mean
true return of a segment-length window, which breaks for negative rewards; here they are
either absolute (``threshold``/``margin``) or, when omitted, a quantile of the queried
batch (``quantile``): the q-quantile of all 2B segment returns for skip, of |R¹ − R²| for
equal.

References:
    Lee, Smith, Dragan & Abbeel, "B-Pref: Benchmarking preference-based reinforcement
    learning", NeurIPS 2021 Datasets and Benchmarks.
"""

from __future__ import annotations

import abc
import dataclasses
import math
from typing import Any, NamedTuple, Protocol, runtime_checkable

import jax
import numpy as np

from rewardlab._checks import as_numeric_array, check_finite_array, check_optional_real, check_real
from rewardlab._types import FragmentPairs, Preferences
from rewardlab.preferences._bradley_terry import check_fragment_pairs


@runtime_checkable
class Teacher(Protocol):
    """Labels fragment pairs: ``(pairs, rng) -> labels [B] float32`` (P(σ¹ ≻ σ²); NaN = skipped)."""

    def __call__(self, pairs: FragmentPairs, rng: np.random.Generator) -> np.ndarray: ...


class TeacherState(NamedTuple):
    """What the stages of a composed teacher pass along."""

    returns: np.ndarray  # [B, 2] float64 returns the decision uses (myopic stages discount them)
    labels: np.ndarray | None  # [B] float64 decided labels in [0, 1]; None until a decider ran
    skipped: np.ndarray  # [B] bool: no label
    tied: np.ndarray  # [B] bool: equally preferable (label 0.5)


def undiscounted_returns(pairs: FragmentPairs) -> np.ndarray:
    """True segment returns Σ_t r_t of every pair: ``[B, 2]`` float64."""
    return np.asarray(pairs.rews, np.float64).sum(axis=-1)


def _initial_state(pairs: FragmentPairs) -> TeacherState:
    returns = undiscounted_returns(pairs)
    num_pairs = returns.shape[0]
    return TeacherState(returns, None, np.zeros(num_pairs, bool), np.zeros(num_pairs, bool))


def _oracle_labels(returns: np.ndarray) -> np.ndarray:
    return np.where(returns[:, 0] > returns[:, 1], 1.0, np.where(returns[:, 0] < returns[:, 1], 0.0, 0.5))


def _final_labels(state: TeacherState) -> np.ndarray:
    labels = _oracle_labels(state.returns) if state.labels is None else state.labels
    labels = np.where(state.tied, 0.5, labels)
    return np.where(state.skipped, np.nan, labels).astype(np.float32)


class TeacherStage(abc.ABC):
    """Base of the teacher stages: ``update(pairs, state, rng) -> state``; called alone a stage is a full teacher.

    A new stage subclasses it (a frozen dataclass of its settings) and implements ``update``;
    ``compose`` chains stages, and ``stage(pairs, rng)`` is ``compose(stage)(pairs, rng)``.
    """

    @abc.abstractmethod
    def update(self, pairs: FragmentPairs, state: TeacherState, rng: np.random.Generator) -> TeacherState:
        """Refine the teacher state (returns, labels, skip and tie masks) of a batch of pairs."""

    def __call__(self, pairs: FragmentPairs, rng: np.random.Generator) -> np.ndarray:
        return compose(self)(pairs, rng)


@dataclasses.dataclass(frozen=True)
class oracle(TeacherStage):  # noqa: N801 - lowercase like optax transforms
    """Perfectly rational decision: 1[R¹ > R²], 0.5 on an exact tie.

    Example:
        >>> import numpy as np
        >>> from rewardlab.preferences import synthetic_pairs
        >>> oracle()(synthetic_pairs(np.array([[1.0, 0.0], [0.0, 2.0]]), length=1), np.random.default_rng(0))
        array([1., 0.], dtype=float32)
    """

    def update(self, pairs: FragmentPairs, state: TeacherState, rng: np.random.Generator) -> TeacherState:
        return state._replace(labels=_oracle_labels(state.returns))


@dataclasses.dataclass(frozen=True)
class stochastic(TeacherStage):  # noqa: N801
    """Boltzmann-rational decision: label ~ Bernoulli(logistic(β (R¹ − R²))).

    Attributes:
        rationality: β > 0 (B-Pref's convention; β → ∞ is the oracle).
    """

    rationality: float = 1.0

    def __post_init__(self) -> None:
        check_real("rationality", self.rationality, low=0.0, high=math.inf, low_open=True, allow_inf=True)

    def update(self, pairs: FragmentPairs, state: TeacherState, rng: np.random.Generator) -> TeacherState:
        if math.isinf(self.rationality):
            return state._replace(labels=_oracle_labels(state.returns))
        difference = self.rationality * (state.returns[:, 0] - state.returns[:, 1])
        probability = 0.5 * (1.0 + np.tanh(0.5 * difference))  # logistic, overflow-free
        return state._replace(labels=(rng.random(len(probability)) < probability).astype(np.float64))


@dataclasses.dataclass(frozen=True)
class regret(TeacherStage):  # noqa: N801
    """Decide on −regret(σ) = Σ_t A*(s_t, a_t) of the true reward instead of the partial return.

    With ``stochastic(rationality)`` after it, P(σ¹ ≻ σ²) = logistic(β (regret(σ²) − regret(σ¹))):
    the regret preference model of Knox et al., "Models of human preference for learning
    reward functions", TMLR 2024. Skip and equal stages still look at the partial return.

    Attributes:
        advantage_fn: ``(obs [N], acts [N], next_obs [N], dones [N]) -> [N]`` optimal advantage of the
            true reward (``rewardlab.preferences.tabular_advantage_fn(mdp)`` for tabular MDPs).

    Example:
        >>> import numpy as np
        >>> from rewardlab.preferences import synthetic_pairs
        >>> pairs = synthetic_pairs(np.array([[5.0, 0.0]]), length=2)  # σ¹ has the larger partial return ...
        >>> pairs = pairs._replace(acts=np.array([[[[1.0], [1.0]], [[0.0], [0.0]]]]))
        >>> advantage = lambda obs, acts, next_obs, dones: -np.asarray(acts)[:, 0]  # ... but action 1 costs regret 1
        >>> compose(regret(advantage), oracle())(pairs, np.random.default_rng(0))
        array([0.], dtype=float32)
    """

    advantage_fn: Any

    def __post_init__(self) -> None:
        if not callable(self.advantage_fn):
            raise ValueError(
                f"advantage_fn: expected a callable (obs, acts, next_obs, dones) -> [N], got {type(self.advantage_fn).__name__}"
            )

    def update(self, pairs: FragmentPairs, state: TeacherState, rng: np.random.Generator) -> TeacherState:
        if state.labels is not None:
            raise ValueError(
                "regret: a return transform must come before the deciders (oracle, stochastic) in compose()"
            )
        shape = np.shape(pairs.dones)
        flat = lambda x: np.reshape(np.asarray(x), (int(np.prod(shape)), *np.shape(x)[3:]))  # noqa: E731
        advantages = np.asarray(
            self.advantage_fn(
                jax.tree.map(flat, pairs.obs), flat(pairs.acts), jax.tree.map(flat, pairs.next_obs), flat(pairs.dones)
            ),
            np.float64,
        )
        if advantages.shape != (int(np.prod(shape)),):
            raise ValueError(
                f"advantage_fn: expected {int(np.prod(shape))} advantages ([B*2*L]), got shape {advantages.shape}"
            )
        check_finite_array("advantage_fn", advantages)
        return state._replace(returns=advantages.reshape(shape).sum(axis=-1))


@dataclasses.dataclass(frozen=True)
class myopic(TeacherStage):  # noqa: N801
    """Myopic returns R = Σ_{t=0}^{L−1} γ^{L−1−t} r_t: the last step has weight 1.

    Attributes:
        gamma: in-segment discount γ in (0, 1] (B-Pref uses 0.9).
    """

    gamma: float = 0.9

    def __post_init__(self) -> None:
        check_real("gamma", self.gamma, low=0.0, high=1.0, low_open=True)

    def update(self, pairs: FragmentPairs, state: TeacherState, rng: np.random.Generator) -> TeacherState:
        if state.labels is not None:
            raise ValueError(
                "myopic: a return transform must come before the deciders (oracle, stochastic) in compose()"
            )
        rews = np.asarray(pairs.rews, np.float64)
        length = rews.shape[-1]
        weights = self.gamma ** np.arange(length - 1, -1, -1, dtype=np.float64)
        return state._replace(returns=rews @ weights)


def _check_threshold(name: str, value: float | None, quantile: float) -> None:
    check_optional_real(name, value)
    check_real("quantile", quantile, low=0.0, high=1.0)


@dataclasses.dataclass(frozen=True)
class skip(TeacherStage):  # noqa: N801
    """Skip (label NaN) pairs whose undiscounted returns are both below a threshold.

    Attributes:
        threshold: absolute threshold on max(R¹, R²); None: the ``quantile`` of the batch's 2B returns.
        quantile: used when ``threshold`` is None.
    """

    threshold: float | None = None
    quantile: float = 0.1

    def __post_init__(self) -> None:
        _check_threshold("threshold", self.threshold, self.quantile)

    def update(self, pairs: FragmentPairs, state: TeacherState, rng: np.random.Generator) -> TeacherState:
        returns = undiscounted_returns(pairs)
        if not len(returns):
            return state
        threshold = np.quantile(returns, self.quantile) if self.threshold is None else self.threshold
        return state._replace(skipped=state.skipped | (returns.max(axis=1) < threshold))


@dataclasses.dataclass(frozen=True)
class equal(TeacherStage):  # noqa: N801
    """Label 0.5 when the undiscounted returns are within a margin: |R¹ − R²| < margin.

    Attributes:
        margin: absolute margin; None: the ``quantile`` of |R¹ − R²| over the batch.
        quantile: used when ``margin`` is None.
    """

    margin: float | None = None
    quantile: float = 0.1

    def __post_init__(self) -> None:
        _check_threshold("margin", self.margin, self.quantile)

    def update(self, pairs: FragmentPairs, state: TeacherState, rng: np.random.Generator) -> TeacherState:
        returns = undiscounted_returns(pairs)
        if not len(returns):
            return state
        gap = np.abs(returns[:, 0] - returns[:, 1])
        margin = np.quantile(gap, self.quantile) if self.margin is None else self.margin
        return state._replace(tied=state.tied | (gap < margin))


@dataclasses.dataclass(frozen=True)
class mistake(TeacherStage):  # noqa: N801
    """Flip each decided label with probability ε (label → 1 − label).

    Attributes:
        eps: mistake probability ε in [0, 1].
    """

    eps: float = 0.1

    def __post_init__(self) -> None:
        check_real("eps", self.eps, low=0.0, high=1.0)

    def update(self, pairs: FragmentPairs, state: TeacherState, rng: np.random.Generator) -> TeacherState:
        labels = _oracle_labels(state.returns) if state.labels is None else state.labels
        flip = rng.random(len(labels)) < self.eps
        return state._replace(labels=np.where(flip, 1.0 - labels, labels))


@dataclasses.dataclass(frozen=True)
class compose:  # noqa: N801
    """A teacher that runs stages in order (like ``optax.chain``).

    Example:
        >>> import numpy as np
        >>> from rewardlab.preferences import synthetic_pairs
        >>> teacher = compose(myopic(0.5), oracle())
        >>> # σ¹ = [4, 0] (myopic 2), σ² = [0, 3] (myopic 3): the oracle prefers σ¹, the myopic teacher σ².
        >>> teacher(synthetic_pairs(np.array([[[4.0, 0.0], [0.0, 3.0]]])), np.random.default_rng(0))
        array([0.], dtype=float32)
    """

    stages: tuple[Any, ...]

    def __init__(self, *stages: Any) -> None:
        for index, stage in enumerate(stages):
            if not callable(getattr(stage, "update", None)):
                raise ValueError(
                    f"stages[{index}]: expected a teacher stage with update(pairs, state, rng), got {type(stage).__name__}"
                )
        object.__setattr__(self, "stages", tuple(stages))

    def __call__(self, pairs: FragmentPairs, rng: np.random.Generator) -> np.ndarray:
        check_fragment_pairs(pairs)
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
        # A NaN return compares False both ways: every such pair would be labelled a tie.
        check_finite_array("pairs.rews", as_numeric_array("pairs.rews", pairs.rews))
        state = _initial_state(pairs)
        for stage in self.stages:
            state = stage.update(pairs, state, rng)
        return _final_labels(state)


@dataclasses.dataclass(frozen=True)
class SimulatedTeacher:
    """The B-Pref simulated teacher with all its knobs.

    Order (as in B-Pref's ``get_label``): skip on undiscounted returns, equal margin on
    undiscounted returns, decision on myopic returns (oracle when ``rationality`` is inf, else
    stochastic), mistakes, and equal pairs set to 0.5.

    Attributes:
        rationality: β of the stochastic decision; ``math.inf`` = oracle.
        gamma: myopic in-segment discount (1 = not myopic).
        eps_mistake: probability of flipping a label.
        skip_threshold: absolute skip threshold; None with ``skip_quantile`` > 0: batch quantile; both off: no skipping.
        skip_quantile: batch quantile used when ``skip_threshold`` is None (0 disables skipping).
        equal_margin: absolute equal margin; None with ``equal_quantile`` > 0: batch quantile.
        equal_quantile: batch quantile used when ``equal_margin`` is None (0 disables).
        preference_model: ``"partial_return"`` (B-Pref) or ``"regret"`` (decide on the true reward's
            regret, Knox et al.; needs ``advantage_fn`` and ``gamma`` = 1).
        advantage_fn: optimal advantage of the true reward, for ``preference_model="regret"``.

    Example:
        >>> import numpy as np
        >>> from rewardlab.preferences import synthetic_pairs
        >>> teacher = SimulatedTeacher(equal_margin=0.5)
        >>> teacher(synthetic_pairs(np.array([[1.0, 0.9], [1.0, 0.0]]), length=1), np.random.default_rng(0))
        array([0.5, 1. ], dtype=float32)
    """

    rationality: float = math.inf
    gamma: float = 1.0
    eps_mistake: float = 0.0
    skip_threshold: float | None = None
    skip_quantile: float = 0.0
    equal_margin: float | None = None
    equal_quantile: float = 0.0
    preference_model: str = "partial_return"
    advantage_fn: Any = None

    def __post_init__(self) -> None:
        # Every knob is checked here, also those whose value switches a stage off (NaN > 0 is
        # False: a NaN eps_mistake or quantile would silently drop the stage).
        check_real("rationality", self.rationality, low=0.0, high=math.inf, low_open=True, allow_inf=True)
        check_real("gamma", self.gamma, low=0.0, high=1.0, low_open=True)
        check_real("eps_mistake", self.eps_mistake, low=0.0, high=1.0)
        check_optional_real("skip_threshold", self.skip_threshold)
        check_real("skip_quantile", self.skip_quantile, low=0.0, high=1.0)
        check_optional_real("equal_margin", self.equal_margin)
        check_real("equal_quantile", self.equal_quantile, low=0.0, high=1.0)
        if self.preference_model not in ("partial_return", "regret"):
            raise ValueError(f"preference_model: expected 'partial_return' or 'regret', got {self.preference_model!r}")
        if self.preference_model == "regret" and (self.advantage_fn is None or self.gamma != 1.0):
            raise ValueError(
                "advantage_fn: preference_model='regret' needs advantage_fn (the true reward's optimal advantage) and gamma=1"
            )
        self.teacher  # noqa: B018 - building the teacher validates every setting

    @property
    def teacher(self) -> compose:
        """The equivalent composition of stages."""
        stages: list[Any] = []
        if self.skip_threshold is not None or self.skip_quantile > 0:
            stages.append(skip(self.skip_threshold, self.skip_quantile))
        if self.equal_margin is not None or self.equal_quantile > 0:
            stages.append(equal(self.equal_margin, self.equal_quantile))
        if self.gamma != 1.0:
            stages.append(myopic(self.gamma))
        if self.preference_model == "regret":
            stages.append(regret(self.advantage_fn))
        stages.append(
            oracle() if math.isinf(self.rationality) and self.rationality > 0 else stochastic(self.rationality)
        )
        if self.eps_mistake > 0:
            stages.append(mistake(self.eps_mistake))
        return compose(*stages)

    def __call__(self, pairs: FragmentPairs, rng: np.random.Generator) -> np.ndarray:
        return self.teacher(pairs, rng)


def label(pairs: FragmentPairs, teacher: Teacher, rng: np.random.Generator) -> Preferences:
    """Ask ``teacher`` about ``pairs`` and keep the answered ones.

    Args:
        pairs: B fragment pairs (true rewards in ``pairs.rews``).
        teacher: any ``Teacher``.
        rng: source of the teacher's randomness.

    Returns:
        ``Preferences`` of the B' ≤ B pairs whose label is not NaN (host numpy arrays).

    Raises:
        ValueError: the teacher's labels are not ``[B]`` or lie outside [0, 1].

    Example:
        >>> import numpy as np
        >>> from rewardlab.preferences import synthetic_pairs
        >>> prefs = label(synthetic_pairs(np.array([[1.0, 0.0], [-5.0, -6.0]]), length=1),
        ...               SimulatedTeacher(skip_threshold=-1.0), np.random.default_rng(0))
        >>> prefs.labels
        array([1.], dtype=float32)
    """
    num_pairs, _ = check_fragment_pairs(pairs)
    labels = np.asarray(teacher(pairs, rng), dtype=np.float32)
    if labels.shape != (num_pairs,):
        raise ValueError(f"teacher: expected labels of shape ({num_pairs},) ([B]), got {labels.shape}")
    answered = ~np.isnan(labels)
    if np.any((labels[answered] < 0) | (labels[answered] > 1)):
        raise ValueError(
            f"teacher: expected labels in [0, 1] or NaN, got min {labels[answered].min()} max {labels[answered].max()}"
        )
    keep = np.flatnonzero(answered)
    kept_pairs = FragmentPairs(*(None if field is None else _take(field, keep) for field in pairs))
    return Preferences(kept_pairs, labels[keep])


def _take(tree: Any, index: np.ndarray) -> Any:
    return jax.tree.map(lambda x: np.asarray(x)[index], tree)


def synthetic_pairs(returns: np.ndarray, length: int | None = None, obs_dim: int = 1) -> FragmentPairs:
    """Fragment pairs with given true rewards, for examples and tests.

    Args:
        returns: ``[B, 2]`` segment returns (each spread evenly over ``length`` steps) or
            ``[B, 2, L]`` per-step rewards.
        length: L when ``returns`` is ``[B, 2]`` (default 1).
        obs_dim: size of the (zero) observations and actions.

    Returns:
        ``FragmentPairs`` whose ``rews`` has the requested rewards; ``obs`` are zeros.
    """
    returns = np.asarray(returns, np.float32)
    if returns.ndim == 2:
        steps = 1 if length is None else int(length)
        rews = np.repeat(returns[..., None] / steps, steps, axis=-1)
    elif returns.ndim == 3:
        rews = returns
    else:
        raise ValueError(f"returns: expected shape [B, 2] or [B, 2, L], got {returns.shape}")
    if rews.shape[1] != 2:
        raise ValueError(f"returns: expected axis 1 of size 2 (the two segments), got shape {returns.shape}")
    num_pairs, _, steps = rews.shape
    zeros = np.zeros((num_pairs, 2, steps, obs_dim), np.float32)
    return FragmentPairs(
        zeros, zeros.copy(), zeros.copy(), np.zeros((num_pairs, 2, steps), bool), rews.astype(np.float32)
    )
