"""Benchmark I/O: every measurement, through the demo's own code and its real scripts.

The source of truth is a real database: a SQLite file in a temp dir that the run fills
itself, once, with as many users as it needs (a million for the full run), before any
seed is timed. In-process measurements (seeding 1000 records, hit and miss latency, a
hit against a database read) call the same shells the twins use; measurements of a
whole program (a million-record seed, peak memory, a hit typed while a background seed
runs, start-up) run `main.py` and `main_async.py` on that file as a user does, over
pipes. A private PostgreSQL server (when its binaries are installed) gives the second
database read to compare a hit with. Repeated measurements are interleaved round by
round so machine noise hits every contender alike; `summary.py` takes medians. All keys
live under the `bench:` prefix and are removed (SCAN + UNLINK) between runs: seeding
leaves a key that already holds a value as it is, so every seed starts from none.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from benchmarks.environment import private_cluster
from benchmarks.local_postgres import postgres_binaries, start_postgres
from config.database import AsyncSqliteConnector, DatabaseError, SqliteConnector, aopen_connector, open_connector
from config.redis import RedisClients, SyncClient, get_redis
from config.settings import Settings
from simulator.core import CachePolicy, SeedProgress
from simulator.database import AsyncDatabase, Database
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
PROJECT_ROOT = Path(__file__).resolve().parent.parent
HIT_ID = 42
SETUP_MODES = ("sequential", "threaded", "pipelined-sync", "pipelined-async")
DB_TIMEOUT_SECONDS = 5.0
DATABASES = ("sqlite", "postgresql")
NO_POSTGRES = "no PostgreSQL server binaries"
WARM_UP_SAMPLES = 20


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
            quick=True,
        )

    @property
    def users(self) -> int:
        """Users the run's database holds: every id any measurement reads (misses use the upper half)."""
        return max(self.records, self.big, self.cluster_records, self.concurrent_lookups, 8 * self.misses, HIT_ID)

    @property
    def miss_ids_start(self) -> int:
        """The first id the miss rounds read: above every seeded id, below the last user."""
        return self.users // 2 + 1


@dataclass
class Measurements:
    """Raw measurements of one run, in seconds unless named otherwise."""

    setup: dict[str, list[float]] = field(default_factory=dict)
    hits: dict[str, list[float]] = field(default_factory=dict)
    redis_benchmark_get: dict[str, float] = field(default_factory=dict)
    misses: dict[str, list[float]] = field(default_factory=dict)
    lookup_errors: int = 0
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


def cleanup(client: SyncClient) -> None:
    """Remove every key of the benchmark's namespace, and only those."""
    batch: list[bytes] = []
    for key in client.scan_iter(match=f"{PREFIX}*", count=1000):
        batch.append(key)
        if len(batch) == 1000:
            client.unlink(*batch)
            batch.clear()
    if batch:
        client.unlink(*batch)


def run_async(clients: RedisClients, work: Callable[[], Awaitable[float]]) -> float:
    """Run one async measurement in a fresh event loop and close its clients after."""

    async def measured() -> float:
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


# --- seeding 1000 records, in-process ---


