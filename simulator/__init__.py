"""The cache-aside simulator: a pure core (records, core) and its sync and async shells."""
