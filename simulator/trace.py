"""Simulator layer, pure: the steps of one lookup, written down when the user asks (`trace on`, `--trace`).

A `Trace` is a list of `Step`s: what the lookup did, named as in the user's flow diagram
("check the cache", "hit", "take the lock", "read the database", "store with TTL and
release the lock", "answer"), the Redis command or SQL it sent with its arguments
shortened, and the time since the step before. The trace watches from the side: whoever
wants one wraps the lookup in `with tracing(trace):` (a context variable, so each thread and
each task has its own), and the shells tell each step to `note` and its kin, which do nothing
when no trace is on: a hit then builds no step, formats no string and reads no clock for it.
Nothing here does I/O or knows which twin calls it; a step never holds a URL or a password
(only keys, values, lease tokens cut short, and ids), and how it is printed is
`cli.answers`'s business.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import assert_never

from simulator import sql
from simulator.entries import LEASE_PREFIX, CachedEntry
from simulator.results import LookupResult, StoreProblem
from simulator.scripts import CLAIM_SCRIPT, READ_WITH_TTL_SCRIPT, STORE_SCRIPT, Claim

# The steps, in the words of the flow diagram ("Check Redis Cache", "Cache Hit?", "Store in Redis Cache", ...).
CHECK_THE_CACHE = "check the cache"
SKIP_THE_CACHE = "skip the cache (a lookup here is already filling this key)"
JOINED_A_READ = "joined a concurrent read"
HIT = "hit"
HIT_NOT_FOUND = "hit (a cached 'not found')"
MISS = "miss"
MISS_LOCKED = "miss (another lookup holds the lock)"
MISS_CORRUPT = "miss (corrupt entry: {problem})"
CACHE_UNAVAILABLE = "cache unavailable, read the database"
CACHE_FULL = "cache full (out of memory), read the database"
CACHE_REFUSED = "the cache refuses writes (a replica, or the ACL), read the database"
OLD_COPY_KEPT = "skip the cache: an update could not delete its old copy"
TAKE_THE_LOCK = "take the lock"
LOCKED = "locked by another lookup (wait for its record)"
WAIT_FOR_THE_LOCK = "wait for the lock"
STORED_BY_ANOTHER = "another lookup stored it"
READ_THE_DATABASE = "read the database"
STORE_WITH_TTL = "store with TTL and release the lock"
NOT_STORED_LEASE_LOST = "not stored (an update, a del or a clear removed the lock: the record read may be old)"
NOT_STORED_LEASE_HELD = "not stored (another lookup held the lock the whole time)"
NOT_STORED_UNAVAILABLE = "not stored (cache unavailable)"
NOT_STORED_FULL = "not stored (cache full: out of memory)"
NOT_STORED_REFUSED = "not stored (the cache refuses writes)"
NOT_STORED_STALE = "not stored (the cache may hold the version an update replaced)"
NOT_STORED_BY_CHOICE = "not stored (negative caching is switched off)"
REFRESH_EARLY = "refresh early, in the background"
WAITED_FOR_A_FILL = "waited for another lookup's fill"
ANSWER = "answer"

# The scripts by what they do, and how many of their arguments a step shows.
SCRIPTS = {READ_WITH_TTL_SCRIPT: ("get+pttl", 0), CLAIM_SCRIPT: ("claim", 2), STORE_SCRIPT: ("store", 3)}
SHOWN_CHARACTERS = 24  # of one argument: a record is cut to its first ones
# The lookup's query, its column list shortened: SELECT ... FROM users WHERE id = ?
SELECT_USER = re.sub(r"^SELECT .+? FROM ", "SELECT ... FROM ", sql.SELECT_USER)


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a lookup: its name, the command it sent (None: a decision), and the time since the step before."""

    name: str
    command: str | None
    seconds: float
    times: int = 1  # a step repeated back to back (asking for a lock another lookup holds) is one step

    @property
    def label(self) -> str:
        """The name, with how many times it ran when more than once."""
        return self.name if self.times == 1 else f"{self.name} (x{self.times})"

    @property
    def milliseconds(self) -> float:
        """Its time in milliseconds."""
        return self.seconds * 1000


