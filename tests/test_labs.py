"""The labs: each runs a defence off, then on, through the demo's own lookup, and its figures say what ran.

Each lab runs here at small sizes (SMALL), in both twins, on a private redis-server and on the
embedded Redis; the figures are checked against what the scenario makes certain (the stampede
without protection reads the database once per lookup, with the lease once in all; the race
without the guard leaves version 0 cached), never against a wall-clock margin of the test's
own. Every lab removes its keys and touches no other. The prompt's `lab` command, its JSON
and Ctrl-C in the middle of one are checked through the real scripts.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pexpect
import pytest
import redis
import redis.asyncio

import main
import main_async
from cli.commands import Invalid, ListLabs, RunLab, parse_command
from cli.labs import render_lab_list, render_lab_report
from config.redis import RedisClients
from config.settings import EMBEDDED_REDIS_URL, Settings
from labs._async import runner as async_runner
from labs._sync import runner as sync_runner
from labs.bench import (
    Expiry,
    LabBench,
    Negative,
    Outage,
    Refresh,
    Scenarios,
    Stampede,
    lab_prefix,
    most_within,
    per_step,
)
from labs.catalog import LABS, LabReport, LabRun, ratio
from tests.conftest import PROJECT_ROOT
from tests.test_e2e import EXPECT_SECONDS, SCRIPTS, ctrl_c_as_at_a_terminal, script_env
from tests.twins import wait_until

SMALL = Scenarios(
    stampede=Stampede(processes=3, lookups_each=5, latency=0.5),
    expiry=Expiry(keys=60, ttl=2, seconds=3.0, workers=4, step=0.5),
    negative=Negative(ids=10, rounds=3, latency=0.0),
    refresh=Refresh(ttl=1, latency=0.1, seconds=2.5, workers=4),
    outage=Outage(ids=5, before=0.3, outage=1.2, after=0.8, timeout=0.1, cooldown=0.3, latency=0.005),
)
TWINS = ["sync", "async"]
KEPT = {"user-42": b"the user's own", "not-the-demo": b"left alone"}  # keys a lab must never touch


def run_lab(twin: str, name: str, settings: Settings, directory: Path, key_prefix: str = "") -> LabReport:
    """Run one lab at SMALL sizes through `twin`'s runner, with clients of its own, closed after."""
    report = LabReport(LABS[name], SMALL)
    clients = RedisClients(settings)
    bench = LabBench(clients, str(directory), key_prefix, SMALL)
    if twin == "sync":
        try:
            sync_runner.run_lab(name, bench, report)
        finally:
            clients.close()
        return report

    async def run() -> None:
        try:
            await async_runner.run_lab(name, bench, report)
        finally:
            await clients.aclose()

    asyncio.run(run())
    return report


def figures(report: LabReport) -> list[dict[str, object]]:
    assert len(report.runs) == len(report.spec.runs), "every run ended"
    assert not report.interrupted
    return [dict(run.figures) for run in report.runs]


# --- each lab's figures, against what its scenario makes certain ---


def check_stampede(report: LabReport) -> None:
    none, flight, lease = figures(report)
    size = SMALL.stampede
    lookups = size.processes * size.lookups_each
    assert [run["lookups"] for run in (none, flight, lease)] == [lookups] * 3
    assert none["database reads"] == none["most reads at once"] == lookups  # once per lookup
    assert flight["database reads"] == flight["most reads at once"] == size.processes  # once per process
    assert lease["database reads"] == lease["most reads at once"] == 1  # once in all
    assert [run["errors"] for run in (none, flight, lease)] == [0, 0, 0]
    assert none["latency p50 (ms)"] >= size.latency * 1000  # each waited for a read of its own
    for run in (none, flight, lease):  # and the slowest, in every run, for a whole read
        assert run["latency p50 (ms)"] <= run["latency p99 (ms)"]
        assert run["latency p99 (ms)"] >= size.latency * 1000
    assert f"from {lookups} to 1" in report.verdict


def check_race(report: LabReport) -> None:
    off, on = figures(report)
    assert off["version in the database"] == on["version in the database"] == 1
    assert off["version left in the cache"] == 0  # the stale set landed
    assert off["version the next lookup answers"] == 0  # and is answered
    assert 0 < off["stale for (s)"] <= SMALL.race.ttl
    assert on["version left in the cache"] is None  # the guard refused the stale store
    assert on["version the next lookup answers"] == 1
    assert on["stale for (s)"] == 0


