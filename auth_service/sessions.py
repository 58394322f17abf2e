"""Sessions: token pairs and their refresh-token families, the image API's tokens, and
revocation. Every function takes the app's AuthContext (its tokens, settings and the
Redis shared with the gateway).

Revoking writes two things: the marks in Redis that the gateway checks on every request
(`servicekit.revocation`), and auth_service's own records (the user's
`tokens_valid_after`, the refresh and API token rows), which decide refreshes. Redis is
written before the database commits: when Redis cannot be written the request fails with
nothing changed, and a commit that fails after it leaves tokens revoked early, never late.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy import Update, delete, select, update

from auth_service.context import AuthContext
from auth_service.errors import Forbidden, InvalidToken, RevocationUnavailable
from auth_service.models import ApiToken, RefreshToken, User, changed_rows, db
from servicekit.db import utcnow
from servicekit.replication import confirm_replicated
from servicekit.revocation import is_revoked, revoke_token, revoke_user_tokens
from servicekit.tokens import TokenError

MARK_MARGIN = 60  # seconds a user mark outlives the longest-lived token


# Revocation


def token_revoked(context: AuthContext, user: User | None, claims: dict[str, Any]) -> bool:
    """Whether a token of `user` is revoked: the database's mark, then Redis's marks."""
    mark = user.tokens_valid_after if user is not None else None
    if mark is not None and float(claims["iat"]) < mark:
        return True
    store = context.shared_redis
    if store is None:
        return False  # without a store nothing can have been revoked there
    try:
        return is_revoked(store, claims)
    except RedisError as exc:
        raise RevocationUnavailable() from exc


def revoke_token_ids(context: AuthContext, revoked: Iterable[tuple[str, datetime]]) -> None:
    """Revoke these (jti, expiry) tokens at the gateway, skipping ones already expired."""
    now = time.time()
    live = [(jti, expires.timestamp()) for jti, expires in revoked if expires.timestamp() > now]
    store = context.shared_redis
    if store is None or not live:
        return
    try:
        with store.pipeline(transaction=False) as pipeline:
            for jti, expires_at in live:
                revoke_token(pipeline, jti, expires_at)
            pipeline.execute()
        confirm_replicated(store, "token revocation")
    except RedisError as exc:
        raise RevocationUnavailable() from exc


def revoke_everything(context: AuthContext, user: User) -> int:
    """Every token of `user` issued until now, everywhere; the caller commits.

    Returns how many live refresh and API tokens it ended.
    """
    now = utcnow()
    live_refresh = _live(RefreshToken, user, now)
    live_api = _live(ApiToken, user, now)
    ended = changed_rows(live_refresh.values(revoked_at=now))
    ended += changed_rows(live_api.values(revoked_at=now))
    mark = time.time()
    user.tokens_valid_after = mark
    store = context.shared_redis
    if store is not None:
        try:
            ttl = context.tokens.longest_ttl + MARK_MARGIN
            revoke_user_tokens(store, user.public_id, before=mark, ttl=ttl)
            confirm_replicated(store, "revocation of a user's tokens")
        except RedisError as exc:
            raise RevocationUnavailable() from exc
    return ended


def _live(model: type[RefreshToken] | type[ApiToken], user: User, now: datetime) -> Update:
    statement = update(model).where(
        model.user_id == user.id, model.revoked_at.is_(None), model.expires_at > now
    )
    if model is RefreshToken:
        statement = statement.where(RefreshToken.used_at.is_(None))
    return statement.execution_options(synchronize_session=False)


def revoke_family(context: AuthContext, family_id: str) -> bool:
    """End a login session: its refresh tokens and the access tokens issued with them.

    Returns whether the session was still live; the caller commits.
    """
    now = utcnow()
    rows = db.session.scalars(
        select(RefreshToken).where(
            RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None)
        )
    ).all()
    was_live = any(row.used_at is None and row.expires_at > now for row in rows)
    revoke_token_ids(context, ((row.access_jti, row.access_expires_at) for row in rows))
    for row in rows:
        row.revoked_at = now
    return was_live


# Token pairs and refresh


def start_session(context: AuthContext, user: User) -> dict[str, str]:
    """A new login session: a token pair starting a new refresh-token family."""
    return _issue_pair(context, user, uuid.uuid4().hex)


def _issue_pair(context: AuthContext, user: User, family_id: str) -> dict[str, str]:
    access = context.tokens.access_token(user)
    refresh = context.tokens.refresh_token(user)
    db.session.add(
        RefreshToken(
            jti=refresh.jti,
            family_id=family_id,
            user_id=user.id,
            expires_at=refresh.expires,
            access_jti=access.jti,
            access_expires_at=access.expires,
        )
    )
    _forget_expired(user)
    db.session.commit()
    return {"access": access.token, "refresh": refresh.token}


def _forget_expired(user: User) -> None:
    """Rows of tokens that can no longer be used need no keeping (bounded per user)."""
    now = utcnow()
    for model in (RefreshToken, ApiToken):
        db.session.execute(
            delete(model)
            .where(model.user_id == user.id, model.expires_at < now)
            .execution_options(synchronize_session=False)
        )


def rotate(context: AuthContext, refresh_token: str) -> dict[str, str]:
    """A new token pair for a live refresh token, which is used up.

    Presenting a used refresh token again is a replay (the token was stolen, or a client
    misbehaves): the whole session is revoked. The conditional UPDATE makes two
    concurrent refreshes with one token end the same way: one wins, the other is a replay.
    """
    try:
        claims = context.tokens.read(refresh_token, "refresh")
    except TokenError as exc:
        raise InvalidToken(exc.reason) from exc
    user = db.session.scalar(select(User).where(User.public_id == claims["sub"]))
    if user is None or not user.is_active:
        raise InvalidToken("unknown or disabled user")
    if token_revoked(context, user, claims):
        raise InvalidToken("token revoked")
    used_up = changed_rows(
        update(RefreshToken)
        .where(
            RefreshToken.jti == claims["jti"],
            RefreshToken.user_id == user.id,
            RefreshToken.used_at.is_(None),
            RefreshToken.revoked_at.is_(None),
        )
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    row = db.session.get(RefreshToken, claims["jti"])
    if used_up != 1 or row is None:
        _refuse_refresh(context, user, row)
    assert row is not None
    return _issue_pair(context, user, row.family_id)


def _refuse_refresh(context: AuthContext, user: User, row: RefreshToken | None) -> None:
    if row is None or row.user_id != user.id:
        db.session.rollback()
        raise InvalidToken("unknown refresh token")
    if row.revoked_at is not None:
        db.session.rollback()
        raise InvalidToken("token revoked")
    revoke_family(context, row.family_id)
    db.session.commit()
    raise InvalidToken("refresh token reused: its session is revoked")


# Signing out


def sign_out_everywhere(context: AuthContext, user: User, claims: dict[str, Any]) -> int:
    """Revoke every token of the caller; how many: live refresh and API tokens, plus the
    access token of this request when it is not one of those API tokens."""
    presented_is_api_token = db.session.get(ApiToken, claims["jti"]) is not None
    ended = revoke_everything(context, user)
    db.session.commit()
    return ended + (0 if presented_is_api_token else 1)


def sign_out_one(context: AuthContext, user: User, token: str) -> int:
    """Revoke one of the caller's tokens and the session it belongs to; 1 if it was live."""
    claims, token_type = _read_any(context, token)
    if claims["sub"] != user.public_id:
        raise Forbidden("you may only revoke your own tokens")
    if token_type == "refresh":
        row = db.session.get(RefreshToken, claims["jti"])
        if row is None:
            raise InvalidToken("unknown refresh token")
        ended = revoke_family(context, row.family_id)
    else:
        ended = _revoke_access_token(context, claims)
    db.session.commit()
    return 1 if ended else 0


