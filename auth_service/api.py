"""auth_service's HTTP API: thin flask-smorest blueprints over service.py."""

from __future__ import annotations

import ipaddress
from typing import Any, BinaryIO, cast

from flask import Response, current_app, jsonify, request
from flask_jwt_extended import get_jwt

from auth_service import resets, service, sessions
from auth_service.context import AuthContext, auth_context
from auth_service.directory_api import directory_blp
from auth_service.errors import PICTURE_FIELD
from auth_service.models import User
from auth_service.schemas import (
    ApiRegistrationSchema,
    ApiTokenSchema,
    AuthModesSchema,
    ChangePasswordSchema,
    CreatePasswordSchema,
    CredentialsSchema,
    MessageSchema,
    PrivilegesSchema,
    ProviderSchema,
    RefreshSchema,
    ResetPasswordSchema,
    RevokeTokenSchema,
    ServiceTokenRequestSchema,
    ServiceTokenSchema,
    TokenPairSchema,
    TokensDeletedSchema,
    UserCreateSchema,
    UserSchema,
    UsersPageSchema,
    UsersQuerySchema,
    UserUpdatedSchema,
    UserUpdateSchema,
)
from servicekit import ApiError, Blueprint, Identity, require_identity
from servicekit.pagination import Page, page_window

SERVICE_SECRET_HEADER = "X-Service-Secret"
BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]

