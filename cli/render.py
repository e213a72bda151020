"""Prompt layer, pure: every line the demo prints, in its human and its JSON form.

Both twins print through these functions, so their output is the same word for word.
Nothing here writes: the console does. Measured times are formatted, never invented.
"""

from __future__ import annotations

import json
from dataclasses import asdict

from cli.commands import ACCEPTED, MAX_STAMPEDE, Command, Help, Invalid
from config.settings import Settings
from simulator.core import (
    CacheEvent,
    LookupResult,
    SeedReport,
    Source,
    StampedeReport,
    StatsSnapshot,
    TtlReport,
    UpdateReport,
)

HELP = "\n".join(
    (
        "Commands:",
        "  42, user-42        look user 42 up: from the cache if it is there, else from the slow database (cached)",
        f"  stampede 42 [n]    fire n concurrent lookups of user 42 (default 50, at most {MAX_STAMPEDE:,}) "
        "and count the database reads",
        "  ttl 42             what the cache holds for user 42, and how long it has left",
        "  del 42             delete user 42's key: the next lookup is a miss",
        "  update 42          change user 42 in the database (a new email, version + 1), then delete the cached copy",
        "  clear              remove every key the demo wrote, and nothing else",
        "  stats              hits, misses, database reads and latencies so far",
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


def render_answer(result: LookupResult, json_output: bool) -> str:
    """One answer: `Found in cache: user-42 = {...} (0.2 ms)`, or its JSON object."""
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
            }
        )
    took = format_elapsed(result.elapsed_seconds) + (", shared another lookup's database read" if result.shared else "")
    value = printable(result.value or "")
    if result.source is Source.CACHE:
        return f"Found in cache: {result.key} = {value} ({took})"
    if result.degraded:
        found = f"{result.key} = {value}" if result.record else f"{result.key} is not in the database"
        return f"From the database, cache unavailable: {found} ({took})"
    if result.source is Source.DATABASE:
        stored = "Stored" if result.stored else "Read from the database (not cached)"
        return f"{stored}: {result.key} = {value} ({took})"
    if result.source is Source.NEGATIVE_CACHE:
        return f"Not found (cached): {result.key} is not in the database ({took})"
    remembered = "cached as not found" if result.stored else "not cached"
    return f"Not found: {result.key} is not in the database; {remembered} ({took})"


def render_stampede(report: StampedeReport, json_output: bool) -> str:
    """What n concurrent lookups of one id cost: `database reads: 1 of 50`."""
    if json_output:
        return json.dumps(
            {
                "stampede": report.key,
                "lookups": report.lookups,
                "database_reads": report.database_reads,
                "shared": report.saved,
                "sources": report.sources,
                "elapsed_ms": round(report.elapsed_seconds * 1000, 3),
            }
        )
    sources = ", ".join(f"{count} {source}" for source, count in report.sources.items())
    return (
        f"Stampede on {report.key}: database reads: {report.database_reads} of {report.lookups} "
        f"({report.saved} shared a read; answers: {sources}) in {format_elapsed(report.elapsed_seconds)}"
    )


