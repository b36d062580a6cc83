"""rewardlab.cli."""
