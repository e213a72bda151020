"""Benchmark I/O: every lab (the prompt's `lab`), once each, at the sizes the prompt runs them; and lab memory.

Through the runner `main_async.py` uses (labs/_async/runner.py), on the benchmark's Redis,
under its `bench:` prefix, each lab in a folder of its own; a lab removes its keys as it
does at the prompt. lab memory runs on a redis-server of its own, as at the prompt, at the
prompt's defaults (smaller with --quick). The reports are kept whole: `figures.py` words
them, `plot.py` draws one chart per lab.
"""

from __future__ import annotations

import functools
import tempfile

from benchmarks.harness import BenchDatabase, run_async
from benchmarks.measurements import Measurements
from benchmarks.plan import PREFIX, Plan
from config.redis import RedisClients
from labs._async.memory import run_memory_lab
from labs._async.runner import run_lab
from labs.bench import LabBench
from labs.catalog import LABS, LabReport
from labs.memory import MemoryPlan, MemoryReport


def measure_labs(clients: RedisClients, plan: Plan, measurements: Measurements, data: BenchDatabase) -> None:
    """Run each lab once, defence off then on, in the async twin; a lab that cannot run here fails the step."""
    for name, spec in LABS.items():
        report = LabReport(spec)
        with tempfile.TemporaryDirectory(prefix="bench-lab-") as directory:
            bench = LabBench(clients, directory, PREFIX)
            run_async(clients, functools.partial(run_lab, name, bench, report))
        measurements.labs[name] = report


def measure_memory(clients: RedisClients, plan: Plan, measurements: Measurements, data: BenchDatabase) -> None:
    """lab memory in the async twin: each policy's hit ratio at each memory size, exact LRU and the optimum."""
    memory_plan = MemoryPlan(users=plan.memory_users, lookups=plan.memory_lookups, policies=plan.memory_policies)
    report = MemoryReport(memory_plan)
    with tempfile.TemporaryDirectory(prefix="bench-lab-") as directory:
        run_async(clients, functools.partial(run_memory_lab, report, directory, PREFIX, lambda line: None))
    measurements.memory = report
