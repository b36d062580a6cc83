"""The regret preference model (Knox et al.): preferences from the optimal advantage of a segment.

A segment σ = (s_0, a_0, …, s_L) has regret under a reward r

    regret(σ) = Σ_t [V*_r(s_t) − Q*_r(s_t, a_t)] = −Σ_t A*_r(s_t, a_t),

which with deterministic transitions and γ = 1 telescopes to V*(s_0) − (Σ_t r_t + V*(s_L)).
The regret preference model says P(σ¹ ≻ σ²) = logistic((regret(σ²) − regret(σ¹)) / β); in
the Bradley–Terry machinery of ``preference_loss`` the score of a segment is
−regret(σ) = Σ_t A(s_t, a_t), so ``preference_model="regret"`` needs a model with an
``advantage(params, obs, acts, next_obs, dones) -> [E, N]`` method besides ``apply``.

Learning needs A* of the *candidate* reward. This module gives three ways:

* :class:`TabularRewardModel` (``value_model="exact"``): differentiable (soft) value
  iteration of the candidate reward on a :class:`rewardlab_envs.TabularMDP`
  (``rewardlab.tabular.value_iteration``, a ``lax.scan`` of Bellman backups), so the
  loss is differentiated end to end through the planner. The reward is linear,
  r = φ·w over ``mdp.features``, or a free ``[S, A, S']`` table.
* ``value_model="successor_features"``: Knox et al.'s approximation for linear rewards,
  V*_w(s) ≈ Σ_π softmax_π(w·ψ^π(s)/T) w·ψ^π(s) over a library of successor features ψ^π
  of greedy policies of random rewards (:func:`successor_feature_library`, T = 0.001),
  and Q̂(s,a) = E_{s'}[w·φ(s,a,s') + γ V̂(s')].
* :class:`ContinuousRegretModel`: a reward network and a Q network of the candidate
  reward trained jointly, for continuous control: the preference loss acts on
  A(s,a) = Q(s,a) − max(Q(s,a), max_m Q(s, a_m)) with M fixed probe actions a_m, and a
  temporal-difference loss on the labelled transitions, Q(s,a) ≈ r(s,a,s') + γ V(s'),
  ties the reward to Q (r is the Bellman residual of Q). Cost per preference batch: the
  Q network runs on (M + 1)·N state-action pairs for A and M·N for V(s'), i.e. about
  2(M + 1) times the work of the partial-return model's N reward evaluations.

Simulated teachers label by the true reward's regret with the ``regret`` teacher stage
(``make_teacher("regret", advantage_fn=...)``); :func:`tabular_advantage_fn` gives the
exact A* of a tabular MDP's true reward.

References:
    Knox, Hatgis-Kessell, Booth, Niekum, Stone and Allievi, "Models of human preference
    for learning reward functions", TMLR 2024 (arXiv:2206.02231).
    Knox et al., "Learning optimal advantage from preferences and mistaking it for
    reward", AAAI 2024 (a partial-return learner on regret labels learns A*; acting
    greedily on it is the "learned-as-advantage" policy).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rewardlab._types import FragmentPairs, Preferences
from rewardlab.preferences._bradley_terry import preference_loss
from rewardlab.tabular import (
    bellman_backup,
    expected_reward,
    greedy_policy,
    policy_evaluation,
    scaled_return,
    value_iteration,
)

VALUE_MODELS = ("exact", "successor_features")
PARAMETERIZATIONS = ("linear", "table")


# --- Single-segment regret ------------------------------------------------------------------------------------


def segment_regret(q_values: jax.Array, state_values: jax.Array, states: jax.Array, actions: jax.Array) -> jax.Array:
    """Regret of one segment: Σ_t [V(s_t) − Q(s_t, a_t)].

    Args:
        q_values: ``[S, A]`` Q(s, a) of the reward being judged.
        state_values: ``[S]`` V(s) (max_a Q for the hard model, a soft maximum for the soft one).
        states: ``[L]`` int state indices s_t.
        actions: ``[L]`` int action indices a_t.

    Returns:
        Scalar regret (≥ 0 when V = max_a Q).

    Example:
        >>> import jax.numpy as jnp
        >>> q = jnp.array([[1.0, 3.0], [2.0, 0.0]])
        >>> float(segment_regret(q, q.max(-1), jnp.array([0, 1]), jnp.array([0, 0])))  # (3−1) + (2−2)
        2.0
    """
    states = jnp.asarray(states)
    actions = jnp.asarray(actions)
    return jnp.sum(state_values[states] - q_values[states, actions])


def regret_probability(regret_1: jax.Array, regret_2: jax.Array, beta: float | jax.Array = 1.0) -> jax.Array:
    """P(σ¹ ≻ σ²) = logistic((regret(σ²) − regret(σ¹)) / β) for one pair.

    Example:
        >>> round(float(regret_probability(0.0, 1.0)), 4)
        0.7311
    """
    return jax.nn.sigmoid((regret_2 - regret_1) / beta)


def optimal_advantages(
    transitions: jax.Array, reward: jax.Array, discount: float | jax.Array, *, temperature: float = 0.0, num_sweeps: int = 200
) -> jax.Array:
    """A(s, a) = Q(s, a) − V(s) of a reward by (soft) value iteration: ``[S, A]``.

    Differentiable in ``reward`` (soft backups for τ > 0; the hard max has the Danskin
    subgradient, the successor features of the greedy policy).

    Example:
        >>> import jax.numpy as jnp
        >>> T = jnp.array([[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [0.0, 1.0]]])  # state 1 absorbing
        >>> r = jnp.array([[0.0, 1.0], [0.0, 0.0]])  # action 1 in state 0 pays 1; waiting a step halves it
        >>> optimal_advantages(T, r, 0.5).tolist()
        [[-0.5, 0.0], [0.0, 0.0]]
    """
    result = value_iteration(transitions, reward, discount, num_sweeps=num_sweeps, temperature=temperature)
    return result.q_values - result.state_values[:, None]


# --- Tabular segments -------------------------------------------------------------------------------------------


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
    Segments that enter an absorbing state stay there (zero reward). ``obs``/``next_obs``
    hold int32 state indices ``[B, 2, L]``, ``acts`` action indices, ``rews`` the true
    r(s, a, s'), ``factors`` φ(s, a, s') ``[B, 2, L, K]`` when ``features`` is given.
    Vmap over ``key`` for seeds.

    Args:
        transitions: ``[S, A, S']``.
        reward: ``[S, A, S']`` true reward.
        initial_state_dist: ``[S]`` d0.
        key: PRNG key.
        num_pairs: B (static).
        length: L steps per segment (static).
        features: optional ``[S, A, S', K]``.
        terminal: optional ``[S]`` bool; ``dones`` marks steps that enter a terminal state.

    Returns:
        ``FragmentPairs``.

    Example:
        >>> import jax
        >>> from rewardlab_envs import delivery_mdp
        >>> mdp = delivery_mdp()
        >>> pairs = sample_tabular_pairs(mdp.transitions, mdp.reward, mdp.initial_state_dist, jax.random.key(0), 4)
        >>> pairs.obs.shape, pairs.acts.dtype
        ((4, 2, 3), dtype('int32'))
    """
    transitions = jnp.asarray(transitions)
    num_states, num_actions, _ = transitions.shape
    start_key, action_key, step_key = jax.random.split(key, 3)
    count = 2 * int(num_pairs)
    starts = jax.random.categorical(start_key, jnp.log(jnp.asarray(initial_state_dist)), shape=(count,))
    actions = jax.random.randint(action_key, (count, int(length)), 0, num_actions)
    step_keys = jax.random.split(step_key, int(length))

    def step(states: jax.Array, inputs: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
        actions_t, key_t = inputs
        logits = jnp.log(transitions[states, actions_t])
        next_states = jax.random.categorical(key_t, logits, axis=-1)
        return next_states, (states, next_states)

    _, (states, next_states) = jax.lax.scan(step, starts, (actions.T, step_keys))
    states, next_states = states.T.astype(jnp.int32), next_states.T.astype(jnp.int32)  # [2B, L]
    actions = actions.astype(jnp.int32)
    rews = jnp.asarray(reward)[states, actions, next_states]
    dones = jnp.zeros_like(states, bool) if terminal is None else jnp.asarray(terminal)[next_states]
    shape = (int(num_pairs), 2, int(length))
    factors = None if features is None else jnp.asarray(features)[states, actions, next_states].reshape(*shape, -1)
    return FragmentPairs(
        states.reshape(shape), actions.reshape(shape), next_states.reshape(shape), dones.reshape(shape), rews.reshape(shape), factors
    )


def tabular_advantage_fn(mdp: Any, *, num_sweeps: int = 1000) -> Any:
    """Exact optimal advantage A*(s, a) of ``mdp.reward`` as a host ``RewardFn``-shaped callable.

    Hard value iteration finds the optimal policy; for γ < 1 its exact values come from
    ``policy_evaluation`` (for γ = 1, the value-iteration values are used). The returned function maps state/action indices
    ``(obs [N], acts [N], next_obs [N], dones [N]) -> A* [N]``, for the ``regret`` teacher stage.

    Example:
        >>> import numpy as np
        >>> from rewardlab_envs import delivery_mdp
        >>> advantage = tabular_advantage_fn(delivery_mdp())
        >>> s = 1 * 10 + 9  # right of the goal: left (2) enters it; right (3) bumps the edge (−1) and loses a step
        >>> advantage(np.array([s, s]), np.array([2, 3]), None, None).round(3).tolist()
        [0.0, -1.05]
    """
    transitions = jnp.asarray(mdp.transitions)
    reward = jnp.asarray(mdp.reward)
    plan = value_iteration(transitions, reward, mdp.discount, num_sweeps=num_sweeps)
    q_values = plan.q_values
    if float(mdp.discount) < 1.0:  # exact values of the greedy policy (with γ = 1 absorbing states make the system singular)
        values = policy_evaluation(transitions, reward, mdp.discount, greedy_policy(plan.q_values))
        q_values = bellman_backup(transitions, reward, mdp.discount, values)
    table = np.asarray(q_values - jnp.max(q_values, axis=-1, keepdims=True), np.float64)

    def advantage(obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
        del next_obs, dones
        return table[np.asarray(obs, np.int64), np.asarray(acts, np.int64)]

    return advantage


# --- Knox et al.'s successor-feature approximation -----------------------------------------------------------


class SuccessorFeatures(NamedTuple):
    """A library of N policies' successor features on a tabular MDP with K features."""

    state_features: jax.Array  # [N, S, K] ψ^π(s) = E_π[Σ_t γ^t φ(s_t, a_t, s_{t+1}) | s_0 = s]
    policy_weights: jax.Array  # [N, K] the random reward weights whose greedy policies π form the library


def successor_feature_library(
    transitions: jax.Array,
    features: jax.Array,
    discount: float,
    key: jax.Array,
    num_policies: int = 64,
    *,
    num_sweeps: int = 200,
    policy_weights: jax.Array | None = None,
) -> SuccessorFeatures:
    """Successor features ψ^π of the greedy policies of ``num_policies`` random linear rewards.

    w_i ~ N(0, I_K) (or the rows of ``policy_weights`` ``[N, K]`` when given); π_i greedy on w_i·φ (hard value iteration); ψ^{π_i} solves
    (I − γ P_π) ψ = E_π[φ] per feature (``policy_evaluation`` vmapped over features and policies).
    With γ = 1 a policy that never reaches an absorbing state makes the system singular: use γ < 1.

    Example:
        >>> import jax
        >>> from rewardlab_envs import delivery_mdp
        >>> mdp = delivery_mdp()
        >>> sf = successor_feature_library(mdp.transitions, mdp.features, mdp.discount, jax.random.key(0), 8)
        >>> sf.state_features.shape
        (8, 100, 6)
    """
    transitions = jnp.asarray(transitions)
    features = jnp.asarray(features)
    num_features = features.shape[-1]
    if policy_weights is None:
        weights = jax.random.normal(key, (int(num_policies), num_features), features.dtype)
    else:
        weights = jnp.asarray(policy_weights, features.dtype)
        if weights.ndim != 2 or weights.shape[1] != num_features:
            raise ValueError(f"policy_weights: expected shape [N, {num_features}], got {weights.shape}")

    def library_entry(w: jax.Array) -> jax.Array:
        plan = value_iteration(transitions, features @ w, discount, num_sweeps=num_sweeps)
        policy = greedy_policy(plan.q_values)
        per_feature = jax.vmap(lambda k: policy_evaluation(transitions, features[..., k], discount, policy))(jnp.arange(num_features))
        return per_feature.T  # [S, K]

    return SuccessorFeatures(jax.lax.map(library_entry, weights), weights)


def successor_feature_values(library: SuccessorFeatures, weights: jax.Array, temperature: float = 0.001) -> jax.Array:
    """V̂*_w(s) = Σ_π softmax_π(w·ψ^π(s)/T)·w·ψ^π(s) over the library: ``[S]`` (Knox et al., T = 0.001).

    Example:
        >>> import jax.numpy as jnp
        >>> library = SuccessorFeatures(jnp.array([[[1.0]], [[3.0]]]), jnp.zeros((2, 1)))  # 2 policies, 1 state
        >>> round(float(successor_feature_values(library, jnp.array([1.0]))[0]), 4)
        3.0
    """
    values = jnp.einsum("nsk,k->ns", library.state_features, weights)
    probabilities = jax.nn.softmax(values / temperature, axis=0)
    return jnp.sum(probabilities * values, axis=0)


# --- Tabular candidate-reward model ----------------------------------------------------------------------------


class TabularRewardParams(NamedTuple):
    """Parameters of a :class:`TabularRewardModel`."""

    net: jax.Array  # [K] linear weights w (r = φ·w), or [S, A, S'] reward table


class TabularRewardModel:
    """A candidate reward on a tabular MDP, with the optimal advantage the regret model needs.

    ``apply`` returns r(s, a, s') at state/action indices (one ensemble member) so the
    partial-return model trains it as any reward model; ``advantage`` plans with the
    candidate reward and returns A(s, a) = Q(s, a) − V(s), so ``preference_model="regret"``
    trains it through the planner. Works with ``train_reward``/``RewardTrainer`` and with
    :func:`fit_tabular_reward` (full batch, vmappable over seeds).

    Args:
        mdp: a ``TabularMDP`` (``features`` needed for ``parameterization="linear"``).
        parameterization: ``"linear"`` (r = φ·w) or ``"table"`` (free r(s, a, s')).
        value_model: ``"exact"`` ((soft) value iteration) or ``"successor_features"``
            (Knox et al.'s approximation; linear only; ``library`` required).
        temperature: τ of the soft backups (0: hard max).
        num_sweeps: value-iteration sweeps per planning call.
        library: successor features for ``value_model="successor_features"``.
        library_temperature: T of the softmax over the library (Knox et al.: 0.001).

    Raises:
        ValueError: unknown options, missing features or library, or a negative temperature.

    Example:
        >>> import jax.numpy as jnp, numpy as np
        >>> from rewardlab_envs import delivery_mdp
        >>> mdp = delivery_mdp()
        >>> model = TabularRewardModel(mdp)
        >>> params = TabularRewardParams(jnp.asarray(mdp.true_weights))
        >>> s = 19  # right of the goal
        >>> model.apply(params, np.array([s]), np.array([2]), np.array([s - 1]), np.array([True])).tolist()
        [[50.0]]
    """

    ensemble_size = 1

    def __init__(
        self,
        mdp: Any,
        *,
        parameterization: str = "linear",
        value_model: str = "exact",
        temperature: float = 0.0,
        num_sweeps: int = 200,
        library: SuccessorFeatures | None = None,
        library_temperature: float = 0.001,
    ) -> None:
        if parameterization not in PARAMETERIZATIONS:
            raise ValueError(f"parameterization: expected one of {PARAMETERIZATIONS}, got {parameterization!r}")
        if value_model not in VALUE_MODELS:
            raise ValueError(f"value_model: expected one of {VALUE_MODELS}, got {value_model!r}")
        if parameterization == "linear" and mdp.features is None:
            raise ValueError("mdp: parameterization='linear' needs mdp.features ([S, A, S', K]), got None")
        if value_model == "successor_features" and (parameterization != "linear" or library is None):
            raise ValueError("library: value_model='successor_features' needs parameterization='linear' and a SuccessorFeatures library")
        if not float(temperature) >= 0:
            raise ValueError(f"temperature: expected >= 0, got {temperature!r}")
        if int(num_sweeps) < 1:
            raise ValueError(f"num_sweeps: expected an integer >= 1, got {num_sweeps!r}")
        self.transitions = jnp.asarray(mdp.transitions)
        self.features = None if mdp.features is None else jnp.asarray(mdp.features)
        self.discount = float(mdp.discount)
        self.parameterization = parameterization
        self.value_model = value_model
        self.temperature = 0 if float(temperature) == 0 else float(temperature)
        self.num_sweeps = int(num_sweeps)
        self.library = library
        self.library_temperature = float(library_temperature)

    @property
    def param_shape(self) -> tuple[int, ...]:
        """Shape of ``params.net``: ``(K,)`` or ``(S, A, S')``."""
        return (self.features.shape[-1],) if self.parameterization == "linear" else tuple(self.transitions.shape)

    def init(self, key: jax.Array | None = None, scale: float = 0.0) -> TabularRewardParams:
        """Parameters: zeros, or N(0, scale²) draws when ``key`` is given and ``scale`` > 0."""
        if key is None or scale == 0:
            return TabularRewardParams(jnp.zeros(self.param_shape, jnp.float32))
        return TabularRewardParams(scale * jax.random.normal(key, self.param_shape, jnp.float32))

    def reward(self, net: jax.Array) -> jax.Array:
        """The candidate reward table r(s, a, s'): ``[S, A, S']``."""
        net = jnp.asarray(net)
        if net.shape != self.param_shape:
            raise ValueError(f"params.net: expected shape {self.param_shape}, got {net.shape}")
        return self.features @ net if self.parameterization == "linear" else net

    def advantage_table(self, net: jax.Array) -> jax.Array:
        """A(s, a) = Q(s, a) − V(s) of the candidate reward: ``[S, A]``."""
        reward = self.reward(net)
        if self.value_model == "exact":
            return optimal_advantages(self.transitions, reward, self.discount, temperature=self.temperature, num_sweeps=self.num_sweeps)
        values = successor_feature_values(self.library, net, self.library_temperature)
        q_values = bellman_backup(self.transitions, reward, self.discount, values)
        return q_values - values[:, None]

    def apply(self, params: TabularRewardParams, obs: Any, acts: Any, next_obs: Any, dones: Any) -> jax.Array:
        """r(s, a, s') at index arrays ``[N]``: ``[1, N]``."""
        del dones
        return self.reward(params.net)[jnp.asarray(obs), jnp.asarray(acts), jnp.asarray(next_obs)][None]

    def advantage(self, params: TabularRewardParams, obs: Any, acts: Any, next_obs: Any, dones: Any) -> jax.Array:
        """A(s, a) of the candidate reward at index arrays ``[N]``: ``[1, N]`` (one planning call)."""
        del next_obs, dones
        return self.advantage_table(params.net)[jnp.asarray(obs), jnp.asarray(acts)][None]


def fit_tabular_reward(
    model: TabularRewardModel,
    pairs: FragmentPairs,
    labels: jax.Array,
    key: jax.Array,
    *,
    preference_model: str = "regret",
    weights: jax.Array | None = None,
    num_steps: int = 500,
    learning_rate: float = 0.5,
    init_scale: float = 0.0,
) -> tuple[TabularRewardParams, dict[str, jax.Array]]:
    """Full-batch Bradley–Terry training of a tabular reward with Adam under ``lax.scan`` (pure; vmap over seeds).

    Minimises ``preference_loss(model, params, Preferences(pairs, labels), weights=weights)``
    for ``num_steps`` steps. ``weights`` ``[B]`` masks pairs (e.g. to train on the first n of a
    padded set, so different preference counts share one compiled program).

    Returns:
        ``(params, {"loss": [num_steps]})``.

    Example:
        >>> import jax
        >>> from rewardlab_envs import random_mdp
        >>> from rewardlab.preferences import make_teacher
        >>> mdp = random_mdp(6, 2, seed=0, branching=2, num_features=3, discount=0.9)
        >>> pairs = sample_tabular_pairs(mdp.transitions, mdp.reward, mdp.initial_state_dist, jax.random.key(0), 64)
        >>> labels = make_teacher("regret", advantage_fn=tabular_advantage_fn(mdp, num_sweeps=100))(pairs, np.random.default_rng(0))
        >>> model = TabularRewardModel(mdp, num_sweeps=50)
        >>> params, metrics = fit_tabular_reward(model, pairs, labels, jax.random.key(1), num_steps=20)
        >>> bool(metrics["loss"][-1] < metrics["loss"][0])
        True
    """
    optimizer = optax.adam(learning_rate)
    params = model.init(key, init_scale)
    prefs = Preferences(pairs._replace(factors=None), jnp.asarray(labels, jnp.float32))
    mask = jnp.ones(jnp.shape(labels), jnp.float32) if weights is None else jnp.asarray(weights, jnp.float32)

    def loss_fn(net: jax.Array) -> jax.Array:
        return preference_loss(model, TabularRewardParams(net), prefs, preference_model=preference_model, weights=mask)

    def step(carry: tuple[jax.Array, Any], _: None) -> tuple[tuple[jax.Array, Any], jax.Array]:
        net, opt_state = carry
        loss, grads = jax.value_and_grad(loss_fn)(net)
        updates, opt_state = optimizer.update(grads, opt_state, net)
        return (optax.apply_updates(net, updates), opt_state), loss

    (net, _), losses = jax.lax.scan(step, (params.net, optimizer.init(params.net)), None, length=int(num_steps))
    return TabularRewardParams(net), {"loss": losses}


class TabularEvaluation(NamedTuple):
    """How well a learned tabular reward serves its MDP's true reward."""

    scaled_return: jax.Array  # scalar (V^π − V^unif)/(V* − V^unif) of the policy greedy on the learned reward's Q*
    scaled_return_as_advantage: jax.Array  # scalar, of the policy greedy on the learned function itself (argmax_a E r̂(s,a,s'))
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
    atol: float = 1e-3,
) -> TabularEvaluation:
    """Scaled return of the greedy policy of a learned reward, and of acting greedily on it as an advantage (pure).

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
    scale = lambda pi: scaled_return(transitions, true_reward, discount, pi, initial_state_dist, num_sweeps=num_sweeps)  # noqa: E731
    return TabularEvaluation(scale(policy), scale(as_advantage), fraction)


# --- Continuous control: a jointly trained Q network -----------------------------------------------------------


class ContinuousRegretParams(NamedTuple):
    """Parameters of a :class:`ContinuousRegretModel`."""

    net: dict[str, Any]  # {"reward": MLP layers, "q": MLP layers}; each a list of (W [in, out], b [out])


def _mlp_init(key: jax.Array, sizes: tuple[int, ...]) -> list[tuple[jax.Array, jax.Array]]:
    layers = []
    for layer_key, (fan_in, fan_out) in zip(jax.random.split(key, len(sizes) - 1), zip(sizes[:-1], sizes[1:])):
        w = jax.random.normal(layer_key, (fan_in, fan_out), jnp.float32) * jnp.sqrt(1.0 / fan_in)
        layers.append((w, jnp.zeros(fan_out, jnp.float32)))
    return layers


def _mlp(layers: list[tuple[jax.Array, jax.Array]], x: jax.Array) -> jax.Array:
    for w, b in layers[:-1]:
        x = jax.nn.relu(x @ w + b)
    w, b = layers[-1]
    return (x @ w + b)[..., 0]


class ContinuousRegretModel:
    """Reward r(s, a, s') and Q(s, a) networks of the candidate reward, for the regret model on Box envs.

    ``advantage`` gives A(s, a) = Q(s, a) − V(s) with V(s) = max(Q(s, a), max_m Q(s, a_m)) over
    M probe actions fixed at construction (a grid for 1-D actions, uniform draws otherwise),
    so A ≤ 0 and regret ≥ 0. ``regret_auxiliary_loss`` is the temporal-difference loss
    mean (Q(s,a) − [r(s,a,s') + γ (1 − done) sg(V(s'))])² on the labelled transitions, which
    ``RewardTrainer`` adds (times ``td_weight``) under ``preference_model="regret"``: the
    preference loss shapes Q, the TD loss makes r its Bellman residual. Observations are
    flat ``[N, obs_dim]``; actions ``[N, act_dim]``.

    Args:
        obs_dim: observation size.
        action_low: ``[act_dim]`` lower action bounds.
        action_high: ``[act_dim]`` upper action bounds.
        hidden_sizes: MLP hidden sizes of both networks.
        num_probe_actions: M.
        discount: γ of the TD target.
        td_weight: weight of the TD loss.
        seed: seed of the probe actions.

    Example:
        >>> import jax, numpy as np
        >>> model = ContinuousRegretModel(3, np.array([-2.0]), np.array([2.0]), hidden_sizes=(8,), num_probe_actions=5)
        >>> params = model.init(jax.random.key(0))
        >>> adv = model.advantage(params, np.zeros((4, 3)), np.zeros((4, 1)), np.zeros((4, 3)), np.zeros(4, bool))
        >>> adv.shape, bool((adv <= 0).all())
        ((1, 4), True)
    """

    ensemble_size = 1

    def __init__(
        self,
        obs_dim: int,
        action_low: Any,
        action_high: Any,
        *,
        hidden_sizes: tuple[int, ...] = (64, 64),
        num_probe_actions: int = 16,
        discount: float = 0.99,
        td_weight: float = 1.0,
        seed: int = 0,
    ) -> None:
        low = np.atleast_1d(np.asarray(action_low, np.float32))
        high = np.atleast_1d(np.asarray(action_high, np.float32))
        if low.shape != high.shape or low.ndim != 1 or not np.all(high > low):
            raise ValueError(f"action_low/action_high: expected equal [act_dim] bounds with high > low, got {low} and {high}")
        if int(num_probe_actions) < 1:
            raise ValueError(f"num_probe_actions: expected an integer >= 1, got {num_probe_actions!r}")
        if not 0.0 <= float(discount) <= 1.0:
            raise ValueError(f"discount: expected a value in [0, 1], got {discount!r}")
        self.obs_dim = int(obs_dim)
        self.act_dim = int(low.shape[0])
        self.hidden_sizes = tuple(int(h) for h in hidden_sizes)
        self.discount = float(discount)
        self.td_weight = float(td_weight)
        if self.act_dim == 1:
            probes = np.linspace(low, high, int(num_probe_actions), dtype=np.float32)
        else:
            probes = np.random.default_rng(seed).uniform(low, high, (int(num_probe_actions), self.act_dim)).astype(np.float32)
        self.probe_actions = jnp.asarray(probes)  # [M, act_dim]

    def init(self, key: jax.Array) -> ContinuousRegretParams:
        reward_key, q_key = jax.random.split(key)
        reward_sizes = (2 * self.obs_dim + self.act_dim, *self.hidden_sizes, 1)
        q_sizes = (self.obs_dim + self.act_dim, *self.hidden_sizes, 1)
        return ContinuousRegretParams({"reward": _mlp_init(reward_key, reward_sizes), "q": _mlp_init(q_key, q_sizes)})

    def _check(self, obs: Any, acts: Any) -> tuple[jax.Array, jax.Array]:
        obs = jnp.asarray(obs, jnp.float32)
        acts = jnp.asarray(acts, jnp.float32)
        if obs.ndim != 2 or obs.shape[1] != self.obs_dim:
            raise ValueError(f"obs: expected shape [N, {self.obs_dim}], got {obs.shape}")
        if acts.shape != (obs.shape[0], self.act_dim):
            raise ValueError(f"acts: expected shape [{obs.shape[0]}, {self.act_dim}], got {acts.shape}")
        return obs, acts

    def q_values(self, params: ContinuousRegretParams, obs: jax.Array, acts: jax.Array) -> jax.Array:
        """Q(s, a): ``[N]``."""
        return _mlp(params.net["q"], jnp.concatenate([obs, acts], axis=-1))

    def state_values(self, params: ContinuousRegretParams, obs: jax.Array) -> jax.Array:
        """V(s) = max_m Q(s, a_m): ``[N]``."""
        probe_q = jax.vmap(lambda a: self.q_values(params, obs, jnp.broadcast_to(a, (obs.shape[0], self.act_dim))))(self.probe_actions)
        return jnp.max(probe_q, axis=0)

    def apply(self, params: ContinuousRegretParams, obs: Any, acts: Any, next_obs: Any, dones: Any) -> jax.Array:
        """r(s, a, s'): ``[1, N]``."""
        del dones
        obs, acts = self._check(obs, acts)
        next_obs = jnp.asarray(next_obs, jnp.float32)
        return _mlp(params.net["reward"], jnp.concatenate([obs, acts, next_obs], axis=-1))[None]

    def advantage(self, params: ContinuousRegretParams, obs: Any, acts: Any, next_obs: Any, dones: Any) -> jax.Array:
        """A(s, a) = Q(s, a) − max(Q(s, a), V(s)): ``[1, N]``."""
        del next_obs, dones
        obs, acts = self._check(obs, acts)
        q = self.q_values(params, obs, acts)
        return (q - jnp.maximum(q, self.state_values(params, obs)))[None]

    def regret_auxiliary_loss(self, params: ContinuousRegretParams, pairs: FragmentPairs, pair_weights: jax.Array) -> jax.Array:
        """Weighted TD loss on the pairs' transitions (``pair_weights`` ``[B]``), times ``td_weight``."""
        num_pairs, _, length = jnp.shape(pairs.dones)
        flat = lambda x: jnp.reshape(jnp.asarray(x, jnp.float32), (num_pairs * 2 * length, -1))  # noqa: E731
        obs, acts, next_obs = flat(pairs.obs), flat(pairs.acts), flat(pairs.next_obs)
        dones = jnp.reshape(jnp.asarray(pairs.dones, jnp.float32), (-1,))
        rewards = self.apply(params, obs, acts, next_obs, dones)[0]
        target = rewards + self.discount * (1.0 - dones) * jax.lax.stop_gradient(self.state_values(params, next_obs))
        errors = jnp.reshape((self.q_values(params, obs, acts) - target) ** 2, (num_pairs, 2 * length)).mean(axis=-1)
        weights = jnp.asarray(pair_weights, jnp.float32)
        return self.td_weight * jnp.sum(weights * errors) / jnp.maximum(jnp.sum(weights), 1e-12)


class JaxRewardFn:
    """Host ``RewardFn`` of any model with ``apply`` (or ``advantage``): one jitted call per batch, float32 numpy out.

    Args:
        model: a model with ``apply(params, obs, acts, next_obs, dones) -> [E, N]``.
        params: its parameters (``set_params`` swaps them).
        use: ``"reward"`` (``apply``) or ``"advantage"`` (act on the learned advantage, Knox et al. 2024).
    """

    def __init__(self, model: Any, params: Any, use: str = "reward") -> None:
        if use not in ("reward", "advantage"):
            raise ValueError(f"use: expected 'reward' or 'advantage', got {use!r}")
        self.model = model
        self.params = params
        self.use = use
        method = model.apply if use == "reward" else model.advantage
        self._fn = jax.jit(lambda p, o, a, n, d: jnp.mean(method(p, o, a, n, d), axis=0))

    def set_params(self, params: Any) -> None:
        self.params = params

    def __call__(self, obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
        return np.asarray(self._fn(self.params, obs, acts, next_obs, dones), np.float32)
