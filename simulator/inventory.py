"""Simulator layer: what the cache holds in the demo's namespace (`cache`), a pure core and its two thin shells.

The core does no I/O: which scanned keys are the demo's (exactly the keys `clear` would
remove, never another's), what each holds (a record, a cached "not found", a lease, or
something no demo process writes) from the first bytes of its value, a uniform sample of
them (a seeded reservoir), and the summary with its extrapolations labelled as such.
The shells, `take_inventory` (a blocking client) and `atake_inventory` (an asyncio one),
only SCAN the namespace (on a Redis Cluster, every master, as `clear` does), read each
key's head in pipelines, and ask PTTL, MEMORY USAGE and STRLEN of the sample. The work is
bounded: at most MAX_SCANNED_KEYS keys, and the summary says when it stopped there.

SCAN may return a key twice while Redis resizes its table, and keys expire while they are
counted: on a busy server the counts are as SCAN saw them, not a snapshot.
"""

from __future__ import annotations

import random
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from config.redis_failures import failure_reason
from simulator.entries import LEASE_PREFIX, encode_not_found
from simulator.policy import CachePolicy, demo_key

MAX_SCANNED_KEYS = 1_000_000
SAMPLE_KEYS = 100
SCAN_COUNT = 1000  # keys asked of SCAN per round trip (a hint Redis may exceed)
READ_BATCH = 1000  # keys whose heads are read in one pipeline
HEAD_BYTES = 64  # a tombstone is at most 34 bytes, a lease 28, a record ~170: the first 64 tell them apart
SAMPLE_SEED = 1

# One command to send: the key it is about (to route it on a cluster), and its words.
Routed = tuple[str, tuple[object, ...]]


class KeyKind(StrEnum):
    """What a demo key holds."""

    RECORD = "record"
    NOT_FOUND = "not-found"  # a tombstone: a cached "not found"
    LEASE = "lease"  # a lookup is reading the database to fill it
    OTHER = "other"  # another Redis type, or a value no demo process writes
    GONE = "gone"  # expired (or deleted) between SCAN and the read: not counted


def kind_of(user_id: int, head: object) -> KeyKind:
    """What the key of `user_id` holds, from the first HEAD_BYTES of its value (an error: another Redis type)."""
    if not isinstance(head, bytes):
        return KeyKind.OTHER
    if not head:  # GETRANGE of a missing key; no demo process writes an empty value
        return KeyKind.GONE
    if head.startswith(LEASE_PREFIX):
        return KeyKind.LEASE
    if head == encode_not_found(user_id).encode():
        return KeyKind.NOT_FOUND
    if head.startswith(b'{"id":%d,"' % user_id):
        return KeyKind.RECORD
    return KeyKind.OTHER


def head_commands(keys: Sequence[str]) -> list[Routed]:
    """Read the first HEAD_BYTES of each key's value (GETRANGE: a missing key reads as empty)."""
    return [(key, ("GETRANGE", key, 0, HEAD_BYTES - 1)) for key in keys]


def sample_commands(keys: Sequence[str]) -> list[Routed]:
    """For each sampled key: its PTTL, its MEMORY USAGE and its value's length, in that order."""
    return [(key, command) for key in keys for command in (("PTTL", key), ("MEMORY", "USAGE", key), ("STRLEN", key))]


@dataclass(frozen=True, slots=True)
class CacheInventory:
    """What `cache` found: the demo's keys by kind, and what a sample of them costs and has left."""

    pattern: str  # the SCAN MATCH pattern of the namespace
    records: int
    not_found: int
    leases: int
    other: int
    capped: bool  # the scan stopped at `limit` keys: there are more
    limit: int
    sampled: int  # sampled keys still there when measured
    memory_bytes: int | None  # MEMORY USAGE of the sample, extrapolated to every key counted
    memory_problem: str | None  # why there is no memory figure
    payload_bytes: int | None  # key and value bytes (STRLEN) of the sample, extrapolated likewise
    ttl_seconds: dict[str, float | None]  # min, median and max PTTL of the sampled keys that expire
    no_expiry: int  # sampled keys without an expiry (never written by the demo)
    elapsed_seconds: float
    unreachable: tuple[str, ...] = ()  # cluster masters that could not be scanned, each with why: not counted

    @property
    def keys(self) -> int:
        """Every demo key counted."""
        return self.records + self.not_found + self.leases + self.other

    @property
    def estimated(self) -> bool:
        """True when the byte figures are extrapolated from a sample rather than summed over every key."""
        return self.sampled < self.keys


