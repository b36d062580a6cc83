"""rewardlab.rl."""
