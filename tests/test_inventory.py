"""What is in the cache (`cache`): the demo's keys counted by kind, exactly, and never another's.

Both shells (a blocking client, an asyncio one) read the same known key set on one
fakeredis server; a private redis-server shows the memory figure the embedded one cannot.
"""

from __future__ import annotations

import io
import json
import random

import pytest
import redis

import main
import main_async
from cli.commands import ShowCache, order_of, parse_command
from cli.summaries import render_inventory
from cli.text import format_bytes
from config.redis import get_redis
from config.settings import Settings
from simulator._async.inventory import take_inventory as atake_inventory
from simulator._sync.inventory import take_inventory
from simulator.entries import LEASE_PREFIX, encode_not_found
from simulator.inventory import HEAD_BYTES, CacheInventory, KeyKind, Survey, kind_of
from simulator.policy import CachePolicy
from simulator.records import encode_record, user_record
from simulator.results import Source
from tests.servers import RedisServer
from tests.twins import app_twin

LEASE = LEASE_PREFIX + b'0123456789abcdef"}'


async def inventory_of(
    name: str, sync_client: redis.Redis, async_client: redis.asyncio.Redis, policy: CachePolicy, **bounds: int
) -> CacheInventory:
    if name == "sync":
        return take_inventory(sync_client, policy, **bounds)
    return await atake_inventory(async_client, policy, **bounds)


