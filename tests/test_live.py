"""Live feedback at a terminal, and none of it in a pipe: answers cut to the width, colours, the live status.

The pure parts (cli.answers, cli.live_status) are table-driven; the console's status line is driven against a
stream that says it is a terminal and a fake clock; the real scripts run in a pseudo-terminal
(pexpect) that answers prompt_toolkit's cursor position requests as a terminal does (without an
answer prompt_toolkit never draws a bottom toolbar), and through pipes.
"""

from __future__ import annotations

import io
import json
import re
import sys
import threading
from pathlib import Path

import pexpect
import pytest

import main
import main_async
from cli.answers import render_answer, render_cleared, render_error, render_warning, reply_to
from cli.colour import GREEN, RED, YELLOW, colour_enabled, paint, tone_of
from cli.commands import (
    CacheCommand,
    Clear,
    Delete,
    Invalid,
    Lookup,
    Show,
    ShowStats,
    ShowTtl,
    Stampede,
    Update,
    needs_cache,
    order_of,
    parse_command,
)
from cli.console import ERASE_LINE, Console
from cli.live_status import LiveStatus, _Ticker, describe_command, render_live_status, render_seed_progress
from cli.text import cut_to_columns, format_duration, shorten_record, text_columns
from simulator.records import encode_record, user_record
from simulator.results import ClearReport, LookupResult, Source
from simulator.seeding import SeedProgress
from tests.conftest import PROJECT_ROOT
from tests.test_e2e import EXPECT_SECONDS, ctrl_c_as_at_a_terminal, finish, run_script, script_env
from tests.twins import EVENT_WAIT_SECONDS

SCRIPTS = ["main.py", "main_async.py"]
RECORD = user_record(42)
VALUE = encode_record(RECORD)


def result(
    source: Source = Source.CACHE, *, found: bool = True, stored: bool = False, degraded: bool = False
) -> LookupResult:
    """An answer about user 42 that took 0.5 ms."""
    record, value = (RECORD, VALUE) if found else (None, None)
    return LookupResult(42, "user-42", source, record, value, 0.0005, stored=stored, degraded=degraded)


# --- answers that fit the terminal ---


@pytest.mark.parametrize(
    ("value", "columns", "shortened"),
    [
        ('{"id":42,"name":"Jack"}', 40, '{"id":42,"name":"Jack"}'),  # it fits: whole
        ('{"id":42,"name":"Jack","city":"Wyattshire"}', 30, '{"id":42,"name":"Jack",...}'),
        ('{"id":42,"name":"Jack Navarro"}', 15, '{"id":42,...}'),
        ('{"name":"Jack Navarro"}', 12, '{"name":"...'),  # not even one member fits: cut where it must
        ('{"a":1,"b":"xx,\\"yy zz"}', 22, '{"a":1,...}'),  # `,\"` is inside a string, not between members
        ("not json at all", 10, "not jso..."),
        ("日本語のテキスト", 9, "日本語..."),  # wide characters take two columns each
    ],
)
def test_a_record_is_shortened_to_the_columns_it_has(value: str, columns: int, shortened: str) -> None:
    assert shorten_record(value, columns) == shortened
    assert text_columns(shortened) <= columns


def test_columns_count_wide_characters_twice_and_combining_marks_not_at_all() -> None:
    assert text_columns("abc") == 3
    assert text_columns("日本") == 4
    assert text_columns("e\u0301") == 1
    assert cut_to_columns("日本語", 5) == "日本"


@pytest.mark.parametrize("width", [80, 100, 120])
def test_an_answer_fits_the_width_with_its_source_first_and_its_timing_last(width: int) -> None:
    for answer, start in [
        (result(), 'Found in cache: user-42 = {"id":42,'),
        (result(Source.DATABASE, stored=True), 'Stored: user-42 = {"id":42,'),
        (result(Source.DATABASE, degraded=True), 'From the database, cache unavailable: user-42 = {"id":42,'),
    ]:
        line = render_answer(answer, json_output=False, width=width)
        assert text_columns(line) <= width, line
        assert line.startswith(start)
        assert line.endswith(",...} (0.5 ms)")


