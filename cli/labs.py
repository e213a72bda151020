"""Prompt layer, pure: what `lab` prints: the list of labs, and one lab's runs side by side.

A lab's table has a column per run and a row per figure, each figure as it was measured (a
run cut short shows what it measured, and the verdict says there is none); the expiry lab
adds a small chart of database reads over time, with its units. Nothing here runs a lab.
"""

from __future__ import annotations

import json

from cli.text import format_duration
from labs.catalog import LABS, LabReport, LabRun, figure_text
from labs.memory import MEMORY_SUMMARY

BARS = " ▁▂▃▄▅▆▇█"


def render_lab_list(json_output: bool) -> str:
    """The answer to `lab`: each lab's name and what it runs, a line each."""
    summaries = {**{name: spec.summary for name, spec in LABS.items()}, "memory": MEMORY_SUMMARY}
    if json_output:
        return json.dumps({"labs": summaries})
    width = max(len(name) for name in summaries)
    lines = [f"  lab {name:<{width}}  {summary}" for name, summary in summaries.items()]
    return "\n".join(("Labs (each but memory runs a defence off, then on, and measures both):", *lines))


def render_lab_started(report: LabReport) -> str:
    """What a lab is about to run (it takes a few seconds)."""
    return f"Lab {report.spec.name}: {report.scenario}"


def render_lab_report(report: LabReport, json_output: bool) -> str:
    """One lab's runs side by side, the verdict, what it shows and where the defence lives (or its JSON)."""
    spec = report.spec
    if json_output:
        return json.dumps(report.as_dict())
    lines = [*_table(report.runs), *_chart(report.runs)]
    lines.append(f"Verdict: {report.verdict}")
    lines.append(f"What it shows: {spec.shows[0]}")
    lines.append(f"               {spec.shows[1]}")
    lines.append(f"Where: {spec.where}")
    ended = "cut short by Ctrl-C after " if report.interrupted else ""
    lines.append(f"({ended}{format_duration(report.seconds)})")
    return "\n".join(lines)


def _table(runs: list[LabRun]) -> list[str]:
    if not runs:
        return ["  (no run finished)"]
    rows = list(runs[0].figures)
    first = max(len(row) for row in rows)
    widths = [max(len(run.label), *(len(figure_text(run.figures.get(row))) for row in rows)) for run in runs]
    header = "  " + " " * first + "".join(f"  {run.label:>{width}}" for run, width in zip(runs, widths, strict=True))
    body = [
        f"  {row:<{first}}"
        + "".join(f"  {figure_text(run.figures.get(row)):>{width}}" for run, width in zip(runs, widths, strict=True))
        for row in rows
    ]
    return [header, *body]


def _chart(runs: list[LabRun]) -> list[str]:
    """A bar a step for each run with a series (database reads in each step of time), on one scale."""
    series = [run for run in runs if run.series]
    if not series:
        return []
    top = max(count for run in series for _, count in run.series) or 1
    label = max(len(run.label) for run in series)
    step = series[0].series[1][0] - series[0].series[0][0] if len(series[0].series) > 1 else 0
    end = series[0].series[-1][0] + step
    lines = [f"  database reads per {step:g} s, from the write to {end:g} s (full bar: {top:,}):"]
    for run in series:
        bars = "".join(BARS[round(count / top * (len(BARS) - 1))] for _, count in run.series)
        lines.append(f"  {run.label:<{label}}  |{bars}|  peak {max(count for _, count in run.series):,}")
    return lines
