"""Who may pass: the token, its revocation, the caller's rate limits and the route's policy.

Signature and claims are checked in-process (with a cache); revocation marks and every
rate-limit counter of the request then go to Redis in one round trip, shared with the
other requests of the same turn of the event loop (gateway/batching.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio

from gateway.auth import TokenVerifier, authorization_token, unauthorized
from gateway.batching import SharedRoundTrips
from gateway.errors import GatewayError
from gateway.ratelimit import COMMANDS_PER_COUNTER, Counter, Limit, Verdict, evaluate, tightest
from gateway.routing import PUBLIC, STAFF, Route
from servicekit.revocation import revocation_keys, revoked_by
from servicekit.tokens import STAFF_ROLES

log = logging.getLogger("flotilla.gateway")


@dataclass(frozen=True)
class RateLimitPolicy:
    """Per client address (anonymous calls) and per user (authenticated calls); on top of
    those, on credential routes, per client address and per username."""

    address: tuple[Limit, ...] = ()
    user: tuple[Limit, ...] = ()
    login_address: tuple[Limit, ...] = ()
    login_user: tuple[Limit, ...] = ()


@dataclass
class Admission:
    """What the guard decided: the caller's claims (None: anonymous), rate headers, and
    whether the token is to be dropped (an invalid one on a public route)."""

    claims: dict[str, Any] | None
    rate: Verdict | None
    drop_authorization: bool = False


class Guard:
    """Decides whether a routed request may go on to its upstream."""

    def __init__(
        self,
        verifier: TokenVerifier,
        redis_client: redis.asyncio.Redis | None,
        limits: RateLimitPolicy,
    ) -> None:
        self.verifier = verifier
        self.redis_client = redis_client
        self.round_trips = SharedRoundTrips(redis_client) if redis_client is not None else None
        self.limits = limits

    async def admit(
        self,
        route: Route,
        authorization: str | None,
        address: str,
        login_username: str | None,
    ) -> Admission:
        claims, token_error = await self._decode(authorization)
        counters = self._counters(route, claims, address, login_username)
        revoked, verdicts = await self._ask_redis(claims, counters)
        verdict = tightest(verdicts)
        if verdict is not None and not verdict.allowed:
            raise GatewayError(429, "rate_limited", "too many requests", verdict.headers())
        if token_error is None and revoked:
            token_error = unauthorized("token revoked")
        if token_error is not None:
            if route.policy is not PUBLIC:
                raise token_error
            # A public route: answered as anonymous, the token not passed on.
            self._check_policy(route, None)
            return Admission(None, verdict, drop_authorization=True)
        self._check_policy(route, claims)
        return Admission(claims, verdict)

    async def _decode(
        self, header: str | None
    ) -> tuple[dict[str, Any] | None, GatewayError | None]:
        """The token's claims. A token seen before is answered from the cache; a new one is
        checked on a thread, since its signing key may have to be fetched first."""
        if not header:
            return None, None
        try:
            token = authorization_token(header)
            claims = self.verifier.cached(token)
            if claims is None:
                claims = await asyncio.to_thread(self.verifier.decode, token)
            return claims, None
        except GatewayError as error:
            return None, error

    def _counters(
        self,
        route: Route,
        claims: dict[str, Any] | None,
        address: str,
        login_username: str | None,
    ) -> list[Counter]:
        if claims is not None:
            counters = [Counter("user", str(claims["sub"]), lim) for lim in self.limits.user]
        else:
            counters = [Counter("address", address, lim) for lim in self.limits.address]
        if route.credential:
            counters += [
                Counter("login-address", address, lim) for lim in self.limits.login_address
            ]
            if login_username:
                name = login_username.strip().lower()
                counters += [Counter("login-user", name, lim) for lim in self.limits.login_user]
        return counters

    async def _ask_redis(
        self, claims: dict[str, Any] | None, counters: list[Counter]
    ) -> tuple[bool, list[Verdict]]:
        """One round trip: the revocation marks and every counter."""
        if claims is None and not counters:
            return False, []
        if self.redis_client is None:
            if claims is not None:
                raise revocation_unavailable()
            return False, []
        now = time.time()
        try:
            results = await self._execute(claims, counters, now)
        except (redis.RedisError, OSError) as exc:
            if claims is not None:  # fail closed: an unchecked token is not accepted
                raise revocation_unavailable() from exc
            log.warning("rate limits unavailable", extra={"error": str(exc)})
            return False, []  # fail open for anonymous callers: limits are a safety net
        revoked = claims is not None and revoked_by(claims, *results.pop(0))
        verdicts = [
            evaluate(
                counter, results[i * COMMANDS_PER_COUNTER : (i + 1) * COMMANDS_PER_COUNTER], now
            )
            for i, counter in enumerate(counters)
        ]
        return revoked, verdicts

    async def _execute(
        self, claims: dict[str, Any] | None, counters: list[Counter], now: float
    ) -> list[Any]:
        assert self.round_trips is not None

        def queue(pipeline: Any) -> None:
            if claims is not None:
                pipeline.mget(*revocation_keys(claims))
            for counter in counters:
                counter.queue(pipeline, now)

        replies = (claims is not None) + COMMANDS_PER_COUNTER * len(counters)
        return await self.round_trips.execute(queue, replies)

    @staticmethod
    def _check_policy(route: Route, claims: dict[str, Any] | None) -> None:
        if route.policy is PUBLIC:
            return
        if claims is None:
            raise GatewayError(
                401, "unauthorized", "authentication required", [("WWW-Authenticate", "Bearer")]
            )
        if route.policy is STAFF and claims.get("role") not in STAFF_ROLES:
            raise GatewayError(403, "forbidden", "staff only")


def revocation_unavailable() -> GatewayError:
    return GatewayError(503, "revocation_unavailable", "token revocation store unavailable")
