"""Labs, I/O shell: `lab memory`, the hit ratio Redis's eviction policies reach in each memory size.

It starts a redis-server of its own (labs/private_redis.py) on a free loopback port, never
touching the server the demo uses, and a database of its own with no simulated delay. It caches
every record once to measure the working set, then replays the plan's trace through the demo's
own AsyncCacheAside once per policy and size, with `maxmemory` set to the server's memory with
no record plus that size, and counts the hits after the warm-up. The server is stopped on
every way out. scripts/unasync.py writes the blocking twin, labs/_sync/memory.py.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import redis

from config.database import AsyncSqliteConnector
from config.redis import AsyncClient, RedisClients
from config.settings import Settings
from labs._async.runner import LabUnavailable, remove_keys
from labs.bench import lab_prefix
from labs.memory import MemoryReport, SizeRow
from labs.private_redis import LocalRedis
from simulator._async import backend
from simulator._async.cache_aside import AsyncCacheAside
from simulator._async.database import AsyncDatabase
from simulator.policy import CachePolicy

SETTLE_SECONDS, SETTLE_POLL_SECONDS = 2.0, 0.02
WARM_LOOKUPS = 5_000  # lookups (misses, each running the lease scripts) before the working set is measured
NO_REDIS_SERVER = (
    "lab memory starts a redis-server of its own, and none is installed "
    "(apt-get install -y redis-server; macOS: brew install redis)"
)


async def run_memory_lab(
    report: MemoryReport, directory: str, key_prefix: str, on_progress: Callable[[str], object] = print
) -> MemoryReport:
    """Measure every policy at every size into `report` (so Ctrl-C leaves what was measured)."""
    started = time.perf_counter()
    server = private_server(Path(directory))
    try:
        clients = RedisClients(Settings(redis_url=server.url))
        database = AsyncDatabase(AsyncSqliteConnector(os.path.join(directory, "memory-lab.db"), 5.0), 0.0)
        try:
            await database.fill(await database.filled_to(), report.plan.users)
            # No breaker: a lookup that finds Redis unavailable is counted as such, never skipped for a cool-down.
            policy = CachePolicy(key_prefix=lab_prefix(key_prefix, "memory", 0), breaker=False)
            cache = AsyncCacheAside(clients.async_client(), database, policy)
            try:
                await measure(cache, report, on_progress)
            finally:
                await cache.aclose()
        finally:
            await database.aclose()
            await clients.aclose()
    except BaseException:
        report.interrupted = True
        raise
    finally:
        server.stop()  # blocking, and only a moment: the lab's own server, nothing of the user's
        report.seconds = time.perf_counter() - started
    return report


def private_server(directory: Path) -> LocalRedis:
    """A started redis-server of the lab's own (blocking for the moment it takes: never left running if cut short).

    hz 100: it shrinks the tables of deleted keys within milliseconds (see settled_used_memory);
    DEBUG from loopback only, to keep its clients' reply buffers one size (see measure). A server
    older than 7.0 knows neither setting and is started without them.
    """
    for arguments in (("--hz", "100", "--enable-debug-command", "local"), ("--hz", "100")):
        try:
            server = LocalRedis(directory, *arguments)
        except FileNotFoundError:
            raise LabUnavailable(NO_REDIS_SERVER) from None
        try:
            return server.start()
        except RuntimeError as error:
            server.stop()
            failure = error
        except BaseException:
            server.stop()
            raise
    raise LabUnavailable(f"lab memory could not start its redis-server: {failure}")


async def measure(cache: AsyncCacheAside, report: MemoryReport, on_progress: Callable[[str], object]) -> None:
    """The working set, the exact curves on the trace, then each policy's hit ratio at each size."""
    client, plan, prefix = cache.client, report.plan, cache.policy.key_prefix
    report.server = str((await client.info("server"))["redis_version"])
    # Redis counts its clients' buffers against maxmemory, and resizes their reply buffers as traffic
    # changes: 16 KB gained or lost between two runs would be room for 50 records more or fewer.
    execute: Callable[..., Awaitable[object]] = client.execute_command  # redis-py leaves it unannotated
    with contextlib.suppress(redis.ResponseError):
        await execute("DEBUG", "REPLYBUFFER", "RESIZING", "0")
    fills = max(2, math.ceil(WARM_LOOKUPS / plan.users))
    on_progress(
        f"  its redis-server {report.server} is up; caching the {plan.users:,} records {fills} times over "
        "to measure the working set"
    )
    # Every record cached by the lookup itself, more than once: the server's scripting heap and its clients'
    # buffers grow with the first few thousand lookups, and must have grown before the memory is measured.
    for fill in range(fills):
        if fill:
            await remove_keys(client, prefix)
        for user_id in range(1, plan.users + 1):
            await cache.lookup(user_id)
            backend.stop_if_cancelled()  # Ctrl-C stops the lab at the next lookup, even one redis.asyncio swallowed
    full = await used_memory(client)
    await remove_keys(client, prefix)
    report.working_set_bytes = full - await settled_used_memory(client)
    on_progress(
        f"  working set {report.working_set_bytes:,} bytes ({report.bytes_per_record:,.0f} a record); "
        f"{len(plan.policies)} policies x {len(plan.sizes)} sizes of {plan.lookups:,} lookups each"
    )
    trace = await backend.to_thread(plan.trace)  # a long trace takes seconds to draw and work out: off the loop
    report.rows = await backend.to_thread(report.size_rows, trace)
    for policy in plan.policies:
        began = time.perf_counter()
        for row in report.rows:
            await replay(cache, trace, policy, row, report)
        ratios = ", ".join(f"{row.hit_ratio[policy]:.1%}" for row in report.rows)
        on_progress(f"  {policy}: {ratios} ({time.perf_counter() - began:.1f} s)")


