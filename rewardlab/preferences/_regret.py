"""The regret preference model (Knox et al.): preferences from the optimal advantage of a segment.

A segment σ = (s_0, a_0, …, s_L) has regret under a reward r

    regret(σ) = Σ_t [V*_r(s_t) − Q*_r(s_t, a_t)] = −Σ_t A*_r(s_t, a_t),

which with deterministic transitions and γ = 1 telescopes to V*(s_0) − (Σ_t r_t + V*(s_L)).
The regret preference model says P(σ¹ ≻ σ²) = logistic((regret(σ²) − regret(σ¹)) / τ); in
the Bradley–Terry machinery of ``preference_loss`` the score of a segment is
−regret(σ) = Σ_t A(s_t, a_t), so ``PreferenceModel("regret")`` needs a model with an
``advantage(params, obs, acts, next_obs, dones) -> [E, N]`` method besides ``apply``.

Learning needs A* of the *candidate* reward. Two ways for tabular MDPs, one for continuous control:

* :class:`TabularRegretModel` (``value_model="exact"``): differentiable (soft) value
  iteration of a candidate :class:`rewardlab.tabular.TabularReward` (``rewardlab.tabular.value_iteration``,
  a ``lax.scan`` of Bellman backups), so the loss is differentiated end to end through the
  planner. The reward is linear, r = φ·w over ``mdp.features``, a free table, or an MLP.
* ``value_model="successor_features"``: Knox et al.'s approximation for linear rewards,
  V*_w(s) ≈ Σ_π softmax_π(w·ψ^π(s)/T) w·ψ^π(s) over a library of successor features ψ^π
  of greedy policies of random rewards (:func:`successor_feature_library`, T = 0.001),
  and Q̂(s,a) = E_{s'}[w·φ(s,a,s') + γ V̂(s')].
* ``rewardlab.rewards.ContinuousRegretModel``: a reward network and a Q network of the
  candidate reward trained jointly (see there).

Simulated teachers label by the true reward's regret with the ``regret`` teacher stage
(``make_teacher("regret", advantage_fn=...)``); :func:`tabular_advantage_fn` gives the
exact A* of a tabular MDP's true reward, and :func:`pair_regrets` the discounted regret of
segment pairs on a deterministic MDP from V* (pure JAX, for in-graph labels). Segment
pairs, fitting and scoring of tabular rewards: ``sample_tabular_pairs``,
``fit_tabular_reward``, ``evaluate_tabular_reward``.

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

from rewardlab._types import FragmentPairs
from rewardlab.tabular import (
    TabularReward,
    TabularRewardParams,
    bellman_backup,
    greedy_policy,
    policy_evaluation,
    value_iteration,
)

VALUE_MODELS = ("exact", "successor_features")
"""How the regret model gets values: exact (soft) value iteration or Knox et al.'s successor features."""


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


def regret_probability(regret_1: jax.Array, regret_2: jax.Array, temperature: float | jax.Array = 1.0) -> jax.Array:
    """P(σ¹ ≻ σ²) = logistic((regret(σ²) − regret(σ¹)) / τ) for one pair, τ the temperature.

    Example:
        >>> round(float(regret_probability(0.0, 1.0)), 4)
        0.7311
    """
    return jax.nn.sigmoid((regret_2 - regret_1) / temperature)


def optimal_advantages(
    transitions: jax.Array,
    reward: jax.Array,
    discount: float | jax.Array,
    *,
    temperature: float = 0.0,
    num_sweeps: int = 200,
    exact_values: bool = False,
) -> jax.Array:
    """A(s, a) = Q(s, a) − V(s) of a reward by (soft) value iteration: ``[S, A]``.

    Differentiable in ``reward`` (soft backups for τ > 0; the hard max has the Danskin
    subgradient, the successor features of the greedy policy).

    ``num_sweeps`` backups leave an error of up to γ^n·max|V| in the values: at γ = 0.999, 80
    sweeps leave 92 % of it. With ``exact_values`` (hard max, γ < 1) the sweeps only choose
    the greedy policy π, whose values are then solved exactly, V^π = (I − γP_π)⁻¹ r_π, and
    Q = r + γTV^π: the advantages are exact once the sweeps have found an optimal policy (the
    policy converges long before the values do), as :func:`tabular_advantage_fn`'s are.

    Example:
        >>> import jax.numpy as jnp
        >>> T = jnp.array([[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [0.0, 1.0]]])  # state 1 absorbing
        >>> r = jnp.array([[0.0, 1.0], [0.0, 0.0]])  # action 1 in state 0 pays 1; waiting a step halves it
        >>> optimal_advantages(T, r, 0.5).tolist()
        [[-0.5, 0.0], [0.0, 0.0]]
    """
    result = value_iteration(transitions, reward, discount, num_sweeps=num_sweeps, temperature=temperature)
    if exact_values and temperature == 0 and float(discount) < 1.0:
        values = policy_evaluation(transitions, reward, discount, greedy_policy(result.q_values))
        q_values = bellman_backup(transitions, reward, discount, values)
        return q_values - jnp.max(q_values, axis=-1, keepdims=True)
    return result.q_values - result.state_values[:, None]


