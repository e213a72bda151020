"""Prompt layer, pure: every line the demo prints, in its human and its JSON form.

Both twins print through these functions, so their output is the same word for word.
Nothing here writes: the console does. Measured times are formatted, never invented.
"""

from __future__ import annotations

import json
from dataclasses import asdict

from cli.commands import ACCEPTED, Command, Help, Invalid
from config.settings import Settings
from simulator.core import LookupResult, SeedReport, Source

_ANSWER_LABELS = {Source.CACHE: "Found in cache", Source.DATABASE: "Stored"}

HELP = "\n".join(
    (
        "Commands:",
        "  42, user-42   look user 42 up: from the cache if it is there, else from the slow database (then cached)",
        "  help          this list",
        "  q             quit (also quit, exit, or end of input)",
    )
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
                "value": asdict(result.record),
                "elapsed_ms": round(result.elapsed_ms, 3),
            }
        )
    label = _ANSWER_LABELS[result.source]
    return f"{label}: {result.key} = {result.value} ({format_elapsed(result.elapsed_seconds)})"


def render_error(message: str, json_output: bool) -> str:
    """A reply to bad input: the message, or `{"error": message}`."""
    return json.dumps({"error": message}) if json_output else message


def render_warning(key: str, warning: str) -> str:
    """A one-line warning about one key."""
    return f"Warning: {key}: {warning}"


def render_banner(settings: Settings) -> str:
    """What the demo does with these settings, printed once at start."""
    prefix = f"{settings.key_prefix}user-<id>" if settings.key_prefix else "user-<id>"
    return (
        f"Keys {prefix}, TTL {settings.cache_ttl_seconds} s; the simulated database takes "
        f"{settings.db_latency_seconds:g} s a read. Type {ACCEPTED}."
    )


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
    return (
        f"Seeded {report.written:,} users in {report.seconds:.2f} s "
        f"({report.records_per_second:,.0f} records/s, {report.mode})."
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
