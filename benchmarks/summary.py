"""Benchmark, pure: raw measurements in, the figures, the targets and the Markdown table out.

Medians are taken over rounds; percentiles over all samples. Nothing here measures or
prints, so the same figures go to Markdown and to JSON.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from benchmarks.measure import (
    DATABASES,
    LOAD_WORKERS,
    MIXED_REPEATS,
    NOT_INSTALLED,
    SCENARIO_LATENCY_SECONDS,
    SETUP_MODES,
    STAMPEDE_ID,
    STAMPEDE_LOOKUPS,
    LoadOutcome,
    Measurements,
    Plan,
)
from config.settings import Settings
from simulator.core import percentile as core_percentile


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


# The targets' thresholds (issue 11)
HIT_ROUND_TRIPS, MISS_ROUND_TRIPS = 1, 3
SEED_X_PIPE = 2.5  # a big seed through the real scripts, at most this many times redis-cli --pipe
ASYNC_X_SYNC = 1.0  # the async seed at least as fast as the sync one
FLAT_MEMORY = 1.2  # peak memory at N within this many times the peak at N/10
HIT_X_DEFAULT_GET = 1.15  # a hit through the lookup against a raw GET on a default client of the same twin
STARTUP_SECONDS = 0.25
LEVEL_BAND = 0.05  # a peer within 5% of ours (time, a hit's cost) is level with it: closer than the noise

# name: (library, twin, how it is used); the names are measure.OURS' and peers.LIBRARIES'
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


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 11's six targets, each with the figure measured and whether it is met (None: not measured)."""
    hits, scale = result["hits"], result["scale"]
    rows: list[dict[str, Any]] = []

    def add(target: str, measured: str, met: bool | None) -> None:
        rows.append({"target": target, "measured": measured, "met": met})

    trips = result["round_trips"]
    add(
        f"T1. round trips of one lookup: a hit {HIT_ROUND_TRIPS}, a miss at most {MISS_ROUND_TRIPS} (single server "
        "and cluster)",
        ", ".join(f"{name} {count}" for name, count in trips.items()) or "n/a (not measured)",
        None
        if not trips
        else all(
            count <= (HIT_ROUND_TRIPS if name.startswith("hit") else MISS_ROUND_TRIPS) for name, count in trips.items()
        ),
    )
    big = scale["records"]
    ratios = [scale[twin]["x_ceiling"] for twin in ("sync", "async")]
    peaks = [scale[twin]["peak_rss_mb"] for twin in ("sync", "async")]
    tenth = [scale[twin]["peak_rss_mb_at_tenth"] for twin in ("sync", "async")]
    async_x_sync = scale["async_x_sync"]
    add(
        f"T2. seeding {big:,} records through the real scripts: at most {SEED_X_PIPE:g}x `redis-cli --pipe` of the "
        f"same SETs, both twins; async / sync at most {ASYNC_X_SYNC:g}; peak memory at N within {FLAT_MEMORY:g}x of "
        "the peak at N/10",
        f"sync {_x(ratios[0])}, async {_x(ratios[1])}; async / sync {_cell(async_x_sync, '.2f')}; peak "
        f"{peaks[0]:.0f} / {peaks[1]:.0f} MB (at N/10: {tenth[0]:.0f} / {tenth[1]:.0f} MB)",
        None
        if None in ratios or async_x_sync is None
        else all(ratio <= SEED_X_PIPE for ratio in ratios)
        and async_x_sync <= ASYNC_X_SYNC
        and all(peak <= at_tenth * FLAT_MEMORY for peak, at_tenth in zip(peaks, tenth, strict=True)),
    )
    hit_ratios = [hits.get(f"lookup-{twin}", {}).get("x_default_get_p50") for twin in ("sync", "async")]
    add(
        f"T3. a hit through the lookup at most {HIT_X_DEFAULT_GET:g}x a raw GET on a default client of the same twin "
        "(`redis.Redis.from_url` / `redis.asyncio.Redis.from_url`), p50",
        f"sync {_x(hit_ratios[0])}, async {_x(hit_ratios[1])}",
        None if None in hit_ratios else all(ratio <= HIT_X_DEFAULT_GET for ratio in hit_ratios),
    )
    startups = [result["startup"].get(twin, {}).get("median_seconds") for twin in ("sync", "async")]
    add(
        f"T4. start-up to the first answer at most {STARTUP_SECONDS:g} s, both twins",
        " / ".join("n/a" if seconds is None else f"{seconds:.2f} s" for seconds in startups),
        None if None in startups else all(seconds <= STARTUP_SECONDS for seconds in startups),
    )
    rows.append(_mixed_load_target(result["concurrency"]))
    rows.append(_peers_target(result["concurrency"]))
    return rows