def test_a_narrow_terminal_still_gets_the_source_and_the_timing() -> None:
    # 38 columns hold the source, `...` for the record and the timing; narrower, the line is cut (see
    # tests/test_input_and_wording.py): 30 columns would need 38, and the answer would wrap.
    line = render_answer(result(), json_output=False, width=40)
    assert line.startswith("Found in cache: user-42 = ")
    assert line.endswith(" (0.5 ms)")


def test_without_a_width_and_in_json_the_record_is_whole() -> None:
    assert render_answer(result(), json_output=False) == f"Found in cache: user-42 = {VALUE} (0.5 ms)"
    whole = render_answer(result(), json_output=False, width=1000)
    assert whole == render_answer(result(), json_output=False)
    answer = render_answer(result(), json_output=True, width=80)
    assert answer == render_answer(result(), json_output=True)
    assert json.loads(answer)["value"]["email"] == RECORD.email


def test_answers_without_a_record_are_left_as_they_are() -> None:
    answer = result(Source.NOT_FOUND, found=False, stored=True)
    assert render_answer(answer, json_output=False, width=20) == render_answer(answer, json_output=False)


# --- show <id> ---


@pytest.mark.parametrize(
    ("line", "command"),
    [
        ("show 42", Show(42)),
        ("SHOW user-7", Show(7)),
        ("  show\t007 ", Show(7)),
    ],
)
def test_show_is_parsed(line: str, command: Show) -> None:
    assert parse_command(line) == command
    assert needs_cache(command)
    assert order_of(command) == (command.user_id, 1)


@pytest.mark.parametrize("line", ["show", "show 0", "show 1 2", "show abc"])
def test_a_show_without_one_good_id_says_how_to_type_it(line: str) -> None:
    command = parse_command(line)
    assert isinstance(command, Invalid)
    assert command.message.startswith("Not a show command: ")
    assert command.message.endswith("Type show <id> (ids 1 to 1,000,000,000).")


def test_help_lists_show() -> None:
    lines = (reply_to(parse_command("help"), False) or "").splitlines()
    assert any(line.startswith("  show 42 ") for line in lines)
    assert any(
        line.startswith("  show 42 ") for line in json.loads(reply_to(parse_command("help"), True) or "")["help"]
    )


@pytest.mark.parametrize("twin", [main, main_async])
def test_show_prints_the_whole_record_from_the_database_then_from_the_cache(twin: object) -> None:
    out, err = io.StringIO(), io.StringIO()
    typed = io.BytesIO(b"show 42\nshow 42\n")
    argv = ["--redis-url", "memory://", "--seed-mode", "none", "--db-latency", "0"]
    assert twin.main(argv, stdin=typed, stdout=out, stderr=err) == 0
    stored, found = out.getvalue().splitlines()
    assert stored.startswith(f"Stored: user-42 = {VALUE} (")
    assert found.startswith(f"Found in cache: user-42 = {VALUE} (")
    assert "Stats: 2 lookups: 1 hits, 1 misses" in err.getvalue()


# --- colour ---


@pytest.mark.parametrize(
    ("environ", "is_terminal", "coloured"),
    [
        ({}, True, True),
        ({"TERM": "xterm-256color"}, True, True),
        ({"NO_COLOR": "1"}, True, False),
        ({"NO_COLOR": "0"}, True, False),  # any value but the empty one, per no-color.org
        ({"NO_COLOR": ""}, True, True),
        ({"TERM": "dumb"}, True, False),
        ({}, False, False),  # a pipe or a file
    ],
)
def test_colour_is_for_terminals_without_no_color(environ: dict[str, str], is_terminal: bool, coloured: bool) -> None:
    assert colour_enabled(environ, is_terminal) is coloured


