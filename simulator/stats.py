"""Simulator layer, pure: the statistics `stats` prints: counts of every answer, and latency percentiles.

Thread-safe, bounded (the latest SAMPLES latencies of each kind), and measured from each
answer's own elapsed time. Nothing here does I/O.
"""

from __future__ import annotations

import math
import threading
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass

from simulator.results import LookupResult, Source


def percentile(samples: Sequence[float], fraction: float) -> float | None:
    """The `fraction` percentile (nearest rank) of `samples`, or None without any."""
    if not samples:
        return None
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


@dataclass(frozen=True, slots=True)
class StatsSnapshot:
    """The numbers `stats` prints."""

    lookups: int
    hits: int
    misses: int
    not_found: int
    database_reads: int
    shared: int  # lookups answered by another lookup's database read (stampede protection)
    degraded: int  # answers given without the cache, because it was unavailable
    hit_latency_ms: dict[str, float | None]
    miss_latency_ms: dict[str, float | None]

    @property
    def hit_ratio(self) -> float | None:
        """Hits over lookups, or None before the first lookup."""
        return self.hits / self.lookups if self.lookups else None


class Stats:
    """Counts every answer and keeps the latest latencies; safe to share between threads."""

    SAMPLES = 100_000  # latencies kept per kind: memory stays bounded however long it runs

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._hit_seconds: deque[float] = deque(maxlen=self.SAMPLES)
        self._miss_seconds: deque[float] = deque(maxlen=self.SAMPLES)

    def record(self, result: LookupResult) -> None:
        """Count one answer."""
        with self._lock:
            self._counts["lookups"] += 1
            self._counts[result.source] += 1
            if result.shared:
                self._counts["shared"] += 1
            if result.degraded:
                self._counts["degraded"] += 1
            if result.source.from_cache:
                self._hit_seconds.append(result.elapsed_seconds)
            else:
                self._miss_seconds.append(result.elapsed_seconds)

    def database_read(self) -> None:
        """Count one read of the database (by a lookup, a stampede or a background refresh)."""
        with self._lock:
            self._counts["database_reads"] += 1

    def snapshot(self) -> StatsSnapshot:
        """The numbers as of now."""
        with self._lock:
            counts, hits, misses = Counter(self._counts), list(self._hit_seconds), list(self._miss_seconds)
        return StatsSnapshot(
            lookups=counts["lookups"],
            hits=counts[Source.CACHE] + counts[Source.NEGATIVE_CACHE],
            misses=counts[Source.DATABASE] + counts[Source.NOT_FOUND],
            not_found=counts[Source.NOT_FOUND] + counts[Source.NEGATIVE_CACHE],
            database_reads=counts["database_reads"],
            shared=counts["shared"],
            degraded=counts["degraded"],
            hit_latency_ms=latency_percentiles_ms(hits),
            miss_latency_ms=latency_percentiles_ms(misses),
        )


def latency_percentiles_ms(seconds: Sequence[float]) -> dict[str, float | None]:
    """p50, p95 and p99 (nearest rank) of latencies in seconds, in milliseconds; None without any."""
    return {
        name: None if (value := percentile(seconds, fraction)) is None else value * 1000
        for name, fraction in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
    }
