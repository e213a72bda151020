"""Simulator layer, pure: the cache-aside policy both twins share.

Key names, TTLs, what a cached value means, how seeding is batched, and the values a
lookup or a seed returns. The sync and async shells in `simulate_cache_db_flow` do
only the Redis calls and the sleeps around these functions; nothing here does I/O,
sleeps, or knows whether it runs in a thread or an event loop.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from config.settings import Settings
from simulator.records import CorruptEntry, Problem, UserRecord, decode_record


class Source(StrEnum):
    """Where an answer came from."""

    CACHE = "cache"
    DATABASE = "database"


def cache_key(user_id: int, prefix: str = "") -> str:
    """The Redis key of a user: `user-42`, or `<prefix>user-42` in a namespace."""
    return f"{prefix}user-{user_id}"


def demo_key_pattern(prefix: str = "") -> re.Pattern[str]:
    """Exactly the keys the demo writes, so nothing outside its namespace is ever touched."""
    return re.compile(re.escape(prefix) + r"user-[1-9][0-9]*")


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """How the demo names and expires its keys."""

    key_prefix: str = ""
    ttl_seconds: int = 3600

    @classmethod
    def from_settings(cls, settings: Settings) -> CachePolicy:
        """The policy the settings ask for."""
        return cls(key_prefix=settings.key_prefix, ttl_seconds=settings.cache_ttl_seconds)

    def key(self, user_id: int) -> str:
        """The key of `user_id` in this policy's namespace."""
        return cache_key(user_id, self.key_prefix)

    def ttl_for(self, user_id: int) -> int:
        """Seconds the key of `user_id` lives: every key the demo writes expires."""
        return self.ttl_seconds


@dataclass(frozen=True, slots=True)
class CachedEntry:
    """What a GET found: a record (a hit), nothing (a miss), or a corrupt value (a miss to repair)."""

    record: UserRecord | None = None
    value: str | None = None
    problem: Problem | None = None

    @property
    def warning(self) -> str | None:
        """One line for a corrupt value, or None."""
        return None if self.problem is None else f"ignored a corrupt cache entry ({self.problem.value}); repaired it"


MISS = CachedEntry()
WRONG_TYPE = CachedEntry(problem=Problem.WRONG_TYPE)


def read_cached(raw: bytes | str | None, user_id: int) -> CachedEntry:
    """Interpret what a GET returned for `user_id` (bytes: the demo's clients never decode)."""
    if raw is None:
        return MISS
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogateescape")
    try:
        record = decode_record(raw, user_id)
    except CorruptEntry as corrupt:
        return CachedEntry(problem=corrupt.problem)
    return CachedEntry(record=record, value=raw.decode("utf-8"))


@dataclass(frozen=True, slots=True)
class LookupResult:
    """One answer of the cache-aside lookup, as both twins return it."""

    user_id: int
    key: str
    source: Source
    record: UserRecord
    value: str
    elapsed_seconds: float
    warning: str | None = None

    @classmethod
    def from_cache(cls, user_id: int, key: str, cached: CachedEntry, elapsed_seconds: float) -> LookupResult:
        """A hit: the record as the cache holds it."""
        if cached.record is None or cached.value is None:
            raise ValueError("a miss is not a cache answer")
        return cls(user_id, key, Source.CACHE, cached.record, cached.value, elapsed_seconds)

    @property
    def elapsed_ms(self) -> float:
        """Elapsed time in milliseconds."""
        return self.elapsed_seconds * 1000


def id_batches(count: int, batch_size: int, first_id: int = 1) -> Iterator[range]:
    """Ids first_id..first_id+count-1 in ranges of `batch_size`: seeding streams, memory stays flat."""
    end = first_id + count
    for start in range(first_id, end, batch_size):
        yield range(start, min(start + batch_size, end))


@dataclass(frozen=True, slots=True)
class SeedReport:
    """What a seed did: how many records of how many, in how long, and whether it was stopped."""

    mode: str
    requested: int
    written: int
    seconds: float
    stopped: bool = False

    @property
    def records_per_second(self) -> float:
        """Measured throughput (0 when nothing was timed)."""
        return self.written / self.seconds if self.seconds > 0 else 0.0


class SeedProgress:
    """A seed's running count and stop flag, shared with the thread or task that runs it.

    Only the seeding loop writes `written`; anyone may call `request_stop`, which the loop
    reads between batches, so a stopped seed keeps everything it wrote.
    """

    def __init__(
        self, mode: str, requested: int, started: float, on_advance: Callable[[int], object] | None = None
    ) -> None:
        self.mode = mode
        self.requested = requested
        self.started = started
        self.written = 0
        self.stop_requested = False
        self._on_advance = on_advance

    def advance(self, records: int) -> None:
        """Count `records` more as written."""
        self.written += records
        if self._on_advance is not None:
            self._on_advance(records)

    def request_stop(self) -> None:
        """Ask the seeding loop to stop after the batch it is writing."""
        self.stop_requested = True

    def report(self, now: float, *, stopped: bool = False) -> SeedReport:
        """The report as of `now` (a perf_counter reading)."""
        return SeedReport(self.mode, self.requested, self.written, now - self.started, stopped)
