"""Every failure path of the cache-aside lookup, through both twins, with the same assertions.

Each test runs once per twin (the `twin` fixture). The twin's Redis client is a fakeredis
client that fails on command: `twin.faults.fail("GET", error)` makes every GET it sends
raise `error` (a GET alone, or inside a pipeline), until `twin.faults.heal()`. The
commands are named as Redis names them ("GET", "PTTL", "DEL"), the three one-key scripts
by what they do ("EVALSHA read", "EVALSHA claim", "EVALSHA store"). `twin.faults.sent`
lists every command the twin sent, so "the breaker kept it off Redis" is counted, not
timed. The breakers run on a clock the test moves: a cool-down ends when the test says.

What a failure means (config.redis_failures.cache_failure): Redis unavailable -> answered from the
database, degraded, the node's breaker opens; out of memory -> answered, "not cached";
WRONGTYPE on a read -> a corrupt entry, repaired; anything else Redis answers (an ACL
refusal) -> raised to the caller, the breaker untouched. A change to how one twin handles
any of these fails here for that twin.
"""

from __future__ import annotations

import errno
import hashlib
import inspect
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import fakeredis
import pytest
import redis

from cli.answers import warning_of
from config.redis_failures import failure_reason
from simulator._async.database import AsyncDatabase
from simulator._sync.database import Database
from simulator.breaker import CacheEvent, CircuitBreakers
from simulator.entries import LEASE_PREFIX
from simulator.policy import CachePolicy
from simulator.records import Problem, encode_record, user_record
from simulator.results import STALE_COPY, LookupResult, Source, TtlReport, UpdateReport
from simulator.scripts import CLAIM_SCRIPT, READ_WITH_TTL_SCRIPT, STORE_SCRIPT
from simulator.simulate_cache_db_flow import AsyncCacheAside, CacheAside
from simulator.watch import PendingInvalidations
from tests.twins import async_sqlite_database, sqlite_database

LATENCY = 0.001  # the database's, in seconds
COOLDOWN = 5.0  # the breakers' cool-down, on the test's clock

# --- the failures, by what they mean ---

UNAVAILABLE = {
    "ConnectionError": redis.ConnectionError("Error 111 connecting to localhost:6379. Connection refused."),
    "TimeoutError": redis.TimeoutError("Timeout reading from socket"),
    "OSError": OSError(errno.EHOSTUNREACH, "No route to host"),  # the socket's own, not a RedisError
}
REFUSED = {
    "NoPermissionError": redis.exceptions.NoPermissionError("NOPERM this user has no permissions to run the command"),
    "ResponseError NOPERM": redis.ResponseError("NOPERM this user has no permissions"),
    "ReadOnlyError": redis.exceptions.ReadOnlyError("You can't write against a read only replica."),
}
WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
OUT_OF_MEMORY = "OOM command not allowed when used memory > 'maxmemory'."

# The two ways a lookup reads a key: a plain GET, or (a key's first read in the process) GET and PTTL in one script.
READS = ["GET", "EVALSHA read"]
FILL_SCRIPTS = ["EVALSHA claim", "EVALSHA store"]

SCRIPTS = {"EVALSHA read": READ_WITH_TTL_SCRIPT, "EVALSHA claim": CLAIM_SCRIPT, "EVALSHA store": STORE_SCRIPT}
SCRIPT_NAMES = {  # SHA1 -> name: EVALSHA names a script by its SHA1
    hashlib.sha1(script.encode(), usedforsecurity=False).hexdigest(): name for name, script in SCRIPTS.items()
}


def fresh(error: Exception) -> Exception:
    """A new instance of `error` (the same type and arguments): each test raises its own."""
    return type(error)(*error.args)


def command_name(arguments: Sequence[Any]) -> str:
    """The command's name as Redis has it ("GET", "DEL", ...), or "EVALSHA claim" for the claim script (by its SHA1)."""
    command = str(arguments[0]).upper()
    if command == "EVALSHA":
        return SCRIPT_NAMES.get(str(arguments[1]), "EVALSHA ?")
    return command


