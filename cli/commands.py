"""Prompt layer, pure: what the user typed, as a command.

`parse_command` turns one line into a `Command`; `LineSplitter` turns the bytes read from
stdin into lines, the same way for both twins. Nothing here reads, prints or raises on
bad input: anything that is not a command becomes `Invalid`, whose message quotes the
input with every control, bidi or undecodable character escaped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeGuard, assert_never

from config.settings import MAX_USER_ID
from labs.catalog import LABS
from labs.memory import MEMORY_USAGE, MemoryPlan, parse_memory_plan
from simulator.load import (
    DEFAULT_LOAD_CONCURRENCY,
    DEFAULT_LOAD_SECONDS,
    DEFAULT_LOAD_SEED,
    DEFAULT_ZIPF,
    MAX_LOAD_CONCURRENCY,
    MAX_LOAD_LOOKUPS,
    MAX_LOAD_SECONDS,
    MAX_LOAD_SEED,
    MAX_ZIPF,
    MIN_LOAD_SECONDS,
    LoadPlan,
)

MAX_LINE_BYTES = 4096
# Only these separate words: str.split() would also split on \x1c-\x1f, \x0b, \x0c, \x85 and
# \u2028, so an invisible control character could turn "update\x1f42" into a command.
BLANKS = " \t"
_BETWEEN_WORDS = re.compile(f"[{BLANKS}]+")
# Any number of digits: leading zeros are allowed however many (`00000000000000000000042` is 42), and an id
# too large is "out of range", decided by its length before any conversion (int() of n digits is quadratic).
_USER_ID = re.compile(r"(?:user-)?([0-9]+)", re.IGNORECASE | re.ASCII)
_MAX_ID_DIGITS = len(str(MAX_USER_ID))
QUIT_WORDS = frozenset({"q", "quit", "exit"})
HELP_WORDS = frozenset({"help", "h", "?"})
ACCEPTED = f"a user id from 1 to {MAX_USER_ID:,} (42 or user-42), help, or q"
DEFAULT_STAMPEDE = 50
MAX_STAMPEDE = 1000
USAGE = {
    "stampede": f"stampede <id> [lookups 1-{MAX_STAMPEDE}]",
    "ttl": "ttl <id>",
    "del": "del <id>",
    "update": "update <id>",
    "show": "show <id>",
    "trace": "trace on, trace off, or trace (to ask whether it is on)",
    "lab": f"lab (the list), lab <name> [--json] ({', '.join(LABS)}), or lab memory [options]",
    "load": (
        f"load <lookups 1-{MAX_LOAD_LOOKUPS:,}> [--zipf 0-{MAX_ZIPF:g}] [--concurrency 1-{MAX_LOAD_CONCURRENCY:,}] "
        f"[--seconds {MIN_LOAD_SECONDS:g}-{MAX_LOAD_SECONDS:,.0f}] [--seed n]"
    ),
}


@dataclass(frozen=True, slots=True)
class Lookup:
    """Look a user up through the cache."""

    user_id: int


@dataclass(frozen=True, slots=True)
class Quit:
    """Leave the prompt."""


@dataclass(frozen=True, slots=True)
class Help:
    """Show what can be typed."""


@dataclass(frozen=True, slots=True)
class Stampede:
    """Fire `lookups` concurrent lookups of one user."""

    user_id: int
    lookups: int = DEFAULT_STAMPEDE


@dataclass(frozen=True, slots=True)
class Show:
    """Look a user up through the cache, and print the whole record (a lookup's is cut to the terminal's width)."""

    user_id: int


@dataclass(frozen=True, slots=True)
class ShowTtl:
    """Show what the cache holds for a user and how long it has left."""

    user_id: int


@dataclass(frozen=True, slots=True)
class Delete:
    """Invalidate a user's key."""

    user_id: int


@dataclass(frozen=True, slots=True)
class Update:
    """Change a user in the database, then invalidate the cached copy."""

    user_id: int


@dataclass(frozen=True, slots=True)
class Clear:
    """Remove every key the demo wrote (and nothing else)."""


