"""Prompt layer, pure: the lines about many lookups or keys at once, for `stats`, `load` and `cache`.

Hits, misses and latency percentiles (`render_stats`, also printed on exit); a load's start,
its progress each second, and its summary with the hit ratio second by second; the cache's
inventory (the demo's keys by kind, their memory and TTLs). JSON keys are the code's own
names (`fields_of`). Nothing here writes or counts: the numbers come measured from
simulator/, and are only worded.
"""

from __future__ import annotations

import json
from typing import assert_never

from cli.messages import describe_failure
from cli.text import format_bytes, format_elapsed, printable
from simulator.inventory import CacheInventory
from simulator.load import LoadEnd, LoadPlan, LoadProgress, LoadReport
from simulator.stats import StatsSnapshot


def fields_of(value: object, names: str) -> dict[str, object]:
    """`{"hits": value.hits, ...}` for the space-separated attribute names: JSON keys are the code's names."""
    return {name: getattr(value, name) for name in names.split()}


def render_stats(stats: StatsSnapshot, json_output: bool) -> str:
    """Hits, misses, database reads and latencies: the answer to `stats`, and the summary on exit."""
    if json_output:
        names = "lookups hits misses not_found database_reads shared degraded hit_ratio hit_latency_ms miss_latency_ms"
        return json.dumps({"stats": fields_of(stats, names)})
    ratio = "n/a" if stats.hit_ratio is None else f"{stats.hit_ratio:.1%}"
    return "\n".join(
        (
            f"Stats: {stats.lookups:,} lookups: {stats.hits:,} hits, {stats.misses:,} misses (hit ratio {ratio}), "
            f"{stats.not_found:,} not found; {stats.database_reads:,} database reads; "
            f"{stats.shared:,} lookups saved by stampede protection; "
            f"{stats.degraded:,} answered without the cache",
            f"  hit latency:  {_percentiles(stats.hit_latency_ms)}",
            f"  miss latency: {_percentiles(stats.miss_latency_ms)}",
        )
    )


def _percentiles(latency_ms: dict[str, float | None]) -> str:
    if latency_ms["p50"] is None:
        return "none yet"
    return ", ".join(f"{name} {format_elapsed((value or 0) / 1000)}" for name, value in latency_ms.items())


def render_load_started(plan: LoadPlan, users: int) -> str:
    """What a load is about to do (a note: progress and this go to stderr, the summary is the answer)."""
    return (
        f"Load: {plan.lookups:,} lookups of users 1..{users:,} (Zipf {plan.zipf:g}, seed {plan.seed}), "
        f"{plan.concurrency:,} at once, for at most {plan.seconds:g} s; Ctrl-C stops it with a summary."
    )


def render_load_progress(progress: LoadProgress) -> str:
    """A load as it runs, once a second: `Load: 4,210 of 10,000 lookups, hit ratio so far 81.2%, 4,180 lookups/s`."""
    ratio = "n/a" if progress.hit_ratio is None else f"{progress.hit_ratio:.1%}"
    errors = f", {progress.errors:,} errors" if progress.errors else ""
    if progress.ending is not None:  # no other lookup starts; why says what ended it (only Ctrl-C is an interrupt)
        match progress.ending:
            case LoadEnd.TIME_LIMIT:
                ended, hint = "reached its time limit", ""
            case LoadEnd.INTERRUPTED:
                ended, hint = "interrupted", " (Ctrl-C again quits at once)"
            case LoadEnd.COMPLETED | LoadEnd.STOPPED:
                ended, hint = "stopped", ""
            case _:
                assert_never(progress.ending)
        return (
            f"Load {ended} after {progress.done:,} of {progress.requested:,} lookups (hit ratio {ratio}{errors}): "
            f"waiting for the {progress.in_flight:,} in flight to end{hint}..."
        )
    return (
        f"Load: {progress.done:,} of {progress.requested:,} lookups, hit ratio so far {ratio}, "
        f"{progress.rate:,.0f} lookups/s{errors} ({progress.elapsed_seconds:.0f} s)"
    )


