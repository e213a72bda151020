"""Benchmark I/O: what a cache buys: a hit against one read of a random user straight from each database.

With no simulated delay, the hit and one read from the run's SQLite file and from a private
PostgreSQL server on loopback (started here through `local_postgres.py`, filled with the
same users, stopped after) alternate sample by sample, sync and then async. Without
PostgreSQL's binaries, or with a server that will not start or be filled, its rows say why
instead of failing the run. It never uses a PostgreSQL server it did not start.
"""

from __future__ import annotations

import contextlib
import random
import time

from benchmarks.harness import DB_TIMEOUT_SECONDS, BenchDatabase, cleanup, run_async
from benchmarks.local_postgres import postgres_binaries, start_postgres
from benchmarks.measurements import Measurements
from benchmarks.plan import HIT_ID, POLICY, WARM_UP_SAMPLES, Plan
from config.database import DatabaseError, aopen_connector, open_connector
from config.redis import RedisClients
from config.settings import Settings
from simulator._async.database import AsyncDatabase
from simulator._sync.database import Database
from simulator.records import encode_record, user_record
from simulator.simulate_cache_db_flow import AsyncCacheAside, CacheAside

NO_POSTGRES = "no PostgreSQL server binaries"


def measure_reads(clients: RedisClients, plan: Plan, measurements: Measurements, data: BenchDatabase) -> None:
    """What a cache buys: a hit through the lookup against a read of a random user with no simulated delay.

    The hit and one read from each database (the SQLite file; a private PostgreSQL server
    on loopback, filled with the same users) alternate sample by sample, the same random
    id for both databases, sync and then async, round by round.
    """
    client = clients.sync_client()
    client.set(POLICY.key(HIT_ID), encode_record(user_record(HIT_ID)), ex=POLICY.ttl_seconds)
    with contextlib.ExitStack() as stack:
        postgres_url = _postgres_database(stack, measurements, data.users)
        databases: dict[str, Database] = {"sqlite": data.sync()}
        if postgres_url is not None:
            databases["postgresql"] = stack.enter_context(contextlib.closing(_postgres(postgres_url)))
        for name, database in databases.items():  # the ids must be there: a miss would time an empty read
            if database.fetch(data.users) is None or database.fetch(1) is None:
                raise RuntimeError(f"the {name} database does not hold users 1..{data.users:,}")
        cache = CacheAside(client, data.sync(), POLICY)
        ids = random.Random(HIT_ID)
        for _ in range(min(plan.rounds, 3)):
            for sample in range(-WARM_UP_SAMPLES, plan.read_samples):  # the first few warm the connections
                user_id = ids.randint(1, data.users)
                started = time.perf_counter()
                cache.lookup(HIT_ID)
                hit = time.perf_counter() - started
                times = {}
                for name, database in databases.items():
                    started = time.perf_counter()
                    database.fetch(user_id)
                    times[name] = time.perf_counter() - started
                if sample >= 0:
                    measurements.reads.setdefault("hit-sync", []).append(hit)
                    for name, seconds in times.items():
                        measurements.reads.setdefault(f"{name}-sync", []).append(seconds)
            run_async(clients, lambda: _async_reads(clients, plan, measurements, data, postgres_url, ids))
    cleanup(client)


async def _async_reads(
    clients: RedisClients,
    plan: Plan,
    measurements: Measurements,
    data: BenchDatabase,
    postgres_url: str | None,
    ids: random.Random,
) -> float:
    """One async round of `measure_reads`, on connections of this event loop."""
    async with contextlib.AsyncExitStack() as stack:
        sqlite = await stack.enter_async_context(data.open_async())
        databases = {"sqlite": sqlite}
        if postgres_url is not None:
            databases["postgresql"] = AsyncDatabase(await aopen_connector(_postgres_settings(postgres_url)), 0)
            stack.push_async_callback(databases["postgresql"].aclose)
        cache = AsyncCacheAside(clients.async_client(), sqlite, POLICY)
        for sample in range(-WARM_UP_SAMPLES, plan.read_samples):
            user_id = ids.randint(1, data.users)
            started = time.perf_counter()
            await cache.lookup(HIT_ID)
            hit = time.perf_counter() - started
            times = {}
            for name, database in databases.items():
                started = time.perf_counter()
                await database.fetch(user_id)
                times[name] = time.perf_counter() - started
            if sample >= 0:
                measurements.reads.setdefault("hit-async", []).append(hit)
                for name, seconds in times.items():
                    measurements.reads.setdefault(f"{name}-async", []).append(seconds)
    return 0.0


def _postgres_settings(url: str) -> Settings:
    return Settings(database_url=url, db_timeout_seconds=DB_TIMEOUT_SECONDS)


def _postgres(url: str) -> Database:
    return Database(open_connector(_postgres_settings(url)), 0)


def _postgres_database(stack: contextlib.ExitStack, measurements: Measurements, users: int) -> str | None:
    """A private PostgreSQL server (stopped when `stack` closes) with users 1..`users`, its fill timed.

    None, with the reason in `measurements.not_measured`, when it cannot be had: no binaries,
    or a server that would not start or be filled.
    """
    if postgres_binaries() is None:
        measurements.not_measured["postgresql"] = NO_POSTGRES
        return None
    try:
        server = start_postgres()
    except RuntimeError as error:
        measurements.not_measured["postgresql"] = f"the private PostgreSQL server did not start: {error}"
        return None
    stack.callback(server.stop)
    try:
        url = server.create_database("benchmark")
        with contextlib.closing(_postgres(url)) as database:
            started = time.perf_counter()
            database.fill(database.filled_to(), users)
            seconds = time.perf_counter() - started
            with database.connector.session() as session:
                session.execute("VACUUM ANALYZE users")  # as a table at rest would be: visibility map, statistics
                size = session.query("SELECT pg_total_relation_size('users')")[0][0]
    except DatabaseError as error:
        measurements.not_measured["postgresql"] = f"the private PostgreSQL server failed: {error}"
        return None
    measurements.fill["postgresql"] = {"users": users, "seconds": seconds, "bytes": int(size)}
    return url
