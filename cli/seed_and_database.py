"""Prompt layer, pure: the lines about the source of truth and how the cache is filled from it.

The banner (the keys, their TTL, the simulated delay); a namespace moved aside because
another database's records hold the configured one; which database answers and what its
first run cost; what a reset did to the cache; a seed's start and how it ended, with the
rows it skipped. Nothing here writes (the console does) or reads the database: every
number is one the shells measured.
"""

from __future__ import annotations

from cli.commands import ACCEPTED
from cli.text import printable
from config.settings import Settings
from simulator.results import ClearReport
from simulator.seeding import SeedReport


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
