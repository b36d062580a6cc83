"""rewardlab_envs: environments with tabular access and named reward factors."""
