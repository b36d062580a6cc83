"""Distances between reward functions: EPIC, DARD, STARC."""
