"""rewardlab.preferences."""