def render_ttl(report: TtlReport, json_output: bool) -> str:
    """What the cache holds for a key and how long it has left."""
    if json_output:
        return json.dumps({"key": report.key, "state": report.state, "ttl_seconds": report.remaining_seconds})
    if report.state == "missing":
        return f"{report.key}: not in the cache"
    left = "no expiry" if report.remaining_seconds is None else f"expires in {report.remaining_seconds:,.1f} s"
    held = {
        "record": "a record",
        "not-found": "a cached 'not found'",
        "lease": "a lease (a lookup is reading the database to fill it)",
        "corrupt": "a corrupt value",
    }[report.state]
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
                "elapsed_ms": round(report.elapsed_seconds * 1000, 3),
            }
        )
    if record is None:
        return f"{key} is not in the database: nothing to update ({took})."
    email = printable(record.email)
    if report.problem is not None:
        return (
            f"Updated {key} in the database (email now {email}), but could not delete the cached copy "
            f"({report.problem}): it may be stale until it expires ({took})."
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
    if event.shard:  # a cluster node: only its keys are affected
        if event.available:
            return f"Cache node {event.shard} recovered: its keys use Redis again."
        return (
            f"Warning: cache node {event.shard} is unavailable ({event.reason}); its keys are answered from the "
            f"database, and it is tried again in {event.retry_seconds:g} s."
        )
    if event.available:
        return f"Cache recovered: using {in_use} again."
    return (
        f"Warning: the cache is unavailable ({event.reason}); answering from the database, "
        f"and trying Redis again in {event.retry_seconds:g} s."
    )


def render_cleared(count: int, json_output: bool) -> str:
    """The answer to `clear`."""
    if json_output:
        return json.dumps({"cleared": count})
    return f"Cleared {count:,} demo keys (user-<id>: records, tombstones, leases); no other key was touched."


def render_stats(stats: StatsSnapshot, json_output: bool) -> str:
    """Hits, misses, database reads and latencies: the answer to `stats`, and the summary on exit."""
    if json_output:
        return json.dumps(
            {
                "stats": {
                    "lookups": stats.lookups,
                    "hits": stats.hits,
                    "misses": stats.misses,
                    "not_found": stats.not_found,
                    "database_reads": stats.database_reads,
                    "saved_by_stampede_protection": stats.saved_by_stampede_protection,
                    "answered_without_the_cache": stats.degraded,
                    "hit_ratio": stats.hit_ratio,
                    "hit_latency_ms": stats.hit_latency_ms,
                    "miss_latency_ms": stats.miss_latency_ms,
                }
            }
        )
    ratio = "n/a" if stats.hit_ratio is None else f"{stats.hit_ratio:.1%}"
    return "\n".join(
        (
            f"Stats: {stats.lookups:,} lookups: {stats.hits:,} hits, {stats.misses:,} misses (hit ratio {ratio}), "
            f"{stats.not_found:,} not found; {stats.database_reads:,} database reads; "
            f"{stats.saved_by_stampede_protection:,} lookups saved by stampede protection; "
            f"{stats.degraded:,} answered without the cache",
            f"  hit latency:  {_percentiles(stats.hit_latency_ms)}",
            f"  miss latency: {_percentiles(stats.miss_latency_ms)}",
        )
    )


def _percentiles(latency_ms: dict[str, float | None]) -> str:
    if latency_ms["p50"] is None:
        return "none yet"
    return ", ".join(f"{name} {format_elapsed((value or 0) / 1000)}" for name, value in latency_ms.items())


def render_error(message: str, json_output: bool) -> str:
    """A reply to bad input: the message, or `{"error": message}`."""
    return json.dumps({"error": message}) if json_output else printable(message, limit=1000)


def render_warning(key: str, warning: str) -> str:
    """A one-line warning about one key."""
    return f"Warning: {key}: {printable(warning)}"


def render_banner(settings: Settings) -> str:
    """What the demo does with these settings, printed once at start."""
    prefix = f"{settings.key_prefix}user-<id>" if settings.key_prefix else "user-<id>"
    jitter = f" ± {settings.ttl_jitter:.0%}" if settings.ttl_jitter else ""
    early = "; hot keys refresh early" if settings.early_refresh else ""
    return (
        f"Keys {prefix}, TTL {settings.cache_ttl_seconds} s{jitter}; a miss queries the database plus "
        f"{settings.db_latency_seconds:g} s of simulated delay{early}. Type {ACCEPTED}."
    )


def render_database(where: str, users: int, created_seconds: float | None, reset: bool) -> str:
    """Which database is the source of truth, how many users it holds, and what the first run cost."""
    if created_seconds is None:
        return f"Database: {where}, users 1..{users:,}."
    made = "reset to its first-run content" if reset else "created"
    return f"Database: {where}, users 1..{users:,} ({made} in {created_seconds:.2f} s)."


def render_reset_cache(removed: int) -> str:
    """What a database reset did to the cache."""
    return f"Removed {removed:,} cached keys, so the cache cannot contradict the reset database."


def render_seed_started(report_mode: str, requested: int, batch_size: int) -> str:
    """A background seed has begun."""
    return f"Seeding {requested:,} users in the background ({report_mode}, batches of {batch_size:,})..."


def render_seed_report(report: SeedReport) -> str:
    """How a seed ended, with the numbers measured."""
    if report.stopped:
        return (
            f"Seeding stopped: {report.written:,} of {report.requested:,} records written "
            f"in {report.seconds:.2f} s; they stay in the cache."
        )
    left = f": {report.written:,} written, {report.skipped:,} already cached" if report.skipped else ""
    return (
        f"Seeded {report.written + report.skipped:,} users in {report.seconds:.2f} s "
        f"({report.records_per_second:,.0f} records/s, {report.mode}){left}."
    )


def render_seed_outcome(report: SeedReport, failure: str | None = None) -> str:
    """How a seed ended, or how Redis cut it short (`failure` says why)."""
    if failure is not None:
        return (
            f"Seeding failed after {report.written:,} of {report.requested:,} records: {failure}. "
            "The prompt still works."
        )
    return render_seed_report(report)


def reply_to(command: Command, json_output: bool) -> str | None:
    """The reply to a command that needs no Redis: help, bad input, or nothing."""
    if isinstance(command, Help):
        return json.dumps({"help": HELP.splitlines()[1:]}) if json_output else HELP
    if isinstance(command, Invalid):
        return render_error(command.message, json_output)
    return None