@pytest.fixture(params=["sync", "async"])
def twin(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def fill(client: redis.Redis, prefix: str = "") -> None:
    """Known keys: 30 records, 7 tombstones, 3 leases, 2 values no demo process writes, and others' keys."""
    for user_id in range(1, 31):
        client.set(f"{prefix}user-{user_id}", encode_record(user_record(user_id)), ex=3600)
    for user_id in range(2_000_001, 2_000_008):
        client.set(f"{prefix}user-{user_id}", encode_not_found(user_id), ex=60)
    for user_id in (31, 32, 33):
        client.set(f"{prefix}user-{user_id}", LEASE, px=9000)
    client.hset(f"{prefix}user-34", "id", "34")  # another Redis type
    client.set(f"{prefix}user-35", encode_record(user_record(36)), ex=60)  # another user's record: corrupt
    for key in ("someone-elses-key", "user-", "user-0", "user-007", "user-5x", "xuser-5", "user-5:cart", "User-5"):
        client.set(key, "not the demo's", ex=60)


async def test_the_demo_keys_are_counted_by_kind_exactly_and_no_other_key(
    twin: str, sync_client: redis.Redis, async_client: redis.asyncio.Redis
) -> None:
    fill(sync_client)
    before = {key: sync_client.dump(key) for key in sync_client.scan_iter()}
    found = await inventory_of(twin, sync_client, async_client, CachePolicy())
    assert (found.records, found.not_found, found.leases, found.other) == (30, 7, 3, 2)
    assert found.keys == 42
    assert (found.pattern, found.capped) == ("user-*", False)
    assert {key: sync_client.dump(key) for key in sync_client.scan_iter()} == before  # it only reads


async def test_a_key_prefix_counts_only_its_namespace(
    twin: str, sync_client: redis.Redis, async_client: redis.asyncio.Redis
) -> None:
    fill(sync_client, prefix="demo:")
    fill(sync_client)  # the same keys outside the namespace
    found = await inventory_of(twin, sync_client, async_client, CachePolicy(key_prefix="demo:"))
    assert (found.records, found.not_found, found.leases, found.other) == (30, 7, 3, 2)
    assert found.pattern == "demo:user-*"


async def test_an_empty_cache_has_nothing_to_count(
    twin: str, sync_client: redis.Redis, async_client: redis.asyncio.Redis
) -> None:
    sync_client.set("someone-elses-key", "x")
    found = await inventory_of(twin, sync_client, async_client, CachePolicy())
    assert (found.keys, found.sampled, found.memory_bytes, found.payload_bytes) == (0, 0, None, None)
    assert render_inventory(found, False).startswith("Cache: no demo keys (user-*) in Redis; the scan took ")


async def test_the_scan_stops_at_its_limit_and_says_so(
    twin: str, sync_client: redis.Redis, async_client: redis.asyncio.Redis
) -> None:
    fill(sync_client)
    found = await inventory_of(twin, sync_client, async_client, CachePolicy(), limit=10)
    assert found.keys == 10
    assert found.capped
    text = render_inventory(found, False)
    assert text.startswith("Cache: at least 10 demo keys (user-*): ")
    assert "  the scan stopped at 10 keys: there are more, these counts are of those" in text.splitlines()


async def test_a_scan_of_exactly_the_limit_is_not_capped(
    twin: str, sync_client: redis.Redis, async_client: redis.asyncio.Redis
) -> None:
    for user_id in range(1, 11):
        sync_client.set(f"user-{user_id}", encode_record(user_record(user_id)), ex=60)
    found = await inventory_of(twin, sync_client, async_client, CachePolicy(), limit=10)
    assert (found.keys, found.capped) == (10, False)


async def test_a_sample_of_every_key_sums_their_bytes_exactly(
    twin: str, sync_client: redis.Redis, async_client: redis.asyncio.Redis
) -> None:
    values = {f"user-{user_id}": encode_record(user_record(user_id)) for user_id in (1, 2, 3)}
    for key, value in values.items():
        sync_client.set(key, value, ex=600)
    found = await inventory_of(twin, sync_client, async_client, CachePolicy())
    assert (found.sampled, found.estimated) == (3, False)
    assert found.payload_bytes == sum(len(key) + len(value) for key, value in values.items())


async def test_a_sample_of_some_keys_is_extrapolated_and_labelled_an_estimate(
    twin: str, sync_client: redis.Redis, async_client: redis.asyncio.Redis
) -> None:
    fill(sync_client)
    found = await inventory_of(twin, sync_client, async_client, CachePolicy(), sample_size=5)
    assert (found.sampled, found.estimated) == (5, True)
    assert found.payload_bytes is not None
    text = render_inventory(found, False)
    assert "(STRLEN, estimated: a sample of 5 keys, extrapolated)" in text
    assert "  keys and values: ~" in text


async def test_the_ttl_spread_is_that_of_the_sample(
    twin: str, sync_client: redis.Redis, async_client: redis.asyncio.Redis
) -> None:
    for user_id, seconds in ((1, 100), (2, 200), (3, 300)):
        sync_client.set(f"user-{user_id}", encode_record(user_record(user_id)), ex=seconds)
    sync_client.set("user-4", encode_record(user_record(4)))  # no expiry: never written by the demo
    found = await inventory_of(twin, sync_client, async_client, CachePolicy())
    spread = found.ttl_seconds
    assert (
        0 < (spread["min"] or 0) <= 100 < (spread["median"] or 0) <= 200 < (spread["max"] or 0) <= 300
    )  # time only shortens them
    assert found.no_expiry == 1
    assert "; 1 without an expiry" in render_inventory(found, False)


async def test_the_embedded_redis_has_no_memory_usage_and_the_summary_says_so(
    twin: str, sync_client: redis.Redis, async_client: redis.asyncio.Redis
) -> None:
    fill(sync_client)
    found = await inventory_of(twin, sync_client, async_client, CachePolicy())
    assert found.memory_bytes is None
    assert found.memory_problem == "this Redis has no MEMORY USAGE command; the embedded one has none"
    assert "  memory: unknown: this Redis has no MEMORY USAGE command" in render_inventory(found, False)


@pytest.mark.integration
async def test_a_real_redis_gives_the_memory_the_keys_take(redis_url: str) -> None:
    sync_client, async_client = redis.Redis.from_url(redis_url), redis.asyncio.Redis.from_url(redis_url)
    try:
        fill(sync_client)
        for name in ("sync", "async"):
            found = await inventory_of(name, sync_client, async_client, CachePolicy(), sample_size=100)
            assert (found.records, found.not_found, found.leases, found.other) == (30, 7, 3, 2)
            demo_keys = [f"user-{user_id}" for user_id in [*range(1, 36), *range(2_000_001, 2_000_008)]]
            assert found.memory_bytes == sum(sync_client.memory_usage(key) or 0 for key in demo_keys)  # all sampled
            assert found.memory_problem is None
            assert "(MEMORY USAGE, all 42 keys)" in render_inventory(found, False)
    finally:
        sync_client.close()
        await async_client.aclose()


@pytest.mark.integration
async def test_on_a_redis_cluster_every_master_is_counted(twin: str, cluster: list[RedisServer]) -> None:
    settings = Settings(redis_url=cluster[0].url, redis_configured=True, redis_cluster=True, db_latency_seconds=0.001)
    seeded = app_twin(twin, settings, [])
    try:
        if twin == "async":
            await seeded.cache.client.ping()  # as the demo's start-up does: the cluster client learns its nodes
        assert (await seeded.seed("pipelined", 300)).written == 300
        assert (await seeded.lookup(2_000_001)).source is Source.NOT_FOUND
        found = await inventory_of(
            twin,
            get_redis(settings).sync_client(),
            seeded.cache.client,
            CachePolicy(),
            sample_size=1000,
        )
        assert (found.records, found.not_found, found.leases, found.other) == (300, 1, 0, 0)
        assert found.sampled == 301
        assert found.memory_bytes is not None  # MEMORY USAGE went to the node holding each key
        assert found.no_expiry == 0
    finally:
        get_redis(settings).close()
        await get_redis(settings).aclose()


# --- the pure core ---


@pytest.mark.parametrize(
    ("user_id", "head", "kind"),
    [
        (42, encode_record(user_record(42)).encode()[:HEAD_BYTES], KeyKind.RECORD),
        (42, encode_not_found(42).encode(), KeyKind.NOT_FOUND),
        (1_000_000_000, encode_not_found(1_000_000_000).encode(), KeyKind.NOT_FOUND),
        (42, LEASE, KeyKind.LEASE),
        (42, encode_record(user_record(43)).encode()[:HEAD_BYTES], KeyKind.OTHER),  # another user's record
        (42, encode_not_found(43).encode(), KeyKind.OTHER),
        (42, b"not json", KeyKind.OTHER),
        (42, redis.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"), KeyKind.OTHER),
        (42, b"", KeyKind.GONE),  # GETRANGE of a key that expired after SCAN saw it
    ],
)
def test_what_a_key_holds_is_read_from_its_head(user_id: int, head: object, kind: KeyKind) -> None:
    assert kind_of(user_id, head) is kind


def test_the_longest_tombstone_and_a_lease_fit_in_the_head() -> None:
    assert len(encode_not_found(1_000_000_000)) <= HEAD_BYTES
    assert len(LEASE) <= HEAD_BYTES


def test_a_key_gone_before_its_read_is_neither_counted_nor_sampled() -> None:
    survey = Survey(CachePolicy())
    keys = [key for raw in (b"user-1", b"user-2") if (key := survey.admit(raw)) is not None]
    survey.classify(keys, [encode_record(user_record(1)).encode()[:HEAD_BYTES], b""])
    assert survey.sample == ["user-1"]
    report = survey.report([3000, 50, 180], elapsed_seconds=0.01)  # PTTL, MEMORY USAGE, STRLEN of user-1
    assert (report.records, report.keys, report.sampled) == (1, 1, 1)
    assert (report.memory_bytes, report.payload_bytes) == (50, len("user-1") + 180)


def test_a_sampled_key_gone_before_it_is_measured_is_left_out() -> None:
    survey = Survey(CachePolicy())
    keys = [key for raw in (b"user-1", b"user-2") if (key := survey.admit(raw)) is not None]
    survey.classify(keys, [encode_record(user_record(user_id)).encode()[:HEAD_BYTES] for user_id in (1, 2)])
    report = survey.report([-2, None, 0, 4000, 70, 180], elapsed_seconds=0.01)
    assert report.sampled == 1
    assert report.memory_bytes == 140  # 70 a key, over the two counted
    assert report.ttl_seconds == {"min": 4.0, "median": 4.0, "max": 4.0}


def test_the_sample_is_uniform_deterministic_and_bounded() -> None:
    def sample(seed: int) -> list[str]:
        survey = Survey(CachePolicy(), sample_size=10, source=random.Random(seed))
        keys = [key for user_id in range(1, 1001) if (key := survey.admit(f"user-{user_id}".encode())) is not None]
        survey.classify(keys, [encode_record(user_record(1)).encode()[:5]] * len(keys))
        return survey.sample

    assert sample(1) == sample(1)
    assert sample(1) != sample(2)
    assert len(set(sample(1))) == 10
    late = sum(int(key.removeprefix("user-")) > 500 for seed in range(200) for key in sample(seed))
    assert 800 < late < 1200  # of 2,000 picks, about half from the later keys: no bias to the first seen


def test_sizes_for_people() -> None:
    assert [format_bytes(size) for size in (0, 812, 1024, 14_540, 3_250_000, 5 * 1024**3)] == [
        "0 B",
        "812 B",
        "1.0 KiB",
        "14.2 KiB",
        "3.1 MiB",
        "5.0 GiB",
    ]


# --- the prompt command ---


def test_cache_is_one_word_and_spans_every_key() -> None:
    assert parse_command("cache") == parse_command(" CACHE ") == ShowCache()
    assert order_of(ShowCache()) == (None, 1)
    assert "Not a user id or command" in getattr(parse_command("cache all"), "message", "")


TWINS = {"sync": main, "async": main_async}
DEMO = ["--redis-url", "memory://", "--seed-mode", "none", "--db-latency", "0"]


@pytest.mark.parametrize("name", ["sync", "async"])
def test_the_cache_command_counts_what_the_lookups_before_it_stored(name: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    typed = b"1\n2\n20000\ncache\n"  # two records, and a cached "not found" (the test database has 10,000 users)
    code = TWINS[name].main([*DEMO, "--json"], stdin=io.BytesIO(typed), stdout=out, stderr=err)
    assert code == 0
    summary = json.loads(out.getvalue().splitlines()[-1])["cache"]
    assert (summary["records"], summary["not_found"], summary["leases"], summary["other"]) == (2, 1, 0, 0)
    assert (summary["keys"], summary["sampled"], summary["estimated"], summary["capped"]) == (3, 3, False, False)
    assert summary["memory_bytes"] is None
    assert summary["ttl_seconds"]["max"] <= 3600 * 1.1
    assert summary["ttl_seconds"]["min"] <= 60  # the tombstone's NEGATIVE_TTL


@pytest.mark.parametrize("name", ["sync", "async"])
def test_the_human_cache_summary(name: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = TWINS[name].main(DEMO, stdin=io.BytesIO(b"1\n2\ncache\n"), stdout=out, stderr=err)
    assert code == 0
    lines = out.getvalue().splitlines()[2:]
    assert lines[0].startswith("Cache: 2 demo keys (user-*): 2 records, 0 cached 'not found', 0 leases; the scan took ")
    assert lines[1:3] == [
        "  memory: unknown: this Redis has no MEMORY USAGE command; the embedded one has none",
        f"  keys and values: {format_bytes(sum(len(f'user-{i}') + len(encode_record(user_record(i))) for i in (1, 2)))}"
        " (STRLEN, all 2 keys)",
    ]
    assert lines[3].startswith("  TTL left (PTTL of the same keys): min ")
