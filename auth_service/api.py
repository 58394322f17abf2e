"""auth_service's HTTP API: thin flask-smorest blueprints over service.py."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify, request

from auth_service import service, tokens
from auth_service.models import User
from auth_service.schemas import (
    AccessTokenSchema,
    CredentialsSchema,
    RefreshSchema,
    ServiceTokenRequestSchema,
    ServiceTokenSchema,
    TokenPairSchema,
    UserCreateSchema,
    UserSchema,
)
from servicekit import ApiError, Blueprint, require_identity
from servicekit.errors import error_response

SERVICE_SECRET_HEADER = "X-Service-Secret"

users_blp = Blueprint("users", __name__, url_prefix="/users", description="User accounts.")
tokens_blp = Blueprint(
    "tokens", __name__, url_prefix="/auth/token", description="Access and refresh tokens."
)
jwks_blp = Blueprint(
    "jwks", __name__, url_prefix="/.well-known", description="Public keys of the token signer."
)
internal_blp = Blueprint(
    "internal",
    __name__,
    url_prefix="/internal",
    description="Service-to-service routes; the gateway does not route them.",
)


@users_blp.route("/", methods=["POST"])
@users_blp.arguments(UserCreateSchema)
@users_blp.response(201, UserSchema)
def create_user(data: dict[str, Any]) -> User:
    """Register an account (public)."""
    return service.create_user(**data)


@users_blp.route("/<username>", methods=["GET"])
@users_blp.response(200, UserSchema)
@users_blp.doc(security=[{"bearerAuth": []}])
def get_user(username: str) -> User:
    """One user's record: your own, or anyone's for staff."""
    return service.visible_user(username, require_identity())


@tokens_blp.route("/", methods=["POST"])
@tokens_blp.arguments(CredentialsSchema)
@tokens_blp.response(200, TokenPairSchema)
def obtain_token_pair(data: dict[str, str]) -> dict[str, str]:
    """Exchange a username and password for an access and a refresh token."""
    return service.obtain_token_pair(data["username"], data["password"])


@tokens_blp.route("/refresh/", methods=["POST"])
@tokens_blp.arguments(RefreshSchema)
@tokens_blp.response(200, AccessTokenSchema)
def refresh_access_token(data: dict[str, str]) -> dict[str, str]:
    """Exchange a refresh token for a new access token."""
    return service.refresh_access_token(data["refresh"])


@jwks_blp.route("/jwks.json", methods=["GET"])
def jwks() -> Response:
    """The public keys that verify this service's tokens (JWK Set, RFC 7517)."""
    response = jsonify(tokens.keyring().jwks())
    response.cache_control.public = True
    response.cache_control.max_age = 60
    return response


@internal_blp.before_request
def require_service_secret() -> None:
    """Every internal route wants the shared secret, checked before the body is read."""
    service.check_service_secret(request.headers.get(SERVICE_SECRET_HEADER))


@internal_blp.route("/service-token", methods=["POST"])
@internal_blp.arguments(ServiceTokenRequestSchema)
@internal_blp.response(200, ServiceTokenSchema)
def issue_service_token(data: dict[str, str]) -> dict[str, Any]:
    """A token for the calling service (role "service"), for `SERVICE_SECRET` holders."""
    return service.issue_service_token(data["service"])


blueprints = [users_blp, tokens_blp, jwks_blp, internal_blp]


# service.py's refusals as HTTP answers: (status, message, code).
DOMAIN_ERRORS: dict[type[service.AuthError], tuple[int, str, str]] = {
    service.UserNotVisible: (403, "you may only see your own record", "forbidden"),
    service.UserNotFound: (404, "no such user", "not_found"),
    service.InvalidCredentials: (401, "invalid credentials", "invalid_credentials"),
    service.RevocationUnavailable: (
        503,
        "token revocation store unavailable",
        "service_unavailable",
    ),
    service.ServiceTokensDisabled: (
        503,
        "service tokens are not configured",
        "service_unavailable",
    ),
    service.InvalidServiceSecret: (401, "invalid service secret", "unauthorized"),
}


def as_api_error(error: service.AuthError) -> ApiError:
    if isinstance(error, service.UsernameTaken):  # the seed's own body for this one
        return ApiError.with_body(422, {"errors": {"username": "This username already exists"}})
    if isinstance(error, service.InvalidToken):
        return ApiError(401, error.reason, "invalid_token")
    return ApiError(*DOMAIN_ERRORS[type(error)])


def register_domain_errors(app: Flask) -> None:
    """service.py's exceptions as JSON answers."""

    def answer(error: service.AuthError) -> Response:
        return error_response(as_api_error(error))

    app.register_error_handler(service.AuthError, answer)
