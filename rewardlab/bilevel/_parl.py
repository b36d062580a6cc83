"""PARL with on-policy labels: the upper level's preference data drawn from the policy the inner level reached.

PARL (Chakraborty et al. 2023) writes policy alignment as a bilevel problem whose upper objective
is the likelihood of a teacher's preferences between trajectories of the lower level's optimal
policy π*(φ): the data themselves depend on φ through the policy. On a finite MDP each outer
iteration here

1. draws B pairs of L-step segments from π_θ, the policy the inner steps reached, each segment the
   first L steps of an episode (s_0 ~ d_0, a_t ~ π_θ(·|s_t), s_{t+1} ~ T(·|s_t, a_t));
2. asks a simulated teacher for soft labels y = P(σ¹ ≻ σ²) = sigmoid((R_T(σ¹) − R_T(σ²))/τ), R_T the
   partial return of the teacher's reward (the problem's primary reward unless given);
3. maximises J_o(θ, φ) = −E_{σ¹, σ² ~ π_θ}[BT(R_φ(σ¹), R_φ(σ²), y)] with BARFI's outer gradient.

The expectation's gradient in θ is the score function: J_o is evaluated as −Σ_b w_b BT_b with w =
softmax_b(l_b − sg(l_b)), l_b = log π_θ(σ¹_b) + log π_θ(σ²_b). Its value is the batch mean (w_b = 1/B)
and its θ-gradient (1/B) Σ_b (L̄ − L_b) ∇_θ l_b, the likelihood-ratio estimator with the batch mean as
baseline, which the implicit gradient then carries to φ. Off-policy labelled pairs with policy
weights are :func:`~rewardlab.bilevel.preference_objective`.

References:
    Chakraborty, Bedi, Koppel, Wang, Manocha, Wang and Huang, "PARL: A Unified Framework for Policy
    Alignment in Reinforcement Learning from Human Feedback", 2023.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from rewardlab._checks import check_int, check_real
from rewardlab.bilevel._blend import BlendParameterisation, BlendParams
from rewardlab.bilevel._tabular import TabularBilevelProblem, TabularPreferences, pair_losses
from rewardlab.preferences import bradley_terry_probability
from rewardlab.tabular import is_successor_table


@dataclasses.dataclass(frozen=True)
class OnPolicyPreferences:
    """PARL's on-policy labels, as ``barfi``'s ``outer_sampler``: fresh labelled pairs from π_θ every outer iteration.

    Attributes:
        pairs: B, segment pairs per outer iteration.
        segment_length: L, steps per segment (the first L steps of an episode from d_0).
        temperature: τ > 0 of the simulated teacher's Bradley–Terry labels.

    Calling it with ``(key, θ, problem, teacher_reward)`` returns :class:`TabularPreferences`
    ``[B, 2, L]``; ``teacher_reward`` (``barfi``'s ``outer_data``) is an ``[S, A]`` reward the teacher
    judges by, or None for the problem's primary reward.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from rewardlab.bilevel import tabular_problem
        >>> problem = tabular_problem(jnp.array([[0, 1], [1, 1]]), jnp.array([1.0, 0.0]),
        ...                           jnp.array([[0.0, 1.0], [0.0, 0.0]]), jnp.array([[0.2, 0.0], [0.0, 0.0]]), 0.9)
        >>> pairs = OnPolicyPreferences(pairs=4, segment_length=3)(jax.random.key(0), jnp.zeros((2, 2)), problem, None)
        >>> pairs.states.shape, pairs.labels.shape
        ((4, 2, 3), (4,))
    """

    pairs: int = 64
    segment_length: int = 20
    temperature: float = 0.1

    def __post_init__(self) -> None:
        check_int("pairs", self.pairs, low=1)
        check_int("segment_length", self.segment_length, low=1)
        check_real("temperature", self.temperature, low=0.0, low_open=True)

    def __call__(
        self, key: jax.Array, policy_logits: jax.Array, problem: TabularBilevelProblem, teacher_reward: Any = None
    ) -> TabularPreferences:
        num_states, num_actions = problem.primary.shape
        reward = problem.primary if teacher_reward is None else jnp.asarray(teacher_reward, jnp.float32)
        if reward.shape != (num_states, num_actions):
            raise ValueError(
                f"outer_data: expected the teacher's reward [S, A]={(num_states, num_actions)} or None, got {reward.shape}"
            )
        start_key, walk_key = jax.random.split(key)
        log_start = jnp.log(jnp.maximum(problem.initial_state_dist, 0.0))
        state = jax.random.categorical(start_key, log_start, shape=(self.pairs, 2))
        successor = is_successor_table(problem.transitions)

        def step(state: jax.Array, step_key: jax.Array) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
            action_key, next_key = jax.random.split(step_key)
            action = jax.random.categorical(action_key, policy_logits[state])
            if successor:
                next_state = problem.transitions[state, action]
            else:
                next_state = jax.random.categorical(next_key, jnp.log(problem.transitions[state, action]))
            return next_state, (state, action)

        _, (states, actions) = jax.lax.scan(step, state, jax.random.split(walk_key, self.segment_length))
        states, actions = jnp.moveaxis(states, 0, -1), jnp.moveaxis(actions, 0, -1)  # [B, 2, L]
        returns = jnp.sum(reward[states, actions], axis=-1)  # [B, 2]
        labels = jax.vmap(bradley_terry_probability, in_axes=(0, 0, None))(
            returns[:, 0], returns[:, 1], self.temperature
        )
        return TabularPreferences(states, actions, labels)


def on_policy_preference_objective(
    policy_logits: jax.Array,
    params: BlendParams,
    problem: TabularBilevelProblem,
    blend: BlendParameterisation,
    data: TabularPreferences,
) -> jax.Array:
    """PARL's upper objective on pairs drawn from π_θ: −mean_b BT(R_φ(σ¹_b), R_φ(σ²_b), y_b), score-function weighted.

    R_φ(σ) = Σ_t r_φ(s_t, a_t). The value is the batch mean of the Bradley–Terry losses; the gradient
    in θ is the likelihood-ratio estimator of ∇_θ E_{σ ~ π_θ}[−BT] with the batch mean as baseline
    (module docstring). Use with :class:`OnPolicyPreferences` as ``barfi``'s ``outer_sampler``.

    Example:
        >>> import jax.numpy as jnp
        >>> from rewardlab.bilevel import tabular_problem, table_blend
        >>> problem = tabular_problem(jnp.array([[0, 1], [1, 1]]), jnp.array([1.0, 0.0]),
        ...                           jnp.array([[0.0, 1.0], [0.0, 0.0]]), jnp.array([[0.2, 0.0], [0.0, 0.0]]), 0.9)
        >>> pairs = TabularPreferences(jnp.zeros((1, 2, 1), int), jnp.array([[[1], [0]]]), jnp.array([1.0]))
        >>> blend = table_blend(4)
        >>> round(float(on_policy_preference_objective(jnp.zeros((2, 2)), BlendParams(blend.init(None), 0.0),
        ...                                            problem, blend, pairs)), 4)
        -0.3711
    """
    losses, log_prob = pair_losses(policy_logits, params, problem, blend, data)
    weights = jax.nn.softmax(log_prob - jax.lax.stop_gradient(log_prob))
    return -jnp.sum(weights * losses)
