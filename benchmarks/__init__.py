"""Benchmarks: ``python -m benchmarks.<name>``; each prints one JSON object of its figures as its last line."""
