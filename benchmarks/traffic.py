"""Benchmark I/O: the traffic simulator (the prompt's `load`) in each twin, from an empty cache.

Zipf-popular ids, TRAFFIC_CONCURRENCY lookups at once, a database of TRAFFIC_LATENCY_SECONDS,
through `simulator.load`'s `run_load` (threads) and `arun_load` (tasks): the hit ratio of
each second and the run's summary are kept. A lookup that failed fails the benchmark: it
never reports figures of a run that did not work.
"""

from __future__ import annotations

import math

from benchmarks.harness import BenchDatabase, cleanup, run_async
from benchmarks.measurements import Measurements
from benchmarks.plan import POLICY, Plan
from config.redis import RedisClients
from simulator._async.load import run_load as arun_load
from simulator._sync.load import run_load
from simulator.load import MAX_LOAD_SECONDS, LoadPlan, LoadReport, LoadRun
from simulator.simulate_cache_db_flow import AsyncCacheAside, CacheAside

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