users_blp = Blueprint("users", __name__, url_prefix="/users", description="User accounts.")
tokens_blp = Blueprint(
    "tokens", __name__, url_prefix="/auth/token", description="Access and refresh tokens."
)
image_api_blp = Blueprint(
    "image_api", __name__, description="The image API's registration and token flows."
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


def context() -> AuthContext:
    """This app's settings and the objects built from them, for service.py."""
    return auth_context(current_app)


def caller() -> Identity:
    """The verified caller, refused when their token was revoked or their account is gone."""
    identity = require_identity()
    service.caller_account(context(), identity, get_jwt())
    return identity


def caller_account() -> User:
    """The caller's own account (for routes that act on it), checked like `caller()`."""
    return service.caller_account(context(), require_identity(), get_jwt())


def client_address() -> str:
    """The client's address: the last `X-Forwarded-For` entry, the one the gateway settled
    on (services are reachable only through it in production), else the peer address."""
    forwarded = request.headers.get("X-Forwarded-For", "").rsplit(",", 1)[-1].strip()
    try:
        return str(ipaddress.ip_address(forwarded))
    except ValueError:
        return request.remote_addr or "unknown"


def message(text: str) -> dict[str, str]:
    return {"message": text}


# Users


@users_blp.route("/", methods=["POST"])
@users_blp.arguments(UserCreateSchema)
@users_blp.response(201, UserSchema)
def create_user(data: dict[str, Any]) -> User:
    """Register an account (public)."""
    return service.create_user(context(), **data)


@users_blp.route("/", methods=["GET"])
@users_blp.arguments(UsersQuerySchema, location="query")
@users_blp.response(200, UsersPageSchema)
@users_blp.doc(security=BEARER)
def list_users(query: dict[str, int]) -> Page[User]:
    """One page of users (staff); `limit` defaults to 10, and over 100 is lowered to 100."""
    if not caller().is_staff:
        raise service.Forbidden("staff only")
    return service.list_users(page_window(query))


@users_blp.route("/<username>", methods=["GET"])
@users_blp.response(200, UserSchema)
@users_blp.doc(security=BEARER)
def get_user(username: str) -> User:
    """One user's record: your own, or anyone's for staff."""
    return service.visible_user(username, caller())


@users_blp.route("/<username>", methods=["PUT"])
@users_blp.arguments(UserUpdateSchema)
@users_blp.response(200, UserUpdatedSchema)
@users_blp.doc(security=BEARER)
def update_user(changes: dict[str, Any], username: str) -> User:
    """Change profile fields of your record (or another's, with the user-update privilege)."""
    return service.update_profile(context(), username, caller(), changes)


@users_blp.route("/<username>", methods=["DELETE"])
@users_blp.response(200, MessageSchema)
@users_blp.doc(security=BEARER)
def delete_user(username: str) -> dict[str, str]:
    """Delete an account (staff with the user-delete privilege); its tokens die at once."""
    service.delete_user(context(), username, caller())
    return message("User deleted")


@users_blp.route("/<username>/disable", methods=["PUT"])
@users_blp.response(200, MessageSchema)
@users_blp.doc(security=BEARER)
def disable_user(username: str) -> dict[str, str]:
    """Disable an account (staff with the user-update privilege); its tokens die at once."""
    service.set_active(context(), username, caller(), active=False)
    return message("User disabled")


@users_blp.route("/<username>/enable", methods=["PUT"])
@users_blp.response(200, MessageSchema)
@users_blp.doc(security=BEARER)
def enable_user(username: str) -> dict[str, str]:
    """Enable a disabled account again (staff with the user-update privilege)."""
    service.set_active(context(), username, caller(), active=True)
    return message("User enabled")


@users_blp.route("/<username>/privileges", methods=["GET"])
@users_blp.doc(security=BEARER)
def get_privileges(username: str) -> Response:
    """The user's state: normal, staff (with privileges) or superuser (staff only)."""
    return jsonify(service.privileges_of(username, caller()))


@users_blp.route("/<username>/privileges", methods=["PUT"])
@users_blp.arguments(PrivilegesSchema)
@users_blp.doc(security=BEARER)
def set_privileges(data: dict[str, Any], username: str) -> Response:
    """Set the user's state and privileges (superusers only); the user's tokens are revoked."""
    view = service.set_privileges(
        context(), username, caller(), data["state"], data.get("privileges")
    )
    return jsonify(view)


@users_blp.route("/<username>/auth_modes", methods=["GET"])
@users_blp.response(200, AuthModesSchema)
@users_blp.doc(security=BEARER)
def auth_modes(username: str) -> service.AuthModes:
    """Whether the account has a password, and its linked sign-in providers."""
    return service.auth_modes(username, caller())


@users_blp.route("/<username>/picture", methods=["PUT"])
@users_blp.arguments(ProviderSchema)
@users_blp.response(200, MessageSchema)
@users_blp.doc(security=BEARER)
def picture_from_provider(data: dict[str, str], username: str) -> dict[str, str]:
    """Take the picture of a linked sign-in account as the profile picture."""
    service.picture_from_provider(context(), username, caller(), data["provider"])
    return message("Profile Picture updated")


@users_blp.route("/<username>/pictureupload", methods=["PUT"])
@users_blp.response(202, MessageSchema)
@users_blp.doc(security=BEARER)
def upload_picture(username: str) -> dict[str, str]:
    """Upload a profile picture (multipart field `profilePicture`): JPEG, PNG, GIF or WebP."""
    user = service.changeable_user(username, caller())  # before the body is read
    service.store_picture(context(), user, uploaded_picture())
    return message("Profile Picture Updated")


def uploaded_picture() -> BinaryIO | None:
    """The `profilePicture` file of a multipart body, or its only file of another name."""
    files = request.files
    upload = files.get(PICTURE_FIELD)
    if upload is None and len(files) == 1:
        upload = next(iter(files.values()))
    return cast(BinaryIO, upload.stream) if upload is not None else None


# Passwords


@users_blp.route("/<username>/password", methods=["POST"])
@users_blp.arguments(CreatePasswordSchema)
@users_blp.response(201, MessageSchema)
@users_blp.doc(security=BEARER)
def create_password(data: dict[str, str], username: str) -> dict[str, str]:
    """Create a password for your account when it has none (it signs in another way)."""
    service.create_password(context(), username, caller(), data["password"])
    return message("new password created")


@users_blp.route("/<username>/password", methods=["PUT"])
@users_blp.arguments(ChangePasswordSchema)
@users_blp.response(200, MessageSchema)
@users_blp.doc(security=BEARER)
def change_password(data: dict[str, str], username: str) -> dict[str, str]:
    """Change your password; every token of yours is revoked (sign in again)."""
    service.change_password(
        context(),
        username,
        caller(),
        data["old_password"],
        data["new_password"],
        client_address(),
    )
    return message("password changed")


@users_blp.route("/<username>/password", methods=["PATCH"])
@users_blp.arguments(ResetPasswordSchema)
@users_blp.response(200, MessageSchema)
def reset_password(data: dict[str, str], username: str) -> dict[str, str]:
    """Set a new password with a mailed reset token (public)."""
    resets.reset_password(context(), username, data["reset_token"], data["new_password"])
    return message("Password reset successfully")


@users_blp.route("/<username>/password/reset", methods=["POST"])
@users_blp.response(202, MessageSchema)
def request_password_reset(username: str) -> dict[str, str]:
    """Mail a reset token to the account's address (public; the same answer for all)."""
    resets.request_reset(context(), username, client_address())
    return message("If the account exists and has an e-mail address, a reset token is on its way")


# Tokens


@tokens_blp.route("/", methods=["POST"])
@tokens_blp.arguments(CredentialsSchema)
@tokens_blp.response(200, TokenPairSchema)
def obtain_token_pair(data: dict[str, str]) -> dict[str, str]:
    """Exchange a username and password for an access and a refresh token."""
    return service.obtain_token_pair(
        context(), data["username"], data["password"], client_address()
    )


@tokens_blp.route("/refresh/", methods=["POST"])
@tokens_blp.arguments(RefreshSchema)
@tokens_blp.response(200, TokenPairSchema)
def refresh_token_pair(data: dict[str, str]) -> dict[str, str]:
    """Exchange a refresh token for a new access token and the next refresh token.

    The presented refresh token is used up; presenting it again revokes its session.
    """
    return service.refresh_token_pair(context(), data["refresh"])


@tokens_blp.route("/", methods=["DELETE"])
@tokens_blp.response(200, TokensDeletedSchema)
@tokens_blp.doc(security=BEARER)
def sign_out_everywhere() -> dict[str, int]:
    """Revoke every token of the caller (sign out from all devices)."""
    deleted = sessions.sign_out_everywhere(context(), caller_account(), get_jwt())
    return {"tokens_deleted": deleted}


@tokens_blp.route("/", methods=["PUT"])
@tokens_blp.arguments(RevokeTokenSchema)
@tokens_blp.response(200, TokensDeletedSchema)
@tokens_blp.doc(security=BEARER)
def sign_out_one(data: dict[str, str]) -> dict[str, int]:
    """Revoke one of the caller's tokens, and the session it belongs to (one device)."""
    return {"tokens_deleted": sessions.sign_out_one(context(), caller_account(), data["token"])}


# The image API's token flows


@image_api_blp.route("/register/", methods=["POST"])
@image_api_blp.arguments(ApiRegistrationSchema, location="json_or_form")
@image_api_blp.response(201, ApiTokenSchema)
def register(data: dict[str, Any]) -> dict[str, str]:
    """Create an account (JSON or form) and get its API token."""
    try:
        token = service.register_api_user(
            context(), data["username"], data["password"], data["email"]
        )
    except service.UsernameTaken as exc:
        raise ApiError(
            400,
            "invalid input",
            "validation_error",
            errors={"username": "This username already exists"},
        ) from exc
    return {"token": token}


@image_api_blp.route("/api-token-auth/", methods=["POST"])
@image_api_blp.arguments(CredentialsSchema, location="json_or_form")
@image_api_blp.response(200, ApiTokenSchema)
def api_token_auth(data: dict[str, str]) -> dict[str, str]:
    """Exchange a username and password (JSON or form) for an API token."""
    try:
        token = service.obtain_api_token(
            context(), data["username"], data["password"], client_address()
        )
    except service.InvalidCredentials as exc:
        raise ApiError(
            400, "Unable to log in with provided credentials.", "invalid_credentials"
        ) from exc
    return {"token": token}


@image_api_blp.route("/regenerateToken/", methods=["GET"])
@image_api_blp.response(200, ApiTokenSchema)
@image_api_blp.doc(security=BEARER)
def regenerate_token() -> dict[str, str]:
    """A new API token; every earlier API token of the caller stops working at once."""
    return {"token": sessions.regenerate_api_token(context(), caller_account())}


# Signing keys, internal routes


@jwks_blp.route("/jwks.json", methods=["GET"])
def jwks() -> Response:
    """The public keys that verify this service's tokens (JWK Set, RFC 7517)."""
    response = jsonify(context().tokens.keyring.jwks())
    response.cache_control.public = True
    response.cache_control.max_age = 60
    return response


@internal_blp.before_request
def require_service_secret() -> None:
    """Every internal route wants the shared secret, checked before the body is read."""
    service.check_service_secret(context(), request.headers.get(SERVICE_SECRET_HEADER))


@internal_blp.route("/service-token", methods=["POST"])
@internal_blp.arguments(ServiceTokenRequestSchema)
@internal_blp.response(200, ServiceTokenSchema)
def issue_service_token(data: dict[str, str]) -> dict[str, Any]:
    """A token for the calling service (role "service"), for `SERVICE_SECRET` holders."""
    return service.issue_service_token(context(), data["service"])


blueprints = [users_blp, tokens_blp, image_api_blp, jwks_blp, internal_blp, directory_blp]
