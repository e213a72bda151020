"""Simulator layer, pure: the cache-aside policy both twins share.

Key names, TTLs and their jitter, what a cached value means (a record, a cached "not
found", a lease, or a corrupt value), the two Lua scripts that make a fill safe (claim a
lease; store only while it holds), when to refresh a hot key early, how long to wait for
another process's database read, how seeding is batched, the statistics, and the values
every operation returns. The sync and async
shells in `simulate_cache_db_flow` do only the Redis calls, the sleeps and the
concurrency around these; nothing here does I/O or knows whether it runs in a thread or
an event loop.
"""

from __future__ import annotations

import functools
import math
import os
import random
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import ClassVar, Literal

from config.settings import MAX_USER_ID, Settings
from simulator.records import (
    CorruptEntry,
    Problem,
    UserRecord,
    decode_record,
    encode_record,
)
from simulator.sql import RowProblem


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


def cache_key(user_id: int, prefix: str = "") -> str:
    """The Redis key of a user: `user-42`, or `<prefix>user-42` in a namespace."""
    return f"{prefix}user-{user_id}"


@functools.cache
def demo_key_pattern(prefix: str = "") -> re.Pattern[str]:
    """The shape of the keys the demo writes (records, tombstones and leases): `user-<id>`, the id in
    plain decimal with at most as many digits as MAX_USER_ID (`demo_key` checks its value too)."""
    return re.compile(re.escape(prefix) + rf"user-([1-9][0-9]{{0,{len(str(MAX_USER_ID)) - 1}}})")


def demo_key(raw: bytes, prefix: str = "") -> str | None:
    """The key SCAN returned, if the demo could have written it (`clear` and `cache` touch no other): the
    exact shape, for an id the demo serves (1..MAX_USER_ID); None otherwise."""
    key = raw.decode("utf-8", "replace")
    match = demo_key_pattern(prefix).fullmatch(key)
    return key if match is not None and int(match[1]) <= MAX_USER_ID else None


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

# KEYS[1]: the user's key. ARGV[1]: our lease, ARGV[2]: its life in ms, ARGV[3]: what we
# found there unusable: "string" (ARGV[4] is that value's length and ARGV[5] its first
# COMPARED_BYTES bytes), "type" (another Redis type) or "" (nothing), ARGV[6]: the lease
# prefix, ARGV[7]: MAX_LEASE_MS, ARGV[8]: MAX_LEASE_BYTES.
# Returns {1} when the lease is ours; {3} while another lookup's lease holds the key (no
# value: a lease says nothing more); {2} for another Redis type; else {0, what the key holds}.
# A corrupt value is replaced when its length and first bytes are those we saw: replacing any
# value with our lease is safe (the fill reads the database after it), so the compare needs
# no more, and a large corrupt value is never sent back to Redis.
CLAIM_SCRIPT = """
local kind = redis.call('TYPE', KEYS[1]).ok
if kind == 'none' or (kind ~= 'string' and ARGV[3] == 'type') then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {1}
end
if kind ~= 'string' then return {2} end
local value = redis.call('GET', KEYS[1])
local replace = ARGV[3] == 'string' and #value == tonumber(ARGV[4]) and string.sub(value, 1, #ARGV[5]) == ARGV[5]
if not replace and string.sub(value, 1, #ARGV[6]) == ARGV[6] then
  local left = redis.call('PTTL', KEYS[1])
  replace = #value > tonumber(ARGV[8]) or left < 0 or left > tonumber(ARGV[7])
  if not replace then return {3} end
end
if replace then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {1}
end
return {0, value}
"""

# KEYS[1]: the user's key. Its value and PTTL in one command, for a hit that must also see
# the expiry (a key's first hit in the process, which checks it has one; early refresh). A
# GET+PTTL pipeline would be one round trip too, but redis-py builds and reads a pipeline in
# Python: measured on redis.asyncio, a GET 157 us, this script 151 us, the pipeline 217 us.
READ_WITH_TTL_SCRIPT = "return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}"

