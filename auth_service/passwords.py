"""Password hashing (argon2id) and the password policy.

The cost of a hash comes from the settings (`PASSWORD_HASH_TIME_COST`,
`PASSWORD_HASH_MEMORY_KIB`, `PASSWORD_HASH_PARALLELISM`); hashes made with older costs
are upgraded at the next successful login.
"""

from __future__ import annotations

import secrets
import threading

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from auth_service.settings import AuthSettings
from servicekit.settings import SettingsError

MIN_LENGTH = 8
MAX_LENGTH = 1024  # bounds the work a single request can ask for
KIB_PER_LANE = 8  # argon2's least memory per lane


def password_problem(password: str, username: str | None = None) -> str | None:
    """What is wrong with a new password, or None when it is acceptable."""
    if len(password) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters long"
    if len(password) > MAX_LENGTH:
        return f"must be at most {MAX_LENGTH} characters long"
    if username is not None and password.casefold() == username.casefold():
        return "must not be the username"
    return None


class PasswordHashing:
    """Hashes and checks passwords with this app's argon2id costs (built once per app)."""

    def __init__(self, hasher: PasswordHasher) -> None:
        self._hasher = hasher
        self._dummy_hash: str | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> PasswordHashing:
        if settings.hash_memory_kib < KIB_PER_LANE * settings.hash_parallelism:
            raise SettingsError(
                "invalid settings: PASSWORD_HASH_MEMORY_KIB: must be at least "
                f"{KIB_PER_LANE * settings.hash_parallelism} ({KIB_PER_LANE} for each of the "
                f"PASSWORD_HASH_PARALLELISM lanes), got {settings.hash_memory_kib}"
            )
        hasher = PasswordHasher(
            time_cost=settings.hash_time_cost,
            memory_cost=settings.hash_memory_kib,
            parallelism=settings.hash_parallelism,
            type=Type.ID,
        )
        return cls(hasher)

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        """Whether `password` matches; an account without a password costs the same time."""
        if stored_hash is None:
            self._matches(self._dummy(), password)
            return False
        return self._matches(stored_hash, password)

    def needs_rehash(self, stored_hash: str) -> bool:
        return self._hasher.check_needs_rehash(stored_hash)

    def _matches(self, stored_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def _dummy(self) -> str:
        """A hash of a random secret with these costs, made once (at the first need)."""
        with self._lock:
            if self._dummy_hash is None:
                self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))
            return self._dummy_hash
