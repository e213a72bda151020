"""Prompt layer, pure: every line the demo prints, in its human and its JSON form.

Both twins print through these functions, so their output is the same word for word.
Nothing here writes: the console does. Measured times are formatted, never invented.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import assert_never

from cli.commands import (
    ACCEPTED,
    MAX_STAMPEDE,
    CacheCommand,
    Clear,
    Command,
    Delete,
    Help,
    Invalid,
    Load,
    Lookup,
    Show,
    ShowCache,
    ShowStats,
    ShowTtl,
    Stampede,
    Update,
)
from cli.messages import describe_failure
from config.settings import Settings
from simulator.core import (
    CacheEvent,
    ClearReport,
    LookupResult,
    SeedProgress,
    SeedReport,
    Source,
    StampedeReport,
    StatsSnapshot,
    TtlReport,
    UpdateReport,
)
from simulator.inventory import CacheInventory
from simulator.load import LoadEnd, LoadPlan, LoadProgress, LoadReport
from simulator.trace import Trace

HELP = "\n".join(
    (
        "Commands:",
        "  42, user-42        look user 42 up: from the cache if it is there, else from the slow database (cached)",
        "  show 42            the same lookup, with the whole record (a lookup's is cut to fit the terminal)",
        f"  stampede 42 [n]    fire n concurrent lookups of user 42 (default 50, at most {MAX_STAMPEDE:,}) "
        "and count the database reads",
        "  ttl 42             what the cache holds for user 42, and how long it has left",
        "  del 42             delete user 42's key: the next lookup is a miss",
        "  update 42          change user 42 in the database (a new email, version + 1), then delete the cached copy",
        "  clear              remove every key the demo wrote, and nothing else",
        "  stats              hits, misses, database reads and latencies so far",
        "  trace on|off       also print each lookup's steps: the command each sent, and its time (trace: is it on?)",
        "  load 2000          2,000 lookups of Zipf-popular ids, 50 at once, and a summary "
        "(--zipf, --concurrency, --seconds, --seed)",
        "  cache              what the cache holds: the demo's records, cached 'not found's, leases, memory and TTLs",
        "  help               this list",
        "  q                  quit (also quit, exit, or end of input)",
    )
)


MAX_SHOWN_CHARACTERS = 300  # of a value on one human line (a record is about 150); --json prints it whole


def printable(text: str, limit: int = MAX_SHOWN_CHARACTERS) -> str:
    """`text` safe for a terminal and one line: control, bidi and other non-printable characters
    escaped (a record can hold anything another writer put in the database), and cut at `limit`."""
    if len(text) <= limit and text.isprintable():
        return text
    escaped = "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii") for char in text[:limit]
    )
    return escaped + (
        f"... ({len(text) - limit:,} more characters; --json shows it whole)" if len(text) > limit else ""
    )


def format_elapsed(seconds: float) -> str:
    """A measured duration for people: 0.2 ms, 12 ms, 2004 ms."""
    milliseconds = seconds * 1000
    return f"{milliseconds:.1f} ms" if milliseconds < 10 else f"{milliseconds:.0f} ms"


def render_answer(result: LookupResult, json_output: bool, trace: Trace | None = None, width: int | None = None) -> str:
    """One answer: `Found in cache: user-42 = {...} (0.2 ms)`, or its JSON object; with the lookup's steps if traced.

    `width`, a terminal's columns, makes a line with a record fit: the record is shortened, the source and
    the timing kept whole; on a terminal too narrow for them all, the line is cut (see `_cut_answer`)."""
    if trace is not None and not json_output:
        return "\n".join((render_answer(result, json_output, width=width), *render_steps(trace)))
    if json_output:
        return json.dumps(
            {
                "id": result.user_id,
                "key": result.key,
                "source": str(result.source),
                "value": None if result.record is None else asdict(result.record),
                "elapsed_ms": round(result.elapsed_ms, 3),
                "shared": result.shared,
                "degraded": result.degraded,
                **({} if trace is None else {"steps": step_objects(trace)}),
            }
        )
    took = format_elapsed(result.elapsed_seconds) + (", shared another lookup's database read" if result.shared else "")
    value = printable(result.value or "")
    line = _answer_line(result, value, took)
    if width is None or not value or (over := text_columns(line) - width) <= 0:
        return line
    room = text_columns(value) - over  # the columns left for the record beside the source, the key and the timing
    if room >= len(ELLIPSIS):
        return _answer_line(result, shorten_record(value, room), took)
    return _cut_answer(line, result.key, width)


def _cut_answer(line: str, key: str, width: int) -> str:
    """`line` in at most `width` columns, when even a cut record and the timing do not fit beside the source:
    its start, with `...` for the rest (`Found in cache: user-42 = {...`); on fewer columns than the source,
    the key and `...` take, as much of those as fits (`Found in cache: user` at 20 columns)."""
    head = line[: line.index(key) + len(key)]  # the source, then the key: no source's words hold a key
    if text_columns(head) + len(ELLIPSIS) <= width:
        return cut_to_columns(line, width - len(ELLIPSIS)) + ELLIPSIS
    return cut_to_columns(head, width)


def _answer_line(result: LookupResult, value: str, took: str) -> str:
    match result.source:
        case Source.CACHE:
            return f"Found in cache: {result.key} = {value} ({took})"
        case Source.NEGATIVE_CACHE:
            return f"Not found (cached): {result.key} is not in the database ({took})"
        case Source.DATABASE | Source.NOT_FOUND if result.degraded:
            found = f"{result.key} = {value}" if result.record else f"{result.key} is not in the database"
            return f"From the database, cache unavailable: {found} ({took})"
        case Source.DATABASE:
            stored = "Stored" if result.stored else "Read from the database (not cached)"
            return f"{stored}: {result.key} = {value} ({took})"
        case Source.NOT_FOUND:
            remembered = "cached as not found" if result.stored else "not cached"
            return f"Not found: {result.key} is not in the database; {remembered} ({took})"
        case _:
            assert_never(result.source)


def render_steps(trace: Trace) -> list[str]:
    """A traced lookup's steps, one indented line each: the time it took, its name, and the command it sent."""
    return [
        printable(f"  {format_elapsed(step.seconds):>9}  {step.label}" + (f": {step.command}" if step.command else ""))
        for step in trace.steps
    ]


