"""Benchmark, pure: raw measurements in, the figures, the targets and the Markdown table out.

Medians are taken over rounds; percentiles over all samples. Nothing here measures or
prints, so the same figures go to Markdown and to JSON.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from benchmarks.measure import DATABASES, SETUP_MODES, Measurements, Plan
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


def figures(measurements: Measurements, plan: Plan, machine: dict[str, str]) -> dict[str, Any]:
    """Every figure of a run, as JSON-ready numbers (seconds unless the name says otherwise)."""
    ceiling = _median(measurements.setup.get("redis-benchmark"))
    setup = {}
    for mode in (*SETUP_MODES, "redis-benchmark"):
        seconds = _median(measurements.setup.get(mode))
        if seconds is not None:
            setup[mode] = {
                "seconds": seconds,
                "records_per_second": plan.records / seconds,
                "x_ceiling": _ratio(seconds, ceiling),
                "runs": measurements.setup[mode],
            }
    hits = {
        name: {"p50_us": percentile(samples, 0.5) * 1e6, "p99_us": percentile(samples, 0.99) * 1e6}
        for name, samples in measurements.hits.items()
    }
    for twin in ("sync", "async"):
        if f"lookup-{twin}" in hits:
            hits[f"lookup-{twin}"]["x_raw_get_p50"] = (
                hits[f"lookup-{twin}"]["p50_us"] / hits[f"raw-get-{twin}"]["p50_us"]
            )
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
        "concurrent_lookups": plan.concurrent_lookups,
        "concurrent_lookups_seconds": _median(measurements.misses.get("async-1000-lookups")),
        "concurrent_lookup_errors": measurements.lookup_errors,
    }
    big_ceiling = _median(measurements.scale.get("ceiling-seconds"))
    scale: dict[str, Any] = {"records": plan.big, "ceiling_seconds": big_ceiling}
    for twin in ("sync", "async"):
        seconds = _median(measurements.scale.get(f"{twin}-seconds"))
        scale[twin] = {
            "seconds": seconds,
            "records_per_second": plan.big / seconds if seconds else None,
            "x_ceiling": _ratio(seconds, big_ceiling),
            "peak_rss_mb": max(measurements.scale.get(f"{twin}-peak-mb", [0.0])),
            "peak_rss_mb_at_tenth": max(measurements.scale.get(f"{twin}-peak-mb-tenth", [0.0])),
        }
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
    }
    result["targets"] = targets(result)
    return result


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
    """The issue's six targets, each with the figure measured and whether it is met."""
    setup, hits, misses, scale = result["setup"], result["hits"], result["misses"], result["scale"]
    rows: list[dict[str, Any]] = []

    def add(target: str, measured: str, met: bool | None) -> None:
        rows.append({"target": target, "measured": measured, "met": met})

    records = result["plan"]["records"]
    pipelined = [setup[mode]["seconds"] for mode in ("pipelined-sync", "pipelined-async") if mode in setup]
    add(
        f"1. seeding {records:,} records pipelined, reading them from the database included: at most 0.1 s in "
        "either twin",
        " / ".join(f"{seconds:.3f} s" for seconds in pipelined),
        all(seconds <= 0.1 for seconds in pipelined),
    )
    big = scale["records"]
    ratios = [scale[twin]["x_ceiling"] for twin in ("sync", "async")]
    peaks = [scale[twin]["peak_rss_mb"] for twin in ("sync", "async")]
    tenth = [scale[twin]["peak_rss_mb_at_tenth"] for twin in ("sync", "async")]
    add(
        f"2. seeding {big:,} records: at most 5x the redis-benchmark ceiling; peak memory under 150 MB, flat in N",
        "sync "
        + _x(ratios[0])
        + ", async "
        + _x(ratios[1])
        + f"; peak {peaks[0]:.0f} / {peaks[1]:.0f} MB (at N/10: {tenth[0]:.0f} / {tenth[1]:.0f} MB)",
        None
        if None in ratios
        else all(r <= 5 for r in ratios)
        and all(p < 150 for p in peaks)
        and all(p <= t * 1.25 for p, t in zip(peaks, tenth, strict=True)),
    )
    hit_ratios = [hits.get(f"lookup-{twin}", {}).get("x_raw_get_p50") for twin in ("sync", "async")]
    add(
        "3. hit through the lookup at most 1.3x a raw redis-py GET, p50, both twins",
        f"sync {_x(hit_ratios[0])}, async {_x(hit_ratios[1])}",
        None if None in hit_ratios else all(ratio <= 1.3 for ratio in hit_ratios),
    )
    during = result["hits_during_seed"]
    p99s = [during.get(twin, {}).get("p99_ms") for twin in ("sync", "async")]
    add(
        f"4. a hit typed while {big:,} records seed in the background: p99 under 50 ms, both twins",
        " / ".join("n/a" if p is None else f"{p:.1f} ms" for p in p99s),
        None if None in p99s else all(p < 50 for p in p99s),
    )
    concurrent, short = misses["async_x_default_db_latency"], misses["async_x_db_latency"]
    add(
        f"5. {misses['count']} concurrent misses in at most 1.5x one database latency (the demo's "
        f"{misses['default_db_latency_seconds']:g} s); {misses['concurrent_lookups']} concurrent lookups without "
        "a connection error",
        f"{_x(concurrent)} of {misses['default_db_latency_seconds']:g} s ({_x(short)} of "
        f"{misses['db_latency_seconds']:g} s); {misses['concurrent_lookup_errors']} errors",
        concurrent is not None and concurrent <= 1.5 and misses["concurrent_lookup_errors"] == 0,
    )
    startups = [result["startup"].get(twin, {}).get("median_seconds") for twin in ("sync", "async")]
    add(
        "6. start-up to the first answer with --seed-mode none under 1 s",
        " / ".join("n/a" if s is None else f"{s:.2f} s" for s in startups),
        None if None in startups else all(s < 1 for s in startups),
    )
    return rows


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
        "| Mode | Seconds | Records/s | x redis-benchmark |",
        "|---|---|---|---|",
    ]
    names = {
        "sequential": "sequential (sync, one SET per round trip)",
        "threaded": "threaded (sync, pipelines in a thread)",
        "pipelined-sync": "pipelined (sync)",
        "pipelined-async": "pipelined (async)",
        "redis-benchmark": "redis-benchmark SET ... EX, -P 1000 (the ceiling)",
    }
    for mode, name in names.items():
        if mode in setup:
            row = setup[mode]
            lines.append(
                f"| {name} | {row['seconds']:.4f} | {row['records_per_second']:,.0f} | {_x(row['x_ceiling'])} |"
            )
    lines += [
        "",
        f"Seeding {big:,} records through the real scripts (`--seed-mode pipelined`, reading the SQLite file "
        "a batch at a time; its users were created beforehand, not timed here), median of "
        f"{result['plan']['scale_rounds']}: sync {_cell(scale['sync']['seconds'], '.2f')} s "
        f"({_x(scale['sync']['x_ceiling'])} the ceiling), async {_cell(scale['async']['seconds'], '.2f')} s "
        f"({_x(scale['async']['x_ceiling'])}); redis-benchmark {_cell(scale['ceiling_seconds'], '.2f')} s.",
        "",
        "Hit latency, all samples of every round:",
        "",
        "| Path | p50 | p99 | x raw GET (p50) |",
        "|---|---|---|---|",
    ]
    for name, label_text in (
        ("lookup-sync", "lookup, sync"),
        ("raw-get-sync", "raw redis-py GET, sync"),
        ("lookup-async", "lookup, async"),
        ("raw-get-async", "raw redis-py GET, async"),
        ("redis-benchmark-get", "redis-benchmark GET, -c 1 -P 1"),
    ):
        if name in hits:
            row = hits[name]
            lines.append(
                f"| {label_text} | {row['p50_us']:.1f} us | {row['p99_us']:.1f} us | "
                f"{_x(row.get('x_raw_get_p50')) if 'x_raw_get_p50' in row else ''} |"
            )
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
    lines += [
        "",
        f"{misses['concurrent_lookups']:,} concurrent lookups in the async twin: "
        f"{_cell(misses['concurrent_lookups_seconds'], '.2f')} s, {misses['concurrent_lookup_errors']} errors.",
        "",
        "| Target | Measured | Met |",
        "|---|---|---|",
    ]
    for row in result["targets"]:
        met = "n/a" if row["met"] is None else ("yes" if row["met"] else "**no**")
        lines.append(f"| {row['target']} | {row['measured']} | {met} |")
    return "\n".join(lines) + "\n"


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
