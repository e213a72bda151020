"""The benchmark: its arithmetic, and a --quick run end to end (the output's shape, never a speed)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from benchmarks import peers
from benchmarks.contenders import OURS, Answer
from benchmarks.environment import PEERS
from benchmarks.figures import CONTENDERS, figures, percentile
from benchmarks.local_postgres import postgres_binaries
from benchmarks.measurements import LoadOutcome, Measurements
from benchmarks.plan import POLICY, Plan, mixed_workload
from benchmarks.reads import NO_POSTGRES
from benchmarks.seeding import resp_command, write_seed_commands
from benchmarks.table import markdown
from config.database import SqliteConnector
from simulator._sync.database import Database
from simulator.seeding import seed_value
from tests.conftest import PROJECT_ROOT, redis_server_binary

MACHINE = {
    "cpu": "test CPU",
    "cores": "2",
    "memory": "1 GiB",
    "os": "Linux",
    "python": "3.11",
    "redis-py": "8",
    "hiredis": "3",
    "redis-server": "7",
    "sqlite": "3.40",
    "postgresql": "15.2",
    "date": "today",
}


@pytest.mark.parametrize(
    ("samples", "fraction", "expected"),
    [([1.0], 0.5, 1.0), ([3.0, 1.0, 2.0], 0.5, 2.0), (list(range(1, 101)), 0.99, 99), (list(range(1, 101)), 0.5, 50)],
)
def test_percentile_is_nearest_rank(samples: list[float], fraction: float, expected: float) -> None:
    assert percentile(samples, fraction) == expected


def _outcome(seconds: float, loader_calls: int, **failures: int) -> LoadOutcome:
    return LoadOutcome(seconds, loader_calls=loader_calls, **failures)


def _ten_of_each(seconds: dict[str, float]) -> dict[str, list[float]]:
    """Ten samples of each latency, all the same: its p50 and p99 are that latency."""
    return {name: [latency] * 10 for name, latency in seconds.items()}


def _measurements(**overrides: Any) -> Measurements:
    """A whole run's measurements, made by hand: every target but T6 missed or met on purpose."""
    fields: dict[str, Any] = {
        "setup": {
            "pipelined-sync": [0.02, 0.01, 0.03],
            "pipelined-async": [0.2],
            "pipe": [0.002],
            "pipe-startup": [0.001],
        },
        "hits": _ten_of_each(
            {
                "lookup-sync": 0.00011,
                "raw-get-sync": 0.0001,
                "raw-get-default-sync": 0.0001,
                "lookup-async": 0.0002,
                "raw-get-async": 0.0001,
                "raw-get-default-async": 0.00016,
            }
        ),
        "misses": {"sync-sequential": [10.0], "async-concurrent": [0.12], "async-concurrent-default-latency": [2.04]},
        "scale": {
            "sync-seconds": [8.0],
            "async-seconds": [12.0],
            "pipe-seconds": [2.0],
            "sync-peak-mb": [40.0],
            "async-peak-mb": [41.0],
            "sync-peak-mb-tenth": [39.0],
            "async-peak-mb-tenth": [40.0],
        },
        "hits_during_seed": {"sync": [0.005] * 99 + [0.06], "async": [0.004] * 100},
        "startup": {"sync": [0.3, 0.2], "async": [0.25]},
        "record_bytes": 160,
        "fill": {
            "sqlite": {"users": 1_000_000, "seconds": 14.5, "bytes": 150_000_000},
            "postgresql": {"users": 1_000_000, "seconds": 40.0, "bytes": 180_000_000},
        },
        "reads": _ten_of_each(
            {
                "hit-sync": 0.0002,
                "hit-async": 0.0003,
                "sqlite-sync": 0.00002,
                "sqlite-async": 0.00006,
                "postgresql-sync": 0.0003,
                "postgresql-async": 0.0006,
            }
        ),
        "round_trips": {"hit-single": 1, "miss-single": 3, "hit-cluster": 1, "miss-cluster": 4},
        "stampede": {
            "ours-async": [_outcome(0.11, 1), _outcome(0.13, 1)],
            "ours-sync": [_outcome(0.12, 1)],
            "cashews": [_outcome(0.10, 1)],
            "aiocache": [_outcome(0.20, 100)],
            "dogpile": [_outcome(0.12, 1)],
        },
        "load": {
            "ours-async": [_outcome(0.30, 100), _outcome(0.40, 100), _outcome(0.35, 100)],
            "ours-sync": [_outcome(0.30, 100)],
            "cashews": [_outcome(0.25, 100)],
            "aiocache": [_outcome(0.60, 950, logged=1600)],
            "dogpile": [_outcome(0.50, 100)],
        },
        "peer_hits": _ten_of_each(
            {
                "cashews": 0.0003,
                "cashews:raw": 0.0001,
                "aiocache": 0.00012,
                "aiocache:raw": 0.0001,
                "dogpile": 0.0001,
                "dogpile:raw": 0.0001,
            }
        ),
        "peers": {"cashews": "7.6.0", "aiocache": "0.12.3", "dogpile.cache": "1.5.0"},
        "peer_failures": {"cashews-lock": "MaxConnectionsError: Too many connections"},
    }
    return Measurements(**{**fields, **overrides})