class Survey:
    """An inventory as it is taken: the keys admitted, their kinds, and a uniform sample of those still there."""

    def __init__(
        self,
        policy: CachePolicy,
        limit: int = MAX_SCANNED_KEYS,
        sample_size: int = SAMPLE_KEYS,
        source: random.Random | None = None,
    ) -> None:
        self.policy = policy
        self.limit = limit
        self.sample_size = sample_size
        self.admitted = 0
        self.capped = False
        self.kinds: Counter[KeyKind] = Counter()
        self.sample: list[str] = []
        self.unreachable: list[str] = []  # cluster masters that could not be scanned
        self._prefix = policy.key_prefix
        self._id_starts = len(policy.key_prefix) + len("user-")
        self._offered = 0
        self._source = source or random.Random(SAMPLE_SEED)

    def part_failed(self, node: str, error: Exception) -> None:
        """One master of a cluster could not be scanned: named in the summary (a single server's failure is raised)."""
        if not node:
            raise error
        self.unreachable.append(f"{node} ({failure_reason(error)})")

    def admit(self, raw: bytes) -> str | None:
        """The key, if it is one of the demo's and under the limit; None otherwise (one past the limit caps it)."""
        key = demo_key(raw, self._prefix)
        if key is None:
            return None
        if self.admitted >= self.limit:
            self.capped = True
            return None
        self.admitted += 1
        return key

    def classify(self, keys: Sequence[str], heads: Sequence[object]) -> None:
        """Count each key by what its head holds; offer those still there to the sample."""
        for key, head in zip(keys, heads, strict=True):
            kind = kind_of(int(key[self._id_starts :]), head)
            self.kinds[kind] += 1
            if kind is not KeyKind.GONE:
                self._offer(key)

    def _offer(self, key: str) -> None:
        """Reservoir sampling (Algorithm R): every key ends in the sample with the same chance."""
        self._offered += 1
        if len(self.sample) < self.sample_size:
            self.sample.append(key)
            return
        slot = self._source.randrange(self._offered)
        if slot < self.sample_size:
            self.sample[slot] = key

    def report(self, replies: Sequence[object], elapsed_seconds: float) -> CacheInventory:
        """The summary, given the replies to `sample_commands(self.sample)`."""
        ttls_ms: list[int] = []
        memory: list[int] = []
        payload: list[int] = []
        no_expiry, problem = 0, ""  # problem: why MEMORY USAGE gave no figure, if it did not
        for key, (pttl, usage, length) in zip(self.sample, _triples(replies), strict=True):
            if not isinstance(pttl, int) or pttl == -2:  # gone since it was counted
                continue
            if pttl == -1:
                no_expiry += 1
            else:
                ttls_ms.append(pttl)
            if isinstance(usage, int):
                memory.append(usage)
            elif not problem and isinstance(usage, Exception):
                problem = _memory_problem(usage)
            if isinstance(length, int):
                payload.append(len(key) + length)
        counted = sum(count for kind, count in self.kinds.items() if kind is not KeyKind.GONE)
        return CacheInventory(
            pattern=self.policy.scan_pattern,
            records=self.kinds[KeyKind.RECORD],
            not_found=self.kinds[KeyKind.NOT_FOUND],
            leases=self.kinds[KeyKind.LEASE],
            other=self.kinds[KeyKind.OTHER],
            capped=self.capped,
            limit=self.limit,
            sampled=no_expiry + len(ttls_ms),
            memory_bytes=_extrapolated(memory, counted),
            memory_problem=None if memory else problem or "no sampled key was left to measure",
            payload_bytes=_extrapolated(payload, counted),
            ttl_seconds=_spread([ttl / 1000 for ttl in ttls_ms]),
            no_expiry=no_expiry,
            elapsed_seconds=elapsed_seconds,
            unreachable=tuple(self.unreachable),
        )


def _triples(replies: Sequence[object]) -> list[tuple[object, object, object]]:
    return [(replies[index], replies[index + 1], replies[index + 2]) for index in range(0, len(replies), 3)]


def _memory_problem(error: Exception) -> str:
    if "unknown command" in str(error).lower():
        return "this Redis has no MEMORY USAGE command; the embedded one has none"
    return failure_reason(error)


def _extrapolated(sizes: Sequence[int], keys: int) -> int | None:
    """The sample's mean size times the keys counted (their exact sum when every key was sampled)."""
    return round(statistics.fmean(sizes) * keys) if sizes else None


def _spread(seconds: Sequence[float]) -> dict[str, float | None]:
    if not seconds:
        return {"min": None, "median": None, "max": None}
    return {"min": min(seconds), "median": statistics.median(seconds), "max": max(seconds)}
