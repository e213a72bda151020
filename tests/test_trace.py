"""The trace: each lookup's steps, named as in the flow diagram, with the command each sent and its time.

The paths of a lookup (a hit, a miss, a cached "not found", a corrupt entry, Redis down,
another lookup's lock, a fill shared in the process) run through both twins; then the
printed forms (human lines after the answer, a "steps" list in --json), the prompt's
`trace on` / `trace off` through the real entry points, and what a trace never holds (a
password) or costs when off (no step, no string, nothing). Times are only checked to be
there and, for the database read, at least its simulated latency: never bounded above.
"""

from __future__ import annotations

import asyncio
import io
import json
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import redis

import main
import main_async
from cli.answers import render_answer, render_trace_switch, warning_of
from cli.arguments import parse_command_line
from cli.commands import Invalid, SetTrace, parse_command
from config.redis import get_redis
from config.settings import Settings
from simulator import trace as tracing
from simulator._async import cache_aside as async_shell
from simulator._sync import cache_aside as sync_shell
from simulator.breaker import CacheEvent, CircuitBreakers
from simulator.entries import MISS, UNAVAILABLE, WRONG_TYPE, CachedEntry, encode_not_found, read_cached
from simulator.policy import CachePolicy
from simulator.records import Problem, UserRecord, encode_record, user_record
from simulator.results import BREAKER_OPEN, LEASE_HELD, LEASE_LOST, LookupResult, Source, StoreProblem
from simulator.scripts import CLAIM_SCRIPT, STORE_SCRIPT, Claim
from simulator.simulate_cache_db_flow import AsyncCacheAside, CacheAside
from simulator.trace import Step, Trace, TraceSwitch
from simulator.trace import tracing as trace_into
from tests.conftest import AsyncGatedDatabase, GatedDatabase
from tests.servers import RedisServer
from tests.test_e2e import assert_clean, run_script
from tests.twins import EVENT_WAIT_SECONDS, TEST_DB_SIZE, Twin, app_twin, await_until, make_twin, wait_until

LATENCY = 0.002  # the test database's simulated delay: milliseconds
MISS_STEPS = [
    tracing.CHECK_THE_CACHE,
    tracing.MISS,
    tracing.TAKE_THE_LOCK,
    tracing.READ_THE_DATABASE,
    tracing.STORE_WITH_TTL,
    tracing.ANSWER,
]
HIT_STEPS = [tracing.CHECK_THE_CACHE, tracing.HIT, tracing.ANSWER]


@pytest.fixture(params=["sync", "async"])
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def twin(name: str, sync_client: redis.Redis, async_client: redis.asyncio.Redis) -> Twin:
    return make_twin(name, sync_client, async_client, latency_seconds=LATENCY)


def lookup_traced(cache: CacheAside, user_id: int, trace: Trace) -> LookupResult:
    """One lookup of the sync twin, written down in `trace`."""
    with trace_into(trace):
        return cache.lookup(user_id)


async def alookup_traced(cache: AsyncCacheAside, user_id: int, trace: Trace) -> LookupResult:
    """One lookup of the async twin, written down in `trace`."""
    with trace_into(trace):
        return await cache.lookup(user_id)


async def traced_lookup(twin: Twin, user_id: int) -> tuple[LookupResult, Trace]:
    """One lookup through the twin, with a trace."""
    with trace_into(Trace()) as trace:
        assert trace is not None
        if isinstance(twin.cache, CacheAside):
            return twin.cache.lookup(user_id), trace
        return await twin.cache.lookup(user_id), trace


def names(trace: Trace) -> list[str]:
    return [step.name for step in trace.steps]


def commands(trace: Trace) -> list[str | None]:
    return [step.command for step in trace.steps]


def lease_shown(command: str | None) -> str:
    """The shortened lease in a claim or store command (`<lease 3f2a...>`)."""
    assert command is not None
    start = command.index("<lease ")
    return command[start : command.index(">", start) + 1]


# --- the paths of a lookup, through both twins ---


