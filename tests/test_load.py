"""The traffic simulator (`load N`): its Zipf sampler, its tally, both shells, and the prompt command.

The pure parts are checked with exact numbers (a fake clock, known samples, a grid of
uniform draws instead of random ones); the shells run real lookups through both twins on
fakeredis and a SQLite file with a millisecond of database latency; the real scripts are
stopped by Ctrl-C at a terminal and by SIGTERM mid-load. Nothing waits for time to pass:
a test that needs a load under way waits for its first progress line, an event.
"""

from __future__ import annotations

import asyncio
import io
import json
import math
import random
import re
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pexpect
import pytest
import redis

import main
import main_async
from cli.commands import Invalid, Load, order_of, parse_command
from cli.messages import describe_failure
from cli.summaries import render_load_progress, render_load_report
from config.database import DatabaseError
from simulator import load
from simulator._async.load import run_load as arun_load
from simulator._sync.load import run_load
from simulator.load import ZIPF_TABLE_IDS, LoadEnd, LoadPlan, LoadProgress, LoadReport, LoadRun, ZipfSampler
from simulator.policy import CachePolicy
from simulator.results import LookupResult, Source
from simulator.simulate_cache_db_flow import CacheAside
from tests.conftest import PROJECT_ROOT
from tests.test_e2e import (
    EXPECT_SECONDS,
    SCRIPTS,
    assert_clean,
    ctrl_c_as_at_a_terminal,
    script_env,
    start_script,
    stderr_lines,
)
from tests.twins import EVENT_WAIT_SECONDS, TEST_DB_SIZE, Twin, make_twin, sqlite_database

# --- the Zipf sampler ---


def _grid(sampler: ZipfSampler, points: int) -> Counter[int]:
    """The ids at evenly spaced points of the cumulative distribution: its exact shape, without randomness."""
    return Counter(sampler.draw((index + 0.5) / points) for index in range(points))


def test_the_same_seed_draws_the_same_ids_and_another_seed_others() -> None:
    sampler = ZipfSampler(100_000, 1.1)

    def draws(seed: int) -> list[int]:
        source = random.Random(seed)
        return [sampler.sample(source) for _ in range(1000)]

    assert draws(7) == draws(7)
    assert draws(7) != draws(8)


def test_a_runs_ids_depend_on_its_seed_alone_not_on_its_concurrency() -> None:
    def ids(plan: LoadPlan) -> list[int | None]:
        run = LoadRun(plan, 50_000, started=0.0, clock=lambda: 0.0)
        return [run.next_id() for _ in range(plan.lookups)]

    assert ids(LoadPlan(500, seed=3, concurrency=1)) == ids(LoadPlan(500, seed=3, concurrency=200))
    assert ids(LoadPlan(500, seed=3)) != ids(LoadPlan(500, seed=4))


@pytest.mark.parametrize("exponent", [0.5, 1.0, 1.1, 2.0])
def test_id_1_is_the_most_popular_and_popularity_falls_with_the_id(exponent: float) -> None:
    counts = _grid(ZipfSampler(1000, exponent), 100_000)
    assert counts.most_common(1)[0][0] == 1
    assert counts[1] > counts[2] > counts[3] > counts[10] > counts[100]


def test_the_share_of_each_id_is_its_weight_over_the_total() -> None:
    counts = _grid(ZipfSampler(4, 1.0), 120_000)  # weights 1, 1/2, 1/3, 1/4: shares 12/25, 6/25, 4/25, 3/25
    assert {user_id: counts[user_id] / 120_000 for user_id in counts} == pytest.approx(
        {1: 12 / 25, 2: 6 / 25, 3: 4 / 25, 4: 3 / 25}, abs=1e-4
    )


def test_exponent_0_is_uniform() -> None:
    counts = _grid(ZipfSampler(10, 0.0), 10_000)
    assert counts == dict.fromkeys(range(1, 11), 1000)


