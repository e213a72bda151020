"""Prompt layer, pure: what the demo answers to each command, and its warnings about a lookup or the cache.

A lookup's answer (`render_answer`, with its steps when traced); the replies to `stampede`,
`ttl`, `del`, `update`, `clear`, `trace`, `help` and bad input, in their human and their JSON
form; the warning about one key (`warning_of`, `render_warning`); and the line when Redis
stops or starts being usable (`render_cache_event`). Both twins print through these
functions, so their output is the same word for word. Nothing here writes (the console
does), and a measured time is formatted, never invented.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import assert_never

from cli.commands import MAX_STAMPEDE, Command, Help, Invalid, ListLabs
from cli.labs import render_lab_list
from cli.text import ELLIPSIS, cut_to_columns, format_elapsed, printable, shorten_record, text_columns
from simulator.breaker import CacheEvent
from simulator.results import ClearReport, LookupResult, Source, StampedeReport, TtlReport, UpdateReport
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
        "  lab, lab stampede  the labs (each defence off, then on, measured side by side), or run one",
        "  lab memory         hit ratio by memory size: Redis's eviction policies, exact LRU and the optimum "
        "(--zipf, --lookups, --users, --seed, --policies, --sizes, --samples, --plot FILE.svg)",
        "  help               this list",
        "  q                  quit (also quit, exit, or end of input)",
    )
)


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


def render_error(message: str, json_output: bool) -> str:
    """A reply to bad input: the message, or `{"error": message}`."""
    return json.dumps({"error": message}) if json_output else printable(message, limit=1000)


def reply_to(command: Command, json_output: bool) -> str | None:
    """The reply to a command that needs no Redis: help, bad input, or nothing."""
    if isinstance(command, Help):
        return json.dumps({"help": HELP.splitlines()[1:]}) if json_output else HELP
    if isinstance(command, Invalid):
        return render_error(command.message, json_output)
    if isinstance(command, ListLabs):
        return render_lab_list(json_output)
    return None


def render_warning(key: str, warning: str) -> str:
    """A one-line warning about one key."""
    return f"Warning: {key}: {printable(warning)}"


def warning_of(result: LookupResult) -> str | None:
    """What went wrong with a lookup that still answered: a corrupt value (and, truthfully, whether it was
    replaced), or why the answer was not cached; None when nothing did."""
    not_cached = (
        None if result.not_cached is None or result.not_cached.chosen else f"not cached: {result.not_cached.reason}"
    )
    if result.corrupt is None:
        return not_cached
    corrupt = f"ignored a corrupt cache entry ({result.corrupt.value})"
    if result.stored:
        return f"{corrupt}; repaired it"
    if result.source is Source.CACHE:
        return f"{corrupt}; another lookup repaired it"
    return f"{corrupt}; {not_cached or 'not repaired'}"


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
