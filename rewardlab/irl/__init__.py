"""Inverse RL: maximum-causal-entropy IRL, behaviour models, AIRL and GAIL."""