def step_objects(trace: Trace) -> list[dict[str, object]]:
    """A traced lookup's steps for --json: `{"step": ..., "command": ... (null: a decision), "ms": ...}` each."""
    return [{"step": step.label, "command": step.command, "ms": round(step.milliseconds, 3)} for step in trace.steps]


def render_trace_switch(on: bool, asked: bool, json_output: bool) -> str:
    """The answer to `trace on` and `trace off`, or to `trace` (`asked`: whether it is on)."""
    if json_output:
        return json.dumps({"trace": on})
    if asked and on:
        return "Trace is on: each lookup also prints its steps (trace off stops it)."
    if asked:
        return "Trace is off (trace on prints each lookup's steps)."
    if on:
        return "Trace on: each lookup also prints its steps, the command each sent, and the time each took."
    return "Trace off."


def render_stampede(report: StampedeReport, json_output: bool) -> str:
    """What n concurrent lookups of one id cost: `database reads: 1 of 50`."""
    if json_output:
        return json.dumps(
            {
                "stampede": report.key,
                "lookups": report.lookups,
                "database_reads": report.database_reads,
                "shared": report.shared,
                "sources": report.sources,
                "elapsed_ms": round(report.elapsed_seconds * 1000, 3),
            }
        )
    sources = ", ".join(f"{count} {source}" for source, count in report.sources.items())
    return (
        f"Stampede on {report.key}: database reads: {report.database_reads} of {report.lookups} "
        f"({report.shared} shared a read; answers: {sources}) in {format_elapsed(report.elapsed_seconds)}"
    )