def test_figures_and_targets_come_from_the_measurements() -> None:
    plan = Plan(records=1000, big=1_000_000, misses=100, miss_latency=0.1)
    result = figures(_measurements(), plan, MACHINE)
    assert result["setup"]["pipelined-sync"]["seconds"] == 0.02
    assert result["setup"]["pipelined-sync"]["x_ceiling"] == pytest.approx(10)
    assert result["setup"]["pipe-startup"]["x_ceiling"] == pytest.approx(0.5)
    assert result["setup"]["pipe-startup"]["records_per_second"] is None
    assert result["hits"]["lookup-async"]["x_raw_get_p50"] == pytest.approx(2)
    assert result["hits"]["lookup-async"]["x_default_get_p50"] == pytest.approx(1.25)
    assert result["hits"]["lookup-sync"]["x_default_get_p50"] == pytest.approx(1.1)
    assert result["scale"]["ceiling"] == "redis-cli --pipe"
    assert result["scale"]["async"]["x_ceiling"] == pytest.approx(6)
    assert result["scale"]["async_x_sync"] == pytest.approx(1.5)
    assert result["round_trips"]["miss-cluster"] == 4
    assert [row["target"][:3] for row in result["targets"]] == ["T1.", "T2.", "T3.", "T4.", "T5.", "T6."]
    # T1 a cluster miss takes 4; T2 6x the pipe; T3 sync 1.10x, async 1.25x; T4 0.25 s; T5 0.35 s against
    # cashews' 0.25 s; T6 cashews' lock row failed
    assert [row["met"] for row in result["targets"]] == [False, False, False, True, False, False]
    assert result["targets"][4]["measured"] == ("0.350 s (cashews 0.250 s); 0 errors, 0 degraded, 100 database reads")
    concurrency = result["concurrency"]
    assert concurrency["load"]["contenders"]["ours-async"] == {
        "rounds": 3,
        "seconds": 0.35,
        "errors": 0,
        "loader_calls": 100,
        "loader_calls_min": 100,
        "degraded": 0,
        "wrong": 0,
        "logged": 0,
    }
    assert concurrency["stampede"]["contenders"]["ours-async"]["seconds"] == pytest.approx(0.12)
    assert concurrency["hits"]["cashews"]["x_raw_get_p50"] == pytest.approx(3)
    assert concurrency["hits"]["ours-async"]["x_raw_get_p50"] == pytest.approx(1.25)
    assert concurrency["against_ours"]["cashews"] == {
        "ahead": [
            "the stampede in 0.100 s (ours 0.120 s)",
            "the mixed load in 0.250 s (ours 0.350 s)",
        ],
        "level": [],
        "behind": ["a hit 3.00x a raw GET (ours 1.25x)"],
    }
    assert concurrency["against_ours"]["dogpile"] == {
        "ahead": ["a hit 1.00x a raw GET (ours 1.10x)"],
        "level": ["the stampede in 0.120 s (ours 0.120 s)"],
        "behind": ["the mixed load in 0.500 s (ours 0.300 s)"],
    }
    aiocache = concurrency["against_ours"]["aiocache"]
    assert "950 loader calls in the mixed load (ours 100)" in aiocache["behind"]
    assert "0 errors, 1,600 cache errors logged and 0 wrong answers in the mixed load" in aiocache["behind"]
    assert "cashews-lock" not in concurrency["against_ours"]
    assert result["database"]["sqlite"] == {"users": 1_000_000, "fill_seconds": 14.5, "megabytes": 150.0}
    assert result["reads"]["hit"]["sync"]["p50_us"] == pytest.approx(200)
    assert result["reads"]["sqlite"]["sync"]["x_hit_p50"] == pytest.approx(0.1)
    assert result["reads"]["postgresql"]["async"]["x_hit_p50"] == pytest.approx(2)
    json.dumps(result)  # --json writes exactly this
    table = markdown(result, "the test machine")
    assert table.startswith("Measured on: the test machine\n")
    assert "| **no** |" in table
    assert "| Mode | Seconds | Records/s | x redis-cli --pipe |" in table
    assert "| `redis-cli --pipe` of the same SETs (the ceiling) | 0.0020 | 500,000 | 1.00x |" in table
    assert "| Creating 1,000,000 users (SQLite), once per run, before any seed | 14.50 s, 150 MB |" in table
    assert "| lookup, async | 200.0 us | 200.0 us | 2.00x | 1.25x |" in table
    assert "| ours, async: `AsyncCacheAside.lookup` | 200.0 us (1.25x) | 0.120 s, 1 loader call |" in table
    assert "| cashews 7.6.0: `@cache(ttl=..., lock=True)` | failed: MaxConnectionsError: Too many connections |" in (
        table
    )
    assert (
        "| aiocache 0.12.3: `@cached(cache=Cache.REDIS)` | 120.0 us (1.20x) | 0.200 s, 100 loader calls | 0.600 s, "
        "0 errors, 950 loader calls, 1,600 cache errors logged and answered past |"
    ) in table
    assert "- cashews `@cache(ttl=...)`, its default, against ours (async): ahead on the stampede" in table
    assert all(row["measured"] in table for row in result["targets"])
    assert "| SQLite read (a local file) | 20.0 / 20.0 us | 60.0 / 60.0 us | 0.10x / 0.20x |" in table


