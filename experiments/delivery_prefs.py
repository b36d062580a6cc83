"""Learning the delivery gridworld's reward from simulated preferences: which teachers and budgets suffice?

A reward design is a simulated teacher and a label budget. The teacher compares random
segments of the delivery gridworld (Knox et al. 2024) either by partial return
R(σ) = Σ_t r_t or by regret (Knox et al.'s model, deterministic transitions):

    regret(σ) = V*(s_0) − (Σ_t γ^t r_t + γ^L V*(s_L)),   score = R(σ) or −regret(σ),

labels y ~ Bernoulli(logistic((score¹ − score²)/β)), flipped with probability ε. The
learner fits linear weights w over the six cell features by Bradley–Terry on partial
returns, ŵ = argmin mean BT(w·Φ(σ¹), w·Φ(σ²), y) + λ/2 |w|² (Newton's method), plans greedily on φ·ŵ by
value iteration and scores the plan with the scaled return under the true reward
((V^π − V^unif)/(V* − V^unif), 1 = optimal, 0 = uniform random).

Every step is the library's tabular preference pipeline (``sample_tabular_pairs`` on the
successor table, ``pair_regrets``, ``fit_tabular_reward(solver="newton")``,
``evaluate_tabular_reward``), so everything per design × seed is one pure JAX function
(``run_design``) and the whole study is one ``jit(vmap(vmap(...)))`` call (:func:`study`);
``main`` runs one design as a sweep target, and carries its core so that ``rewardlab sweep
--backend vmap`` runs a whole sweep of it in one call too. Run one: ``python -m experiments.delivery_prefs --labels 50``.

References:
    Knox, Hatgis-Kessell, Booth, Niekum, Stone & Allievi, "Models of human preference for
    learning reward functions", TMLR 2024.
    Bradley & Terry, "Rank analysis of incomplete block designs", Biometrika 1952.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from rewardlab.preferences import (
    PreferenceModel,
    bradley_terry_probability,
    evaluate_tabular_reward,
    fit_tabular_reward,
    pair_regrets,
    sample_tabular_pairs,
)
from rewardlab.sweeps import Logger, VmapCore, check_choices, parse_args, vmap_sweep, vmappable
from rewardlab.tabular import linear_reward, successor_table, value_iteration


@dataclasses.dataclass(frozen=True)
class Args:
    """Arguments of the delivery preference study (one design, one seed).

    Attributes:
        teacher_model: what the teacher's preferences follow: ``partial_return`` or ``regret``.
        teacher_temperature: β of the teacher's Bradley–Terry choice; small is nearly deterministic.
        mistake_rate: ε, probability that a label is flipped.
        labels: preference labels used (at most ``max_labels``).
        max_labels: pairs sampled per run (a static shape; ``labels`` of them are used).
        segment_length: steps per segment.
        discount: γ of the regret teacher, planning and scoring. Knox et al. plan with 0.999;
            the default 0.9 is used because partial-return Bradley–Terry on fixed-length segments
            leaves the per-step cost level (the gas + mud direction of w) unidentified, and under
            γ = 0.999 a plan circling on a slightly positive learned step reward scores far below
            random for every design alike.
        newton_steps: Newton steps on the L2-regularised Bradley–Terry loss.
        l2: ridge coefficient λ; it keeps ŵ finite when the labels are separable (the oracle's are).
        planning_sweeps: value-iteration backups when planning and scoring.
        log_every: Newton steps between logged points of the loss curve.
        seed: seed of the segments, the teacher and nothing else (the board is fixed).
    """

    teacher_model: Literal["partial_return", "regret"] = "partial_return"
    teacher_temperature: float = 1.0
    mistake_rate: float = 0.0
    labels: int = 100
    max_labels: int = 200
    segment_length: int = 8
    discount: float = 0.9
    newton_steps: int = 15
    l2: float = 1e-3
    planning_sweeps: int = 100
    log_every: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        check_choices(self)
        for name in ("max_labels", "segment_length", "newton_steps", "planning_sweeps", "log_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
        if not isinstance(self.labels, int) or not 0 <= self.labels <= self.max_labels:
            raise ValueError(f"labels: expected an integer in [0, max_labels={self.max_labels}], got {self.labels!r}")
        if not self.l2 > 0:
            raise ValueError(f"l2: expected > 0, got {self.l2!r}")
        if not self.teacher_temperature > 0:
            raise ValueError(f"teacher_temperature: expected > 0, got {self.teacher_temperature!r}")
        if not 0.0 <= self.discount < 1.0:
            raise ValueError(f"discount: expected a value in [0, 1), got {self.discount!r}")
        if not 0.0 <= self.mistake_rate <= 1.0:
            raise ValueError(f"mistake_rate: expected a value in [0, 1], got {self.mistake_rate!r}")


class StudyMDP(NamedTuple):
    """The delivery MDP's arrays and the true reward's optimal values, shared by every design."""

    successors: jax.Array  # [S, A] int32 s' = next(s, a): the board is deterministic, so sampling and planning gather
    expected_features: jax.Array  # [S, A, K] Σ_s' T(s, a, s') φ(s, a, s'): the learner's r = φ·w needs no more
    true_weights: jax.Array  # [K] w*
    true_reward: jax.Array  # [S, A] r* = φ·w*
    initial_state_dist: jax.Array  # [S] d0
    terminal: jax.Array  # [S] bool
    optimal_values: jax.Array  # [S] V* under w*
    discount: float  # γ


class Static(NamedTuple):
    """Shapes and step counts fixed at compile time."""

    max_labels: int
    segment_length: int
    newton_steps: int
    l2: float
    planning_sweeps: int


def study_mdp(planning_sweeps: int = 100, discount: float = 0.9) -> StudyMDP:
    """The default delivery board (``rewardlab_envs.delivery_mdp``) with V* of its true reward."""
    from rewardlab_envs import delivery_mdp

    mdp = delivery_mdp(discount=discount)
    successors = jnp.asarray(successor_table(mdp.transitions))
    optimal = value_iteration(successors, jnp.asarray(mdp.reward), mdp.discount, num_sweeps=planning_sweeps)
    expected_features = jnp.einsum("sat,satk->sak", jnp.asarray(mdp.transitions), jnp.asarray(mdp.features))
    true_weights = jnp.asarray(mdp.true_weights)
    return StudyMDP(
        successors,
        expected_features,
        true_weights,
        expected_features @ true_weights,
        jnp.asarray(mdp.initial_state_dist),
        jnp.asarray(mdp.terminal),
        optimal.state_values,
        float(mdp.discount),
    )


def run_design(design: dict[str, jax.Array], key: jax.Array, mdp: StudyMDP, static: Static) -> dict[str, jax.Array]:
    """One design × seed: sample pairs, label them, fit ŵ by Bradley–Terry, plan, score (the library's tabular pipeline).

    Args:
        design: scalars ``regret_teacher`` (1 for the regret model, 0 for partial return),
            ``teacher_temperature``, ``mistake_rate`` and ``labels``.
        key: PRNG key of this seed.
        mdp: the shared MDP.
        static: compile-time sizes.

    Returns:
        ``scaled_return``, ``weight_cosine`` (cos(ŵ, w*)), ``label_agreement`` (labels that
        agree with w*'s partial returns), ``final_loss`` (scalars) and ``loss`` (``[newton_steps]`` curve).
    """
    key_pairs, key_labels, key_flips = jax.random.split(key, 3)
    pairs = sample_tabular_pairs(
        mdp.successors, mdp.true_reward, mdp.initial_state_dist, key_pairs, static.max_labels, static.segment_length
    )
    partial = jnp.sum(pairs.rews, axis=-1)  # [N, 2]
    scores = jnp.where(design["regret_teacher"] > 0.5, -pair_regrets(pairs, mdp.optimal_values, mdp.discount), partial)
    prob_first = jax.vmap(bradley_terry_probability, in_axes=(0, 0, None))(
        scores[:, 0], scores[:, 1], design["teacher_temperature"]
    )
    labels = jax.random.bernoulli(key_labels, prob_first).astype(jnp.float32)
    flip = jax.random.bernoulli(key_flips, design["mistake_rate"], labels.shape)
    labels = jnp.where(flip, 1.0 - labels, labels)
    used = (jnp.arange(static.max_labels) < design["labels"]).astype(jnp.float32)

    reward = linear_reward(mdp.expected_features)
    params, metrics = fit_tabular_reward(
        reward,
        pairs,
        labels,
        preference_model=PreferenceModel("partial_return"),
        weights=used,
        solver="newton",
        num_steps=static.newton_steps,
        l2=static.l2,
    )
    evaluation = evaluate_tabular_reward(
        mdp.successors,
        mdp.true_reward,
        reward.table(params),
        mdp.discount,
        mdp.initial_state_dist,
        mdp.terminal,
        num_sweeps=static.planning_sweeps,
        evaluation_sweeps=2 * static.planning_sweeps,
        atol=1e-6,
    )
    weights = params.net
    cosine = weights @ mdp.true_weights / (jnp.linalg.norm(weights) * jnp.linalg.norm(mdp.true_weights) + 1e-12)
    true_label = (partial[:, 0] > partial[:, 1]).astype(jnp.float32)
    agreement = jnp.sum(used / jnp.maximum(used.sum(), 1.0) * (labels == true_label))
    return {
        "scaled_return": evaluation.scaled_return,
        "weight_cosine": cosine,
        "label_agreement": agreement,
        "final_loss": metrics["final_loss"],
        "loss": metrics["loss"],
    }


def design_of(args: Args) -> dict[str, jax.Array]:
    """The numeric design fields of :func:`run_design` from ``args`` (scalar arrays)."""
    return {
        "regret_teacher": jnp.asarray(float(args.teacher_model == "regret")),
        "teacher_temperature": jnp.asarray(args.teacher_temperature, jnp.float32),
        "mistake_rate": jnp.asarray(args.mistake_rate, jnp.float32),
        "labels": jnp.asarray(args.labels, jnp.int32),
    }


def static_of(args: Args) -> Static:
    """The compile-time sizes of :func:`run_design` from ``args``."""
    return Static(args.max_labels, args.segment_length, args.newton_steps, args.l2, args.planning_sweeps)


def _run_inputs(inputs: dict[str, Any], mdp: StudyMDP, static: Static) -> dict[str, jax.Array]:
    return run_design(inputs["design"], jax.random.key(inputs["seed"]), mdp, static)


def _inputs(args: Args) -> dict[str, Any]:
    return {"design": design_of(args), "seed": np.int32(args.seed)}


def _build(args: Args) -> tuple[Any, StudyMDP]:
    return functools.partial(_run_inputs, static=static_of(args)), study_mdp(args.planning_sweeps, args.discount)


def _finish(args: Args, out: Mapping[str, Any], logger: Logger | None) -> dict[str, float]:
    """The host side of a run: log the loss curve, return the final metrics."""
    if logger is not None:
        for step, loss in enumerate(np.asarray(out["loss"])):
            if step % args.log_every == 0 or step == args.newton_steps - 1:
                logger.log(step, loss=float(loss))
    return {name: float(value) for name, value in out.items() if np.ndim(value) == 0}


@functools.lru_cache(maxsize=4)
def _compiled(static: Static) -> Any:
    return jax.jit(functools.partial(_run_inputs, static=static))


# `rewardlab sweep --backend vmap` runs every run of a sweep of `main` in one jit(vmap(...)) call.
CORE = VmapCore(group=lambda args: (static_of(args), args.discount), build=_build, inputs=_inputs, finish=_finish)


@vmappable(CORE)
def main(args: Args, logger: Logger | None = None) -> dict[str, float]:
    """Run one design × seed; log the loss curve; return the final metrics."""
    mdp = study_mdp(args.planning_sweeps, args.discount)
    return _finish(args, _compiled(static_of(args))(_inputs(args), mdp), logger)


def study(grid: dict[str, Sequence[float]], seeds: Sequence[int], args: Args = Args(), out_dir: Any = None) -> Any:
    """Every design of ``grid`` × seed in one compiled call; the results table (and a sweep folder if ``out_dir``).

    ``grid`` varies the numeric design fields of :func:`run_design` (``regret_teacher``,
    ``teacher_temperature``, ``mistake_rate``, ``labels``); the others come from ``args``.
    """
    mdp = study_mdp(args.planning_sweeps, args.discount)
    base = design_of(args)
    static = static_of(args)

    def fn(design, key):
        return run_design({**base, **design}, key, mdp, static)

    fixed = {
        "max_labels": args.max_labels,
        "segment_length": args.segment_length,
        "discount": args.discount,
        "newton_steps": args.newton_steps,
    }
    return vmap_sweep(fn, grid, seeds, out_dir=out_dir, name="delivery_prefs", fixed=fixed)


if __name__ == "__main__":
    print(main(parse_args(Args)))
