"""BARFI on the detour gridworld: a misaligned auxiliary reward breaks the naive sum, not the learned blend.

The task (:func:`rewardlab_envs.detour_gridworld`): a sparse primary reward (+1 for entering
the goal) and a designer's auxiliary reward, either ``good`` (a distance-to-goal heuristic) or
``bad`` (paying for entering a detour cell, which the naive sum circles for ever). Four ways to
use the two rewards, each trained with the same exact softmax policy-gradient learner and the
same budget (``outer_iterations`` × ``inner_steps`` gradient steps):

* ``primary``: r_p alone;
* ``naive``: r_p + r_aux;
* ``shaping``: r_p + γ h(s') − h(s), potential-based shaping with the heuristic h as potential;
* ``barfi``: r_φ = φ1 + φ2·r_p + φ3·r_aux with a learned γ_φ, starting at the naive sum, φ
  learned by the bilevel loop (:func:`rewardlab.bilevel.barfi`).

Every method runs ``seeds`` seeds (random initial policies) in one vmapped call. Reported:
the primary return J_p under the environment's discount, as a fraction of the optimal policy's,
with 95 % bootstrap intervals over seeds; learning curves; BARFI's learned coefficients
(averaged over the state-actions the policy visits) and γ_φ over outer iterations.

Control tasks (``--env mountaincar`` or ``--env cartpole``, :func:`rewardlab_envs.mountain_car_task`,
:func:`rewardlab_envs.cart_pole_task`): the same four methods with the sampled actor-critic
inner learner of :func:`rewardlab.bilevel.barfi_actor_critic` on functional JAX dynamics, the blend
linear in the observation; reported is the undiscounted primary return per episode, averaged over
the last ``tail`` outer iterations, with 95 % bootstrap intervals over seeds.

HalfCheetah (``--env HalfCheetah-v5``, :mod:`experiments.barfi_mujoco`): a PPO inner learner warm-started
across outer iterations, BARFI's outer gradient first order from PPO's rollouts
(:func:`rewardlab.bilevel.barfi_sb3`); ``auxiliary`` ``good``/``bad`` is the control cost at weight
1/4; ``inner_timesteps`` env steps per outer iteration; runs (methods × seeds) on ``workers`` processes; reported is the
undiscounted primary (forward) return per episode.

PARL (``--preference-pairs B``, gridworld only): a fifth method whose upper objective is the
Bradley–Terry likelihood of B labelled segment pairs (:func:`rewardlab.bilevel.preference_objective`)
instead of the primary return; a simulated teacher labels pairs of random-policy segments by
their primary partial returns (Bradley–Terry probabilities, ``preference_temperature``). With
``--preference-labels on_policy`` the pairs are drawn afresh from the current policy every outer
iteration (:class:`rewardlab.bilevel.OnPolicyPreferences`) and labelled by the same teacher.

Run: ``python -m experiments.barfi --auxiliary both`` (figures and a table in the run folder;
docs/barfi.md has them), or as a sweep: ``rewardlab sweep experiments/barfi.toml``.

References:
    Gupta, Chandak, Jordan, Thomas and da Silva, "Behavior Alignment via Reward Function
    Optimization", NeurIPS 2023.
    Ng, Harada and Russell, "Policy invariance under reward transformations", ICML 1999.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from rewardlab._io import atomic_write_figure, atomic_write_json
from rewardlab.bilevel import (
    ActorCriticConfig,
    ActorCriticResult,
    BarfiConfig,
    BarfiResult,
    OnPolicyPreferences,
    TabularPreferences,
    barfi,
    barfi_actor_critic,
    linear_blend,
    on_policy_preference_objective,
    optimal_primary_return,
    preference_objective,
    tabular_problem,
)
from rewardlab.preferences import bradley_terry_probability
from rewardlab.shaping import potential_shaping
from rewardlab.sweeps import Logger, check_choices, parse_args, stratified_bootstrap_ci
from rewardlab_envs import ControlTask, cart_pole_task, detour_gridworld, mountain_car_task

METHODS = ("primary", "naive", "shaping", "barfi")
BASELINE_COEFFICIENTS = {"primary": (0.0, 1.0, 0.0), "naive": (0.0, 1.0, 1.0), "shaping": (0.0, 1.0, 1.0)}


@dataclasses.dataclass(frozen=True)
class Args:
    """Arguments of the BARFI study.

    Attributes:
        auxiliary: the auxiliary reward: ``good``, ``bad``, or ``both`` (one after the other).
        hypergradient: BARFI's outer gradient: ``neumann``, ``cg`` or ``unrolled``.
        seeds: seeds per method (a vmap axis), from ``seed`` on.
        seed: first seed.
        outer_iterations: outer updates of φ (and points of the learning curves).
        inner_steps: inner policy-gradient steps per outer iteration.
        learning_rate: inner step size.
        outer_learning_rate: Adam step size of φ.
        neumann_terms: Neumann-series terms of the implicit gradient.
        horizon: steps of the occupancy measure.
        scale: the auxiliary reward's scale c.
        initial_policy_scale: std of the random initial policy logits.
        env: ``detour`` (exact tabular learner), ``mountaincar`` or ``cartpole`` (sampled actor-critic),
            ``HalfCheetah-v5`` (PPO, first-order outer gradient; ``hypergradient`` becomes ``first_order``).
        episodes: episodes per batch of the actor-critic's inner updates (control tasks).
        outer_episodes: episodes of the batch BARFI's outer gradient and the reported return are
            estimated on (control tasks); 0 for ``episodes``.
        episode_horizon: steps per episode (control tasks; HalfCheetah's time limit, 1000 in gymnasium).
        actor_learning_rate: the actor-critic's actor step size, also its Neumann step (control tasks).
        normalize_advantages: the actor-critic scales its advantages to unit variance per batch (control tasks;
            ``false`` for the raw policy gradient).
        entropy_coefficient: weight of the policy's entropy in the actor-critic's objective (control tasks).
        inner_timesteps: PPO's env steps per outer iteration (HalfCheetah).
        workers: processes running HalfCheetah's runs (one run each, seeds and methods in parallel).
        tail: outer iterations at the end averaged into the reported return (control tasks).
        preference_pairs: B > 0 adds PARL with B labelled pairs (gridworld only).
        segment_length: steps per labelled segment (PARL).
        preference_temperature: the simulated teacher's Bradley–Terry temperature (PARL).
        preference_labels: ``"fixed"``: one set of random-policy pairs for the whole run;
            ``"on_policy"``: fresh pairs from the current policy every outer iteration (PARL).
        out_dir: parent folder of the run folder.
        run_name: run folder name; empty for the default, which encodes the design and seeds.
        figures: draw the learning-curve and coefficient figures.
    """

    auxiliary: Literal["good", "bad", "both"] = "both"
    env: Literal["detour", "mountaincar", "cartpole", "HalfCheetah-v5"] = "detour"
    hypergradient: Literal["neumann", "cg", "unrolled", "first_order"] = "neumann"
    seeds: int = 8
    seed: int = 0
    outer_iterations: int = 100
    inner_steps: int = 20
    learning_rate: float = 5.0
    outer_learning_rate: float = 0.1
    neumann_terms: int = 10
    horizon: int = 50
    scale: float = 0.1
    initial_policy_scale: float = 1.0
    episodes: int = 16
    outer_episodes: int = 0
    episode_horizon: int = 200
    actor_learning_rate: float = 0.1
    normalize_advantages: bool = True
    entropy_coefficient: float = 0.0
    inner_timesteps: int = 1024
    workers: int = 1
    tail: int = 5
    preference_pairs: int = 0
    segment_length: int = 10
    preference_temperature: float = 0.1
    preference_labels: Literal["fixed", "on_policy"] = "fixed"
    out_dir: Path = Path("runs")
    run_name: str = ""
    figures: bool = True

    def __post_init__(self) -> None:
        check_choices(self)
        names = ("seeds", "outer_iterations", "inner_steps", "neumann_terms", "horizon", "episodes", "episode_horizon")
        for name in (
            *names,
            "outer_episodes",
            "tail",
            "preference_pairs",
            "segment_length",
            "inner_timesteps",
            "workers",
        ):
            value = getattr(self, name)
            low = 0 if name in ("neumann_terms", "preference_pairs", "outer_episodes") else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name}: expected an integer >= {low}, got {value!r}")
        if self.preference_pairs and self.env != "detour":
            raise ValueError(f"preference_pairs: PARL runs on the detour gridworld only, got env={self.env!r}")
        if self.env == "HalfCheetah-v5":
            if self.hypergradient not in ("neumann", "first_order"):
                raise ValueError(f"hypergradient: HalfCheetah-v5 takes 'first_order' only, got {self.hypergradient!r}")
            object.__setattr__(self, "hypergradient", "first_order")
        elif self.hypergradient == "first_order":
            raise ValueError(
                f"hypergradient: 'first_order' is for HalfCheetah-v5 (an SB3 learner), got env={self.env!r}"
            )
        if self.env != "detour" and self.hypergradient == "unrolled":
            raise ValueError("hypergradient: the actor-critic loop takes 'neumann' or 'cg', got 'unrolled'")

    @property
    def name(self) -> str:
        """The run folder's name: environment, auxiliary reward, outer gradient and seeds."""
        parl = f"-parl{self.preference_pairs}" if self.preference_pairs else ""
        parl += "-onpolicy" if self.preference_pairs and self.preference_labels == "on_policy" else ""
        return (
            self.run_name
            or f"barfi-{self.env}-{self.auxiliary}-{self.hypergradient}{parl}-seeds{self.seed}-{self.seed + self.seeds - 1}"
        )

    def config(self, hypergradient: str) -> BarfiConfig:
        """The loop's settings for one method (``"none"`` for the fixed-reward baselines)."""
        unroll = min(10, self.inner_steps)
        return BarfiConfig(
            outer_iterations=self.outer_iterations,
            inner_steps=self.inner_steps,
            learning_rate=self.learning_rate,
            outer_learning_rate=self.outer_learning_rate,
            hypergradient=hypergradient,  # type: ignore[arg-type]
            neumann_terms=self.neumann_terms,
            unroll_steps=unroll,
            horizon=self.horizon,
            initial_policy_scale=self.initial_policy_scale,
        )


def run_methods(args: Args, auxiliary: str) -> tuple[dict[str, BarfiResult], float, np.ndarray]:
    """Every method over the seeds on one auxiliary reward.

    Returns:
        The results per method, the optimal policy's primary return, and BARFI's final φ3
        averaged over the state-actions where the auxiliary reward pays (``[N]``).
    """
    task = detour_gridworld(auxiliary, scale=args.scale)
    mdp = task.mdp
    problem = tabular_problem(mdp.transitions, mdp.initial_state_dist, mdp.reward, task.auxiliary, mdp.discount)
    alive = mdp.discount * (1.0 - np.asarray(mdp.terminal, np.float32))
    shaping = potential_shaping(0.0, task.potential[:, None, None], task.potential[None, None, :], alive[None, None, :])
    shaping_reward = np.where(np.asarray(mdp.transitions) > 0, np.asarray(shaping), 0.0)
    shaped = tabular_problem(mdp.transitions, mdp.initial_state_dist, mdp.reward, shaping_reward, mdp.discount)
    keys = jax.random.split(jax.random.key(args.seed), args.seeds)
    num_inputs = int(np.prod(problem.primary.shape))
    fixed = args.config("none")
    results = {}
    for method in METHODS:
        if method == "barfi":
            results[method] = barfi(problem, args.config(args.hypergradient), keys)
        else:
            start = np.broadcast_to(np.asarray(BASELINE_COEFFICIENTS[method], np.float32), (num_inputs, 3))
            results[method] = barfi(shaped if method == "shaping" else problem, fixed, keys, blend_params=start)
    if args.preference_pairs:
        config = args.config(args.hypergradient)
        if args.preference_labels == "on_policy":
            sampler = OnPolicyPreferences(args.preference_pairs, args.segment_length, args.preference_temperature)
            results["parl"] = barfi(
                problem, config, keys, outer_objective=on_policy_preference_objective, outer_sampler=sampler
            )
        else:
            pairs = simulated_preferences(task, args)
            results["parl"] = barfi(problem, config, keys, outer_objective=preference_objective, outer_data=pairs)
    results = jax.device_get(results)
    pays = np.asarray(problem.auxiliary) != 0  # [S, A]
    final_phi3 = np.asarray(results["barfi"].params.blend)[..., 2].reshape((args.seeds, *pays.shape))
    return results, float(optimal_primary_return(problem, args.horizon)), final_phi3[:, pays].mean(axis=1)


def simulated_preferences(task: Any, args: Args) -> TabularPreferences:
    """B pairs of random-policy segments on the gridworld, labelled by a Bradley–Terry teacher on r_p.

    Segments start at states drawn uniformly among the non-terminal ones and follow uniform random
    actions for ``segment_length`` steps (a terminal state absorbs); the label is
    P(σ¹ ≻ σ²) = sigmoid((R_p(σ¹) − R_p(σ²))/temperature) with R_p the segment's primary partial return.
    """
    mdp = task.mdp
    rng = np.random.default_rng(args.seed + 12345)
    transitions = np.asarray(mdp.transitions)
    num_states, num_actions = transitions.shape[:2]
    reward = np.asarray(mdp.reward, np.float64)
    primary = np.einsum("sat,sat->sa", transitions, reward) if reward.ndim == 3 else np.asarray(reward)
    if primary.ndim == 1:
        primary = np.broadcast_to(primary[:, None], (num_states, num_actions))
    starts = np.flatnonzero(~np.asarray(mdp.terminal, bool))
    shape = (args.preference_pairs, 2, args.segment_length)
    states = np.zeros(shape, np.int32)
    actions = rng.integers(0, num_actions, shape).astype(np.int32)
    state = rng.choice(starts, size=shape[:2])
    for t in range(args.segment_length):
        states[..., t] = state
        probabilities = transitions[state, actions[..., t]]  # [B, 2, S]
        cumulative = probabilities.cumsum(-1)
        state = (rng.random(shape[:2] + (1,)) < cumulative).argmax(-1)
    returns = primary[states, actions].sum(-1)  # [B, 2]
    labels = bradley_terry_probability(
        jnp.asarray(returns[:, 0]), jnp.asarray(returns[:, 1]), args.preference_temperature
    )
    return TabularPreferences(jnp.asarray(states), jnp.asarray(actions), jnp.asarray(labels, jnp.float32))


class ShapedComponents:
    """(r_p, γ h(o') − h(o)): potential-based shaping with the task's heuristic as the potential."""

    def __init__(self, task: ControlTask) -> None:
        self.task = task

    def __call__(self, obs: jax.Array, action: jax.Array, next_obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        primary, _ = self.task.components(obs, action, next_obs)
        return primary, self.task.discount * self.task.potential(next_obs) - self.task.potential(obs)


def control_task(env: str, auxiliary: str) -> ControlTask:
    """The control task ``env`` (``mountaincar`` or ``cartpole``) with the ``auxiliary`` heuristic."""
    return mountain_car_task(auxiliary) if env == "mountaincar" else cart_pole_task(auxiliary)


def run_control(args: Args, auxiliary: str) -> dict[str, ActorCriticResult]:
    """The four methods with the sampled actor-critic on a control task, all seeds vmapped per method."""
    task = control_task(args.env, auxiliary)
    num_features = int(task.env.observation(task.env.initial(jax.random.key(0)), None).shape[0])
    blend = linear_blend(num_features)
    keys = jax.random.split(jax.random.key(args.seed), args.seeds)
    shaped = ShapedComponents(task)
    results = {}
    for method in METHODS:
        config = ActorCriticConfig(
            num_actions=task.num_actions,
            outer_iterations=args.outer_iterations,
            inner_steps=args.inner_steps,
            num_episodes=args.episodes,
            outer_episodes=args.outer_episodes or None,
            horizon=args.episode_horizon,
            discount=task.discount,
            learning_rate=args.actor_learning_rate,
            outer_learning_rate=args.outer_learning_rate,
            hypergradient=args.hypergradient if method == "barfi" else "none",
            neumann_terms=args.neumann_terms,
            neumann_step=args.actor_learning_rate,
            normalize_advantages=args.normalize_advantages,
            entropy_coefficient=args.entropy_coefficient,
        )
        coefficients = BASELINE_COEFFICIENTS.get(method, (0.0, 1.0, 1.0))
        start = (jnp.zeros((num_features, 3), jnp.float32), jnp.asarray(coefficients, jnp.float32))
        components = shaped if method == "shaping" else task.components
        results[method] = barfi_actor_critic(task.env, components, config, keys, blend=blend, blend_params=start)
    return jax.device_get(results)


def _interval(values: np.ndarray) -> tuple[float, float, float]:
    interval = stratified_bootstrap_ci(np.asarray(values, np.float64), statistic=lambda x: np.mean(x, axis=-1))
    return float(interval.estimate), float(interval.low), float(interval.high)


def plot_study(
    path: Path, curves: dict[str, dict[str, np.ndarray]], optimum: dict[str, float], fraction_axis: bool = True
) -> None:
    """Primary return (fraction of optimal, or raw) against outer iterations, one panel per auxiliary reward."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 3.6), dpi=120, squeeze=False)
    for ax, (auxiliary, per_method) in zip(axes[0], curves.items(), strict=True):
        for method, returns in per_method.items():
            fraction = returns / optimum[auxiliary]  # [N, I]
            mean = fraction.mean(axis=0)
            low, high = np.percentile(fraction, [2.5, 97.5], axis=0)
            steps = np.arange(1, fraction.shape[1] + 1)
            ax.plot(steps, mean, label=method)
            ax.fill_between(steps, low, high, alpha=0.2)
        ax.set_title(f"{auxiliary} auxiliary reward")
        ax.set_xlabel("outer iteration")
        if fraction_axis:
            ax.set_ylim(-0.05, 1.05)
    axes[0][0].set_ylabel("primary return / optimal" if fraction_axis else "primary return per episode")
    axes[0][-1].legend(loc="lower right")
    fig.tight_layout()
    atomic_write_figure(path, fig, close=True)


def plot_coefficients(path: Path, learned: dict[str, Any]) -> None:
    """BARFI's visited-average (φ1, φ2, φ3) and γ_φ over outer iterations, mean ± range over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(learned), figsize=(5 * len(learned), 3.6), dpi=120, squeeze=False)
    for ax, (auxiliary, result) in zip(axes[0], learned.items(), strict=True):
        series = {
            "φ1 (bias)": np.asarray(result.coefficients)[..., 0],
            "φ2 (× r_p)": np.asarray(result.coefficients)[..., 1],
            "φ3 (× r_aux)": np.asarray(result.coefficients)[..., 2],
            "γ_φ": np.asarray(result.discount),
        }
        for label, values in series.items():
            steps = np.arange(1, values.shape[1] + 1)
            ax.plot(steps, values.mean(axis=0), label=label)
            ax.fill_between(steps, values.min(axis=0), values.max(axis=0), alpha=0.2)
        ax.set_title(f"learned blend, {auxiliary} auxiliary reward")
        ax.set_xlabel("outer iteration")
    axes[0][-1].legend(loc="best")
    fig.tight_layout()
    atomic_write_figure(path, fig, close=True)


def main(args: Args, logger: Logger | None = None) -> dict[str, Any]:
    """Run the study; return the summary (also ``summary.json`` and a Markdown table in the run folder).

    Without a ``logger`` the run folder is ``out_dir/<name>``; a sweep's logger brings its own.
    Per method the summary holds the mean final primary fraction with its 95 % bootstrap interval
    and each seed's value (``<auxiliary>/<method>/per_seed``). Logged curves:
    ``<auxiliary>/<method>/primary_fraction`` (mean over seeds) per outer iteration and BARFI's
    ``<auxiliary>/barfi/phi{1,2,3}`` and ``discount``.
    """
    start = time.perf_counter()
    run_dir = logger.run_dir if logger is not None and logger.run_dir is not None else Path(args.out_dir) / args.name
    run_dir.mkdir(parents=True, exist_ok=True)
    auxiliaries = ("good", "bad") if args.auxiliary == "both" else (args.auxiliary,)
    summary: dict[str, Any] = {"hypergradient": args.hypergradient, "seeds": args.seeds, "auxiliary": args.auxiliary}
    curves: dict[str, dict[str, np.ndarray]] = {}
    optimum: dict[str, float] = {}
    learned: dict[str, Any] = {}  # BARFI's results per auxiliary reward (coefficients, discount)
    rows = []
    summary["env"] = args.env
    halfcheetah_runs: dict[str, Any] = {}  # every HalfCheetah run, filled by the first call
    for auxiliary in auxiliaries:
        results: dict[str, BarfiResult] | dict[str, ActorCriticResult] | dict[str, Any]
        if args.env == "HalfCheetah-v5":
            from experiments.barfi_mujoco import run_halfcheetah

            results = run_halfcheetah(args, auxiliary, run_dir, halfcheetah_runs)
            optimum[auxiliary] = 1.0  # no ceiling: the raw primary return per episode
            phi3_where_paid = None
            tail = min(args.tail, args.outer_iterations)
        elif args.env == "detour":
            results, optimum[auxiliary], phi3_where_paid = run_methods(args, auxiliary)
            tail = 1
        else:  # the primary return's ceiling: every episode reaches the flag, or the pole stays up throughout
            results = run_control(args, auxiliary)
            optimum[auxiliary] = 1.0 if args.env == "mountaincar" else float(args.episode_horizon)
            phi3_where_paid = None
            tail = min(args.tail, args.outer_iterations)
        curves[auxiliary] = {method: np.asarray(result.primary_return) for method, result in results.items()}
        learned[auxiliary] = results["barfi"]
        summary[f"{auxiliary}/optimal_return"] = optimum[auxiliary]
        for method, result in results.items():
            fraction = np.asarray(result.primary_return)[:, -tail:].mean(axis=1) / optimum[auxiliary]
            estimate, low, high = _interval(fraction)
            summary[f"{auxiliary}/{method}/primary_fraction"] = estimate
            summary[f"{auxiliary}/{method}/primary_fraction_low"] = low
            summary[f"{auxiliary}/{method}/primary_fraction_high"] = high
            summary[f"{auxiliary}/{method}/diverged"] = int(np.sum(result.diverged))
            summary[f"{auxiliary}/{method}/per_seed"] = np.round(fraction, 4).tolist()
            rows.append(
                f"| {auxiliary} | {method} | {estimate:.3f} [{low:.3f}, {high:.3f}] | {int(np.sum(result.diverged))} |"
            )
            if logger is not None:
                mean_curve = np.asarray(result.primary_return).mean(axis=0) / optimum[auxiliary]
                for step, value in enumerate(mean_curve):
                    logger.log(step, **{f"{auxiliary}/{method}/primary_fraction": float(value)})
        final = np.asarray(results["barfi"].coefficients)[:, -1]  # [N, 3]
        summary[f"{auxiliary}/barfi/coefficients"] = final.mean(axis=0).round(4).tolist()
        if phi3_where_paid is not None:
            summary[f"{auxiliary}/barfi/phi3_where_auxiliary_pays"] = float(phi3_where_paid.mean())
        summary[f"{auxiliary}/barfi/discount"] = float(np.asarray(results["barfi"].discount)[:, -1].mean())
        if logger is not None:
            coefficients = np.asarray(results["barfi"].coefficients).mean(axis=0)
            discounts = np.asarray(results["barfi"].discount).mean(axis=0)
            for step in range(coefficients.shape[0]):
                logger.log(
                    step,
                    **{f"{auxiliary}/barfi/phi{k + 1}": float(coefficients[step, k]) for k in range(3)},
                    **{f"{auxiliary}/barfi/discount": float(discounts[step])},
                )
    heading = {"detour": " / optimal", "HalfCheetah-v5": " per episode"}.get(args.env, " / ceiling")
    table = "\n".join(
        [
            f"| auxiliary reward | method | final primary return{heading} (95 % CI) | diverged seeds |",
            "|---|---|---|---|",
            *rows,
        ]
    )
    (run_dir / "table.md").write_text(table + "\n")
    if args.figures:
        plot_study(run_dir / "barfi_learning_curves.png", curves, optimum, fraction_axis=args.env != "HalfCheetah-v5")
        plot_coefficients(run_dir / "barfi_coefficients.png", learned)
    summary["wall_s"] = float(time.perf_counter() - start)
    summary["run_dir"] = str(run_dir)
    atomic_write_json(run_dir / "summary.json", summary)
    return summary


if __name__ == "__main__":
    print(main(parse_args(Args)))
