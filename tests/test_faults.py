"""Truth under faults: what the demo promises when Redis, the database or another client misbehaves.

Each test is a finding of an adversarial run, written as the behaviour it now guarantees, in
both twins (docs/failures.md states the promises).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
import redis
import redis.asyncio

from simulator.core import LEASE_HELD, LEASE_PREFIX, MAX_LEASE_BYTES, MAX_LEASE_MS, CachePolicy, Source
from simulator.records import encode_record, user_record
from tests.twins import Twin, make_twin


@pytest.fixture(params=["sync", "async"])
def twin(request: pytest.FixtureRequest, sync_client: redis.Redis, async_client: redis.asyncio.Redis) -> Twin:
    return make_twin(request.param, sync_client, async_client, CachePolicy())


async def call(twin: Twin, method: str, *arguments: object) -> object:
    """Call a shell method of either twin."""
    outcome = getattr(twin.cache, method)(*arguments)
    return await outcome if asyncio.iscoroutine(outcome) else outcome


# --- `clear` removes only keys of the exact shapes the demo writes ---


async def test_clear_leaves_keys_outside_the_id_range_the_demo_serves(twin: Twin, sync_client: redis.Redis) -> None:
    ours = ["user-1", "user-42", "user-1000000000"]  # 1..MAX_USER_ID, as the demo names them
    others = ["user-1000000001", "user-99999999999999999999", "user-0", "user-042", "user-00", "user-4 2"]
    for key in ours + others:
        sync_client.set(key, "x", ex=60)
    assert await call(twin, "clear") == len(ours)
    assert sorted(key.decode() for key in sync_client.scan_iter()) == sorted(others)


# --- a lookup never waits longer than the lease bound, and never downloads a value again and again ---


@pytest.fixture
def server_client(redis_url: str) -> Iterator[redis.Redis]:
    """A plain client of the test's private redis-server, for setting up and inspecting."""
    with redis.Redis.from_url(redis_url) as client:
        yield client


@pytest.fixture(params=["sync", "async"])
async def twin_on_server(
    request: pytest.FixtureRequest, redis_url: str, server_client: redis.Redis
) -> AsyncIterator[tuple[str, redis.Redis, redis.asyncio.Redis]]:
    async_client = redis.asyncio.Redis.from_url(redis_url)
    yield request.param, server_client, async_client
    await async_client.aclose()


def scripts_run(client: redis.Redis) -> int:
    """The scripts (EVALSHA) the server has run since its stats were reset: a lookup's read with the TTL,
    its claims and its store. (A NOSCRIPT answer, before a script is first loaded, is not counted.)"""
    stats = client.info("commandstats").get("cmdstat_evalsha", {})
    return int(stats.get("calls", 0)) - int(stats.get("failed_calls", 0)) - int(stats.get("rejected_calls", 0))


@pytest.mark.integration
@pytest.mark.parametrize("size", [MAX_LEASE_BYTES + 1, 1_000_000])
async def test_a_value_too_long_to_be_a_lease_is_replaced_not_waited_for(
    twin_on_server: tuple[str, redis.Redis, redis.asyncio.Redis], size: int
) -> None:
    name, client, async_client = twin_on_server
    forged = LEASE_PREFIX + b"x" * (size - len(LEASE_PREFIX) - 2) + b'"}'
    client.set("user-42", forged, px=MAX_LEASE_MS)  # a life any lookup's lease could have
    twin = make_twin(name, client, async_client, CachePolicy())
    client.config_resetstat()
    result = await twin.lookup(42)
    assert (result.source, result.stored) == (Source.DATABASE, True)
    assert client.get("user-42") == encode_record(user_record(42)).encode()
    assert scripts_run(client) == 3  # the read; the claim that replaced it, at once; the store


class JumpingClock:
    """A clock on which each reading is `step` seconds after the last: every claim seems to take that long."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


@pytest.mark.integration
async def test_waiting_for_another_lookups_lease_is_bounded_in_time_not_in_polls(
    twin_on_server: tuple[str, redis.Redis, redis.asyncio.Redis],
) -> None:
    """Another process's lease that never ends in a store: the wait ends after a lease's life on the
    clock, however few polls that is (here each reading of the clock is 2 s after the last)."""
    name, client, async_client = twin_on_server
    client.set("user-42", LEASE_PREFIX + b'0123456789abcdef"}', px=MAX_LEASE_MS)
    policy = CachePolicy(lease_seconds=5.0, wait_poll_seconds=0.001, clock=JumpingClock(2.0))
    twin = make_twin(name, client, async_client, policy)
    client.config_resetstat()
    result = await twin.lookup(42)
    assert (result.source, result.not_cached, result.stored) == (Source.DATABASE, LEASE_HELD, False)
    assert scripts_run(client) <= 5  # the read, and a few claims in 5 s at 2 s a reading, not 5 s / 1 ms of them
    assert client.get("user-42") == LEASE_PREFIX + b'0123456789abcdef"}'  # another's lease is left alone
