"""Simulator layer, I/O shell: tying the cache's namespace to this database, written once for both twins.

What the marker means and where a database moves when another holds its namespace is
simulator/namespace.py's; this shell only sets and reads the marker. scripts/unasync.py
writes the blocking twin.
"""

from __future__ import annotations

from config.redis import AsyncClient
from config.redis_failures import CACHE_ERRORS
from simulator.namespace import Namespace, marker_key, marker_value, moved, settled
from simulator.policy import CachePolicy


async def claim_namespace(
    client: AsyncClient, policy: CachePolicy, identity: int, where: str, take_over: bool = False
) -> Namespace:
    """Tie the configured namespace to this database, or move to one of its own if another database has it."""
    marker = marker_value(identity, where)
    try:
        await client.set(marker_key(policy.key_prefix), marker, nx=not take_over)
        owner = await client.get(marker_key(policy.key_prefix))
        if (namespace := settled(policy, identity, owner)) is not None:
            return namespace
        namespace = moved(policy, identity, owner)
        await client.set(marker_key(namespace.policy.key_prefix), marker)
    except CACHE_ERRORS:  # Redis cannot say: stay as configured, and let the first lookup say what is wrong
        return Namespace(policy)
    return namespace
