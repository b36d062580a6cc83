"""Bilevel reward optimisation: BARFI's behaviour-alignment rewards and implicit outer gradients.

BARFI (Gupta et al., NeurIPS 2023) learns how to blend a primary reward r_p with a designer's
auxiliary reward r_aux, r_φ = φ1 + φ2·r_p + φ3·r_aux with a learned discount γ_φ, so that the
policy an inner learner reaches on r_φ maximises the primary return::

    problem = tabular_problem(mdp.transitions, mdp.initial_state_dist, r_primary, r_auxiliary, mdp.discount)
    result = barfi(problem, BarfiConfig(hypergradient="neumann"), jax.random.split(key, 16))  # 16 seeds, one call

The outer gradient comes from the implicit function theorem on Hessian-vector products
(:func:`implicit_gradient`: Neumann series or conjugate gradient) or from unrolled inner
steps (:func:`unrolled_gradient`). On a finite MDP the inner learner is exact softmax policy
gradient (:func:`barfi`); with continuous states it is a sampled actor-critic on a pure JAX
functional environment (:func:`barfi_actor_critic`). The blend's dependence on (s, a) is a
:class:`BlendParameterisation` (:func:`table_blend`, :func:`linear_blend`, :func:`network_blend`). PARL's variant swaps the
upper objective for a preference likelihood (:func:`preference_objective` as ``barfi``'s
``outer_objective``, with labelled pairs as ``outer_data``; or with on-policy labels drawn afresh each outer
iteration, :class:`OnPolicyPreferences` as ``outer_sampler`` and :func:`on_policy_preference_objective`). Where the inner learner is an SB3
agent (MuJoCo), :func:`barfi_sb3` warm-starts it across outer iterations on r_φ and takes a
first-order outer gradient from its rollouts (one policy-gradient step differentiated, no
inverse Hessian).
"""

from rewardlab.bilevel._actor_critic import (
    ActorCriticConfig,
    ActorCriticResult,
    Batch,
    FunctionalEnv,
    barfi_actor_critic,
)
from rewardlab.bilevel._blend import (
    NAIVE_SUM,
    BlendParameterisation,
    BlendParams,
    LinearBlend,
    NetworkBlend,
    TableBlend,
    blend_rewards,
    check_blend,
    discount_logit,
    learned_discount,
    linear_blend,
    network_blend,
    table_blend,
)
from rewardlab.bilevel._first_order import (
    BlendRewardFn,
    FirstOrderConfig,
    FirstOrderResult,
    RolloutLog,
    barfi_sb3,
    discounted_returns,
    first_order_surrogate,
    policy_score_products,
)
from rewardlab.bilevel._implicit import (
    HYPERGRADIENTS,
    conjugate_gradient_inverse_hvp,
    hessian_vector_product,
    implicit_gradient,
    neumann_inverse_hvp,
    unrolled_gradient,
)
from rewardlab.bilevel._parl import OnPolicyPreferences, on_policy_preference_objective
from rewardlab.bilevel._tabular import (
    BarfiConfig,
    BarfiResult,
    OuterObjective,
    OuterSampler,
    TabularBilevelProblem,
    TabularPreferences,
    barfi,
    inner_objective,
    optimal_primary_return,
    preference_objective,
    primary_return,
    tabular_problem,
)

__all__ = [
    "HYPERGRADIENTS",
    "NAIVE_SUM",
    "ActorCriticConfig",
    "ActorCriticResult",
    "BarfiConfig",
    "BarfiResult",
    "Batch",
    "BlendParameterisation",
    "BlendParams",
    "BlendRewardFn",
    "FirstOrderConfig",
    "FirstOrderResult",
    "FunctionalEnv",
    "LinearBlend",
    "NetworkBlend",
    "OnPolicyPreferences",
    "OuterObjective",
    "OuterSampler",
    "RolloutLog",
    "TableBlend",
    "TabularBilevelProblem",
    "TabularPreferences",
    "barfi",
    "barfi_actor_critic",
    "barfi_sb3",
    "blend_rewards",
    "check_blend",
    "conjugate_gradient_inverse_hvp",
    "discount_logit",
    "discounted_returns",
    "first_order_surrogate",
    "hessian_vector_product",
    "implicit_gradient",
    "inner_objective",
    "learned_discount",
    "linear_blend",
    "network_blend",
    "neumann_inverse_hvp",
    "on_policy_preference_objective",
    "optimal_primary_return",
    "policy_score_products",
    "preference_objective",
    "primary_return",
    "table_blend",
    "tabular_problem",
    "unrolled_gradient",
]
