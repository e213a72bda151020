"""Every printed line (cli.answers, cli.summaries, cli.seed_and_database, cli.text): formats, JSON shape,
and honesty of the numbers."""

from __future__ import annotations

import json
from dataclasses import asdict, replace

import pytest

from cli.answers import render_answer, render_updated, reply_to
from cli.commands import Help, Invalid, Nothing
from cli.seed_and_database import render_banner, render_seed_outcome, render_seed_started
from cli.text import MAX_SHOWN_CHARACTERS, format_elapsed, printable
from config.settings import Settings
from simulator.records import encode_record, user_record
from simulator.results import LookupResult, Source, UpdateReport
from simulator.seeding import SeedReport


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.0002, "0.2 ms"), (0.00005, "0.1 ms"), (0.0123, "12 ms"), (2.0044, "2004 ms"), (0.0099, "9.9 ms")],
)
def test_format_elapsed(seconds: float, text: str) -> None:
    assert format_elapsed(seconds) == text


def _result(source: Source, elapsed: float) -> LookupResult:
    record = user_record(42)
    return LookupResult(42, "user-42", source, record, encode_record(record), elapsed, stored=True)


def test_a_hit_and_a_miss_read_as_the_diagram_says() -> None:
    value = encode_record(user_record(42))
    assert render_answer(_result(Source.CACHE, 0.0002), False) == f"Found in cache: user-42 = {value} (0.2 ms)"
    assert render_answer(_result(Source.DATABASE, 2.004), False) == f"Stored: user-42 = {value} (2004 ms)"


def test_json_answers_carry_id_key_source_value_and_elapsed() -> None:
    answer = json.loads(render_answer(_result(Source.DATABASE, 0.0151234), True))
    assert answer == {
        "id": 42,
        "key": "user-42",
        "source": "database",
        "value": json.loads(encode_record(user_record(42))),
        "elapsed_ms": 15.123,
        "shared": False,
        "degraded": False,
    }


def test_replies_without_redis() -> None:
    assert reply_to(Nothing(), False) is None
    assert reply_to(Invalid("bad"), True) == '{"error": "bad"}'
    assert reply_to(Invalid("bad"), False) == "bad"
    assert "q " in (reply_to(Help(), False) or "")
    assert json.loads(reply_to(Help(), True) or "")["help"]


def test_seed_reports_show_measured_numbers() -> None:
    done = SeedReport("pipelined", 1000, 1000, 0.05)
    assert render_seed_outcome(done) == "Seeded 1,000 users in 0.05 s (20,000 records/s, pipelined)."
    stopped = SeedReport("threaded", 10_000, 2_000, 0.5, stopped=True)
    assert render_seed_outcome(stopped).startswith("Seeding stopped: 2,000 of 10,000 records written")
    failed = render_seed_outcome(SeedReport("threaded", 10, 3, 0.1, stopped=True), "connection refused")
    assert failed.startswith("Seeding failed after 3 of 10 records: connection refused")
    assert render_seed_started("threaded", 1000, 500) == (
        "Seeding 1,000 users in the background (threaded, batches of 500)..."
    )


def test_the_banner_names_keys_ttl_and_latency() -> None:
    banner = render_banner(Settings(key_prefix="demo:", cache_ttl_seconds=60, db_latency_seconds=0.5))
    assert "demo:user-<id>" in banner
    assert "TTL 60 s" in banner
    assert "plus 0.5 s of simulated delay" in banner


TERMINAL_CONTROLS = ["\x1b[2J", "\r", "\n", "\x00", "\x07", "\x7f", "\x85", "\x9b31m", "\u202e", "\u2066", "\u2028"]


@pytest.mark.parametrize("control", TERMINAL_CONTROLS, ids=[repr(c) for c in TERMINAL_CONTROLS])
def test_a_record_holding_terminal_controls_is_printed_escaped_on_one_line(control: str) -> None:
    record = replace(user_record(42), name=f"Eve{control}Mallory")
    value = json.dumps(asdict(record), ensure_ascii=False)  # as another client may write it: raw characters
    for source in (Source.CACHE, Source.DATABASE):
        line = render_answer(LookupResult(42, "user-42", source, record, value, 0.001, stored=True), False)
        assert line.isprintable()  # no control, no bidi override, no line break reaches the terminal
        assert control[0] not in line
        assert "Mallory" in line
    updated = render_updated(UpdateReport("user-42", replace(record, email=f"a{control}@example.com"), True), False)
    assert updated.isprintable()


def test_a_value_too_long_for_one_line_is_shortened_for_people_but_never_in_json() -> None:
    record = replace(user_record(42), name="x" * 5000)
    value = encode_record(record)
    result = LookupResult(42, "user-42", Source.CACHE, record, value, 0.001)
    line = render_answer(result, False)
    assert len(line) < MAX_SHOWN_CHARACTERS + 200
    assert f"({len(value) - MAX_SHOWN_CHARACTERS:,} more characters; --json shows it whole)" in line
    assert json.loads(render_answer(result, True))["value"]["name"] == "x" * 5000


def test_a_short_printable_value_is_printed_as_it_is() -> None:
    assert printable('{"id":42,"name":"Zoë"}') == '{"id":42,"name":"Zoë"}'
