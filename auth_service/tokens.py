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

from flask_jwt_extended import create_access_token, create_refresh_token

from auth_service.keys import KeyRing
from auth_service.models import User
from auth_service.settings import AuthSettings
from servicekit.identity import encode_privileges
from servicekit.keys import KeyResolver
from servicekit.tokens import decode_token

TokenType = Literal["access", "refresh"]


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


@dataclass(frozen=True)
class TokenIssuer:
    """Signs auth_service's tokens with the key ring's signing key, and reads them back.

    Signing goes through flask-jwt-extended (the standard claims and the issuer and
    audience of the app's config), so it needs the app context of the app whose keys
    sign.
    """

    keyring: KeyRing
    verification_keys: KeyResolver  # the key ring's, and in tests the test keys too
    settings: AuthSettings
    issuer: str
    audience: str
    leeway: int  # seconds of clock skew a verifier accepts

    @property
    def access_ttl(self) -> int:
        return self.settings.access_ttl

    @property
    def longest_ttl(self) -> int:
        """How long any token of this issuer can stay valid, clock leeway included."""
        return self.settings.longest_token_ttl + self.leeway

    def issue(
        self, subject: str, claims: dict[str, Any], token_type: TokenType, ttl: int
    ) -> IssuedToken:
        """A signed token of `token_type` ("access" or "refresh") valid for `ttl` seconds."""
        now = time.time()
        jti = uuid.uuid4().hex
        issued_at, expires_at = round(now, 3), int(now + ttl)
        create = create_refresh_token if token_type == "refresh" else create_access_token
        token = create(
            identity=subject,
            additional_claims={**claims, "iat": issued_at, "exp": expires_at, "jti": jti},
            additional_headers={"kid": self.keyring.signing_key.kid},
            expires_delta=timedelta(seconds=ttl),
        )
        return IssuedToken(token, jti, issued_at, expires_at)

    def access_token(self, user: User) -> IssuedToken:
        return self.issue(user.public_id, user_claims(user), "access", self.settings.access_ttl)

    def refresh_token(self, user: User) -> IssuedToken:
        return self.issue(user.public_id, user_claims(user), "refresh", self.settings.refresh_ttl)

    def api_token(self, user: User) -> IssuedToken:
        """The image API's token: an access token, but long-lived (`API_TOKEN_TTL`)."""
        return self.issue(user.public_id, user_claims(user), "access", self.settings.api_token_ttl)

    def service_token(self, service: str) -> IssuedToken:
        """An access token for a service's own calls (role "service", no user)."""
        claims = {"username": service, "role": "service", "priv": {}}
        return self.issue(f"service:{service}", claims, "access", self.settings.access_ttl)

    def read(self, token: str, token_type: TokenType) -> dict[str, Any]:
        """The verified claims of a token of this type; raises servicekit.tokens.TokenError."""
        return decode_token(
            token,
            self.verification_keys,
            issuer=self.issuer,
            audience=self.audience,
            leeway=self.leeway,
            token_type=token_type,
        )


class OwnServiceToken:
    """auth_service's own service token, for its calls to other services.

    auth_service is the issuer, so it signs the token in-process (no call to its own
    `/internal/service-token`) and reuses it until `RENEW_BEFORE` seconds before it
    expires, as `servicekit.http.ServiceTokenSource` does for the other services.
    Needs the app context of the app whose keys sign it (see TokenIssuer).
    """

    RENEW_BEFORE = 30.0

    def __init__(self, issuer: TokenIssuer, service: str) -> None:
        self.issuer = issuer
        self.service = service
        self._issued: IssuedToken | None = None
        self._lock = threading.Lock()

    def token(self) -> str:
        with self._lock:
            issued = self._issued
            if issued is None or time.time() > issued.expires_at - self.RENEW_BEFORE:
                issued = self._issued = self.issuer.service_token(self.service)
            return issued.token
