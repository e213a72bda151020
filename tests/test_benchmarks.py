"""The benchmark: its arithmetic, and a --quick run end to end (the output's shape, never a speed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.local_postgres import postgres_binaries
from benchmarks.measure import NO_POSTGRES, Measurements, Plan
from benchmarks.summary import figures, markdown, percentile
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


def test_figures_and_targets_come_from_the_measurements() -> None:
    plan = Plan(records=1000, big=1_000_000, misses=100, miss_latency=0.1)
    measured = Measurements(
        setup={"pipelined-sync": [0.02, 0.01, 0.03], "pipelined-async": [0.2], "redis-benchmark": [0.002]},
        hits={
            "lookup-sync": [0.0001] * 10,
            "raw-get-sync": [0.0001] * 10,
            "lookup-async": [0.0002] * 10,
            "raw-get-async": [0.0001] * 10,
        },
        misses={
            "sync-sequential": [10.0],
            "async-concurrent": [0.12],
            "async-1000-lookups": [0.3],
            "async-concurrent-default-latency": [2.04],
        },
        scale={
            "sync-seconds": [8.0],
            "async-seconds": [12.0],
            "ceiling-seconds": [2.0],
            "sync-peak-mb": [40.0],
            "async-peak-mb": [41.0],
            "sync-peak-mb-tenth": [39.0],
            "async-peak-mb-tenth": [40.0],
        },
        hits_during_seed={"sync": [0.005] * 99 + [0.06], "async": [0.004] * 100},
        startup={"sync": [0.3, 0.2], "async": [0.25]},
        record_bytes=160,
        fill={
            "sqlite": {"users": 1_000_000, "seconds": 14.5, "bytes": 150_000_000},
            "postgresql": {"users": 1_000_000, "seconds": 40.0, "bytes": 180_000_000},
        },
        reads={
            "hit-sync": [0.0002] * 10,
            "hit-async": [0.0003] * 10,
            "sqlite-sync": [0.00002] * 10,
            "sqlite-async": [0.00006] * 10,
            "postgresql-sync": [0.0003] * 10,
            "postgresql-async": [0.0006] * 10,
        },
    )
    result = figures(measured, plan, MACHINE)
    assert result["setup"]["pipelined-sync"]["seconds"] == 0.02
    assert result["setup"]["pipelined-sync"]["x_ceiling"] == pytest.approx(10)
    assert result["hits"]["lookup-async"]["x_raw_get_p50"] == pytest.approx(2)
    assert result["scale"]["async"]["x_ceiling"] == pytest.approx(6)
    assert [row["met"] for row in result["targets"]] == [False, False, False, True, True, True]
    assert result["database"]["sqlite"] == {"users": 1_000_000, "fill_seconds": 14.5, "megabytes": 150.0}
    assert result["reads"]["hit"]["sync"]["p50_us"] == pytest.approx(200)
    assert result["reads"]["sqlite"]["sync"]["x_hit_p50"] == pytest.approx(0.1)
    assert result["reads"]["sqlite"]["async"]["x_hit_p50"] == pytest.approx(0.2)
    assert result["reads"]["postgresql"]["async"]["x_hit_p50"] == pytest.approx(2)
    table = markdown(result, "the test machine")
    assert table.startswith("Measured on: the test machine\n")
    assert "| **no** |" in table
    assert "| Creating 1,000,000 users (SQLite), once per run, before any seed | 14.50 s, 150 MB |" in table
    assert "What a cache buys, measured" in table
    assert "| SQLite read (a local file) | 20.0 / 20.0 us | 60.0 / 60.0 us | 0.10x / 0.20x |" in table
    postgres_row = (
        "| PostgreSQL read (a private server on loopback) | 300.0 / 300.0 us | 600.0 / 600.0 us | 1.50x / 2.00x |"
    )
    assert postgres_row in table
    assert "SQLite: a read is as fast as a hit or faster" in table
    assert "PostgreSQL: a read takes longer than a hit" in table


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
    assert result["misses"]["concurrent_lookup_errors"] == 0
    assert len(result["targets"]) == 6
    assert all(row["measured"] in done.stdout for row in result["targets"])
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
