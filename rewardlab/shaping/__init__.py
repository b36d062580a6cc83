"""Reward shaping, chainable reward transforms and constrained composition.

* Potential-based shaping r' = r + γ(1 − d)Φ(s') − Φ(s) with Φ(terminal) = 0, as a pure
  function and as a ``RewardFn``; learned potentials from a reward model (an SB3 critic's: ``rewardlab.rl.critic_potential``).
* ``optax``-style transforms (``init``/``apply`` with explicit state) that :func:`chain`:
  running normalisation (freezable), clipping, the Bradley–Terry log-sigmoid transform,
  moving-average centring, caps on the accumulated reward; and :func:`transformed_reward_fn`
  to run any chain behind the ``RewardFn`` contract (ensembles are aggregated before, by
  ``rewardlab.rewards.as_reward_fn(model, params, aggregate=...)``).
* Constrained composition r = r_main − Σ λ_k c_k with multipliers updated by dual ascent
  (from an SB3 callback, ``rewardlab.rl.LagrangeMultiplierCallback``).
"""

from rewardlab.shaping._constrained import (
    ConstrainedRewardFn,
    LagrangeState,
    composite_reward,
    dual_ascent,
)
from rewardlab.shaping._potential import (
    PotentialShapedRewardFn,
    discounted_return,
    model_potential,
    potential_shaping,
    shaped_rewards,
)
from rewardlab.shaping._transforms import (
    AccumulatedState,
    EmptyState,
    MovingAverageState,
    RewardTransform,
    RunningNormState,
    TransformedRewardFn,
    bradley_terry_transform,
    cap_accumulated,
    chain,
    clip,
    freeze,
    identity,
    moving_average_centering,
    running_normalize,
    scale,
    transformed_reward_fn,
)

__all__ = [
    "AccumulatedState",
    "ConstrainedRewardFn",
    "EmptyState",
    "LagrangeState",
    "MovingAverageState",
    "PotentialShapedRewardFn",
    "RewardTransform",
    "RunningNormState",
    "TransformedRewardFn",
    "bradley_terry_transform",
    "cap_accumulated",
    "chain",
    "clip",
    "composite_reward",
    "discounted_return",
    "dual_ascent",
    "freeze",
    "identity",
    "model_potential",
    "moving_average_centering",
    "potential_shaping",
    "running_normalize",
    "scale",
    "shaped_rewards",
    "transformed_reward_fn",
]
