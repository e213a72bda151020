"""Prompt layer, pure: what `lab memory` prints: the hit ratio at each memory size, per curve, and a chart.

A table (memory in bytes and as a share of the working set, the records that memory holds,
then the hit ratio Redis measured under each policy, exact LRU's and the optimum's), the
records Redis really held, a terminal chart of the same numbers, and the one-line reading.
Nothing here runs the lab.
"""

from __future__ import annotations

import json

from cli.text import format_duration
from labs.memory import MemoryPlan, MemoryReport, human_bytes

CHART_ROWS = 12
CELL = 8  # a chart column's width
EXACT, OPTIMUM = "L", "O"  # the exact curves' marks; the policies are marked 1, 2, 3, ...


def render_memory_started(plan: MemoryPlan) -> str:
    """What `lab memory` is about to run (about a minute at the defaults)."""
    return (
        f"Lab memory: {plan.lookups:,} lookups of {plan.users:,} users (Zipf {plan.zipf:g}, seed {plan.seed}; the "
        f"first {plan.warmup:,} warm the cache, uncounted), through the lookup on a redis-server of its own: "
        f"{len(plan.policies)} policies x {len(plan.sizes)} memory sizes, maxmemory-samples {plan.samples}."
    )


def render_memory_report(report: MemoryReport, json_output: bool) -> str:
    """The curves side by side, the records Redis held, a chart, the reading, and where it lives (or its JSON)."""
    if json_output:
        return json.dumps(report.as_dict())
    plan = report.plan
    lines = [
        f"redis-server {report.server or '(not started)'} of the lab's own; working set "
        f"{human_bytes(report.working_set_bytes)} ({plan.users:,} records, {report.bytes_per_record:,.0f} B each, "
        "measured: used_memory with every record cached, less with none)."
    ]
    lines += _table(report) if report.rows else ["  (nothing measured)"]
    lines += _held(report)
    if report.distinct:
        lines.append(
            f"The trace asks for {report.distinct:,} distinct ids ({report.distinct / plan.users:.0%} of the records): "
            f"no memory past theirs hits more than {report.ceiling:.1%}; the rest are each id's first lookup."
        )
    lines += _chart(report)
    lines.append(f"Reading: {report.reading}")
    if report.unavailable:
        lines.append(
            f"Warning: {report.unavailable:,} lookups found this lab's Redis unavailable; each counted as a miss."
        )
    lines.append(
        "Where: labs/_async/memory.py: replay (maxmemory, the policy, the hits); "
        "labs/curves.py: lru_hit_ratios, optimal_hit_ratios"
    )
    if report.chart:
        lines.append(f"Chart: {report.chart}")
    ended = "cut short by Ctrl-C after " if report.interrupted else ""
    lines.append(f"({ended}{format_duration(report.seconds)})")
    return "\n".join(lines)


def _percent(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.1%}"


def _table(report: MemoryReport) -> list[str]:
    columns = ["memory", "% of set", "records", *report.plan.policies, "exact LRU", "optimum"]
    rows = [
        [
            human_bytes(row.bytes),
            f"{row.percent:g}%",
            f"{row.records:,}",
            *(_percent(row.hit_ratio.get(policy)) for policy in report.plan.policies),
            _percent(row.exact_lru),
            _percent(row.optimum),
        ]
        for row in report.rows
    ]
    widths = [max(len(column), *(len(row[index]) for row in rows)) for index, column in enumerate(columns)]
    header = "  " + "  ".join(f"{column:>{width}}" for column, width in zip(columns, widths, strict=True))
    body = ["  " + "  ".join(f"{cell:>{width}}" for cell, width in zip(row, widths, strict=True)) for row in rows]
    return ["Hit ratio of the lookups after the warm-up, by memory (maxmemory above the server's own):", header, *body]


def _held(report: MemoryReport) -> list[str]:
    """The records each size really held under the first policy: Redis counts bytes, the exact curves records."""
    policy = report.plan.policies[0]
    held = [row.held[policy] for row in report.rows if policy in row.held]
    if not held:
        return []
    return [f"Records Redis held when the trace ended, on {policy}: {', '.join(f'{count:,}' for count in held)}."]


def _chart(report: MemoryReport) -> list[str]:
    """The curves as marks on a grid: a column a size, a row a band of hit ratio."""
    policies = report.plan.policies
    marks = [
        [(str(index + 1), row.hit_ratio[policy]) for index, policy in enumerate(policies) if policy in row.hit_ratio]
        + [(EXACT, row.exact_lru), (OPTIMUM, row.optimum)]
        for row in report.rows
    ]
    values = [ratio * 100 for column in marks for _, ratio in column]
    if not values:
        return []
    low, high = min(values), max(values)
    low, high = 5 * (low // 5), 5 * (high // 5 + 1)
    band = (high - low) / CHART_ROWS
    lines = ["Hit ratio (%) by memory (% of the working set):"]
    for step in range(CHART_ROWS - 1, -1, -1):
        bottom = low + step * band
        cells = []
        for column in marks:
            here = "".join(mark for mark, ratio in column if bottom <= ratio * 100 < bottom + band)
            cells.append(f"{here[: CELL - 1]:^{CELL}}")
        lines.append(f"  {bottom + band / 2:5.1f} |" + "".join(cells))
    lines.append("        +" + "-" * CELL * len(marks))
    lines.append("         " + "".join(f"{f'{row.percent:g}%':^{CELL}}" for row in report.rows))
    legend = [f"{index + 1} {policy}" for index, policy in enumerate(policies)]
    lines.append("  " + "  ".join([*legend, f"{EXACT} exact LRU", f"{OPTIMUM} optimum"]))
    return lines
