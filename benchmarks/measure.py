"""Benchmark I/O: every measurement, through the demo's own code and its real scripts.

The source of truth is a real database: a SQLite file in a temp dir that the run fills
itself, once, with as many users as it needs (a million for the full run), before any
seed is timed. In-process measurements (seeding 1000 records, hit and miss latency, a
hit against a database read) call the same shells the twins use; measurements of a
whole program (a million-record seed, peak memory, a hit typed while a background seed
runs, start-up) run `main.py` and `main_async.py` on that file as a user does, over
pipes. The seeding ceiling is `redis-cli --pipe` sending the very SETs a seed stores, read
from the same file. A private PostgreSQL server (when its binaries are installed) gives the
second database read to compare a hit with. The concurrency scenarios (one missing id
looked up 100 times at once; 1000 mixed lookups) run ours and the peers of `peers.py`
through one runner, each contender on the same database loader. Repeated measurements are
interleaved round by round so machine noise hits every contender alike; `summary.py` takes
medians. All keys live under the `bench:` prefix and are removed (SCAN + UNLINK) between
runs: seeding leaves a key that already holds a value as it is, so every seed starts from none.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import csv
import io
import json
import logging
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import redis
import redis.asyncio

from benchmarks.environment import private_cluster
from benchmarks.local_postgres import postgres_binaries, start_postgres
from benchmarks.round_trips import count_round_trips
from config.database import AsyncSqliteConnector, DatabaseError, SqliteConnector, aopen_connector, open_connector
from config.redis import RedisClients, SyncClient, get_redis
from config.settings import Settings
from simulator.core import CachePolicy, SeedProgress, id_batches, seed_entries
from simulator.database import AsyncDatabase, Database
from simulator.load import MAX_LOAD_SECONDS, LoadPlan, LoadReport, LoadRun, arun_load, run_load
from simulator.records import encode_record, user_record, vocabulary
from simulator.simulate_cache_db_flow import (
    AsyncCacheAside,
    AsyncSeeder,
    BackgroundSeed,
    CacheAside,
    Seeder,
)

PREFIX = "bench:"
POLICY = CachePolicy(key_prefix=PREFIX, ttl_seconds=3600)
# What the real scripts seed with (their default settings, TTL jitter included); the scale rows' pipe sends the same
SCRIPT_POLICY = CachePolicy.from_settings(Settings(key_prefix=PREFIX))
PROJECT_ROOT = Path(__file__).resolve().parent.parent
HIT_ID = 42
SETUP_MODES = ("sequential", "threaded", "pipelined-sync", "pipelined-async")
DB_TIMEOUT_SECONDS = 5.0
DATABASES = ("sqlite", "postgresql")
NO_POSTGRES = "no PostgreSQL server binaries"
WARM_UP_SAMPLES = 20
NOT_INSTALLED = "not installed"
SCENARIO_LATENCY_SECONDS = 0.1  # the database latency of the concurrency scenarios (stampede, mixed load)
STAMPEDE_ID = 777  # one id no scenario caches beforehand
STAMPEDE_LOOKUPS = 100
MIXED_SEED = 11  # the mixed load's lookups are shuffled the same way in every run
MIXED_REPEATS = 5  # each missing id of the mixed load is looked up this many times
LOAD_WORKERS = 100  # threads a sync contender serves the mixed load with
PRIME_CHUNK = 50  # lookups at once while ids are cached beforehand (not timed), so no default pool is overrun

T = TypeVar("T")


@dataclass(frozen=True)
class Plan:
    """How much to measure: the full run, or --quick (under a minute)."""

    records: int = 1000
    rounds: int = 5
    hit_samples: int = 2000
    misses: int = 100
    miss_latency: float = 0.1
    concurrent_lookups: int = 1000
    big: int = 1_000_000
    scale_rounds: int = 3
    seed_batch_size: int = 1000
    startup_rounds: int = 5
    hit_pace_seconds: float = 0.02
    cluster_records: int = 100_000
    read_samples: int = 2000
    load_rounds: int = 3
    traffic_lookups: int = 20_000
    traffic_population: int = 100_000
    quick: bool = False

    @classmethod
    def quick_plan(cls, records: int) -> Plan:
        """A run that proves everything works in well under a minute."""
        return cls(
            records=records,
            rounds=3,
            hit_samples=300,
            misses=20,
            miss_latency=0.02,
            big=25_000,
            scale_rounds=1,
            startup_rounds=2,
            cluster_records=5_000,
            read_samples=200,
            load_rounds=2,
            traffic_lookups=2_000,
            traffic_population=20_000,
            quick=True,
        )

    @property
    def users(self) -> int:
        """Users the run's database holds: every id any measurement reads (misses use the upper half)."""
        return max(
            self.records, self.big, self.cluster_records, self.concurrent_lookups, 8 * self.misses, HIT_ID, STAMPEDE_ID
        )

    @property
    def miss_ids_start(self) -> int:
        """The first id the miss rounds read: above every seeded id, below the last user."""
        return self.users // 2 + 1


