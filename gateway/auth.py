"""Token checks at the gateway: the Authorization header, signature (JWKS) and claims."""

from __future__ import annotations

from typing import Any

from gateway.errors import GatewayError
from gateway.tokencache import VerifiedTokens
from servicekit.keys import KeyResolver
from servicekit.tokens import TokenError, decode_token, token_from_authorization

_CHALLENGE = ("WWW-Authenticate", 'Bearer error="invalid_token"')


def authorization_token(header: str) -> str:
    """The token of an `Authorization` header in one of the suite's schemes (`Bearer`, the
    image API's `Token`); 401 for anything else."""
    token = token_from_authorization(header)
    if token is None:
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

    def cached(self, token: str) -> dict[str, Any] | None:
        """The claims of a token verified before and still valid, else None."""
        return self.cache.get(token)

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
