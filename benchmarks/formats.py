"""Benchmark, pure: how a figure is written where a reader sees it: `1.23x`, `0.017`, `46-48` loader calls, `1 error`.

A figure that was not measured reads "n/a". The table (`table.py`) and the words of the
targets and of each peer's standing (`targets.py`, `figures.py`) all write figures through
these, so a figure reads the same wherever it appears. Text only: nothing here decides or
changes a figure.
"""

from __future__ import annotations

from typing import Any


def loader_calls(row: dict[str, Any]) -> str:
    """Loader calls of the worst round, or the range when rounds differ."""
    low, high = row["loader_calls_min"], row["loader_calls"]
    return f"{high:,}" if low == high else f"{low:,}-{high:,}"


def times(value: float | None) -> str:
    """A ratio as a multiple: `1.23x`."""
    return "n/a" if value is None else f"{value:.2f}x"


def cell(value: float | None, pattern: str) -> str:
    """A number in `pattern` (`.3f`, `,.0f`)."""
    return "n/a" if value is None else format(value, pattern)


def counted(number: int, noun: str) -> str:
    """A count with its noun, plural unless one: `1 error`, `1,649 cache errors`."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"
