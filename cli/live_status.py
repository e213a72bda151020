"""Prompt layer, no I/O of its own: the live status a terminal's prompt shows.

What it says (`render_live_status`: the oldest command in flight and its time so far, how
many more are in flight, a background seed's progress); the state it is drawn from
(`LiveStatus`, written from any thread or task, read under a lock); and `show_live_status`,
which puts it in prompt_toolkit's bottom toolbar and keeps it fresh with a ticker thread
while anything runs, and only then. It never writes to a stream: prompt_toolkit draws the
toolbar, and the console the sync twin's status line, through the callback it is given.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, assert_never

from cli.commands import (
    CacheCommand,
    Clear,
    Delete,
    Load,
    Lookup,
    RunLab,
    RunMemoryLab,
    Show,
    ShowCache,
    ShowStats,
    ShowTtl,
    Stampede,
    Update,
)
from cli.text import cut_to_columns, format_duration, text_columns
from simulator.seeding import SeedProgress

if TYPE_CHECKING:
    from prompt_toolkit import PromptSession


SHOW_AFTER_SECONDS = 0.1  # the live status ignores younger commands and seeds: a hit never flashes by
STATUS_INTERVAL_SECONDS = 0.1  # the live status is redrawn about ten times a second, while anything runs


def describe_command(command: CacheCommand) -> str:
    """What a command in flight is doing, for the live status: `looking up user 42`."""
    match command:
        case Lookup(user_id) | Show(user_id):
            return f"looking up user {user_id}"
        case Stampede(user_id, lookups):
            return f"{lookups:,} concurrent lookups of user {user_id}"
        case ShowTtl(user_id):
            return f"reading the TTL of user {user_id}"
        case Delete(user_id):
            return f"deleting user {user_id}'s key"
        case Update(user_id):
            return f"updating user {user_id}"
        case Clear():
            return "clearing the demo's keys"
        case Load(plan):
            return f"a load of {plan.lookups:,} lookups, {plan.concurrency:,} at once"
        case ShowCache():
            return "counting the demo's keys"
        case ShowStats():
            return "reading the stats"
        case RunLab(name):
            return f"running lab {name}"
        case RunMemoryLab():
            return "running lab memory"
        case _:
            assert_never(command)


def render_seed_progress(progress: SeedProgress, now: float) -> str:
    """A background seed as it goes: `seeding 12,000 of 100,000 users (12%), 45,000 records/s, 2 s left`."""
    done, elapsed = progress.written + progress.skipped, now - progress.started
    text = f"seeding {done:,} of {progress.requested:,} users ({done / max(progress.requested, 1):.0%})"
    if done == 0 or elapsed <= 0:
        return text
    rate = done / elapsed
    return f"{text}, {rate:,.0f} records/s, {format_duration((progress.requested - done) / rate)} left"


def render_live_status(
    in_flight: Sequence[tuple[str, float]], seed: SeedProgress | None, now: float, width: int
) -> str:
    """The live status at a terminal, in `width` columns; empty when there is nothing to show.

    `in_flight` holds each command running, as its `describe_command` text and when it started
    (a perf_counter reading, as `now`): the oldest is shown with its time so far, and how many
    more are in flight (`… 0.8 s looking up user 5000, and 2 more in flight`); then a background
    seed's progress.
    """
    parts = []
    if in_flight:
        label, started = min(in_flight, key=lambda command: command[1])
        if now - started >= SHOW_AFTER_SECONDS:
            more = f", and {len(in_flight) - 1:,} more in flight" if len(in_flight) > 1 else ""
            parts.append(f"… {now - started:.1f} s {label}{more}")
    if seed is not None and now - seed.started >= SHOW_AFTER_SECONDS:
        parts.append(render_seed_progress(seed, now))
    line = " | ".join(parts)
    return line if text_columns(line) <= width else cut_to_columns(line, width - 1) + "…"


class LiveStatus:
    """What runs now, for the live status at a terminal: the commands in flight and a background seed.

    The shells write it from any thread or task and the ticker thread reads it, so each access takes the lock.
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock  # perf_counter, as SeedProgress.started is
        self._lock = threading.Lock()
        self._in_flight: dict[int, tuple[str, float]] = {}  # per token: what the command does, when it started
        self._tokens = itertools.count()
        self._seed: SeedProgress | None = None
        self.woken = threading.Event()  # set when something starts, so the ticker wakes up

    def begin(self, label: str) -> int:
        """Count a command in flight from now; returns the token `end` takes."""
        with self._lock:
            token = next(self._tokens)
            self._in_flight[token] = (label, self._clock())
        self.woken.set()
        return token

    def end(self, token: int) -> None:
        """The command is over."""
        with self._lock:
            self._in_flight.pop(token, None)

    def follow_seed(self, progress: SeedProgress | None) -> None:
        """Show this background seed's progress (None: no seed runs)."""
        with self._lock:
            self._seed = progress
        self.woken.set()

    @property
    def in_flight(self) -> int:
        """How many commands are in flight."""
        with self._lock:
            return len(self._in_flight)

    @property
    def idle(self) -> bool:
        """True when nothing runs, so there is nothing to redraw."""
        with self._lock:
            return not self._in_flight and self._seed is None

    def text(self, width: int) -> str:
        """The status now, in `width` columns; empty when there is nothing to show."""
        with self._lock:
            in_flight, seed = list(self._in_flight.values()), self._seed
        return render_live_status(in_flight, seed, self._clock(), width)


@contextlib.contextmanager
def show_live_status(
    session: PromptSession[str], live: LiveStatus, draw_line: Callable[[], object] | None
) -> Iterator[None]:
    """Show `live` in the prompt's bottom toolbar, which is there only when it has something to say.

    A ticker thread asks prompt_toolkit for a redraw about ten times a second while anything
    runs, and sleeps while nothing does, so an idle prompt is never redrawn. In the sync twin a
    command holds the prompt back, so meanwhile the ticker calls `draw_line`, which draws the
    status as a line of its own (None: the async twin, whose prompt stays up).
    """
    app = session.app

    def refresh_toolbar(_: object) -> None:  # before each render of the prompt
        text = live.text(app.output.get_size().columns - 1)
        session.bottom_toolbar = f" {text}" if text else None

    def redraw() -> None:
        if app.is_running:
            app.invalidate()  # thread-safe
        elif draw_line is not None:
            draw_line()

    app.before_render += refresh_toolbar
    try:
        with _Ticker(live, redraw):
            yield
    finally:
        app.before_render -= refresh_toolbar


class _Ticker:
    """A daemon thread that calls `redraw` every STATUS_INTERVAL_SECONDS while anything is live, once more
    when it stops being, and otherwise sleeps until `LiveStatus.woken`."""

    def __init__(self, live: LiveStatus, redraw: Callable[[], object]) -> None:
        self._live = live
        self._redraw = redraw
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-status", daemon=True)

    def __enter__(self) -> _Ticker:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopped.set()
        self._live.woken.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._live.woken.clear()
            if self._live.idle:  # checked after the clear: whatever starts from now on sets it again
                self._live.woken.wait()
                continue
            while not self._live.idle and not self._stopped.wait(STATUS_INTERVAL_SECONDS):
                self._redraw_quietly()
            self._redraw_quietly()  # what ended leaves the status

    def _redraw_quietly(self) -> None:
        with contextlib.suppress(RuntimeError, OSError, ValueError):  # the prompt's loop closing as the demo ends
            self._redraw()