async def test_a_miss_checks_the_cache_takes_the_lock_reads_the_database_and_stores(twin: Twin) -> None:
    result, trace = await traced_lookup(twin, 5000)
    assert result.source is Source.DATABASE
    assert names(trace) == MISS_STEPS
    check, _, claim, read, store, _ = commands(trace)
    assert check == "EVALSHA <get+pttl> 1 user-5000"  # a key's first look in a process also reads its expiry
    assert claim is not None
    assert claim.startswith("EVALSHA <claim> 1 user-5000 <lease ")
    assert read == "SELECT ... FROM users WHERE id = ?  [5000]"
    assert store is not None
    assert store.startswith(
        f"EVALSHA <store> 1 user-5000 {lease_shown(claim)} {encode_record(user_record(5000))[:24]}..."
    )
    assert lease_shown(store) == lease_shown(claim)  # released by the store that overwrites that very lease
    assert all(step.seconds >= 0 for step in trace.steps)
    assert trace.steps[3].seconds >= LATENCY  # the read includes the simulated delay: a lower bound only
    assert sum(step.seconds for step in trace.steps) >= result.elapsed_seconds  # the steps cover the whole lookup


async def test_a_hit_is_one_get(twin: Twin) -> None:
    await twin.lookup(5000)
    result, trace = await traced_lookup(twin, 5000)
    assert result.source is Source.CACHE
    assert names(trace) == HIT_STEPS
    assert commands(trace) == ["GET user-5000", None, None]


async def test_a_remembered_not_found_is_a_hit_of_its_own(twin: Twin) -> None:
    missing = TEST_DB_SIZE + 1
    first, miss = await traced_lookup(twin, missing)
    again, hit = await traced_lookup(twin, missing)
    assert (first.source, again.source) == (Source.NOT_FOUND, Source.NEGATIVE_CACHE)
    assert names(miss) == MISS_STEPS
    assert (miss.steps[4].command or "").startswith(f"EVALSHA <store> 1 user-{missing} <lease ")
    assert (miss.steps[4].command or "").endswith(f"{encode_not_found(missing)[:24]}... 60")  # NEGATIVE_TTL
    assert names(hit) == [tracing.CHECK_THE_CACHE, tracing.HIT_NOT_FOUND, tracing.ANSWER]
    assert hit.steps[0].command == f"GET user-{missing}"


@pytest.mark.parametrize(
    ("corrupt", "problem"),
    [
        (lambda client: client.set("user-9", b"{oops", ex=60), "it is not JSON"),
        (lambda client: client.set("user-9", b"\xff\xfe", ex=60), "its bytes are not UTF-8"),
        (lambda client: client.hset("user-9", "id", "9"), "the key holds another Redis type"),
    ],
    ids=["not-json", "not-utf8", "wrong-type"],
)
async def test_a_corrupt_entry_is_named_then_replaced(
    twin: Twin, sync_client: redis.Redis, corrupt: Callable[[redis.Redis], object], problem: str
) -> None:
    corrupt(sync_client)
    result, trace = await traced_lookup(twin, 9)
    assert result.source is Source.DATABASE
    assert names(trace) == [
        tracing.CHECK_THE_CACHE,
        tracing.MISS_CORRUPT.format(problem=problem),
        tracing.TAKE_THE_LOCK,
        tracing.READ_THE_DATABASE,
        tracing.STORE_WITH_TTL,
        tracing.ANSWER,
    ]
    assert sync_client.get("user-9") == encode_record(user_record(9)).encode()


async def test_a_lost_lock_is_a_store_that_stored_nothing(twin: Twin, sync_client: redis.Redis) -> None:
    read = twin.database.fetch

    def deleted_meanwhile(user_id: int) -> UserRecord | None:  # an update's DEL lands during the read
        sync_client.delete(f"user-{user_id}")
        return read(user_id)

    async def adeleted_meanwhile(user_id: int) -> UserRecord | None:
        sync_client.delete(f"user-{user_id}")
        return await read(user_id)

    twin.database.fetch = deleted_meanwhile if twin.name == "sync" else adeleted_meanwhile
    result, trace = await traced_lookup(twin, 11)
    assert warning_of(result) == f"not cached: {LEASE_LOST.reason}"
    assert names(trace) == [*MISS_STEPS[:-1], tracing.NOT_STORED_LEASE_LOST, tracing.ANSWER]