# --- Regret of the true reward -------------------------------------------------------------------------------


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
    if (
        float(mdp.discount) < 1.0
    ):  # exact values of the greedy policy (with γ = 1 absorbing states make the system singular)
        values = policy_evaluation(transitions, reward, mdp.discount, greedy_policy(plan.q_values))
        q_values = bellman_backup(transitions, reward, mdp.discount, values)
    table = np.asarray(q_values - jnp.max(q_values, axis=-1, keepdims=True), np.float64)

    def advantage(obs: Any, acts: Any, next_obs: Any, dones: Any) -> np.ndarray:
        del next_obs, dones
        return table[np.asarray(obs, np.int64), np.asarray(acts, np.int64)]

    return advantage


def pair_regrets(pairs: FragmentPairs, optimal_values: jax.Array, discount: float | jax.Array) -> jax.Array:
    """Discounted regret of both segments of every pair from V* of the true reward: ``[B, 2]``.

        regret(σ) = V*(s_0) − (Σ_t γ^t r_t + γ^L V*(s_L)),

    which telescopes Σ_t γ^t [V*(s_t) − Q*(s_t, a_t)] when transitions are deterministic (and
    equals :func:`segment_regret` for γ = 1). Pure JAX, so labels can be drawn in-graph.

    Args:
        pairs: ``FragmentPairs`` of state/action indices; ``obs``, ``next_obs`` and ``rews`` (the true r_t) ``[B, 2, L]``.
        optimal_values: ``[S]`` V* of the true reward.
        discount: γ.

    Example:
        >>> import jax.numpy as jnp
        >>> from rewardlab._types import FragmentPairs
        >>> index = jnp.array([[[0, 1], [1, 1]]])  # one pair of 2-step segments
        >>> pairs = FragmentPairs(index, index, index + 1, jnp.zeros((1, 2, 2), bool), jnp.array([[[1.0, 1.0], [0.0, 0.0]]]))
        >>> pair_regrets(pairs, jnp.array([2.0, 1.0, 0.0]), 1.0).tolist()  # 2 − (2 + 0), 1 − (0 + 0)
        [[0.0, 1.0]]
    """
    rews = jnp.asarray(pairs.rews)
    length = rews.shape[-1]
    discounts = discount ** jnp.arange(length, dtype=rews.dtype)
    discounted = jnp.einsum("bpl,l->bp", rews, discounts)
    optimal_values = jnp.asarray(optimal_values)
    return optimal_values[jnp.asarray(pairs.obs)[..., 0]] - (
        discounted + discount**length * optimal_values[jnp.asarray(pairs.next_obs)[..., -1]]
    )


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
        per_feature = jax.vmap(lambda k: policy_evaluation(transitions, features[..., k], discount, policy))(
            jnp.arange(num_features)
        )
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