@dataclass(frozen=True, slots=True)
class ShowStats:
    """Print hits, misses, database reads and latencies."""


@dataclass(frozen=True, slots=True)
class SetTrace:
    """Turn the trace of each lookup's steps on or off (None: only say whether it is on)."""

    on: bool | None = None


@dataclass(frozen=True, slots=True)
class Load:
    """Drive `plan.lookups` lookups of Zipf-popular ids through the cache, `plan.concurrency` at once."""

    plan: LoadPlan


@dataclass(frozen=True, slots=True)
class ShowCache:
    """Summarize the demo's keys in Redis: records, tombstones, leases, memory and TTLs."""


@dataclass(frozen=True, slots=True)
class ListLabs:
    """Say which labs there are, a line each."""


@dataclass(frozen=True, slots=True)
class RunLab:
    """Run one lab: its scenario with a defence off, then on, measured side by side."""

    name: str
    json: bool = False


@dataclass(frozen=True, slots=True)
class RunMemoryLab:
    """Run `lab memory`: the hit ratio of Redis's eviction policies at each memory size, on a server of its own."""

    plan: MemoryPlan


@dataclass(frozen=True, slots=True)
class Nothing:
    """An empty line: ignored."""


@dataclass(frozen=True, slots=True)
class Invalid:
    """Input that is no command; `message` says what was typed and what is accepted."""

    message: str


Command = (
    Lookup
    | Show
    | Stampede
    | ShowTtl
    | Delete
    | Update
    | Clear
    | ShowStats
    | SetTrace
    | Load
    | ShowCache
    | ListLabs
    | RunLab
    | RunMemoryLab
    | Quit
    | Help
    | Nothing
    | Invalid
)
_SINGLE_WORDS: dict[str, Command] = {
    **dict.fromkeys(QUIT_WORDS, Quit()),
    **dict.fromkeys(HELP_WORDS, Help()),
    "clear": Clear(),
    "stats": ShowStats(),
    "cache": ShowCache(),
    "lab": ListLabs(),
    "labs": ListLabs(),
}


# The commands that go through the cache (and so, in the async twin, run as tasks).
CacheCommand = (
    Lookup | Show | Stampede | ShowTtl | Delete | Update | Clear | ShowStats | Load | ShowCache | RunLab | RunMemoryLab
)


def needs_cache(command: Command) -> TypeGuard[CacheCommand]:
    """True for the commands that go through the cache (and so, in the async twin, run as tasks)."""
    return isinstance(command, CacheCommand)


def order_of(command: CacheCommand) -> tuple[int | None, int]:
    """What a command must wait for when commands run concurrently (the async twin): the user id it is
    about (None: every key, like `clear` and `stats`), and how many lookups it runs."""
    match command:
        case Lookup(user_id) | Show(user_id) | ShowTtl(user_id) | Delete(user_id) | Update(user_id):
            return user_id, 1
        case Stampede(user_id, lookups):
            return user_id, lookups
        case Load(plan):  # every key, and `concurrency` lookups in flight at once
            return None, plan.concurrency
        case Clear() | ShowStats() | ShowCache() | RunLab() | RunMemoryLab():  # every key (a lab runs alone)
            return None, 1
        case _:
            assert_never(command)


def parse_user_id(text: str) -> int | None:
    """The id in `42`, `042` or `user-42` (ASCII digits, any leading zeros, 1..MAX_USER_ID), else None."""
    match = _USER_ID.fullmatch(text)
    if match is None:
        return None
    digits = match.group(1).lstrip("0")
    if not digits or len(digits) > _MAX_ID_DIGITS:
        return None
    user_id = int(digits)
    return user_id if user_id <= MAX_USER_ID else None