@pytest.mark.parametrize("exponent", [0.0, 0.8, 1.0, 1.1, 3.0])
def test_the_tail_past_the_table_weighs_what_its_ids_weigh(exponent: float) -> None:
    population = 3 * ZIPF_TABLE_IDS
    sampler = ZipfSampler(population, exponent)
    exact_total = math.fsum(k**-exponent for k in range(1, population + 1))
    exact_tail = math.fsum(k**-exponent for k in range(ZIPF_TABLE_IDS + 1, population + 1))
    assert sampler.total_weight == pytest.approx(exact_total, rel=1e-9)
    tail_share = sum(count for user_id, count in _grid(sampler, 200_000).items() if user_id > ZIPF_TABLE_IDS)
    assert tail_share / 200_000 == pytest.approx(exact_tail / exact_total, abs=2e-5)


@pytest.mark.parametrize("population", [1, 2, 7, ZIPF_TABLE_IDS, ZIPF_TABLE_IDS + 1, 1_000_000_000])
@pytest.mark.parametrize("exponent", [0.0, 0.5, 1.0, 1.1, 5.0])
def test_every_id_drawn_is_in_the_database(population: int, exponent: float) -> None:
    sampler = ZipfSampler(population, exponent)
    source = random.Random(1)
    drawn = [sampler.sample(source) for _ in range(2000)]
    edges = [sampler.draw(0.0), sampler.draw(math.nextafter(1.0, 0.0)), sampler.draw(1.0)]
    assert all(1 <= user_id <= population for user_id in drawn + edges)
    assert edges[0] == 1


def test_a_billion_users_are_all_reachable_and_the_table_stays_small() -> None:
    sampler = ZipfSampler(1_000_000_000, 0.0)
    assert sampler.draw(0.999_999_999_5) > 999_000_000
    assert len(sampler._cumulative) == ZIPF_TABLE_IDS  # 800 KB, whatever DB_SIZE is


@pytest.mark.parametrize(("population", "exponent"), [(0, 1.1), (10, -0.1), (10, 5.1), (10, math.nan)])
def test_a_sampler_refuses_what_it_cannot_draw_from(population: int, exponent: float) -> None:
    with pytest.raises(ValueError, match="population"):
        ZipfSampler(population, exponent)


# --- the running tally and the summary math ---