async def test_another_processs_lock_is_waited_for_until_its_record_is_there(
    name: str, sync_client: redis.Redis, async_client: redis.asyncio.Redis
) -> None:
    sync_client.set("user-77", '{"lease":"0123456789abcdef"}', px=60_000)  # another process is reading user 77
    policy = CachePolicy(lease_seconds=30, wait_poll_seconds=0.005)
    twin = make_twin(name, sync_client, async_client, policy=policy, latency_seconds=LATENCY)
    trace = Trace()

    def waiting() -> bool:
        return tracing.WAIT_FOR_THE_LOCK in names(trace)

    def its_record_arrives() -> None:
        sync_client.set("user-77", encode_record(user_record(77)), ex=3600)

    if isinstance(twin.cache, CacheAside):
        done: list[LookupResult] = []

        def traced() -> None:
            with trace_into(trace):
                done.append(twin.cache.lookup(77))

        lookup = threading.Thread(target=traced)
        lookup.start()
        wait_until(waiting, "the lookup to ask for the lock")
        its_record_arrives()
        lookup.join(EVENT_WAIT_SECONDS)
        [result] = done
    else:

        async def atraced() -> LookupResult:
            with trace_into(trace):
                return await twin.cache.lookup(77)

        task = asyncio.create_task(atraced())
        await await_until(waiting, "the lookup to ask for the lock")
        its_record_arrives()
        result = await task
    assert result.source is Source.CACHE
    assert twin.database_reads == 0
    assert names(trace) == [
        tracing.CHECK_THE_CACHE,
        tracing.MISS_LOCKED,
        tracing.WAIT_FOR_THE_LOCK,  # however many times it asked: one step
        tracing.STORED_BY_ANOTHER,
        tracing.ANSWER,
    ]
    assert trace.steps[2].times >= 1
    assert trace.steps[2].label == (
        tracing.WAIT_FOR_THE_LOCK if trace.steps[2].times == 1 else f"wait for the lock (x{trace.steps[2].times})"
    )


async def test_a_lookup_of_an_id_being_filled_waits_for_that_fill(
    name: str, sync_client: redis.Redis, async_client: redis.asyncio.Redis
) -> None:
    first, second = Trace(), Trace()
    if name == "sync":
        database = GatedDatabase("users.db")
        cache = CacheAside(sync_client, database, CachePolicy())
        results: list[LookupResult] = []
        lookups = [
            threading.Thread(target=lambda t=t: results.append(lookup_traced(cache, 88, t))) for t in (first, second)
        ]
        lookups[0].start()
        assert database.read_done.wait(EVENT_WAIT_SECONDS)  # the first lookup's read is held: it is filling
        lookups[1].start()
        wait_until(lambda: cache.fills._flights.get(88) is not None, "the second lookup to wait for the fill")
        database.gate.set()
        for lookup in lookups:
            lookup.join(EVENT_WAIT_SECONDS)
        database.close()
    else:
        async_database = AsyncGatedDatabase("users.db")
        async_cache = AsyncCacheAside(async_client, async_database, CachePolicy())
        leader = asyncio.create_task(alookup_traced(async_cache, 88, first))
        await asyncio.wait_for(async_database.read_done.wait(), EVENT_WAIT_SECONDS)
        follower = asyncio.create_task(alookup_traced(async_cache, 88, second))
        await asyncio.sleep(0)  # its first step runs it up to the wait for the fill (nothing before it awaits I/O)
        async_database.gate.set()
        results = [await leader, await follower]
        await async_database.aclose()
    assert sorted(result.shared for result in results) == [False, True]
    assert names(first) == MISS_STEPS
    assert names(second) == [tracing.SKIP_THE_CACHE, tracing.WAITED_FOR_A_FILL, tracing.ANSWER]
    assert commands(second) == [None, None, None]  # it sent nothing: the first lookup's commands are in its trace


# --- Redis down ---