def parse_command(line: str) -> Command:
    """The command in one line; only spaces and tabs separate words (or surround them), words are case-insensitive."""
    text = line.removesuffix("\r").strip(BLANKS)
    if not text:
        return Nothing()
    if _has_undecodable_bytes(text):
        return Invalid(f"Not valid UTF-8: {shown(text)}. Type {ACCEPTED}.")
    words = _BETWEEN_WORDS.split(text)
    verb = words[0].lower() if words[0].isascii() else ""
    if len(words) == 1 and verb in _SINGLE_WORDS:
        return _SINGLE_WORDS[verb]
    if verb in ("stampede", "show", "ttl", "del", "delete", "update"):
        return _parse_id_command("del" if verb == "delete" else verb, words[1:], text)
    if verb == "trace":
        return _parse_trace(words[1:], text)
    if verb == "load":
        return _parse_load(words[1:], text)
    if verb == "lab":
        return _parse_lab(words[1:], text)
    user_id = parse_user_id(text)
    if user_id is not None:
        return Lookup(user_id)
    if _USER_ID.fullmatch(text):
        return Invalid(f"User id out of range: {shown(text)}. Type {ACCEPTED}.")
    return Invalid(f"Not a user id or command: {shown(text)}. Type {ACCEPTED}.")


def _parse_id_command(verb: str, arguments: list[str], text: str) -> Command:
    most = 2 if verb == "stampede" else 1
    user_id = parse_user_id(arguments[0]) if arguments else None
    if user_id is None or len(arguments) > most:
        return Invalid(f"Not {_a(verb)} command: {shown(text)}. Type {USAGE[verb]} (ids 1 to {MAX_USER_ID:,}).")
    if verb == "stampede":
        lookups = _whole_number(arguments[1], MAX_STAMPEDE) if len(arguments) == 2 else DEFAULT_STAMPEDE
        if lookups is None:
            return Invalid(f"Not {_a(verb)} command: {shown(text)}. Type {USAGE[verb]}.")
        return Stampede(user_id, lookups)
    if verb == "show":
        return Show(user_id)
    if verb == "ttl":
        return ShowTtl(user_id)
    return Delete(user_id) if verb == "del" else Update(user_id)


def _parse_lab(arguments: list[str], text: str) -> Command:
    if arguments[0].lower() == "memory":
        plan = parse_memory_plan(arguments[1:])  # as typed: a --plot file name keeps its case
        if isinstance(plan, str):
            return Invalid(f"Not a lab memory command: {shown(text)}: {plan}. Type {MEMORY_USAGE}.")
        return RunMemoryLab(plan)
    name, rest = arguments[0].lower(), [argument.lower() for argument in arguments[1:]]
    if name in LABS and rest in ([], ["--json"]):
        return RunLab(name, json=bool(rest))
    return Invalid(f"Not a lab command: {shown(text)}. Type {USAGE['lab']}.")


def _a(word: str) -> str:
    """`word` with its indefinite article, by its first letter: `an update`, `a ttl` (said tee-tee-ell)."""
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"


def _parse_trace(arguments: list[str], text: str) -> Command:
    if not arguments:
        return SetTrace()
    if len(arguments) == 1 and arguments[0].lower() in ("on", "off"):
        return SetTrace(arguments[0].lower() == "on")
    return Invalid(f"Not a trace command: {shown(text)}. Type {USAGE['trace']}.")


# A load option's name: whether it takes a whole number, and its bounds.
_LOAD_OPTIONS: dict[str, tuple[bool, float, float]] = {
    "--zipf": (False, 0, MAX_ZIPF),
    "--concurrency": (True, 1, MAX_LOAD_CONCURRENCY),
    "--seconds": (False, MIN_LOAD_SECONDS, MAX_LOAD_SECONDS),
    "--seed": (True, 0, MAX_LOAD_SEED),
}
_NUMBER = re.compile(r"[0-9]{1,10}(?:\.[0-9]{1,6})?", re.ASCII)