def _mixed_load_target(concurrency: dict[str, Any]) -> dict[str, Any]:
    """T5: ours against cashews' default `@cache` on the mixed load, with no errors, no degraded answers and one
    database read per missing id."""
    load = concurrency["load"]
    target = (
        f"T5. {load['lookups']:,} concurrent lookups ({load['hits']} hits, {load['repeats']} each of "
        f"{load['missing_ids']} missing ids; database {concurrency['db_latency_seconds']:g} s), async: no slower than "
        f"cashews' default `@cache`, 0 errors, 0 degraded answers, {load['missing_ids']} database reads"
    )
    ours, cashews = load["contenders"].get("ours-async"), load["contenders"].get("cashews")
    if ours is None:
        return {"target": target, "measured": "n/a", "met": None}
    if cashews is not None:
        versus = f"cashews {cashews['seconds']:.3f} s"
    elif concurrency["libraries"].get("cashews", "") is None:
        versus = f"cashews {NOT_INSTALLED}"
    else:
        versus = "cashews not measured"
    reads = _calls(ours)
    measured = (
        f"{ours['seconds']:.3f} s ({versus}); {ours['errors']} errors, {ours['degraded']} degraded, {reads} "
        "database reads"
    )
    if ours["wrong"]:
        measured += f", {ours['wrong']} wrong answers"
    sound = (
        ours["errors"] == 0
        and ours["degraded"] == 0
        and ours["wrong"] == 0
        and ours["loader_calls"] == ours["loader_calls_min"] == load["missing_ids"]
    )
    if not sound or (cashews is not None and ours["seconds"] > cashews["seconds"]):
        met: bool | None = False
    else:
        met = None if cashews is None else True
    return {"target": target, "measured": measured, "met": met}


def _peers_target(concurrency: dict[str, Any]) -> dict[str, Any]:
    """T6: every peer measured in the same run, in one table."""
    libraries, failed = concurrency["libraries"], concurrency["failed"]
    measured = [f"{library} {version}" for library, version in libraries.items() if version]
    missing = [library for library, version in libraries.items() if version is None]
    text = ", ".join(measured) or "none"
    if missing:
        text += f"; {NOT_INSTALLED}: {', '.join(missing)}"
    if failed:
        text += f"; failed: {', '.join(failed)}"
    met = None if not libraries or missing else not failed
    return {
        "target": "T6. the peers (cashews, aiocache, dogpile.cache) in one table, same server, run and loader",
        "measured": text,
        "met": False if failed else met,
    }


def _calls(row: dict[str, Any]) -> str:
    """Loader calls of the worst round, or the range when rounds differ."""
    low, high = row["loader_calls_min"], row["loader_calls"]
    return f"{high:,}" if low == high else f"{low:,}-{high:,}"


