"""Simulator layer, pure: what this process keeps watch on between lookups.

The keys to check for an expiry on their next hit (`ExpiryAudit`: a value another client
wrote with no TTL is found and repaired), and the ids whose old copy an update could not
delete (`PendingInvalidations`: answered from the database until the copy is gone). Both are
bounded and thread-safe; nothing here does I/O.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class ExpiryAudit:
    """Which keys this process should check for an expiry on their next hit.

    A hit is one GET, which cannot see a TTL. So each key's first hit in this process, and
    one at least every CACHE_TTL after, also asks PTTL (same round trip): a value another
    client wrote with no expiry is then found, treated as corrupt and repaired, and no value
    is trusted for longer than a TTL without a check. Keys this process stored itself are
    known to have one. Thread-safe enough: a lost update only causes an extra check.
    """

    CAPACITY = 100_000  # keys remembered: memory stays bounded however many keys are hit

    def __init__(self, interval_seconds: float) -> None:
        self.interval_seconds = interval_seconds
        self._checked: dict[str, float] = {}

    def due(self, key: str) -> bool:
        """True when the next read of `key` should ask for its expiry too."""
        checked = self._checked.get(key)
        return checked is None or time.monotonic() - checked >= self.interval_seconds

    def checked(self, key: str) -> None:
        """`key` was just seen (or written) with an expiry."""
        if len(self._checked) >= self.CAPACITY:
            self._checked.clear()  # bounded memory; forgetting only costs each key one more check
        self._checked[key] = time.monotonic()


class PendingInvalidations:
    """The ids whose cached copy an update could not delete (Redis down, a replica, an ACL). Thread-safe.

    Until the copy is deleted (each lookup of the id tries again first) or must have expired
    (the longest TTL after the failure), this process answers the id from the database and
    never from the cache, so it never answers the version the update replaced.
    """

    def __init__(self, longest_ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.longest_ttl_seconds = longest_ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._until: dict[int, float] = {}  # user id -> when any copy stored before the update has expired

    def failed(self, user_id: int) -> None:
        """An update of `user_id` committed, and its cached copy could not be deleted."""
        with self._lock:
            self._until[user_id] = self._clock() + self.longest_ttl_seconds

    def deleted(self, user_id: int) -> None:
        """The cached copy of `user_id` is gone (an update's delete, a retry, or a `del`)."""
        if user_id in self._until:
            with self._lock:
                self._until.pop(user_id, None)

    def holds(self, user_id: int) -> bool:
        """True while the cache may hold a copy of `user_id` older than an update."""
        until = self._until.get(user_id)
        if until is None:
            return False
        if self._clock() < until:
            return True
        self.deleted(user_id)  # expired by now, whatever it was
        return False
