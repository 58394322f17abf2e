"""Abuse limits: at most `amount` actions of one kind per user in a fixed window.

A user's counter lives in Redis (`tickets:limit:<kind>:<publicId>`); the first action
counted opens a window of `window` seconds. An action past the limit is refused with the
seconds until the window ends. auth_service's login throttle is the same mechanism
around its own refusal; this one is small enough to keep here. When Redis cannot be
reached the limit lets actions through: it is a safety net (the gateway limits too).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from redis import Redis
from redis.exceptions import RedisError

from tickets_service.errors import TooManyRequests

log = logging.getLogger(__name__)

HOUR = 3600


@dataclass(frozen=True)
class HourlyLimit:
    kind: str  # "tickets", "comments": also how the refusal names them
    amount: int  # 0: no limit
    store: Redis | None
    window: int = HOUR

    def take(self, user_id: str) -> None:
        """Count one action of the user; TooManyRequests when it is one too many."""
        if self.amount <= 0 or self.store is None:
            return
        key = f"tickets:limit:{self.kind}:{user_id}"
        try:
            with self.store.pipeline(transaction=True) as pipeline:
                pipeline.set(key, 0, ex=self.window, nx=True)  # opens the window
                pipeline.incr(key)
                pipeline.ttl(key)
                _opened, count, ttl = pipeline.execute()
        except RedisError as exc:
            log.warning("abuse limit unavailable", extra={"error": str(exc), "kind": self.kind})
            return
        if int(count) > self.amount:
            raise TooManyRequests(self.kind, self.amount, max(1, int(ttl)))
