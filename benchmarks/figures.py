"""Benchmark, pure: a run's raw measurements in, every figure of it out, as JSON-ready numbers.

Medians are taken over rounds; percentiles over all samples; each peer is set against ours
of the same kind (`against_ours`), and the targets are judged (`targets.py`). Nothing here
measures or prints, so the same figures go to Markdown (`table.py`), to JSON (--json) and to
the charts (`plot.py`).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from benchmarks.formats import counted, loader_calls, times
from benchmarks.measurements import LoadOutcome, Measurements
from benchmarks.plan import (
    DATABASES,
    LOAD_WORKERS,
    MIXED_REPEATS,
    SCENARIO_LATENCY_SECONDS,
    SETUP_MODES,
    STAMPEDE_ID,
    STAMPEDE_LOOKUPS,
    Plan,
)
from benchmarks.targets import targets
from config.settings import Settings
from simulator.stats import percentile as core_percentile


def percentile(samples: Sequence[float], fraction: float) -> float:
    """The `fraction` percentile (nearest rank) of samples that are never empty here."""
    value = core_percentile(samples, fraction)
    if value is None:
        raise ValueError("no samples")
    return value


def _median(samples: Sequence[float] | None) -> float | None:
    return statistics.median(samples) if samples else None


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    return numerator / denominator if numerator is not None and denominator else None


LEVEL_BAND = 0.05  # a peer within 5% of ours (time, a hit's cost) is level with it: closer than the noise

# name: (library, twin, how it is used); the names are contenders.OURS' and peers.LIBRARIES'
CONTENDERS: dict[str, tuple[str, str, str]] = {
    "ours-async": ("ours", "async", "ours, async: `AsyncCacheAside.lookup`"),
    "ours-sync": ("ours", "sync", "ours, sync: `CacheAside.lookup`, from threads"),
    "cashews": ("cashews", "async", "`@cache(ttl=...)`, its default"),
    "cashews-lock": ("cashews", "async", "`@cache(ttl=..., lock=True)`"),
    "cashews-get": ("cashews", "async", "`await cache.get(key)` (`cache.set` on a miss; a hit only)"),
    "aiocache": ("aiocache", "async", "`@cached(cache=Cache.REDIS)`"),
    "aiocache-stampede": ("aiocache", "async", "`@cached_stampede` (lease 2 s, its default)"),
    "dogpile": ("dogpile.cache", "sync", "`region.get_or_create` on `dogpile.cache.redis`, from threads"),
}


def figures(measurements: Measurements, plan: Plan, machine: dict[str, str]) -> dict[str, Any]:
    """Every figure of a run, as JSON-ready numbers (seconds unless the name says otherwise)."""
    ceiling = _median(measurements.setup.get("pipe"))
    setup = {}
    for mode in (*SETUP_MODES, "pipe", "pipe-startup"):
        seconds = _median(measurements.setup.get(mode))
        if seconds is not None:
            setup[mode] = {
                "seconds": seconds,
                "records_per_second": plan.records / seconds if mode != "pipe-startup" else None,
                "x_ceiling": _ratio(seconds, ceiling),
                "runs": measurements.setup[mode],
            }
    hits = {
        name: {"p50_us": percentile(samples, 0.5) * 1e6, "p99_us": percentile(samples, 0.99) * 1e6}
        for name, samples in measurements.hits.items()
    }
    for twin in ("sync", "async"):
        lookup = hits.get(f"lookup-{twin}")
        if lookup is None:
            continue
        for baseline, ratio in ((f"raw-get-{twin}", "x_raw_get_p50"), (f"raw-get-default-{twin}", "x_default_get_p50")):
            if baseline in hits:
                lookup[ratio] = lookup["p50_us"] / hits[baseline]["p50_us"]
    if measurements.redis_benchmark_get:
        hits["redis-benchmark-get"] = {
            name + "_us": value * 1e6 for name, value in measurements.redis_benchmark_get.items()
        }
    sync_misses = _median(measurements.misses.get("sync-sequential"))
    async_misses = _median(measurements.misses.get("async-concurrent"))
    misses = {
        "count": plan.misses,
        "db_latency_seconds": plan.miss_latency,
        "sync_sequential_seconds": sync_misses,
        "async_concurrent_seconds": async_misses,
        "async_x_db_latency": _ratio(async_misses, plan.miss_latency),
        "default_db_latency_seconds": Settings().db_latency_seconds,
        "async_concurrent_default_latency_seconds": _median(
            measurements.misses.get("async-concurrent-default-latency")
        ),
        "async_x_default_db_latency": _ratio(
            _median(measurements.misses.get("async-concurrent-default-latency")), Settings().db_latency_seconds
        ),
    }
    big_ceiling = _median(measurements.scale.get("pipe-seconds"))
    scale: dict[str, Any] = {"records": plan.big, "ceiling": "redis-cli --pipe", "ceiling_seconds": big_ceiling}
    for twin in ("sync", "async"):
        seconds = _median(measurements.scale.get(f"{twin}-seconds"))
        scale[twin] = {
            "seconds": seconds,
            "records_per_second": plan.big / seconds if seconds else None,
            "x_ceiling": _ratio(seconds, big_ceiling),
            "peak_rss_mb": max(measurements.scale.get(f"{twin}-peak-mb", [0.0])),
            "peak_rss_mb_at_tenth": max(measurements.scale.get(f"{twin}-peak-mb-tenth", [0.0])),
        }
    scale["async_x_sync"] = _ratio(scale["async"]["seconds"], scale["sync"]["seconds"])
    during_seed = {
        twin: {
            "samples": len(samples),
            "p50_ms": percentile(samples, 0.5) * 1000,
            "p99_ms": percentile(samples, 0.99) * 1000,
            "max_ms": max(samples) * 1000,
        }
        for twin, samples in measurements.hits_during_seed.items()
        if samples
    }
    startup = {twin: {"median_seconds": statistics.median(runs)} for twin, runs in measurements.startup.items()}
    topologies = {
        name: {"seconds": statistics.median(runs), "records_per_second": plan.cluster_records / statistics.median(runs)}
        for name, runs in measurements.topologies.items()
    }
    result: dict[str, Any] = {
        "machine": machine,
        "plan": {name: getattr(plan, name) for name in plan.__dataclass_fields__},
        "record_bytes": measurements.record_bytes,
        "database": database_figures(measurements),
        "reads": read_figures(measurements),
        "setup": setup,
        "hits": hits,
        "misses": misses,
        "scale": scale,
        "hits_during_seed": during_seed,
        "startup": startup,
        "topologies": {"records": plan.cluster_records, **topologies},
        "round_trips": dict(measurements.round_trips),
        "concurrency": concurrency_figures(measurements, plan, hits),
        "traffic": dict(measurements.traffic_summary),
        "labs": {name: report.as_dict() for name, report in measurements.labs.items()},
        "memory_lab": measurements.memory.as_dict() if measurements.memory is not None else None,
    }
    result["targets"] = targets(result)
    return result


def outcome_figures(runs: list[LoadOutcome]) -> dict[str, Any]:
    """One contender's rounds of a scenario: the median time; the worst round's failures and loader calls."""
    return {
        "rounds": len(runs),
        "seconds": statistics.median(run.seconds for run in runs),
        "errors": max(run.errors for run in runs),
        "loader_calls": max(run.loader_calls for run in runs),
        "loader_calls_min": min(run.loader_calls for run in runs),
        "degraded": max(run.degraded for run in runs),
        "wrong": max(run.wrong for run in runs),
        "logged": max(run.logged for run in runs),
    }


def concurrency_figures(measurements: Measurements, plan: Plan, hits: dict[str, Any]) -> dict[str, Any]:
    """Ours and the peers: a hit against a raw GET on a default client, the stampede, the mixed load."""
    contender_hits: dict[str, Any] = {}
    for twin in ("async", "sync"):  # ours: the lookup against a default client's GET, from the hit-latency rounds
        lookup = hits.get(f"lookup-{twin}")
        if lookup and "x_default_get_p50" in lookup:
            default = hits[f"raw-get-default-{twin}"]
            contender_hits[f"ours-{twin}"] = {
                "p50_us": lookup["p50_us"],
                "raw_p50_us": default["p50_us"],
                "x_raw_get_p50": lookup["x_default_get_p50"],
            }
    for name, samples in measurements.peer_hits.items():
        raw = measurements.peer_hits.get(f"{name}:raw")
        if name.endswith(":raw") or not samples or not raw:
            continue
        hit_p50, raw_p50 = percentile(samples, 0.5) * 1e6, percentile(raw, 0.5) * 1e6
        contender_hits[name] = {"p50_us": hit_p50, "raw_p50_us": raw_p50, "x_raw_get_p50": hit_p50 / raw_p50}
    lookups = plan.concurrent_lookups
    concurrency: dict[str, Any] = {
        "db_latency_seconds": SCENARIO_LATENCY_SECONDS,
        "libraries": dict(measurements.peers),
        "failed": dict(measurements.peer_failures),
        "hits": contender_hits,
        "stampede": {
            "lookups": STAMPEDE_LOOKUPS,
            "user_id": STAMPEDE_ID,
            "contenders": {name: outcome_figures(runs) for name, runs in measurements.stampede.items() if runs},
        },
        "load": {
            "lookups": lookups,
            "hits": lookups // 2,
            "missing_ids": lookups // (2 * MIXED_REPEATS),
            "repeats": MIXED_REPEATS,
            "workers": LOAD_WORKERS,
            "contenders": {name: outcome_figures(runs) for name, runs in measurements.load.items() if runs},
        },
    }
    concurrency["against_ours"] = {
        name: against_ours(concurrency, name)
        for name, (library, _, _) in CONTENDERS.items()
        if library != "ours" and measurements.peers.get(library) and name not in measurements.peer_failures
    }
    return concurrency


def database_figures(measurements: Measurements) -> dict[str, Any]:
    """The run's own databases: how many users, and how long filling them took (and their size)."""
    return {
        name: {"users": int(fill["users"]), "fill_seconds": fill["seconds"], "megabytes": fill["bytes"] / 1e6}
        for name, fill in measurements.fill.items()
    }


