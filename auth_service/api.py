"""auth_service's HTTP API: thin flask-smorest blueprints over service.py."""

from __future__ import annotations

from collections.abc import Callable
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


def _username_taken(_error: Exception) -> ApiError:
    return ApiError.with_body(422, {"errors": {"username": "This username already exists"}})


def _user_not_visible(_error: Exception) -> ApiError:
    return ApiError(403, "you may only see your own record", "forbidden")


def _user_not_found(_error: Exception) -> ApiError:
    return ApiError(404, "no such user", "not_found")


def _invalid_credentials(_error: Exception) -> ApiError:
    return ApiError(401, "invalid credentials", "invalid_credentials")


def _invalid_token(error: Exception) -> ApiError:
    reason = error.reason if isinstance(error, service.InvalidToken) else "invalid token"
    return ApiError(401, reason, "invalid_token")


def _revocation_unavailable(_error: Exception) -> ApiError:
    return ApiError(503, "token revocation store unavailable", "service_unavailable")


def _service_tokens_disabled(_error: Exception) -> ApiError:
    return ApiError(503, "service tokens are not configured", "service_unavailable")


def _invalid_service_secret(_error: Exception) -> ApiError:
    return ApiError(401, "invalid service secret", "unauthorized")


DOMAIN_ERRORS: dict[type[service.AuthError], Callable[[Exception], ApiError]] = {
    service.UsernameTaken: _username_taken,
    service.UserNotVisible: _user_not_visible,
    service.UserNotFound: _user_not_found,
    service.InvalidCredentials: _invalid_credentials,
    service.InvalidToken: _invalid_token,
    service.RevocationUnavailable: _revocation_unavailable,
    service.ServiceTokensDisabled: _service_tokens_disabled,
    service.InvalidServiceSecret: _invalid_service_secret,
}


def register_domain_errors(app: Flask) -> None:
    """service.py's exceptions as JSON answers."""

    def answer(error: Exception) -> Response:
        return error_response(DOMAIN_ERRORS[type(error)](error))

    for error_class in DOMAIN_ERRORS:
        app.register_error_handler(error_class, answer)
