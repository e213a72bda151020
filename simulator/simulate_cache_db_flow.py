"""Simulator layer, I/O shells: the slow database, the cache-aside lookup and seeding, twice.

Every class here has a twin: `SimulatedDatabase` / `AsyncSimulatedDatabase`,
`CacheAside` / `AsyncCacheAside`, `Seeder` / `AsyncSeeder`, `BackgroundSeed` /
`AsyncBackgroundSeed`. The twins mirror each other method for method; they differ in
`await` and in sleeping with `time.sleep` or `asyncio.sleep`. Every decision is made in
`simulator.core`; these methods only call Redis and wait. The three seeding functions at
the end carry the names of the user's flow diagram.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import redis
import redis.asyncio

from config.redis import BULK_BATCH_TIMEOUT_SECONDS
from simulator.core import (
    WRONG_TYPE,
    CachedEntry,
    CachePolicy,
    LookupResult,
    SeedProgress,
    SeedReport,
    Source,
    id_batches,
    read_cached,
)
from simulator.records import UserRecord, encode_record, encoded_user_record, user_record


def is_wrong_type(error: redis.ResponseError) -> bool:
    """True when a GET hit a key holding a hash, list or other non-string type."""
    return str(error).startswith("WRONGTYPE")


class ReadCounter:
    """Counts database reads; safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def increment(self) -> None:
        """Count one read."""
        with self._lock:
            self.value += 1


# --- the simulated database ---


class SimulatedDatabase:
    """The slow source of truth: every read waits `latency_seconds` (time.sleep)."""

    def __init__(self, latency_seconds: float) -> None:
        self.latency_seconds = latency_seconds
        self.reads = ReadCounter()

    def fetch(self, user_id: int) -> UserRecord:
        """Read one user, slowly: the cost the cache exists to avoid."""
        time.sleep(self.latency_seconds)
        self.reads.increment()
        return user_record(user_id)

    def export(self, ids: range) -> list[tuple[int, str]]:
        """Many users at once, already as the cache stores them (a bulk export: no per-read latency)."""
        return [(user_id, encoded_user_record(user_id)) for user_id in ids]


class AsyncSimulatedDatabase:
    """The slow source of truth: every read waits `latency_seconds` (asyncio.sleep)."""

    def __init__(self, latency_seconds: float) -> None:
        self.latency_seconds = latency_seconds
        self.reads = ReadCounter()

    async def fetch(self, user_id: int) -> UserRecord:
        """Read one user, slowly: the cost the cache exists to avoid."""
        await asyncio.sleep(self.latency_seconds)
        self.reads.increment()
        return user_record(user_id)

    def export(self, ids: range) -> list[tuple[int, str]]:
        """Many users at once, already as the cache stores them (a bulk export: no per-read latency)."""
        return [(user_id, encoded_user_record(user_id)) for user_id in ids]


# --- the cache-aside lookup ---


class CacheAside:
    """Cache-aside on a sync `redis.Redis`: GET; on a miss read the database, SET with a TTL."""

    def __init__(self, client: redis.Redis, database: SimulatedDatabase, policy: CachePolicy) -> None:
        self.client = client
        self.database = database
        self.policy = policy

    def lookup(self, user_id: int) -> LookupResult:
        """The user's record, from the cache if it is there, else from the database (then cached)."""
        started = time.perf_counter()
        key = self.policy.key(user_id)
        cached = self._read(key, user_id)
        if cached.record is not None:
            return LookupResult.from_cache(user_id, key, cached, time.perf_counter() - started)
        record = self.database.fetch(user_id)
        value = encode_record(record)
        self.client.set(key, value, ex=self.policy.ttl_for(user_id))
        return LookupResult(user_id, key, Source.DATABASE, record, value, time.perf_counter() - started, cached.warning)

    def _read(self, key: str, user_id: int) -> CachedEntry:
        try:
            return read_cached(self.client.get(key), user_id)
        except redis.ResponseError as error:
            if is_wrong_type(error):
                return WRONG_TYPE
            raise


