"""Learning a tabular reward from preferences: segment pairs, fitting and scoring, all pure JAX.

One pipeline for every tabular preference study (``jax.vmap`` over seeds, designs or MDPs):

1. :func:`sample_tabular_pairs` draws random segment pairs (Knox et al.'s synthetic
   segments: random start states, uniformly random actions) as ``FragmentPairs`` of
   state/action indices. A dense ``[S, A, S']`` transition tensor samples s' ~ T(s, a, ·);
   the integer successor table ``[S, A]`` of a deterministic MDP (``rewardlab.tabular.successor_table``)
   is the fast path: one gather per step and all draws up front.
2. Labels come from a simulated teacher: the host teachers (``make_teacher``, e.g. the
   ``regret`` stage with :func:`tabular_advantage_fn`), or in-graph from
   ``bradley_terry_probability`` of partial returns or of :func:`pair_regrets`.
3. :func:`fit_tabular_reward` fits a :class:`rewardlab.tabular.TabularReward` (or a
   :class:`TabularRegretModel`) by full-batch Bradley–Terry: ``solver="adam"`` minimises
   ``preference_loss`` under any preference model (the regret model differentiates through
   the planner); ``solver="newton"`` is the fast path for a linear reward under the
   partial-return model, a ridge logistic regression on feature-sum differences that
   converges in a few Newton steps.
4. :func:`evaluate_tabular_reward` scores the learned reward: the scaled return
   (V^π − V^unif)/(V* − V^unif) of the policy greedy on it, of acting greedily on it as an
   advantage, and the share of states where its greedy action is optimal.

References:
    Knox, Hatgis-Kessell, Booth, Niekum, Stone and Allievi, "Models of human preference
    for learning reward functions", TMLR 2024 (arXiv:2206.02231).
    Bradley and Terry, "Rank analysis of incomplete block designs", Biometrika 1952.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from rewardlab._types import FragmentPairs, Preferences
from rewardlab.linalg import solve
from rewardlab.preferences._bradley_terry import bradley_terry_loss, preference_loss
from rewardlab.preferences._preference_model import PreferenceModel, check_preference_model
from rewardlab.tabular import (
    TabularReward,
    TabularRewardParams,
    expected_reward,
    greedy_policy,
    is_successor_table,
    scaled_return,
    value_iteration,
)

if TYPE_CHECKING:
    from rewardlab.preferences._regret import TabularRegretModel

TABULAR_SOLVERS = ("adam", "newton")
"""The solvers of ``fit_tabular_reward``."""


# --- Segment pairs ------------------------------------------------------------------------------------------------


def _at(array: jax.Array, states: jax.Array, actions: jax.Array, next_states: jax.Array, index_axes: int) -> jax.Array:
    """``array`` over its first ``index_axes`` axes ((s), (s, a) or (s, a, s')) at index arrays."""
    return array[(states, actions, next_states)[:index_axes]]


def sample_tabular_pairs(
    transitions: jax.Array,
    reward: jax.Array,
    initial_state_dist: jax.Array,
    key: jax.Array,
    num_pairs: int,
    length: int = 3,
    features: jax.Array | None = None,
    terminal: jax.Array | None = None,
) -> FragmentPairs:
    """Random segment pairs of a tabular MDP as ``FragmentPairs`` of state/action indices (pure JAX).

    Each segment starts at s_0 ~ d0 and takes uniformly random actions for ``length`` steps,
    s_{t+1} ~ T(s_t, a_t, ·) (Knox et al.'s synthetic segments: random start states and
    actions, length 3 on the delivery domain; the two segments of a pair are independent).
    Segments that enter an absorbing state stay there. ``obs``/``next_obs`` hold int32 state
    indices ``[B, 2, L]``, ``acts`` action indices, ``rews`` the true reward, ``factors``
    φ ``[B, 2, L, K]`` when ``features`` is given. Vmap over ``key`` for seeds.

    The two forms of ``transitions`` draw differently: the dense form draws s_0 and each s'
    by ``jax.random.categorical``; the successor table draws s_0 by inverse CDF and every
    action up front (``[L, B, 2]``), then follows the table. The same key gives other
    segments in the two forms.

    Args:
        transitions: ``[S, A, S']`` T(s, a, s'), or the int successor table ``[S, A]`` of a deterministic MDP.
        reward: true reward ``[S]``, ``[S, A]`` or ``[S, A, S']``.
        initial_state_dist: ``[S]`` d0.
        key: PRNG key.
        num_pairs: B (static).
        length: L steps per segment (static).
        features: optional φ over the same index axes as a reward, ``[S, K]``, ``[S, A, K]`` or ``[S, A, S', K]``.
        terminal: optional ``[S]`` bool; ``dones`` marks steps that enter a terminal state.

    Returns:
        ``FragmentPairs``.

    Example:
        >>> import jax
        >>> from rewardlab_envs import delivery_mdp
        >>> from rewardlab.tabular import successor_table
        >>> mdp = delivery_mdp()
        >>> pairs = sample_tabular_pairs(mdp.transitions, mdp.reward, mdp.initial_state_dist, jax.random.key(0), 4)
        >>> pairs.obs.shape, pairs.acts.dtype
        ((4, 2, 3), dtype('int32'))
        >>> fast = sample_tabular_pairs(successor_table(mdp.transitions), mdp.reward, mdp.initial_state_dist, jax.random.key(0), 4)
        >>> bool((mdp.transitions[fast.obs, fast.acts, fast.next_obs] == 1).all())
        True
    """
    transitions = jnp.asarray(transitions)
    num_states, num_actions = transitions.shape[:2]
    num_pairs, length = int(num_pairs), int(length)
    if is_successor_table(transitions):
        start_key, action_key = jax.random.split(key)
        start_u = jax.random.uniform(start_key, (num_pairs, 2))
        actions = jax.random.randint(action_key, (length, num_pairs, 2), 0, num_actions)
        starts = jnp.searchsorted(jnp.cumsum(jnp.asarray(initial_state_dist)), start_u).clip(
            0, num_states - 1
        )  # [B, 2] s0 ~ d0
        successors = transitions.reshape(-1)  # [S·A], indexed by s·A + a

        def table_step(states: jax.Array, actions_t: jax.Array) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
            next_states = successors[states * num_actions + actions_t]
            return next_states, (states, next_states)

        _, (states, next_states) = jax.lax.scan(table_step, starts, actions)  # [L, B, 2]
        states, actions, next_states = (
            jnp.moveaxis(x, 0, -1).astype(jnp.int32) for x in (states, actions, next_states)
        )  # [B, 2, L]
    else:
        start_key, action_key, step_key = jax.random.split(key, 3)
        count = 2 * num_pairs
        starts = jax.random.categorical(start_key, jnp.log(jnp.asarray(initial_state_dist)), shape=(count,))
        actions = jax.random.randint(action_key, (count, length), 0, num_actions)
        step_keys = jax.random.split(step_key, length)

        def step(
            states: jax.Array, inputs: tuple[jax.Array, jax.Array]
        ) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
            actions_t, key_t = inputs
            logits = jnp.log(transitions[states, actions_t])
            next_states = jax.random.categorical(key_t, logits, axis=-1)
            return next_states, (states, next_states)

        _, (states, next_states) = jax.lax.scan(step, starts, (actions.T, step_keys))
        shape = (num_pairs, 2, length)
        states = states.T.astype(jnp.int32).reshape(shape)
        next_states = next_states.T.astype(jnp.int32).reshape(shape)
        actions = actions.astype(jnp.int32).reshape(shape)
    reward = jnp.asarray(reward)
    rews = _at(reward, states, actions, next_states, reward.ndim)
    dones = jnp.zeros_like(states, bool) if terminal is None else jnp.asarray(terminal)[next_states]
    factors = None
    if features is not None:
        features = jnp.asarray(features)
        factors = _at(features, states, actions, next_states, features.ndim - 1)
    return FragmentPairs(states, actions, next_states, dones, rews, factors)


# --- Fitting ------------------------------------------------------------------------------------------------------


def _newton_fit(
    model: TabularReward,
    pairs: FragmentPairs,
    labels: jax.Array,
    pair_weights: jax.Array,
    weights: jax.Array,
    l2: float,
    num_steps: int,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Ridge logistic regression of the labels on Φ¹ − Φ² (Φ = Σ_t φ_t) by Newton's method: (ŵ, losses, final loss)."""
    feature_sums = jnp.sum(model.lookup(model.features, pairs.obs, pairs.acts, pairs.next_obs), axis=2)  # [B, 2, K]
    differences = feature_sums[:, 0] - feature_sums[:, 1]  # [B, K]: the logit is w·(Φ¹ − Φ²)

    def loss_fn(w: jax.Array) -> jax.Array:
        predicted = feature_sums @ w  # [B, 2]
        losses = jax.vmap(bradley_terry_loss)(predicted[:, 0], predicted[:, 1], labels)
        return jnp.sum(pair_weights * losses) + 0.5 * l2 * w @ w

    def newton_step(w: jax.Array, _: None) -> tuple[jax.Array, jax.Array]:
        # IRLS: ∇L = Σ c(p − y)x + λw, ∇²L = Σ c p(1 − p) x xᵀ + λI with p = logistic(w·x); convex, so a few steps converge.
        probability = jax.nn.sigmoid(differences @ w)  # [B]
        grad = differences.T @ (pair_weights * (probability - labels)) + l2 * w
        curvature = pair_weights * probability * (1.0 - probability)
        hessian = (differences * curvature[:, None]).T @ differences + l2 * jnp.eye(w.shape[0])
        return w - solve(hessian, grad), loss_fn(w)

    weights, losses = jax.lax.scan(newton_step, weights, None, length=int(num_steps))
    return weights, losses, loss_fn(weights)


def fit_tabular_reward(
    model: TabularReward | TabularRegretModel,
    pairs: FragmentPairs,
    labels: jax.Array,
    key: jax.Array | None = None,
    *,
    preference_model: PreferenceModel = PreferenceModel("regret"),
    weights: jax.Array | None = None,
    solver: str = "adam",
    num_steps: int = 500,
    learning_rate: float = 0.5,
    l2: float = 0.0,
) -> tuple[TabularRewardParams, dict[str, jax.Array]]:
    """Full-batch Bradley–Terry training of a tabular reward under ``lax.scan`` (pure; vmap over seeds).

    ``solver="adam"`` minimises ``preference_loss(model, params, Preferences(pairs, labels),
    preference_model, weights) + λ/2 ‖θ‖²`` with Adam for ``num_steps`` steps; ``model`` is a
    :class:`rewardlab.tabular.TabularReward` or a :class:`TabularRegretModel` (needed for
    ``PreferenceModel("regret")``).

    ``solver="newton"`` fits a linear reward r = φ·w under ``PreferenceModel("partial_return")``
    (temperature 1, no label noise):
    with Φ = Σ_t φ(s_t, a_t, s_{t+1}) per segment and x = Φ¹ − Φ², it minimises the ridge
    logistic loss Σ_b c_b BT(w·Φ¹_b, w·Φ²_b, y_b) + λ/2 ‖w‖² (c = weights / max(Σ weights, 1))
    by ``num_steps`` Newton steps w ← w − (Σ c p(1 − p) x xᵀ + λI)⁻¹ (Σ c (p − y) x + λw),
    p = logistic(w·x). Convex, so a few steps converge; λ > 0 keeps ŵ finite when the labels
    are separable.

    ``weights`` ``[B]`` masks pairs (e.g. to train on the first n of a padded set, so
    different label budgets share one compiled program).

    Args:
        model: a ``TabularReward`` (linear for ``solver="newton"``) or a ``TabularRegretModel``.
        pairs: ``FragmentPairs`` of state/action indices ``[B, 2, L]``.
        labels: ``[B]`` P(σ¹ ≻ σ²) labels in [0, 1].
        key: PRNG key of the initial parameters (used by ``mlp`` rewards only).
        preference_model: ``preference_loss``'s model (``PreferenceModel("partial_return")`` for Newton).
        weights: ``[B]`` pair weights (default all 1).
        solver: ``"adam"`` or ``"newton"``.
        num_steps: optimiser steps (static).
        learning_rate: Adam step size.
        l2: ridge coefficient λ ≥ 0.

    Returns:
        ``(params, {"loss": [num_steps] (before each step), "final_loss": scalar (after the last)})``.

    Raises:
        ValueError: an unknown solver, Newton on anything but a linear reward under
            ``PreferenceModel("partial_return")``, ``preference_model`` not a ``PreferenceModel``,
            or a negative ``l2``.

    Example:
        >>> import jax, numpy as np
        >>> from rewardlab_envs import random_mdp
        >>> from rewardlab.preferences import PreferenceModel, TabularRegretModel, make_teacher, tabular_advantage_fn
        >>> from rewardlab.tabular import linear_reward
        >>> mdp = random_mdp(6, 2, seed=0, branching=2, num_features=3, discount=0.9)
        >>> pairs = sample_tabular_pairs(mdp.transitions, mdp.reward, mdp.initial_state_dist, jax.random.key(0), 64)
        >>> labels = make_teacher("regret", advantage_fn=tabular_advantage_fn(mdp, num_sweeps=100))(pairs, np.random.default_rng(0))
        >>> model = TabularRegretModel(linear_reward(mdp.features), mdp.transitions, mdp.discount, num_sweeps=50)
        >>> params, metrics = fit_tabular_reward(model, pairs, labels, jax.random.key(1), num_steps=20)
        >>> bool(metrics["loss"][-1] < metrics["loss"][0])
        True
        >>> params, metrics = fit_tabular_reward(linear_reward(mdp.features), pairs, labels,
        ...                                      preference_model=PreferenceModel("partial_return"), solver="newton", num_steps=5, l2=1e-3)
        >>> bool(metrics["final_loss"] < metrics["loss"][0])
        True
    """
    if solver not in TABULAR_SOLVERS:
        raise ValueError(f"solver: expected one of {TABULAR_SOLVERS}, got {solver!r}")
    if not float(l2) >= 0:
        raise ValueError(f"l2: expected >= 0, got {l2!r}")
    check_preference_model(preference_model)
    labels = jnp.asarray(labels, jnp.float32)
    mask = jnp.ones(jnp.shape(labels), jnp.float32) if weights is None else jnp.asarray(weights, jnp.float32)
    params = model.init(key)
    if solver == "newton":
        if (
            not isinstance(model, TabularReward)
            or model.name != "linear"
            or preference_model != PreferenceModel("partial_return")
        ):
            raise ValueError(
                "solver: 'newton' fits a linear TabularReward (linear_reward(features)) under PreferenceModel('partial_return') "
                f"(temperature 1, no label noise), got {model!r} under {preference_model!r}"
            )
        pair_weights = mask / jnp.maximum(mask.sum(), 1.0)
        net, losses, final_loss = _newton_fit(model, pairs, labels, pair_weights, params.net, float(l2), num_steps)
        return TabularRewardParams(net), {"loss": losses, "final_loss": final_loss}

    optimizer = optax.adam(learning_rate)
    prefs = Preferences(pairs._replace(factors=None), labels)

    def loss_fn(net: Any) -> jax.Array:
        loss = preference_loss(model, TabularRewardParams(net), prefs, preference_model=preference_model, weights=mask)
        if l2:
            loss = loss + 0.5 * l2 * sum(jnp.sum(jnp.square(leaf)) for leaf in jax.tree.leaves(net))
        return loss

    def step(carry: tuple[Any, Any], _: None) -> tuple[tuple[Any, Any], jax.Array]:
        net, opt_state = carry
        loss, grads = jax.value_and_grad(loss_fn)(net)
        updates, opt_state = optimizer.update(grads, opt_state, net)
        return (optax.apply_updates(net, updates), opt_state), loss

    (net, _), losses = jax.lax.scan(step, (params.net, optimizer.init(params.net)), None, length=int(num_steps))
    return TabularRewardParams(net), {"loss": losses, "final_loss": loss_fn(net)}


# --- Scoring ------------------------------------------------------------------------------------------------------


class TabularEvaluation(NamedTuple):
    """How well a learned tabular reward serves its MDP's true reward."""

    scaled_return: jax.Array  # scalar (V^π − V^unif)/(V* − V^unif) of the policy greedy on the learned reward's Q*
    scaled_return_as_advantage: (
        jax.Array
    )  # scalar, of the policy greedy on the learned function itself (argmax_a E r̂(s,a,s'))
    optimal_action_fraction: jax.Array  # scalar share of non-terminal states where the learned greedy action is optimal


def evaluate_tabular_reward(
    transitions: jax.Array,
    true_reward: jax.Array,
    learned_reward: jax.Array,
    discount: float,
    initial_state_dist: jax.Array,
    terminal: jax.Array,
    *,
    num_sweeps: int = 1000,
    evaluation_sweeps: int | None = None,
    atol: float = 1e-3,
) -> TabularEvaluation:
    """Scaled return of the greedy policy of a learned reward, and of acting greedily on it as an advantage (pure).

    The learned reward is planned on by ``num_sweeps`` of value iteration; π is uniform over
    the actions within ``atol`` of the best. Values come from ``scaled_return`` (exact policy
    evaluation, or ``evaluation_sweeps`` backups). Under ``jit`` the figures a caller drops
    are not computed.

    Args:
        transitions: ``[S, A, S']`` T, or the int successor table ``[S, A]`` of a deterministic MDP.
        true_reward: ``[S]``, ``[S, A]`` or ``[S, A, S']``.
        learned_reward: the same forms.
        discount: γ.
        initial_state_dist: ``[S]`` d0.
        terminal: ``[S]`` bool (terminal states do not count in ``optimal_action_fraction``).
        num_sweeps: value-iteration sweeps of planning.
        evaluation_sweeps: policy-evaluation backups (None: exact).
        atol: tie tolerance of the greedy policies.

    Example:
        >>> from rewardlab_envs import random_mdp
        >>> mdp = random_mdp(6, 2, seed=0, branching=2, discount=0.9)
        >>> ev = evaluate_tabular_reward(mdp.transitions, mdp.reward, mdp.reward, mdp.discount, mdp.initial_state_dist, mdp.terminal,
        ...                              num_sweeps=200)
        >>> round(float(ev.scaled_return), 3), round(float(ev.optimal_action_fraction), 3)
        (1.0, 1.0)
    """
    transitions = jnp.asarray(transitions)
    learned_plan = value_iteration(transitions, learned_reward, discount, num_sweeps=num_sweeps)
    policy = greedy_policy(learned_plan.q_values, atol=atol)
    as_advantage = greedy_policy(expected_reward(transitions, learned_reward), atol=atol)
    true_plan = value_iteration(transitions, true_reward, discount, num_sweeps=num_sweeps)
    true_q = true_plan.q_values
    optimal = true_q >= jnp.max(true_q, axis=-1, keepdims=True) - atol * jnp.maximum(1.0, jnp.abs(true_q).max())
    picks_optimal = jnp.sum(policy * optimal, axis=-1) >= 1.0 - 1e-6
    live = ~jnp.asarray(terminal)
    fraction = jnp.sum(picks_optimal & live) / jnp.maximum(jnp.sum(live), 1)

    def scale(pi: jax.Array) -> jax.Array:
        return scaled_return(
            transitions,
            true_reward,
            discount,
            pi,
            initial_state_dist,
            num_sweeps=num_sweeps,
            evaluation_sweeps=evaluation_sweeps,
        )

    return TabularEvaluation(scale(policy), scale(as_advantage), fraction)
