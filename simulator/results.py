"""Simulator layer, pure: what every operation of the cache returns, and why a fill stored nothing.

`LookupResult` (one answer, from the cache or the database, and how), `Filled` (what a miss
found), `StoreProblem` (why the answer is not in the cache), and the reports of `stampede`,
`ttl`, `update` and `clear`. Values only: nothing here does I/O or decides anything.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Literal

from simulator.entries import MAX_LEASE_MS, CachedEntry, encode_not_found
from simulator.records import Problem, UserRecord, encode_record


class Source(StrEnum):
    """Where an answer came from."""

    CACHE = "cache"
    DATABASE = "database"
    NEGATIVE_CACHE = "negative-cache"
    NOT_FOUND = "not-found"

    @property
    def from_cache(self) -> bool:
        """True for answers the cache gave (a record or a remembered "not found")."""
        return self in (Source.CACHE, Source.NEGATIVE_CACHE)


@dataclass(frozen=True, slots=True)
class Filled:
    """The outcome of filling a key: what the database said, or what another process stored."""

    source: Source
    record: UserRecord | None
    value: str
    degraded: bool = False  # answered without the cache: it was unavailable, or became so before the store
    not_cached: StoreProblem | None = None  # why a full or changed cache kept the answer out of it

    @classmethod
    def from_database(cls, user_id: int, record: UserRecord | None, *, degraded: bool = False) -> Filled:
        """What one database read found, and the value to store for it."""
        source = Source.NOT_FOUND if record is None else Source.DATABASE
        return cls(source, record, stored_value(user_id, record), degraded)

    @classmethod
    def from_cache(cls, user_id: int, cached: CachedEntry) -> Filled:
        """What another process stored while we waited."""
        if cached.record is None:
            return cls(Source.NEGATIVE_CACHE, None, encode_not_found(user_id))
        return cls(Source.CACHE, cached.record, cached.value or "")

    def stored(self, problem: StoreProblem | None) -> Filled:
        """This outcome, after trying to store it: an unavailable Redis degrades it; any other problem is kept."""
        if problem is None:
            return self
        if problem.unavailable:
            return replace(self, degraded=True)
        return replace(self, not_cached=problem)


@dataclass(frozen=True, slots=True)
class StoreProblem:
    """Why a fill stored nothing, and a few words on it (a warning's, for all but "unavailable")."""

    reason: str
    kind: Literal["unavailable", "full", "refused", "lease lost", "lease held", "stale copy", "switched off"]

    @property
    def unavailable(self) -> bool:
        """The cache could not be asked: the answer is marked degraded."""
        return self.kind == "unavailable"

    @property
    def chosen(self) -> bool:
        """Not a problem at all: the policy chose not to store it (negative caching switched off)."""
        return self.kind == "switched off"


def stored_value(user_id: int, record: UserRecord | None) -> str:
    """What the cache holds for a database answer: the record, or a "not found" tombstone."""
    return encode_not_found(user_id) if record is None else encode_record(record)


LEASE_LOST = StoreProblem(
    "the key changed while the database was read (an update, a del or a clear removed this lookup's lease)",
    "lease lost",
)
LEASE_HELD = StoreProblem("another lookup held its lease the whole time", "lease held")
BREAKER_OPEN = StoreProblem("the cache is unavailable", "unavailable")  # not asked: its circuit breaker is open
NOT_CACHING_NOT_FOUND = StoreProblem("negative caching is switched off", "switched off")
STALE_COPY = StoreProblem(
    "the cache may still hold the version an update replaced, which could not be deleted; it is tried again "
    "at the next lookup",
    "stale copy",
)


@dataclass(frozen=True, slots=True)
class LookupResult:
    """One answer of the cache-aside lookup, as both twins return it."""

    user_id: int
    key: str
    source: Source
    record: UserRecord | None
    value: str | None
    elapsed_seconds: float
    corrupt: Problem | None = None  # the cache held a value that is not a record (the fill replaced it, if `stored`)
    not_cached: StoreProblem | None = None  # why a full or changed cache kept the answer out
    shared: bool = False  # answered by another lookup's database read (stampede protection)
    degraded: bool = False  # answered without the cache: it was unavailable (Redis down, or the breaker open)
    stored: bool = False  # a database answer that is now in the cache

    @classmethod
    def from_cache(cls, user_id: int, key: str, cached: CachedEntry, elapsed_seconds: float) -> LookupResult:
        """The cache answered by itself."""
        source = Source.NEGATIVE_CACHE if cached.not_found else Source.CACHE
        return cls(user_id, key, source, cached.record, cached.value, elapsed_seconds)

    @classmethod
    def from_fill(
        cls, user_id: int, key: str, filled: Filled, elapsed_seconds: float, corrupt: Problem | None, shared: bool
    ) -> LookupResult:
        """The cache missed (or held `corrupt`); `filled` says what the database (or another process) gave."""
        value = filled.value if filled.record is not None else None
        stored = filled.source in (Source.DATABASE, Source.NOT_FOUND) and not (filled.degraded or filled.not_cached)
        return cls(
            user_id,
            key,
            filled.source,
            filled.record,
            value,
            elapsed_seconds,
            corrupt,
            filled.not_cached,
            shared,
            filled.degraded,
            stored,
        )

    @property
    def elapsed_ms(self) -> float:
        """Elapsed time in milliseconds."""
        return self.elapsed_seconds * 1000

    @property
    def read_the_database(self) -> bool:
        """True when this lookup itself read the database."""
        return self.source in (Source.DATABASE, Source.NOT_FOUND) and not self.shared


@dataclass(frozen=True, slots=True)
class StampedeReport:
    """What n concurrent lookups of one id cost."""

    user_id: int
    key: str
    lookups: int
    database_reads: int
    shared: int  # lookups answered by another lookup's database read
    sources: dict[str, int]
    elapsed_seconds: float

    @classmethod
    def of(cls, user_id: int, key: str, results: Sequence[LookupResult], elapsed_seconds: float) -> StampedeReport:
        """Count the reads and the lookups that shared one."""
        sources = Counter(str(result.source) for result in results)
        return cls(
            user_id,
            key,
            len(results),
            sum(result.read_the_database for result in results),
            sum(result.shared for result in results),
            dict(sorted(sources.items())),
            elapsed_seconds,
        )


@dataclass(frozen=True, slots=True)
class TtlReport:
    """What `ttl <id>` found: a record, a cached "not found", or nothing, and how long it has left."""

    key: str
    # not-found: a cached "not found"; foreign-lease: looks like a lease, but no lookup writes one that long
    state: Literal["record", "not-found", "lease", "foreign-lease", "corrupt", "missing"]
    remaining_seconds: float | None

    @classmethod
    def of(cls, key: str, cached: CachedEntry, remaining_ms: int | None) -> TtlReport:
        """Read PTTL's answer (-2: no key, -1: no expiry)."""
        if remaining_ms is None or remaining_ms == -2 or not (cached.in_cache or cached.problem or cached.leased):
            return cls(key, "missing", None)
        remaining_seconds = None if remaining_ms < 0 else remaining_ms / 1000
        if cached.not_found:
            return cls(key, "not-found", remaining_seconds)
        if cached.record:
            return cls(key, "record", remaining_seconds)
        if cached.leased:
            foreign = remaining_ms < 0 or remaining_ms > MAX_LEASE_MS  # no demo lookup's: the next one replaces it
            return cls(key, "foreign-lease" if foreign else "lease", remaining_seconds)
        return cls(key, "corrupt", remaining_seconds)


@dataclass(frozen=True, slots=True)
class UpdateReport:
    """What `update <id>` did: the new record (None: no such user) and whether the cached copy went."""

    key: str
    record: UserRecord | None
    invalidated: bool
    problem: str | None = None  # why the cached copy could not be deleted
    elapsed_seconds: float = 0.0
    stale_for_seconds: int = 0  # how long another reader may still see the old version
    private_cache: bool = False  # the embedded Redis: other processes on the database keep copies of their own


@dataclass(frozen=True, slots=True)
class ClearReport:
    """What `clear` removed, and the cluster masters it could not reach (each with why): their keys stay."""

    removed: int
    unreachable: tuple[str, ...] = ()