def _read_any(context: AuthContext, token: str) -> tuple[dict[str, Any], str]:
    """A refresh or an access token's verified claims, and which of the two it is."""
    try:
        return context.tokens.read(token, "refresh"), "refresh"
    except TokenError as exc:
        if exc.reason != "not an refresh token":
            raise InvalidToken(exc.reason) from exc
    try:
        return context.tokens.read(token, "access"), "access"
    except TokenError as exc:
        raise InvalidToken(exc.reason) from exc


def _revoke_access_token(context: AuthContext, claims: dict[str, Any]) -> bool:
    """An access token: an API token's row, or the session it was issued with, and its jti."""
    expires = datetime.fromtimestamp(float(claims["exp"]), UTC)
    if time.time() >= expires.timestamp():
        return False
    api_row = db.session.get(ApiToken, claims["jti"])
    if api_row is not None:
        if api_row.revoked_at is not None:
            return False
        api_row.revoked_at = utcnow()
    family = db.session.scalar(
        select(RefreshToken.family_id).where(RefreshToken.access_jti == claims["jti"])
    )
    if family is not None:
        revoke_family(context, family)
    revoke_token_ids(context, [(str(claims["jti"]), expires)])
    return True


# The image API's tokens


def issue_api_token(context: AuthContext, user: User) -> str:
    """A new API token of `user`; beyond `API_TOKENS_PER_USER` live ones, the oldest go."""
    _revoke_api_tokens(context, user, keep=context.settings.api_tokens_per_user - 1)
    issued = context.tokens.api_token(user)
    db.session.add(ApiToken(jti=issued.jti, user_id=user.id, expires_at=issued.expires))
    _forget_expired(user)
    db.session.commit()
    return issued.token


def regenerate_api_token(context: AuthContext, user: User) -> str:
    """Every API token of `user` is revoked at once, and a new one is issued."""
    _revoke_api_tokens(context, user, keep=0)
    return issue_api_token(context, user)


def _revoke_api_tokens(context: AuthContext, user: User, keep: int) -> None:
    """Revoke the live API tokens of `user` but the `keep` newest; the caller commits."""
    now = utcnow()
    rows = db.session.scalars(
        select(ApiToken)
        .where(
            ApiToken.user_id == user.id,
            ApiToken.revoked_at.is_(None),
            ApiToken.expires_at > now,
        )
        .order_by(ApiToken.issued_at.desc(), ApiToken.jti)
        .offset(max(0, keep))
    ).all()
    revoke_token_ids(context, ((row.jti, row.expires_at) for row in rows))
    for row in rows:
        row.revoked_at = now


def is_api_token(jti: str) -> bool:
    return db.session.get(ApiToken, jti) is not None
