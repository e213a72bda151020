"""`lab memory`: the hit ratio Redis's eviction policies reach at each memory size, next to exact LRU and the optimum.

The lab runs here on small traces, in both twins, on a redis-server it starts itself; the
checks are what the curves make certain (with room for every record each policy hits all but
each id's first lookup; exact LRU and the optimum never fall as memory grows, and the optimum
is never below LRU) and, for Redis's sampled policies, that a curve never falls by more than
MONOTONE_TOLERANCE. Its server is stopped on every way out, and the Redis the demo uses is
never touched. The exact curves themselves are checked against hand-worked traces in
tests/test_curves.py.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import os
import re
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import pexpect
import pytest
import redis

import main
import main_async
from cli.commands import Invalid, RunMemoryLab, parse_command
from cli.memory import render_memory_report
from labs._async import memory as async_memory
from labs._sync import memory as sync_memory
from labs.curves import lru_hit_ratios, optimal_hit_ratios
from labs.memory import DEFAULT_POLICIES, MONOTONE_TOLERANCE, MemoryPlan, MemoryReport, SizeRow, parse_memory_plan
from simulator._async.cache_aside import AsyncCacheAside
from simulator.results import LookupResult
from tests.conftest import PROJECT_ROOT
from tests.test_e2e import EXPECT_SECONDS, SCRIPTS, ctrl_c_as_at_a_terminal, script_env

TWINS = ["sync", "async"]
SHELLS = {"sync": main, "async": main_async}
SMALL = MemoryPlan(users=2_000, lookups=2_000, sizes=(5.0, 10.0, 20.0, 50.0, 100.0))
EMBEDDED = ["--redis-url", "memory://", "--seed-mode", "none", "--db-latency", "0"]


def lab_servers(directory: Path) -> list[int]:
    """The pids of the redis-server processes working in a folder under `directory`: the lab's own, if running.

    (A redis-server rewrites its command line to its address, but stays in its --dir.)
    """
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                name, folder = (entry / "comm").read_text().strip(), os.readlink(entry / "cwd")
            except OSError:  # gone meanwhile, or not ours to read
                continue
            if name.startswith("redis-server") and folder.startswith(str(directory)):
                pids.append(int(entry.name))
    return pids


def run(
    twin: str,
    plan: MemoryPlan,
    directory: Path,
    on_progress: Callable[[str], object] = lambda line: None,
    report: MemoryReport | None = None,
) -> MemoryReport:
    """`lab memory` through `twin`'s runner, its folder (and so its server's) in `directory`."""
    report = MemoryReport(plan) if report is None else report
    if twin == "sync":
        sync_memory.run_memory_lab(report, str(directory), "demo:", on_progress)
    else:
        asyncio.run(async_memory.run_memory_lab(report, str(directory), "demo:", on_progress))
    return report


def never_falls(curve: list[float], tolerance: float = 0.0) -> bool:
    return all(later >= earlier - tolerance for earlier, later in itertools.pairwise(curve))


@pytest.mark.integration
@pytest.mark.parametrize("twin", TWINS)
def test_the_curves_on_a_redis_server_of_its_own(twin: str, tmp_path: Path) -> None:
    report = run(twin, SMALL, tmp_path)
    trace = SMALL.trace()
    assert report.server
    assert report.working_set_bytes > 0
    assert report.unavailable == 0
    assert [row.percent for row in report.rows] == list(SMALL.sizes)
    exact = [row.exact_lru for row in report.rows]
    best = [row.optimum for row in report.rows]
    assert exact == lru_hit_ratios(trace, [row.records for row in report.rows], SMALL.warmup)
    assert best == optimal_hit_ratios(trace, [row.records for row in report.rows], SMALL.warmup)
    assert never_falls(exact)
    assert never_falls(best)
    assert all(optimum >= lru for optimum, lru in zip(best, exact, strict=True))
    assert report.ceiling == exact[-1] == best[-1]  # 100%: room for every record
    for policy in SMALL.policies:
        curve = [row.hit_ratio[policy] for row in report.rows]
        assert never_falls(curve, MONOTONE_TOLERANCE), (policy, curve)
        assert curve[-1] == report.ceiling  # nothing evicted: every lookup but each id's first is a hit
        assert report.rows[-1].held[policy] == len(set(trace))
        assert curve[0] < report.ceiling  # 5% of the memory: something was evicted
    assert lab_servers(tmp_path) == []


@pytest.mark.integration
@pytest.mark.parametrize("twin", TWINS)
def test_its_server_is_stopped_when_the_lab_is_cut_short(twin: str, tmp_path: Path) -> None:
    seen: list[str] = []

    def interrupt_after_the_first_policy(line: str) -> None:
        seen.append(line)
        assert lab_servers(tmp_path) != []  # running while it measures
        if DEFAULT_POLICIES[0] in line:
            raise KeyboardInterrupt

    report = MemoryReport(SMALL)
    with pytest.raises(KeyboardInterrupt):
        run(twin, SMALL, tmp_path, interrupt_after_the_first_policy, report)
    assert report.interrupted
    assert all(DEFAULT_POLICIES[0] in row.hit_ratio and DEFAULT_POLICIES[1] not in row.hit_ratio for row in report.rows)
    assert lab_servers(tmp_path) == []
    text = render_memory_report(report, False)
    assert "(cut short by Ctrl-C after " in text
    measured_then_not = re.findall(r"\d% +- +- +- +\d+\.\d% +\d+\.\d%$", text, re.MULTILINE)
    assert len(measured_then_not) == len(SMALL.sizes)  # the first policy's column measured, the others "-"


@pytest.mark.integration
async def test_a_cancellation_the_client_swallows_still_stops_the_lab_at_the_next_lookup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """redis.asyncio can swallow a cancellation that lands as a reply arrives; the lab must stop anyway."""
    lookup, started_after = AsyncCacheAside.lookup, []

    async def swallowing(self: AsyncCacheAside, user_id: int) -> LookupResult:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            started_after.append(user_id)
        inner = asyncio.ensure_future(lookup(self, user_id))
        while True:
            try:
                return await asyncio.shield(inner)
            except asyncio.CancelledError:
                continue  # swallowed: the call returns as if nothing happened, as redis.asyncio's sometimes does

    monkeypatch.setattr(AsyncCacheAside, "lookup", swallowing)
    report = MemoryReport(SMALL)

    def cancel_once_its_server_is_up(line: str) -> None:
        if " is up; " in line:
            task.cancel()

    task = asyncio.ensure_future(
        async_memory.run_memory_lab(report, str(tmp_path), "demo:", cancel_once_its_server_is_up)
    )
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(started_after) <= 1  # the lookup under way when it came, and not one more
    assert report.interrupted
    assert lab_servers(tmp_path) == []


@pytest.mark.parametrize("twin", TWINS)
def test_without_a_redis_server_binary_it_says_so_in_one_line_and_the_prompt_goes_on(
    twin: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no redis-server here; the demo runs on the embedded Redis
    out, err = io.StringIO(), io.StringIO()
    stdin = io.BytesIO(b"lab memory\nlab memory --json\n42\n")
    code = SHELLS[twin].main(EMBEDDED, stdin=stdin, stdout=out, stderr=err)
    assert code == 0
    lines = out.getvalue().splitlines()
    said = "lab memory starts a redis-server of its own, and none is installed (apt-get install -y redis-server;"
    assert lines[0].startswith(said)
    assert json.loads(lines[1])["error"].startswith(said)
    assert re.match(r"(Stored|Found in cache): user-42 = ", lines[2])
    assert "Traceback" not in err.getvalue()


@pytest.mark.integration
@pytest.mark.parametrize("twin", TWINS)
def test_through_the_prompt_as_json_with_a_chart_never_touching_the_demos_redis(
    twin: str, redis_url: str, tmp_path: Path
) -> None:
    demo = redis.Redis.from_url(redis_url)
    demo.set("user-42", b"the user's own")
    settings_before = demo.config_get("maxmemory*")
    chart = tmp_path / "Curve.svg"
    command = f"lab memory --users 1000 --lookups 1000 --sizes 10,100 --policies allkeys-lru --plot {chart} --json\n"
    out, err = io.StringIO(), io.StringIO()
    arguments = ["--redis-url", redis_url, "--seed-mode", "none", "--db-latency", "0"]
    code = SHELLS[twin].main(arguments, stdin=io.BytesIO(command.encode()), stdout=out, stderr=err)
    assert code == 0
    answer = json.loads(out.getvalue().splitlines()[-1])
    assert answer["lab"] == "memory"
    assert answer["interrupted"] is False
    assert answer["plan"]["users"] == 1000
    assert answer["plan"]["policies"] == ["allkeys-lru"]
    assert [size["percent"] for size in answer["sizes"]] == [10.0, 100.0]
    assert answer["sizes"][1]["hit_ratio"]["allkeys-lru"] == answer["ceiling"]
    assert answer["chart"] == str(chart)
    assert "<svg" in chart.read_text()
    assert "Lab memory: 1,000 lookups of 1,000 users" in err.getvalue()
    assert [key for key in demo.scan_iter() if b"lab" in key] == []  # the lab's keys were on its own server
    assert demo.get("user-42") == b"the user's own"
    assert demo.config_get("maxmemory*") == settings_before
    demo.close()


@pytest.mark.parametrize("twin", TWINS)
def test_a_chart_that_cannot_be_written_is_refused_before_anything_runs(twin: str, tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    command = f"lab memory --plot {tmp_path / 'no-such-folder' / 'x.svg'}\n".encode()
    code = SHELLS[twin].main(EMBEDDED, stdin=io.BytesIO(command), stdout=out, stderr=err)
    assert code == 0
    assert out.getvalue().startswith("--plot: there is no folder ")
    assert "Lab memory:" not in err.getvalue()  # nothing started


@pytest.mark.e2e
@pytest.mark.integration
@pytest.mark.parametrize("script", SCRIPTS)
def test_ctrl_c_in_the_middle_of_lab_memory_prints_what_was_measured_and_stops_its_server(
    script: str, tmp_path: Path
) -> None:
    child = pexpect.spawn(
        sys.executable,
        [str(PROJECT_ROOT / script), *EMBEDDED],
        cwd=str(tmp_path),
        env=script_env(TMPDIR=str(tmp_path)),  # the lab's folder, and so its server's, under tmp_path
        timeout=EXPECT_SECONDS,
        encoding="utf-8",
        codec_errors="replace",
        preexec_fn=ctrl_c_as_at_a_terminal,
    )
    try:
        child.expect("user id>")
        child.sendline("lab memory --users 1000 --lookups 100000")
        child.expect(" is up; caching the ")  # its server is up, and a minute of lookups begins
        assert lab_servers(tmp_path) != []
        child.sendcontrol("c")
        child.expect(re.escape("Reading: Nothing was measured."))
        child.expect(r"\(cut short by Ctrl-C after ")
        child.expect("Interrupted.")
        child.expect(pexpect.EOF)
        assert "Traceback" not in (child.before or "")
    finally:
        child.close(force=True)
        left = lab_servers(tmp_path)
        for pid in left:  # a failed run's server must not outlive the test
            os.kill(pid, signal.SIGKILL)
    assert child.exitstatus == 130
    assert left == []
    assert not any(name.startswith("cache-aside-lab-") for name in os.listdir(tmp_path))


# --- pure: the plan, the rows, what it prints ---


def test_the_plan_from_the_prompt() -> None:
    assert parse_memory_plan([]) == MemoryPlan()
    typed = "--zipf 0.8 --lookups=2,000 --users 1000 --seed 7 --policies allkeys-lru,VOLATILE-TTL "
    typed += "--sizes 50,10%,10 --samples 10 --plot Out.svg --json"
    plan = parse_memory_plan(typed.split())
    assert plan == MemoryPlan(
        zipf=0.8,
        lookups=2000,
        users=1000,
        seed=7,
        policies=("allkeys-lru", "volatile-ttl"),
        sizes=(10.0, 50.0),
        samples=10,
        plot="Out.svg",
        json=True,
    )
    command = parse_command("LAB Memory --plot Charts/Mine.svg")
    assert isinstance(command, RunMemoryLab)
    assert command.plan.plot == "Charts/Mine.svg"


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("--nope 1", "--nope is not a lab memory option"),
        ("--seed 1 --seed 2", "--seed is not a lab memory option (it was given twice)"),
        ("--lookups 999", "--lookups takes a whole number from 1,000 to 1,000,000"),
        ("--lookups", "--lookups takes a whole number from 1,000 to 1,000,000"),
        ("--zipf -1", "--zipf takes a number from 0 to 5"),
        ("--policies noeviction", "--policies takes policies separated by commas, of allkeys-lru,"),
        ("--sizes 0,10", "--sizes takes up to 20 percentages of the working set, above 0 and at most 100"),
        ("--sizes 101", "--sizes takes up to 20 percentages"),
        ("--samples 65", "--samples takes a whole number from 1 to 64"),
        ("--plot chart.png", "--plot takes a file name ending in .svg"),
    ],
)
def test_a_bad_option_is_one_line(typed: str, said: str) -> None:
    problem = parse_memory_plan(typed.split())
    assert isinstance(problem, str)
    assert problem.startswith(said)
    command = parse_command(f"lab memory {typed}")
    assert isinstance(command, Invalid)
    assert command.message.startswith(f'Not a lab memory command: "lab memory {typed}": {said}')
    assert "\n" not in command.message


def hand_report() -> MemoryReport:
    """Ten users of 100 bytes each, and rows whose numbers are worked out by hand."""
    plan = MemoryPlan(users=100, lookups=1000, policies=("allkeys-lru", "allkeys-lfu"), sizes=(5.0, 10.0, 20.0))
    report = MemoryReport(plan, server="7.0.15", working_set_bytes=10_000)
    report.rows = [
        SizeRow(5.0, 500, 5, 0.50, 0.60, {"allkeys-lru": 0.40, "allkeys-lfu": 0.45}, {"allkeys-lru": 5}),
        SizeRow(10.0, 1000, 10, 0.60, 0.70, {"allkeys-lru": 0.55, "allkeys-lfu": 0.58}, {"allkeys-lru": 10}),
        SizeRow(20.0, 2000, 20, 0.70, 0.75, {"allkeys-lru": 0.67}, {"allkeys-lru": 20}),
    ]
    return report


def test_the_rows_hold_what_the_bytes_hold_and_the_exact_curves_on_the_trace() -> None:
    report = MemoryReport(MemoryPlan(users=100, lookups=1000, sizes=(1.0, 10.0, 100.0)), working_set_bytes=10_000)
    trace = ([1, 2, 1, 3, 2, 1, 1] * 143)[:1000]
    rows = report.size_rows(trace)
    assert [(row.bytes, row.records) for row in rows] == [(100, 1), (1000, 10), (10_000, 100)]
    assert [row.exact_lru for row in rows] == lru_hit_ratios(trace, [1, 10, 100], 250)
    assert [row.optimum for row in rows] == optimal_hit_ratios(trace, [1, 10, 100], 250)
    assert (report.distinct, report.ceiling) == (3, 1.0)  # every id was seen in the warm-up


def test_the_reading_and_the_table_say_what_was_measured() -> None:
    report = hand_report()
    assert report.reading == (
        "With Zipf 1.1, 10% of the memory (1.0 KB) answers 55.0% of lookups on allkeys-lru "
        "(exact LRU 60.0%, the optimum 70.0%); doubling it adds 12.0 points."
    )
    text = render_memory_report(report, False)
    assert "allkeys-lru  allkeys-lfu  exact LRU  optimum" in text
    assert re.search(r"2\.0 KB +20% +20 +67\.0% +- +70\.0% +75\.0%", text)  # lfu not measured at 20%
    assert "Records Redis held when the trace ended, on allkeys-lru: 5, 10, 20." in text
    assert "1 allkeys-lru  2 allkeys-lfu  L exact LRU  O optimum" in text
    as_json = json.loads(render_memory_report(report, True))
    assert as_json["sizes"][2]["hit_ratio"] == {"allkeys-lru": 0.67}
    assert as_json["bytes_per_record"] == 100.0


def test_a_lab_that_measured_nothing_says_so() -> None:
    report = MemoryReport(MemoryPlan(), interrupted=True)
    assert report.reading == "Nothing was measured."
    assert "(nothing measured)" in render_memory_report(report, False)
