"""Simulator layer, pure: how the demo names, expires, locks and refreshes its keys, and which defences are on.

The key of a user (`cache_key`), exactly which keys are the demo's (`demo_key`, so `clear`
and `cache` never touch another's), and `CachePolicy`: the TTL and its jitter, the lease's
life and the polls while another holds it, early refresh, the breaker's cool-down, and one
switch for each defence a lookup has. Nothing here does I/O.
"""

from __future__ import annotations

import functools
import math
import random
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from config.settings import MAX_USER_ID, Settings
from simulator.entries import LEASE_HEADROOM_SECONDS
from simulator.records import UserRecord


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
    # The defences, one switch each (all on by default, but early refresh and jitter, set above); a lab
    # turns one off to show what it prevents, and nothing else changes:
    read_coalescing: bool = True  # concurrent lookups of an id in this process share one GET
    single_flight: bool = True  # ... and one miss: the database is read once for them all
    lease: bool = True  # a miss claims the key before reading, and stores only while its lease holds
    negative_caching: bool = True  # a "not found" is cached too, for negative_ttl_seconds
    breaker: bool = True  # after a failure, Redis is left alone for cooldown_seconds
    expiry_audit: bool = True  # a key's first hit here (and one a TTL after) checks that it has an expiry
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
