"""Token checks at the gateway: signature (JWKS), claims, then revocation in Redis."""

from __future__ import annotations

from typing import Any

import redis

from gateway.errors import GatewayError
from servicekit.keys import KeyResolver, TokenError, decode_token
from servicekit.revocation import is_revoked

ACCEPTED_SCHEMES = ("bearer", "token")  # "Token" is the image API's scheme
_CHALLENGE = ("WWW-Authenticate", 'Bearer error="invalid_token"')


def bearer_token(header: str) -> str:
    """The token of an `Authorization: Bearer|Token <t>` header; 401 for anything else."""
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() not in ACCEPTED_SCHEMES or not token or " " in token:
        raise unauthorized("unsupported authorization header")
    return token


def unauthorized(message: str) -> GatewayError:
    return GatewayError(401, "unauthorized", message, [_CHALLENGE])


class TokenVerifier:
    def __init__(
        self,
        keys: KeyResolver,
        revocations: redis.Redis | None,
        *,
        issuer: str,
        audience: str,
        leeway: int,
    ) -> None:
        self.keys = keys
        self.revocations = revocations
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway

    def verify(self, token: str) -> dict[str, Any]:
        try:
            claims = decode_token(
                token, self.keys, issuer=self.issuer, audience=self.audience, leeway=self.leeway
            )
        except TokenError as exc:
            raise unauthorized(exc.reason) from exc
        if self._revoked(claims):
            raise unauthorized("token revoked")
        return claims

    def _revoked(self, claims: dict[str, Any]) -> bool:
        if self.revocations is None:
            raise GatewayError(
                503, "revocation_unavailable", "token revocation store not configured"
            )
        try:
            return is_revoked(self.revocations, claims)
        except redis.RedisError as exc:
            # Fail closed: a token we cannot check for revocation is not accepted.
            raise GatewayError(
                503, "revocation_unavailable", "token revocation store unavailable"
            ) from exc