def measure_setup(clients: RedisClients, plan: Plan, measurements: Measurements, data: BenchDatabase) -> None:
    """Each seeding mode, interleaved round by round, and the redis-benchmark ceiling."""
    client = clients.sync_client()
    value = encode_record(user_record(plan.records // 2 or 1))
    measurements.record_bytes = len(value)
    for _ in range(plan.rounds):
        for mode in SETUP_MODES:
            cleanup(client)
            seconds = seed_once(clients, data, mode, plan.records, plan.seed_batch_size)
            measurements.setup.setdefault(mode, []).append(seconds)
        cleanup(client)
        ceiling = ceiling_seconds(clients.settings.redis_url, plan.records, len(value))
        if ceiling is not None:
            measurements.setup.setdefault("redis-benchmark", []).append(ceiling)
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


def ceiling_seconds(url: str, count: int, value_bytes: int) -> float | None:
    """How long redis-benchmark takes to SET `count` keys of the same size, EX ttl, -P 1000."""
    result = redis_benchmark(
        url,
        "-n",
        str(count),
        "-P",
        "1000",
        "-r",
        str(count),
        "SET",
        f"{PREFIX}user-__rand_int__",
        "x" * value_bytes,
        "EX",
        str(POLICY.ttl_seconds),
    )
    return None if result is None else count / result["rps"]


# --- hit and miss latency, in-process ---


def measure_hits(clients: RedisClients, plan: Plan, measurements: Measurements, data: BenchDatabase) -> None:
    """A hit through the lookup next to a raw GET of the same key on the same client, alternating."""
    client = clients.sync_client()
    key = POLICY.key(HIT_ID)
    client.set(key, encode_record(user_record(HIT_ID)), ex=POLICY.ttl_seconds)
    cache = CacheAside(client, data.sync(), POLICY)
    for _ in range(plan.rounds):
        lookup, raw = [], []
        for _ in range(plan.hit_samples):
            started = time.perf_counter()
            cache.lookup(HIT_ID)
            lookup.append(time.perf_counter() - started)
            started = time.perf_counter()
            client.get(key)
            raw.append(time.perf_counter() - started)
        measurements.hits.setdefault("lookup-sync", []).extend(lookup)
        measurements.hits.setdefault("raw-get-sync", []).extend(raw)

        async def async_round() -> float:
            async_client = clients.async_client()
            async with data.open_async() as database:
                async_cache = AsyncCacheAside(async_client, database, POLICY)
                for _ in range(plan.hit_samples):
                    started = time.perf_counter()
                    await async_cache.lookup(HIT_ID)
                    measurements.hits.setdefault("lookup-async", []).append(time.perf_counter() - started)
                    started = time.perf_counter()
                    await async_client.get(key)
                    measurements.hits.setdefault("raw-get-async", []).append(time.perf_counter() - started)
            return 0.0

        run_async(clients, async_round)
    result = redis_benchmark(clients.settings.redis_url, "-c", "1", "-P", "1", "-n", "20000", "GET", key)
    if result is not None:
        measurements.redis_benchmark_get = {
            "p50": result["p50_latency_ms"] / 1000,
            "p99": result["p99_latency_ms"] / 1000,
        }


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
    """N misses one after another (sync) against N at once (async); then 1000 concurrent lookups."""
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
    Seeder(client, data.sync(), POLICY).seed_pipelined(SeedProgress("p", plan.concurrent_lookups // 2, 0))

    async def flood() -> float:
        async with data.open_async(plan.miss_latency) as database:
            async_cache = AsyncCacheAside(clients.async_client(), database, POLICY)
            started = time.perf_counter()
            outcomes = await asyncio.gather(
                *(async_cache.lookup(user_id) for user_id in range(1, plan.concurrent_lookups + 1)),
                return_exceptions=True,
            )
            measurements.lookup_errors = sum(isinstance(outcome, BaseException) for outcome in outcomes)
            return time.perf_counter() - started

    measurements.misses["async-1000-lookups"] = [run_async(clients, flood)]
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
    """The script on the run's Redis and its filled SQLite file (so it creates no users of its own)."""
    environment = {name: value for name, value in os.environ.items() if name != "DB_RESET"}
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
    """A big seed through each real script against the ceiling, and peak memory at N/10 and N."""
    client = clients.sync_client()
    url = clients.settings.redis_url
    for _ in range(plan.scale_rounds):
        for twin in ("sync", "async"):
            cleanup(client)
            seed = run_script_seed(twin, url, data, plan.big, plan.seed_batch_size)
            measurements.scale.setdefault(f"{twin}-seconds", []).append(seed.seconds)
            measurements.scale.setdefault(f"{twin}-peak-mb", []).append(seed.peak_rss_mb)
        cleanup(client)
        ceiling = ceiling_seconds(url, plan.big, measurements.record_bytes or 150)
        if ceiling is not None:
            measurements.scale.setdefault("ceiling-seconds", []).append(ceiling)
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
    """Pipelined seeding on the single server against a private 3-master Redis Cluster, both twins."""
    with contextlib.ExitStack() as stack:
        try:
            cluster_url = stack.enter_context(private_cluster())
        except (FileNotFoundError, RuntimeError, subprocess.SubprocessError):
            return  # no redis-server or redis-cli to build a cluster with: the rows say n/a
        cluster = get_redis(Settings(redis_url=cluster_url, redis_configured=True, redis_cluster=True))
        stack.callback(cluster.close)
        for _ in range(min(plan.rounds, 3)):
            for topology, target in (("single", clients), ("cluster", cluster)):
                for twin in ("sync", "async"):
                    cleanup(target.sync_client())
                    seconds = seed_once(target, data, f"pipelined-{twin}", plan.cluster_records, plan.seed_batch_size)
                    measurements.topologies.setdefault(f"{topology}-{twin}", []).append(seconds)
        cleanup(clients.sync_client())


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
        ("Redis Cluster seeding", measure_topologies),
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
