"""Prompt layer, pure: the colour of a printed line at a terminal.

Green for the cache's answers, yellow for the database's, red for errors and warnings,
chosen by how a line starts (`tone_of`, `paint`, which paints the first line only); and
whether to colour at all (`colour_enabled`: a terminal, NO_COLOR unset, TERM not dumb).
Nothing here looks at a stream or writes: the console asks, and decides.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

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