class FakeClock:
    """A clock the test moves by hand: perf_counter readings, seconds since the run started."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _result(source: Source, milliseconds: float, *, shared: bool = False, degraded: bool = False) -> LookupResult:
    return LookupResult(7, "user-7", source, None, None, milliseconds / 1000, shared=shared, degraded=degraded)


def test_the_summary_counts_add_up_and_its_percentiles_are_those_of_the_samples() -> None:
    clock = FakeClock()
    run = LoadRun(LoadPlan(20), 1000, started=clock.now, clock=clock)
    answers = [
        _result(Source.CACHE, 1),
        _result(Source.CACHE, 2),
        _result(Source.CACHE, 3),
        _result(Source.NEGATIVE_CACHE, 4),
        _result(Source.DATABASE, 10),
        _result(Source.DATABASE, 30, shared=True),  # answered by another lookup's read
        _result(Source.NOT_FOUND, 20),
        _result(Source.DATABASE, 40, degraded=True),  # the cache was down: still a database read
    ]
    for answer in answers:
        run.record(answer)
    refused, timed_out = redis.ConnectionError("Connection refused"), redis.TimeoutError("Timeout reading")
    run.failed(refused)
    run.failed(timed_out)
    report = run.report(clock.now + 2)
    assert (report.lookups, report.hits, report.misses) == (8, 4, 4)
    assert report.hits + report.misses == report.lookups
    assert report.database_reads == 3
    assert report.saved == report.lookups - report.database_reads == 5
    assert (report.shared, report.degraded, report.errors) == (1, 1, 2)
    assert report.first_error is refused
    assert report.hit_ratio == 0.5
    assert report.hit_latency_ms == pytest.approx({"p50": 2, "p95": 4, "p99": 4})  # nearest rank of 1, 2, 3, 4
    assert report.miss_latency_ms == pytest.approx({"p50": 20, "p95": 40, "p99": 40})  # of 10, 20, 30, 40
    assert report.elapsed_seconds == 2
    assert report.rate == 4


def test_the_hit_ratio_is_bucketed_by_the_second_each_lookup_ended_in() -> None:
    clock = FakeClock()
    run = LoadRun(LoadPlan(20), 1000, started=clock.now, clock=clock)
    for offset, source in [(0.2, Source.DATABASE), (0.9, Source.CACHE), (1.5, Source.CACHE), (3.1, Source.CACHE)]:
        clock.now = 100.0 + offset
        run.record(_result(source, 1))
    report = run.report(clock.now)
    assert [(second.lookups, second.hits) for second in report.by_second] == [(2, 1), (1, 1), (0, 0), (1, 1)]
    assert report.hit_ratio_by_second == [0.5, 1.0, None, 1.0]  # None: no lookup ended in that second


def test_a_run_hands_out_as_many_ids_as_asked_then_completes() -> None:
    clock = FakeClock()
    run = LoadRun(LoadPlan(3), 1000, started=clock.now, clock=clock)
    assert [run.next_id() is not None for _ in range(5)] == [True, True, True, False, False]
    assert run.report(clock.now).ended is LoadEnd.COMPLETED


def test_a_run_whose_ids_were_all_handed_out_completes_even_when_its_last_lookups_end_late() -> None:
    clock = FakeClock()
    run = LoadRun(LoadPlan(2, seconds=1), 1000, started=clock.now, clock=clock)
    assert run.next_id() is not None
    assert run.next_id() is not None
    clock.now += 5  # the last lookups took longer than the time limit
    assert run.next_id() is None
    assert run.report(clock.now).ended is LoadEnd.COMPLETED


def test_a_run_stops_handing_out_ids_at_its_time_limit() -> None:
    clock = FakeClock()
    run = LoadRun(LoadPlan(1000, seconds=2), 1000, started=clock.now, clock=clock)
    assert run.next_id() is not None
    clock.now += 1.999
    assert run.next_id() is not None
    clock.now += 0.001
    assert run.next_id() is None
    assert run.report(clock.now).ended is LoadEnd.TIME_LIMIT


def test_a_stop_request_ends_the_handing_out_and_the_first_reason_stays() -> None:
    run = LoadRun(LoadPlan(1000), 1000, started=0.0, clock=lambda: 0.0)
    assert run.next_id() is not None
    run.request_stop()
    run.request_stop(LoadEnd.INTERRUPTED)
    assert run.stop_requested
    assert run.next_id() is None
    assert run.report(0.0).ended is LoadEnd.STOPPED


def test_a_progress_line_is_due_once_a_second() -> None:
    clock = FakeClock()
    run = LoadRun(LoadPlan(10), 1000, started=clock.now, clock=clock)
    for _ in range(3):
        assert run.next_id() is not None
    run.record(_result(Source.CACHE, 1))
    run.record(_result(Source.DATABASE, 1))
    assert run.progress_due(100.5) is None
    assert run.seconds_to_next_progress(100.5) == pytest.approx(0.5)
    progress = run.progress_due(101.0)
    assert progress == LoadProgress(done=2, requested=10, hits=1, errors=0, elapsed_seconds=1.0, in_flight=1)
    assert (progress.hit_ratio, progress.rate) == (0.5, 2.0)
    assert run.progress_due(101.5) is None
    assert run.progress_due(102.0) is not None


@pytest.mark.parametrize(
    "plan",
    [
        {"lookups": 0},
        {"lookups": 1_000_001},
        {"lookups": 5, "zipf": -0.1},
        {"lookups": 5, "zipf": 5.5},
        {"lookups": 5, "concurrency": 0},
        {"lookups": 5, "concurrency": 1001},
        {"lookups": 5, "seconds": 0},
        {"lookups": 5, "seconds": 3601},
        {"lookups": 5, "seed": -1},
    ],
)
def test_a_plan_out_of_bounds_is_refused(plan: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="is outside"):
        LoadPlan(**plan)


# --- both shells, on fakeredis and a SQLite file with a millisecond of latency ---


@pytest.fixture(params=["sync", "async"])
def twin(request: pytest.FixtureRequest, sync_client: redis.Redis, async_client: redis.asyncio.Redis) -> Twin:
    return make_twin(request.param, sync_client, async_client)


async def run_through(twin: Twin, run: LoadRun, cache: Any = None, **options: Any) -> LoadReport:
    """The twin's shell: worker threads (blocking this test's loop, which nothing else uses), or tasks."""
    if twin.name == "sync":
        return run_load(cache or twin.cache, run, **options)
    return await arun_load(cache or twin.cache, run, **options)


def ids_of(plan: LoadPlan, population: int) -> list[int]:
    """The ids a run of `plan` looks up: the same seed hands out the same ids."""
    replica = LoadRun(plan, population, started=0.0, clock=lambda: 0.0)
    return [user_id for _ in range(plan.lookups) if (user_id := replica.next_id()) is not None]


async def test_a_load_looks_each_missed_id_up_in_the_database_once_and_its_report_adds_up(
    twin: Twin, sync_client: redis.Redis
) -> None:
    plan = LoadPlan(500, concurrency=20, seed=5)
    report = await run_through(twin, LoadRun(plan, TEST_DB_SIZE))
    distinct = set(ids_of(plan, TEST_DB_SIZE))
    assert report.ended is LoadEnd.COMPLETED
    assert (report.lookups, report.errors, report.degraded) == (500, 0, 0)
    assert report.hits + report.misses == report.lookups
    assert report.database_reads == len(distinct) == twin.database_reads  # single-flight: one read per id missed
    assert report.saved == report.lookups - report.database_reads
    assert report.misses == report.database_reads + report.shared  # a miss read, or shared another's read
    assert sum(second.lookups for second in report.by_second) == 500
    assert {int(key.removeprefix(b"user-")) for key in sync_client.scan_iter()} == distinct
    assert twin.cache.stats.snapshot().lookups == 500  # the session's `stats` counts them too
    assert all(value is not None for value in report.hit_latency_ms.values())


async def test_a_load_on_a_warm_cache_reads_the_database_for_nothing(twin: Twin) -> None:
    plan = LoadPlan(300, concurrency=10)
    await run_through(twin, LoadRun(plan, TEST_DB_SIZE))
    again = await run_through(twin, LoadRun(plan, TEST_DB_SIZE))
    assert (again.hits, again.database_reads, again.saved) == (300, 0, 300)
    assert again.hit_ratio_by_second[0] == 1.0


class StopAfter:
    """A cache that requests the run's stop when its `count`-th lookup answers (sync or async alike)."""

    def __init__(self, twin: Twin, run: LoadRun, count: int) -> None:
        self.cache, self.run, self.count = twin.cache, run, count
        self.answered = 0
        self._lock = threading.Lock()

    def _answered(self) -> None:
        with self._lock:
            self.answered += 1
            if self.answered == self.count:
                self.run.request_stop()

    def lookup(self, user_id: int) -> LookupResult:
        result = self.cache.lookup(user_id)
        self._answered()
        return result

    async def alookup(self, user_id: int) -> LookupResult:
        result = await self.cache.lookup(user_id)
        self._answered()
        return result


