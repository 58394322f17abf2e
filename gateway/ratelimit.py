"""Rate limits kept in Redis: a sliding-window counter per (scope, identity, limit).

The commands for every limit of a request are queued on the same Redis pipeline as the
revocation check, so a request costs one round trip to Redis in all. Limits use the
familiar limits-string syntax ("300/minute;20/second"); "off" disables one.

The estimate weighs the previous window by how much of it still overlaps the sliding
window: count = previous * (1 - elapsed / window) + current. Refused attempts count too,
so hammering a credential route keeps it closed.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

from limits import parse_many

DISABLED = {"", "off", "none", "0"}


@dataclass(frozen=True)
class Limit:
    amount: int
    window: int  # seconds


def parse_limits(text: str | None) -> tuple[Limit, ...]:
    if text is None or text.strip().lower() in DISABLED:
        return ()
    return tuple(Limit(item.amount, item.get_expiry()) for item in parse_many(text))


@dataclass(frozen=True)
class Counter:
    """One limit applied to one identity in one scope (e.g. "user", "login-address")."""

    scope: str
    identity: str
    limit: Limit

    def keys(self, now: float) -> tuple[str, str]:
        window = int(now // self.limit.window)
        digest = hashlib.sha256(self.identity.encode()).hexdigest()[:24]
        base = f"rl:{self.scope}:{digest}:{self.limit.amount}/{self.limit.window}"
        return f"{base}:{window}", f"{base}:{window - 1}"

    def queue(self, pipeline: Any, now: float) -> None:
        current, previous = self.keys(now)
        pipeline.incr(current)
        pipeline.expire(current, 2 * self.limit.window)
        pipeline.get(previous)


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset_after: float  # seconds until the current window ends

    def headers(self) -> list[tuple[str, str]]:
        headers = [
            ("X-RateLimit-Limit", str(self.limit)),
            ("X-RateLimit-Remaining", str(self.remaining)),
            ("X-RateLimit-Reset", str(math.ceil(self.reset_after))),
        ]
        if not self.allowed:
            headers.append(("Retry-After", str(max(1, math.ceil(self.reset_after)))))
        return headers


COMMANDS_PER_COUNTER = 3


def evaluate(counter: Counter, results: list[Any], now: float) -> Verdict:
    """The verdict from this counter's three pipeline results (INCR, EXPIRE, GET)."""
    current, _expire, previous = results
    window = counter.limit.window
    elapsed = now % window
    estimate = int(previous or 0) * (1 - elapsed / window) + int(current)
    amount = counter.limit.amount
    return Verdict(
        allowed=estimate <= amount,
        limit=amount,
        remaining=max(0, int(amount - estimate)),
        reset_after=window - elapsed,
    )


def tightest(verdicts: list[Verdict]) -> Verdict | None:
    """The verdict to report: a refusal if any, else the one with the least room left."""
    if not verdicts:
        return None
    refused = [v for v in verdicts if not v.allowed]
    if refused:
        return max(refused, key=lambda v: v.reset_after)
    return min(verdicts, key=lambda v: (v.remaining, v.limit))