def check_expiry(report: LabReport) -> None:
    off, on = figures(report)
    size = SMALL.expiry
    together = f"most keys expiring within {size.step:g} s"
    assert off[together] == size.keys  # one TTL: every key expires at once
    assert on[together] < size.keys  # jitter: spread out
    series_off, series_on = (run.series for run in report.runs)
    before_expiry = [count for start, count in series_off if start + size.step <= size.ttl - 0.5]
    assert before_expiry
    assert sum(before_expiry) == 0  # no key was missing before its TTL ended
    assert sum(count for start, count in series_on if start < size.ttl - 0.5) > 0  # shorter TTLs ended first
    for run in (off, on):
        assert run[f"peak reads in {size.step:g} s"] <= run["database reads"]


def check_negative(report: LabReport) -> None:
    off, on = figures(report)
    size = SMALL.negative
    lookups = size.ids * size.rounds
    assert off == {"lookups": lookups, "database reads": lookups, "answered from the cache": 0}
    assert on == {"lookups": lookups, "database reads": size.ids, "answered from the cache": lookups - size.ids}
    assert f"from {lookups} to {size.ids} ({lookups / size.ids:.1f}x fewer)" in report.verdict


def check_refresh(report: LabReport) -> None:
    off, on = figures(report)
    assert off["lookups that paid a miss"] >= 1  # the key expired under traffic
    assert off["slowest (ms)"] >= SMALL.refresh.latency * 1000  # and one waited a read
    assert on["lookups that paid a miss"] < off["lookups that paid a miss"]
    for run in (off, on):
        assert run["latency p50 (ms)"] <= run["latency p99 (ms)"] <= run["slowest (ms)"]


def check_outage(report: LabReport) -> None:
    off, on = figures(report)
    size = SMALL.outage
    for run in (off, on):
        assert run["lookups during the outage"] >= 1
        assert run["answered"] == run["lookups during the outage"]  # from the database: nothing failed
        assert run["errors"] == 0
        assert run["back on the cache after (s)"] is not None  # the cache was used again once it returned
    assert off["p50 during the outage (ms)"] >= size.timeout * 1000 - 0.1  # each waited a timeout
    assert on["p50 during the outage (ms)"] < size.timeout * 1000  # most skipped Redis
    assert on["lookups during the outage"] > off["lookups during the outage"]


CHECKS: dict[str, Callable[[LabReport], None]] = {
    "stampede": check_stampede,
    "race": check_race,
    "expiry": check_expiry,
    "negative": check_negative,
    "refresh": check_refresh,
    "outage": check_outage,
}


def keep_others(client: redis.Redis) -> None:
    for key, value in KEPT.items():
        client.set(key, value)


def assert_only_others_left(client: redis.Redis, prefix: str = "") -> None:
    assert list(client.scan_iter(match=f"{prefix}user-lab-*")) == []
    for key, value in KEPT.items():
        assert client.get(key) == value


@pytest.mark.integration
@pytest.mark.parametrize("twin", TWINS)
@pytest.mark.parametrize("name", list(LABS))
def test_each_lab_on_a_redis_server_measures_what_its_scenario_makes_certain(
    twin: str, name: str, redis_url: str, tmp_path: Path
) -> None:
    client = redis.Redis.from_url(redis_url)
    keep_others(client)
    folder = tmp_path / "lab"
    folder.mkdir()
    report = run_lab(twin, name, Settings(redis_url=redis_url, redis_configured=True), folder)
    CHECKS[name](report)
    assert_only_others_left(client)
    assert list(folder.iterdir()) == []  # its databases removed too
    client.close()


