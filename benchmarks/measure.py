"""Benchmark I/O: every measurement, through the demo's own code and its real scripts.

In-process measurements (seeding 1000 records, hit and miss latency) call the same
shells the twins use; measurements of a whole program (a million-record seed, peak
memory, a hit typed while a background seed runs, start-up) run `main.py` and
`main_async.py` as a user does, over pipes. Repeated measurements are interleaved
round by round so machine noise hits every contender alike; `summary.py` takes medians.
All keys live under the `bench:` prefix and are removed (SCAN + UNLINK) between runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from benchmarks.environment import private_cluster
from config.redis import RedisClients, SyncClient, get_redis
from config.settings import Settings
from simulator.core import CachePolicy, SeedProgress
from simulator.records import encode_record, user_record, vocabulary
from simulator.simulate_cache_db_flow import (
    AsyncCacheAside,
    AsyncSeeder,
    AsyncSimulatedDatabase,
    BackgroundSeed,
    CacheAside,
    Seeder,
    SimulatedDatabase,
)

PREFIX = "bench:"
POLICY = CachePolicy(key_prefix=PREFIX, ttl_seconds=3600)
PROJECT_ROOT = Path(__file__).resolve().parent.parent
HIT_ID = 42
SETUP_MODES = ("sequential", "threaded", "pipelined-sync", "pipelined-async")


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
            big=50_000,
            scale_rounds=1,
            startup_rounds=2,
            cluster_records=10_000,
            quick=True,
        )


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


def measure_setup(clients: RedisClients, plan: Plan, measurements: Measurements) -> None:
    """Each seeding mode, interleaved round by round, and the redis-benchmark ceiling."""
    client = clients.sync_client()
    value = encode_record(user_record(plan.records // 2 or 1))
    measurements.record_bytes = len(value)
    for _ in range(plan.rounds):
        for mode in SETUP_MODES:
            cleanup(client)
            measurements.setup.setdefault(mode, []).append(seed_once(clients, mode, plan.records, plan.seed_batch_size))
        cleanup(client)
        ceiling = ceiling_seconds(clients.settings.redis_url, plan.records, len(value))
        if ceiling is not None:
            measurements.setup.setdefault("redis-benchmark", []).append(ceiling)
    cleanup(client)


def seed_once(clients: RedisClients, mode: str, count: int, batch_size: int) -> float:
    """One seed of `count` records in `mode`, timed by the seeder itself (as the demo prints it)."""
    seeder = Seeder(clients.sync_client(), SimulatedDatabase(0), POLICY, batch_size)
    if mode == "sequential":
        return seeder.seed_sequential(SeedProgress(mode, count, time.perf_counter())).seconds
    if mode == "pipelined-sync":
        return seeder.seed_pipelined(SeedProgress(mode, count, time.perf_counter())).seconds
    if mode == "threaded":
        progress = SeedProgress(mode, count, time.perf_counter())
        return BackgroundSeed(seeder.seed_pipelined, progress, lambda report, error: None).start().wait().seconds

    async def seed_async() -> float:
        async_seeder = AsyncSeeder(clients.async_bulk_client(), AsyncSimulatedDatabase(0), POLICY, batch_size)
        return (await async_seeder.seed_pipelined(SeedProgress(mode, count, time.perf_counter()))).seconds

    return run_async(clients, seed_async)


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


def measure_hits(clients: RedisClients, plan: Plan, measurements: Measurements) -> None:
    """A hit through the lookup next to a raw GET of the same key on the same client, alternating."""
    client = clients.sync_client()
    key = POLICY.key(HIT_ID)
    client.set(key, encode_record(user_record(HIT_ID)), ex=POLICY.ttl_seconds)
    cache = CacheAside(client, SimulatedDatabase(0), POLICY)
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
            async_cache = AsyncCacheAside(async_client, AsyncSimulatedDatabase(0), POLICY)
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


def measure_misses(clients: RedisClients, plan: Plan, measurements: Measurements) -> None:
    """N misses one after another (sync) against N at once (async); then 1000 concurrent lookups."""
    client = clients.sync_client()
    for round_number in range(min(plan.rounds, 3)):
        ids = range(500_000 + round_number * plan.misses, 500_000 + (round_number + 1) * plan.misses)
        cleanup(client)
        cache = CacheAside(client, SimulatedDatabase(plan.miss_latency), POLICY)
        started = time.perf_counter()
        for user_id in ids:
            cache.lookup(user_id)
        measurements.misses.setdefault("sync-sequential", []).append(time.perf_counter() - started)
        cleanup(client)

        async def concurrent_misses(ids: range = ids) -> float:
            async_cache = AsyncCacheAside(clients.async_client(), AsyncSimulatedDatabase(plan.miss_latency), POLICY)
            started = time.perf_counter()
            await asyncio.gather(*(async_cache.lookup(user_id) for user_id in ids))
            return time.perf_counter() - started

        measurements.misses.setdefault("async-concurrent", []).append(run_async(clients, concurrent_misses))
    cleanup(client)

    async def at_the_demos_latency(latency: float = Settings().db_latency_seconds) -> float:
        async_cache = AsyncCacheAside(clients.async_client(), AsyncSimulatedDatabase(latency), POLICY)
        started = time.perf_counter()
        await asyncio.gather(*(async_cache.lookup(user_id) for user_id in range(600_000, 600_000 + plan.misses)))
        return time.perf_counter() - started

    measurements.misses["async-concurrent-default-latency"] = [run_async(clients, at_the_demos_latency)]
    cleanup(client)
    Seeder(client, SimulatedDatabase(0), POLICY).seed_pipelined(SeedProgress("p", plan.concurrent_lookups // 2, 0))

    async def flood() -> float:
        async_cache = AsyncCacheAside(clients.async_client(), AsyncSimulatedDatabase(plan.miss_latency), POLICY)
        started = time.perf_counter()
        outcomes = await asyncio.gather(
            *(async_cache.lookup(user_id) for user_id in range(1, plan.concurrent_lookups + 1)), return_exceptions=True
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


def _spawn(twin: str, url: str, *arguments: str, stdout: int = subprocess.DEVNULL) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, _script(twin), "--key-prefix", PREFIX, "--db-latency", "0", *arguments],
        stdin=subprocess.PIPE,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
        cwd=PROJECT_ROOT,
        env={**os.environ, "REDIS_URL": url},  # the environment, not argv: `ps` shows argv to everyone
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


def run_script_seed(twin: str, url: str, count: int, batch_size: int) -> ScriptSeed:
    """`python main.py --count N --seed-mode pipelined` (or the async twin), as a user runs it."""
    process = _spawn(twin, url, "--count", str(count), "--seed-mode", "pipelined", "--batch-size", str(batch_size))
    assert process.stderr is not None
    assert process.stdin is not None
    seeded = ""
    for line in process.stderr:
        if line.startswith(("Seeded", "Seeding failed", "Cannot use", "Configuration error")):
            seeded = line
            break
    process.stdin.write("q\n")
    process.stdin.flush()
    peak = _reap(process)
    if not seeded.startswith("Seeded"):
        raise RuntimeError(f"{twin} seed did not finish: {seeded.strip() or 'no report'}")
    return ScriptSeed(_seconds_in(seeded), peak)


def measure_scale(clients: RedisClients, plan: Plan, measurements: Measurements) -> None:
    """A big seed through each real script against the ceiling, and peak memory at N/10 and N."""
    client = clients.sync_client()
    for _ in range(plan.scale_rounds):
        for twin in ("sync", "async"):
            cleanup(client)
            seed = run_script_seed(twin, clients.settings.redis_url, plan.big, plan.seed_batch_size)
            measurements.scale.setdefault(f"{twin}-seconds", []).append(seed.seconds)
            measurements.scale.setdefault(f"{twin}-peak-mb", []).append(seed.peak_rss_mb)
        cleanup(client)
        ceiling = ceiling_seconds(clients.settings.redis_url, plan.big, measurements.record_bytes or 150)
        if ceiling is not None:
            measurements.scale.setdefault("ceiling-seconds", []).append(ceiling)
    for twin in ("sync", "async"):
        cleanup(client)
        small = run_script_seed(twin, clients.settings.redis_url, plan.big // 10, plan.seed_batch_size)
        measurements.scale.setdefault(f"{twin}-peak-mb-tenth", []).append(small.peak_rss_mb)
    cleanup(client)


def measure_hits_during_seed(clients: RedisClients, plan: Plan, measurements: Measurements) -> None:
    """Hits typed at the prompt (paced like a person) while the script seeds `big` records behind it."""
    client = clients.sync_client()
    for twin, mode in (("sync", "threaded"), ("async", "pipelined")):
        cleanup(client)
        client.set(POLICY.key(HIT_ID), encode_record(user_record(HIT_ID)), ex=POLICY.ttl_seconds)
        process = _spawn(
            twin,
            clients.settings.redis_url,
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


def measure_startup(clients: RedisClients, plan: Plan, measurements: Measurements) -> None:
    """From starting the script to its first answer (a hit), with --seed-mode none."""
    client = clients.sync_client()
    client.set(POLICY.key(HIT_ID), encode_record(user_record(HIT_ID)), ex=POLICY.ttl_seconds)
    for _ in range(plan.startup_rounds):
        for twin in ("sync", "async"):
            started = time.perf_counter()
            process = _spawn(twin, clients.settings.redis_url, "--seed-mode", "none", stdout=subprocess.PIPE)
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


def measure_topologies(clients: RedisClients, plan: Plan, measurements: Measurements) -> None:
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
                    seconds = seed_once(target, f"pipelined-{twin}", plan.cluster_records, plan.seed_batch_size)
                    measurements.topologies.setdefault(f"{topology}-{twin}", []).append(seconds)
        cleanup(clients.sync_client())


def measure_everything(url: str, plan: Plan, progress: Callable[[str], object]) -> Measurements:
    """Every measurement of one run, against the Redis at `url`."""
    vocabulary()  # a one-off 0.2 s that no figure should include, as in the demo itself
    clients = get_redis(Settings(redis_url=url, redis_configured=True))
    measurements = Measurements()
    steps = [
        ("initial setup", measure_setup),
        ("hit latency", measure_hits),
        ("misses", measure_misses),
        ("scale and memory", measure_scale),
        ("hits during a background seed", measure_hits_during_seed),
        ("start-up", measure_startup),
        ("Redis Cluster seeding", measure_topologies),
    ]
    try:
        for name, step in steps:
            progress(f"measuring {name}...")
            step(clients, plan, measurements)
    finally:
        clients.close()
    return measurements