def render_ttl(report: TtlReport, json_output: bool) -> str:
    """What the cache holds for a key and how long it has left."""
    if json_output:
        return json.dumps({"key": report.key, "state": report.state, "ttl_seconds": report.remaining_seconds})
    left = "no expiry" if report.remaining_seconds is None else f"expires in {report.remaining_seconds:,.1f} s"
    match report.state:
        case "missing":
            return f"{report.key}: not in the cache"
        case "record":
            held = "a record"
        case "not-found":
            held = "a cached 'not found'"
        case "lease":
            held = "a lease (a lookup is reading the database to fill it)"
        case "foreign-lease":
            held = "a lease no lookup of the demo wrote (no expiry, or too long: the next lookup replaces it)"
        case "corrupt":
            held = "a corrupt value"
        case _:
            assert_never(report.state)
    return f"{report.key}: {held}, {left}"


def render_deleted(key: str, deleted: bool, json_output: bool) -> str:
    """The answer to `del <id>`."""
    if json_output:
        return json.dumps({"deleted": key, "existed": deleted})
    return f"Deleted {key}: the next lookup reads the database." if deleted else f"{key} was not in the cache."


def render_updated(report: UpdateReport, json_output: bool) -> str:
    """The answer to `update <id>`."""
    record, key, took = report.record, report.key, format_elapsed(report.elapsed_seconds)
    if json_output:
        return json.dumps(
            {
                "updated": key,
                "value": None if record is None else asdict(record),
                "invalidated": report.invalidated,
                "problem": report.problem,
                "old_version_readable_for_seconds": report.stale_for_seconds,
                "elapsed_ms": round(report.elapsed_seconds * 1000, 3),
            }
        )
    if record is None:
        return f"{key} is not in the database: nothing to update ({took})."
    email = printable(record.email)
    if report.problem is not None:
        return (
            f"Updated {key} in the database (email now {email}), but the cache could not delete its copy "
            f"({report.problem}): other readers of this Redis may get the old version for up to "
            f"{report.stale_for_seconds:,} s; this process answers {key} from the database until the copy is "
            f"deleted, which each lookup of it tries again ({took})."
        )
    if report.private_cache:
        return (
            f"Updated {key} in the database (email now {email}) and deleted it from this process's embedded cache: "
            f"the next lookup here reads the new record. Other processes on this database have embedded caches of "
            f"their own, which may answer the old version for up to {report.stale_for_seconds:,} s ({took})."
        )
    return (
        f"Updated {key} in the database (email now {email}) and deleted it from the cache: "
        f"the next lookup reads the new record ({took})."
    )


def render_cache_event(event: CacheEvent, in_use: str) -> str:
    """One line when Redis stops or starts being usable: once per change, not per lookup.

    `in_use` names the server the client uses now (`Redis at redis://...`, or a Sentinel
    master at the address Sentinel gave after a failover), never just the configured URL.
    """
    if event.node:  # a cluster node: only its keys are affected
        if event.available:
            return f"Cache node {event.node} recovered: its keys use Redis again."
        return (
            f"Warning: cache node {event.node} is unavailable ({event.reason}); its keys are answered from the "
            f"database, and it is tried again in {event.retry_seconds:g} s."
        )
    if event.available:
        return f"Cache recovered: using {in_use} again."
    return (
        f"Warning: the cache is unavailable ({event.reason}); answering from the database, "
        f"and trying Redis again in {event.retry_seconds:g} s."
    )


def render_cleared(report: ClearReport, json_output: bool) -> str:
    """The answer to `clear`: what was removed, and on a cluster each master that could not be reached."""
    if json_output:
        return json.dumps({"cleared": report.removed, "unreachable": list(report.unreachable)})
    count = report.removed
    keys = "key" if count == 1 else "keys"
    cleared = f"Cleared {count:,} demo {keys} (user-<id>: records, tombstones, leases); no other key was touched."
    if not report.unreachable:
        return cleared
    nodes = "; ".join(report.unreachable)
    return f"{cleared} Not reached, so their keys stay: cache node {nodes}."


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


