"""Exact planning on tabular MDPs."""
