"""Two findings, each through both twins: a late failure after a recovery, and a load that reaches its time limit.

1. A call to Redis that began before the breaker last closed (sent to a frozen server, or
   waiting for a connection, while Redis was down) can fail after the probe found Redis back.
   That is not a new outage: no warning, and the breaker stays closed, so lookups keep using
   Redis. A call that begins after the recovery and fails is one, and is announced as ever.
2. A load that reaches its time limit while lookups are in flight says so while it waits for
   them, and in its summary: "interrupted" is what Ctrl-C does.

Nothing here waits for time to pass: the breakers and the load run on clocks the test moves,
and a call held "on the wire" waits for the test's event.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import fakeredis
import pytest
import redis

from cli.summaries import render_load_progress, render_load_report
from config.redis_failures import failure_reason
from simulator._async.load import run_load as arun_load
from simulator._sync.load import run_load
from simulator.breaker import CacheEvent, CircuitBreakers
from simulator.load import LoadEnd, LoadPlan, LoadProgress, LoadReport, LoadRun
from simulator.policy import CachePolicy
from simulator.results import LookupResult, Source
from simulator.simulate_cache_db_flow import AsyncCacheAside, CacheAside
from tests.twins import EVENT_WAIT_SECONDS, TEST_DB_SIZE, async_sqlite_database, make_twin, sqlite_database

COOLDOWN = 5.0  # the breakers' cool-down, on the test's clock
TIMEOUT = redis.TimeoutError("Timeout reading from socket")  # what a frozen server's reply never coming raises
REFUSED = redis.ConnectionError("Error 111 connecting to localhost:6379. Connection refused.")
RECOVERED = CacheEvent(True, node="")


def outage(error: Exception) -> CacheEvent:
    """The one event a breaker opened by `error` announces."""
    return CacheEvent(False, failure_reason(error), COOLDOWN, "")


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# --- 1. a late failure after the recovery ---


@dataclass
class Outage:
    """What the twin's Redis does. While `down` is set, every command fails with it. The first command
    on `held_key` is "on the wire": it waits until the test releases it, then fails with a timeout,
    as a command sent to a frozen server does (the sync twin waits on the threading events, the async
    twin on the asyncio ones)."""

    down: Exception | None = None
    held_key: str | None = None
    held: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    async_held: asyncio.Event = field(default_factory=asyncio.Event)
    async_release: asyncio.Event = field(default_factory=asyncio.Event)

    def holds(self, arguments: Sequence[Any]) -> bool:
        """True for the first command on `held_key` (sent once, then forgotten)."""
        words = [word.decode() if isinstance(word, bytes) else str(word) for word in arguments]
        if self.held_key is None or self.held_key not in words:
            return False
        self.held_key = None
        return True

    def fail_if_down(self) -> None:
        if self.down is not None:
            raise type(self.down)(*self.down.args)  # a fresh instance: each call raises its own


class OutageRedis(fakeredis.FakeRedis):
    """The sync twin's client: fakeredis, failing and holding as `outage` says."""

    def __init__(self, *arguments: Any, outage: Outage, **options: Any) -> None:
        super().__init__(*arguments, **options)
        self.outage = outage

    def execute_command(self, *arguments: Any, **options: Any) -> Any:
        if self.outage.holds(arguments):
            self.outage.held.set()
            assert self.outage.release.wait(EVENT_WAIT_SECONDS)
            raise type(TIMEOUT)(*TIMEOUT.args)
        self.outage.fail_if_down()
        return super().execute_command(*arguments, **options)


class OutageAsyncRedis(fakeredis.FakeAsyncRedis):
    """The async twin's client, likewise."""

    def __init__(self, *arguments: Any, outage: Outage, **options: Any) -> None:
        super().__init__(*arguments, **options)
        self.outage = outage

    async def execute_command(self, *arguments: Any, **options: Any) -> Any:
        if self.outage.holds(arguments):
            self.outage.async_held.set()
            await asyncio.wait_for(self.outage.async_release.wait(), EVENT_WAIT_SECONDS)
            raise type(TIMEOUT)(*TIMEOUT.args)
        self.outage.fail_if_down()
        return await super().execute_command(*arguments, **options)


