"""Simulator layer, pure: how a seed warms the cache in batches, without ever storing a stale record.

Each batch claims its empty keys with one lease, reads its rows in one range read, then
stores each record while its key still holds that lease, and gives back the leases it has
nothing to store for. The commands for each step (one per key, or one script per batch),
what a batch did, and the running counts of a seed are here; the shells send the commands.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from simulator.policy import CachePolicy
from simulator.records import UserRecord
from simulator.results import stored_value
from simulator.scripts import (
    CLAIM_MANY_SCRIPT,
    RELEASE_MANY_SCRIPT,
    RELEASE_SCRIPT,
    STORE_MANY_SCRIPT,
    STORE_SCRIPT,
)
from simulator.sql import RowProblem

MAX_NAMED_ROWS = 5  # a seed's report names this many of the rows it skipped, and counts the rest


# The scripts a seed loads, in SeedScripts' order.
SEED_SCRIPTS = (STORE_SCRIPT, CLAIM_MANY_SCRIPT, STORE_MANY_SCRIPT, RELEASE_SCRIPT, RELEASE_MANY_SCRIPT)


def batches_in_flight(pipelined: bool) -> int:
    """Batches a pipelined seed works on at once: while one waits for Redis to run its scripts,
    the other reads its rows and builds its records (Redis runs on another core). Each batch
    is still claimed before it is read. `sequential` mode stays one command at a time.
    Measured, 100,000 records on a private server: sync 1.67 s one batch at a time, 1.31 s two;
    async 1.82 s and 1.43 s. (More than two gained nothing measurable.)"""
    return 2 if pipelined else 1


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


def id_batches(count: int, batch_size: int) -> Iterator[range]:
    """Ids 1..count in ranges of `batch_size`: seeding streams, memory stays flat."""
    for start in range(1, count + 1, batch_size):
        yield range(start, min(start + batch_size, count + 1))


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


class BaseBackgroundSeed:
    """What both background seeds share that does no I/O: the progress, and saying once how it ended."""

    def __init__(self, progress: SeedProgress, on_done: Callable[[SeedReport, Exception | None], object]) -> None:
        self.progress = progress
        self.error: Exception | None = None
        self._on_done = on_done
        self._report: SeedReport | None = None
        self._reported = False
        self._report_lock = threading.Lock()

    def _final_report(self) -> SeedReport:
        """How the seed ended: its own report, or one that says it stopped where it was."""
        return self._report or self.progress.report(time.perf_counter(), stopped=True)

    def _ended(self, report: SeedReport | None, error: Exception | None) -> None:
        """The seed returned `report`, or failed with `error`: tell `on_done`, unless `stop` already reported."""
        self.error = error
        self._report = report or self.progress.report(time.perf_counter(), stopped=True)
        if self._claim_report():
            self._on_done(self._report, error)

    def _claim_report(self) -> bool:
        """True once: whoever claims first (the seed ending, or `stop`) says how it ended."""
        with self._report_lock:
            first, self._reported = not self._reported, True
            return first
