"""Misspecified IRL on delivery gridworlds (Skalse & Abate): β, γ and T misspecification for two behaviour models.

Skalse and Abate (AAAI 2023) prove that for Boltzmann-rational and maximum-causal-entropy
behaviour models a misspecified rationality β only rescales the learned reward (harmless),
while a misspecified discount γ or transition model τ can make it arbitrarily wrong however
small the error. This study measures it for both models. On each of ``num_boards`` delivery
gridworlds (Knox et al.'s board and random ones, true weights, reward divided by
``reward_scale``, γ = ``discount``) a demonstrator acts in the true MDP; a learner with a
tabular state-action reward fits the demonstrations' policy log-likelihood (bounded under any
misspecification; L-BFGS from θ = 0 to a gradient tolerance: the least-norm
maximum-likelihood reward) under its own model, for each learner model L ∈ ``learners``
(``causal_entropy``: MCE soft-optimal; ``boltzmann``: softmax(β Q*)) and each axis:

* ``rationality``: the learner assumes β_L ∈ ``learner_rationalities`` (demonstrator: model L, β_d);
* ``discount``: γ_L ∈ ``learner_discounts``;
* ``noise``: transitions T_ε = (1 − ε)T + εN, N ~ Dirichlet rows, ε ∈ ``transition_noises``;
* ``behaviour``: the demonstrator follows ``optimal``, ``boltzmann`` or ``causal_entropy``
  (β_d) while the learner assumes L.

Each learned reward is scored against the truth by STARC (value canonicalisation, L2; 0 iff
equal up to shaping, S'-redistribution and positive scaling), EPIC, and the normalised regret
of its optimal policy in the true MDP; beside each cell the fit's convergence is kept (whether
the gradient tolerance was met, the gradient norm, and the likelihood gap to the
demonstrations' own action frequencies). All cells of one learner model (boards × axis values)
are one ``jax.vmap``-ed, jitted call.

Run: ``python -m experiments.irl_misspecification [--num-boards 3] [--out-dir runs/irl_misspecification]``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from pathlib import Path
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

import rewardlab_envs
from rewardlab._io import atomic_write_figure, atomic_write_json
from rewardlab.irl import (
    LikelihoodIRLConfig,
    RewardError,
    demonstrator_policy,
    learner_error,
    perturb_transitions,
)
from rewardlab.sweeps import Logger, check_choices, parse_args

AXES = ("rationality", "discount", "noise", "behaviour")
METRICS = ("starc", "epic", "regret", "likelihood_gap", "grad_norm", "converged", "occupancy_error", "reward_max")


@dataclasses.dataclass(frozen=True)
class Args:
    """Arguments of the IRL misspecification study.

    Attributes:
        num_boards: delivery boards (the default board, then random ones); a vmap axis.
        discount: true γ of the MDP and the demonstrator.
        reward_scale: the true reward is the delivery reward divided by this.
        demo_rationality: the demonstrator's β_d.
        learners: the learner's behaviour models (one row of the figure each).
        learner_rationalities: β_L values the learner assumes (axis ``rationality``).
        learner_discounts: γ_L values the learner assumes (axis ``discount``).
        transition_noises: ε of the learner's transition model (axis ``noise``).
        behaviours: demonstrator behaviour models (axis ``behaviour``).
        num_steps: the most L-BFGS steps per fit.
        gradient_tolerance: a fit stops (converged) once its gradient norm is at most this · β_L.
        seed: seed of the random boards, the transition noise and the initialisation.
        out_dir: folder for results.json and misspecification.png ("" writes nothing).
    """

    num_boards: int = 3
    discount: float = 0.99
    reward_scale: float = 50.0
    demo_rationality: float = 1.0
    learners: tuple[Literal["causal_entropy", "boltzmann"], ...] = ("causal_entropy", "boltzmann")
    learner_rationalities: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)
    learner_discounts: tuple[float, ...] = (0.95, 0.98, 0.985, 0.99, 0.995)
    transition_noises: tuple[float, ...] = (0.0, 0.01, 0.02, 0.05, 0.1)
    behaviours: tuple[Literal["optimal", "boltzmann", "causal_entropy"], ...] = (
        "optimal",
        "boltzmann",
        "causal_entropy",
    )
    num_steps: int = 1000
    gradient_tolerance: float = 3e-5
    seed: int = 0
    out_dir: str = "runs/irl_misspecification"

    def __post_init__(self) -> None:
        check_choices(self)
        for name in ("num_boards", "num_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
        if not 0.0 < self.discount < 1.0:
            raise ValueError(f"discount: expected a value in (0, 1), got {self.discount!r}")
        if any(not 0.0 < g < 1.0 for g in self.learner_discounts):
            raise ValueError(f"learner_discounts: expected values in (0, 1), got {self.learner_discounts!r}")
        for name in ("learners", "learner_rationalities", "learner_discounts", "transition_noises", "behaviours"):
            if not getattr(self, name):
                raise ValueError(f"{name}: expected at least one value, got {getattr(self, name)!r}")
        if any(not 0.0 <= e <= 1.0 for e in self.transition_noises):
            raise ValueError(f"transition_noises: expected values in [0, 1], got {self.transition_noises!r}")
        if any(not b > 0 for b in (*self.learner_rationalities, self.demo_rationality)):
            raise ValueError("learner_rationalities, demo_rationality: expected values > 0")
        if not self.gradient_tolerance >= 0:
            raise ValueError(f"gradient_tolerance: expected >= 0, got {self.gradient_tolerance!r}")


def _boards(args: Args) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Stacked true MDPs: T [B, S, A, S'], r [B, S, A], d0 [B, S]."""
    boards: list = [rewardlab_envs.DEFAULT_BOARD]
    boards += [rewardlab_envs.random_delivery_task(args.seed + index).board for index in range(1, args.num_boards)]
    mdps = [rewardlab_envs.delivery_mdp(board, discount=args.discount) for board in boards]
    transitions = jnp.stack([jnp.asarray(mdp.transitions) for mdp in mdps])
    reward = (
        jnp.einsum("bsat,bsat->bsa", transitions, jnp.stack([jnp.asarray(mdp.reward) for mdp in mdps]))
        / args.reward_scale
    )
    d0 = jnp.stack([jnp.asarray(mdp.initial_state_dist) for mdp in mdps])
    return transitions, reward, d0