def mixed_workload(lookups: int) -> tuple[range, list[int]]:
    """The mixed load: the ids cached beforehand, and every lookup in the order they start.

    Half the lookups are hits, one each of ids 1..lookups/2; the other half are misses,
    MIXED_REPEATS each of the lookups/10 ids after them; shuffled with a fixed seed.
    """
    cached = range(1, lookups // 2 + 1)
    missing = range(cached.stop, cached.stop + lookups // (2 * MIXED_REPEATS))
    order = [*cached, *(user_id for user_id in missing for _ in range(MIXED_REPEATS))]
    random.Random(MIXED_SEED).shuffle(order)
    return cached, order


@dataclass(frozen=True, slots=True)
class Answer:
    """One lookup's answer, whoever gave it: the value, and whether the cache was left out."""

    value: str | None
    degraded: bool = False


@dataclass(frozen=True, slots=True)
class LoadOutcome:
    """What one contender's concurrent lookups cost: wall time, failures, and database reads."""

    seconds: float
    errors: int = 0  # lookups that raised
    loader_calls: int = 0  # database reads (`fetch` calls) while the lookups ran
    degraded: int = 0  # answers given without the cache (only ours says so)
    wrong: int = 0  # answers that differ from the database's record
    logged: int = 0  # cache failures the library logged and answered past (as a miss) instead of raising

    @classmethod
    def of(
        cls,
        seconds: float,
        ids: Sequence[int],
        outcomes: Sequence[Answer | BaseException],
        expected: dict[int, str],
        loader_calls: int,
        logged: int = 0,
    ) -> LoadOutcome:
        """Count the failures and wrong answers among the outcomes of lookups of `ids`."""
        answers = [(user_id, outcome) for user_id, outcome in zip(ids, outcomes, strict=True)]
        found = [(user_id, outcome) for user_id, outcome in answers if not isinstance(outcome, BaseException)]
        return cls(
            seconds,
            errors=len(answers) - len(found),
            loader_calls=loader_calls,
            degraded=sum(answer.degraded for _, answer in found),
            wrong=sum(answer.value != expected.get(user_id) for user_id, answer in found),
            logged=logged,
        )


@dataclass
class Measurements:
    """Raw measurements of one run, in seconds unless named otherwise."""

    setup: dict[str, list[float]] = field(default_factory=dict)
    hits: dict[str, list[float]] = field(default_factory=dict)
    redis_benchmark_get: dict[str, float] = field(default_factory=dict)
    misses: dict[str, list[float]] = field(default_factory=dict)
    scale: dict[str, list[float]] = field(default_factory=dict)
    hits_during_seed: dict[str, list[float]] = field(default_factory=dict)
    startup: dict[str, list[float]] = field(default_factory=dict)
    topologies: dict[str, list[float]] = field(default_factory=dict)
    record_bytes: int = 0
    # the run's own database: {"users", "seconds", "bytes"} of filling the SQLite file (and of PostgreSQL's)
    fill: dict[str, dict[str, float]] = field(default_factory=dict)
    # "hit-sync", "sqlite-async", ...: a hit against a read of a random user, no simulated delay
    reads: dict[str, list[float]] = field(default_factory=dict)
    not_measured: dict[str, str] = field(default_factory=dict)  # a database's rows left out, and why
    # the traffic simulator from an empty cache, per twin: the hit ratio of each second of the run; and its summary
    traffic: dict[str, list[float]] = field(default_factory=dict)
    traffic_summary: dict[str, dict[str, Any]] = field(default_factory=dict)
    # round trips one lookup makes ("hit-single", "miss-single", "hit-cluster", "miss-cluster"), counted by a proxy
    round_trips: dict[str, int] = field(default_factory=dict)
    # per contender ("ours-async", "cashews", ...): 100 lookups of one missing id at once, and the mixed load
    stampede: dict[str, list[LoadOutcome]] = field(default_factory=dict)
    load: dict[str, list[LoadOutcome]] = field(default_factory=dict)
    # a peer's hit and, interleaved with it, a raw GET of the same key on a default client: "cashews", "cashews:raw"
    peer_hits: dict[str, list[float]] = field(default_factory=dict)
    peers: dict[str, str | None] = field(default_factory=dict)  # library: its version, None when not installed
    peer_failures: dict[str, str] = field(default_factory=dict)  # contender: why its rows are missing


@dataclass
class BenchDatabase:
    """The run's SQLite file, filled with users 1..`users`, and one blocking connection to it."""

    path: Path
    users: int
    connector: SqliteConnector

    @property
    def url(self) -> str:
        """The DATABASE_URL the scripts get (sqlite:////absolute/path)."""
        return f"sqlite:///{self.path}"

    def sync(self, latency_seconds: float = 0.0) -> Database:
        """A blocking database on the shared connection, with `latency_seconds` of simulated delay."""
        return Database(self.connector, latency_seconds)

    @contextlib.asynccontextmanager
    async def open_async(self, latency_seconds: float = 0.0) -> AsyncIterator[AsyncDatabase]:
        """A non-blocking database on a connection of the running loop, connected before anything is timed."""
        connector = AsyncSqliteConnector(str(self.path), DB_TIMEOUT_SECONDS)
        await connector.connect()
        database = AsyncDatabase(connector, latency_seconds)
        try:
            yield database
        finally:
            await database.aclose()


@contextlib.contextmanager
def bench_database(users: int, measurements: Measurements) -> Iterator[BenchDatabase]:
    """A SQLite file of our own in a temp dir, filled with users 1..`users` once (timed); removed after."""
    with tempfile.TemporaryDirectory(prefix="benchmark-db-") as directory:
        path = Path(directory) / "users.db"
        connector = SqliteConnector(str(path), DB_TIMEOUT_SECONDS)
        try:
            database = Database(connector, 0)
            started = time.perf_counter()
            database.fill(database.filled_to(), users)
            seconds = time.perf_counter() - started
            with connector.session() as session:  # fold the WAL into the file, so its size is the data's
                session.query("PRAGMA wal_checkpoint(TRUNCATE)")
            measurements.fill["sqlite"] = {"users": users, "seconds": seconds, "bytes": _file_bytes(path)}
            yield BenchDatabase(path, users, connector)
        finally:
            connector.close()


def _file_bytes(path: Path) -> int:
    """The SQLite file's size, with its write-ahead log if one is left."""
    sizes = [candidate.stat().st_size for candidate in (path, Path(f"{path}-wal")) if candidate.exists()]
    return sum(sizes)


# --- helpers ---


def cleanup(client: SyncClient, prefix: str = PREFIX) -> None:
    """Remove every key of the benchmark's namespace (or of `prefix`, one under it), and only those."""
    batch: list[bytes] = []
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        batch.append(key)
        if len(batch) == 1000:
            client.unlink(*batch)
            batch.clear()
    if batch:
        client.unlink(*batch)


def run_async(clients: RedisClients, work: Callable[[], Awaitable[T]]) -> T:
    """Run one async measurement in a fresh event loop and close its clients after."""

    async def measured() -> T:
        try:
            return await work()
        finally:
            await clients.aclose()

    return asyncio.run(measured())


def redis_benchmark(url: str, *arguments: str) -> dict[str, float] | None:
    """redis-benchmark's CSV line as numbers (rps, and latencies in ms), or None without the binary."""
    binary = shutil.which("redis-benchmark")
    if binary is None:
        return None
    parts = urlsplit(url)
    command = [binary, "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 6379), "--csv"]
    if parts.password:  # redis-benchmark takes a password only as an argument, which `ps` shows
        command += ["-a", unquote(parts.password), "--no-auth-warning"]
        if parts.username:
            command += ["--user", unquote(parts.username)]
    if parts.path.strip("/"):
        command += ["--dbnum", parts.path.strip("/")]
    done = subprocess.run([*command, *arguments], capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:  # CalledProcessError's message would hold the whole command, password and all
        raise RuntimeError(f"redis-benchmark failed (exit {done.returncode}): {done.stderr.strip()[:200]}")
    rows = list(csv.reader(io.StringIO(done.stdout)))
    names, values = rows[0], rows[-1]
    return {name: float(value) for name, value in zip(names[1:], values[1:], strict=True)}


def resp_command(*parts: str | int) -> bytes:
    """One command in the Redis protocol (RESP2 multi-bulk), as redis-cli --pipe reads it."""
    encoded = [str(part).encode() for part in parts]
    return b"*%d\r\n" % len(encoded) + b"".join(b"$%d\r\n%s\r\n" % (len(part), part) for part in encoded)


def write_seed_commands(path: Path, database: Database, count: int, batch_size: int, policy: CachePolicy) -> None:
    """What a seed of users 1..`count` sends in effect, as RESP: `SET <key> <record> EX <ttl>` per id.

    The records are read from the run's database a batch at a time and encoded as the
    seed encodes them (`seed_entries`, as if the seed had claimed every key).
    """
    with path.open("wb") as commands:
        for batch in id_batches(count, batch_size):
            keys = [policy.key(user_id) for user_id in batch]
            entries = seed_entries(batch, keys, [True] * len(batch), database.read_range(batch), policy)
            commands.write(b"".join(resp_command("SET", key, value, "EX", ttl) for key, value, ttl in entries))


def redis_cli_pipe(url: str, commands: Path, expected_replies: int) -> float | None:
    """Seconds `redis-cli --pipe < commands` takes, start to exit; None without the binary.

    The password goes in REDISCLI_AUTH, never in argv (`ps` shows argv to everyone).
    """
    binary = shutil.which("redis-cli")
    if binary is None:
        return None
    parts = urlsplit(url)
    command = [binary, "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 6379)]
    if parts.username:
        command += ["--user", unquote(parts.username)]
    if parts.path.strip("/"):
        command += ["-n", parts.path.strip("/")]
    if parts.scheme == "rediss":
        command.append("--tls")
    environment = {name: value for name, value in os.environ.items() if name != "REDISCLI_AUTH"}
    if parts.password:
        environment["REDISCLI_AUTH"] = unquote(parts.password)
    with commands.open("rb") as stdin:
        started = time.perf_counter()
        done = subprocess.run(
            [*command, "--pipe"], stdin=stdin, capture_output=True, text=True, env=environment, timeout=600, check=False
        )
        seconds = time.perf_counter() - started
    summary = done.stdout.strip().splitlines()[-1:] or [""]
    if done.returncode != 0 or summary[0] != f"errors: 0, replies: {expected_replies}":
        reason = summary[0] or done.stderr.strip()[:200]
        raise RuntimeError(f"redis-cli --pipe failed (exit {done.returncode}): {reason}")
    return seconds


# --- seeding 1000 records, in-process ---


def measure_setup(clients: RedisClients, plan: Plan, measurements: Measurements, data: BenchDatabase) -> None:
    """Each seeding mode, interleaved round by round, and the ceiling: redis-cli --pipe of the same SETs."""
    client = clients.sync_client()
    value = encode_record(user_record(plan.records // 2 or 1))
    measurements.record_bytes = len(value)
    url = clients.settings.redis_url
    with tempfile.TemporaryDirectory(prefix="benchmark-pipe-") as directory:
        commands, nothing = Path(directory) / "seed.resp", Path(directory) / "empty.resp"
        write_seed_commands(commands, data.sync(), plan.records, plan.seed_batch_size, POLICY)  # not timed
        nothing.touch()
        for _ in range(plan.rounds):
            for mode in SETUP_MODES:
                cleanup(client)
                seconds = seed_once(clients, data, mode, plan.records, plan.seed_batch_size)
                measurements.setup.setdefault(mode, []).append(seconds)
            cleanup(client)
            ceiling = redis_cli_pipe(url, commands, plan.records)
            startup = redis_cli_pipe(url, nothing, 0)  # what of it is starting redis-cli, connecting and exiting
            if ceiling is not None and startup is not None:
                measurements.setup.setdefault("pipe", []).append(ceiling)
                measurements.setup.setdefault("pipe-startup", []).append(startup)
    cleanup(client)


def seed_once(clients: RedisClients, data: BenchDatabase, mode: str, count: int, batch_size: int) -> float:
    """One seed of users 1..`count` from the database in `mode`, timed by the seeder itself (as the demo prints it).

    The keys must be gone: seeding leaves a key that already holds a value as it is.
    """
    seeder = Seeder(clients.sync_client(), data.sync(), POLICY, batch_size)
    if mode == "sequential":
        report = seeder.seed_sequential(SeedProgress(mode, count, time.perf_counter()))
    elif mode == "pipelined-sync":
        report = seeder.seed_pipelined(SeedProgress(mode, count, time.perf_counter()))
    elif mode == "threaded":
        progress = SeedProgress(mode, count, time.perf_counter())
        report = BackgroundSeed(seeder.seed_pipelined, progress, lambda report, error: None).start().wait()
    else:

        async def seed_async() -> float:
            async with data.open_async() as database:  # connected before the clock starts
                async_seeder = AsyncSeeder(clients.async_bulk_client(), database, POLICY, batch_size)
                async_report = await async_seeder.seed_pipelined(SeedProgress(mode, count, time.perf_counter()))
            _check_seeded(mode, count, async_report.written)
            return async_report.seconds

        return run_async(clients, seed_async)
    _check_seeded(mode, count, report.written)
    return report.seconds


def _check_seeded(mode: str, count: int, written: int) -> None:
    """A seed that skipped keys (left from an earlier round) would time less work than it claims."""
    if written != count:
        raise RuntimeError(f"the {mode} seed wrote {written:,} of {count:,} records: keys were left from before")


# --- hit and miss latency, in-process ---


def measure_hits(clients: RedisClients, plan: Plan, measurements: Measurements, data: BenchDatabase) -> None:
    """A hit through the lookup next to a raw GET of the same key, on the same client and on a default one.

    The default client is what a user of redis-py writes (`redis.Redis.from_url(url)`,
    `redis.asyncio.Redis.from_url(url)`), created fresh, not the demo's tuned one. The
    three alternate sample by sample.
    """
    client = clients.sync_client()
    url = clients.settings.redis_url
    key = POLICY.key(HIT_ID)
    client.set(key, encode_record(user_record(HIT_ID)), ex=POLICY.ttl_seconds)
    cache = CacheAside(client, data.sync(), POLICY)
    for _ in range(plan.rounds):
        lookup, raw, default = [], [], []
        with contextlib.closing(redis.Redis.from_url(url)) as default_client:
            for sample in range(-WARM_UP_SAMPLES, plan.hit_samples):  # the first few connect and warm up
                started = time.perf_counter()
                cache.lookup(HIT_ID)
                hit = time.perf_counter() - started
                started = time.perf_counter()
                client.get(key)
                same = time.perf_counter() - started
                started = time.perf_counter()
                default_client.get(key)
                if sample >= 0:
                    default.append(time.perf_counter() - started)
                    lookup.append(hit)
                    raw.append(same)
        measurements.hits.setdefault("lookup-sync", []).extend(lookup)
        measurements.hits.setdefault("raw-get-sync", []).extend(raw)
        measurements.hits.setdefault("raw-get-default-sync", []).extend(default)
        run_async(clients, lambda: _async_hits(clients, plan, measurements, data))
    result = redis_benchmark(clients.settings.redis_url, "-c", "1", "-P", "1", "-n", "20000", "GET", key)
    if result is not None:
        measurements.redis_benchmark_get = {
            "p50": result["p50_latency_ms"] / 1000,
            "p99": result["p99_latency_ms"] / 1000,
        }


async def _async_hits(clients: RedisClients, plan: Plan, measurements: Measurements, data: BenchDatabase) -> None:
    """One async round of `measure_hits`, on clients of this event loop."""
    async_client = clients.async_client()
    key = POLICY.key(HIT_ID)
    default_client = redis.asyncio.Redis.from_url(clients.settings.redis_url)
    lookup, raw, default = [], [], []
    try:
        async with data.open_async() as database:
            cache = AsyncCacheAside(async_client, database, POLICY)
            for sample in range(-WARM_UP_SAMPLES, plan.hit_samples):
                started = time.perf_counter()
                await cache.lookup(HIT_ID)
                hit = time.perf_counter() - started
                started = time.perf_counter()
                await async_client.get(key)
                same = time.perf_counter() - started
                started = time.perf_counter()
                await default_client.get(key)
                if sample >= 0:
                    default.append(time.perf_counter() - started)
                    lookup.append(hit)
                    raw.append(same)
    finally:
        await default_client.aclose()
    measurements.hits.setdefault("lookup-async", []).extend(lookup)
    measurements.hits.setdefault("raw-get-async", []).extend(raw)
    measurements.hits.setdefault("raw-get-default-async", []).extend(default)


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


def measure_misses(clients: RedisClients, plan: Plan, measurements: Measurements, data: BenchDatabase) -> None:
    """N misses one after another (sync) against N at once (async)."""
    client = clients.sync_client()
    first = plan.miss_ids_start
    for round_number in range(min(plan.rounds, 3)):
        ids = range(first + round_number * plan.misses, first + (round_number + 1) * plan.misses)
        cleanup(client)
        cache = CacheAside(client, data.sync(plan.miss_latency), POLICY)
        started = time.perf_counter()
        for user_id in ids:
            cache.lookup(user_id)
        measurements.misses.setdefault("sync-sequential", []).append(time.perf_counter() - started)
        cleanup(client)

        async def concurrent_misses(ids: range = ids) -> float:
            async with data.open_async(plan.miss_latency) as database:
                async_cache = AsyncCacheAside(clients.async_client(), database, POLICY)
                started = time.perf_counter()
                await asyncio.gather(*(async_cache.lookup(user_id) for user_id in ids))
                return time.perf_counter() - started

        measurements.misses.setdefault("async-concurrent", []).append(run_async(clients, concurrent_misses))
    cleanup(client)

    async def at_the_demos_latency(latency: float = Settings().db_latency_seconds) -> float:
        ids = range(first + 3 * plan.misses, first + 4 * plan.misses)
        async with data.open_async(latency) as database:
            async_cache = AsyncCacheAside(clients.async_client(), database, POLICY)
            started = time.perf_counter()
            await asyncio.gather(*(async_cache.lookup(user_id) for user_id in ids))
            return time.perf_counter() - started

    measurements.misses["async-concurrent-default-latency"] = [run_async(clients, at_the_demos_latency)]
    cleanup(client)


# --- whole programs: scale, memory, hits during a background seed, start-up ---


@dataclass(frozen=True)
class ScriptSeed:
    """A real script's seed: the time it printed, and its peak memory."""

    seconds: float
    peak_rss_mb: float


def _script(twin: str) -> str:
    return str(PROJECT_ROOT / ("main.py" if twin == "sync" else "main_async.py"))


def _spawn(
    twin: str, url: str, data: BenchDatabase, *arguments: str, stdout: int = subprocess.DEVNULL
) -> subprocess.Popen[str]:
    """The script on the run's Redis and its filled SQLite file (so it creates no users of its own).

    Python may keep the bytecode it compiles, as on a user's machine (in the run's own temp
    dir, never in the project): with PYTHONDONTWRITEBYTECODE, as some machines set, every
    start would compile the project's modules again, about 50 ms a start measured here.
    """
    unwanted = {"DB_RESET", "PYTHONDONTWRITEBYTECODE"}
    environment = {name: value for name, value in os.environ.items() if name not in unwanted}
    environment["PYTHONPYCACHEPREFIX"] = str(data.path.parent / "pycache")
    return subprocess.Popen(
        [
            sys.executable,
            _script(twin),
            "--key-prefix",
            PREFIX,
            "--db-latency",
            "0",
            "--db-size",
            str(data.users),
            *arguments,
        ],
        stdin=subprocess.PIPE,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
        cwd=PROJECT_ROOT,
        # the environment, not argv: `ps` shows argv to everyone
        env={**environment, "REDIS_URL": url, "DATABASE_URL": data.url},
    )


def _reap(process: subprocess.Popen[str]) -> float:
    """Wait for the process; its peak resident memory in MB (Linux reports ru_maxrss in KB)."""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            stream.close()
    return usage.ru_maxrss / 1024


def _seconds_in(line: str) -> float:
    """The measured time in `Seeded 1,000,000 users in 8.67 s (...)`."""
    return float(line.split(" in ", 1)[1].split(" s", 1)[0])


def run_script_seed(twin: str, url: str, data: BenchDatabase, count: int, batch_size: int) -> ScriptSeed:
    """`python main.py --count N --seed-mode pipelined` (or the async twin), as a user runs it."""
    process = _spawn(
        twin, url, data, "--count", str(count), "--seed-mode", "pipelined", "--batch-size", str(batch_size)
    )
    assert process.stderr is not None
    assert process.stdin is not None
    seeded = ""
    for line in process.stderr:
        if line.startswith(("Seeded", "Seeding failed", "Seeding stopped", "Cannot use", "Configuration error")):
            seeded = line
            break
    process.stdin.write("q\n")
    process.stdin.flush()
    peak = _reap(process)
    if not seeded.startswith("Seeded"):
        raise RuntimeError(f"{twin} seed did not finish: {seeded.strip() or 'no report'}")
    if "already cached" in seeded:
        raise RuntimeError(f"{twin} seed left keys as they were, so it timed less work: {seeded.strip()}")
    return ScriptSeed(_seconds_in(seeded), peak)


def measure_scale(clients: RedisClients, plan: Plan, measurements: Measurements, data: BenchDatabase) -> None:
    """A big seed through each real script against the ceiling (redis-cli --pipe), and peak memory at N/10 and N."""
    client = clients.sync_client()
    url = clients.settings.redis_url
    with tempfile.TemporaryDirectory(prefix="benchmark-pipe-") as directory:
        commands = Path(directory) / "seed.resp"
        write_seed_commands(commands, data.sync(), plan.big, plan.seed_batch_size, SCRIPT_POLICY)  # not timed
        for _ in range(plan.scale_rounds):
            for twin in ("sync", "async"):
                cleanup(client)
                seed = run_script_seed(twin, url, data, plan.big, plan.seed_batch_size)
                measurements.scale.setdefault(f"{twin}-seconds", []).append(seed.seconds)
                measurements.scale.setdefault(f"{twin}-peak-mb", []).append(seed.peak_rss_mb)
            cleanup(client)
            ceiling = redis_cli_pipe(url, commands, plan.big)
            if ceiling is not None:
                measurements.scale.setdefault("pipe-seconds", []).append(ceiling)
    for twin in ("sync", "async"):
        cleanup(client)
        small = run_script_seed(twin, url, data, plan.big // 10, plan.seed_batch_size)
        measurements.scale.setdefault(f"{twin}-peak-mb-tenth", []).append(small.peak_rss_mb)
    cleanup(client)


def measure_hits_during_seed(
    clients: RedisClients, plan: Plan, measurements: Measurements, data: BenchDatabase
) -> None:
    """Hits typed at the prompt (paced like a person) while the script seeds `big` records behind it."""
    client = clients.sync_client()
    for twin, mode in (("sync", "threaded"), ("async", "pipelined")):
        cleanup(client)
        client.set(POLICY.key(HIT_ID), encode_record(user_record(HIT_ID)), ex=POLICY.ttl_seconds)
        process = _spawn(
            twin,
            clients.settings.redis_url,
            data,
            "--count",
            str(plan.big),
            "--seed-mode",
            mode,
            "--json",
            stdout=subprocess.PIPE,
        )
        assert process.stdin is not None
        assert process.stdout is not None
        assert process.stderr is not None
        started, finished = threading.Event(), threading.Event()
        threading.Thread(target=_watch_seed, args=(process.stderr, started, finished), daemon=True).start()
        started.wait(timeout=30)
        latencies: list[float] = []
        while not finished.is_set() and process.poll() is None:
            sent = time.perf_counter()
            process.stdin.write(f"{HIT_ID}\n")
            process.stdin.flush()
            answer = json.loads(process.stdout.readline())
            latencies.append(time.perf_counter() - sent)
            if answer.get("source") != "cache":
                raise RuntimeError(f"expected a hit while seeding, got {answer}")
            time.sleep(plan.hit_pace_seconds)  # the pace of a person typing, part of the workload
        process.stdin.write("q\n")
        process.stdin.flush()
        _reap(process)
        measurements.hits_during_seed[twin] = latencies
    cleanup(client)


def _watch_seed(stderr: io.TextIOBase, started: threading.Event, finished: threading.Event) -> None:
    for line in stderr:
        if "in the background" in line:
            started.set()
        if line.startswith(("Seeded", "Seeding stopped", "Seeding failed")):
            finished.set()
    started.set()
    finished.set()


def measure_startup(clients: RedisClients, plan: Plan, measurements: Measurements, data: BenchDatabase) -> None:
    """From starting the script to its first answer (a hit), with --seed-mode none."""
    client = clients.sync_client()
    client.set(POLICY.key(HIT_ID), encode_record(user_record(HIT_ID)), ex=POLICY.ttl_seconds)
    for _ in range(plan.startup_rounds):
        for twin in ("sync", "async"):
            started = time.perf_counter()
            process = _spawn(twin, clients.settings.redis_url, data, "--seed-mode", "none", stdout=subprocess.PIPE)
            assert process.stdin is not None
            assert process.stdout is not None
            process.stdin.write(f"{HIT_ID}\n")
            process.stdin.flush()
            first_answer = process.stdout.readline()
            measurements.startup.setdefault(twin, []).append(time.perf_counter() - started)
            process.stdin.write("q\n")
            process.stdin.flush()
            _reap(process)
            if not first_answer.startswith("Found in cache"):
                raise RuntimeError(f"unexpected first answer: {first_answer!r}")
    cleanup(client)


def measure_topologies(clients: RedisClients, plan: Plan, measurements: Measurements, data: BenchDatabase) -> None:
    """Pipelined seeding on the single server against a private 3-master Redis Cluster, both twins;
    and the round trips of one miss and one hit on each, counted by a proxy in front of the servers."""
    with contextlib.ExitStack() as stack:
        try:
            cluster_url: str | None = stack.enter_context(private_cluster())
        except (FileNotFoundError, RuntimeError, subprocess.SubprocessError):
            cluster_url = None  # no redis-server or redis-cli to build a cluster with: the rows say n/a
        for twin in ("sync", "async"):
            counted = count_round_trips(
                clients.settings.redis_url, data.url, twin=twin, cluster_url=cluster_url, user_id=HIT_ID
            )
            measurements.round_trips.update({f"{name}-{twin}": count for name, count in counted.items()})
        if cluster_url is None:
            return
        cluster = get_redis(Settings(redis_url=cluster_url, redis_configured=True, redis_cluster=True))
        stack.callback(cluster.close)
        for _ in range(min(plan.rounds, 3)):
            for topology, target in (("single", clients), ("cluster", cluster)):
                for twin in ("sync", "async"):
                    cleanup(target.sync_client())
                    seconds = seed_once(target, data, f"pipelined-{twin}", plan.cluster_records, plan.seed_batch_size)
                    measurements.topologies.setdefault(f"{topology}-{twin}", []).append(seconds)
        cleanup(clients.sync_client())


# --- concurrency: ours and the peers, through one runner ---


@dataclass(frozen=True)
class AsyncCache:
    """A contender built in the running event loop: one lookup, the key a user's value lives under, and aclose."""

    lookup: Callable[[int], Awaitable[Answer]]
    key: Callable[[int], str]
    aclose: Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class SyncCache:
    """A blocking contender: one lookup (called from many threads), the key of a user's value, and close."""

    lookup: Callable[[int], Answer]
    key: Callable[[int], str]
    close: Callable[[], object]


@dataclass(frozen=True)
class Contender:
    """Ours or a peer library, as its builder sets it up on the run's Redis and a database it loads from."""

    name: str  # "ours-async", "cashews", ...: the figures' key
    library: str  # "ours", or the peer's distribution name
    build_async: Callable[[RedisClients, AsyncDatabase], Awaitable[AsyncCache]] | None = None
    build_sync: Callable[[RedisClients, Database], SyncCache] | None = None
    hit_only: bool = False  # measured for a hit's cost only
    loggers: tuple[str, ...] = ()  # where the library logs the failures it answers past


async def _ours_async(clients: RedisClients, database: AsyncDatabase) -> AsyncCache:
    cache = AsyncCacheAside(clients.async_client(), database, POLICY)

    async def lookup(user_id: int) -> Answer:
        result = await cache.lookup(user_id)
        return Answer(result.value, result.degraded)

    return AsyncCache(lookup, POLICY.key, cache.aclose)


def _ours_sync(clients: RedisClients, database: Database) -> SyncCache:
    cache = CacheAside(clients.sync_client(), database, POLICY)

    def lookup(user_id: int) -> Answer:
        result = cache.lookup(user_id)
        return Answer(result.value, result.degraded)

    return SyncCache(lookup, POLICY.key, cache.close)


OURS = (
    Contender("ours-async", "ours", build_async=_ours_async),
    Contender("ours-sync", "ours", build_sync=_ours_sync),
)


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
    import benchmarks.peers as peers  # the peer libraries are imported only here, and only if installed

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


TRAFFIC_ZIPF = 1.1
TRAFFIC_CONCURRENCY = 50
TRAFFIC_LATENCY_SECONDS = 0.02


def measure_traffic(clients: RedisClients, plan: Plan, measurements: Measurements, data: BenchDatabase) -> None:
    """The prompt's `load` command, from an empty cache: threads in the sync twin, tasks in the async one.

    Zipf-popular ids among the first `traffic_population` users, TRAFFIC_CONCURRENCY at once,
    a database of TRAFFIC_LATENCY_SECONDS: the hit ratio rises second by second as the cache fills.
    """
    load = LoadPlan(plan.traffic_lookups, TRAFFIC_ZIPF, TRAFFIC_CONCURRENCY, MAX_LOAD_SECONDS)
    population = min(plan.traffic_population, data.users)
    client = clients.sync_client()
    cleanup(client)
    report = run_load(CacheAside(client, data.sync(TRAFFIC_LATENCY_SECONDS), POLICY), LoadRun(load, population))
    _keep_traffic(measurements, "sync", report)
    cleanup(client)

    async def in_the_loop() -> float:
        async with data.open_async(TRAFFIC_LATENCY_SECONDS) as database:
            cache = AsyncCacheAside(clients.async_client(), database, POLICY)
            _keep_traffic(measurements, "async", await arun_load(cache, LoadRun(load, population)))
        return 0.0

    run_async(clients, in_the_loop)
    cleanup(client)


def _keep_traffic(measurements: Measurements, twin: str, report: LoadReport) -> None:
    if report.errors:
        raise RuntimeError(f"the {twin} traffic run failed {report.errors} lookups: {report.first_error!r}")
    # a second in which no lookup ended has no ratio: NaN, which the chart leaves as a gap
    measurements.traffic[twin] = [math.nan if ratio is None else ratio for ratio in report.hit_ratio_by_second]
    measurements.traffic_summary[twin] = {
        "lookups": report.lookups,
        "population": report.population,
        "zipf": report.plan.zipf,
        "concurrency": report.plan.concurrency,
        "db_latency_seconds": TRAFFIC_LATENCY_SECONDS,
        "seconds": report.elapsed_seconds,
        "hit_ratio": report.hit_ratio,
        "database_reads": report.database_reads,
        "saved": report.saved,
        "shared": report.shared,
        "degraded": report.degraded,
        "hit_latency_ms": report.hit_latency_ms,
        "miss_latency_ms": report.miss_latency_ms,
    }


Step = Callable[[RedisClients, Plan, Measurements, BenchDatabase], None]


def measure_everything(url: str, plan: Plan, progress: Callable[[str], object]) -> Measurements:
    """Every measurement of one run, against the Redis at `url` and a SQLite file the run fills first."""
    vocabulary()  # a one-off 0.2 s that no figure should include, as in the demo itself
    clients = get_redis(Settings(redis_url=url, redis_configured=True))
    measurements = Measurements()
    steps: list[tuple[str, Step]] = [
        ("initial setup", measure_setup),
        ("hit latency", measure_hits),
        ("a cache hit against a database read (SQLite, PostgreSQL)", measure_reads),
        ("misses", measure_misses),
        ("scale and memory", measure_scale),
        ("hits during a background seed", measure_hits_during_seed),
        ("start-up", measure_startup),
        ("Redis Cluster seeding, and round trips", measure_topologies),
        ("concurrency: ours and the peers (stampede, mixed load, hit)", measure_concurrency),
        ("the traffic simulator (the prompt's load command)", measure_traffic),
    ]
    try:
        progress(f"creating {plan.users:,} users in a SQLite file...")
        with bench_database(plan.users, measurements) as data:
            for name, step in steps:
                progress(f"measuring {name}...")
                step(clients, plan, measurements, data)
    finally:
        clients.close()
    return measurements
