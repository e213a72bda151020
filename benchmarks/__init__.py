"""Measured performance of the demo: `python -m benchmarks` (see docs/performance.md).

Replaces the guessed table docs/performance.md quotes with numbers measured in one run, on one
machine, next to what Redis itself can do on the same server (`redis-cli --pipe` of the same SETs),
and next to the caching libraries a user might pick instead (cashews, aiocache, dogpile.cache).
"""
