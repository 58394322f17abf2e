"""The one clock that decides when a call is due: Redis's `TIME`.

The API (what is in the past, the horizon), the workers (when to fire) and the reconciler
(which lease ran out) all read the same clock, so hosts whose clocks drift apart still
agree on "now". A worker measures its offset to Redis once in a while and sleeps on its
own monotonic clock in between.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime

from redis import Redis
from redis.exceptions import RedisError

from scheduler_service.timestamps import from_seconds

log = logging.getLogger("flotilla.scheduler.clock")

RESYNC_SECONDS = 30.0


def redis_seconds(connection: Redis) -> float:
    """Redis's clock, in seconds since the epoch."""
    seconds, micros = connection.time()
    return int(seconds) + int(micros) / 1_000_000


def redis_now(connection: Redis) -> datetime:
    """Redis's "now"; the host's clock, logged, when Redis cannot be asked."""
    try:
        return from_seconds(redis_seconds(connection))
    except RedisError:
        log.warning("redis unavailable: using this host's clock")
        return from_seconds(time.time())


class RedisClock:
    """Redis's time, read through this host's monotonic clock and a measured offset."""

    def __init__(self, connection: Redis, resync_seconds: float = RESYNC_SECONDS) -> None:
        self.connection = connection
        self.resync_seconds = resync_seconds
        self._offset = 0.0
        self._synced_at: float | None = None
        self._lock = threading.Lock()

    def sync(self) -> None:
        """Measure the offset; the round trip's midpoint is when Redis read its clock."""
        before = time.monotonic()
        remote = redis_seconds(self.connection)
        after = time.monotonic()
        with self._lock:
            self._offset = remote - (before + after) / 2
            self._synced_at = after

    def now(self) -> float:
        """Redis's time in epoch seconds (resynchronised when the measure is old)."""
        synced_at = self._synced_at
        if synced_at is None or time.monotonic() - synced_at > self.resync_seconds:
            try:
                self.sync()
            except RedisError:
                if self._synced_at is None:
                    raise
                log.warning("redis unavailable: keeping the last clock offset")
        return time.monotonic() + self._offset

    def seconds_until(self, instant: float) -> float:
        return instant - self.now()