class AsyncFace:
    """`StopAfter` as an async cache."""

    def __init__(self, inner: StopAfter) -> None:
        self.inner = inner

    async def lookup(self, user_id: int) -> LookupResult:
        return await self.inner.alookup(user_id)


async def test_a_stop_request_mid_run_ends_with_a_summary_of_what_ran(twin: Twin) -> None:
    run = LoadRun(LoadPlan(100_000, concurrency=8), TEST_DB_SIZE)
    stopper = StopAfter(twin, run, 50)
    report = await run_through(twin, run, stopper if twin.name == "sync" else AsyncFace(stopper))
    assert report.ended is LoadEnd.STOPPED
    assert report.lookups == stopper.answered  # every lookup that answered is counted, none after the workers left
    assert 50 <= report.lookups < 50 + 8  # those in flight at the stop still end
    assert report.hits + report.misses == report.lookups
    assert report.saved == report.lookups - report.database_reads


class Failing:
    """A cache whose every third lookup raises: a Redis error, then a database one, alternately."""

    def __init__(self, twin: Twin) -> None:
        self.cache = twin.cache
        self.calls = 0
        self._lock = threading.Lock()

    def _fails(self) -> Exception | None:
        with self._lock:
            self.calls += 1
            calls = self.calls
        if calls % 3:
            return None
        return redis.ConnectionError("Connection refused") if calls % 6 else DatabaseError("database is locked")


