"""Labs, I/O: `lab memory --plot FILE.svg` and the benchmark's chart of it: the hit-ratio curves as an SVG.

Drawn with matplotlib, which is not among what the demo needs to run (it is the benchmark's,
locked in requirements-dev.txt): imported only here, and only when a chart is asked for, so
`plot_problem` says in one line what to install before a minute is spent measuring.
"""

from __future__ import annotations

import os
from typing import Any

from labs.memory import MemoryReport, human_bytes

_SVG_METADATA = {"Date": None, "Creator": "cache-aside demo: lab memory"}  # no date: the same run draws the same file


def plot_problem(path: str) -> str | None:
    """Why the chart could not be drawn at `path` (one line), or None."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "--plot needs matplotlib: pip install matplotlib (or pip install -r requirements-dev.txt)"
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        return f"--plot: there is no folder {folder}"
    if os.path.isdir(path):
        return f"--plot: {path} is a folder, not a file"
    return None


def draw_memory_chart(report: MemoryReport, path: str, footer: str | None = None) -> None:
    """Each policy's measured curve, exact LRU's and the optimum's, on one chart with its units, saved as SVG.

    `footer`: a line in small grey print (the benchmark's machine and date).
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    # stable element ids and text kept as text: a redrawn chart diffs cleanly, and its words can be searched
    with pyplot.rc_context({"svg.hashsalt": "lab memory", "svg.fonttype": "none"}):
        _draw(pyplot, report, path, footer)


def _draw(pyplot: Any, report: MemoryReport, path: str, footer: str | None) -> None:
    plan, rows = report.plan, report.rows
    figure, axes = pyplot.subplots(figsize=(8, 5))
    try:
        sizes = [row.percent for row in rows]
        for policy in plan.policies:
            measured = [(row.percent, row.hit_ratio[policy] * 100) for row in rows if policy in row.hit_ratio]
            if measured:
                axes.plot(*zip(*measured, strict=True), marker="o", label=f"Redis {policy}")
        axes.plot(sizes, [row.exact_lru * 100 for row in rows], "k--", label="exact LRU (same trace)")
        axes.plot(sizes, [row.optimum * 100 for row in rows], "k:", label="optimum (Belady)")
        axes.set_xscale("log")
        axes.set_xticks(sizes, [f"{size:g}%" for size in sizes])
        axes.minorticks_off()
        axes.set_xlabel(
            f"maxmemory for records, % of the working set (100% = {human_bytes(report.working_set_bytes)}, "
            f"{plan.users:,} records), log scale"
        )
        axes.set_ylabel("hit ratio after the warm-up (% of lookups)")
        axes.set_title(
            f"How much memory buys how much hit ratio: {plan.lookups:,} lookups, Zipf {plan.zipf:g}, "
            f"redis-server {report.server}, maxmemory-samples {plan.samples}",
            fontsize=9,
        )
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize=8)
        figure.tight_layout()
        if footer:
            figure.text(0.995, 0.005, footer, ha="right", va="bottom", fontsize=6, color="grey", wrap=True)
        figure.savefig(path, format="svg", metadata=_SVG_METADATA)
    finally:
        pyplot.close(figure)