class AsyncCacheAside:
    """Cache-aside on a `redis.asyncio.Redis`: GET; on a miss read the database, SET with a TTL."""

    def __init__(self, client: redis.asyncio.Redis, database: AsyncSimulatedDatabase, policy: CachePolicy) -> None:
        self.client = client
        self.database = database
        self.policy = policy

    async def lookup(self, user_id: int) -> LookupResult:
        """The user's record, from the cache if it is there, else from the database (then cached)."""
        started = time.perf_counter()
        key = self.policy.key(user_id)
        cached = await self._read(key, user_id)
        if cached.record is not None:
            return LookupResult.from_cache(user_id, key, cached, time.perf_counter() - started)
        record = await self.database.fetch(user_id)
        value = encode_record(record)
        await self.client.set(key, value, ex=self.policy.ttl_for(user_id))
        return LookupResult(user_id, key, Source.DATABASE, record, value, time.perf_counter() - started, cached.warning)

    async def _read(self, key: str, user_id: int) -> CachedEntry:
        try:
            return read_cached(await self.client.get(key), user_id)
        except redis.ResponseError as error:
            if is_wrong_type(error):
                return WRONG_TYPE
            raise


# --- seeding ---


@contextlib.asynccontextmanager
async def batch_deadline(seconds: float = BULK_BATCH_TIMEOUT_SECONDS) -> AsyncIterator[None]:
    """Bound one pipeline batch as a whole (the bulk client has no timeout per reply)."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        raise redis.TimeoutError(f"a seeding batch took over {seconds:g} s") from None


class Seeder:
    """Writes the records of ids 1..N into a sync Redis, batch by batch."""

    def __init__(
        self, client: redis.Redis, database: SimulatedDatabase, policy: CachePolicy, batch_size: int = 1000
    ) -> None:
        self.client = client
        self.database = database
        self.policy = policy
        self.batch_size = batch_size

    def seed_sequential(self, progress: SeedProgress) -> SeedReport:
        """One SET per round trip: the slow way, to compare against."""
        for batch in id_batches(progress.requested, self.batch_size):
            if progress.stop_requested:
                return progress.report(time.perf_counter(), stopped=True)
            for user_id, value in self.database.export(batch):
                self.client.set(self.policy.key(user_id), value, ex=self.policy.ttl_for(user_id))
                progress.advance(1)
        return progress.report(time.perf_counter())

    def seed_pipelined(self, progress: SeedProgress) -> SeedReport:
        """One round trip per batch: a non-transactional pipeline of SETs."""
        for batch in id_batches(progress.requested, self.batch_size):
            if progress.stop_requested:
                return progress.report(time.perf_counter(), stopped=True)
            pipeline = self.client.pipeline(transaction=False)
            for user_id, value in self.database.export(batch):
                # Exactly `SET key value EX ttl`; pipeline.set(..., ex=) checks its options
                # first, which at a million records costs seconds.
                pipeline.execute_command(  # type: ignore[no-untyped-call]
                    "SET", self.policy.key(user_id), value, "EX", self.policy.ttl_for(user_id)
                )
            pipeline.execute()
            progress.advance(len(batch))
        return progress.report(time.perf_counter())


class AsyncSeeder:
    """Writes the records of ids 1..N into an asyncio Redis, batch by batch."""

    def __init__(
        self,
        client: redis.asyncio.Redis,
        database: AsyncSimulatedDatabase,
        policy: CachePolicy,
        batch_size: int = 1000,
    ) -> None:
        self.client = client
        self.database = database
        self.policy = policy
        self.batch_size = batch_size

    async def seed_sequential(self, progress: SeedProgress) -> SeedReport:
        """One SET per round trip: the slow way, to compare against."""
        for batch in id_batches(progress.requested, self.batch_size):
            if progress.stop_requested:
                return progress.report(time.perf_counter(), stopped=True)
            for user_id, value in self.database.export(batch):
                await self.client.set(self.policy.key(user_id), value, ex=self.policy.ttl_for(user_id))
                progress.advance(1)
        return progress.report(time.perf_counter())

    async def seed_pipelined(self, progress: SeedProgress) -> SeedReport:
        """One round trip per batch: a non-transactional pipeline of SETs."""
        for batch in id_batches(progress.requested, self.batch_size):
            if progress.stop_requested:
                return progress.report(time.perf_counter(), stopped=True)
            pipeline = self.client.pipeline(transaction=False)
            for user_id, value in self.database.export(batch):
                # Exactly `SET key value EX ttl`; pipeline.set(..., ex=) checks its options
                # first, which at a million records costs seconds.
                pipeline.execute_command("SET", self.policy.key(user_id), value, "EX", self.policy.ttl_for(user_id))
            async with batch_deadline():
                await pipeline.execute()
            progress.advance(len(batch))
        return progress.report(time.perf_counter())


# --- seeding in the background ---


class BackgroundSeed:
    """A seed in a daemon thread, so the prompt is usable at once."""

    def __init__(
        self,
        seed: Callable[[SeedProgress], SeedReport],
        progress: SeedProgress,
        on_done: Callable[[SeedReport, Exception | None], object],
    ) -> None:
        self.progress = progress
        self.error: Exception | None = None
        self._seed = seed
        self._on_done = on_done
        self._report: SeedReport | None = None
        self._thread = threading.Thread(target=self._run, name="background-seed", daemon=True)

    def start(self) -> BackgroundSeed:
        """Start seeding; returns at once."""
        self._thread.start()
        return self

    @property
    def finished(self) -> bool:
        """True once the seed has ended, by itself or stopped."""
        return self._report is not None

    def wait(self) -> SeedReport:
        """Wait until the seed ends by itself."""
        self._thread.join()
        return self._report or self.progress.report(time.perf_counter(), stopped=True)

    def stop(self) -> SeedReport:
        """Stop after the current batch and wait; what was written stays."""
        self.progress.request_stop()
        return self.wait()

    def _run(self) -> None:
        try:
            self._report = self._seed(self.progress)
        except redis.RedisError as error:
            self.error = error
            self._report = self.progress.report(time.perf_counter(), stopped=True)
        if not self.progress.stop_requested:
            self._on_done(self._report, self.error)


class AsyncBackgroundSeed:
    """A seed in an asyncio task, so the prompt is usable at once."""

    def __init__(
        self,
        seed: Callable[[SeedProgress], Awaitable[SeedReport]],
        progress: SeedProgress,
        on_done: Callable[[SeedReport, Exception | None], object],
    ) -> None:
        self.progress = progress
        self.error: Exception | None = None
        self._seed = seed
        self._on_done = on_done
        self._report: SeedReport | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> AsyncBackgroundSeed:
        """Start seeding; returns at once."""
        self._task = asyncio.create_task(self._run(), name="background-seed")
        return self

    @property
    def finished(self) -> bool:
        """True once the seed has ended, by itself or stopped."""
        return self._report is not None

    async def wait(self) -> SeedReport:
        """Wait until the seed ends by itself."""
        if self._task is not None:
            await self._task
        return self._report or self.progress.report(time.perf_counter(), stopped=True)

    async def stop(self) -> SeedReport:
        """Stop after the current batch and wait; what was written stays."""
        self.progress.request_stop()
        return await self.wait()

    async def _run(self) -> None:
        try:
            self._report = await self._seed(self.progress)
        except redis.RedisError as error:
            self.error = error
            self._report = self.progress.report(time.perf_counter(), stopped=True)
        if not self.progress.stop_requested:
            self._on_done(self._report, self.error)


# --- the flow diagram's names ---


def set_redis_with_mock_data(
    client: redis.Redis, count: int, policy: CachePolicy | None = None, batch_size: int = 1000
) -> SeedReport:
    """Seed ids 1..count sequentially, one SET per round trip, blocking (the diagram's sync path)."""
    seeder = Seeder(client, SimulatedDatabase(0), policy or CachePolicy(), batch_size)
    return seeder.seed_sequential(SeedProgress("sequential", count, time.perf_counter()))


def set_redis_with_mock_data_async(
    client: redis.Redis,
    count: int,
    policy: CachePolicy | None = None,
    batch_size: int = 1000,
    on_done: Callable[[SeedReport, Exception | None], object] = lambda report, error: None,
) -> BackgroundSeed:
    """Seed ids 1..count in a background thread, pipelined; returns at once (the diagram's threaded path)."""
    seeder = Seeder(client, SimulatedDatabase(0), policy or CachePolicy(), batch_size)
    return BackgroundSeed(seeder.seed_pipelined, SeedProgress("threaded", count, time.perf_counter()), on_done).start()


async def set_redis_with_mock_data_async_aioredis(
    client: redis.asyncio.Redis, count: int, policy: CachePolicy | None = None, batch_size: int = 1000
) -> SeedReport:
    """Seed ids 1..count with asyncio pipelines (the diagram's async path; aioredis lives on as redis.asyncio)."""
    seeder = AsyncSeeder(client, AsyncSimulatedDatabase(0), policy or CachePolicy(), batch_size)
    return await seeder.seed_pipelined(SeedProgress("pipelined", count, time.perf_counter()))
