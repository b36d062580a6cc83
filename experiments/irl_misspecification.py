"""Misspecified maximum-causal-entropy IRL on delivery gridworlds: tolerant to β, fragile to γ and transitions.

Skalse and Abate (AAAI 2023) prove that IRL under a misspecified rationality β only rescales
the learned reward (harmless), while a misspecified discount γ or transition model τ can make
it arbitrarily wrong however small the error. This study measures it. On each of
``num_boards`` delivery gridworlds (Knox et al.'s board and random ones, true weights, reward
divided by ``reward_scale``) a demonstrator acts in the true MDP (γ = ``discount``) following
the causal-entropy behaviour model with β_d = ``demo_rationality``; an MCE IRL learner with a
tabular state-action reward sees its exact γ_L-weighted occupancy and assumes

* ``rationality``: rationality β_L ∈ ``learner_rationalities`` (everything else right);
* ``discount``: discount γ_L ∈ ``learner_discounts``;
* ``noise``: transitions T_ε = (1 − ε)T + εN, N ~ Dirichlet rows, ε ∈ ``transition_noises``;
* ``behaviour``: the demonstrator itself follows ``optimal``, ``boltzmann`` or
  ``causal_entropy`` (β_d) while the learner assumes causal entropy.

Each learned reward is scored against the truth by STARC (value canonicalisation, L2; 0 iff
equal up to shaping, S'-redistribution and positive scaling), by EPIC (which quotients out
shaping but not S'-redistribution, so a state-action reward learned from a correct model
already sits at a floor above 0) and by the normalised regret of its optimal policy in the
true MDP. Every (board, value) pair of an axis is one ``jax.vmap``-ed, jitted call.

Run: ``python -m experiments.irl_misspecification [--num-boards 3] [--out-dir runs/irl_misspecification]``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

import rewardlab_envs
from rewardlab._io import atomic_write_figure, atomic_write_json
from rewardlab.irl import BEHAVIOUR_MODELS, MCEIRLConfig, misspecified_irl, perturb_transitions
from rewardlab.sweeps import Logger, check_choices, parse_args

AXES = ("rationality", "discount", "noise", "behaviour")


@dataclasses.dataclass(frozen=True)
class Args:
    """Arguments of the IRL misspecification study.

    Attributes:
        num_boards: delivery boards (the default board, then random ones); a vmap axis.
        discount: true γ of the MDP and the demonstrator.
        reward_scale: the true reward is the delivery reward divided by this.
        demo_rationality: the demonstrator's β_d.
        learner_rationalities: β_L values the learner assumes (axis ``rationality``).
        learner_discounts: γ_L values the learner assumes (axis ``discount``).
        transition_noises: ε of the learner's transition model (axis ``noise``).
        behaviours: demonstrator behaviour models (axis ``behaviour``).
        num_steps: MCE IRL Adam steps.
        learning_rate: MCE IRL Adam step size.
        num_sweeps: soft value-iteration sweeps per step (error ≤ γⁿ).
        seed: seed of the random boards, the transition noise and the initialisation.
        out_dir: folder for results.json and misspecification.png ("" writes nothing).
    """

    num_boards: int = 3
    discount: float = 0.99
    reward_scale: float = 50.0
    demo_rationality: float = 1.0
    learner_rationalities: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)
    learner_discounts: tuple[float, ...] = (0.95, 0.98, 0.985, 0.99, 0.995)
    transition_noises: tuple[float, ...] = (0.0, 0.01, 0.02, 0.05, 0.1)
    behaviours: tuple[Literal["optimal", "boltzmann", "causal_entropy"], ...] = BEHAVIOUR_MODELS
    num_steps: int = 1500
    learning_rate: float = 0.1
    num_sweeps: int = 1000
    seed: int = 0
    out_dir: str = "runs/irl_misspecification"

    def __post_init__(self) -> None:
        check_choices(self)
        for name in ("num_boards", "num_steps", "num_sweeps"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
        if not 0.0 < self.discount < 1.0:
            raise ValueError(f"discount: expected a value in (0, 1), got {self.discount!r}")
        for name in ("learner_discounts",):
            if any(not 0.0 < g < 1.0 for g in getattr(self, name)):
                raise ValueError(f"{name}: expected values in (0, 1), got {getattr(self, name)!r}")
        for name in ("learner_rationalities", "transition_noises", "behaviours"):
            if not getattr(self, name):
                raise ValueError(f"{name}: expected at least one value, got {getattr(self, name)!r}")
        if any(not 0.0 <= e <= 1.0 for e in self.transition_noises):
            raise ValueError(f"transition_noises: expected values in [0, 1], got {self.transition_noises!r}")
        if any(not b > 0 for b in (*self.learner_rationalities, self.demo_rationality)):
            raise ValueError("learner_rationalities, demo_rationality: expected values > 0")


def _boards(args: Args) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Stacked true MDPs: T [B, S, A, S'], r [B, S, A], d0 [B, S]."""
    boards = [rewardlab_envs.DEFAULT_BOARD]
    boards += [rewardlab_envs.random_delivery_task(args.seed + index).board for index in range(1, args.num_boards)]
    mdps = [rewardlab_envs.delivery_mdp(board, discount=args.discount) for board in boards]
    transitions = jnp.stack([jnp.asarray(mdp.transitions) for mdp in mdps])
    reward = (
        jnp.einsum("bsat,bsat->bsa", transitions, jnp.stack([jnp.asarray(mdp.reward) for mdp in mdps]))
        / args.reward_scale
    )
    d0 = jnp.stack([jnp.asarray(mdp.initial_state_dist) for mdp in mdps])
    return transitions, reward, d0


