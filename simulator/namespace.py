"""Simulator layer, pure: which database the cache's records come from (the shells: simulator/_async/namespace.py).

Two databases on one Redis must never answer each other's records: a SQLite demo and a
PostgreSQL demo both caching `user-42` would each hide the other's updates behind their own
copy. So a namespace (the keys `<KEY_PREFIX>user-<id>`) is tied to one database by a marker
key, `<KEY_PREFIX>user-database`, holding that database's identity (a random number kept in
its demo_meta table). The first process on a namespace writes it (SET NX); a process on
another database finds it taken and moves its records to a namespace of its own,
`<KEY_PREFIX>db<6 digits of its identity>:user-<id>`, and says so. `--reset-db` takes its
namespace over (it clears it anyway). The marker is never a demo key: `clear` and `cache`
never touch or count it. When Redis cannot be asked (down, a replica, an ACL) the namespace
stays as configured: the first lookup says what is wrong.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from simulator.policy import CachePolicy

MARKER_NAME = "user-database"  # under the namespace's prefix, inside the ACL's ~<prefix>user-* pattern


@dataclass(frozen=True, slots=True)
class Namespace:
    """The policy whose keys this database's records use, and, when it had to move, which database holds
    the configured ones (`other`, as that database described itself; "" when its marker is unreadable)."""

    policy: CachePolicy
    other: str | None = None


def marker_key(prefix: str) -> str:
    """The key that says which database a namespace's records come from."""
    return f"{prefix}{MARKER_NAME}"


def marker_value(identity: int, where: str) -> str:
    """What the marker holds: the database's identity, and where it is (no password: `where` is masked)."""
    return json.dumps({"database": identity, "where": where}, separators=(",", ":"))


def marker_owner(raw: object) -> tuple[int | None, str]:
    """The identity and place a marker names; (None, "") for a value no demo process writes."""
    try:
        found = json.loads(raw) if isinstance(raw, bytes | str) else None
    except ValueError:
        return None, ""
    if isinstance(found, dict) and type(found.get("database")) is int and isinstance(found.get("where"), str):
        return found["database"], found["where"]
    return None, ""


def own_prefix(prefix: str, identity: int) -> str:
    """The namespace of a database whose configured one another database holds."""
    return f"{prefix}db{identity % 1_000_000:06d}:"


def settled(policy: CachePolicy, identity: int, owner: object) -> Namespace | None:
    """The namespace as configured, when the marker read after our claim names this database; else None."""
    return Namespace(policy) if marker_owner(owner)[0] == identity else None


def moved(policy: CachePolicy, identity: int, owner: object) -> Namespace:
    """The namespace of this database's own, when another database (named by `owner`) holds the configured one."""
    return Namespace(replace(policy, key_prefix=own_prefix(policy.key_prefix, identity)), marker_owner(owner)[1])