@pytest.fixture
async def down(name: str, free_port: int) -> AsyncIterator[Twin]:
    """A twin wired as the demo wires it, to a port nothing listens on; its breaker's clock never moves."""
    settings = Settings(
        redis_url=f"redis://:not-for-your-eyes@127.0.0.1:{free_port}/0",
        redis_configured=True,
        db_latency_seconds=LATENCY,
    )
    events: list[CacheEvent] = []
    twin = app_twin(name, settings, events)
    twin.cache.breakers = CircuitBreakers(5.0, lambda: 0.0)  # open until the test ends, however slow the machine
    yield twin
    clients = get_redis(settings)
    clients.close()
    await clients.aclose()


async def test_with_redis_down_a_lookup_says_the_cache_is_unavailable_and_reads_the_database(down: Twin) -> None:
    result, trace = await traced_lookup(down, 1)
    assert result.degraded
    assert result.record == user_record(1)
    assert names(trace) == [
        tracing.CHECK_THE_CACHE,  # sent, and refused
        tracing.CACHE_UNAVAILABLE,
        tracing.READ_THE_DATABASE,
        tracing.ANSWER,
    ]
    assert commands(trace)[0] == "EVALSHA <get+pttl> 1 user-1"
    again, resting = await traced_lookup(down, 1)
    assert again.degraded
    assert names(resting) == [tracing.CACHE_UNAVAILABLE, tracing.READ_THE_DATABASE, tracing.ANSWER]  # nothing sent
    for step in (*trace.steps, *resting.steps):
        assert "not-for-your-eyes" not in f"{step.name} {step.command}"
        assert "127.0.0.1" not in f"{step.name} {step.command}"


# --- what is printed ---


def _traced_result() -> tuple[LookupResult, Trace]:
    ticks = iter([0.0, 0.0004, 0.00041, 0.0005])
    trace = Trace(clock=lambda: next(ticks))
    trace.step(tracing.CHECK_THE_CACHE, "GET user-42")
    trace.step(tracing.HIT)
    trace.step(tracing.ANSWER)
    record = user_record(42)
    return LookupResult(42, "user-42", Source.CACHE, record, encode_record(record), 0.0005), trace


def test_human_output_is_the_answer_then_one_indented_line_per_step() -> None:
    result, trace = _traced_result()
    lines = render_answer(result, False, trace).splitlines()
    assert lines[0] == render_answer(result, False)
    assert lines[1:] == ["     0.4 ms  check the cache: GET user-42", "     0.0 ms  hit", "     0.1 ms  answer"]


def test_json_output_gets_a_steps_list_only_when_traced() -> None:
    result, trace = _traced_result()
    traced = json.loads(render_answer(result, True, trace))
    assert traced == {**json.loads(render_answer(result, True)), "steps": traced["steps"]}
    assert traced["steps"] == [
        {"step": "check the cache", "command": "GET user-42", "ms": 0.4},
        {"step": "hit", "command": None, "ms": 0.01},
        {"step": "answer", "command": None, "ms": 0.09},
    ]
    assert "steps" not in json.loads(render_answer(result, True))


def test_a_step_is_printed_safely() -> None:
    trace = Trace(clock=lambda: 0.0)
    trace.step(tracing.STORE_WITH_TTL, tracing.script_command(STORE_SCRIPT, "user-1", ["x", "\x1b[2J\u202eevil", 60]))
    record = user_record(1)
    result = LookupResult(1, "user-1", Source.DATABASE, record, encode_record(record), 0.0, stored=True)
    [_, line] = render_answer(result, False, trace).splitlines()
    assert line == r"     0.0 ms  store with TTL and release the lock: EVALSHA <store> 1 user-1 x \x1b[2J\u202eevil 60"


@pytest.mark.parametrize(
    ("on", "asked", "text"),
    [
        (True, False, "Trace on: each lookup also prints its steps, the command each sent, and the time each took."),
        (False, False, "Trace off."),
        (True, True, "Trace is on: each lookup also prints its steps (trace off stops it)."),
        (False, True, "Trace is off (trace on prints each lookup's steps)."),
    ],
)
def test_the_switch_says_what_it_did(on: bool, asked: bool, text: str) -> None:
    assert render_trace_switch(on, asked, False) == text
    assert json.loads(render_trace_switch(on, asked, True)) == {"trace": on}


# --- the prompt and the settings ---

TWINS = {"sync": main, "async": main_async}
DEMO = ["--redis-url", "memory://", "--seed-mode", "none", "--db-latency", str(LATENCY)]


