"""`python -m benchmarks --plot DIR`: every chart is drawn, non-empty, from the run's own figures."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from pathlib import Path

from benchmarks.figures import figures
from benchmarks.plan import Plan
from benchmarks.plot import CHARTS, draw, plotting_library_missing
from labs.catalog import LABS, LabReport, LabRun
from labs.memory import MemoryPlan, MemoryReport, SizeRow
from tests.test_benchmarks import MACHINE, _measurements


def test_the_charts_are_drawn_from_the_figures_as_svg(tmp_path: Path) -> None:
    assert plotting_library_missing() is None  # matplotlib comes with requirements-dev.txt
    plan = Plan(records=1000, big=1_000_000, misses=100, miss_latency=0.1)
    measured = _measurements(traffic={"sync": [0.2, 0.6, 0.8], "async": [0.3, 0.7, 0.9]})
    written = draw(measured, plan, figures(measured, plan, MACHINE), "measured on: a test machine", tmp_path / "out")
    assert [path.name for path in written] == list(CHARTS)
    titles = {
        "hit-latency.svg": "Cache hit latency",
        "misses.svg": "100 cache misses",
        "seeding.svg": "redis-cli --pipe",
        "traffic-hit-ratio.svg": "hit ratio over time",
    }
    for path in written:
        text = path.read_text()
        ElementTree.fromstring(text)  # noqa: S314  # well-formed SVG (our own file, not untrusted input)
        assert titles[path.name] in text
        assert "measured on: a test machine" in text
        assert text.count("<path") > 5  # lines or bars were drawn, not just an empty frame
    seeding = (tmp_path / "out" / "seeding.svg").read_text()
    assert "1,000,000 records: main_async.py" in seeding
    assert "500,000/s" in seeding  # 1,000,000 records through the pipe in the 2.0 s measured


def test_the_same_measurements_draw_the_same_files(tmp_path: Path) -> None:
    plan = Plan(records=1000, big=1_000_000, misses=100, miss_latency=0.1)
    measured = _measurements()
    result = figures(measured, plan, MACHINE)
    first = [path.read_bytes() for path in draw(measured, plan, result, "label", tmp_path / "a")]
    second = [path.read_bytes() for path in draw(measured, plan, result, "label", tmp_path / "b")]
    assert first == second  # no date or random ids inside: a redrawn chart diffs cleanly


def test_each_lab_measured_gets_a_chart_with_its_units_and_verdict(tmp_path: Path) -> None:
    plan = Plan(records=1000, big=1_000_000, misses=100, miss_latency=0.1)
    measured = _measurements()
    stampede = LabReport(LABS["stampede"])
    for run, reads in zip(LABS["stampede"].runs, (100, 5, 1), strict=True):
        stampede.runs.append(LabRun(run.label, run.switches, {"lookups": 100, "database reads": reads}))
    expiry = LabReport(LABS["expiry"])
    for run, counts in zip(LABS["expiry"].runs, ((0, 0, 250, 50), (0, 90, 100, 110)), strict=True):
        series = tuple((index * 0.5, count) for index, count in enumerate(counts))
        figures_of = {"database reads": sum(counts), "peak reads in 0.5 s": max(counts)}
        expiry.runs.append(LabRun(run.label, run.switches, figures_of, series))
    measured.labs = {"stampede": stampede, "expiry": expiry}
    written = draw(measured, plan, figures(measured, plan, MACHINE), "label", tmp_path)
    assert [path.name for path in written] == [*CHARTS, "lab-stampede.svg", "lab-expiry.svg"]
    bars = (tmp_path / "lab-stampede.svg").read_text()
    assert "database reads (count)" in bars
    assert "from 100 to 1 (100.0x fewer)" in bars  # the verdict, under the bars
    assert all(label in bars for label in ("no protection", "single flight only", "the lease"))
    lines = (tmp_path / "lab-expiry.svg").read_text()
    assert "database reads per 0.5 s" in lines
    assert "seconds since the keys were written" in lines
    assert "fell from 250 to 110" in lines


def test_lab_memory_gets_a_chart_of_its_curves_with_their_units(tmp_path: Path) -> None:
    plan = Plan(records=1000, big=1_000_000, misses=100, miss_latency=0.1)
    measured = _measurements()
    memory_plan = MemoryPlan(users=100, lookups=1000, policies=("allkeys-lru", "allkeys-lfu"), sizes=(5.0, 10.0))
    measured.memory = MemoryReport(memory_plan, server="7.0.15", working_set_bytes=10_000)
    measured.memory.rows = [
        SizeRow(5.0, 500, 5, 0.50, 0.60, {"allkeys-lru": 0.40, "allkeys-lfu": 0.45}),
        SizeRow(10.0, 1000, 10, 0.60, 0.70, {"allkeys-lru": 0.55, "allkeys-lfu": 0.58}),
    ]
    written = draw(measured, plan, figures(measured, plan, MACHINE), "label", tmp_path)
    assert [path.name for path in written] == [*CHARTS, "lab-memory.svg"]
    chart = (tmp_path / "lab-memory.svg").read_text()
    for words in ("hit ratio after the warm-up (% of lookups)", "% of the working set", "log scale"):
        assert words in chart
    for curve in ("Redis allkeys-lru", "Redis allkeys-lfu", "exact LRU (same trace)", "optimum (Belady)"):
        assert curve in chart
