"""The agent side of reward shaping: an SB3 critic as a potential, and the constrained-reward callback.

The shaping maths (:mod:`rewardlab.shaping`) knows nothing of agents; these two pieces bind it
to Stable-Baselines3.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from rewardlab.shaping import ConstrainedRewardFn


def critic_potential(agent: Any) -> Callable[[Any], np.ndarray]:
    """Φ(s) = V(s), the value head of a Stable-Baselines3 actor-critic (PPO, A2C) as a learned potential.

    Shaping with an approximately optimal value function is the classic choice
    (Ng et al. 1999): the shaped reward is then close to the advantage.
    """
    import torch

    policy = getattr(agent, "policy", None)
    if policy is None or not hasattr(policy, "predict_values"):
        raise ValueError(
            f"agent: expected an SB3 on-policy agent with policy.predict_values, got {type(agent).__name__}"
        )

    def potential(obs: Any) -> np.ndarray:
        with torch.no_grad():
            tensor, _ = policy.obs_to_tensor(np.asarray(obs))
            return policy.predict_values(tensor).cpu().numpy().reshape(-1)

    return potential


class LagrangeMultiplierCallback(BaseCallback):
    """Updates a :class:`ConstrainedRewardFn`'s multipliers at the end of every SB3 rollout.

    Pass the reward's ``training_reward`` to the training env's reward wrapper (e.g.
    ``RewardVecEnvWrapper(venv, fn.training_reward)``) and this callback to ``agent.learn``;
    only those transitions move the multipliers.
    ``history`` holds (timestep, multipliers, mean costs) per update; the values also go to
    the SB3 logger under ``constraint/``.
    """

    def __init__(self, reward_fn: ConstrainedRewardFn, verbose: int = 0) -> None:
        super().__init__(verbose)
        if not isinstance(reward_fn, ConstrainedRewardFn):
            raise ValueError(f"reward_fn: expected a ConstrainedRewardFn, got {type(reward_fn).__name__}")
        self.reward_fn = reward_fn
        self.history: list[dict[str, Any]] = []

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        if self.reward_fn.state.count == 0:
            raise ValueError(
                "reward_fn: expected the rollout's costs recorded by reward_fn.training_reward, got none; "
                "wrap the training env with RewardVecEnvWrapper(venv, reward_fn.training_reward)"
            )
        multipliers = self.reward_fn.update_multipliers()
        costs = getattr(self.reward_fn, "last_mean_costs", {})
        self.history.append(
            {"timestep": int(self.num_timesteps), "multipliers": multipliers, "mean_costs": dict(costs)}
        )
        for name, value in multipliers.items():
            self.logger.record(f"constraint/lambda_{name}", value)
        for name, value in costs.items():
            self.logger.record(f"constraint/cost_{name}", value)