class SyncFailing(Failing):
    def lookup(self, user_id: int) -> LookupResult:
        if error := self._fails():
            raise error
        return self.cache.lookup(user_id)


class AsyncFailing(Failing):
    async def lookup(self, user_id: int) -> LookupResult:
        if error := self._fails():
            raise error
        return await self.cache.lookup(user_id)


async def test_failed_lookups_are_counted_as_errors_and_the_load_goes_on(twin: Twin) -> None:
    failing = SyncFailing(twin) if twin.name == "sync" else AsyncFailing(twin)
    report = await run_through(twin, LoadRun(LoadPlan(90, concurrency=1), TEST_DB_SIZE), failing)
    assert (report.lookups, report.errors) == (60, 30)
    assert report.first_error is not None
    assert describe_failure(report.first_error).startswith("Redis error: ")
    assert "\n" not in describe_failure(report.first_error)
    assert report.ended is LoadEnd.COMPLETED


async def test_progress_is_reported_while_a_load_runs(twin: Twin) -> None:
    """The fifth lookup waits for a progress line saying four are done (an event, however long a second takes)."""
    progress: list[LoadProgress] = []
    four_sync, four_async = threading.Event(), asyncio.Event()

    def on_progress(line: LoadProgress) -> None:
        progress.append(line)
        if line.done >= 4:
            four_sync.set()
            four_async.set()

    class Held:
        def __init__(self) -> None:
            self.calls = 0

        def lookup(self, user_id: int) -> LookupResult:
            self.calls += 1
            if self.calls == 5:
                assert four_sync.wait(timeout=EVENT_WAIT_SECONDS)
            return twin.cache.lookup(user_id)

    class AsyncHeld(Held):
        async def lookup(self, user_id: int) -> LookupResult:
            self.calls += 1
            if self.calls == 5:
                await asyncio.wait_for(four_async.wait(), EVENT_WAIT_SECONDS)
            return await twin.cache.lookup(user_id)

    cache = Held() if twin.name == "sync" else AsyncHeld()
    report = await run_through(twin, LoadRun(LoadPlan(10, concurrency=1), TEST_DB_SIZE), cache, on_progress=on_progress)
    assert report.lookups == 10
    held = [line for line in progress if line.done == 4]  # one worker: four answered, the fifth held for this line
    assert held
    assert held[0].requested == 10
    assert [line.done for line in progress] == sorted(line.done for line in progress)
    assert render_load_progress(held[0]).startswith("Load: 4 of 10 lookups, hit ratio so far 0.0%, ")


async def test_a_cancelled_async_load_stops_its_workers_and_its_run_reports_what_ran(
    sync_client: redis.Redis, async_client: redis.asyncio.Redis
) -> None:
    twin = make_twin("async", sync_client, async_client)
    run = LoadRun(LoadPlan(100_000, concurrency=8), TEST_DB_SIZE)
    reached = asyncio.Event()

    class Counting:
        answered = 0

        async def lookup(self, user_id: int) -> LookupResult:
            result: LookupResult = await twin.cache.lookup(user_id)
            Counting.answered += 1
            if Counting.answered == 20:
                reached.set()
            return result

    task = asyncio.create_task(arun_load(Counting(), run))
    await reached.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    answered = Counting.answered
    for _ in range(50):
        await asyncio.sleep(0)  # turns of the loop: a worker left running would answer again in them
    assert Counting.answered == answered
    report = run.report(time.perf_counter())
    assert report.ended is LoadEnd.INTERRUPTED
    assert report.lookups == answered >= 20


