"""The benchmark: its arithmetic, and a --quick run end to end (the output's shape, never a speed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.measure import Measurements, Plan
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
    )
    result = figures(measured, plan, MACHINE)
    assert result["setup"]["pipelined-sync"]["seconds"] == 0.02
    assert result["setup"]["pipelined-sync"]["x_ceiling"] == pytest.approx(10)
    assert result["hits"]["lookup-async"]["x_raw_get_p50"] == pytest.approx(2)
    assert result["scale"]["async"]["x_ceiling"] == pytest.approx(6)
    assert [row["met"] for row in result["targets"]] == [False, False, False, True, True, True]
    table = markdown(result, "the test machine")
    assert table.startswith("Measured on: the test machine\n")
    assert "| **no** |" in table


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