class TabularRegretModel:
    """A tabular candidate reward with the optimal advantage that the regret model needs.

    ``apply`` is the reward's own (r_θ at state/action index arrays, ``[1, N]``), so the
    partial-return model trains it as any reward model; ``advantage`` plans with r_θ and
    returns A(s, a) = Q(s, a) − V(s), so ``PreferenceModel("regret")`` trains it through
    the planner. Works with ``train_reward``/``RewardTrainer`` and with
    :func:`fit_tabular_reward` (full batch, vmappable over seeds).

    Args:
        reward: the candidate reward, a :class:`rewardlab.tabular.TabularReward`
            (``linear_reward(mdp.features)`` for r = φ·w, ``tabular_reward(mdp.transitions.shape)``
            for a free r(s, a, s'), ...).
        transitions: ``[S, A, S']`` T(s, a, s') (or an integer successor table ``[S, A]``).
        discount: γ of the planner (a Python float: it is static).
        value_model: ``"exact"`` ((soft) value iteration) or ``"successor_features"``
            (Knox et al.'s approximation; linear rewards only; ``library`` required).
        temperature: τ of the soft backups (0: hard max).
        num_sweeps: value-iteration sweeps per planning call.
        exact_values: with the hard max and γ < 1, solve the greedy policy's values exactly
            after the sweeps (:func:`optimal_advantages`), so the advantages carry the
            precision of the teacher's :func:`tabular_advantage_fn` rather than the sweeps'
            γ^n error (at γ = 0.999, 80 sweeps leave 92 % of it). Costs one ``[S, S]`` solve
            per planning call.
        library: successor features for ``value_model="successor_features"``.
        library_temperature: T of the softmax over the library (Knox et al.: 0.001).

    Raises:
        ValueError: unknown options, a reward whose shape does not fit ``transitions``, a
            missing library, or a negative temperature.

    Example:
        >>> import jax.numpy as jnp, numpy as np
        >>> from rewardlab_envs import delivery_mdp
        >>> from rewardlab.tabular import TabularRewardParams, linear_reward
        >>> mdp = delivery_mdp()
        >>> model = TabularRegretModel(linear_reward(mdp.features), mdp.transitions, mdp.discount)
        >>> params = TabularRewardParams(jnp.asarray(mdp.true_weights))
        >>> s = 19  # right of the goal: moving left (2) enters it
        >>> model.apply(params, np.array([s]), np.array([2]), np.array([s - 1]), np.array([True])).tolist()
        [[50.0]]
        >>> model.advantage(params, np.array([s]), np.array([2]), None, None).tolist()
        [[0.0]]
    """

    ensemble_size = 1

    def __init__(
        self,
        reward: TabularReward,
        transitions: Any,
        discount: float,
        *,
        value_model: str = "exact",
        temperature: float = 0.0,
        num_sweeps: int = 200,
        exact_values: bool = True,
        library: SuccessorFeatures | None = None,
        library_temperature: float = 0.001,
    ) -> None:
        if not isinstance(reward, TabularReward):
            raise ValueError(
                f"reward: expected a rewardlab.tabular.TabularReward (linear_reward, tabular_reward, mlp_reward), got {type(reward).__name__}"
            )
        transitions = jnp.asarray(transitions)
        sizes = tuple(transitions.shape[:2])
        if transitions.ndim not in (2, 3) or reward.reward_shape[:2] != sizes[: len(reward.reward_shape)]:
            raise ValueError(
                f"reward: expected a reward over the [S, A] = {sizes} of transitions, got reward_shape {reward.reward_shape}"
            )
        if value_model not in VALUE_MODELS:
            raise ValueError(f"value_model: expected one of {VALUE_MODELS}, got {value_model!r}")
        if value_model == "successor_features" and (reward.name != "linear" or library is None):
            raise ValueError(
                "library: value_model='successor_features' needs a linear reward and a SuccessorFeatures library"
            )
        if not float(temperature) >= 0:
            raise ValueError(f"temperature: expected >= 0, got {temperature!r}")
        if int(num_sweeps) < 1:
            raise ValueError(f"num_sweeps: expected an integer >= 1, got {num_sweeps!r}")
        self.reward = reward
        self.transitions = transitions
        self.discount = float(discount)
        self.value_model = value_model
        self.temperature = 0 if float(temperature) == 0 else float(temperature)
        self.num_sweeps = int(num_sweeps)
        self.exact_values = bool(exact_values)
        self.library = library
        self.library_temperature = float(library_temperature)

    def init(self, key: jax.Array | int | None = None) -> TabularRewardParams:
        """The reward's initial parameters (zeros for linear and table rewards)."""
        return self.reward.init(key)

    def advantage_table(self, params: TabularRewardParams) -> jax.Array:
        """A(s, a) = Q(s, a) − V(s) of the candidate reward r_θ: ``[S, A]``."""
        reward = self.reward.table(params)
        if self.value_model == "exact":
            return optimal_advantages(
                self.transitions,
                reward,
                self.discount,
                temperature=self.temperature,
                num_sweeps=self.num_sweeps,
                exact_values=self.exact_values,
            )
        assert self.library is not None  # value_model="successor_features" requires it
        values = successor_feature_values(self.library, params.net, self.library_temperature)
        q_values = bellman_backup(self.transitions, reward, self.discount, values)
        return q_values - values[:, None]

    def apply(self, params: TabularRewardParams, obs: Any, acts: Any, next_obs: Any, dones: Any) -> jax.Array:
        """r_θ at index arrays ``[N]``: ``[1, N]``."""
        return self.reward.apply(params, obs, acts, next_obs, dones)

    def advantage(self, params: TabularRewardParams, obs: Any, acts: Any, next_obs: Any, dones: Any) -> jax.Array:
        """A(s, a) of the candidate reward at index arrays ``[N]``: ``[1, N]`` (one planning call)."""
        del next_obs, dones
        return self.advantage_table(params)[jnp.asarray(obs), jnp.asarray(acts)][None]
