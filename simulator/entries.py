"""Simulator layer, pure: what a value in the cache means for a lookup, and what a lease looks like.

A GET finds a record, a cached "not found" (a tombstone), another lookup's lease, nothing,
or a value no demo process writes (corrupt: replaced by the next fill); `read_cached` says
which, and `CachedEntry` carries it. A lease is a short-lived placeholder a miss puts in the
empty key before it reads the database (scripts.py has the scripts that take and honour it).
Nothing here does I/O.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from simulator.records import CorruptEntry, Problem, UserRecord, decode_record


def encode_not_found(user_id: int) -> str:
    """How a "not found" answer is cached: a tombstone, not a record."""
    return f'{{"id":{user_id},"not_found":true}}'


# --- leases: how a fill that read an old version is kept out of the cache ---
#
# A miss does not simply SET what it read. It first claims the empty key with a lease (a
# placeholder value with a short life), then reads the database, then stores the record
# only if the key still holds its own lease. `update` commits the new row and then DELs
# the key, which removes any lease too: a reader whose database read may predate that
# commit finds its lease gone and stores nothing. (Memcache's leases, Nishtala et al.,
# NSDI 2013.) Both scripts touch one key, so they run unchanged on a Redis Cluster.

LEASE_PREFIX = b'{"lease":"'
LEASE_HEADROOM_SECONDS = 5.0

# The longest lease any demo process writes (DB_LATENCY_SECONDS is at most 600): a "lease"
# with no expiry, or a longer one, was written by another client and is taken over, so it
# cannot hold every miss of that user back for good.
MAX_LEASE_MS = round((2 * 600 + LEASE_HEADROOM_SECONDS) * 1000)

# A lease the demo writes is LEASE_PREFIX, 16 hex digits and '"}': 28 bytes. A value that starts
# like one but is longer than this was not written by a lookup: it is a corrupt value to replace,
# so no lookup ever waits behind it or downloads it again and again to learn what it is.
MAX_LEASE_BYTES = 64
# How much of a corrupt value the claim script compares before replacing it (with its length).
COMPARED_BYTES = 64


def new_lease() -> str:
    """A lease value no other fill holds: 64 random bits."""
    return LEASE_PREFIX.decode() + os.urandom(8).hex() + '"}'


@dataclass(frozen=True, slots=True)
class CachedEntry:
    """What a GET found: a record, a remembered "not found", a lease, nothing, or a corrupt value to repair."""

    record: UserRecord | None = None
    value: str | None = None
    not_found: bool = False
    problem: Problem | None = None
    remaining_ms: int | None = None
    unavailable: bool = False  # Redis could not be asked (down, or the circuit breaker is open)
    leased: bool = False  # another fill holds the key's lease: its record is on the way
    stale: bool = False  # it may hold a version an update replaced, which could not be deleted: not read
    raw: bytes = b""  # the value exactly as read, for a compare-and-set (b"": none)

    @property
    def in_cache(self) -> bool:
        """True when the cache answers by itself (a record or a remembered "not found")."""
        return self.record is not None or self.not_found


MISS = CachedEntry()
LEASED = CachedEntry(leased=True)  # another lookup's lease, as the claim script reports it (without the value)
STALE = CachedEntry(stale=True)  # not read: an update could not delete what the key holds (PendingInvalidations)
WRONG_TYPE = CachedEntry(problem=Problem.WRONG_TYPE)
UNAVAILABLE = CachedEntry(unavailable=True)


def read_cached(raw: bytes | str | None, user_id: int, remaining_ms: int | None = None) -> CachedEntry:
    """Interpret what a GET returned for `user_id` (bytes: the demo's clients never decode), and what
    PTTL said of it when asked (-1: no expiry, which the demo never writes: another client's value)."""
    if raw is None:
        return MISS
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogateescape")
    if raw.startswith(LEASE_PREFIX) and len(raw) <= MAX_LEASE_BYTES:
        return CachedEntry(leased=True, raw=raw)
    if raw.endswith(b',"not_found":true}') and raw == encode_not_found(user_id).encode():
        found = CachedEntry(not_found=True, remaining_ms=remaining_ms, raw=raw)
    else:
        try:
            record = decode_record(raw, user_id)
        except CorruptEntry as corrupt:
            return CachedEntry(problem=corrupt.problem, raw=raw)
        found = CachedEntry(record=record, value=raw.decode("utf-8"), remaining_ms=remaining_ms, raw=raw)
    return CachedEntry(problem=Problem.NO_EXPIRY, raw=raw) if remaining_ms == -1 else found
