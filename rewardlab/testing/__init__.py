"""rewardlab.testing."""
