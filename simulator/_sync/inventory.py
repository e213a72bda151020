# Written by scripts/unasync.py from simulator/_async/inventory.py: edit that file, then run the script.
"""Simulator layer, I/O shell: what the cache holds in the demo's namespace (`cache`), written once for both twins.

The shell only SCANs the namespace (on a Redis Cluster, master by master: one that cannot be
reached is named, not fatal), reads each key's head in pipelines, and asks PTTL, MEMORY USAGE
and STRLEN of a sample; what each key holds and the summary are simulator/inventory.py's.
scripts/unasync.py writes the blocking twin.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from config.redis import SyncClient, scan_targets
from config.redis_failures import UNAVAILABLE_ERRORS
from config.speedups import routed
from simulator.inventory import (
    MAX_SCANNED_KEYS,
    READ_BATCH,
    SAMPLE_KEYS,
    SCAN_COUNT,
    CacheInventory,
    Routed,
    Survey,
    head_commands,
    sample_commands,
)
from simulator.policy import CachePolicy


def take_inventory(
    client: SyncClient, policy: CachePolicy, limit: int = MAX_SCANNED_KEYS, sample_size: int = SAMPLE_KEYS
) -> CacheInventory:
    """What the cache holds in the demo's namespace: its keys by kind (SCAN, never KEYS), a sample's bytes and TTLs."""
    started, survey = time.perf_counter(), Survey(policy, limit, sample_size)
    for node, target in scan_targets(client):  # on a cluster, master by master: one down is named, not fatal
        try:
            _survey_part(client, survey, target)
        except UNAVAILABLE_ERRORS as error:
            survey.part_failed(node, error)
    replies = _send(client, sample_commands(survey.sample))
    return survey.report(replies, time.perf_counter() - started)


def _survey_part(client: SyncClient, survey: Survey, target: dict[str, Any]) -> None:
    batch: list[str] = []
    for raw in client.scan_iter(match=survey.policy.scan_pattern, count=SCAN_COUNT, **target):
        if (key := survey.admit(raw)) is not None:
            batch.append(key)
        elif survey.capped:
            break
        if len(batch) >= READ_BATCH:
            survey.classify(batch, _send(client, head_commands(batch)))
            batch = []
    survey.classify(batch, _send(client, head_commands(batch)))


def _send(client: SyncClient, commands: Sequence[Routed]) -> list[Any]:
    """The commands in one pipeline, each to its key's node on a cluster; an error comes back as its reply."""
    if not commands:
        return []
    pipeline: Any = client.pipeline(transaction=False)
    for key, command in commands:
        pipeline.execute_command(*command, **routed(client, key))
    replies: list[Any] = pipeline.execute(raise_on_error=False)
    return replies