@pytest.mark.parametrize("twin", TWINS)
@pytest.mark.parametrize("name", ["stampede", "race", "outage"])  # the ones the embedded Redis serves its own way
def test_the_labs_run_on_the_embedded_redis_too(twin: str, name: str, tmp_path: Path) -> None:
    settings = Settings(redis_url=EMBEDDED_REDIS_URL)
    report = LabReport(LABS[name], SMALL)
    clients = RedisClients(settings)
    keep_others(clients.sync_client())
    bench = LabBench(clients, str(tmp_path), "demo:", SMALL)
    try:
        if twin == "sync":
            sync_runner.run_lab(name, bench, report)
        else:
            asyncio.run(run_async_and_close_async_clients(name, bench, report))
        CHECKS[name](report)
        assert_only_others_left(clients.sync_client(), "demo:")  # the same in-process server
    finally:
        clients.close()


async def run_async_and_close_async_clients(name: str, bench: LabBench, report: LabReport) -> None:
    try:
        await async_runner.run_lab(name, bench, report)
    finally:
        await bench.clients.aclose()


@pytest.mark.parametrize("twin", TWINS)
def test_a_lab_writes_only_in_its_own_namespace(twin: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clients = RedisClients(Settings(redis_url=EMBEDDED_REDIS_URL))
    keep_others(clients.sync_client())
    written: set[str] = set()  # every key there just before the lab removes its own

    def spy(client: redis.Redis, prefix: str) -> None:
        written.update(key.decode() for key in client.scan_iter(match="*"))
        original(client, prefix)

    async def async_spy(client: redis.asyncio.Redis, prefix: str) -> None:
        written.update([key.decode() async for key in client.scan_iter(match="*")])
        await async_original(client, prefix)

    original, async_original = sync_runner.remove_keys, async_runner.remove_keys
    monkeypatch.setattr(sync_runner, "remove_keys", spy)
    monkeypatch.setattr(async_runner, "remove_keys", async_spy)
    report, bench = LabReport(LABS["negative"], SMALL), LabBench(clients, str(tmp_path), "demo:", SMALL)
    try:
        if twin == "sync":
            sync_runner.run_lab("negative", bench, report)
        else:
            asyncio.run(run_async_and_close_async_clients("negative", bench, report))
    finally:
        clients.close()
    labs = written - set(KEPT)
    assert labs  # it wrote keys, each in the namespace of its run, under the demo's prefix
    assert all(key.startswith((lab_prefix("demo:", "negative", 0), lab_prefix("demo:", "negative", 1))) for key in labs)


@pytest.mark.parametrize("twin", TWINS)
def test_the_outage_lab_says_in_one_line_why_it_cannot_run_on_a_cluster(twin: str, tmp_path: Path) -> None:
    settings = Settings(redis_url="redis://127.0.0.1:1/0", redis_configured=True, redis_cluster=True)
    with pytest.raises(sync_runner.LabUnavailable if twin == "sync" else async_runner.LabUnavailable) as caught:
        run_lab(twin, "outage", settings, tmp_path)  # nothing is listening there: it asks nothing of Redis first
    assert str(caught.value) == (
        "lab outage needs one Redis server (or the embedded one): a Cluster or Sentinel client finds its own way"
    )


# --- the prompt's command, through the real entry points ---

SHELLS = {"sync": main, "async": main_async}
DEMO = ["--redis-url", "memory://", "--seed-mode", "none", "--db-latency", "0"]


@pytest.mark.parametrize("twin", TWINS)
def test_lab_lists_the_labs_runs_one_as_json_and_refuses_an_unknown_one(twin: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = SHELLS[twin].main(DEMO, stdin=io.BytesIO(b"lab\nlab negative --json\nlab nope\n"), stdout=out, stderr=err)
    assert code == 0
    lines = out.getvalue().splitlines()
    listing = [line for line in lines if line.startswith("  lab ")]
    assert [line.split()[1] for line in listing] == [*LABS, "memory"]
    answer = json.loads(next(line for line in lines if line.startswith("{")))
    assert answer["lab"] == "negative"
    assert [run["label"] for run in answer["runs"]] == ["no negative caching", "negative caching"]
    size = Scenarios().negative
    lookups = size.ids * size.rounds
    assert [run["figures"]["database reads"] for run in answer["runs"]] == [lookups, size.ids]
    assert answer["sizes"] == {"ids": size.ids, "rounds": size.rounds, "latency": size.latency}
    assert answer["interrupted"] is False
    refused = 'Not a lab command: "lab nope". Type lab (the list), lab <name> [--json] (stampede, race, expiry,'
    assert any(line.startswith(refused) for line in lines)
    assert "Lab negative: " in err.getvalue()  # what it runs: a note, so stdout stays one JSON object a line


@pytest.mark.e2e
@pytest.mark.integration
@pytest.mark.parametrize("script", SCRIPTS)
def test_ctrl_c_in_the_middle_of_a_lab_prints_what_was_measured_removes_its_keys_and_exits_130(
    script: str, redis_url: str, tmp_path: Path
) -> None:
    client = redis.Redis.from_url(redis_url)
    keep_others(client)
    child = pexpect.spawn(
        sys.executable,
        [str(PROJECT_ROOT / script), "--redis-url", redis_url, "--seed-mode", "none", "--db-latency", "0"],
        cwd=str(tmp_path),
        env=script_env(),
        timeout=EXPECT_SECONDS,
        encoding="utf-8",
        codec_errors="replace",
        preexec_fn=ctrl_c_as_at_a_terminal,
    )
    try:
        child.expect("user id>")
        child.sendline("lab expiry")
        child.expect("Lab expiry: ")
        wait_for_lab_keys(client)  # its first run is under way: its keys are written
        child.sendcontrol("c")
        child.expect(re.escape("Verdict: Cut short after 0 of 2 runs: no verdict."))
        child.expect(r"\(cut short by Ctrl-C after ")
        child.expect("Interrupted.")
        child.expect(pexpect.EOF)
        assert "Traceback" not in (child.before or "")
    finally:
        child.close(force=True)
    assert child.exitstatus == 130
    assert_only_others_left(client)
    client.close()


def wait_for_lab_keys(client: redis.Redis) -> None:
    wait_until(lambda: any(True for _ in client.scan_iter(match="user-lab-expiry-0:*")), "the lab's keys")


# --- what a lab prints, pure ---


def test_a_ratio_is_never_taken_over_a_zero_without_saying_so() -> None:
    assert ratio(100, 4, "fewer") == "25.0x fewer"
    assert ratio(8, 0, "fewer") == "down to none: no ratio over zero"
    assert ratio(0, 0, "fewer") == "none either way"
    assert ratio(None, 3, "fewer") == "not measured"


def test_most_within_counts_the_densest_window() -> None:
    assert most_within([], 0.5) == 0
    assert most_within([1.0, 1.1, 1.2, 3.0], 0.5) == 3
    assert most_within([1.0, 1.5, 2.0], 0.5) == 1  # a window is shorter than its length
    assert per_step([0.1, 0.2, 0.6, 5.0], 0.5, 1.0) == ((0.0, 2), (0.5, 1))  # outside the span: not counted


def test_parse_lab() -> None:
    assert parse_command("lab") == ListLabs()
    assert parse_command("labs") == ListLabs()
    assert parse_command("LAB Stampede") == RunLab("stampede")
    assert parse_command("lab race --json") == RunLab("race", json=True)
    for typed in ("lab nope", "lab race --yaml", "lab race race"):
        command = parse_command(typed)
        assert isinstance(command, Invalid)
        assert "\n" not in command.message


def test_the_list_has_a_line_a_lab_and_json() -> None:
    text = render_lab_list(json_output=False).splitlines()
    assert len(text) == 1 + len(LABS) + 1  # and lab memory, which runs no defence off and on
    assert list(json.loads(render_lab_list(json_output=True))["labs"]) == [*LABS, "memory"]


def test_a_lab_cut_short_shows_what_it_measured_and_no_verdict() -> None:
    report = LabReport(LABS["negative"], runs=[LabRun("no negative caching", {}, {"lookups": 5})], interrupted=True)
    text = render_lab_report(report, json_output=False)
    assert "Verdict: Cut short after 1 of 2 runs: no verdict." in text
    assert "cut short by Ctrl-C after" in text
    assert "  lookups" in text


def test_every_lab_names_code_that_exists() -> None:
    for spec in LABS.values():
        for place in spec.where.split("; "):
            path, _, names = place.partition(": ")
            source = (PROJECT_ROOT / path).read_text()
            first = re.split(r"[ ,(]", names)[0].split(".")[-1]
            assert re.search(rf"(def|class) {first}\b", source), f"{spec.name}: {first} in {path}"