@pytest.mark.parametrize(
    ("line", "tone"),
    [
        (render_answer(result(), False), GREEN),
        (render_answer(result(Source.NEGATIVE_CACHE, found=False), False), GREEN),
        (render_answer(result(Source.DATABASE, stored=True), False), YELLOW),
        (render_answer(result(Source.DATABASE), False), YELLOW),  # read, not cached
        (render_answer(result(Source.DATABASE, degraded=True), False), YELLOW),
        (render_answer(result(Source.NOT_FOUND, found=False, stored=True), False), YELLOW),
        (render_error("Redis error: timed out", False), RED),
        (render_error("Database error: locked", False), RED),
        (render_error("Unexpected error: ValueError: x", False), RED),
        (reply_to(parse_command("abc"), False), RED),
        (reply_to(parse_command("stampede x"), False), RED),
        (reply_to(parse_command("show"), False), RED),
        (reply_to(parse_command("99999999999"), False), RED),
        (reply_to(parse_command("4\udcff2"), False), RED),
        (render_warning("user-7", "a corrupt value was replaced"), RED),
        (render_cleared(ClearReport(3), False), None),
        (reply_to(parse_command("help"), False), None),
    ],
)
def test_each_answer_has_its_colour(line: str, tone: str | None) -> None:
    assert tone_of(line) == tone


def test_paint_colours_the_first_line_only() -> None:
    assert (
        paint("Stored: user-1 = {} (2 ms)\n  0.2 ms  GET") == "\x1b[33mStored: user-1 = {} (2 ms)\x1b[0m\n  0.2 ms  GET"
    )
    assert paint("Cleared 3 demo keys") == "Cleared 3 demo keys"


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("no_color", "coloured"), [(None, True), ("1", False)])
def test_the_console_colours_what_goes_to_a_terminal(
    monkeypatch: pytest.MonkeyPatch, no_color: str | None, coloured: bool
) -> None:
    monkeypatch.setenv("TERM", "xterm")
    if no_color is None:
        monkeypatch.delenv("NO_COLOR", raising=False)
    else:
        monkeypatch.setenv("NO_COLOR", no_color)
    terminal, pipe = Terminal(), io.StringIO()
    answers_to_a_terminal, notes_to_a_terminal = Console(terminal, pipe), Console(pipe, terminal)
    answers_to_a_terminal.answer("Stored: user-1 = {} (2 ms)")
    notes_to_a_terminal.note("Warning: user-1: corrupt")
    answers_to_a_terminal.note("Warning: user-1: corrupt")
    notes_to_a_terminal.answer("Stored: user-1 = {} (2 ms)")
    assert terminal.getvalue() == (
        "\x1b[33mStored: user-1 = {} (2 ms)\x1b[0m\n\x1b[31mWarning: user-1: corrupt\x1b[0m\n"
        if coloured
        else "Stored: user-1 = {} (2 ms)\nWarning: user-1: corrupt\n"
    )
    assert pipe.getvalue() == "Warning: user-1: corrupt\nStored: user-1 = {} (2 ms)\n"  # never coloured


# --- the live status ---


@pytest.mark.parametrize(
    ("command", "label"),
    [
        (Lookup(5000), "looking up user 5000"),
        (Show(5000), "looking up user 5000"),
        (Stampede(5, 1000), "1,000 concurrent lookups of user 5"),
        (ShowTtl(5), "reading the TTL of user 5"),
        (Delete(5), "deleting user 5's key"),
        (Update(5), "updating user 5"),
        (Clear(), "clearing the demo's keys"),
        (ShowStats(), "reading the stats"),
    ],
)
def test_a_command_in_flight_says_what_it_does(command: CacheCommand, label: str) -> None:
    assert describe_command(command) == label


