"""`python -m benchmarks --plot DIR`: the figures people compare, drawn as SVG from one run.

Drawn from the run's raw measurements and the figures `figures.py` made of them, so
every chart shows what the table next to it says. matplotlib is the benchmark's own
dependency (benchmarks/requirements.in, locked in requirements-dev.txt), imported only here, and only with --plot.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.measurements import Measurements
from benchmarks.plan import Plan
from labs.catalog import LABS
from labs.memory_chart import draw_memory_chart

CHARTS = ("hit-latency.svg", "misses.svg", "seeding.svg", "traffic-hit-ratio.svg")
LAB_CHARTS = tuple(f"lab-{name}.svg" for name in LABS)  # one a lab, drawn when the run measured the labs
MEMORY_CHART = "lab-memory.svg"  # lab memory's curves, drawn as the prompt's --plot draws them
_SVG_METADATA = {"Date": None, "Creator": "python -m benchmarks --plot"}  # no date: the same run draws the same file


def plotting_library_missing() -> str | None:
    """Why --plot cannot draw (one line), or None when matplotlib is installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "--plot needs matplotlib: pip install -r requirements-dev.txt"
    return None


def draw(
    measurements: Measurements, plan: Plan, result: dict[str, Any], label: str, directory: str | Path
) -> list[Path]:
    """Write the charts into `directory` (created if missing); the files written, in CHARTS order."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as pyplot

    pyplot.rcParams["svg.hashsalt"] = "benchmarks"  # stable element ids: a redrawn chart diffs cleanly
    pyplot.rcParams["svg.fonttype"] = "none"  # text stays text: smaller files, and searchable
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    charts = list(zip(CHARTS, (_hit_latency, _misses, _seeding, _traffic_hit_ratio), strict=True))
    labs = result.get("labs", {})
    charts += [(f"lab-{name}.svg", _lab_chart(labs[name])) for name in LABS if name in labs]
    for name, chart in charts:
        figure, axes = pyplot.subplots(figsize=(8, 4.5), layout="constrained")
        chart(axes, measurements, {**result, "records": plan.records})
        figure.text(0.995, 0.005, label, ha="right", va="bottom", fontsize=6, color="grey", wrap=True)
        path = folder / name
        figure.savefig(path, format="svg", metadata=_SVG_METADATA)
        pyplot.close(figure)
        written.append(path)
    if measurements.memory is not None and measurements.memory.rows:
        draw_memory_chart(measurements.memory, str(folder / MEMORY_CHART), footer=label)
        written.append(folder / MEMORY_CHART)
    return written


def _cumulative(samples: Sequence[float]) -> tuple[list[float], list[float]]:
    """Latencies in microseconds, sorted, against the fraction of samples at or below each (up to p99)."""
    ordered = sorted(samples)
    shown = ordered[: max(1, int(len(ordered) * 0.99))]  # the last percent would squash the rest into one line
    return [seconds * 1e6 for seconds in shown], [(index + 1) / len(ordered) for index in range(len(shown))]


HIT_LINES = (
    ("lookup-sync", "hit through CacheAside.lookup (sync)", "tab:blue", "-"),
    ("raw-get-default-sync", "raw GET, default redis.Redis", "tab:blue", ":"),
    ("lookup-async", "hit through AsyncCacheAside.lookup (async)", "tab:orange", "-"),
    ("raw-get-default-async", "raw GET, default redis.asyncio.Redis", "tab:orange", ":"),
)


def _hit_latency(axes: Any, measurements: Measurements, result: dict[str, Any]) -> None:
    for name, legend, colour, style in HIT_LINES:
        samples = measurements.hits.get(name)
        if samples:
            latencies, fractions = _cumulative(samples)
            axes.plot(latencies, fractions, label=legend, color=colour, linestyle=style)
    axes.set(
        title="Cache hit latency: the lookup against a raw GET (up to p99)",
        xlabel="latency (us)",
        ylabel="fraction of hits at or below",
    )
    _legend_or_note(axes)


def _legend_or_note(axes: Any) -> None:
    """A legend for what was drawn, or a note that nothing was measured (rather than an empty frame alone)."""
    axes.grid(alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(loc="lower right", fontsize=8)
    else:
        axes.text(0.5, 0.5, "not measured in this run", transform=axes.transAxes, ha="center", color="grey")


def _misses(axes: Any, measurements: Measurements, result: dict[str, Any]) -> None:
    misses = result["misses"]
    count, latency = misses["count"], misses["db_latency_seconds"]
    names = [f"{count} misses one after another\n(sync)", f"{count} misses at once\n(async)"]
    seconds = [misses["sync_sequential_seconds"] or 0.0, misses["async_concurrent_seconds"] or 0.0]
    bars = axes.bar(names, seconds, color=["tab:blue", "tab:orange"])
    axes.bar_label(bars, labels=[f"{value:.2f} s" for value in seconds])
    axes.axhline(count * latency, color="grey", linestyle="--", linewidth=1)
    axes.text(1.45, count * latency, f"{count} x the database's {latency:g} s", va="bottom", ha="right", fontsize=8)
    axes.axhline(latency, color="grey", linestyle=":", linewidth=1)
    axes.text(1.45, latency, f"one database read ({latency:g} s)", va="bottom", ha="right", fontsize=8)
    axes.set(title=f"{count} cache misses, each a database read of {latency:g} s", ylabel="seconds, whole batch")


SEED_BARS = (
    ("sequential", "sequential (sync)"),
    ("threaded", "threaded (sync)"),
    ("pipelined-sync", "pipelined (sync)"),
    ("pipelined-async", "pipelined (async)"),
    ("pipe", "redis-cli --pipe (the ceiling)"),
)


def _seeding(axes: Any, measurements: Measurements, result: dict[str, Any]) -> None:
    setup, scale = result["setup"], result["scale"]
    rows: list[tuple[str, float, str]] = []
    records = f"{result['records']:,}"
    for mode, legend in SEED_BARS:
        rate = setup.get(mode, {}).get("records_per_second")
        if rate:
            rows.append((f"{records} records: {legend}", rate, "tab:grey" if mode == "pipe" else "tab:blue"))
    big = scale["records"]
    for twin in ("sync", "async"):
        rate = scale[twin]["records_per_second"]
        if rate:
            script = "main_async.py" if twin == "async" else "main.py"
            rows.append((f"{big:,} records: {script}", rate, "tab:orange"))
    if scale["ceiling_seconds"]:
        rows.append((f"{big:,} records: redis-cli --pipe (the ceiling)", big / scale["ceiling_seconds"], "tab:grey"))
    labels, rates, colours = zip(*rows, strict=True) if rows else ((), (), ())
    bars = axes.barh(list(labels), list(rates), color=list(colours))
    axes.bar_label(bars, labels=[f"{rate:,.0f}/s" for rate in rates], fontsize=8, padding=2)
    axes.invert_yaxis()
    axes.set(title="Seeding throughput against the redis-cli --pipe limit", xlabel="records per second")
    axes.margins(x=0.2)


def _traffic_hit_ratio(axes: Any, measurements: Measurements, result: dict[str, Any]) -> None:
    for twin, colour in (("sync", "tab:blue"), ("async", "tab:orange")):
        series = measurements.traffic.get(twin)
        if series:
            script = "main_async.py" if twin == "async" else "main.py"
            axes.plot(range(1, len(series) + 1), series, label=script, color=colour, marker="o", markersize=3)
    runs = list(result.get("traffic", {}).values())
    title = "Traffic simulator: hit ratio over time, from an empty cache"
    if runs:
        title += f"\n({runs[0]['lookups']:,} lookups, Zipf {runs[0]['zipf']:g}, {runs[0]['concurrency']} at once)"
    axes.set(title=title, xlabel="second of the run", ylabel="hit ratio in that second", ylim=(0, 1.05))
    _legend_or_note(axes)


def _lab_chart(lab: dict[str, Any]) -> Any:
    """A lab's chart: its series over time (the expiry lab), else its headline figure, a bar a run; the verdict
    under it, in words, as the prompt prints it."""

    def chart(axes: Any, measurements: Measurements, result: dict[str, Any]) -> None:
        runs, headline = lab["runs"], lab["headline"]
        verdict = textwrap.fill(lab["verdict"], 90)
        if any(run["series"] for run in runs):
            step = runs[0]["series"][1][0] - runs[0]["series"][0][0]
            for run in runs:
                starts = [start for start, _ in run["series"]]
                counts = [count for _, count in run["series"]]
                axes.step([*starts, starts[-1] + step], [*counts, counts[-1]], where="post", label=run["label"])
            axes.set(xlabel=f"seconds since the keys were written\n\n{verdict}")
            axes.set(ylabel=f"database reads per {step:g} s")
            _legend_or_note(axes)
            axes.legend(loc="upper left", fontsize=8)
        else:
            values = [run["figures"].get(headline) or 0 for run in runs]
            bars = axes.bar([run["label"] for run in runs], values, color="tab:blue")
            axes.bar_label(bars, labels=[f"{value:,g}" for value in values])
            axes.set(ylabel=headline if "(" in headline else f"{headline} (count)", xlabel=verdict)
            axes.margins(y=0.15)
        axes.xaxis.label.set_fontsize(8)
        axes.set_title(textwrap.fill(f"lab {lab['lab']}: {lab['scenario']}", 100), fontsize=9)

    return chart