@dataclass
class Faults:
    """Which commands fail and with what error, and every command the twin sent."""

    failing: dict[str, Exception] = field(default_factory=dict)
    sent: list[str] = field(default_factory=list)
    fired: list[str] = field(default_factory=list)

    def fail(self, command: str, error: Exception) -> Exception:
        """From now on `command` raises `error` (returned, to check it is the one the caller sees)."""
        self.failing[command] = error
        return error

    def heal(self) -> None:
        self.failing.clear()

    def send(self, arguments: Sequence[Any]) -> None:
        """One command is sent on its own: record it; raise its error if it is made to fail."""
        command = command_name(arguments)
        self.sent.append(command)
        if (error := self.failing.get(command)) is not None:
            self.fired.append(command)
            raise error

    def send_pipeline(self, stack: Sequence[tuple[Any, Any]]) -> dict[int, Exception]:
        """A pipeline is sent: a connection failure fails it whole (raised here); an error Redis
        answers with is that command's reply (returned, by position), as Redis does."""
        replies: dict[int, Exception] = {}
        for position, (arguments, _) in enumerate(stack):
            command = command_name(arguments)
            self.sent.append(command)
            if (error := self.failing.get(command)) is not None:
                self.fired.append(command)
                if not isinstance(error, redis.ResponseError):
                    raise error
                replies[position] = error
        return replies


def with_error_replies(replies: list[Any], errors: dict[int, Exception], raise_on_error: bool) -> list[Any]:
    replies = [errors.get(position, reply) for position, reply in enumerate(replies)]
    if raise_on_error:
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
    return replies


class FaultyRedis(fakeredis.FakeRedis):
    """The sync twin's client: fakeredis, with the failures `faults` asks for."""

    def __init__(self, *arguments: Any, faults: Faults, **options: Any) -> None:
        super().__init__(*arguments, **options)
        self.faults = faults

    def execute_command(self, *arguments: Any, **options: Any) -> Any:
        self.faults.send(arguments)
        return super().execute_command(*arguments, **options)

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        return FaultyPipeline(super().pipeline(transaction, shard_hint), self.faults)


class FaultyPipeline:
    def __init__(self, pipeline: Any, faults: Faults) -> None:
        self._pipeline = pipeline
        self._faults = faults

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pipeline, name)

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        errors = self._faults.send_pipeline(self._pipeline.command_stack)
        return with_error_replies(self._pipeline.execute(raise_on_error=False), errors, raise_on_error)


class FaultyAsyncRedis(fakeredis.FakeAsyncRedis):
    """The async twin's client: fakeredis, with the failures `faults` asks for."""

    def __init__(self, *arguments: Any, faults: Faults, **options: Any) -> None:
        super().__init__(*arguments, **options)
        self.faults = faults

    async def execute_command(self, *arguments: Any, **options: Any) -> Any:
        self.faults.send(arguments)
        return await super().execute_command(*arguments, **options)

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        return FaultyAsyncPipeline(super().pipeline(transaction, shard_hint), self.faults)


class FaultyAsyncPipeline(FaultyPipeline):
    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        errors = self._faults.send_pipeline(self._pipeline.command_stack)
        return with_error_replies(await self._pipeline.execute(raise_on_error=False), errors, raise_on_error)


# --- the twins ---