def render_load_report(report: LoadReport, json_output: bool) -> str:
    """The summary of a load: hit ratio overall and second by second, database reads saved, latencies, errors."""
    plan = report.plan
    first_error = None if report.first_error is None else describe_failure(report.first_error)
    if json_output:
        counts = fields_of(report, "lookups hits misses hit_ratio database_reads saved shared degraded errors")
        return json.dumps(
            {
                "load": {
                    "requested": plan.lookups,
                    "zipf": plan.zipf,
                    "concurrency": plan.concurrency,
                    "seconds_limit": plan.seconds,
                    "seed": plan.seed,
                    "users": report.population,
                    "ended": str(report.ended),
                    **counts,
                    "first_error": first_error,
                    "elapsed_ms": round(report.elapsed_seconds * 1000, 3),
                    "lookups_per_second": round(report.rate, 1),
                    "hit_ratio_by_second": report.hit_ratio_by_second,
                    "lookups_by_second": [second.lookups for second in report.by_second],
                    "hit_latency_ms": report.hit_latency_ms,
                    "miss_latency_ms": report.miss_latency_ms,
                }
            }
        )
    ratio = "n/a" if report.hit_ratio is None else f"{report.hit_ratio:.1%}"
    saved = f" ({report.saved / report.lookups:.1%})" if report.lookups else ""
    errors = f" (the first: {printable(first_error)})" if first_error else ""
    return "\n".join(
        (
            f"Load: {report.lookups:,} of {plan.lookups:,} lookups answered in {report.elapsed_seconds:.2f} s "
            f"({report.rate:,.0f} lookups/s), {_load_end(report)}; Zipf {plan.zipf:g} over users "
            f"1..{report.population:,}, {plan.concurrency:,} at once, seed {plan.seed}",
            f"  hit ratio {ratio}: {report.hits:,} hits, {report.misses:,} misses",
            f"  database reads: {report.database_reads:,}; saved: {report.saved:,} lookups answered without "
            f"reading the database{saved}",
            f"  stampedes absorbed: {report.shared:,} lookups answered by another lookup's database read",
            f"  errors: {report.errors:,}{errors}; degraded: {report.degraded:,} answered without the cache",
            f"  hit latency:  {_percentiles(report.hit_latency_ms)}",
            f"  miss latency: {_percentiles(report.miss_latency_ms)}",
            f"  {_hit_ratio_timeline(report)}",
        )
    )


def _load_end(report: LoadReport) -> str:
    match report.ended:
        case LoadEnd.COMPLETED | LoadEnd.STOPPED:
            return str(report.ended)
        case LoadEnd.TIME_LIMIT:
            return f"stopped at its time limit ({report.plan.seconds:g} s)"
        case LoadEnd.INTERRUPTED:
            return "interrupted: this is what ran"
        case _:
            assert_never(report.ended)


MAX_TIMELINE_POINTS = 30  # a longer run's seconds are shown in windows of several seconds each (--json has them all)


def _hit_ratio_timeline(report: LoadReport) -> str:
    """`hit ratio second by second: 41% 68% 80%`, or by windows of k seconds on a long run."""
    seconds = report.by_second
    if not seconds:
        return "hit ratio second by second: no lookup answered"
    width = -(-len(seconds) // MAX_TIMELINE_POINTS)  # seconds per window, rounded up
    points = []
    for start in range(0, len(seconds), width):
        window = seconds[start : start + width]
        lookups, hits = sum(second.lookups for second in window), sum(second.hits for second in window)
        points.append(f"{hits / lookups:.0%}" if lookups else "-")
    label = "second by second" if width == 1 else f"every {width} s"
    return f"hit ratio {label}: {' '.join(points)}"


def render_inventory(inventory: CacheInventory, json_output: bool) -> str:
    """The answer to `cache`: the demo's keys by kind, their memory (an estimate from a sample) and TTLs."""
    if json_output:
        counted = "pattern keys records not_found leases other capped unreachable"
        sampled = "sampled estimated memory_bytes memory_problem ttl_seconds no_expiry"
        found = {
            **fields_of(inventory, f"{counted} {sampled}"),
            "scan_limit": inventory.limit,
            "key_and_value_bytes": inventory.payload_bytes,
            "elapsed_ms": round(inventory.elapsed_seconds * 1000, 3),
        }
        return json.dumps({"cache": found})
    took = format_elapsed(inventory.elapsed_seconds)
    missed = (
        f"\n  not counted: cache node {'; '.join(inventory.unreachable)} could not be reached"
        if inventory.unreachable
        else ""
    )
    if not inventory.keys:
        return f"Cache: no demo keys ({inventory.pattern}) in Redis; the scan took {took}.{missed}"
    counted = f"at least {inventory.keys:,}" if inventory.capped else f"{inventory.keys:,}"
    other = f", {inventory.other:,} other (not written by the demo)" if inventory.other else ""
    lines = [
        f"Cache: {counted} demo keys ({inventory.pattern}): {inventory.records:,} records, "
        f"{inventory.not_found:,} cached 'not found', {inventory.leases:,} leases{other}; the scan took {took}"
    ]
    if inventory.capped:
        lines.append(f"  the scan stopped at {inventory.limit:,} keys: there are more, these counts are of those")
    how = (
        f"estimated: a sample of {inventory.sampled:,} keys, extrapolated"
        if inventory.estimated
        else f"all {inventory.sampled:,} keys"
    )
    about = "~" if inventory.estimated else ""
    if inventory.memory_bytes is not None:
        lines.append(f"  memory: {about}{format_bytes(inventory.memory_bytes)} (MEMORY USAGE, {how})")
    else:
        lines.append(f"  memory: unknown: {inventory.memory_problem}")
    if inventory.payload_bytes is not None:
        lines.append(f"  keys and values: {about}{format_bytes(inventory.payload_bytes)} (STRLEN, {how})")
    least, median, most = (inventory.ttl_seconds[name] for name in ("min", "median", "max"))
    if least is not None and median is not None and most is not None:
        lines.append(
            f"  TTL left (PTTL of the same keys): min {_seconds(least)}, median {_seconds(median)}, "
            f"max {_seconds(most)}; {inventory.no_expiry:,} without an expiry"
        )
    return "\n".join(lines) + missed


def _seconds(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:,.0f} s"
