"""rewardlab.rewards."""