def read_figures(measurements: Measurements) -> dict[str, Any]:
    """A hit against a database read with no simulated delay: p50/p99 per twin, and read / hit at p50."""
    reads: dict[str, Any] = {}
    for source in ("hit", *DATABASES):
        if source in measurements.not_measured:
            reads[source] = {"not_measured": measurements.not_measured[source]}
            continue
        twins: dict[str, Any] = {}
        for twin in ("sync", "async"):
            samples = measurements.reads.get(f"{source}-{twin}")
            if not samples:
                continue
            row = {
                "samples": len(samples),
                "p50_us": percentile(samples, 0.5) * 1e6,
                "p99_us": percentile(samples, 0.99) * 1e6,
            }
            hit = measurements.reads.get(f"hit-{twin}")
            if source != "hit" and hit:
                row["x_hit_p50"] = row["p50_us"] / (percentile(hit, 0.5) * 1e6)
            twins[twin] = row
        if twins:
            reads[source] = twins
    return reads


def _standing(theirs: float, ours: float) -> str:
    """Ahead when the peer's figure is below ours by more than LEVEL_BAND, behind when above, else level."""
    if theirs < ours * (1 - LEVEL_BAND):
        return "ahead"
    return "behind" if theirs > ours * (1 + LEVEL_BAND) else "level"