def format_bytes(count: int) -> str:
    """A size for people: 812 B, 14.2 KiB, 3.1 MiB."""
    size, unit = float(count), "B"
    for bigger in ("KiB", "MiB", "GiB", "TiB"):
        if size < 1024:
            break
        size, unit = size / 1024, bigger
    return f"{count:,} B" if unit == "B" else f"{size:,.1f} {unit}"


def render_error(message: str, json_output: bool) -> str:
    """A reply to bad input: the message, or `{"error": message}`."""
    return json.dumps({"error": message}) if json_output else printable(message, limit=1000)


def render_warning(key: str, warning: str) -> str:
    """A one-line warning about one key."""
    return f"Warning: {key}: {printable(warning)}"


def warning_of(result: LookupResult) -> str | None:
    """What went wrong with a lookup that still answered: a corrupt value (and, truthfully, whether it was
    replaced), or why the answer was not cached; None when nothing did."""
    not_cached = None if result.not_cached is None else f"not cached: {result.not_cached.reason}"
    if result.corrupt is None:
        return not_cached
    corrupt = f"ignored a corrupt cache entry ({result.corrupt.value})"
    if result.stored:
        return f"{corrupt}; repaired it"
    if result.source is Source.CACHE:
        return f"{corrupt}; another lookup repaired it"
    return f"{corrupt}; {not_cached or 'not repaired'}"


def render_banner(settings: Settings) -> str:
    """What the demo does with these settings, printed once at start."""
    prefix = f"{settings.key_prefix}user-<id>" if settings.key_prefix else "user-<id>"
    jitter = f" ± {settings.ttl_jitter:.0%}" if settings.ttl_jitter else ""
    early = "; hot keys refresh early" if settings.early_refresh else ""
    return (
        f"Keys {prefix}, TTL {settings.cache_ttl_seconds} s{jitter}; a miss queries the database plus "
        f"{settings.db_latency_seconds:g} s of simulated delay{early}. Type {ACCEPTED}."
    )


def render_namespace_moved(configured: str, own: str, other: str) -> str:
    """Why this database's records use keys of their own: another database's records use the configured ones."""
    held_by = f"another database ({other})" if other else "something that is not this database (an unreadable marker)"
    return (
        f"Keys {own}user-<id>, not {configured}user-<id>: on this Redis those hold the records of {held_by}, "
        "and one database's records must never answer for another's."
    )


def render_database(
    where: str, users: int, created_seconds: float | None, reset: bool, added: int = 0, inserted: int = 0
) -> str:
    """Which database is the source of truth, how many users it holds, and what the first run cost.

    Of the `added` users the run brought in, this process `inserted` some: all (it created them),
    none (another process started at the same time did, and this one waited for it), or part.
    """
    if created_seconds is None:
        return f"Database: {where}, users 1..{users:,}."
    made = "reset to its first-run content" if reset else "created"
    if inserted >= added:
        return f"Database: {where}, users 1..{users:,} ({made} in {created_seconds:.2f} s)."
    if inserted == 0:
        return (
            f"Database: {where}, users 1..{users:,} ({made} by another process started at the same time; "
            f"this one waited {created_seconds:.2f} s)."
        )
    return (
        f"Database: {where}, users 1..{users:,} ({made} in {created_seconds:.2f} s, "
        f"{added - inserted:,} of the users by another process started at the same time)."
    )


def render_reset_cache(report: ClearReport) -> str:
    """What a database reset did to the cache."""
    removed = f"Removed {report.removed:,} cached keys, so the cache cannot contradict the reset database."
    if not report.unreachable:
        return removed
    return (
        f"{removed} Warning: not reached, so their keys may contradict it: cache node {'; '.join(report.unreachable)}."
    )


def render_seed_started(report_mode: str, requested: int, batch_size: int) -> str:
    """A background seed has begun."""
    return f"Seeding {requested:,} users in the background ({report_mode}, batches of {batch_size:,})..."


