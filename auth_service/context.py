"""What auth_service's domain code works with: its settings and the objects built once
from them.

create_app builds one `AuthContext` per app; api.py and the commands hand it to
service.py, sessions.py and resets.py, which read no configuration themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask
from redis import Redis

from auth_service.passwords import PasswordHashing
from auth_service.pictures import PictureStore
from auth_service.settings import AuthSettings
from auth_service.throttle import Throttle
from auth_service.tokens import TokenIssuer
from servicekit.context import attach_context, context_of
from servicekit.mail import Mailer


@dataclass(frozen=True)
class AuthContext:
    settings: AuthSettings
    tokens: TokenIssuer
    passwords: PasswordHashing
    pictures: PictureStore
    mailer: Mailer
    # The Redis shared with the gateway: revocation marks and the throttles' counters.
    # None without `REDIS_URL`: then nothing is revoked there and nothing is throttled.
    shared_redis: Redis | None
    service_secret: str | None  # `SERVICE_SECRET`: other services prove it for a token

    def login_throttle(self) -> Throttle:
        per_username, per_address = self.settings.login_limits
        return Throttle("login", per_username, per_address, self.shared_redis)

    def reset_throttle(self) -> Throttle:
        per_username, per_address = self.settings.reset_limits
        return Throttle("reset", per_username, per_address, self.shared_redis)


def init_context(app: Flask, context: AuthContext) -> None:
    attach_context(app, context)


def auth_context(app: Flask) -> AuthContext:
    """The context `create_app` built for `app`."""
    return context_of(app, AuthContext)