def _cells(args: Args, learner: str) -> list[tuple[str, float | str, str, float, float, float]]:
    """(axis, value, demonstrator model, β_L, γ_L, ε) of every cell of one learner model."""
    cells: list[tuple[str, float | str, str, float, float, float]] = [
        ("rationality", b, learner, b, args.discount, 0.0) for b in args.learner_rationalities
    ]
    cells += [("discount", g, learner, args.demo_rationality, g, 0.0) for g in args.learner_discounts]
    cells += [("noise", e, learner, args.demo_rationality, args.discount, e) for e in args.transition_noises]
    cells += [("behaviour", m, m, args.demo_rationality, args.discount, 0.0) for m in args.behaviours]
    return cells


def run_learner(
    args: Args, learner: str, transitions: jax.Array, reward: jax.Array, d0: jax.Array
) -> dict[str, dict[str, list]]:
    """Every cell of one learner model, boards × cells in one vmapped call; ``{axis: {values, metric: [B, n]}}``."""
    cells = _cells(args, learner)
    models = sorted({cell[2] for cell in cells})
    demo = {}
    for model in models:
        plan = functools.partial(demonstrator_policy, discount=args.discount, behaviour=model)
        demo[model] = jax.jit(jax.vmap(lambda T, r, plan=plan: plan(T, r, rationality=args.demo_rationality)))(
            transitions, reward
        )
    demo_policy = jnp.stack([demo[cell[2]] for cell in cells], axis=1)  # [B, C, S, A]
    noise_key = jax.random.fold_in(jax.random.key(args.seed), 1)
    board_keys = jax.random.split(noise_key, transitions.shape[0])
    noise = jnp.asarray([cell[5] for cell in cells], jnp.float32)
    learner_transitions = jax.vmap(lambda T, key: jax.vmap(lambda eps: perturb_transitions(T, eps, key))(noise))(
        transitions, board_keys
    )  # [B, C, S, A, S]
    rationality = jnp.asarray([cell[3] for cell in cells], jnp.float32)
    discount = jnp.asarray([cell[4] for cell in cells], jnp.float32)
    config = LikelihoodIRLConfig(
        behaviour=learner, num_steps=args.num_steps, gradient_tolerance=args.gradient_tolerance
    )
    key = jax.random.key(args.seed)

    def one(
        T: jax.Array, r: jax.Array, d0: jax.Array, pi: jax.Array, T_L: jax.Array, gamma_L: jax.Array, beta_L: jax.Array
    ) -> RewardError:
        return learner_error(
            key,
            T,
            r,
            d0,
            args.discount,
            pi,
            learner_transitions=T_L,
            learner_discount=gamma_L,
            learner_rationality=beta_L,
            config=config,
        )

    per_cell = jax.vmap(one, in_axes=(None, None, None, 0, 0, 0, 0))
    fn = jax.jit(jax.vmap(per_cell, in_axes=(0, 0, 0, 0, 0, None, None)))
    errors = jax.tree.map(
        np.asarray, fn(transitions, reward, d0, demo_policy, learner_transitions, discount, rationality)
    )
    results: dict[str, dict[str, list]] = {}
    for axis in AXES:
        columns = [index for index, cell in enumerate(cells) if cell[0] == axis]
        results[axis] = {"values": [cells[index][1] for index in columns]}
        for metric in METRICS:
            results[axis][metric] = getattr(errors, metric)[:, columns].astype(float).tolist()
    return results