def render_seed_report(report: SeedReport) -> str:
    """How a seed ended, with the numbers measured; then, one a line, the first rows it skipped."""
    if report.stopped:
        return (
            f"Seeding stopped: {report.written:,} of {report.requested:,} records written "
            f"in {report.seconds:.2f} s; they stay in the cache{_skipped_rows(report, ', and ')}."
        ) + _named_rows(report)
    parts = [f"{report.written:,} written"]
    if report.cached:
        parts.append(f"{report.cached:,} already cached")
    if report.changed:
        parts.append(
            f"{report.changed:,} changed while seeding (an update, del or clear removed their lease): "
            "left for the next lookup"
        )
    if report.invalid:
        parts.append(_skipped_rows(report, ""))
    left = f": {', '.join(parts)}" if report.skipped else ""
    return (
        f"Seeded {report.written + report.skipped:,} users in {report.seconds:.2f} s "
        f"({report.records_per_second:,.0f} records/s, {report.mode}){left}."
    ) + _named_rows(report)


def _skipped_rows(report: SeedReport, before: str) -> str:
    """How many ids a seed skipped because their rows are missing or not valid users ("" for none)."""
    if not report.invalid:
        return ""
    return f"{before}{report.invalid:,} skipped (their rows are missing or not valid users: nothing cached for them)"


def _named_rows(report: SeedReport) -> str:
    """The rows a seed skipped, one a line, the first few of them, and how many more."""
    lines = [f"  {printable(row)}" for row in report.invalid_rows]
    if (more := report.problems - len(report.invalid_rows)) > 0:
        lines.append(f"  and {more:,} more")
    return "".join(f"\n{line}" for line in lines)


def render_seed_outcome(report: SeedReport, failure: str | None = None) -> str:
    """How a seed ended, or how Redis or the database cut it short (`failure` says why)."""
    if failure is not None:
        return (
            f"Seeding failed after {report.written:,} of {report.requested:,} records: {failure}. "
            f"The prompt still works{_skipped_rows(report, '; before that, ')}."
        ) + _named_rows(report)
    return render_seed_report(report)


def reply_to(command: Command, json_output: bool) -> str | None:
    """The reply to a command that needs no Redis: help, bad input, or nothing."""
    if isinstance(command, Help):
        return json.dumps({"help": HELP.splitlines()[1:]}) if json_output else HELP
    if isinstance(command, Invalid):
        return render_error(command.message, json_output)
    return None


# --- at a terminal only: the width, the colours and the live status (the console decides when) ---

ELLIPSIS = "..."  # in answers: ASCII, as they may go to a terminal whose encoding has no "…"
SHOW_AFTER_SECONDS = 0.1  # the live status ignores younger commands and seeds: a hit never flashes by
GREEN, YELLOW, RED = "32", "33", "31"  # SGR foreground colours
# The first line of an answer or note, by how it starts: the cache answered, the database did, or it went wrong.
_TONES = (
    (re.compile(r"Found in cache:|Not found \(cached\):"), GREEN),
    (re.compile(r"Stored:|Read from the database|From the database|Not found:"), YELLOW),
    (
        re.compile(
            r"[A-Z][a-z]*( [a-z]+)* error:|Warning:|Not valid UTF-8:|User id out of range:|Not an? [^:]* command:"
            r"|Seeding failed|Cannot |Could not "
        ),
        RED,
    ),
)


def text_columns(text: str) -> int:
    """The terminal columns `text` takes: a wide East Asian character two, a combining mark none."""
    return sum(_columns(char) for char in text)


def _columns(char: str) -> int:
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in "WF" else 1


def cut_to_columns(text: str, columns: int) -> str:
    """The longest start of `text` that takes at most `columns` columns."""
    used = 0
    for index, char in enumerate(text):
        used += _columns(char)
        if used > columns:
            return text[:index]
    return text


