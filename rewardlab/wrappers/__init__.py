"""rewardlab.wrappers."""