def test_ctrl_c_in_the_sync_shell_lets_the_lookups_in_flight_end_and_the_run_reports_them(
    sync_client: redis.Redis,
) -> None:
    """Threads cannot be cancelled: the shell says it waits for them, and waits (the caller closes the database)."""
    cache = CacheAside(sync_client, sqlite_database(0.001), CachePolicy())
    run = LoadRun(LoadPlan(100_000, concurrency=4), TEST_DB_SIZE)
    release = threading.Event()
    main_thread = threading.main_thread().ident
    assert main_thread is not None
    notes: list[LoadProgress] = []

    def on_progress(progress: LoadProgress) -> None:
        notes.append(progress)
        if progress.stopping:
            release.set()

    class CtrlC:
        answered = 0
        lock = threading.Lock()

        def lookup(self, user_id: int) -> LookupResult:
            result = cache.lookup(user_id)
            with CtrlC.lock:
                CtrlC.answered += 1
                now = CtrlC.answered
            if now == 20:
                signal.pthread_kill(main_thread, signal.SIGINT)  # as a person's Ctrl-C reaches the main thread
            if now >= 20:  # no worker ends the load before the interrupt is handled
                assert release.wait(timeout=EVENT_WAIT_SECONDS)
            return result

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # even where SIGINT is ignored (CI)
    try:
        with pytest.raises(KeyboardInterrupt):
            run_load(CtrlC(), run, on_progress)
    finally:
        signal.signal(signal.SIGINT, previous)
        release.set()
    assert notes[-1].stopping
    assert 1 <= notes[-1].in_flight <= 4
    assert "waiting for the " in render_load_progress(notes[-1])
    assert not any(thread.name == "load" and thread.is_alive() for thread in threading.enumerate())  # all joined
    report = run.report(time.perf_counter())
    assert report.ended is LoadEnd.INTERRUPTED
    assert 20 <= report.lookups == CtrlC.answered < 20 + 4  # the lookups in flight ended, and are counted


# --- the prompt command, through both entry points ---


@pytest.mark.parametrize(
    ("typed", "plan"),
    [
        ("load 2000", LoadPlan(2000)),
        ("LOAD 10 --zipf 0.8", LoadPlan(10, zipf=0.8)),
        (
            "load 1000000 --concurrency=1000 --seconds 0.5 --seed 42",
            LoadPlan(1_000_000, concurrency=1000, seconds=0.5, seed=42),
        ),
        ("load\t5\t--seconds\t3600 --zipf 0", LoadPlan(5, zipf=0.0, seconds=3600)),
    ],
)
def test_load_commands_accepted(typed: str, plan: LoadPlan) -> None:
    assert parse_command(typed) == Load(plan)


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        ("load", "Not a load command"),
        ("load 0", "Not a load command"),
        ("load 1000001", "Not a load command"),
        ("load ten", "Not a load command"),
        ("load -5", "Not a load command"),
        ("load 5 --zipf", "--zipf takes a number from 0 to 5"),
        ("load 5 --zipf nan", "--zipf takes a number from 0 to 5"),
        ("load 5 --zipf 1e3", "--zipf takes a number from 0 to 5"),
        ("load 5 --concurrency 0", "--concurrency takes a whole number from 1 to 1,000"),
        ("load 5 --concurrency 2.5", "--concurrency takes a whole number from 1 to 1,000"),
        ("load 5 --seconds 0", "--seconds takes a number from 0.1 to 3,600"),
        ("load 5 --seconds 7200", "--seconds takes a number from 0.1 to 3,600"),
        ("load 5 --seed x", "--seed takes a whole number from 0 to 4,294,967,295"),
        ("load 5 --workers 3", '"--workers" (no such option)'),
        ("load 5 --zipf 1 --zipf 2", '"--zipf" (it was given twice)'),
        ("load 5 6", '"6" (no such option)'),
    ],
)
def test_bad_load_arguments_give_one_line_that_says_what_is_accepted(typed: str, says: str) -> None:
    command = parse_command(typed)
    assert isinstance(command, Invalid)
    assert says in command.message
    assert "Type load <lookups 1-1,000,000> [--zipf 0-5] [--concurrency 1-1,000]" in command.message
    assert "\n" not in command.message


def test_a_load_spans_every_key_with_its_concurrency_in_flight() -> None:
    assert order_of(parse_command("load 100 --concurrency 30")) == (None, 30)


TWINS = {"sync": main, "async": main_async}
DEMO = ["--redis-url", "memory://", "--seed-mode", "none", "--db-latency", "0.001"]


def run_main(twin: str, argv: list[str], typed: bytes) -> tuple[int, list[str], list[str]]:
    out, err = io.StringIO(), io.StringIO()
    code = TWINS[twin].main(argv, stdin=io.BytesIO(typed), stdout=out, stderr=err)
    return code, out.getvalue().splitlines(), err.getvalue().splitlines()