@pytest.mark.parametrize(
    ("round_trips", "met"),
    [
        ({}, None),
        ({"hit-single": 1, "miss-single": 3}, True),
        ({"hit-single": 1, "miss-single": 3, "hit-cluster": 2, "miss-cluster": 3}, False),
        ({"hit-single": 1, "miss-single": 2, "hit-cluster": 1, "miss-cluster": 3}, True),
    ],
)
def test_t1_a_hit_takes_one_round_trip_and_a_miss_at_most_three(round_trips: dict[str, int], met: bool | None) -> None:
    target = figures(_measurements(round_trips=round_trips), Plan(), MACHINE)["targets"][0]
    assert target["met"] is met
    assert target["measured"] == (
        ", ".join(f"{name} {count}" for name, count in round_trips.items()) or "n/a (not measured)"
    )


@pytest.mark.parametrize(
    ("scale", "met"),
    [
        ({"sync-seconds": [5.0], "async-seconds": [4.9], "pipe-seconds": [2.0]}, True),
        ({"sync-seconds": [5.0], "async-seconds": [5.1], "pipe-seconds": [2.1]}, False),  # async slower than sync
        ({"sync-seconds": [5.1], "async-seconds": [4.0], "pipe-seconds": [2.0]}, False),  # 2.55x the pipe
        ({"sync-seconds": [5.0], "async-seconds": [4.0], "pipe-seconds": [2.0], "sync-peak-mb": [48.0]}, False),
        ({"sync-seconds": [5.0], "async-seconds": [4.0]}, None),  # no redis-cli: no ceiling
    ],
)
def test_t2_a_big_seed_against_the_pipe_async_against_sync_and_flat_memory(
    scale: dict[str, list[float]], met: bool | None
) -> None:
    peaks = {
        "sync-peak-mb": [40.0],
        "async-peak-mb": [41.0],
        "sync-peak-mb-tenth": [39.0],
        "async-peak-mb-tenth": [40.0],
    }
    target = figures(_measurements(scale={**peaks, **scale}), Plan(), MACHINE)["targets"][1]
    assert target["met"] is met