def run_axis(
    args: Args, axis: str, values: tuple, transitions: jax.Array, reward: jax.Array, d0: jax.Array
) -> dict[str, np.ndarray]:
    """Errors ``[num_boards, len(values)]`` of every metric along one misspecification axis."""
    config = MCEIRLConfig(num_steps=args.num_steps, learning_rate=args.learning_rate, num_sweeps=args.num_sweeps)
    key = jax.random.key(args.seed)
    noise_key = jax.random.fold_in(key, 1)

    def one(T, r, d0, behaviour, rationality, discount, noise):
        return misspecified_irl(
            key,
            T,
            r,
            d0,
            args.discount,
            behaviour=behaviour,
            demo_rationality=args.demo_rationality,
            learner_transitions=perturb_transitions(T, noise, noise_key),
            learner_discount=discount,
            learner_rationality=rationality,
            config=config,
        )

    defaults = {"rationality": 1.0, "discount": args.discount, "noise": 0.0}
    if axis == "behaviour":
        columns = []
        for behaviour in values:  # static: one compiled program per behaviour model
            fn = jax.jit(jax.vmap(lambda T, r, d0: one(T, r, d0, behaviour, 1.0, args.discount, 0.0)))  # noqa: B023 - traced on the next line
            columns.append(jax.tree.map(np.asarray, fn(transitions, reward, d0)))
        return {name: np.stack([getattr(c, name) for c in columns], axis=1) for name in columns[0]._fields}
    swept = jnp.asarray(values, jnp.float32)

    def per_value(T, r, d0, value):
        settings = dict(defaults, **{axis: value})
        return one(T, r, d0, "causal_entropy", settings["rationality"], settings["discount"], settings["noise"])

    fn = jax.jit(jax.vmap(jax.vmap(per_value, in_axes=(None, None, None, 0)), in_axes=(0, 0, 0, None)))
    errors = jax.tree.map(np.asarray, fn(transitions, reward, d0, swept))
    return {name: getattr(errors, name) for name in errors._fields}


def plot(results: dict, path: Path) -> None:
    """STARC, EPIC and regret against each misspecification (mean over boards, boards as dots)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    titles = {
        "rationality": "learner's β_L (true β_d = 1)",
        "discount": "learner's γ_L",
        "noise": "transition noise ε",
        "behaviour": "demonstrator model",
    }
    fig, axes = plt.subplots(1, len(AXES), figsize=(4 * len(AXES), 3.4), sharey=True)
    for ax, axis in zip(axes, AXES, strict=True):
        values = results[axis]["values"]
        xs = np.arange(len(values))
        for metric, color in (("starc", "C0"), ("epic", "C2"), ("regret", "C3")):
            data = np.asarray(results[axis][metric])
            ax.plot(xs, data.mean(0), "-o", color=color, label=metric)
            ax.scatter(np.repeat(xs[None], data.shape[0], 0), data, s=8, color=color, alpha=0.4)
        ax.set_xticks(xs, [str(v) for v in values], rotation=30 if axis == "behaviour" else 0)
        ax.set_title(titles[axis])
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("error of the learned reward")
    axes[0].legend()
    fig.tight_layout()
    atomic_write_figure(path, fig, dpi=110, close=True)


def main(args: Args, logger: Logger | None = None) -> dict[str, float]:
    """Run the four axes; return mean STARC, EPIC and regret per (axis, value) as flat ``metric/axis=value`` keys."""
    start = time.perf_counter()
    transitions, reward, d0 = _boards(args)
    axis_values = {
        "rationality": args.learner_rationalities,
        "discount": args.learner_discounts,
        "noise": args.transition_noises,
        "behaviour": args.behaviours,
    }
    results: dict = {"args": dataclasses.asdict(args)}
    summary: dict[str, float] = {}
    for index, axis in enumerate(AXES):
        errors = run_axis(args, axis, axis_values[axis], transitions, reward, d0)
        results[axis] = {"values": list(axis_values[axis]), **{name: value.tolist() for name, value in errors.items()}}
        for metric in ("starc", "epic", "regret", "occupancy_error"):
            for value, mean in zip(axis_values[axis], errors[metric].mean(0), strict=True):
                summary[f"{metric}/{axis}={value}"] = float(mean)
        if logger is not None:
            logger.log(
                index,
                **{
                    f"{axis}_max_starc": float(errors["starc"].mean(0).max()),
                    f"{axis}_max_regret": float(errors["regret"].mean(0).max()),
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