class Trace:
    """The steps of one lookup, in order; each step's time runs from the end of the one before.

    Made just before the lookup starts, and filled by the one lookup it is given to (the
    steps of a read or fill it shares belong to the lookup that ran it).
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.steps: list[Step] = []
        self._clock = clock
        self._last = clock()

    def step(self, name: str, command: str | None = None) -> None:
        """Write down a step that just ended; a repeat of the step before is counted into it."""
        now = self._clock()
        seconds, self._last = now - self._last, now
        if self.steps and self.steps[-1].name == name:
            before = self.steps[-1]
            self.steps[-1] = replace(before, command=command, seconds=before.seconds + seconds, times=before.times + 1)
        else:
            self.steps.append(Step(name, command, seconds))

    def found(self, cached: CachedEntry, joined: bool) -> None:
        """What reading the cache found (through this lookup's own command, or one it `joined`)."""
        if joined:
            self.step(JOINED_A_READ)
        self.step(verdict(cached))

    def claimed(self, seen: CachedEntry, claim: Claim) -> None:
        """What the claim script answered, when the lock is not simply ours."""
        if outcome := claim_outcome(seen, claim):
            self.step(outcome)

    def stored(self, problem: StoreProblem | None) -> None:
        """Why the store script stored nothing, if it did not."""
        if problem is not None:
            self.step(not_stored(problem))

    def answered(self, result: LookupResult) -> None:
        """The lookup has its answer (after waiting for another lookup's fill, if it shared one)."""
        if result.shared:
            self.step(WAITED_FOR_A_FILL)
        self.step(ANSWER)


# --- the observer: the trace of the lookup running in this thread or task, if any ---

_current: ContextVar[Trace | None] = ContextVar("trace", default=None)


@contextlib.contextmanager
def tracing(trace: Trace | None) -> Iterator[Trace | None]:
    """Write the steps of what runs inside (one lookup) into `trace` (None: into nothing)."""
    token = _current.set(trace)
    try:
        yield trace
    finally:
        _current.reset(token)


def note(name: str, command: Callable[[], str] | None = None) -> None:
    """A step of the lookup being traced here just ended (nothing, when none is); `command` makes its text."""
    if (trace := _current.get()) is not None:
        trace.step(name, command() if command is not None else None)


def note_found(cached: CachedEntry, joined: bool) -> None:
    """What reading the cache found, for the lookup being traced here."""
    if (trace := _current.get()) is not None:
        trace.found(cached, joined)


def note_claimed(seen: CachedEntry, claim: Claim) -> None:
    """What the claim script answered, for the lookup being traced here."""
    if (trace := _current.get()) is not None:
        trace.claimed(seen, claim)


def note_stored(problem: StoreProblem | None) -> None:
    """Why the store stored nothing, if it did not, for the lookup being traced here."""
    if (trace := _current.get()) is not None:
        trace.stored(problem)


def note_answered(result: LookupResult) -> None:
    """The lookup being traced here has its answer."""
    if (trace := _current.get()) is not None:
        trace.answered(result)


# --- what each answer from the cache means, as a step ---


def verdict(cached: CachedEntry) -> str:
    """What a read of the cache found: a hit, a miss and why, or no answer at all."""
    if cached.unavailable:
        return CACHE_UNAVAILABLE
    if cached.stale:
        return OLD_COPY_KEPT
    if cached.record is not None:
        return HIT
    if cached.not_found:
        return HIT_NOT_FOUND
    if cached.leased:
        return MISS_LOCKED
    if cached.problem is not None:
        return MISS_CORRUPT.format(problem=cached.problem.value)
    return MISS


def claim_step(seen: CachedEntry) -> str:
    """The name of a claim: taking the lock, or asking for it again while another lookup holds it."""
    return WAIT_FOR_THE_LOCK if seen.leased else TAKE_THE_LOCK


def claim_outcome(seen: CachedEntry, claim: Claim) -> str | None:
    """The step after a claim, or None when the next step tells it (the lock is ours; still held, as before)."""
    if claim.problem is not None:
        return cache_problem(claim.problem)
    if claim.lease is not None:
        return None
    if claim.found.in_cache:
        return STORED_BY_ANOTHER
    if claim.found.leased:
        return None if seen.leased else LOCKED
    return verdict(claim.found)  # a corrupt value, put there meanwhile: the next claim replaces it


def cache_problem(problem: StoreProblem) -> str:
    """Why a claim could not be made, so the lookup reads the database without the lock."""
    match problem.kind:
        case "unavailable":
            return CACHE_UNAVAILABLE
        case "full":
            return CACHE_FULL
        case "refused" | "lease lost" | "lease held" | "stale copy" | "switched off":  # a claim meets only a refusal
            return CACHE_REFUSED
        case _:
            assert_never(problem.kind)


def not_stored(problem: StoreProblem) -> str:
    """Why the store script stored nothing."""
    match problem.kind:
        case "lease lost":
            return NOT_STORED_LEASE_LOST
        case "lease held":
            return NOT_STORED_LEASE_HELD
        case "unavailable":
            return NOT_STORED_UNAVAILABLE
        case "full":
            return NOT_STORED_FULL
        case "refused":
            return NOT_STORED_REFUSED
        case "stale copy":
            return NOT_STORED_STALE
        case "switched off":
            return NOT_STORED_BY_CHOICE
        case _:
            assert_never(problem.kind)


# --- the commands, as a step shows them ---


def read_command(key: str, with_ttl: bool) -> str:
    """The command that reads a key: GET, or the GET+PTTL script on a key's first hit."""
    return f"EVALSHA <get+pttl> 1 {key}" if with_ttl else f"GET {key}"


def script_command(script: str, key: str, arguments: Sequence[object]) -> str:
    """A one-key script's EVALSHA, named by what it does: `EVALSHA <claim> 1 user-42 <lease 3f2a...> 9000 ...`."""
    name, shown = SCRIPTS.get(script, ("script", 0))
    parts = ["EVALSHA", f"<{name}>", "1", key, *(shorten(argument) for argument in arguments[:shown])]
    if len(arguments) > shown:
        parts.append("...")
    return " ".join(parts)


def set_command(key: str, value: str, ttl: int) -> str:
    """A plain SET with a TTL (the lease switched off): `SET user-42 {"id":42,"na... EX 3600`."""
    return f"SET {key} {shorten(value)} EX {ttl}"


def fetch_command(user_id: int) -> str:
    """The query that reads one user, and its parameter: `SELECT ... FROM users WHERE id = ?  [42]`."""
    return f"{SELECT_USER}  [{user_id}]"


def shorten(argument: object) -> str:
    """One argument as a step shows it: a lease by its first hex digits, a long value by its first characters."""
    text = argument.decode("utf-8", "replace") if isinstance(argument, bytes | bytearray) else str(argument)
    if text.startswith(LEASE_PREFIX.decode()):
        return f"<lease {text[len(LEASE_PREFIX) : len(LEASE_PREFIX) + 4]}...>"
    if not text:
        return '""'
    return text if len(text) <= SHOWN_CHARACTERS else text[:SHOWN_CHARACTERS] + "..."


# --- the prompt's switch ---


class TraceSwitch:
    """Whether lookups at the prompt are traced: set by --trace (TRACE=1), then by `trace on` / `trace off`."""

    def __init__(self, on: bool) -> None:
        self.on = on

    def set(self, on: bool | None) -> bool:
        """Turn the trace on or off (None: leave it); whether it is on now."""
        if on is not None:
            self.on = on
        return self.on
