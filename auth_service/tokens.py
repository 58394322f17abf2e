"""Issuing and reading auth_service's tokens (RS256, signed with the key ring's newest key).

`iat` is fractional (milliseconds): revocation marks are fractional epoch times too
(servicekit.revocation), so a token issued just after a mark is told apart from one
issued just before it.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from flask import current_app
from flask_jwt_extended import create_access_token, create_refresh_token

from auth_service.keys import KeyRing
from auth_service.models import User
from servicekit.identity import encode_privileges
from servicekit.tokens import decode_token

KEYRING = "auth.keyring"
TokenType = Literal["access", "refresh"]


def keyring() -> KeyRing:
    return current_app.extensions[KEYRING]  # type: ignore[no-any-return]


def user_claims(user: User) -> dict[str, Any]:
    """The identity claims of a user's tokens besides `sub`; `priv` only for staff."""
    privileges = encode_privileges(user.privileges or {}) if user.role == "staff" else {}
    return {"username": user.username, "role": user.role, "priv": privileges}


@dataclass(frozen=True)
class IssuedToken:
    """A signed token and what auth_service records about it."""

    token: str
    jti: str
    issued_at: float
    expires_at: float

    @property
    def expires(self) -> datetime:
        return datetime.fromtimestamp(self.expires_at, UTC)


def issue(subject: str, claims: dict[str, Any], token_type: TokenType, ttl: int) -> IssuedToken:
    """A signed token of `token_type` ("access" or "refresh") valid for `ttl` seconds."""
    now = time.time()
    jti = uuid.uuid4().hex
    times = {"iat": round(now, 3), "exp": int(now + ttl), "jti": jti}
    create = create_refresh_token if token_type == "refresh" else create_access_token
    token = create(
        identity=subject,
        additional_claims={**claims, **times},
        additional_headers={"kid": keyring().signing_key.kid},
        expires_delta=timedelta(seconds=ttl),
    )
    return IssuedToken(token, jti, times["iat"], times["exp"])


def access_ttl() -> int:
    return int(current_app.config["JWT_ACCESS_TTL"])


def refresh_ttl() -> int:
    return int(current_app.config["JWT_REFRESH_TTL"])


def api_token_ttl() -> int:
    return int(current_app.config["API_TOKEN_TTL"])


def longest_ttl() -> int:
    """How long any token of this issuer can stay valid, clock leeway included."""
    config = current_app.config
    return max(access_ttl(), refresh_ttl(), api_token_ttl()) + int(config["JWT_LEEWAY"])


def access_token(user: User) -> IssuedToken:
    return issue(user.public_id, user_claims(user), "access", access_ttl())


def refresh_token(user: User) -> IssuedToken:
    return issue(user.public_id, user_claims(user), "refresh", refresh_ttl())


def api_token(user: User) -> IssuedToken:
    """The image API's token: an access token, but long-lived (`API_TOKEN_TTL`)."""
    return issue(user.public_id, user_claims(user), "access", api_token_ttl())


def service_token(service: str) -> IssuedToken:
    """An access token for a service's own calls (role "service", no user)."""
    claims = {"username": service, "role": "service", "priv": {}}
    return issue(f"service:{service}", claims, "access", access_ttl())


class OwnServiceToken:
    """auth_service's own service token, for its calls to other services.

    auth_service is the issuer, so it signs the token in-process (no call to its own
    `/internal/service-token`) and reuses it until `RENEW_BEFORE` seconds before it
    expires, as `servicekit.http.ServiceTokenSource` does for the other services.
    Needs the app context of the app whose keys sign it.
    """

    RENEW_BEFORE = 30.0

    def __init__(self, service: str) -> None:
        self.service = service
        self._issued: IssuedToken | None = None
        self._lock = threading.Lock()

    def token(self) -> str:
        with self._lock:
            issued = self._issued
            if issued is None or time.time() > issued.expires_at - self.RENEW_BEFORE:
                issued = self._issued = service_token(self.service)
            return issued.token


def read_token(token: str, token_type: TokenType) -> dict[str, Any]:
    """The verified claims of a token of this type; raises servicekit.tokens.TokenError."""
    config = current_app.config
    return decode_token(
        token,
        current_app.extensions["servicekit.keys"],
        issuer=config["JWT_ISSUER"],
        audience=config["JWT_AUDIENCE"],
        leeway=int(config["JWT_LEEWAY"]),
        token_type=token_type,
    )


def read_refresh_token(token: str) -> dict[str, Any]:
    return read_token(token, "refresh")
