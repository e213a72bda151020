"""Benchmark, pure: the six performance targets (T1-T6 in docs/performance.md), and whether a run meets each.

Each target is a row: what it asks, the figure measured (in the words the table prints), and
met (True, False, or None when it was not measured). It reads only the figures `figures.py`
made, never a raw measurement, and it never prints.
"""

from __future__ import annotations

from typing import Any

from benchmarks.formats import cell, loader_calls, times
from benchmarks.plan import NOT_INSTALLED

# The targets' thresholds
HIT_ROUND_TRIPS, MISS_ROUND_TRIPS = 1, 3
SEED_X_PIPE = 2.5  # a big seed through the real scripts, at most this many times redis-cli --pipe
ASYNC_X_SYNC = 1.0  # the async seed at least as fast as the sync one
FLAT_MEMORY = 1.2  # peak memory at N within this many times the peak at N/10
HIT_X_DEFAULT_GET = 1.15  # a hit through the lookup against a raw GET on a default client of the same twin
STARTUP_SECONDS = 0.25


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The six targets, each with the figure measured and whether it is met (None: not measured)."""
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
        f"sync {times(ratios[0])}, async {times(ratios[1])}; async / sync {cell(async_x_sync, '.2f')}; peak "
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
        f"sync {times(hit_ratios[0])}, async {times(hit_ratios[1])}",
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
    reads = loader_calls(ours)
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
