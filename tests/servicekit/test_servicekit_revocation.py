"""Revocation marks on a real Redis."""

from __future__ import annotations

import time
import uuid

import redis

from servicekit.revocation import (
    USER_MARK_TTL,
    is_revoked,
    jti_key,
    revoke_token,
    revoke_user_tokens,
    user_key,
)


def claims(sub: str = "user-1", iat: float | None = None, jti: str | None = None) -> dict:
    return {"sub": sub, "iat": time.time() if iat is None else iat, "jti": jti or uuid.uuid4().hex}


def test_revoked_token(redis_client: redis.Redis) -> None:
    token = claims()
    assert not is_revoked(redis_client, token)
    revoke_token(redis_client, token["jti"], expires_at=time.time() + 600)
    assert is_revoked(redis_client, token)
    assert not is_revoked(redis_client, claims())
    assert 600 <= redis_client.ttl(jti_key(token["jti"])) <= 661


def test_revoking_an_expired_token_still_expires(redis_client: redis.Redis) -> None:
    token = claims()
    revoke_token(redis_client, token["jti"], expires_at=time.time() - 3600)
    assert is_revoked(redis_client, token)
    assert 0 < redis_client.ttl(jti_key(token["jti"])) <= 1


def test_user_mark_revokes_only_earlier_tokens(redis_client: redis.Redis) -> None:
    mark = revoke_user_tokens(redis_client, "user-1")
    assert is_revoked(redis_client, claims(iat=mark - 0.001))
    assert is_revoked(redis_client, claims(iat=mark - 3600))
    assert not is_revoked(redis_client, claims(iat=mark + 0.001))
    assert not is_revoked(redis_client, claims(sub="user-2", iat=mark - 1))
    assert USER_MARK_TTL - 5 <= redis_client.ttl(user_key("user-1")) <= USER_MARK_TTL


def test_user_mark_at_given_time(redis_client: redis.Redis) -> None:
    assert revoke_user_tokens(redis_client, "user-1", before=1000.25) == 1000.25
    assert is_revoked(redis_client, claims(iat=1000.249))
    assert not is_revoked(redis_client, claims(iat=1000.25))
    assert redis_client.ttl(user_key("user-1")) > 0


def test_token_mark_wins_over_later_issue_time(redis_client: redis.Redis) -> None:
    revoke_user_tokens(redis_client, "user-1", before=1000.0)
    token = claims(iat=2000.0)
    revoke_token(redis_client, token["jti"], expires_at=time.time() + 60)
    assert is_revoked(redis_client, token)
