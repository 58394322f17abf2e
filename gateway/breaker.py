"""Per-upstream circuit breaker: an upstream that is down costs a client milliseconds.

Closed: calls go through; N consecutive failures (connection errors, timeouts, 502/503/504
answers) open it. Open: calls are refused at once with 503 until the cool-down ends.
Half-open: one probe call goes through; its success closes the breaker, its failure opens
it again. State is per gateway process, like a load balancer's outlier detection.
"""

from __future__ import annotations

import threading
import time
from enum import IntEnum

from gateway.errors import GatewayError

UNAVAILABLE_STATUSES = frozenset({502, 503, 504})


class State(IntEnum):
    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2


class CircuitBreaker:
    def __init__(self, name: str, failure_threshold: int, cooldown: float) -> None:
        self.name = name
        self.failure_threshold = failure_threshold
        self.cooldown = cooldown
        self.state = State.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_in_flight = False
        self._lock = threading.Lock()

    def before_call(self) -> None:
        """Raise 503 when the upstream must not be called now."""
        with self._lock:
            if self.state is State.CLOSED:
                return
            remaining = self._opened_at + self.cooldown - time.monotonic()
            if self.state is State.OPEN and remaining <= 0:
                self.state = State.HALF_OPEN
            if self.state is State.HALF_OPEN and not self._probe_in_flight:
                self._probe_in_flight = True
                return
        retry_after = str(max(1, int(remaining + 0.999)))
        raise GatewayError(
            503,
            "upstream_unavailable",
            f"{self.name} is unavailable (circuit open)",
            [("Retry-After", retry_after)],
        )

    def record(self, ok: bool | None) -> None:
        """The outcome of a call let through: True, False, or None when it says nothing
        about the upstream (the client's own body was refused, for instance)."""
        with self._lock:
            self._probe_in_flight = False
            if ok is None:
                return
            if ok:
                self._failures = 0
                self.state = State.CLOSED
                return
            self._failures += 1
            if self.state is State.HALF_OPEN or self._failures >= self.failure_threshold:
                self.state = State.OPEN
                self._opened_at = time.monotonic()
