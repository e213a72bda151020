"""Benchmark I/O: what a hit and a miss cost, in-process, through the shells the twins use.

A hit through the lookup alternates sample by sample with a raw GET of the same key, on the
demo's client and on a default redis-py client of the same twin (`measure_hits`), with
`redis-benchmark`'s GET beside them when it is installed; N misses run one after another in
the sync twin against N at once in the async one (`measure_misses`). Samples are kept raw:
it never takes a median or a percentile (`figures.py` does).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import shutil
import subprocess
import time
from urllib.parse import unquote, urlsplit

import redis
import redis.asyncio

from benchmarks.harness import BenchDatabase, cleanup, run_async
from benchmarks.measurements import Measurements
from benchmarks.plan import HIT_ID, POLICY, WARM_UP_SAMPLES, Plan
from config.redis import RedisClients
from config.settings import Settings
from simulator.records import encode_record, user_record
from simulator.simulate_cache_db_flow import AsyncCacheAside, CacheAside


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