class Clock:
    """The breakers' clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class FaultyTwin:
    """A twin on a failing client, behind async methods; `events` is what its `notify` heard."""

    name: str
    cache: CacheAside | AsyncCacheAside
    database: Database | AsyncDatabase
    faults: Faults
    events: list[CacheEvent]
    clock: Clock

    async def call(self, method: str, *arguments: object) -> Any:
        outcome = getattr(self.cache, method)(*arguments)
        return await outcome if inspect.isawaitable(outcome) else outcome

    async def lookup(self, user_id: int) -> LookupResult:
        result: LookupResult = await self.call("lookup", user_id)
        return result

    async def ttl(self, user_id: int) -> TtlReport:
        report: TtlReport = await self.call("ttl", user_id)
        return report

    async def update(self, user_id: int) -> UpdateReport:
        report: UpdateReport = await self.call("update", user_id)
        return report

    @property
    def database_reads(self) -> int:
        return self.database.reads.value

    @property
    def breaker_open(self) -> bool:
        return not self.cache.breakers[""].closed  # a single server: one breaker, node ""


@pytest.fixture(params=["sync", "async"])
async def twin(
    request: pytest.FixtureRequest, fake_server: fakeredis.FakeServer, sync_client: redis.Redis
) -> AsyncIterator[FaultyTwin]:
    for script in SCRIPTS.values():  # loaded, as a first lookup leaves them: `sent` lists no SCRIPT LOAD
        sync_client.script_load(script)
    faults, events, clock = Faults(), list[CacheEvent](), Clock()
    policy = CachePolicy(cooldown_seconds=COOLDOWN)
    cache: CacheAside | AsyncCacheAside
    if request.param == "sync":
        cache = CacheAside(
            FaultyRedis(server=fake_server, faults=faults), sqlite_database(LATENCY), policy, notify=events.append
        )
    else:
        async_client = FaultyAsyncRedis(server=fake_server, faults=faults)
        cache = AsyncCacheAside(async_client, async_sqlite_database(LATENCY), policy, notify=events.append)
    cache.breakers = CircuitBreakers(COOLDOWN, clock)
    yield FaultyTwin(request.param, cache, cache.database, faults, events, clock)
    if isinstance(cache, CacheAside):
        cache.client.close()
    else:
        await cache.client.aclose()


async def arrange_read(twin: FaultyTwin, sync_client: redis.Redis, read: str, user_id: int) -> None:
    """Make the twin's next read of `user_id` send `read`, on an empty key; then forget what was sent.

    A key's first read in a process is the read script (it checks the key has an expiry); once
    the twin has stored the key itself, it knows, and reads it with a plain GET.
    """
    if read == "GET":
        await twin.lookup(user_id)
        sync_client.delete(f"user-{user_id}")
    twin.faults.sent.clear()


def cached_bytes(client: redis.Redis, key: str) -> bytes | None:
    """What the key holds now (the test's own client, which no fault touches)."""
    value = client.get(key)
    assert value is None or isinstance(value, bytes)
    return value


def outage(error: Exception) -> CacheEvent:
    """The one event a breaker opened by `error` announces."""
    return CacheEvent(False, failure_reason(error), COOLDOWN, "")


# --- 1. the cache is unavailable while reading ---


@pytest.mark.parametrize("read", READS)
@pytest.mark.parametrize("error", UNAVAILABLE.values(), ids=UNAVAILABLE.keys())
async def test_an_unavailable_read_is_answered_from_the_database_and_opens_the_breaker(
    twin: FaultyTwin, sync_client: redis.Redis, read: str, error: Exception
) -> None:
    await arrange_read(twin, sync_client, read, 7)
    error = twin.faults.fail(read, fresh(error))
    reads = twin.database_reads
    result = await twin.lookup(7)
    assert twin.faults.fired == [read]
    assert (result.source, result.record) == (Source.DATABASE, user_record(7))
    assert (result.degraded, result.stored, warning_of(result)) == (True, False, None)
    assert twin.database_reads == reads + 1
    assert twin.faults.sent == [read]  # no claim, no store: nothing was written
    assert sync_client.exists("user-7") == 0
    assert twin.breaker_open
    assert twin.events == [outage(error)]

    twin.faults.sent.clear()
    again = await twin.lookup(8)  # within the cool-down
    assert (again.source, again.record, again.degraded) == (Source.DATABASE, user_record(8), True)
    assert twin.faults.sent == []  # Redis was not asked at all
    assert twin.events == [outage(error)]  # told once, not per lookup
    assert twin.cache.stats.snapshot().degraded == 2


@pytest.mark.parametrize("error", UNAVAILABLE.values(), ids=UNAVAILABLE.keys())
async def test_after_the_cool_down_one_probe_finds_redis_back_and_closes_the_breaker(
    twin: FaultyTwin, sync_client: redis.Redis, error: Exception
) -> None:
    error = twin.faults.fail("EVALSHA read", fresh(error))
    assert (await twin.lookup(7)).degraded
    twin.faults.heal()
    twin.clock.now += COOLDOWN
    result = await twin.lookup(7)
    assert (result.source, result.degraded, result.stored) == (Source.DATABASE, False, True)
    assert not twin.breaker_open
    assert twin.events == [outage(error), CacheEvent(True, node="")]
    assert sync_client.get("user-7") == encode_record(user_record(7)).encode()


# --- 2. the key holds another type ---


@pytest.mark.parametrize("read", READS)
async def test_a_wrongtype_read_is_a_corrupt_entry_repaired_not_an_outage(
    twin: FaultyTwin, sync_client: redis.Redis, read: str
) -> None:
    await arrange_read(twin, sync_client, read, 9)
    twin.faults.fail(read, redis.ResponseError(WRONGTYPE))
    result = await twin.lookup(9)
    assert twin.faults.fired == [read]
    assert (result.source, result.record) == (Source.DATABASE, user_record(9))
    assert warning_of(result) == f"ignored a corrupt cache entry ({Problem.WRONG_TYPE.value}); repaired it"
    assert (result.degraded, result.stored) == (False, True)
    assert twin.faults.sent == [read, "EVALSHA claim", "EVALSHA store"]
    assert sync_client.get("user-9") == encode_record(user_record(9)).encode()
    assert not twin.breaker_open
    assert twin.events == []


# --- 3. Redis refuses the read (an ACL, say) ---


@pytest.mark.parametrize("read", READS)
@pytest.mark.parametrize("error", REFUSED.values(), ids=REFUSED.keys())
async def test_a_refused_read_is_raised_to_the_caller_not_taken_for_an_outage(
    twin: FaultyTwin, sync_client: redis.Redis, read: str, error: Exception
) -> None:
    """The path a one-sided change broke: the async twin answered a refusal as "cache down"."""
    await arrange_read(twin, sync_client, read, 7)
    error = twin.faults.fail(read, fresh(error))
    reads, lookups = twin.database_reads, twin.cache.stats.snapshot().lookups
    with pytest.raises(type(error)) as raised:
        await twin.lookup(7)
    assert raised.value is error
    assert twin.faults.fired == [read]
    assert twin.database_reads == reads  # no degraded answer from the database
    assert twin.cache.stats.snapshot().lookups == lookups
    assert sync_client.exists("user-7") == 0
    assert not twin.breaker_open
    assert twin.events == []

    twin.faults.heal()
    twin.faults.sent.clear()
    result = await twin.lookup(7)  # at once, no cool-down: Redis is asked again
    assert twin.faults.sent[0] == read
    assert (result.source, result.degraded, result.stored) == (Source.DATABASE, False, True)


# --- 4. Redis is full ---


@pytest.mark.parametrize("script", FILL_SCRIPTS)
async def test_a_full_redis_answers_from_the_database_with_not_cached(
    twin: FaultyTwin, sync_client: redis.Redis, script: str
) -> None:
    error = twin.faults.fail(script, redis.exceptions.OutOfMemoryError(OUT_OF_MEMORY))
    result = await twin.lookup(7)
    assert twin.faults.fired == [script]
    assert (result.source, result.record) == (Source.DATABASE, user_record(7))
    assert warning_of(result) == f"not cached: {failure_reason(error)}"
    assert "out of memory" in warning_of(result)
    assert (result.degraded, result.stored) == (False, False)
    assert twin.database_reads == 1
    assert twin.faults.sent[-1] == script  # nothing sent after it
    assert_nothing_stored_and_redis_still_trusted(twin, sync_client, script)


def assert_nothing_stored_and_redis_still_trusted(twin: FaultyTwin, sync_client: redis.Redis, script: str) -> None:
    """After a claim or store Redis answered with an error: no record in the cache (a store's lease is left
    to expire), the breaker closed, no event, no answer counted as degraded."""
    held = cached_bytes(sync_client, "user-7")
    if script == "EVALSHA claim":
        assert held is None
    else:
        assert held is not None
        assert held.startswith(LEASE_PREFIX)
    assert not twin.breaker_open
    assert twin.events == []
    assert twin.cache.stats.snapshot().degraded == 0


# --- 5. the cache becomes unavailable while filling ---


@pytest.mark.parametrize("script", FILL_SCRIPTS)
@pytest.mark.parametrize("error", UNAVAILABLE.values(), ids=UNAVAILABLE.keys())
async def test_an_unavailable_claim_or_store_is_answered_degraded_and_opens_the_breaker(
    twin: FaultyTwin, sync_client: redis.Redis, script: str, error: Exception
) -> None:
    error = twin.faults.fail(script, fresh(error))
    result = await twin.lookup(7)
    assert twin.faults.fired == [script]
    assert (result.source, result.record) == (Source.DATABASE, user_record(7))
    assert (result.degraded, result.stored, warning_of(result)) == (True, False, None)
    assert twin.database_reads == 1
    held = cached_bytes(sync_client, "user-7")
    assert held is None or held.startswith(LEASE_PREFIX)  # never the record
    assert twin.breaker_open
    assert twin.events == [outage(error)]

    twin.faults.sent.clear()
    again = await twin.lookup(8)  # within the cool-down
    assert (again.source, again.record, again.degraded) == (Source.DATABASE, user_record(8), True)
    assert twin.faults.sent == []
    assert twin.events == [outage(error)]


# --- 6. Redis refuses a script's write (a read-only replica, an ACL) ---


@pytest.mark.parametrize("script", FILL_SCRIPTS)
@pytest.mark.parametrize("error", REFUSED.values(), ids=REFUSED.keys())
async def test_a_refused_claim_or_store_answers_from_the_database_and_says_why_it_was_not_cached(
    twin: FaultyTwin, sync_client: redis.Redis, script: str, error: Exception
) -> None:
    """A replica or an ACL that refuses writes: every miss is still answered, from the database, and says so."""
    error = twin.faults.fail(script, fresh(error))
    result = await twin.lookup(7)
    assert twin.faults.fired == [script]
    assert (result.source, result.record) == (Source.DATABASE, user_record(7))
    assert warning_of(result) == f"not cached: {failure_reason(error)}"
    assert (result.degraded, result.stored) == (False, False)
    assert twin.database_reads == 1
    assert twin.faults.sent[-1] == script  # nothing sent after it
    assert_nothing_stored_and_redis_still_trusted(twin, sync_client, script)


def test_a_replica_is_named_as_one() -> None:
    assert failure_reason(fresh(REFUSED["ReadOnlyError"])) == "the server is a read-only replica (it refuses writes)"


# --- 7. ttl ---


@pytest.mark.parametrize("command", ["GET", "PTTL"])
@pytest.mark.parametrize("error", REFUSED.values(), ids=REFUSED.keys())
async def test_ttl_raises_a_refused_get_or_pttl(twin: FaultyTwin, command: str, error: Exception) -> None:
    await twin.lookup(7)  # the key holds a record
    error = twin.faults.fail(command, fresh(error))
    twin.faults.sent.clear()
    with pytest.raises(type(error)) as raised:
        await twin.ttl(7)
    assert raised.value is error
    assert twin.faults.sent == ["GET", "PTTL"]  # one pipeline
    assert twin.faults.fired == [command]


async def test_ttl_raises_when_the_cache_is_unavailable(twin: FaultyTwin) -> None:
    error = twin.faults.fail("GET", redis.ConnectionError("Connection closed by server."))
    with pytest.raises(redis.ConnectionError) as raised:
        await twin.ttl(7)
    assert raised.value is error


@pytest.mark.parametrize("how", ["a hash at the key", "GET answers WRONGTYPE"])
async def test_ttl_reports_a_wrong_type_key_instead_of_raising(
    twin: FaultyTwin, sync_client: redis.Redis, how: str
) -> None:
    if how == "a hash at the key":
        sync_client.hset("user-9", "id", "9")
        sync_client.expire("user-9", 60)
        longest = 60
    else:
        await twin.lookup(9)
        twin.faults.fail("GET", redis.ResponseError(WRONGTYPE))
        longest = 3600
    report = await twin.ttl(9)
    assert (report.key, report.state) == ("user-9", "corrupt")
    assert report.remaining_seconds is not None
    assert 0 < report.remaining_seconds <= longest
    assert twin.faults.fired == ([] if how == "a hash at the key" else ["GET"])


# --- 8. update ---


DELETE_FAILURES = {**UNAVAILABLE, **REFUSED}


@pytest.mark.parametrize("error", DELETE_FAILURES.values(), ids=DELETE_FAILURES.keys())
async def test_an_update_whose_delete_fails_commits_and_says_the_cache_was_not_invalidated(
    twin: FaultyTwin, sync_client: redis.Redis, error: Exception
) -> None:
    await twin.lookup(6)  # cached: the copy the update should remove
    error = twin.faults.fail("DEL", fresh(error))
    report = await twin.update(6)
    assert twin.faults.fired == ["DEL"]
    assert report.key == "user-6"
    assert report.record is not None
    assert report.record.version == user_record(6).version + 1
    assert sqlite_database(0).fetch(6) == report.record  # committed
    assert (report.invalidated, report.problem) == (False, failure_reason(error))
    assert report.problem  # a reason the user can read
    assert report.stale_for_seconds == 3600  # how long another reader may still get the old version
    assert sync_client.get("user-6") == encode_record(user_record(6)).encode()  # the stale copy is still there


@pytest.mark.parametrize("error", DELETE_FAILURES.values(), ids=DELETE_FAILURES.keys())
async def test_after_an_update_whose_delete_failed_the_old_version_is_never_answered(
    twin: FaultyTwin, sync_client: redis.Redis, error: Exception
) -> None:
    """The process that made the update never answers the version it replaced: each lookup of the id tries
    the DEL again first and, until one works, answers from the database and stores nothing."""
    old = encode_record(user_record(6)).encode()
    await twin.lookup(6)
    twin.faults.fail("DEL", fresh(error))
    report = await twin.update(6)
    new = report.record
    assert new is not None
    for _ in range(2):
        twin.clock.now += COOLDOWN  # past any cool-down: the cache is asked again, and still refuses the DEL
        twin.faults.fired.clear()
        again = await twin.lookup(6)
        assert twin.faults.fired == ["DEL"]
        assert (again.source, again.record, again.stored) == (Source.DATABASE, new, False)
        assert warning_of(again) == (None if again.degraded else f"not cached: {STALE_COPY.reason}")
        assert sync_client.get("user-6") == old  # left alone, never answered
    twin.faults.heal()
    twin.clock.now += COOLDOWN
    healed = await twin.lookup(6)  # the DEL works now: a miss that caches the new version
    assert (healed.source, healed.record, healed.stored) == (Source.DATABASE, new, True)
    assert sync_client.get("user-6") == encode_record(new).encode()
    assert (await twin.lookup(6)).source is Source.CACHE


async def test_the_old_version_is_answered_again_only_once_it_must_have_expired(
    twin: FaultyTwin, sync_client: redis.Redis
) -> None:
    """What a failed DEL left is kept off for the longest TTL a value can have, then trusted as usual."""
    await twin.lookup(6)
    twin.faults.fail("DEL", fresh(REFUSED["ReadOnlyError"]))
    await twin.update(6)
    twin.cache.invalidations = PendingInvalidations(3600, twin.clock)  # on the test's clock
    twin.cache.invalidations.failed(6)
    twin.clock.now += 3599
    assert (await twin.lookup(6)).source is Source.DATABASE
    twin.clock.now += 1  # any copy stored before the update has expired by now: what is there is newer
    sync_client.set("user-6", encode_record(user_record(6, 1)), ex=60)
    assert (await twin.lookup(6)).source is Source.CACHE
