"""Token revocation marks in Redis, written by auth_service and read by the gateway.

- `revoked:jti:<jti>`: that one token is revoked (expires with the token).
- `revoked:sub:<sub>`: every token of that user issued before this time (epoch seconds,
  fractional) is revoked: sign-out everywhere, disable, delete, password change.
Tokens carry a fractional `iat`, so a token issued just after a mark stays valid.
"""

from __future__ import annotations

import time
from typing import Any

from redis import Redis

USER_MARK_TTL = 8 * 24 * 3600  # longer than the longest-lived (refresh) token


def jti_key(jti: str) -> str:
    return f"revoked:jti:{jti}"


def user_key(subject: str) -> str:
    return f"revoked:sub:{subject}"


def revoke_token(redis: Redis, jti: str, expires_at: float) -> None:
    ttl = max(1, int(expires_at - time.time()) + 60)
    redis.set(jti_key(jti), "1", ex=ttl)


def revoke_user_tokens(
    redis: Redis, subject: str, before: float | None = None, ttl: int = USER_MARK_TTL
) -> float:
    """Mark every token of `subject` issued before `before` (default: now) as revoked.

    `ttl` must outlive the longest-lived token the issuer hands out.
    """
    mark = time.time() if before is None else before
    redis.set(user_key(subject), repr(mark), ex=ttl)
    return mark


def revocation_keys(claims: dict[str, Any]) -> tuple[str, str]:
    """The two keys that say whether a token is revoked (for one MGET, or a pipeline)."""
    return jti_key(str(claims["jti"])), user_key(str(claims["sub"]))


def revoked_by(claims: dict[str, Any], token_mark: Any, user_mark: Any) -> bool:
    """Given the values of `revocation_keys(claims)`: is the token revoked?"""
    if token_mark is not None:
        return True
    return user_mark is not None and float(claims["iat"]) < float(user_mark)


def is_revoked(redis: Redis, claims: dict[str, Any]) -> bool:
    """One round trip: the token's own mark and its user's mark."""
    return revoked_by(claims, *redis.mget(*revocation_keys(claims)))