# KEYS[1]: the user's key. ARGV[1]: the value it must still hold (our lease, or the record
# an early refresh replaces), ARGV[2]: the new value, ARGV[3]: its TTL in seconds.
# Returns 1 if stored, 0 if the key changed meanwhile (an update removed our lease).
# (pcall: a key of another type answers GET with an error, which equals no lease.)
STORE_SCRIPT = """
if redis.pcall('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""


# Seeding a single server claims and stores a whole batch in one script call each, so a
# million records cost two commands a batch instead of two a record (measured: a 1,000,000
# seed took 42 s with a SET NX and an EVALSHA per record, and 26 s this way). A cluster cannot
# run one script over keys in many slots, so there (and in `sequential` mode) it goes key by key.
CLAIM_MANY_SCRIPT = """
local claimed = {}
for i, key in ipairs(KEYS) do
  claimed[i] = redis.call('SET', key, ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0
end
return claimed
"""
# KEYS: the claimed keys. ARGV[1]: the batch's lease; then a value and a TTL per key.
STORE_MANY_SCRIPT = """
local stored = 0
for i, key in ipairs(KEYS) do
  if redis.pcall('GET', key) == ARGV[1] then
    redis.call('SET', key, ARGV[2 * i], 'EX', ARGV[2 * i + 1])
    stored = stored + 1
  end
end
return stored
"""
# Giving leases back: a key a seed claimed but has nothing to store for (its row is missing or not
# a valid user, or the batch's range read failed) is deleted while it still holds the seed's lease,
# so no lookup waits for a lease nobody will fill. KEYS[1]: the key; ARGV[1]: the lease. Returns 1 if released.
RELEASE_SCRIPT = """
if redis.pcall('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# The same for a batch's keys in one call (a single server). KEYS: the keys; ARGV[1]: the batch's lease.
RELEASE_MANY_SCRIPT = """
local released = 0
for _, key in ipairs(KEYS) do
  if redis.pcall('GET', key) == ARGV[1] then released = released + redis.call('DEL', key) end
end
return released
"""
MAX_NAMED_ROWS = 5  # a seed's report names this many of the rows it skipped, and counts the rest


@dataclass(frozen=True, slots=True)
class SeedScripts:
    """The SHA1s of the scripts a seed runs (loaded once per seed; on a cluster, on every master)."""

    store: str
    claim_many: str
    store_many: str
    release: str
    release_many: str


def claim_commands(
    keys: Sequence[str], lease: str, lease_ms: int, scripts: SeedScripts, per_key: bool
) -> list[tuple[object, ...]]:
    """The commands that claim a batch's empty keys with one lease: a SET NX PX each, or one script."""
    if per_key:
        return [("SET", key, lease, "NX", "PX", lease_ms) for key in keys]
    return [("EVALSHA", scripts.claim_many, len(keys), *keys, lease, lease_ms)]


def claimed_flags(replies: Sequence[object], per_key: bool) -> list[bool]:
    """Which keys of the batch the claim commands took, in order."""
    flags = replies if per_key else replies[0]
    assert isinstance(flags, list | tuple)
    return [bool(flag) for flag in flags]


def store_commands(
    entries: Sequence[tuple[str, str, int]], lease: str, scripts: SeedScripts, per_key: bool
) -> list[tuple[object, ...]]:
    """The commands that store (key, value, ttl) entries while their keys still hold the lease.

    Each reply is the number stored (0 or 1 per key, or the batch's count), so their sum counts them.
    """
    if per_key:
        return [("EVALSHA", scripts.store, 1, key, lease, value, ttl) for key, value, ttl in entries]
    if not entries:
        return []
    keys = [key for key, _, _ in entries]
    values_and_ttls = [part for _, value, ttl in entries for part in (value, ttl)]
    return [("EVALSHA", scripts.store_many, len(keys), *keys, lease, *values_and_ttls)]


def release_commands(keys: Sequence[str], lease: str, scripts: SeedScripts, per_key: bool) -> list[tuple[object, ...]]:
    """The commands that give back the lease on each of `keys` that still holds it: one per key, or one script."""
    if per_key:
        return [("EVALSHA", scripts.release, 1, key, lease) for key in keys]
    return [("EVALSHA", scripts.release_many, len(keys), *keys, lease)] if keys else []


@dataclass(frozen=True, slots=True)
class SeedBatch:
    """What seeding one batch did: records stored, keys claimed but changed before the store (an update, del
    or clear removed the lease), ids skipped because their rows are missing or not valid users, and those rows named."""

    size: int
    written: int
    changed: int = 0
    invalid: int = 0
    problems: tuple[str, ...] = ()

    @property
    def skipped(self) -> int:
        """Ids of the batch not written, for whatever reason."""
        return self.size - self.written


@dataclass(frozen=True, slots=True)
class SeedPlan:
    """What a batch does once its rows are read: store `entries` (key, value, TTL) while the lease holds,
    and give back the leases on `released`, the claimed keys whose rows are missing or not valid users."""

    size: int
    entries: list[tuple[str, str, int]]
    released: list[str]
    invalid: int  # ids of the batch skipped: their rows are missing or not valid users
    problems: tuple[str, ...]  # what is wrong with each row (a row whose id is no whole number too)

    def commands(self, lease: str, scripts: SeedScripts, per_key: bool) -> tuple[list[tuple[object, ...]], list[str]]:
        """The store commands, then the release commands, with each one's key (for a cluster's routing)."""
        stores = store_commands(self.entries, lease, scripts, per_key)
        releases = release_commands(self.released, lease, scripts, per_key)
        keys = [key for key, _, _ in self.entries] if per_key else [key for key, _, _ in self.entries[:1]]
        keys += self.released if per_key else self.released[:1]
        return [*stores, *releases], keys

    def outcome(self, replies: Sequence[object], per_key: bool) -> SeedBatch:
        """The batch's counts from the replies to `commands` (the stores' come first)."""
        store_replies = len(self.entries) if per_key else min(1, len(self.entries))
        written = sum(int(reply) for reply in replies[:store_replies] if isinstance(reply, int))
        return SeedBatch(self.size, written, len(self.entries) - written, self.invalid, self.problems)


def seed_plan(
    batch: range,
    keys: Sequence[str],
    claimed: Sequence[bool],
    rows: Iterable[UserRecord],
    problems: Iterable[RowProblem],
    policy: CachePolicy,
) -> SeedPlan:
    """What to store for a batch, and which leases to give back, from its rows and what was wrong with the rest.

    A claimed id with a row gets the record; one past the table (no row, none owed) the "not found" a lookup
    would store; one whose row is missing or not a valid user gets nothing, and its lease back.
    """
    bad = tuple(problems)
    skipped = {problem.user_id for problem in bad if problem.user_id in batch}
    ours = [(user_id, key) for user_id, key, taken in zip(batch, keys, claimed, strict=True) if taken]
    found = {record.id: record for record in rows}
    entries = [
        (key, *seed_value(user_id, found.get(user_id), policy)) for user_id, key in ours if user_id not in skipped
    ]
    released = [key for user_id, key in ours if user_id in skipped]
    return SeedPlan(len(batch), entries, released, len(skipped), tuple(problem.text for problem in bad))


def new_lease() -> str:
    """A lease value no other fill holds: 64 random bits."""
    return LEASE_PREFIX.decode() + os.urandom(8).hex() + '"}'


# --- the policy ---


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """How the demo names, expires, locks and refreshes its keys."""

    key_prefix: str = ""
    ttl_seconds: int = 3600
    ttl_jitter: float = 0.0
    negative_ttl_seconds: int = 60
    lease_seconds: float = 5.0
    wait_poll_seconds: float = 0.05
    early_refresh: bool = False
    early_refresh_beta: float = 1.0
    cooldown_seconds: float = 5.0
    private_cache: bool = False  # the embedded Redis: this process's own, so other processes keep their copies
    random: Callable[[], float] = field(default=random.random, compare=False)
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> CachePolicy:
        """The policy the settings ask for; a lease outlives the database latency twice over, plus headroom
        for a read that queues behind others (a lease that expires mid-read stores nothing)."""
        latency = settings.db_latency_seconds
        return cls(
            key_prefix=settings.key_prefix,
            ttl_seconds=settings.cache_ttl_seconds,
            ttl_jitter=settings.ttl_jitter,
            negative_ttl_seconds=settings.negative_ttl_seconds,
            lease_seconds=2 * latency + LEASE_HEADROOM_SECONDS,
            wait_poll_seconds=min(0.1, max(0.005, latency / 20)),
            early_refresh=settings.early_refresh,
            cooldown_seconds=settings.cache_cooldown_seconds,
            private_cache=settings.embedded,
        )

    def key(self, user_id: int) -> str:
        """The key of `user_id` in this policy's namespace."""
        return cache_key(user_id, self.key_prefix)

    @property
    def lease_ms(self) -> int:
        """A lease's life in milliseconds, as PX takes it."""
        return max(1, round(self.lease_seconds * 1000))

    @property
    def scan_pattern(self) -> str:
        """A SCAN MATCH glob that finds the demo's keys (filtered exactly by `demo_key_pattern`)."""
        return f"{self.key_prefix}user-*"

    def ttl_of(self, record: UserRecord | None) -> int:
        """The TTL of what a fill or a seed stores for a database answer: a record's (jittered), or a "not found"'s."""
        return self.ttl_for(record.id) if record is not None else self.negative_ttl_seconds

    @property
    def longest_ttl_seconds(self) -> int:
        """The longest a value the demo stores can live: a record's TTL with the most jitter."""
        return max(self.negative_ttl_seconds, round(self.ttl_seconds * (1 + self.ttl_jitter)))  # as ttl_for rounds

    def ttl_for(self, user_id: int) -> int:
        """Seconds a record lives: TTL spread by up to ±jitter, so keys written together expire apart."""
        if not self.ttl_jitter:
            return self.ttl_seconds
        return max(1, round(self.ttl_seconds * (1 + self.ttl_jitter * (2 * self.random() - 1))))

    def claim_schedule(self) -> Iterator[float]:
        """The pauses before each claim: none for the first, then polls while another process holds
        the lease, for at most a lease's life in wall-clock time (past it, that lease has expired),
        however long each claim itself takes."""
        yield 0.0
        deadline = self.clock() + self.lease_seconds
        while (left := deadline - self.clock()) > 0:
            yield min(self.wait_poll_seconds, left)

    def should_refresh_early(self, remaining_ms: int | None, last_fetch_seconds: float) -> bool:
        """XFetch (Vattani et al., 2015): refresh with a probability that rises as expiry nears.

        Refresh when `last_fetch * beta * -ln(u)` reaches the time left: rarely while the
        TTL is long, almost surely in its last moments, sooner for keys slow to fetch.
        """
        if not self.early_refresh or remaining_ms is None or remaining_ms < 0:
            return False
        headroom = -last_fetch_seconds * self.early_refresh_beta * math.log(max(self.random(), 1e-300))
        return headroom * 1000 >= remaining_ms


# --- what a cached value means ---


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


class ExpiryAudit:
    """Which keys this process should check for an expiry on their next hit.

    A hit is one GET, which cannot see a TTL. So each key's first hit in this process, and
    one at least every CACHE_TTL after, also asks PTTL (same round trip): a value another
    client wrote with no expiry is then found, treated as corrupt and repaired, and no value
    is trusted for longer than a TTL without a check. Keys this process stored itself are
    known to have one. Thread-safe enough: a lost update only causes an extra check.
    """

    CAPACITY = 100_000  # keys remembered: memory stays bounded however many keys are hit

    def __init__(self, interval_seconds: float) -> None:
        self.interval_seconds = interval_seconds
        self._checked: dict[str, float] = {}

    def due(self, key: str) -> bool:
        """True when the next read of `key` should ask for its expiry too."""
        checked = self._checked.get(key)
        return checked is None or time.monotonic() - checked >= self.interval_seconds

    def checked(self, key: str) -> None:
        """`key` was just seen (or written) with an expiry."""
        if len(self._checked) >= self.CAPACITY:
            self._checked.clear()  # bounded memory; forgetting only costs each key one more check
        self._checked[key] = time.monotonic()


@dataclass(frozen=True, slots=True)
class Claim:
    """What the claim script answered: the lease is ours, what the key holds instead, or why Redis could not say."""

    lease: str | None  # ours to fill with
    found: CachedEntry = MISS
    problem: StoreProblem | None = None  # Redis down, resting or full: answer without the cache

    @classmethod
    def of(cls, reply: Sequence[object], user_id: int, lease: str) -> Claim:
        """Read the script's reply: [1], [0, value], [2] (another Redis type) or [3] (another's lease)."""
        if reply[0] == 1:
            return cls(lease)
        if reply[0] == 2:
            return cls(None, WRONG_TYPE)
        if reply[0] == 3:
            return cls(None, LEASED)
        raw = reply[1]
        return cls(None, read_cached(raw if isinstance(raw, bytes | str) else None, user_id))


def claim_arguments(lease: str, policy: CachePolicy, seen: CachedEntry) -> list[object]:
    """ARGV of the claim script: our lease, its life, and what we saw that may be replaced."""
    replaceable = seen.problem is not None and seen.problem is not Problem.WRONG_TYPE
    return [
        lease,
        policy.lease_ms,
        "" if seen.problem is None else "string" if replaceable else "type",
        len(seen.raw) if replaceable else 0,
        seen.raw[:COMPARED_BYTES] if replaceable else b"",
        LEASE_PREFIX,
        MAX_LEASE_MS,
        MAX_LEASE_BYTES,
    ]


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
    kind: Literal["unavailable", "full", "refused", "lease lost", "lease held", "stale copy"]

    @property
    def unavailable(self) -> bool:
        """The cache could not be asked: the answer is marked degraded."""
        return self.kind == "unavailable"


def stored_or_lost(reply: object) -> StoreProblem | None:
    """Read the store script's reply: None if stored, LEASE_LOST if the key had changed."""
    return None if reply == 1 else LEASE_LOST


def stored_value(user_id: int, record: UserRecord | None) -> str:
    """What the cache holds for a database answer: the record, or a "not found" tombstone."""
    return encode_not_found(user_id) if record is None else encode_record(record)


def seed_value(user_id: int, record: UserRecord | None, policy: CachePolicy) -> tuple[str, int]:
    """What seeding stores for an id it read from the database, and for how long: what a fill would
    (the same two functions, without building a `Filled` per record)."""
    return stored_value(user_id, record), policy.ttl_of(record)


def seed_entries(
    batch: range, keys: Sequence[str], claimed: Sequence[bool], rows: Iterable[UserRecord], policy: CachePolicy
) -> list[tuple[str, str, int]]:
    """What seeding stores for a batch: (key, value, TTL) for each key it claimed, from the batch's rows
    (an id the database lacks gets the "not found" tombstone a lookup would store)."""
    found = {record.id: record for record in rows}
    return [
        (key, *seed_value(user_id, found.get(user_id), policy))
        for user_id, key, ours in zip(batch, keys, claimed, strict=True)
        if ours
    ]


LEASE_LOST = StoreProblem(
    "the key changed while the database was read (an update, a del or a clear removed this lookup's lease)",
    "lease lost",
)
LEASE_HELD = StoreProblem("another lookup held its lease the whole time", "lease held")
BREAKER_OPEN = StoreProblem("the cache is unavailable", "unavailable")  # not asked: its circuit breaker is open
STALE_COPY = StoreProblem(
    "the cache may still hold the version an update replaced, which could not be deleted; it is tried again "
    "at the next lookup",
    "stale copy",
)


# --- invalidations that failed: what `update` could not delete is never answered ---


class PendingInvalidations:
    """The ids whose cached copy an update could not delete (Redis down, a replica, an ACL). Thread-safe.

    Until the copy is deleted (each lookup of the id tries again first) or must have expired
    (the longest TTL after the failure), this process answers the id from the database and
    never from the cache, so it never answers the version the update replaced.
    """

    def __init__(self, longest_ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.longest_ttl_seconds = longest_ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._until: dict[int, float] = {}  # user id -> when any copy stored before the update has expired

    def failed(self, user_id: int) -> None:
        """An update of `user_id` committed, and its cached copy could not be deleted."""
        with self._lock:
            self._until[user_id] = self._clock() + self.longest_ttl_seconds

    def deleted(self, user_id: int) -> None:
        """The cached copy of `user_id` is gone (an update's delete, a retry, or a `del`)."""
        if user_id in self._until:
            with self._lock:
                self._until.pop(user_id, None)

    def holds(self, user_id: int) -> bool:
        """True while the cache may hold a copy of `user_id` older than an update."""
        until = self._until.get(user_id)
        if until is None:
            return False
        if self._clock() < until:
            return True
        self.deleted(user_id)  # expired by now, whatever it was
        return False


# --- the circuit breaker ---


@dataclass(frozen=True, slots=True)
class CacheEvent:
    """A change in whether Redis (or one cluster node, named by `node`) can be used: printed once, not per lookup."""

    available: bool
    reason: str = ""
    retry_seconds: float = 0.0
    node: str = ""


class CircuitBreaker:
    """Stops calling a dead cache for a cool-down, then lets one call probe it. Thread-safe.

    Closed: every call goes to Redis. A failure opens it: for `cooldown_seconds` no call
    does, so each lookup costs only the database. Then one call probes; its success closes
    the breaker, its failure opens it for another cool-down.

    A call is judged by when it began, not when it ended: one that `allow` let through before
    the breaker last closed (sent to a frozen server, or waiting for a connection, during the
    outage) and that fails after the recovery tells nothing new, so it neither reopens the
    breaker nor announces an outage. `allow` notes, for the thread or task that called it
    (a context variable), which closing it came after; the report of that call reads it.
    """

    # (breaker, how many times it had closed) when this thread or task was last let through; None once reported
    _let_through: ClassVar[ContextVar[tuple[CircuitBreaker, int] | None]] = ContextVar("let_through", default=None)

    def __init__(self, cooldown_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.cooldown_seconds = cooldown_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._state = "closed"
        self._retry_at = 0.0
        self._closings = 0  # how many times an outage ended: a call let through before the latest one is late

    @property
    def closed(self) -> bool:
        """True while Redis is in use."""
        return self._state == "closed"

    def allow(self) -> bool:
        """May this call use Redis? (False while open, and for all but the one probe.)

        A probe that never reports (its caller cancelled, say) is replaced by another one
        after a further cool-down, so the breaker cannot stay half-open for good.
        """
        if self._state == "closed":
            self._let_through.set((self, self._closings))  # read after the state: `succeeded` counts, then closes
            return True
        with self._lock:
            if self._clock() >= self._retry_at:
                self._state = "probing"
                self._retry_at = self._clock() + self.cooldown_seconds
                self._let_through.set((self, self._closings))
                return True
            return False

    def succeeded(self) -> bool:
        """Record a call that worked; True when it ended an outage."""
        self._reported()
        if self._state == "closed":
            return False
        with self._lock:
            ended = self._state != "closed"
            if ended:
                self._closings += 1
            self._state = "closed"
            return ended

    def failed(self) -> bool:
        """Record a call that found Redis down; True when it started an outage.

        A call let through before the breaker last closed changes nothing: Redis has answered since it began.
        """
        began_after = self._reported()
        with self._lock:
            if began_after is not None and began_after < self._closings:
                return False
            started, self._state = self._state == "closed", "open"
            self._retry_at = self._clock() + self.cooldown_seconds
            return started

    def _reported(self) -> int | None:
        """How many closings the call now reported came after (None: unknown, a call `allow` was not asked about)."""
        let_through = self._let_through.get()
        if let_through is None or let_through[0] is not self:
            return None
        self._let_through.set(None)
        return let_through[1]


class CircuitBreakers:
    """One breaker per node: a cluster node down keeps only its own keys off Redis. Thread-safe.

    `failed` and `succeeded` return the CacheEvent to announce, once per change of state (a late
    failure of a call that began before the last recovery changes nothing, so announces nothing).
    """

    def __init__(self, cooldown_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.cooldown_seconds = cooldown_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._breakers: dict[str, CircuitBreaker] = {}

    def __getitem__(self, node: str) -> CircuitBreaker:
        """The breaker of `node` ("" for a single server or a Sentinel-found master)."""
        breaker = self._breakers.get(node)
        if breaker is None:
            with self._lock:
                breaker = self._breakers.setdefault(node, CircuitBreaker(self.cooldown_seconds, self._clock))
        return breaker

    def failed(self, node: str, reason: str) -> CacheEvent | None:
        """Redis (or one cluster node) failed; the event to announce if that started an outage."""
        if self[node].failed():
            return CacheEvent(False, reason, self.cooldown_seconds, node)
        return None

    def succeeded(self, node: str) -> CacheEvent | None:
        """Redis answered; the event to announce if that ended an outage."""
        return CacheEvent(True, node=node) if self[node].succeeded() else None


# --- results ---


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


def id_batches(count: int, batch_size: int) -> Iterator[range]:
    """Ids 1..count in ranges of `batch_size`: seeding streams, memory stays flat."""
    for start in range(1, count + 1, batch_size):
        yield range(start, min(start + batch_size, count + 1))


# --- seeding ---


@dataclass(frozen=True, slots=True)
class SeedReport:
    """What a seed did: records stored of those requested, keys it left alone, how long, whether stopped."""

    mode: str
    requested: int
    written: int
    seconds: float
    stopped: bool = False
    skipped: int = 0  # ids not written: already cached, changed meanwhile, or their rows not valid users
    changed: int = 0  # claimed, but an update, del or clear removed the lease before the store: left for a lookup
    invalid: int = 0  # rows missing or not valid users: nothing stored, their leases given back
    invalid_rows: tuple[str, ...] = ()  # the first MAX_NAMED_ROWS of the rows wrong, named
    problems: int = 0  # rows wrong in all (a row whose id is no whole number names no user, so counts only here)

    @property
    def cached(self) -> int:
        """Keys the seed left as they were: already cached, or being filled by a lookup."""
        return self.skipped - self.changed - self.invalid

    @property
    def records_per_second(self) -> float:
        """Measured throughput of the ids processed (0 when nothing was timed)."""
        return (self.written + self.skipped) / self.seconds if self.seconds > 0 else 0.0


class SeedProgress:
    """A seed's running counts and stop flag, shared with the thread or task that runs it.

    Only the seeding loop writes the counts; anyone may call `request_stop`, which the
    loop reads between batches, so a stopped seed keeps everything it wrote.
    """

    def __init__(
        self, mode: str, requested: int, started: float, on_advance: Callable[[int], object] | None = None
    ) -> None:
        self.mode = mode
        self.requested = requested
        self.started = started
        self.written = 0
        self.skipped = 0
        self.changed = 0
        self.invalid = 0
        self.invalid_rows: list[str] = []  # the first MAX_NAMED_ROWS
        self.problems = 0
        self.stop_requested = False
        self._on_advance = on_advance

    def advance(self, written: int, skipped: int = 0) -> None:
        """Count `written` more records stored and `skipped` keys left as they were."""
        self.written += written
        self.skipped += skipped
        if self._on_advance is not None:
            self._on_advance(written + skipped)

    def add(self, batch: SeedBatch) -> None:
        """Count what a batch did."""
        self.changed += batch.changed
        self.invalid += batch.invalid
        self.problems += len(batch.problems)
        self.invalid_rows += batch.problems[: MAX_NAMED_ROWS - len(self.invalid_rows)]
        self.advance(batch.written, batch.skipped)

    def request_stop(self) -> None:
        """Ask the seeding loop to stop after the batch it is writing."""
        self.stop_requested = True

    def report(self, now: float, *, stopped: bool = False) -> SeedReport:
        """The report as of `now` (a perf_counter reading)."""
        return SeedReport(
            self.mode,
            self.requested,
            self.written,
            now - self.started,
            stopped,
            self.skipped,
            self.changed,
            self.invalid,
            tuple(self.invalid_rows),
            self.problems,
        )


# --- statistics ---


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
