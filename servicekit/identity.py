"""Who is calling: token verification inside a service, and the authorization helpers.

Tokens are verified again here (the gateway verified them too): signature with the
public keys from auth_service's JWKS, algorithm allow-list, expiry, issuer, audience.
flask-jwt-extended does the request plumbing; `key_for` picks the key by `kid`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import jwt
from flask import Flask, Response, current_app, request
from flask_jwt_extended import JWTManager, get_jwt, verify_jwt_in_request

from servicekit.errors import ApiError, error_response
from servicekit.keys import KeyResolver, RemoteKeySet
from servicekit.tokens import (
    ALLOWED_ALGORITHMS,
    SERVICE_ROLE,
    STAFF_ROLES,
    has_required_claims,
    token_from_authorization,
)

ACTIONS = {"c": "create", "r": "read", "u": "update", "d": "delete"}
ACTION_LETTERS = {name: letter for letter, name in ACTIONS.items()}


@dataclass(frozen=True)
class Identity:
    """The verified caller: claims of an access token."""

    subject: str
    username: str
    role: str
    privileges: dict[str, frozenset[str]] = field(default_factory=dict)
    token_id: str = ""

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    @property
    def is_superuser(self) -> bool:
        return self.role == "superuser"

    @property
    def is_service(self) -> bool:
        return self.role == SERVICE_ROLE

    def can(self, model: str, action: str) -> bool:
        """Superusers can do anything; staff what their privileges list."""
        if self.is_superuser:
            return True
        return self.is_staff and action in self.privileges.get(model, frozenset())


def encode_privileges(privileges: dict[str, list[str]]) -> dict[str, str]:
    """{"event": ["create", "read"]} -> {"event": "cr"}: the compact `priv` claim."""
    return {
        model: "".join(
            ACTION_LETTERS[a] for a in ("create", "read", "update", "delete") if a in acts
        )
        for model, acts in privileges.items()
        if acts
    }


def decode_privileges(claim: Any) -> dict[str, frozenset[str]]:
    if not isinstance(claim, dict):
        return {}
    return {
        str(model): frozenset(ACTIONS[c] for c in str(letters) if c in ACTIONS)
        for model, letters in claim.items()
    }


def identity_from_claims(claims: dict[str, Any]) -> Identity:
    return Identity(
        subject=str(claims["sub"]),
        username=str(claims.get("username", "")),
        role=str(claims.get("role", "normal")),
        privileges=decode_privileges(claims.get("priv")),
        token_id=str(claims.get("jti", "")),
    )


def current_identity(optional: bool = False) -> Identity | None:
    """The caller's identity; 401 when there is no valid token (None if optional)."""
    verify_jwt_in_request(optional=optional)
    try:
        claims = get_jwt()
    except RuntimeError:  # flask-jwt-extended does not verify OPTIONS requests at all
        claims = {}
    if claims:
        return identity_from_claims(claims)
    if optional:
        return None
    raise ApiError(401, "authentication required", "unauthorized")


def require_identity() -> Identity:
    return cast(Identity, current_identity())


def require_staff() -> Identity:
    identity = require_identity()
    if not identity.is_staff:
        raise ApiError(403, "staff only", "forbidden")
    return identity


def require_privilege(model: str, action: str) -> Identity:
    identity = require_identity()
    if not identity.can(model, action):
        raise ApiError(403, f"missing privilege: {model} {action}", "forbidden")
    return identity


def require_service() -> Identity:
    identity = require_identity()
    if not identity.is_service:
        raise ApiError(403, "service token required", "forbidden")
    return identity


def _unauthorized(message: str) -> Response:
    response = error_response(ApiError(401, message, "unauthorized"))
    response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return response


def _normalize_token_scheme() -> None:
    """Accept every scheme the suite accepts (the image API's `Token <t>`, `Bearer` in any
    case) by presenting it to flask-jwt-extended as `Bearer <t>`."""
    token = token_from_authorization(request.environ.get("HTTP_AUTHORIZATION", ""))
    if token is not None:
        request.environ["HTTP_AUTHORIZATION"] = "Bearer " + token


def _has_required_claims(_header: dict[str, Any], payload: dict[str, Any]) -> bool:
    return has_required_claims(payload)


def init_identity(app: Flask, keys: KeyResolver | None = None) -> None:
    """Configure flask-jwt-extended to verify RS256 tokens against `keys` (default: JWKS)."""
    app.config.setdefault("JWT_TOKEN_LOCATION", ["headers"])
    app.config["JWT_DECODE_ALGORITHMS"] = list(ALLOWED_ALGORITHMS)
    app.config["JWT_ALGORITHM"] = ALLOWED_ALGORITHMS[0]
    app.config["JWT_DECODE_ISSUER"] = app.config["JWT_ISSUER"]
    app.config["JWT_DECODE_AUDIENCE"] = app.config["JWT_AUDIENCE"]
    app.config["JWT_DECODE_LEEWAY"] = app.config["JWT_LEEWAY"]
    app.config.setdefault("JWT_IDENTITY_CLAIM", "sub")
    app.config.setdefault("JWT_PUBLIC_KEY", "unused: keys are chosen by kid")
    app.extensions["servicekit.keys"] = keys or RemoteKeySet(app.config["JWKS_URL"])
    manager = JWTManager(app)

    @manager.decode_key_loader
    def key_for_token(header: dict[str, Any], _payload: dict[str, Any]) -> Any:
        key = current_app.extensions["servicekit.keys"].key_for(header.get("kid"))
        if key is None:
            raise jwt.InvalidSignatureError("unknown signing key")
        return key

    manager.token_verification_loader(_has_required_claims)
    manager.unauthorized_loader(lambda reason: _unauthorized("authentication required"))
    manager.invalid_token_loader(lambda reason: _unauthorized("invalid token"))
    manager.expired_token_loader(lambda header, payload: _unauthorized("token expired"))
    manager.revoked_token_loader(lambda header, payload: _unauthorized("token revoked"))
    manager.needs_fresh_token_loader(lambda header, payload: _unauthorized("fresh token required"))
    manager.user_lookup_error_loader(lambda header, payload: _unauthorized("unknown user"))
    manager.token_verification_failed_loader(lambda header, payload: _unauthorized("invalid token"))
    app.before_request(_normalize_token_scheme)