def _parse_load(arguments: list[str], text: str) -> Command:
    """`load N [--zipf S] [--concurrency C] [--seconds T] [--seed K]`: options once each, `--name value` or `=value`."""
    lookups = _number(arguments[0], True, 1, MAX_LOAD_LOOKUPS) if arguments else None
    if lookups is None:
        return Invalid(f"Not a load command: {shown(text)}. Type {USAGE['load']}.")
    options: dict[str, float] = {}
    rest = arguments[1:]
    while rest:
        name, equals, value = rest[0].partition("=")
        name = name.lower()
        if name not in _LOAD_OPTIONS or name in options:
            problem = "it was given twice" if name in options else "no such option"
            return Invalid(f"Not a load option: {shown(rest[0])} ({problem}). Type {USAGE['load']}.")
        if not equals:
            value, rest = (rest[1], rest[2:]) if len(rest) > 1 else ("", [])
        else:
            rest = rest[1:]
        whole, least, most = _LOAD_OPTIONS[name]
        number = _number(value, whole, least, most)
        if number is None:
            accepts = f"{'a whole number' if whole else 'a number'} from {_bound(least)} to {_bound(most)}"
            return Invalid(f"Not a load command: {shown(text)}: {name} takes {accepts}. Type {USAGE['load']}.")
        options[name] = number
    return Load(
        LoadPlan(
            int(lookups),
            zipf=options.get("--zipf", DEFAULT_ZIPF),
            concurrency=int(options.get("--concurrency", DEFAULT_LOAD_CONCURRENCY)),
            seconds=options.get("--seconds", DEFAULT_LOAD_SECONDS),
            seed=int(options.get("--seed", DEFAULT_LOAD_SEED)),
        )
    )


def _number(text: str, whole: bool, least: float, most: float) -> float | None:
    """A plain decimal number (ASCII digits, maybe a fraction; no sign, exponent, inf or nan) within bounds."""
    if not _NUMBER.fullmatch(text) or (whole and "." in text):
        return None
    number = int(text) if whole else float(text)
    return number if least <= number <= most else None


def _bound(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:g}"


def _whole_number(text: str, most: int) -> int | None:
    if not (text.isascii() and text.isdigit() and len(text) <= 6):
        return None
    number = int(text)
    return number if 1 <= number <= most else None


def _has_undecodable_bytes(text: str) -> bool:
    return any("\udc80" <= char <= "\udcff" for char in text)


def shown(text: str, limit: int = 40) -> str:
    """`text` quoted for echoing: non-printable characters escaped, long input shortened."""
    escaped = "".join(_escape(char) for char in text[:limit])
    return f'"{escaped}"' + ("..." if len(text) > limit else "")


def _escape(char: str) -> str:
    if char.isprintable() and char not in '"\\':
        return char
    if char in '"\\':
        return "\\" + char
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8, kept by surrogateescape
        return f"\\x{code - 0xDC00:02x}"
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


class LineSplitter:
    """Bytes from stdin in, lines out: sans-I/O, so both twins read input alike.

    Bytes that are not UTF-8 survive as surrogate escapes (and `parse_command` reports
    them); a line longer than `max_line_bytes` is cut there and its rest is dropped, so a
    runaway input can neither exhaust memory nor become several commands.
    """

    def __init__(self, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self.max_line_bytes = max_line_bytes
        self._pending = bytearray()
        self._discarding = False

    def feed(self, chunk: bytes) -> list[str]:
        """The complete lines that `chunk` finishes."""
        self._pending.extend(chunk)
        lines: list[str] = []
        while (end := self._pending.find(b"\n")) >= 0:
            if not self._discarding:
                lines.append(_decode(self._pending[:end][: self.max_line_bytes]))
            del self._pending[: end + 1]
            self._discarding = False
        if len(self._pending) > self.max_line_bytes:
            if not self._discarding:
                lines.append(_decode(self._pending[: self.max_line_bytes]))
            self._pending.clear()
            self._discarding = True
        return lines

    def finish(self) -> list[str]:
        """At end of input: the last line if it had no newline."""
        rest, self._pending = bytes(self._pending), bytearray()
        return [_decode(rest)] if rest and not self._discarding else []


def _decode(raw: bytes | bytearray) -> str:
    return bytes(raw).decode("utf-8", "surrogateescape").removesuffix("\r")
