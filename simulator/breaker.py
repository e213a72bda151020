"""Simulator layer, pure: the circuit breaker that keeps lookups off a Redis (or a cluster node) that failed.

Closed: every call goes to Redis. A failure opens it for a cool-down, in which lookups are
answered from the database without trying Redis; then one call probes. One `CacheEvent`
per change of state, so the prompt warns once, not once per lookup. Nothing here does I/O.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class CacheEvent:
    """A change in whether Redis (or one cluster node, named by `node`) can be used: printed once, not per lookup."""

    available: bool
    reason: str = ""
    retry_seconds: float = 0.0
    node: str = ""


class CircuitBreaker:
    """Stops calling a dead cache for a cool-down, then lets one call probe it. Thread-safe.

    Closed: every call goes to Redis. A failure opens it: for `cooldown_seconds` no call
    does, so each lookup costs only the database. Then one call probes; its success closes
    the breaker, its failure opens it for another cool-down.

    A call is judged by when it began, not when it ended: one that `allow` let through before
    the breaker last closed (sent to a frozen server, or waiting for a connection, during the
    outage) and that fails after the recovery tells nothing new, so it neither reopens the
    breaker nor announces an outage. `allow` notes, for the thread or task that called it
    (a context variable), which closing it came after; the report of that call reads it.
    """

    # (breaker, how many times it had closed) when this thread or task was last let through; None once reported
    _let_through: ClassVar[ContextVar[tuple[CircuitBreaker, int] | None]] = ContextVar("let_through", default=None)

    def __init__(self, cooldown_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.cooldown_seconds = cooldown_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._state = "closed"
        self._retry_at = 0.0
        self._closings = 0  # how many times an outage ended: a call let through before the latest one is late

    @property
    def closed(self) -> bool:
        """True while Redis is in use."""
        return self._state == "closed"

    def allow(self) -> bool:
        """May this call use Redis? (False while open, and for all but the one probe.)

        A probe that never reports (its caller cancelled, say) is replaced by another one
        after a further cool-down, so the breaker cannot stay half-open for good.
        """
        if self._state == "closed":
            self._let_through.set((self, self._closings))  # read after the state: `succeeded` counts, then closes
            return True
        with self._lock:
            if self._clock() >= self._retry_at:
                self._state = "probing"
                self._retry_at = self._clock() + self.cooldown_seconds
                self._let_through.set((self, self._closings))
                return True
            return False

    def succeeded(self) -> bool:
        """Record a call that worked; True when it ended an outage."""
        self._reported()
        if self._state == "closed":
            return False
        with self._lock:
            ended = self._state != "closed"
            if ended:
                self._closings += 1
            self._state = "closed"
            return ended

    def failed(self) -> bool:
        """Record a call that found Redis down; True when it started an outage.

        A call let through before the breaker last closed changes nothing: Redis has answered since it began.
        """
        began_after = self._reported()
        with self._lock:
            if began_after is not None and began_after < self._closings:
                return False
            started, self._state = self._state == "closed", "open"
            self._retry_at = self._clock() + self.cooldown_seconds
            return started

    def _reported(self) -> int | None:
        """How many closings the call now reported came after (None: unknown, a call `allow` was not asked about)."""
        let_through = self._let_through.get()
        if let_through is None or let_through[0] is not self:
            return None
        self._let_through.set(None)
        return let_through[1]


class CircuitBreakers:
    """One breaker per node: a cluster node down keeps only its own keys off Redis. Thread-safe.

    `failed` and `succeeded` return the CacheEvent to announce, once per change of state (a late
    failure of a call that began before the last recovery changes nothing, so announces nothing).
    """

    def __init__(self, cooldown_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.cooldown_seconds = cooldown_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._breakers: dict[str, CircuitBreaker] = {}

    def __getitem__(self, node: str) -> CircuitBreaker:
        """The breaker of `node` ("" for a single server or a Sentinel-found master)."""
        breaker = self._breakers.get(node)
        if breaker is None:
            with self._lock:
                breaker = self._breakers.setdefault(node, CircuitBreaker(self.cooldown_seconds, self._clock))
        return breaker

    def failed(self, node: str, reason: str) -> CacheEvent | None:
        """Redis (or one cluster node) failed; the event to announce if that started an outage."""
        if self[node].failed():
            return CacheEvent(False, reason, self.cooldown_seconds, node)
        return None

    def succeeded(self, node: str) -> CacheEvent | None:
        """Redis answered; the event to announce if that ended an outage."""
        return CacheEvent(True, node=node) if self[node].succeeded() else None