def plot(results: dict, path: Path) -> None:
    """One row per learner model: STARC, EPIC and regret against each misspecification, convergence in the corner."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    titles = {
        "rationality": "learner's β_L (β_d = {beta})",
        "discount": "learner's γ_L (γ = {gamma})",
        "noise": "transition noise ε of T_L",
        "behaviour": "demonstrator's model",
    }
    learners = results["args"]["learners"]
    fig, axes = plt.subplots(len(learners), len(AXES), figsize=(4.2 * len(AXES), 3.3 * len(learners)), squeeze=False)
    for row, learner in zip(axes, learners, strict=True):
        for ax, axis in zip(row, AXES, strict=True):
            cell = results[learner][axis]
            xs = np.arange(len(cell["values"]))
            for metric, color in (("starc", "C0"), ("epic", "C2"), ("regret", "C3")):
                data = np.asarray(cell[metric])
                ax.plot(xs, data.mean(0), "-o", color=color, label=metric, ms=4)
                ax.scatter(np.repeat(xs[None], data.shape[0], 0), data, s=8, color=color, alpha=0.4)
            converged = np.asarray(cell["converged"]).astype(bool)
            for x in xs[~converged.all(0)]:
                ax.axvspan(x - 0.3, x + 0.3, color="0.85", zorder=0)
            gap = np.asarray(cell["likelihood_gap"]).max()
            grad = np.asarray(cell["grad_norm"]).max()
            ax.text(
                0.02,
                0.97,
                f"converged {converged.sum()}/{converged.size}\nmax gap {gap:.0e}, max ‖∇‖ {grad:.0e}",
                transform=ax.transAxes,
                va="top",
                fontsize=7,
            )
            ax.set_xticks(xs, [str(v) for v in cell["values"]], rotation=25 if axis == "behaviour" else 0, fontsize=8)
            args = results["args"]
            ax.set_title(
                titles[axis].format(beta=args["demo_rationality"], gamma=args["discount"]) + f" — {learner}", fontsize=9
            )
            ax.set_ylim(-0.05, 2.05)
            ax.grid(alpha=0.3)
        row[0].set_ylabel(f"{learner} learner\nerror of the learned reward")
    axes[0][0].legend(loc="center left", fontsize=8)
    fig.suptitle(
        "Likelihood IRL under a misspecified model: board means (lines) and boards (dots); "
        "grey: some fit short of the gradient tolerance",
        fontsize=10,
    )
    fig.tight_layout()
    atomic_write_figure(path, fig, dpi=110, close=True)


def main(args: Args, logger: Logger | None = None) -> dict[str, float]:
    """Run every axis for every learner model; return board means as flat ``metric/learner/axis=value`` keys."""
    start = time.perf_counter()
    transitions, reward, d0 = _boards(args)
    results: dict = {"args": dataclasses.asdict(args)}
    summary: dict[str, float] = {}
    for index, learner in enumerate(args.learners):
        results[learner] = run_learner(args, learner, transitions, reward, d0)
        for axis in AXES:
            cell = results[learner][axis]
            for metric in METRICS:
                for value, mean in zip(cell["values"], np.asarray(cell[metric]).mean(0), strict=True):
                    summary[f"{metric}/{learner}/{axis}={value}"] = float(mean)
        if logger is not None:
            logger.log(
                index,
                **{
                    f"{learner}_{axis}_max_starc": float(np.asarray(results[learner][axis]["starc"]).mean(0).max())
                    for axis in AXES
                },
            )
    results["wall_s"] = time.perf_counter() - start
    summary["wall_s"] = results["wall_s"]
    if args.out_dir:
        out = Path(args.out_dir)
        atomic_write_json(out / "results.json", results)
        plot(results, out / "misspecification.png")
    return summary


if __name__ == "__main__":
    print(json.dumps(main(parse_args(Args)), indent=1))