@pytest.mark.parametrize(
    ("ours", "cashews", "peers", "met", "measured"),
    [
        (_outcome(0.2, 100), _outcome(0.25, 100), None, True, "0.200 s (cashews 0.250 s); 0 errors, 0 degraded, 100"),
        (_outcome(0.3, 100), _outcome(0.25, 100), None, False, "0.300 s (cashews 0.250 s)"),
        (_outcome(0.2, 101), _outcome(0.25, 100), None, False, "101 database reads"),
        (_outcome(0.2, 100, degraded=1), _outcome(0.25, 100), None, False, "1 degraded"),
        (_outcome(0.2, 100, errors=2), _outcome(0.25, 100), None, False, "2 errors"),
        (_outcome(0.2, 100, wrong=1), _outcome(0.25, 100), None, False, "1 wrong answers"),
        (_outcome(0.2, 100), None, {"cashews": None}, None, "0.200 s (cashews not installed)"),
        (_outcome(0.2, 99), None, {"cashews": None}, False, "99 database reads"),
    ],
)
def test_t5_the_mixed_load_against_cashews(
    ours: LoadOutcome, cashews: LoadOutcome | None, peers: dict[str, str | None] | None, met: bool | None, measured: str
) -> None:
    load = {"ours-async": [ours], **({"cashews": [cashews]} if cashews else {})}
    overrides: dict[str, Any] = {"load": load}
    if peers is not None:
        overrides["peers"] = peers
    target = figures(_measurements(**overrides), Plan(), MACHINE)["targets"][4]
    assert target["met"] is met
    assert measured in target["measured"]


def test_the_peers_not_installed_are_rows_saying_so_and_leave_t6_open() -> None:
    measured = _measurements(
        peers={"cashews": "7.6.0", "aiocache": None, "dogpile.cache": None}, peer_failures={}, peer_hits={}
    )
    result = figures(measured, Plan(), MACHINE)
    assert result["targets"][5]["met"] is None
    assert result["targets"][5]["measured"] == "cashews 7.6.0; not installed: aiocache, dogpile.cache"
    assert set(result["concurrency"]["against_ours"]) == {"cashews", "cashews-lock", "cashews-get"}
    table = markdown(result, "the test machine")
    assert "| aiocache | not installed | not installed | not installed |" in table
    assert "| dogpile.cache | not installed | not installed | not installed |" in table
    assert "| cashews 7.6.0: `@cache(ttl=...)`, its default | n/a | 0.100 s, 1 loader call |" in table


def test_a_peer_quicker_because_its_lookups_failed_is_not_ahead() -> None:
    load = {"ours-async": [_outcome(0.35, 100)], "aiocache": [_outcome(0.30, 45, errors=900, logged=900)]}
    standing = figures(_measurements(load=load), Plan(), MACHINE)["concurrency"]["against_ours"]["aiocache"]
    assert not any("mixed load" in item for item in standing["ahead"])
    assert "900 errors, 900 cache errors logged and 0 wrong answers in the mixed load" in standing["behind"]


def test_every_peer_measured_meets_t6() -> None:
    result = figures(_measurements(peer_failures={}), Plan(), MACHINE)
    assert result["targets"][5] == {
        "target": "T6. the peers (cashews, aiocache, dogpile.cache) in one table, same server, run and loader",
        "measured": "cashews 7.6.0, aiocache 0.12.3, dogpile.cache 1.5.0",
        "met": True,
    }


def test_the_contenders_named_in_the_table_are_the_ones_measured() -> None:
    assert tuple(peers.LIBRARIES) == PEERS
    measured = [contender.name for contender in OURS] + [
        contender.name for contenders in peers.LIBRARIES.values() for contender in contenders
    ]
    assert sorted(measured) == sorted(CONTENDERS)
    for contenders in peers.LIBRARIES.values():
        for contender in contenders:
            assert CONTENDERS[contender.name][0] == contender.library
            assert CONTENDERS[contender.name][1] == ("async" if contender.build_async else "sync")


