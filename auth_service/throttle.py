"""Throttling of password guessing: failed attempts per username and per client address.

Counters live in Redis in fixed windows (the first counted attempt starts a window of
the limit's length). A caller at a limit is refused before the password is checked, with
the seconds until the window ends; unknown usernames are counted like real ones, so the
answer never tells whether an account exists. Limits use the limits-string syntax of the
gateway ("10/15 minutes"); "off" disables one. When Redis cannot be reached, the
throttle lets attempts through (it is a safety net, and the gateway has its own limits).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from limits import parse
from redis import Redis
from redis.exceptions import RedisError

from auth_service.errors import TooManyAttempts

log = logging.getLogger(__name__)

DISABLED = {"", "off", "none", "0"}


@dataclass(frozen=True)
class Limit:
    amount: int
    window: int  # seconds


def parse_limit(text: str | None) -> Limit | None:
    """ "10/15 minutes" -> Limit(10, 900); "off" -> None. ValueError for nonsense."""
    if text is None or text.strip().lower() in DISABLED:
        return None
    item = parse(text)
    return Limit(int(item.amount), int(item.get_expiry()))


@dataclass(frozen=True)
class Throttle:
    """Attempts of one kind ("login", "reset"), limited per username and per address."""

    scope: str
    per_username: Limit | None
    per_address: Limit | None
    store: Redis | None  # the Redis shared with the gateway; None: nothing is limited

    def check(self, username: str, address: str) -> None:
        """Raise TooManyAttempts when either counter is at its limit."""
        counters = self._counters(username, address)
        store = self.store
        if store is None or not counters:
            return
        try:
            with store.pipeline(transaction=False) as pipeline:
                for key, _limit in counters:
                    pipeline.get(key)
                    pipeline.ttl(key)
                results = pipeline.execute()
        except RedisError as exc:
            log.warning("login throttle unavailable", extra={"error": str(exc)})
            return
        waits = [
            max(1, int(ttl) if ttl and int(ttl) > 0 else limit.window)
            for (_key, limit), count, ttl in zip(
                counters, results[0::2], results[1::2], strict=True
            )
            if count is not None and int(count) >= limit.amount
        ]
        if waits:
            raise TooManyAttempts(max(waits))

    def count(self, username: str, address: str) -> None:
        """Count one attempt against both counters (a failed login, a reset request)."""
        counters = self._counters(username, address)
        store = self.store
        if store is None or not counters:
            return
        try:
            with store.pipeline(transaction=True) as pipeline:
                for key, limit in counters:
                    pipeline.set(key, 0, ex=limit.window, nx=True)  # opens the window
                    pipeline.incr(key)
                pipeline.execute()
        except RedisError as exc:
            log.warning("login throttle unavailable", extra={"error": str(exc)})

    def _counters(self, username: str, address: str) -> list[tuple[str, Limit]]:
        counters = []
        if self.per_username is not None:
            counters.append((self._key("username", username.casefold()), self.per_username))
        if self.per_address is not None:
            counters.append((self._key("address", address), self.per_address))
        return counters

    def _key(self, kind: str, identity: str) -> str:
        digest = hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return f"auth:throttle:{self.scope}:{kind}:{digest}"
