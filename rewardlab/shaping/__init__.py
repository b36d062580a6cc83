"""Reward shaping, chainable reward transforms, ensemble aggregation and constrained composition."""
