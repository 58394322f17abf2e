"""Token checks at the gateway: the Authorization header, signature (JWKS) and claims."""

from __future__ import annotations

from typing import Any

from gateway.errors import GatewayError
from gateway.tokencache import VerifiedTokens
from servicekit.keys import KeyResolver, TokenError, decode_token

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
    """Signature, algorithm, expiry, issuer, audience and type; verified tokens are cached."""

    def __init__(
        self,
        keys: KeyResolver,
        *,
        issuer: str,
        audience: str,
        leeway: int,
        cache: VerifiedTokens | None = None,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.cache = cache or VerifiedTokens(capacity=0)

    def decode(self, token: str) -> dict[str, Any]:
        cached = self.cache.get(token)
        if cached is not None:
            return cached
        try:
            claims = decode_token(
                token, self.keys, issuer=self.issuer, audience=self.audience, leeway=self.leeway
            )
        except TokenError as exc:
            raise unauthorized(exc.reason) from exc
        self.cache.put(token, claims, self.leeway)
        return claims