def shorten_record(value: str, columns: int) -> str:
    """`value` in at most `columns` columns: a JSON object cut after the last member that fits
    (`{"id":42,"name":"Jack Navarro",...}`), anything else cut where it must; `...` marks the cut."""
    if text_columns(value) <= columns:
        return value
    if value.startswith("{"):
        # `,"` only ever separates two members: inside a JSON string, a quote is escaped (`\"`).
        end = cut_to_columns(value, columns - len(",...}")).rfind(',"')
        if end > 0:
            return value[:end] + ",...}"
    return cut_to_columns(value, columns - len(ELLIPSIS)) + ELLIPSIS


def colour_enabled(environ: Mapping[str, str], is_terminal: bool) -> bool:
    """Colour only for a terminal, and not when NO_COLOR is set to anything (no-color.org) or TERM is dumb."""
    return is_terminal and not environ.get("NO_COLOR") and environ.get("TERM") != "dumb"


def tone_of(line: str) -> str | None:
    """The colour of a line: green for the cache's answers, yellow for the database's, red for errors; or None."""
    return next((tone for pattern, tone in _TONES if pattern.match(line)), None)


def paint(text: str) -> str:
    """`text` with its first line in its colour (a traced lookup's steps stay plain)."""
    first, newline, rest = text.partition("\n")
    tone = tone_of(first)
    return text if tone is None else f"\x1b[{tone}m{first}\x1b[0m{newline}{rest}"


def describe_command(command: CacheCommand) -> str:
    """What a command in flight is doing, for the live status: `looking up user 42`."""
    match command:
        case Lookup(user_id) | Show(user_id):
            return f"looking up user {user_id}"
        case Stampede(user_id, lookups):
            return f"{lookups:,} concurrent lookups of user {user_id}"
        case ShowTtl(user_id):
            return f"reading the TTL of user {user_id}"
        case Delete(user_id):
            return f"deleting user {user_id}'s key"
        case Update(user_id):
            return f"updating user {user_id}"
        case Clear():
            return "clearing the demo's keys"
        case Load(plan):
            return f"a load of {plan.lookups:,} lookups, {plan.concurrency:,} at once"
        case ShowCache():
            return "counting the demo's keys"
        case ShowStats():
            return "reading the stats"
        case _:
            assert_never(command)


def format_duration(seconds: float) -> str:
    """A time left, for people: `under 1 s`, `42 s`, `3 min 05 s`."""
    if seconds < 1:
        return "under 1 s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{rest} s" if not minutes else f"{minutes:,} min {rest:02d} s"


def render_seed_progress(progress: SeedProgress, now: float) -> str:
    """A background seed as it goes: `seeding 12,000 of 100,000 users (12%), 45,000 records/s, 2 s left`."""
    done, elapsed = progress.written + progress.skipped, now - progress.started
    text = f"seeding {done:,} of {progress.requested:,} users ({done / max(progress.requested, 1):.0%})"
    if done == 0 or elapsed <= 0:
        return text
    rate = done / elapsed
    return f"{text}, {rate:,.0f} records/s, {format_duration((progress.requested - done) / rate)} left"


def render_live_status(
    in_flight: Sequence[tuple[str, float]], seed: SeedProgress | None, now: float, width: int
) -> str:
    """The live status at a terminal, in `width` columns; empty when there is nothing to show.

    `in_flight` holds each command running, as its `describe_command` text and when it started
    (a perf_counter reading, as `now`): the oldest is shown with its time so far, and how many
    more are in flight (`… 0.8 s looking up user 5000, and 2 more in flight`); then a background
    seed's progress.
    """
    parts = []
    if in_flight:
        label, started = min(in_flight, key=lambda command: command[1])
        if now - started >= SHOW_AFTER_SECONDS:
            more = f", and {len(in_flight) - 1:,} more in flight" if len(in_flight) > 1 else ""
            parts.append(f"… {now - started:.1f} s {label}{more}")
    if seed is not None and now - seed.started >= SHOW_AFTER_SECONDS:
        parts.append(render_seed_progress(seed, now))
    line = " | ".join(parts)
    return line if text_columns(line) <= width else cut_to_columns(line, width - 1) + "…"
