"""The suite's token rules, stated once: who may sign, which claims a token must carry,
which roles are staff, which `Authorization` schemes carry a token, and the one decoder
that checks all of it (the gateway and auth_service call it; services reach the same
rules through flask-jwt-extended, configured from these constants in servicekit.identity).
"""

from __future__ import annotations

from typing import Any

import jwt

from servicekit.keys import KeyResolver

ALLOWED_ALGORITHMS = ("RS256",)
# Every token must carry these; `type` is checked on its own (access, refresh).
REQUIRED_CLAIMS = ("exp", "iat", "sub", "jti", "iss", "aud")
ROLES = ("normal", "staff", "superuser")
STAFF_ROLES = frozenset({"staff", "superuser"})
SERVICE_ROLE = "service"
# `Bearer` for the suite's JWTs; `Token` is the image API's scheme (seed 003). Any case.
ACCEPTED_SCHEMES = ("bearer", "token")


def token_from_authorization(header: str) -> str | None:
    """The token of an `Authorization: Bearer|Token <t>` header; None for anything else."""
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() not in ACCEPTED_SCHEMES or not token or " " in token:
        return None
    return token


def has_required_claims(claims: dict[str, Any]) -> bool:
    return all(claims.get(claim) is not None for claim in REQUIRED_CLAIMS)


class TokenError(Exception):
    """A token that must be refused; `reason` is safe to show to the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def decode_token(
    token: str,
    keys: KeyResolver,
    *,
    issuer: str,
    audience: str,
    leeway: int,
    token_type: str = "access",
) -> dict[str, Any]:
    """Verify signature, algorithm, expiry, issuer, audience and type; return the claims."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise TokenError("malformed token") from exc
    if header.get("alg") not in ALLOWED_ALGORITHMS:
        raise TokenError("token algorithm not allowed")
    key = keys.key_for(header.get("kid"))
    if key is None:
        raise TokenError("unknown signing key")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=list(ALLOWED_ALGORITHMS),
            audience=audience,
            issuer=issuer,
            leeway=leeway,
            options={"require": list(REQUIRED_CLAIMS)},
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenError("token expired") from exc
    except jwt.PyJWTError as exc:
        raise TokenError("invalid token") from exc
    if claims.get("type") != token_type:
        raise TokenError(f"not an {token_type} token")
    return claims
