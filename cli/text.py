"""Prompt layer, pure: the small text helpers every printed line uses.

A value made safe for one terminal line (`printable`); a measured time, a time left and a
size for people (`format_elapsed`, `format_duration`, `format_bytes`); and terminal widths:
the columns a text takes, the longest start that fits, a record shortened to fit. These know
no command, result or setting; they never write, and never invent a number they were not given.
"""

from __future__ import annotations

import unicodedata

MAX_SHOWN_CHARACTERS = 300  # of a value on one human line (a record is about 150); --json prints it whole
ELLIPSIS = "..."  # in answers: ASCII, as they may go to a terminal whose encoding has no "…"


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


def format_duration(seconds: float) -> str:
    """A time left, for people: `under 1 s`, `42 s`, `3 min 05 s`."""
    if seconds < 1:
        return "under 1 s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{rest} s" if not minutes else f"{minutes:,} min {rest:02d} s"


def format_bytes(count: int) -> str:
    """A size for people: 812 B, 14.2 KiB, 3.1 MiB."""
    size, unit = float(count), "B"
    for bigger in ("KiB", "MiB", "GiB", "TiB"):
        if size < 1024:
            break
        size, unit = size / 1024, bigger
    return f"{count:,} B" if unit == "B" else f"{size:,.1f} {unit}"


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