@dataclass
class OutageTwin:
    """A twin on an `Outage` client and a clock the test moves, behind async methods; `events` is what it announced."""

    name: str
    cache: CacheAside | AsyncCacheAside
    outage: Outage
    events: list[CacheEvent]
    clock: Clock

    async def lookup(self, user_id: int) -> LookupResult:
        if isinstance(self.cache, CacheAside):
            return self.cache.lookup(user_id)
        return await self.cache.lookup(user_id)

    async def update(self, user_id: int) -> None:
        if isinstance(self.cache, CacheAside):
            self.cache.update(user_id)
        else:
            await self.cache.update(user_id)

    async def start_held_lookup(self, user_id: int) -> Callable[[], Awaitable[LookupResult]]:
        """Start a lookup of `user_id` (a thread, or a task) and return once its read is on the wire, held;
        the function returned releases it (it fails with a timeout) and gives the lookup's answer."""
        self.outage.held_key = f"user-{user_id}"
        cache = self.cache
        if isinstance(cache, CacheAside):
            answers: list[LookupResult] = []
            thread = threading.Thread(target=lambda: answers.append(cache.lookup(user_id)), daemon=True)
            thread.start()
            assert self.outage.held.wait(EVENT_WAIT_SECONDS)

            async def finish_thread() -> LookupResult:
                self.outage.release.set()
                thread.join(EVENT_WAIT_SECONDS)
                assert answers, "the held lookup did not answer"
                return answers[0]

            return finish_thread
        task = asyncio.create_task(cache.lookup(user_id))
        await asyncio.wait_for(self.outage.async_held.wait(), EVENT_WAIT_SECONDS)

        async def finish_task() -> LookupResult:
            self.outage.async_release.set()
            return await task

        return finish_task

    @property
    def breaker_closed(self) -> bool:
        return self.cache.breakers[""].closed  # a single server: one breaker, node ""


@pytest.fixture(params=["sync", "async"])
async def twin(request: pytest.FixtureRequest, fake_server: fakeredis.FakeServer) -> AsyncIterator[OutageTwin]:
    outage_, events, clock = Outage(), list[CacheEvent](), Clock()
    policy = CachePolicy(cooldown_seconds=COOLDOWN)
    cache: CacheAside | AsyncCacheAside
    if request.param == "sync":
        cache = CacheAside(
            OutageRedis(server=fake_server, outage=outage_), sqlite_database(0.001), policy, notify=events.append
        )
    else:
        client = OutageAsyncRedis(server=fake_server, outage=outage_)
        cache = AsyncCacheAside(client, async_sqlite_database(0.001), policy, notify=events.append)
    cache.breakers = CircuitBreakers(COOLDOWN, clock)
    yield OutageTwin(request.param, cache, outage_, events, clock)
    outage_.release.set()
    outage_.async_release.set()
    if isinstance(cache, CacheAside):
        cache.client.close()
    else:
        await cache.client.aclose()


async def recover_from_an_outage(twin: OutageTwin) -> None:
    """Redis times out (the breaker opens, announced), comes back, and after the cool-down the probe finds it."""
    twin.outage.down = TIMEOUT
    assert (await twin.lookup(2)).degraded
    assert twin.events == [outage(TIMEOUT)]
    twin.outage.down = None
    twin.clock.now += COOLDOWN
    probe = await twin.lookup(3)
    assert (probe.degraded, probe.stored) == (False, True)
    assert twin.events == [outage(TIMEOUT), RECOVERED]