def test_a_peer_not_installed_is_recorded_as_none(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_such_package(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(peers.metadata, "version", no_such_package)
    measured = Measurements()
    assert peers.contenders(measured) == []
    assert measured.peers == {"cashews": None, "aiocache": None, "dogpile.cache": None}


def test_the_mixed_load_is_500_hits_and_5_lookups_each_of_100_missing_ids_in_a_fixed_order() -> None:
    cached, order = mixed_workload(1000)
    assert cached == range(1, 501)
    assert len(order) == 1000
    assert sorted(set(order) - set(cached)) == list(range(501, 601))
    assert Counter(order) == Counter({**dict.fromkeys(cached, 1), **dict.fromkeys(range(501, 601), 5)})
    assert order != sorted(order)
    assert mixed_workload(1000) == (cached, order)


def test_a_load_outcome_counts_failures_and_wrong_answers() -> None:
    outcomes: list[Answer | BaseException] = [
        Answer("one"),
        Answer("two", degraded=True),
        RuntimeError("down"),
        Answer("stale"),
    ]
    outcome = LoadOutcome.of(0.5, [1, 2, 3, 4], outcomes, {1: "one", 2: "two", 3: "three", 4: "four"}, 7, logged=2)
    assert outcome == LoadOutcome(0.5, errors=1, loader_calls=7, degraded=1, wrong=1, logged=2)


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (("GET", "k"), b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"),
        (
            ("SET", "bench:user-1", "Zoë", "EX", 3600),
            b"*5\r\n$3\r\nSET\r\n$12\r\nbench:user-1\r\n$4\r\nZo\xc3\xab\r\n$2\r\nEX\r\n$4\r\n3600\r\n",
        ),
    ],
)
def test_resp_commands_count_bytes_not_characters(parts: tuple[str | int, ...], expected: bytes) -> None:
    assert resp_command(*parts) == expected


def test_the_pipe_file_holds_the_sets_a_seed_stores(tmp_path: Path) -> None:
    database = Database(SqliteConnector(str(tmp_path / "seven-users.db"), 5.0), 0)
    try:
        database.fill(database.filled_to(), 7)
        commands = tmp_path / "seed.resp"
        write_seed_commands(commands, database, 9, 4, POLICY)  # users 8 and 9 do not exist
        records = {record.id: record for record in database.read_range(range(1, 10))}
    finally:
        database.close()
    values = [seed_value(user_id, records.get(user_id), POLICY) for user_id in range(1, 10)]
    expected = b"".join(
        resp_command("SET", POLICY.key(user_id), value, "EX", ttl) for user_id, (value, ttl) in enumerate(values, 1)
    )
    assert commands.read_bytes() == expected
    assert sorted(records) == list(range(1, 8))
    assert values[8] == ('{"id":9,"not_found":true}', POLICY.negative_ttl_seconds)


def test_a_database_not_measured_is_a_row_saying_why() -> None:
    measured = Measurements(
        reads={"hit-sync": [0.0002], "hit-async": [0.0003], "sqlite-sync": [0.0001], "sqlite-async": [0.0001]},
        not_measured={"postgresql": NO_POSTGRES},
    )
    result = figures(measured, Plan(), MACHINE)
    assert result["reads"]["postgresql"] == {"not_measured": NO_POSTGRES}
    table = markdown(result, "the test machine")
    assert "| PostgreSQL read (a private server on loopback) | not measured (no PostgreSQL server binaries) | | |" in (
        table
    )
    assert "| SQLite read (a local file) | 100.0 / 100.0 us | 100.0 / 100.0 us | 0.50x / 0.33x |" in table


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_a_quick_run_prints_the_table_and_writes_the_same_figures_as_json(tmp_path: Path) -> None:
    redis_server_binary()
    output = tmp_path / "figures.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--json", str(output)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=230,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Measured on: ")
    assert "| Operation | Sync (main.py) | Async (main_async.py) | The design's guess (sync / async) |" in done.stdout
    result = json.loads(output.read_text())
    assert set(result) >= {
        "machine",
        "database",
        "reads",
        "setup",
        "hits",
        "misses",
        "scale",
        "hits_during_seed",
        "startup",
        "targets",
        "topologies",
    }
    for topology in ("single-sync", "single-async", "cluster-sync", "cluster-async"):
        assert result["topologies"][topology]["records_per_second"] > 0
    assert result["machine"]["cores"]
    for mode in ("sequential", "threaded", "pipelined-sync", "pipelined-async"):
        assert result["setup"][mode]["seconds"] > 0
        assert f"{result['setup'][mode]['seconds']:.4f}" in done.stdout
    for path in ("lookup-sync", "raw-get-sync", "lookup-async", "raw-get-async"):
        assert 0 < result["hits"][path]["p50_us"] <= result["hits"][path]["p99_us"]
    for twin in ("sync", "async"):
        assert result["scale"][twin]["seconds"] > 0
        assert result["scale"][twin]["peak_rss_mb"] > 0
        assert result["hits_during_seed"][twin]["samples"] > 0
        assert result["startup"][twin]["median_seconds"] > 0
    assert [row["target"][:3] for row in result["targets"]] == ["T1.", "T2.", "T3.", "T4.", "T5.", "T6."]
    assert all(row["measured"] in done.stdout for row in result["targets"])
    assert "| Mode | Seconds | Records/s | x redis-cli --pipe |" in done.stdout
    assert result["setup"]["pipe"]["seconds"] > 0
    assert result["scale"]["ceiling_seconds"] > 0
    for twin in ("sync", "async"):
        assert result["hits"][f"lookup-{twin}"]["x_default_get_p50"] > 0
    concurrency = result["concurrency"]
    for twin in ("sync", "async"):
        load = concurrency["load"]["contenders"][f"ours-{twin}"]
        assert (load["errors"], load["wrong"]) == (0, 0)
        assert load["loader_calls_min"] >= concurrency["load"]["missing_ids"]
        assert concurrency["stampede"]["contenders"][f"ours-{twin}"]["errors"] == 0
    assert "| ours, async: `AsyncCacheAside.lookup` |" in done.stdout
    labs = result["labs"]
    assert list(labs) == ["stampede", "race", "expiry", "negative", "refresh", "outage"]
    for name, lab in labs.items():
        assert not lab["interrupted"]
        assert len(lab["runs"]) >= 2
        assert f"`lab {name}`: {lab['scenario']}" in done.stdout
        assert f"Verdict: {lab['verdict']}" in done.stdout
    assert [run["figures"]["database reads"] for run in labs["stampede"]["runs"]][-1] == 1  # the lease
    memory = result["memory_lab"]
    assert memory["plan"]["policies"] == ["allkeys-lru", "allkeys-lfu"]
    assert [size["percent"] for size in memory["sizes"]] == [1, 2, 5, 10, 20, 30, 50, 100]
    assert all(ratio == memory["ceiling"] for ratio in memory["sizes"][-1]["hit_ratio"].values())  # room for all
    assert f"Reading: {memory['reading']}" in done.stdout
    assert concurrency["failed"] == {}
    for library in PEERS:
        try:
            version = metadata.version(library)
        except metadata.PackageNotFoundError:
            assert concurrency["libraries"][library] is None
            assert f"| {library} | not installed | not installed | not installed |" in done.stdout
            continue
        assert concurrency["libraries"][library] == version
        rows = [name for name, (owner, _, _) in CONTENDERS.items() if owner == library]
        for name in rows:
            assert concurrency["hits"][name]["p50_us"] > 0
            assert f"| {library} {version}: {CONTENDERS[name][2]} | " in done.stdout
    sqlite = result["database"]["sqlite"]
    assert sqlite["users"] >= result["plan"]["big"]
    assert sqlite["fill_seconds"] > 0
    assert sqlite["megabytes"] > 0
    assert f"| Creating {sqlite['users']:,} users (SQLite), once per run, before any seed |" in done.stdout
    assert "What a cache buys, measured" in done.stdout
    for twin in ("sync", "async"):
        hit = result["reads"]["hit"][twin]
        assert 0 < hit["p50_us"] <= hit["p99_us"]
        assert hit["samples"] == 3 * result["plan"]["read_samples"]
        read = result["reads"]["sqlite"][twin]
        assert 0 < read["p50_us"] <= read["p99_us"]
        assert read["x_hit_p50"] > 0
    assert "| SQLite read (a local file) |" in done.stdout
    if postgres_binaries() is None:
        assert result["reads"]["postgresql"] == {"not_measured": NO_POSTGRES}
        assert "| PostgreSQL read (a private server on loopback) | not measured (no PostgreSQL server binaries) |" in (
            done.stdout
        )
    else:
        assert result["database"]["postgresql"]["users"] == sqlite["users"]
        for twin in ("sync", "async"):
            read = result["reads"]["postgresql"][twin]
            assert 0 < read["p50_us"] <= read["p99_us"]
            assert f"{read['x_hit_p50']:.2f}x" in done.stdout
        assert "\n- PostgreSQL: " in done.stdout  # which way it goes is a measurement, not a fixed outcome