@pytest.mark.parametrize("name", ["sync", "async"])
def test_the_load_command_answers_one_json_object_and_stats_counts_its_lookups(name: str) -> None:
    code, out, err = run_main(name, [*DEMO, "--json"], b"load 300 --concurrency 10 --seed 9\nstats\nload 2 --zipf 9\n")
    assert code == 0
    answers = [json.loads(line) for line in out]  # stdout holds answers only: notes went to stderr
    kinds = [next(iter(answer)) for answer in answers]
    assert sorted(kinds) == ["error", "load", "stats"]  # the async twin answers bad input at once
    assert kinds.index("load") < kinds.index("stats")
    by_kind = {kind: answer[kind] for answer in answers for kind in answer}
    summary, stats, error = by_kind["load"], by_kind["stats"], by_kind["error"]
    assert summary["lookups"] == stats["lookups"] == 300  # `stats` waited for the load, in the async twin too
    assert summary["hits"] + summary["misses"] == 300
    assert summary["saved"] == 300 - summary["database_reads"]
    assert summary["database_reads"] == len(set(ids_of(LoadPlan(300, seed=9), TEST_DB_SIZE)))
    assert summary["users"] == TEST_DB_SIZE
    assert summary["ended"] == "completed"
    assert sum(summary["lookups_by_second"]) == 300
    assert len(summary["hit_ratio_by_second"]) == len(summary["lookups_by_second"])
    assert "--zipf takes a number from 0 to 5" in error
    assert any(line.startswith(f"Load: 300 lookups of users 1..{TEST_DB_SIZE:,} (Zipf 1.1, seed 9)") for line in err)


