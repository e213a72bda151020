"""`python -m benchmarks --plot DIR`: every chart is drawn, non-empty, from the run's own figures."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from pathlib import Path

from benchmarks.figures import figures
from benchmarks.plan import Plan
from benchmarks.plot import CHARTS, draw, plotting_library_missing
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
