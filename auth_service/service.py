"""auth_service's domain logic: accounts, credentials and tokens, as plain functions.

Errors are the exceptions below; api.py turns them into HTTP answers.
"""

from __future__ import annotations

import hmac
import re
from typing import Any

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError

from auth_service import tokens
from auth_service.models import User, db, utcnow
from auth_service.passwords import hash_password, needs_rehash, password_problem, verify_password
from servicekit.app import redis_client
from servicekit.identity import Identity
from servicekit.keys import TokenError
from servicekit.revocation import is_revoked

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{3,64}$")
SERVICE_NAME_PATTERN = re.compile(r"^[a-z_]{2,32}$")


class AuthError(Exception):
    """A request auth_service refuses; the subclass says why."""


class UsernameTaken(AuthError):
    pass


class UserNotVisible(AuthError):
    """A normal user asked for someone else's record (or one that does not exist)."""


class UserNotFound(AuthError):
    pass


class InvalidCredentials(AuthError):
    """Unknown user, wrong password, no password, or a disabled account: one answer."""


class InvalidToken(AuthError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RevocationUnavailable(AuthError):
    """The revocation store cannot be asked, so a token cannot be vouched for."""


class ServiceTokensDisabled(AuthError):
    """No `SERVICE_SECRET` is configured."""


class InvalidServiceSecret(AuthError):
    pass


# Accounts


def username_exists(username: str) -> bool:
    return bool(db.session.scalar(select(exists().where(User.username == username))))


def find_user(username: str) -> User | None:
    return db.session.scalar(select(User).where(User.username == username))


def visible_user(username: str, caller: Identity) -> User:
    """The record `caller` may read: their own, or any for staff.

    A normal user gets the same refusal for another user's record and for a name that
    does not exist, so the answer says nothing about other accounts.
    """
    user = find_user(username)
    if caller.is_staff:
        if user is None:
            raise UserNotFound(username)
        return user
    if user is None or user.public_id != caller.subject:
        raise UserNotVisible(username)
    return user


def create_user(
    *, username: str, password: str | None, role: str = "normal", **profile: Any
) -> User:
    """A new account; `profile` holds the optional columns (email, first_name, ...).

    The unique constraint decides between two concurrent registrations of one name.
    """
    if username_exists(username):
        raise UsernameTaken(username)
    user = User(
        username=username,
        password_hash=hash_password(password) if password is not None else None,
        role=role,
        **profile,
    )
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        if username_exists(username):
            raise UsernameTaken(username) from None
        raise
    return user


def ensure_admin(username: str, password: str, *, email: str | None = None) -> bool:
    """Create superuser `username` unless a user of that name exists; True if created."""
    if not USERNAME_PATTERN.match(username):
        raise ValueError(f"invalid admin username {username!r}")
    problem = password_problem(password, username)
    if problem:
        raise ValueError(f"the admin password {problem}")
    try:
        create_user(username=username, password=password, role="superuser", email=email)
    except UsernameTaken:
        return False
    return True


# Tokens


def authenticate(username: str, password: str) -> User:
    """The active user these credentials belong to; records the login."""
    user = find_user(username)
    stored = user.password_hash if user is not None else None
    matches = verify_password(stored, password)  # hashes even for no user: same timing
    if user is None or stored is None or not matches or not user.is_active:
        raise InvalidCredentials()
    if needs_rehash(stored):
        user.password_hash = hash_password(password)
    user.last_login = utcnow()
    db.session.commit()
    return user


def obtain_token_pair(username: str, password: str) -> dict[str, str]:
    user = authenticate(username, password)
    return {"access": tokens.access_token(user), "refresh": tokens.refresh_token(user)}


def refresh_access_token(refresh_token: str) -> dict[str, str]:
    """A new access token for a valid refresh token of an active user.

    The user's current role and privileges go into it, so changes take effect at the
    next refresh.
    """
    try:
        claims = tokens.read_refresh_token(refresh_token)
    except TokenError as exc:
        raise InvalidToken(exc.reason) from exc
    user = db.session.scalar(select(User).where(User.public_id == claims["sub"]))
    if user is None or not user.is_active:
        raise InvalidToken("unknown or disabled user")
    if _revoked(user, claims):
        raise InvalidToken("token revoked")
    return {"access": tokens.access_token(user)}


def _revoked(user: User, claims: dict[str, Any]) -> bool:
    """The user's own mark (database), then the revocation store when there is one."""
    if user.tokens_valid_after is not None and float(claims["iat"]) < user.tokens_valid_after:
        return True
    if not current_app.config.get("REDIS_URL"):
        return False  # without a store nothing can have been revoked there
    try:
        return is_revoked(redis_client(), claims)
    except RedisError as exc:
        raise RevocationUnavailable() from exc


def issue_service_token(service: str) -> dict[str, Any]:
    """A token for another service's own calls; the caller has proven the shared secret."""
    return {"access": tokens.service_token(service), "expires_in": tokens.access_ttl()}


def check_service_secret(presented: str | None) -> None:
    """Raise unless `presented` is the configured `SERVICE_SECRET` (constant-time compare)."""
    configured = current_app.config.get("SERVICE_SECRET")
    if not configured:
        raise ServiceTokensDisabled()
    if presented is None or not hmac.compare_digest(
        presented.encode("utf-8"), str(configured).encode("utf-8")
    ):
        raise InvalidServiceSecret()