def seed_progress(written: int, started: float, requested: int = 100_000) -> SeedProgress:
    progress = SeedProgress("pipelined", requested, started)
    progress.advance(written)
    return progress


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.0, "under 1 s"), (0.4, "under 1 s"), (42.2, "42 s"), (185, "3 min 05 s"), (3600, "60 min 00 s")],
)
def test_time_left_is_said_for_people(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_a_seed_shows_records_rate_and_time_left() -> None:
    assert render_seed_progress(seed_progress(0, 98.0), 100.0) == "seeding 0 of 100,000 users (0%)"
    assert render_seed_progress(seed_progress(12_000, 98.0), 100.0) == (
        "seeding 12,000 of 100,000 users (12%), 6,000 records/s, 15 s left"
    )


LONG_AGO, NOW = 99.2, 100.0


@pytest.mark.parametrize(
    ("in_flight", "seed", "text"),
    [
        ([], None, ""),
        ([("looking up user 1", NOW - 0.05)], None, ""),  # too young: a hit never flashes by
        ([("looking up user 5000", LONG_AGO)], None, "… 0.8 s looking up user 5000"),
        (
            [("looking up user 7", NOW - 0.01), ("looking up user 5000", LONG_AGO), ("updating user 8", NOW - 0.3)],
            None,
            "… 0.8 s looking up user 5000, and 2 more in flight",
        ),
        ([], seed_progress(12_000, NOW - 2), "seeding 12,000 of 100,000 users (12%), 6,000 records/s, 15 s left"),
        ([], seed_progress(0, NOW - 0.01), ""),
        (
            [("looking up user 5000", LONG_AGO)],
            seed_progress(12_000, NOW - 2),
            "… 0.8 s looking up user 5000 | seeding 12,000 of 100,000 users (12%), 6,000 records/s, 15 s left",
        ),
    ],
)
def test_the_live_status_text(in_flight: list[tuple[str, float]], seed: SeedProgress | None, text: str) -> None:
    assert render_live_status(in_flight, seed, NOW, 200) == text


def test_the_live_status_is_cut_to_the_width() -> None:
    text = render_live_status([("looking up user 5000", LONG_AGO)], seed_progress(12_000, NOW - 2), NOW, 60)
    assert text == "… 0.8 s looking up user 5000 | seeding 12,000 of 100,000 us…"
    assert text_columns(text) == 60


def test_live_status_counts_commands_from_begin_to_end_and_follows_a_seed() -> None:
    now = [NOW]
    live = LiveStatus(clock=lambda: now[0])
    first, second = live.begin("looking up user 5000"), live.begin("looking up user 5001")
    now[0] += 1.5
    assert live.text(80) == "… 1.5 s looking up user 5000, and 1 more in flight"
    live.end(first)
    assert live.text(80) == "… 1.5 s looking up user 5001"
    live.follow_seed(seed_progress(3_000, NOW))
    live.end(second)
    assert live.text(80) == "seeding 3,000 of 100,000 users (3%), 2,000 records/s, 48 s left"
    assert not live.idle
    live.follow_seed(None)
    assert live.idle
    assert live.text(80) == ""


def status_console(now: list[float]) -> tuple[Console, Terminal]:
    """A console writing to a terminal whose status line is on (the sync twin's prompt), on a fake clock."""
    terminal = Terminal()
    console = Console(terminal, io.StringIO())
    console.live = LiveStatus(clock=lambda: now[0])
    console.status_line = True
    return console, terminal


def test_the_sync_status_line_is_drawn_in_place_and_erased_before_the_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    now = [NOW]
    console, terminal = status_console(now)
    with console.busy(Lookup(5000)):
        console.draw_status_line()
        assert terminal.getvalue() == ""  # too young to show
        now[0] += 0.8
        console.draw_status_line()
        now[0] += 0.1
        console.draw_status_line()
        console.answer("Stored: user-5000 = {} (950 ms)")
        console.draw_status_line()  # the answer is out: the line stays away
    assert terminal.getvalue() == (
        f"{ERASE_LINE}… 0.8 s looking up user 5000{ERASE_LINE}… 0.9 s looking up user 5000"
        f"{ERASE_LINE}Stored: user-5000 = {{}} (950 ms)\n"
    )


def test_a_command_that_ends_without_an_answer_erases_its_status_line() -> None:
    now = [NOW]
    console, terminal = status_console(now)
    with console.busy(Update(5)):
        now[0] += 0.5
        console.draw_status_line()
    assert terminal.getvalue() == f"{ERASE_LINE}… 0.5 s updating user 5{ERASE_LINE}"


def test_no_status_line_outside_the_sync_prompt() -> None:
    now = [NOW]
    console, terminal = status_console(now)
    console.status_line = False  # a pipe, or the async twin (whose prompt shows it in the toolbar)
    with console.busy(Lookup(5000)):
        now[0] += 0.8
        console.draw_status_line()
    assert terminal.getvalue() == ""


def test_the_ticker_redraws_while_anything_runs_and_once_more_when_it_ends() -> None:
    live = LiveStatus()
    running, ended = threading.Event(), threading.Event()

    def redraw() -> None:
        (ended if live.idle else running).set()

    with _Ticker(live, redraw):
        token = live.begin("looking up user 1")
        assert running.wait(EVENT_WAIT_SECONDS)
        live.end(token)
        assert ended.wait(EVENT_WAIT_SECONDS)


# --- the real scripts ---

CPR_REQUEST = re.escape("\x1b[6n")  # prompt_toolkit asks where the cursor is; a terminal answers ESC [ row ; col R
SGR_COLOUR = re.compile(r"\x1b\[(?:\d+;)*(?:3[0-8]|9[0-7])(?:;\d+)*m")  # a foreground colour, in any form


def at_a_terminal(script: str, *args: str, **env: str) -> pexpect.spawn:
    """`script` in an 80 x 24 pseudo-terminal, on the embedded Redis, at its prompt."""
    child = pexpect.spawn(
        sys.executable,
        [str(PROJECT_ROOT / script), "--redis-url", "memory://", "--seed-mode", "none", *args],
        env=script_env(PROMPT_TOOLKIT_NO_CPR="0", **env),
        timeout=EXPECT_SECONDS,
        encoding="utf-8",
        codec_errors="replace",
        dimensions=(24, 80),
        preexec_fn=ctrl_c_as_at_a_terminal,
    )
    expect(child, "user id>")
    return child


def expect(child: pexpect.spawn, pattern: str) -> str:
    """Wait for `pattern`, answering cursor position requests on the way; returns what came up to its end."""
    seen = ""
    while child.expect([CPR_REQUEST, pattern]) == 0:
        seen += child.before
        child.send("\x1b[1;1R")
    return seen + child.before + child.after


def quit_with_ctrl_d(child: pexpect.spawn) -> str:
    """At the prompt (a Ctrl-D typed ahead of the sync twin's prompt is lost, as at any cooked terminal)."""
    child.sendcontrol("d")
    status, rest = finish(child)
    assert status == 0
    assert "Traceback" not in rest
    return rest


@pytest.mark.e2e
@pytest.mark.parametrize("script", SCRIPTS)
def test_a_slow_miss_shows_how_long_it_has_waited_until_its_answer(script: str) -> None:
    child = at_a_terminal(script, "--db-latency", "1")
    child.sendline("4242")
    expect(child, r"… \d+\.\d s looking up user 4242")  # the sync twin's status line, or the async twin's toolbar
    answer = expect(child, r"Stored: user-4242 = ")
    if script == "main.py":  # the status line is erased as the answer prints, in its place
        assert re.search(re.escape(ERASE_LINE) + r"(\x1b\[\d+m)?Stored: user-4242 = $", answer)
    expect(child, "user id>")
    quit_with_ctrl_d(child)


@pytest.mark.e2e
def test_the_async_toolbar_counts_the_lookups_in_flight() -> None:
    child = at_a_terminal("main_async.py", "--db-latency", "1")
    child.send("4242\r4243\r")
    expect(child, r"… \d+\.\d s looking up user 4242, and 1 more in flight")
    expect(child, "Stored: user-4243 = ")
    expect(child, "user id>")
    quit_with_ctrl_d(child)


@pytest.mark.e2e
@pytest.mark.parametrize("script", SCRIPTS)
def test_at_80_columns_an_answer_fits_and_show_prints_the_whole_record(script: str) -> None:
    child = at_a_terminal(script, "--db-latency", "0")
    child.sendline("4242")
    line = expect(child, r"Stored: user-4242 = [^\r\n]*").rsplit("\x1b[33m", 1)[-1]
    assert line.endswith("\x1b[0m")  # a miss in yellow
    plain = SGR_COLOUR.sub("", line).removesuffix("\x1b[0m")
    assert len(plain) <= 80
    assert re.fullmatch(r'Stored: user-4242 = \{"id":4242,.*,\.\.\.\} \(\d+(\.\d)? ms\)', plain)
    child.sendline("show 4242")
    expect(child, re.escape(f"\x1b[32mFound in cache: user-4242 = {encode_record(user_record(4242))} ("))
    expect(child, "user id>")
    quit_with_ctrl_d(child)


@pytest.mark.e2e
@pytest.mark.parametrize("script", SCRIPTS)
def test_no_colour_at_a_terminal_with_no_color_set(script: str) -> None:
    child = at_a_terminal(script, "--db-latency", "0", NO_COLOR="1")
    child.sendline("4242")
    seen = expect(child, "Stored: user-4242 = ")
    child.sendline("4242")
    seen += expect(child, "Found in cache: user-4242 = ")
    seen += expect(child, "user id>")
    seen += quit_with_ctrl_d(child)
    assert not SGR_COLOUR.search(seen)


@pytest.mark.e2e
@pytest.mark.parametrize("script", SCRIPTS)
def test_a_piped_run_gets_none_of_it(script: str, tmp_path: Path) -> None:
    # Slow misses and a background seed (the default mode of each twin): at a terminal both would show.
    arguments = ["--redis-url", "memory://", "--db-latency", "0.3", "--count", "3000", "--batch-size", "100"]
    done = run_script(script, arguments, b"4242\n4243\n4242\n", tmp_path)
    out, err = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 0, err
    assert "\x1b" not in out + err
    assert "…" not in out + err
    assert "looking up" not in out + err
    assert "seeding " not in out + err  # the toolbar's words; the notes say "Seeding ... in the background"
    assert f"Stored: user-4242 = {encode_record(user_record(4242))} (" in out  # whole: scripts parse it


@pytest.mark.e2e
@pytest.mark.parametrize("script", SCRIPTS)
def test_piped_input_with_answers_to_a_terminal_gets_colours_but_no_live_status(script: str) -> None:
    command = f"printf '4242\\n' | {sys.executable} {PROJECT_ROOT / script} --redis-url memory:// --seed-mode none"
    child = pexpect.spawn(
        "bash",
        ["-c", f"{command} --db-latency 0.3"],
        env=script_env(),
        timeout=EXPECT_SECONDS,
        encoding="utf-8",
        dimensions=(24, 80),
    )
    seen = expect(child, re.escape("\x1b[33mStored: user-4242 = "))
    status, rest = finish(child)
    assert status == 0
    assert "looking up" not in seen + rest
    assert "user id>" not in seen + rest


def test_readme_shows_an_answer_on_80_columns_as_the_demo_prints_it() -> None:
    record = user_record(5000)
    miss = LookupResult(5000, "user-5000", Source.DATABASE, record, encode_record(record), 2.007, stored=True)
    assert f"`{render_answer(miss, json_output=False, width=80)}`" in (PROJECT_ROOT / "docs" / "using.md").read_text()