@pytest.mark.parametrize("name", ["sync", "async"])
def test_the_human_summary_says_what_ran(name: str) -> None:
    code, out, _ = run_main(name, DEMO, b"load 200 --concurrency 5\nload 200 --concurrency 5\n")
    assert code == 0
    assert out[0].startswith("Load: 200 of 200 lookups answered in ")
    assert "completed; Zipf 1.1 over users 1..10,000, 5 at once, seed 1" in out[0]
    warm = out[len(out) // 2 :]
    assert warm[0].startswith("Load: 200 of 200 lookups answered in ")
    assert warm[1] == "  hit ratio 100.0%: 200 hits, 0 misses"
    assert warm[2] == "  database reads: 0; saved: 200 lookups answered without reading the database (100.0%)"


# --- the summary's text ---


def _report(**changes: Any) -> LoadReport:
    fields: dict[str, Any] = {
        "plan": LoadPlan(1000, seconds=30),
        "population": 100_000,
        "lookups": 1000,
        "hits": 800,
        "misses": 200,
        "database_reads": 150,
        "shared": 50,
        "degraded": 0,
        "errors": 0,
        "first_error": None,
        "elapsed_seconds": 2.0,
        "ended": LoadEnd.COMPLETED,
        "by_second": (load.SecondTally(400, 250), load.SecondTally(600, 550)),
        "hit_latency_ms": {"p50": 0.4, "p95": 1.0, "p99": 2.0},
        "miss_latency_ms": {"p50": 12.0, "p95": 15.0, "p99": 30.0},
    }
    return LoadReport(**{**fields, **changes})


def test_the_human_summary_reads_as_measured() -> None:
    assert render_load_report(_report(), json_output=False).splitlines() == [
        "Load: 1,000 of 1,000 lookups answered in 2.00 s (500 lookups/s), completed; "
        "Zipf 1.1 over users 1..100,000, 50 at once, seed 1",
        "  hit ratio 80.0%: 800 hits, 200 misses",
        "  database reads: 150; saved: 850 lookups answered without reading the database (85.0%)",
        "  stampedes absorbed: 50 lookups answered by another lookup's database read",
        "  errors: 0; degraded: 0 answered without the cache",
        "  hit latency:  p50 0.4 ms, p95 1.0 ms, p99 2.0 ms",
        "  miss latency: p50 12 ms, p95 15 ms, p99 30 ms",
        "  hit ratio second by second: 62% 92%",
    ]


def test_how_a_load_ended_is_said() -> None:
    assert "stopped at its time limit (30 s)" in render_load_report(_report(ended=LoadEnd.TIME_LIMIT), False)
    interrupted = render_load_report(
        _report(ended=LoadEnd.INTERRUPTED, errors=2, first_error=redis.ConnectionError("Connection refused")), False
    )
    assert "interrupted: this is what ran" in interrupted
    first = "Redis error: connection refused (nothing is listening there)"
    assert f"  errors: 2 (the first: {first}); degraded: 0 answered without the cache" in interrupted


def test_a_long_run_shows_its_hit_ratio_in_windows_and_json_keeps_every_second() -> None:
    seconds = tuple(load.SecondTally(10, hits) for hits in [0, 10] * 45)  # 90 seconds
    report = _report(by_second=seconds)
    timeline = render_load_report(report, False).splitlines()[-1]
    assert timeline == "  hit ratio every 3 s: " + " ".join(["33%", "67%"] * 15)
    assert json.loads(render_load_report(report, True))["load"]["hit_ratio_by_second"] == [0.0, 1.0] * 45


def test_a_second_without_an_answer_shows_as_a_dash() -> None:
    report = _report(by_second=(load.SecondTally(5, 5), load.SecondTally(0, 0), load.SecondTally(5, 0)))
    assert render_load_report(report, False).splitlines()[-1] == "  hit ratio second by second: 100% - 0%"
    assert json.loads(render_load_report(report, True))["load"]["hit_ratio_by_second"] == [1.0, None, 0.0]


# --- the real scripts: Ctrl-C at a terminal, SIGTERM through pipes, in the middle of a load ---

LONG_LOAD = "load 1000000 --seconds 600 --concurrency 20"
RUNNING = r"Load: [\d,]+ of 1,000,000 lookups, hit ratio so far"  # a progress line: the load is under way


@pytest.mark.e2e
@pytest.mark.parametrize("script", SCRIPTS)
def test_ctrl_c_at_a_terminal_during_a_load_prints_what_ran_then_exits_130(script: str, tmp_path: Path) -> None:
    child = pexpect.spawn(
        sys.executable,
        [str(PROJECT_ROOT / script), "--redis-url", "memory://", "--seed-mode", "none", "--db-latency", "0.001"],
        cwd=str(tmp_path),
        env=script_env(),
        timeout=EXPECT_SECONDS,
        encoding="utf-8",
        codec_errors="replace",
        preexec_fn=ctrl_c_as_at_a_terminal,
    )
    try:
        child.expect("user id>")
        child.sendline(LONG_LOAD)
        child.expect(RUNNING)
        child.sendcontrol("c")
        child.expect(r"Load: [\d,]+ of 1,000,000 lookups answered in [\d.]+ s .*, interrupted: this is what ran")
        child.expect("Stats: ")  # the summary of the load comes first, then the session's
        child.expect("Interrupted.")
        child.expect(pexpect.EOF)
        assert "Traceback" not in (child.before or "")
    finally:
        child.close(force=True)
    assert child.exitstatus == 130


@pytest.mark.e2e
@pytest.mark.parametrize("script", SCRIPTS)
def test_sigterm_during_a_piped_load_prints_what_ran_as_json_then_exits_143(script: str, tmp_path: Path) -> None:
    process = start_script(
        script, "--redis-url", "memory://", "--seed-mode", "none", "--db-latency", "0.001", "--json", cwd=tmp_path
    )
    assert process.stdin is not None
    assert process.stderr is not None
    try:
        process.stdin.write(LONG_LOAD.encode() + b"\n")
        process.stdin.flush()  # stdin stays open: the script waits for more input after the load
        seen = []
        while not re.match(RUNNING, seen[-1] if seen else ""):
            line = process.stderr.readline().decode()
            assert line, "".join(seen)
            seen.append(line)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=EXPECT_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
    assert process.returncode == 143
    summary = json.loads(out.decode().splitlines()[-1])["load"]  # stdout: the summary alone, as JSON
    assert summary["ended"] == "interrupted"
    assert summary["lookups"] > 0
    assert summary["hits"] + summary["misses"] == summary["lookups"]
    assert stderr_lines(err)[-1] == "Terminated by SIGTERM."
    assert_clean(err)
