"""Password hashing (argon2id) and the password policy.

The cost of a hash comes from the config (`PASSWORD_HASH_TIME_COST`,
`PASSWORD_HASH_MEMORY_KIB`, `PASSWORD_HASH_PARALLELISM`); hashes made with older costs
are upgraded at the next successful login.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from flask import Flask, current_app

MIN_LENGTH = 8
MAX_LENGTH = 1024  # bounds the work a single request can ask for

_HASHER = "auth.password_hasher"
_DUMMY_HASH = "auth.dummy_password_hash"


def make_hasher(config: Mapping[str, Any]) -> PasswordHasher:
    return PasswordHasher(
        time_cost=int(config["PASSWORD_HASH_TIME_COST"]),
        memory_cost=int(config["PASSWORD_HASH_MEMORY_KIB"]),
        parallelism=int(config["PASSWORD_HASH_PARALLELISM"]),
        type=Type.ID,
    )


def init_passwords(app: Flask) -> None:
    app.extensions[_HASHER] = make_hasher(app.config)


def _hasher() -> PasswordHasher:
    return current_app.extensions[_HASHER]  # type: ignore[no-any-return]


def password_problem(password: str, username: str | None = None) -> str | None:
    """What is wrong with a new password, or None when it is acceptable."""
    if len(password) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters long"
    if len(password) > MAX_LENGTH:
        return f"must be at most {MAX_LENGTH} characters long"
    if username is not None and password.casefold() == username.casefold():
        return "must not be the username"
    return None


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Whether `password` matches; an account without a password costs the same time."""
    if stored_hash is None:
        _matches(_dummy_hash(), password)
        return False
    return _matches(stored_hash, password)


def needs_rehash(stored_hash: str) -> bool:
    return _hasher().check_needs_rehash(stored_hash)


def _matches(stored_hash: str, password: str) -> bool:
    try:
        return _hasher().verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _dummy_hash() -> str:
    """A hash of a random secret with this app's costs, made once per process."""
    dummy = current_app.extensions.get(_DUMMY_HASH)
    if dummy is None:
        dummy = _hasher().hash(secrets.token_urlsafe(16))
        current_app.extensions[_DUMMY_HASH] = dummy
    return str(dummy)
