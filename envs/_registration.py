"""Gymnasium registration of rewardlab's envs (idempotent; runs on import of rewardlab_envs)."""

from __future__ import annotations

import gymnasium as gym

DELIVERY_ID = "rewardlab/Delivery-v0"


def register_envs() -> None:
    """Register ``rewardlab/Delivery-v0`` (100-step time limit) unless already registered.

    Example:
        >>> register_envs(); register_envs()  # a second call is a no-op
        >>> DELIVERY_ID in gym.registry
        True
    """
    if DELIVERY_ID not in gym.registry:
        gym.register(
            id=DELIVERY_ID,
            entry_point="rewardlab_envs._delivery:DeliveryGridworld",
            max_episode_steps=100,
        )