async def test_a_call_sent_before_the_recovery_that_fails_after_it_announces_no_new_outage(twin: OutageTwin) -> None:
    finish = await twin.start_held_lookup(1)  # its read is on the wire, sent while the breaker was closed
    await recover_from_an_outage(twin)

    late = await finish()  # the read sent before the recovery times out only now
    assert (late.source, late.degraded) == (Source.DATABASE, True)  # answered from the database all the same
    assert twin.events == [outage(TIMEOUT), RECOVERED]  # not "unavailable" again right after "recovered"
    assert twin.breaker_closed
    after = await twin.lookup(4)  # Redis is used, not kept off for a cool-down it does not need
    assert (after.source, after.degraded, after.stored) == (Source.DATABASE, False, True)
    assert (await twin.lookup(4)).source is Source.CACHE

    twin.outage.down = REFUSED  # a failure of a call made after the recovery is a new outage
    assert (await twin.lookup(5)).degraded
    assert twin.events == [outage(TIMEOUT), RECOVERED, outage(REFUSED)]
    assert not twin.breaker_closed


async def test_a_failure_after_a_recovery_of_a_call_that_began_after_it_is_announced(twin: OutageTwin) -> None:
    """The other side: the DEL of an update (sent without asking the breaker) and a lookup, each failing after a
    recovery, each start a new outage."""
    await recover_from_an_outage(twin)
    twin.outage.down = REFUSED
    await twin.update(7)
    assert twin.events == [outage(TIMEOUT), RECOVERED, outage(REFUSED)]
    assert not twin.breaker_closed

    twin.outage.down = None
    twin.clock.now += COOLDOWN
    assert not (await twin.lookup(8)).degraded
    twin.outage.down = TIMEOUT
    assert (await twin.lookup(9)).degraded
    assert twin.events == [outage(TIMEOUT), RECOVERED, outage(REFUSED), RECOVERED, outage(TIMEOUT)]


# --- 2. a load that reaches its time limit ---
@pytest.fixture(params=["sync", "async"])
def twin_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


async def test_a_load_that_reaches_its_time_limit_with_lookups_in_flight_says_so_and_not_interrupted(
    sync_client: redis.Redis, async_client: redis.asyncio.Redis, twin_name: str
) -> None:
    """The time limit passes on the run's clock while the first lookup is in flight; it answers once the
    progress line that waits for it is out. Then the summary."""
    base = make_twin(twin_name, sync_client, async_client)
    clock = Clock()
    run = LoadRun(LoadPlan(100, concurrency=1, seconds=0.5), TEST_DB_SIZE, clock=clock)
    notes: list[LoadProgress] = []
    stopping, astopping = threading.Event(), asyncio.Event()

    def on_progress(progress: LoadProgress) -> None:
        notes.append(progress)
        if progress.stopping:
            stopping.set()
            astopping.set()

    def reach_the_time_limit() -> None:
        clock.now = 0.5  # the limit, on the run's clock; a progress line is not due before 1.0
        assert run.next_id() is None  # a worker asking for an id now is told the load is over
        clock.now = 1.0  # a progress line is due: the load is waiting for this lookup

    class Held:
        async def lookup(self, user_id: int) -> LookupResult:
            reach_the_time_limit()
            await asyncio.wait_for(astopping.wait(), EVENT_WAIT_SECONDS)
            cache = base.cache
            assert isinstance(cache, AsyncCacheAside)
            return await cache.lookup(user_id)

    class SyncHeld:
        def lookup(self, user_id: int) -> LookupResult:
            reach_the_time_limit()
            assert stopping.wait(EVENT_WAIT_SECONDS)
            cache = base.cache
            assert isinstance(cache, CacheAside)
            return cache.lookup(user_id)

    report: LoadReport
    if twin_name == "sync":
        sync_held: Any = SyncHeld()
        report = run_load(sync_held, run, on_progress)
    else:
        async_held: Any = Held()
        report = await arun_load(async_held, run, on_progress)

    assert report.ended is LoadEnd.TIME_LIMIT
    assert (report.lookups, report.errors) == (1, 0)
    waiting = [note for note in notes if note.stopping]
    assert waiting, notes
    line = render_load_progress(waiting[0])
    assert line == (
        "Load reached its time limit after 0 of 100 lookups (hit ratio n/a): waiting for the 1 in flight to end..."
    )
    summary = render_load_report(report, False)
    assert "stopped at its time limit (0.5 s)" in summary.splitlines()[0]
    assert "interrupted" not in summary