def _x(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def _cell(value: float | None, pattern: str) -> str:
    return "n/a" if value is None else format(value, pattern)


def markdown(result: dict[str, Any], label: str) -> str:
    """The measured version of the design document's table, and the detail behind it."""
    setup, hits, misses, scale = result["setup"], result["hits"], result["misses"], result["scale"]
    during, startup = result["hits_during_seed"], result["startup"]
    records, big = result["plan"]["records"], scale["records"]
    sqlite = result["database"].get("sqlite")
    lines = [f"Measured on: {label}", ""]
    lines += [
        "| Operation | Sync (main.py) | Async (main_async.py) | The design's guess (sync / async) |",
        "|---|---|---|---|",
        f"| Initial setup, {records:,} records (pipelined) "
        f"| {_cell(setup.get('pipelined-sync', {}).get('seconds'), '.3f')} s"
        f" | {_cell(setup.get('pipelined-async', {}).get('seconds'), '.3f')} s | 5-10 s / 2-3 s |",
        *(
            [
                f"| Creating {sqlite['users']:,} users (SQLite), once per run, before any seed "
                f"| {sqlite['fill_seconds']:.2f} s, {sqlite['megabytes']:.0f} MB | (one file for both) | |"
            ]
            if sqlite
            else []
        ),
        f"| Initial setup, {big:,} records (pipelined) | {_cell(scale['sync']['seconds'], '.2f')} s"
        f" | {_cell(scale['async']['seconds'], '.2f')} s | |",
        f"| Cache hit, p50 / p99 | {_us(hits.get('lookup-sync'))} | {_us(hits.get('lookup-async'))} | ~1 ms / ~1 ms |",
        f"| Cache miss ({misses['count']} misses, SQLite + {misses['db_latency_seconds']:g} s simulated delay each) "
        f"| {_cell(misses['sync_sequential_seconds'], '.2f')} s, one after another"
        f" | {_cell(misses['async_concurrent_seconds'], '.2f')} s, all at once | ~2 s / ~2 s |",
        f"| Hit while {big:,} records seed in the background, p50 / p99 | {_ms(during.get('sync'))}"
        f" | {_ms(during.get('async'))} | |",
        f"| Peak memory, {big:,}-record seed (at {big // 10:,}) | {scale['sync']['peak_rss_mb']:.0f} MB "
        f"({scale['sync']['peak_rss_mb_at_tenth']:.0f} MB) | {scale['async']['peak_rss_mb']:.0f} MB "
        f"({scale['async']['peak_rss_mb_at_tenth']:.0f} MB) | higher (threads) / lower (event loop) |",
        f"| Start-up to the first answer | {_cell(startup.get('sync', {}).get('median_seconds'), '.2f')} s"
        f" | {_cell(startup.get('async', {}).get('median_seconds'), '.2f')} s | |",
        "",
        f"Initial setup of {records:,} records ({result['record_bytes']} bytes each), median of "
        f"{result['plan']['rounds']} interleaved rounds:",
        "",
        "| Mode | Seconds | Records/s | x redis-cli --pipe |",
        "|---|---|---|---|",
    ]
    names = {
        "sequential": "sequential (sync, one SET per round trip)",
        "threaded": "threaded (sync, pipelines in a thread)",
        "pipelined-sync": "pipelined (sync)",
        "pipelined-async": "pipelined (async)",
        "pipe": "`redis-cli --pipe` of the same SETs (the ceiling)",
        "pipe-startup": "`redis-cli --pipe` of no commands: starting it, connecting, exiting (in the ceiling)",
    }
    for mode, name in names.items():
        if mode in setup:
            row = setup[mode]
            lines.append(
                f"| {name} | {row['seconds']:.4f} | {_cell(row['records_per_second'], ',.0f')} | "
                f"{_x(row['x_ceiling'])} |"
            )
    lines += [
        "",
        f"Seeding {big:,} records through the real scripts (`--seed-mode pipelined`, reading the SQLite file "
        "a batch at a time; its users were created beforehand, not timed here), median of "
        f"{result['plan']['scale_rounds']}: sync {_cell(scale['sync']['seconds'], '.2f')} s "
        f"({_x(scale['sync']['x_ceiling'])} the ceiling), async {_cell(scale['async']['seconds'], '.2f')} s "
        f"({_x(scale['async']['x_ceiling'])}), async / sync {_cell(scale['async_x_sync'], '.2f')}; `redis-cli --pipe` "
        f"of the same {big:,} SETs (`SET bench:user-<id> <record> EX <ttl>`, written to a file beforehand) "
        f"{_cell(scale['ceiling_seconds'], '.2f')} s.",
        "",
        "Hit latency, all samples of every round:",
        "",
        "| Path | p50 | p99 | x raw GET, same client (p50) | x raw GET, default client (p50) |",
        "|---|---|---|---|---|",
    ]
    for name, label_text in (
        ("lookup-sync", "lookup, sync"),
        ("raw-get-sync", "raw redis-py GET, sync, the demo's client"),
        ("raw-get-default-sync", "raw redis-py GET, sync, a default client (`redis.Redis.from_url`)"),
        ("lookup-async", "lookup, async"),
        ("raw-get-async", "raw redis-py GET, async, the demo's client"),
        ("raw-get-default-async", "raw redis-py GET, async, a default client (`redis.asyncio.Redis.from_url`)"),
        ("redis-benchmark-get", "redis-benchmark GET, -c 1 -P 1"),
    ):
        if name in hits:
            row = hits[name]
            same = _x(row["x_raw_get_p50"]) if "x_raw_get_p50" in row else ""
            default = _x(row["x_default_get_p50"]) if "x_default_get_p50" in row else ""
            lines.append(f"| {label_text} | {row['p50_us']:.1f} us | {row['p99_us']:.1f} us | {same} | {default} |")
    lines += reads_markdown(result)
    topologies = result["topologies"]
    if "cluster-sync" in topologies:
        lines += [
            "",
            f"Seeding {topologies['records']:,} records pipelined, single server against a local 3-master Redis "
            "Cluster (records/s):",
            "",
            "| Twin | Single server | Redis Cluster | Cluster / single |",
            "|---|---|---|---|",
        ]
        for twin in ("sync", "async"):
            single, cluster = topologies[f"single-{twin}"], topologies[f"cluster-{twin}"]
            lines.append(
                f"| {twin} | {single['records_per_second']:,.0f} | {cluster['records_per_second']:,.0f} | "
                f"{cluster['records_per_second'] / single['records_per_second']:.2f} |"
            )
    lines += concurrency_markdown(result["concurrency"])
    lines += traffic_markdown(result["traffic"])
    lines += [
        "",
        "| Target | Measured | Met |",
        "|---|---|---|",
    ]
    for row in result["targets"]:
        met = "n/a" if row["met"] is None else ("yes" if row["met"] else "**no**")
        lines.append(f"| {row['target']} | {row['measured']} | {met} |")
    return "\n".join(lines) + "\n"


def concurrency_markdown(concurrency: dict[str, Any]) -> list[str]:
    """Ours and the peers in one table, and where each peer is ahead of ours or behind."""
    stampede, load = concurrency["stampede"], concurrency["load"]
    libraries, failed = concurrency["libraries"], concurrency["failed"]
    rounds = max((row["rounds"] for row in load["contenders"].values()), default=0)
    lines = [
        "",
        "Ours against other Python caching libraries on Redis, each used as its documentation shows, on the same "
        "server in the same run; every loader is the same database read (`AsyncDatabase.fetch` / `Database.fetch`, "
        f"{concurrency['db_latency_seconds']:g} s simulated delay, returning the record as the demo stores it). "
        "Hit: p50 against a raw GET of the same key on a default redis-py client of its kind, interleaved. "
        f"Stampede: {stampede['lookups']} lookups of one missing id at once (async: `asyncio.gather`; sync: a thread "
        f"each). Mixed load: {load['lookups']:,} lookups at once, {load['hits']} hits of ids cached beforehand and "
        f"{load['repeats']} each of {load['missing_ids']} missing ids, shuffled (async: `asyncio.gather`; sync: a "
        f"pool of {load['workers']} threads). Median time of {rounds} rounds; errors and loader calls: the worst "
        "round.",
        "",
        "| Contender | Hit, p50 (x raw GET) | Stampede: time, loader calls | Mixed load: time, errors, loader calls |",
        "|---|---|---|---|",
    ]
    shown: set[str] = set()
    for name, (library, _, usage) in CONTENDERS.items():
        if library != "ours" and library not in libraries:
            continue  # the peers were not measured at all
        if library != "ours" and libraries[library] is None:
            if library not in shown:
                lines.append(f"| {library} | {NOT_INSTALLED} | {NOT_INSTALLED} | {NOT_INSTALLED} |")
            shown.add(library)
            continue
        title = usage if library == "ours" else f"{library} {libraries[library]}: {usage}"
        if name in failed:
            lines.append(f"| {title} | failed: {failed[name]} | | |")
            continue
        hit = concurrency["hits"].get(name)
        hit_cell = "n/a" if hit is None else f"{hit['p50_us']:.1f} us ({_x(hit['x_raw_get_p50'])})"
        lines.append(
            f"| {title} | {hit_cell} | {_outcome(stampede['contenders'].get(name))} | "
            f"{_outcome(load['contenders'].get(name), errors=True)} |"
        )
    verdicts = [verdict for name in CONTENDERS if (verdict := _peer_verdict(concurrency, name))]
    return [*lines, "", *(f"- {verdict}" for verdict in verdicts)] if verdicts else lines


def _outcome(row: dict[str, Any] | None, *, errors: bool = False) -> str:
    if row is None:
        return "n/a"
    parts = [f"{row['seconds']:.3f} s"]
    if errors or row["errors"]:
        parts.append(_count(row["errors"], "error"))
    parts.append(f"{_calls(row)} loader call{'' if row['loader_calls'] == 1 else 's'}")
    if row["degraded"]:
        parts.append(f"{row['degraded']} degraded")
    if row["wrong"]:
        parts.append(_count(row["wrong"], "wrong answer"))
    if row["logged"]:
        parts.append(f"{_count(row['logged'], 'cache error')} logged and answered past")
    return ", ".join(parts)


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


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
        text = f"a hit {_x(hit['x_raw_get_p50'])} a raw GET (ours {_x(our_hit['x_raw_get_p50'])})"
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
            text = f"{_calls(row)} loader calls in {what} (ours {_calls(our_row)})"
            standing["ahead" if calls < our_calls else "behind"].append(text)
        if failed:
            standing["behind"].append(
                f"{_count(row['errors'], 'error')}, {_count(row['logged'], 'cache error')} logged and "
                f"{_count(row['wrong'], 'wrong answer')} in {what}"
            )
    return standing


def _peer_verdict(concurrency: dict[str, Any], name: str) -> str | None:
    library, twin, usage = CONTENDERS[name]
    standing = concurrency["against_ours"].get(name)
    if not standing or not any(standing.values()):
        return None
    parts = [f"{where} on {'; '.join(items)}" for where, items in standing.items() if items]
    return f"{library} {usage}, against ours ({twin}): {'; '.join(parts)}."


READ_LABELS = {
    "hit": "Cache hit (GET through `CacheAside.lookup`, Redis on loopback)",
    "sqlite": "SQLite read (a local file)",
    "postgresql": "PostgreSQL read (a private server on loopback)",
}
READ_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def reads_markdown(result: dict[str, Any]) -> list[str]:
    """What a cache buys, measured: the hit against each database's read, and what that means."""
    reads, databases = result["reads"], result["database"]
    if "hit" not in reads:
        return []
    samples = reads["hit"].get("sync", reads["hit"].get("async", {})).get("samples", 0)
    users = databases.get("sqlite", {}).get("users")
    of_users = f"a random one of {users:,} users" if users else "a random user"
    lines = [
        "",
        "What a cache buys, measured: a hit (a cached id through `CacheAside.lookup`) against one read of "
        f"{of_users} straight from the database (`Database(connector, 0).fetch`: a real `SELECT ... WHERE id = ?`, "
        f"no simulated delay), alternating sample by sample, {samples:,} samples each:",
        "",
        "| Read | Sync, p50 / p99 | Async, p50 / p99 | Read / hit, p50 (sync / async) |",
        "|---|---|---|---|",
    ]
    verdicts = []
    for source, label_text in READ_LABELS.items():
        row = reads.get(source)
        if row is None:
            continue
        if "not_measured" in row:
            lines.append(f"| {label_text} | not measured ({row['not_measured']}) | | |")
            continue
        ratios = (
            "1.00x / 1.00x"
            if source == "hit"
            else " / ".join(_x(row.get(t, {}).get("x_hit_p50")) for t in ("sync", "async"))
        )
        lines.append(f"| {label_text} | {_us_pair(row.get('sync'))} | {_us_pair(row.get('async'))} | {ratios} |")
        if source != "hit":
            verdicts.append(_verdict(READ_NAMES[source], row))
    postgres = databases.get("postgresql")
    if postgres:
        verdicts.append(
            f"(PostgreSQL was filled with the same {postgres['users']:,} users in {postgres['fill_seconds']:.1f} s; "
            f"the table and its index take {postgres['megabytes']:.0f} MB.)"
        )
    return [*lines, "", *(f"- {verdict}" for verdict in verdicts)] if verdicts else lines


def _verdict(name: str, row: dict[str, dict[str, float]]) -> str:
    """Whether a hit beats this database's read, in words a reader can act on."""
    ratios = {twin: figures["x_hit_p50"] for twin, figures in row.items() if "x_hit_p50" in figures}
    shown = ", ".join(f"{twin} {_x(ratio)}" for twin, ratio in ratios.items())
    if not ratios:
        return f"{name}: no hit to compare with."
    if all(ratio > 1 for ratio in ratios.values()):
        return (
            f"{name}: a read takes longer than a hit ({shown} a hit, p50): the cache pays even with no "
            "added delay, and more the slower the database."
        )
    if all(ratio <= 1 for ratio in ratios.values()):
        return (
            f"{name}: a read is as fast as a hit or faster ({shown} a hit, p50): here the cache does not pay; it "
            "pays when reads are slow (a remote or loaded database, what DB_LATENCY_SECONDS simulates)."
        )
    paying = [twin for twin, ratio in ratios.items() if ratio > 1]
    return f"{name}: {shown} a hit (p50): the cache pays in the {' and '.join(paying)} twin only."


def _us_pair(row: dict[str, float] | None) -> str:
    return "n/a" if not row else f"{row['p50_us']:.1f} / {row['p99_us']:.1f} us"


def _us(row: dict[str, float] | None) -> str:
    return "n/a" if not row else f"{row['p50_us'] / 1000:.3f} / {row['p99_us'] / 1000:.3f} ms"


def _ms(row: dict[str, float] | None) -> str:
    return "n/a" if not row else f"{row['p50_ms']:.1f} / {row['p99_ms']:.1f} ms"


def traffic_markdown(traffic: dict[str, Any]) -> list[str]:
    """The traffic simulator's run in each twin, from an empty cache (the chart draws its hit ratio per second)."""
    if not traffic:
        return []
    first = next(iter(traffic.values()))
    lines = [
        "",
        f"The traffic simulator (the prompt's `load`): {first['lookups']:,} lookups of Zipf({first['zipf']:g})-popular "
        f"ids among {first['population']:,} users, {first['concurrency']} at once, database "
        f"{first['db_latency_seconds']:g} s, from an empty cache:",
        "",
        "| Twin | Seconds | Hit ratio | Database reads | Shared (stampedes absorbed) "
        "| Hit p50 / p99 | Miss p50 / p99 |",
        "|---|---|---|---|---|---|---|",
    ]
    for twin, run in traffic.items():
        hit, miss = run["hit_latency_ms"], run["miss_latency_ms"]
        lines.append(
            f"| {twin} | {run['seconds']:.2f} | {run['hit_ratio']:.1%} | {run['database_reads']:,} | {run['shared']:,} "
            f"| {_ms_pair(hit)} | {_ms_pair(miss)} |"
        )
    return lines


def _ms_pair(latency: dict[str, float | None]) -> str:
    p50, p99 = latency.get("p50"), latency.get("p99")
    return "n/a" if p50 is None or p99 is None else f"{p50:.1f} / {p99:.1f} ms"
