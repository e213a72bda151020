"""Measured performance of the demo: `python -m benchmarks` (see README, "Performance").

Replaces the design document's guessed table with numbers measured in one run, on one
machine, next to what Redis itself can do (`redis-benchmark`) on the same server.
"""