def run_main(twin: str, argv: list[str], typed: bytes) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = TWINS[twin].main(argv, stdin=io.BytesIO(typed), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def answers(out: str) -> list[list[str]]:
    """The printed answers, each with its indented step lines (the async twin prints them as they complete)."""
    blocks: list[list[str]] = []
    for line in out.splitlines():
        if line.startswith("  "):
            blocks[-1].append(line)
        else:
            blocks.append([line])
    return blocks


def step_names(block: list[str]) -> list[str]:
    """The step names in an answer's step lines: `     0.3 ms  check the cache: GET user-42` -> `check the cache`."""
    return [line.split(" ms  ", 1)[1].split(": ", 1)[0] for line in block[1:]]


@pytest.mark.parametrize("twin_name", ["sync", "async"])
def test_trace_on_then_lookups_at_the_prompt_print_their_steps_and_trace_off_stops_them(twin_name: str) -> None:
    code, out, _ = run_main(twin_name, DEMO, b"trace\ntrace on\n5000\n5000\ntrace off\n5000\ntrace\n")
    assert code == 0
    blocks = answers(out)
    replies = [block for block in blocks if block[0].startswith("Trace")]
    assert [block[0] for block in replies][:2] == [
        "Trace is off (trace on prints each lookup's steps).",
        "Trace on: each lookup also prints its steps, the command each sent, and the time each took.",
    ]
    assert sorted(block[0] for block in replies[2:]) == [
        "Trace is off (trace on prints each lookup's steps).",
        "Trace off.",
    ]
    lookups = [block for block in blocks if not block[0].startswith("Trace")]
    assert [block[0].split(":")[0] for block in lookups] == ["Stored", "Found in cache", "Found in cache"]
    assert step_names(lookups[0]) == MISS_STEPS
    assert step_names(lookups[1]) == HIT_STEPS
    assert lookups[2] == lookups[2][:1]  # typed after trace off: the answer alone
    assert "  check the cache: GET user-5000" in lookups[1][1]


@pytest.mark.parametrize("twin_name", ["sync", "async"])
def test_the_trace_flag_with_json_puts_the_steps_in_each_answer(twin_name: str) -> None:
    code, out, _ = run_main(twin_name, [*DEMO, "--trace", "--json"], b"trace\n7\n7\n")
    assert code == 0
    trace_reply, miss, hit = (json.loads(line) for line in out.splitlines())
    assert trace_reply == {"trace": True}
    assert [step["step"] for step in miss["steps"]] == MISS_STEPS
    assert [step["step"] for step in hit["steps"]] == HIT_STEPS
    assert hit["steps"][0] == {"step": "check the cache", "command": "GET user-7", "ms": hit["steps"][0]["ms"]}
    assert all(set(step) == {"step", "command", "ms"} and step["ms"] >= 0 for step in miss["steps"] + hit["steps"])


@pytest.mark.parametrize("twin_name", ["sync", "async"])
def test_with_the_trace_off_no_step_is_printed(twin_name: str) -> None:
    code, out, _ = run_main(twin_name, DEMO, b"5000\n5000\n")
    assert code == 0
    assert [line.split(":")[0] for line in out.splitlines()] == ["Stored", "Found in cache"]
    code, out, _ = run_main(twin_name, [*DEMO, "--json"], b"5000\n")
    assert "steps" not in json.loads(out)


async def test_with_the_trace_off_a_lookup_writes_nothing_down(
    twin: Twin, sync_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(*arguments: object, **options: object) -> None:
        raise AssertionError("traced with the trace off")

    for shell in (sync_shell, async_shell):
        for helper in ("read_command", "script_command", "fetch_command"):  # claim_step only picks a constant
            monkeypatch.setattr(shell, helper, never)
    for method in ("step", "found", "claimed", "stored", "answered", "__init__"):
        monkeypatch.setattr(Trace, method, never)
    monkeypatch.setattr(Step, "__init__", never)
    sync_client.set("user-9", b"{oops", ex=60)
    for user_id in (5000, 5000, TEST_DB_SIZE + 1, TEST_DB_SIZE + 1, 9):  # a miss, a hit, not found twice, corrupt
        await twin.lookup(user_id)


def test_trace_is_parsed_at_the_prompt() -> None:
    assert parse_command("trace") == SetTrace(None)
    assert parse_command(" trace  on ") == SetTrace(True)
    assert parse_command("TRACE\tOff") == SetTrace(False)
    for line in ("trace yes", "trace on off", "trace 42"):
        command = parse_command(line)
        assert isinstance(command, Invalid)
        assert "trace on, trace off, or trace" in command.message


def test_the_switch_keeps_its_state() -> None:
    switch = TraceSwitch(False)
    assert (switch.set(None), switch.set(True), switch.set(None), switch.set(False)) == (False, True, True, False)


@pytest.mark.parametrize(("value", "on"), [("1", True), ("yes", True), ("0", False), ("off", False)])
def test_trace_is_a_boolean_setting_like_the_others(value: str, on: bool) -> None:
    assert Settings.from_env({"TRACE": value}).trace is on


def test_trace_is_off_unless_asked_for_and_the_flag_sets_it() -> None:
    assert Settings.from_env({}).trace is False
    for twin in ("sync", "async"):
        assert parse_command_line(["--trace"], twin).overrides == {"TRACE": "1"}


# --- the commands, shortened ---


@pytest.mark.parametrize(
    ("argument", "shown"),
    [
        ('{"lease":"0123456789abcdef"}', "<lease 0123...>"),
        (b'{"lease":"fedcba9876543210"}', "<lease fedc...>"),
        (b"", '""'),
        (5100, "5100"),
        ("short", "short"),
        ("x" * 30, "x" * 24 + "..."),
        (b"\xff\xfe", "\ufffd\ufffd"),
    ],
)
def test_arguments_are_shortened(argument: object, shown: str) -> None:
    assert tracing.shorten(argument) == shown


def test_a_script_is_named_by_what_it_does() -> None:
    lease = '{"lease":"0123456789abcdef"}'
    claim = tracing.script_command(CLAIM_SCRIPT, "user-42", [lease, 5100, "", b"", b'{"lease":"', 1_205_000])
    assert claim == "EVALSHA <claim> 1 user-42 <lease 0123...> 5100 ..."
    store = tracing.script_command(STORE_SCRIPT, "user-42", [lease, encode_record(user_record(42)), 3600])
    assert store == 'EVALSHA <store> 1 user-42 <lease 0123...> {"id":42,"name":"Jack Na... 3600'
    assert tracing.read_command("user-42", with_ttl=False) == "GET user-42"
    assert tracing.fetch_command(42) == "SELECT ... FROM users WHERE id = ?  [42]"


@pytest.mark.parametrize(
    ("cached", "step"),
    [
        (read_cached(encode_record(user_record(3)).encode(), 3), tracing.HIT),
        (read_cached(encode_not_found(3).encode(), 3), tracing.HIT_NOT_FOUND),
        (MISS, tracing.MISS),
        (read_cached(b'{"lease":"0123456789abcdef"}', 3), tracing.MISS_LOCKED),
        (read_cached(b"{oops", 3), "miss (corrupt entry: it is not JSON)"),
        (WRONG_TYPE, "miss (corrupt entry: the key holds another Redis type)"),
        (
            read_cached(encode_record(user_record(3)).encode(), 3, remaining_ms=-1),
            f"miss (corrupt entry: {Problem.NO_EXPIRY.value})",
        ),
        (UNAVAILABLE, tracing.CACHE_UNAVAILABLE),
    ],
)
def test_what_a_read_of_the_cache_found(cached: CachedEntry, step: str) -> None:
    assert tracing.verdict(cached) == step


LEASED = read_cached(b'{"lease":"0123456789abcdef"}', 3)


@pytest.mark.parametrize(
    ("seen", "claim", "step"),
    [
        (MISS, Claim("our lease"), None),  # ours: the next step, reading the database, says so
        (MISS, Claim(None, LEASED), tracing.LOCKED),
        (LEASED, Claim(None, LEASED), None),  # still locked: the next poll is counted into the one before
        (LEASED, Claim(None, read_cached(encode_record(user_record(3)).encode(), 3)), tracing.STORED_BY_ANOTHER),
        (MISS, Claim(None, problem=BREAKER_OPEN), tracing.CACHE_UNAVAILABLE),
        (MISS, Claim(None, problem=StoreProblem("Redis is out of memory", "full")), tracing.CACHE_FULL),
        (MISS, Claim(None, read_cached(b"{oops", 3)), "miss (corrupt entry: it is not JSON)"),
    ],
)
def test_what_a_claim_answered(seen: CachedEntry, claim: Claim, step: str | None) -> None:
    assert tracing.claim_outcome(seen, claim) == step
    assert tracing.claim_step(seen) == (tracing.WAIT_FOR_THE_LOCK if seen.leased else tracing.TAKE_THE_LOCK)


@pytest.mark.parametrize(
    ("problem", "step"),
    [
        (LEASE_LOST, tracing.NOT_STORED_LEASE_LOST),
        (BREAKER_OPEN, tracing.NOT_STORED_UNAVAILABLE),
        (LEASE_HELD, tracing.NOT_STORED_LEASE_HELD),
        (StoreProblem("Redis is out of memory", "full"), tracing.NOT_STORED_FULL),
    ],
)
def test_why_a_store_stored_nothing(problem: StoreProblem, step: str) -> None:
    assert tracing.not_stored(problem) == step


def test_a_joined_read_is_said_before_what_it_found() -> None:
    trace = Trace(clock=lambda: 0.0)
    trace.found(read_cached(encode_record(user_record(3)).encode(), 3), joined=True)
    assert names(trace) == [tracing.JOINED_A_READ, tracing.HIT]


def test_a_step_repeated_back_to_back_is_one_step_counted() -> None:
    ticks = iter([0.0, 1.0, 3.0, 6.0, 10.0])
    trace = Trace(clock=lambda: next(ticks))
    trace.step(tracing.WAIT_FOR_THE_LOCK, "EVALSHA <claim> 1 user-1 <lease aaaa...> 5100 ...")
    trace.step(tracing.WAIT_FOR_THE_LOCK, "EVALSHA <claim> 1 user-1 <lease bbbb...> 5100 ...")
    trace.step(tracing.WAIT_FOR_THE_LOCK, "EVALSHA <claim> 1 user-1 <lease cccc...> 5100 ...")
    trace.step(tracing.STORED_BY_ANOTHER)
    assert trace.steps == [
        Step(tracing.WAIT_FOR_THE_LOCK, "EVALSHA <claim> 1 user-1 <lease cccc...> 5100 ...", 6.0, times=3),
        Step(tracing.STORED_BY_ANOTHER, None, 4.0),
    ]
    assert trace.steps[0].label == "wait for the lock (x3)"


# --- never a secret ---


@pytest.mark.integration
@pytest.mark.parametrize("twin_name", ["sync", "async"])
def test_a_password_in_the_redis_url_never_appears_in_a_trace(
    twin_name: str, start_redis: Callable[..., RedisServer]
) -> None:
    password = "s3cret-Pa55word"
    server = start_redis("--requirepass", password)
    url = f"redis://:{password}@127.0.0.1:{server.port}/0"
    for json_flag in ([], ["--json"]):
        argv = ["--redis-url", url, "--seed-mode", "none", "--db-latency", str(LATENCY), "--trace", *json_flag]
        code, out, err = run_main(twin_name, argv, b"6000\n6000\n")
        assert code == 0
        assert out.count("check the cache") == 2
        assert password not in out + err
        assert "127.0.0.1" not in out  # no address either: only keys, values, leases and ids


@pytest.mark.e2e
def test_the_real_script_traces_with_trace_set_in_the_environment(tmp_path: Path) -> None:
    argv = ["--seed-mode", "none", "--redis-url", "memory://"]  # tmp_path holds the test's users.db
    done = run_script("main.py", argv, b"42\n42\n", tmp_path, TRACE="1", DB_LATENCY_SECONDS=str(LATENCY))
    assert done.returncode == 0
    assert_clean(done.stderr)
    blocks = answers(done.stdout.decode())
    assert [step_names(block) for block in blocks] == [MISS_STEPS, HIT_STEPS]
