"""Parity: the same scenario through both twins gives identical answers and identical Redis state."""

from __future__ import annotations

import inspect
import shutil

import fakeredis
import redis

from cli.answers import warning_of
from tests.twins import Twin, make_twin

SCENARIO = [
    ("seed", 20),
    ("lookup", 5),
    ("lookup", 500),
    ("lookup", 500),
    ("corrupt", 7),
    ("lookup", 7),
    ("lookup", 7),
    ("lookup", 2_000_000),
    ("lookup", 2_000_000),
    ("ttl", 2_000_000),
    ("delete", 5),
    ("lookup", 5),
    ("update", 6),
    ("lookup", 6),
    ("stampede", 900),
]


async def _run(twin: Twin, client: redis.Redis) -> tuple[list[tuple[object, ...]], dict[bytes, bytes]]:
    answers: list[tuple[object, ...]] = []
    for step, argument in SCENARIO:
        if step == "seed":
            report = await twin.seed("pipelined", argument)
            answers.append(("seed", report.requested, report.written, report.stopped))
        elif step == "corrupt":
            client.set(f"user-{argument}", b"not json")
        elif step in ("ttl", "delete", "update", "stampede"):
            arguments = (argument, 10) if step == "stampede" else (argument,)
            outcome = getattr(twin.cache, step)(*arguments)
            outcome = await outcome if inspect.isawaitable(outcome) else outcome
            if step == "ttl":
                outcome = (outcome.key, outcome.state, outcome.remaining_seconds is not None)
            elif step == "update":
                outcome = (outcome.key, outcome.record, outcome.invalidated)
            elif step == "stampede":
                outcome = (outcome.database_reads, outcome.lookups)  # how many shared depends on thread timing
            answers.append((step, outcome))
        else:
            result = await twin.lookup(argument)
            answers.append((result.user_id, result.key, result.source, result.value, warning_of(result)))
    state = {key: client.get(key) or b"" for key in sorted(client.scan_iter())}
    assert all(client.ttl(key) > 0 for key in state)
    answers.append(("stats", twin.cache.stats.snapshot().lookups, twin.database_reads))
    return answers, state


async def test_both_twins_give_identical_results_for_the_same_scenario() -> None:
    outcomes = []
    for name in ("sync", "async"):
        server = fakeredis.FakeServer()
        sync_client, async_client = fakeredis.FakeRedis(server=server), fakeredis.FakeAsyncRedis(server=server)
        shutil.copy("users.db", f"{name}.db")  # a fresh database each, as `update` changes it
        outcomes.append(await _run(make_twin(name, sync_client, async_client, database_path=f"{name}.db"), sync_client))
        await async_client.aclose()
    (sync_answers, sync_state), (async_answers, async_state) = outcomes
    assert sync_answers == async_answers
    assert sync_state == async_state
    lookups = [answer[2] for answer in sync_answers if len(answer) == 5]
    assert lookups == [
        "cache",
        "database",
        "cache",
        "database",
        "cache",
        "not-found",
        "negative-cache",
        "database",
        "database",
    ]
    assert sync_answers[-1] == ("stats", 19, 6)


def test_the_two_entry_points_mirror_each_other() -> None:
    import main
    import main_async

    sync_functions = {
        name for name, value in vars(main).items() if inspect.isfunction(value) and value.__module__ == "main"
    }
    async_functions = {
        name
        for name, value in vars(main_async).items()
        if inspect.isfunction(value) and value.__module__ == "main_async"
    }
    assert sync_functions == async_functions
