"""Benchmark I/O: ours against the peers, through one runner: a stampede, a mixed load, and a hit.

Each contender (`contenders.OURS`, and the installed ones of `peers.py`) caches the same ids
beforehand and warms up, not timed, then starts every lookup at once against the same
database loader with SCENARIO_LATENCY_SECONDS of delay: 100 lookups of one missing id, then
the mixed load (`plan.mixed_workload`); then a peer's hit against a raw GET of the same key.
Every round runs every contender in turn, so machine noise hits each alike. What a library logs
is counted, never printed; a peer that fails is reported and the run goes on, but ours
failing always fails the run.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass

import redis
import redis.asyncio

from benchmarks import peers
from benchmarks.contenders import OURS, Answer, AsyncCache, Contender, SyncCache
from benchmarks.harness import BenchDatabase, cleanup, run_async
from benchmarks.measurements import LoadOutcome, Measurements
from benchmarks.plan import (
    HIT_ID,
    LOAD_WORKERS,
    PREFIX,
    SCENARIO_LATENCY_SECONDS,
    STAMPEDE_ID,
    STAMPEDE_LOOKUPS,
    WARM_UP_SAMPLES,
    Plan,
    mixed_workload,
)
from config.redis import RedisClients
from simulator._async.database import AsyncDatabase
from simulator._sync.database import Database
from simulator.records import encode_record

PRIME_CHUNK = 50  # lookups at once while ids are cached beforehand (not timed), so no default pool is overrun


@dataclass(frozen=True)
class Scenario:
    """Concurrent lookups: the ids cached beforehand, and the lookups then started at once."""

    cached: Sequence[int]
    lookups: Sequence[int]
    workers: int | None = None  # sync: a pool of this many threads; None: a thread a lookup

    @property
    def warm_up(self) -> list[int]:
        """As many lookups as the timed ones, of cached ids: each contender opens the connections it will use."""
        return [self.cached[index % len(self.cached)] for index in range(len(self.lookups))]


class LogCounter(logging.Handler):
    """Counts the warnings and errors a library logs (and keeps them off stderr): the failures it answers past."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        """Count one record (called under the handler's lock, so threads may log at once)."""
        self.count += 1


@contextlib.contextmanager
def counted_logs(names: Sequence[str]) -> Iterator[LogCounter]:
    """While inside, what the loggers `names` say is counted instead of printed."""
    counter = LogCounter()
    loggers = [logging.getLogger(name) for name in names]
    propagating = [logger.propagate for logger in loggers]
    for logger in loggers:
        logger.addHandler(counter)
        logger.propagate = False
    try:
        yield counter
    finally:
        for logger, propagate in zip(loggers, propagating, strict=True):
            logger.removeHandler(counter)
            logger.propagate = propagate


def run_scenario(
    clients: RedisClients, data: BenchDatabase, contender: Contender, scenario: Scenario, expected: dict[int, str]
) -> LoadOutcome:
    """The contender caches `scenario.cached` and warms up (no simulated delay, not timed), then starts every lookup
    at once against a database with SCENARIO_LATENCY_SECONDS of delay.

    Async: one task a lookup (asyncio.gather); sync: a thread a lookup, or a pool of `scenario.workers` threads.
    """
    with counted_logs(contender.loggers) as logs:
        if contender.build_async is not None:
            build = contender.build_async

            async def in_the_loop() -> LoadOutcome:
                async with data.open_async() as database:
                    cache = await build(clients, database)
                    try:
                        return await _async_scenario(cache, database, scenario, expected, logs)
                    finally:
                        await cache.aclose()

            return run_async(clients, in_the_loop)
        assert contender.build_sync is not None
        sync_database = data.sync()
        sync_cache = contender.build_sync(clients, sync_database)
        try:
            return _sync_scenario(sync_cache, sync_database, scenario, expected, logs)
        finally:
            sync_cache.close()


async def _async_scenario(
    cache: AsyncCache, database: AsyncDatabase, scenario: Scenario, expected: dict[int, str], logs: LogCounter
) -> LoadOutcome:
    for start in range(0, len(scenario.cached), PRIME_CHUNK):
        await asyncio.gather(*(cache.lookup(user_id) for user_id in scenario.cached[start : start + PRIME_CHUNK]))
    await asyncio.gather(*(cache.lookup(user_id) for user_id in scenario.warm_up), return_exceptions=True)
    database.latency_seconds = SCENARIO_LATENCY_SECONDS
    reads, logged, started = database.reads.value, logs.count, time.perf_counter()
    outcomes = await asyncio.gather(*(cache.lookup(user_id) for user_id in scenario.lookups), return_exceptions=True)
    seconds = time.perf_counter() - started
    return LoadOutcome.of(
        seconds, scenario.lookups, outcomes, expected, database.reads.value - reads, logs.count - logged
    )


def _sync_scenario(
    cache: SyncCache, database: Database, scenario: Scenario, expected: dict[int, str], logs: LogCounter
) -> LoadOutcome:
    with concurrent.futures.ThreadPoolExecutor(max_workers=scenario.workers or PRIME_CHUNK) as pool:
        list(pool.map(cache.lookup, scenario.cached))
        if scenario.workers is None:
            in_threads(cache.lookup, scenario.warm_up)
        else:
            concurrent.futures.wait([pool.submit(cache.lookup, user_id) for user_id in scenario.warm_up])
        database.latency_seconds = SCENARIO_LATENCY_SECONDS
        reads, logged, started = database.reads.value, logs.count, time.perf_counter()
        if scenario.workers is None:
            outcomes = in_threads(cache.lookup, scenario.lookups)
        else:
            futures = [pool.submit(cache.lookup, user_id) for user_id in scenario.lookups]
            outcomes = [future.exception() or future.result() for future in futures]
        seconds = time.perf_counter() - started
    return LoadOutcome.of(
        seconds, scenario.lookups, outcomes, expected, database.reads.value - reads, logs.count - logged
    )


def in_threads(lookup: Callable[[int], Answer], ids: Sequence[int]) -> list[Answer | BaseException]:
    """One thread a lookup, all started before any is joined (as `CacheAside.stampede` does)."""
    outcomes: list[Answer | BaseException] = [RuntimeError("not run")] * len(ids)

    def one_lookup(index: int, user_id: int) -> None:
        try:
            outcomes[index] = lookup(user_id)
        except Exception as error:  # counted, not raised: the scenario reports how many failed
            outcomes[index] = error

    threads = [threading.Thread(target=one_lookup, args=pair, daemon=True) for pair in enumerate(ids)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def measure_concurrency(clients: RedisClients, plan: Plan, measurements: Measurements, data: BenchDatabase) -> None:
    """Ours and each installed peer, round by round: 100 lookups of one missing id, then the mixed load; then
    a peer's hit against a raw GET. A peer that fails is reported, and the run goes on."""
    contenders = [*OURS, *peers.contenders(measurements)]
    cached, order = mixed_workload(plan.concurrent_lookups)
    scenarios = {
        "stampede": Scenario((HIT_ID,), [STAMPEDE_ID] * STAMPEDE_LOOKUPS),
        "load": Scenario(cached, order, LOAD_WORKERS),
    }
    known = range(1, max(STAMPEDE_ID, *order) + 1)
    expected = {record.id: encode_record(record) for record in data.sync().read_range(known)}
    client = clients.sync_client()
    for _ in range(plan.load_rounds):
        for contender in contenders:
            if contender.hit_only or contender.name in measurements.peer_failures:
                continue
            for name, scenario in scenarios.items():
                cleanup(client)
                try:
                    outcome = run_scenario(clients, data, contender, scenario, expected)
                except Exception as error:
                    if contender.library == "ours":
                        raise
                    measurements.peer_failures[contender.name] = f"{type(error).__name__}: {error}"[:200]
                    break
                getattr(measurements, name).setdefault(contender.name, []).append(outcome)
    for contender in contenders:
        if contender.library != "ours" and contender.name not in measurements.peer_failures:
            try:
                measure_peer_hit(clients, plan, measurements, data, contender)
            except Exception as error:
                measurements.peer_failures[contender.name] = f"{type(error).__name__}: {error}"[:200]
    cleanup(client)
    cleanup(client, f"lock:{PREFIX}")  # cashews' lock=True locks live under lock:<its key>; released, unless it failed


def measure_peer_hit(
    clients: RedisClients, plan: Plan, measurements: Measurements, data: BenchDatabase, contender: Contender
) -> None:
    """A hit through the peer next to a raw GET of the same key on a default redis-py client of its kind."""
    hit: list[float] = measurements.peer_hits.setdefault(contender.name, [])
    raw: list[float] = measurements.peer_hits.setdefault(f"{contender.name}:raw", [])
    build_async, build_sync = contender.build_async, contender.build_sync
    for _ in range(min(plan.rounds, 3)):
        with counted_logs(contender.loggers) as logs:
            if build_async is not None:
                run_async(clients, lambda: _async_peer_hits(clients, plan, data, build_async, hit, raw))
            else:
                assert build_sync is not None
                _sync_peer_hits(clients, plan, data, build_sync, hit, raw)
        if logs.count:
            raise RuntimeError(f"{logs.count} warnings or errors logged while measuring a hit")


async def _async_peer_hits(
    clients: RedisClients,
    plan: Plan,
    data: BenchDatabase,
    build: Callable[[RedisClients, AsyncDatabase], Awaitable[AsyncCache]],
    hit: list[float],
    raw: list[float],
) -> None:
    """One round of `measure_peer_hit` for an async library, in this event loop."""
    default_client = redis.asyncio.Redis.from_url(clients.settings.redis_url)
    try:
        async with data.open_async() as database:
            cache = await build(clients, database)
            try:
                await cache.lookup(HIT_ID)  # a miss: the library's loader fills it
                if await default_client.get(cache.key(HIT_ID)) is None:
                    raise RuntimeError(f"nothing stored under {cache.key(HIT_ID)}")
                for sample in range(-WARM_UP_SAMPLES, plan.hit_samples):
                    started = time.perf_counter()
                    await cache.lookup(HIT_ID)
                    seconds = time.perf_counter() - started
                    started = time.perf_counter()
                    await default_client.get(cache.key(HIT_ID))
                    if sample >= 0:
                        raw.append(time.perf_counter() - started)
                        hit.append(seconds)
            finally:
                await cache.aclose()
    finally:
        await default_client.aclose()


def _sync_peer_hits(
    clients: RedisClients,
    plan: Plan,
    data: BenchDatabase,
    build: Callable[[RedisClients, Database], SyncCache],
    hit: list[float],
    raw: list[float],
) -> None:
    """One round of `measure_peer_hit` for a blocking library."""
    cache = build(clients, data.sync())
    try:
        with contextlib.closing(redis.Redis.from_url(clients.settings.redis_url)) as default_client:
            cache.lookup(HIT_ID)
            if default_client.get(cache.key(HIT_ID)) is None:
                raise RuntimeError(f"nothing stored under {cache.key(HIT_ID)}")
            for sample in range(-WARM_UP_SAMPLES, plan.hit_samples):
                started = time.perf_counter()
                cache.lookup(HIT_ID)
                seconds = time.perf_counter() - started
                started = time.perf_counter()
                default_client.get(cache.key(HIT_ID))
                if sample >= 0:
                    raw.append(time.perf_counter() - started)
                    hit.append(seconds)
    finally:
        cache.close()