def against_ours(concurrency: dict[str, Any], name: str) -> dict[str, list[str]]:
    """Where a peer is ahead of ours of the same kind (async or sync), level with it, and behind, in figures.

    Time and a hit's cost within LEVEL_BAND of ours are level; less time and fewer loader
    calls count only when every lookup was answered right (a lookup that raised calls no loader).
    """
    _, twin, _ = CONTENDERS[name]
    ours = f"ours-{twin}"
    standing: dict[str, list[str]] = {"ahead": [], "level": [], "behind": []}
    hit, our_hit = concurrency["hits"].get(name), concurrency["hits"].get(ours)
    if hit and our_hit:
        text = f"a hit {times(hit['x_raw_get_p50'])} a raw GET (ours {times(our_hit['x_raw_get_p50'])})"
        standing[_standing(hit["x_raw_get_p50"], our_hit["x_raw_get_p50"])].append(text)
    for scenario, what in (("stampede", "the stampede"), ("load", "the mixed load")):
        row = concurrency[scenario]["contenders"].get(name)
        our_row = concurrency[scenario]["contenders"].get(ours)
        if not row or not our_row:
            continue
        failed = row["errors"] or row["wrong"] or row["logged"]
        time_standing = _standing(row["seconds"], our_row["seconds"])
        if not (failed and time_standing == "ahead"):  # quicker by failing is not ahead
            standing[time_standing].append(f"{what} in {row['seconds']:.3f} s (ours {our_row['seconds']:.3f} s)")
        calls, our_calls = row["loader_calls"], our_row["loader_calls"]
        if calls > our_calls or (calls < our_calls and not failed):
            text = f"{loader_calls(row)} loader calls in {what} (ours {loader_calls(our_row)})"
            standing["ahead" if calls < our_calls else "behind"].append(text)
        if failed:
            standing["behind"].append(
                f"{counted(row['errors'], 'error')}, {counted(row['logged'], 'cache error')} logged and "
                f"{counted(row['wrong'], 'wrong answer')} in {what}"
            )
    return standing