async def replay(cache: AsyncCacheAside, trace: list[int], policy: str, row: SizeRow, report: MemoryReport) -> None:
    """The trace through the lookup with Redis limited to `row.bytes` of records under `policy`; hits after warm-up."""
    client, plan = cache.client, report.plan
    await client.config_set("maxmemory", 0)
    await remove_keys(client, cache.policy.key_prefix)  # the lab's server: only its own keys are there
    empty = await settled_used_memory(client)  # the server and its clients, warm, with no record
    await client.config_set("maxmemory-policy", policy)
    await client.config_set("maxmemory-samples", plan.samples)
    await client.config_set("maxmemory", empty + row.bytes)
    hits = 0
    for position, user_id in enumerate(trace):
        result = await cache.lookup(user_id)
        hits += position >= plan.warmup and result.source.from_cache
        report.unavailable += result.degraded  # answered without Redis: a miss that memory did not cause
        backend.stop_if_cancelled()
    row.held[policy] = int(await client.dbsize())
    row.hit_ratio[policy] = hits / (len(trace) - plan.warmup)


async def used_memory(client: AsyncClient) -> int:
    """What Redis counts against maxmemory, as INFO reports it."""
    return int((await client.info("memory"))["used_memory"])


async def settled_used_memory(client: AsyncClient) -> int:
    """used_memory once the server has shrunk the hash tables of the keys just deleted.

    Redis shrinks them in its periodic task, not at the DEL: read at once, used_memory still
    counts about 25 bytes a deleted key, which the next run would get as room for records.
    Three equal readings in a row (or SETTLE_SECONDS) end the wait.
    """
    readings, deadline = [await used_memory(client)], time.perf_counter() + SETTLE_SECONDS
    while (len(readings) < 3 or len(set(readings[-3:])) > 1) and time.perf_counter() < deadline:
        await backend.sleep(SETTLE_POLL_SECONDS)
        readings.append(await used_memory(client))
    return readings[-1]
