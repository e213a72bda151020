"""What the user types: the prompt grammar and the line splitter (cli.commands)."""

from __future__ import annotations

import pytest

from cli.commands import (
    Clear,
    Delete,
    Help,
    Invalid,
    LineSplitter,
    Lookup,
    Nothing,
    Quit,
    ShowStats,
    ShowTtl,
    Stampede,
    Update,
    parse_command,
    parse_user_id,
    shown,
)
from config.settings import MAX_USER_ID


@pytest.mark.parametrize(
    ("line", "command"),
    [
        ("42", Lookup(42)),
        ("  42  ", Lookup(42)),
        ("user-42", Lookup(42)),
        ("USER-42", Lookup(42)),
        ("\t7\r", Lookup(7)),
        ("007", Lookup(7)),
        ("1", Lookup(1)),
        (str(MAX_USER_ID), Lookup(MAX_USER_ID)),
        ("q", Quit()),
        ("Q", Quit()),
        ("quit", Quit()),
        ("exit", Quit()),
        ("help", Help()),
        ("?", Help()),
        ("stampede 42", Stampede(42, 50)),
        ("STAMPEDE user-42 7", Stampede(42, 7)),
        ("stampede 42 1000", Stampede(42, 1000)),
        ("ttl 42", ShowTtl(42)),
        ("del user-9", Delete(9)),
        ("delete 9", Delete(9)),
        ("update 3", Update(3)),
        ("clear", Clear()),
        (" Stats ", ShowStats()),
        ("", Nothing()),
        ("   ", Nothing()),
    ],
)
def test_accepted_input(line: str, command: object) -> None:
    assert parse_command(line) == command


@pytest.mark.parametrize(
    "line",
    [
        "0",
        "-1",
        "-0",
        "+1",
        "1_000",
        "1,000",
        "4.2",
        "1e3",
        str(MAX_USER_ID + 1),
        "9" * 5000,
        "user-",
        "user-0",
        "user 42",
        "user-user-42",
        "uſer-42",  # a long s folds to 's' unless matching is ASCII-only
        "١٢٣",  # Arabic-Indic digits
        "１２３",  # full-width digits
        "42abc",
        "abc",
        "q!",
        "\x00",
        "\u200f42",  # a right-to-left mark
        "stampede",
        "stampede 42 0",
        "stampede 42 1001",
        "stampede 42 ten",
        "stampede 0",
        "stampede 42 5 5",
        "ttl",
        "ttl abc",
        "del 1 2",
        "update -1",
        "clear all",
        "stats now",
        "İstats",
    ],
)
def test_anything_else_is_invalid_and_says_what_is_accepted(line: str) -> None:
    command = parse_command(line)
    assert isinstance(command, Invalid)
    assert "help, or q" in command.message or "Type " in command.message
    assert "\n" not in command.message


@pytest.mark.parametrize(
    ("line", "command"),
    [
        ("update\t42", Update(42)),
        (" \t42\t ", Lookup(42)),
        ("stampede\t42 \t 7", Stampede(42, 7)),
        ("42 \r", Lookup(42)),  # a CRLF line's \r, if parse_command is given the line as typed
    ],
)
def test_spaces_and_tabs_separate_words(line: str, command: object) -> None:
    assert parse_command(line) == command


@pytest.mark.parametrize(
    ("line", "echo"),
    [
        ("update\x1f42", '"update\\x1f42"'),
        ("\x1f42", '"\\x1f42"'),
        ("42\x1c", '"42\\x1c"'),
        ("\x1d42", '"\\x1d42"'),
        ("\x1e42", '"\\x1e42"'),
        ("\x0b42", '"\\x0b42"'),
        ("\x0c42", '"\\x0c42"'),
        ("\x8542", '"\\x8542"'),
        ("\xa042", '"\\xa042"'),  # a no-break space
        ("\u202842", '"\\u202842"'),
        ("\u202942", '"\\u202942"'),
        ("\u300042", '"\\u300042"'),  # an ideographic space
        ("42\r5", '"42\\x0d5"'),
        ("q\x0c", '"q\\x0c"'),
        ("stats\x85", '"stats\\x85"'),
        ("update \x1f42", '"update \\x1f42"'),
        ("del\u2028 42", '"del\\u2028 42"'),
        ("stampede 42\x0b7", '"stampede 42\\x0b7"'),
    ],
)
def test_any_other_whitespace_is_part_of_the_word_and_makes_the_command_invalid(line: str, echo: str) -> None:
    """str.split() would split on \\x1c-\\x1f, \\x0b, \\x0c, \\x85, \\u2028...: `update\\x1f42` would update 42."""
    command = parse_command(line)
    assert isinstance(command, Invalid)
    assert f": {echo}. Type " in command.message


@pytest.mark.parametrize(
    ("text", "echo"),
    [
        ("abc", '"abc"'),
        ("\x1b[31mred", '"\\x1b[31mred"'),
        ("a\x00b", '"a\\x00b"'),
        ("\u200f42", '"\\u200f42"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("\udcff", '"\\xff"'),
        ("x" * 50, '"' + "x" * 40 + '"...'),
    ],
)
def test_echoed_input_has_no_raw_control_characters(text: str, echo: str) -> None:
    assert shown(text) == echo


def test_invalid_utf8_is_bad_input_not_a_crash() -> None:
    [line] = LineSplitter().feed(b"\xff\xfe42\n")
    command = parse_command(line)
    assert isinstance(command, Invalid)
    assert command.message.startswith('Not valid UTF-8: "\\xff\\xfe42"')


def test_out_of_range_ids_say_so() -> None:
    command = parse_command("0")
    assert isinstance(command, Invalid)
    assert command.message.startswith('User id out of range: "0"')


def test_a_malformed_command_says_how_to_type_it() -> None:
    command = parse_command("stampede 42 5000")
    assert isinstance(command, Invalid)
    assert command.message == 'Not a stampede command: "stampede 42 5000". Type stampede <id> [lookups 1-1000].'


def test_parse_user_id() -> None:
    assert parse_user_id("user-9") == 9
    assert parse_user_id("x") is None


def test_the_splitter_joins_chunks_and_keeps_the_last_unterminated_line() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"4") == []
    assert splitter.feed(b"2\r\n50") == ["42"]
    assert splitter.feed(b"00\nq") == ["5000"]
    assert splitter.finish() == ["q"]


def test_an_overlong_line_is_cut_once_and_its_rest_dropped() -> None:
    splitter = LineSplitter(max_line_bytes=8)
    lines = splitter.feed(b"1234567890") + splitter.feed(b"abcdef\n42\n")
    assert lines == ["12345678", "42"]
    assert splitter.finish() == []
