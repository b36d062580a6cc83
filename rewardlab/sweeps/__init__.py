"""Sweeping reward designs over seeds and arguments, locally or on Ray, with a results table and reports."""
