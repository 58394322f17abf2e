"""auth_service's request and response shapes (marshmallow 4), with the seed's wire names."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from auth_service.passwords import password_problem
from auth_service.service import MAX_PAGE_SIZE, SERVICE_NAME_PATTERN, USERNAME_PATTERN
from servicekit.identity import ACTIONS
from servicekit.pagination import PageArgs, page_size
from servicekit.tokens import ROLES

USERNAME = validate.Regexp(
    USERNAME_PATTERN, error="must be 3 to 64 characters: letters, digits, '_', '.' or '-'"
)
PHONE_NUMBER = validate.Regexp(
    r"^\+?[0-9]{7,15}$", error="must be 7 to 15 digits, optionally after a '+'"
)
PICTURE_MAX_LENGTH = 2048
MODEL_NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
PROVIDER_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{1,31}$")
MAX_PRIVILEGE_MODELS = 64


def validate_picture_url(value: str) -> None:
    """An http(s) URL, or a reference relative to the site (as the seed's example is)."""
    if len(value) > PICTURE_MAX_LENGTH or any(c.isspace() or ord(c) < 32 for c in value):
        raise ValidationError("must be a URL")
    try:
        parts = urlsplit(value)
    except ValueError as exc:
        raise ValidationError("must be a URL") from exc
    if parts.scheme and (parts.scheme not in ("http", "https") or not parts.netloc):
        raise ValidationError("must be an http or https URL")


class UserCreateSchema(Schema):
    """`POST /users/`: registration.

    Keys this schema does not know are refused with 400 (marshmallow's default): a
    client cannot set `role`, `privileges` or `isActive` here, and is told so instead
    of being silently ignored. Required: username, email, password; names and college
    default to "", phone number and picture to null.
    """

    username = fields.String(required=True, validate=USERNAME)
    email = fields.Email(required=True, validate=validate.Length(max=254))
    password = fields.String(required=True, load_only=True)
    first_name = fields.String(
        data_key="firstName", load_default="", validate=validate.Length(max=150)
    )
    last_name = fields.String(
        data_key="lastName", load_default="", validate=validate.Length(max=150)
    )
    phone_number = fields.String(data_key="phoneNumber", load_default=None, validate=PHONE_NUMBER)
    college_name = fields.String(
        data_key="collegeName", load_default="", validate=validate.Length(max=200)
    )
    profile_picture = fields.String(
        data_key="profilePicture", load_default=None, validate=validate_picture_url
    )

    @validates_schema(skip_on_field_errors=False)
    def check_password(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if "password" in data:
            problem = password_problem(data["password"], data.get("username"))
            if problem:
                raise ValidationError(problem, field_name="password")


class UserSchema(Schema):
    """A user as the seed shows one; never a password or its hash."""

    public_id = fields.String(data_key="publicId")
    username = fields.String()
    first_name = fields.String(data_key="firstName")
    last_name = fields.String(data_key="lastName")
    # Optional on the account (an image-API registration has no e-mail or phone): null.
    email = fields.String(allow_none=True)
    phone_number = fields.String(data_key="phoneNumber", allow_none=True)
    college_name = fields.String(data_key="collegeName")
    profile_picture = fields.String(data_key="profilePicture", allow_none=True)
    date_joined = fields.DateTime(data_key="dateJoined")
    last_login = fields.DateTime(data_key="lastLogin", allow_none=True)  # null until a login


class UserUpdatedSchema(UserSchema):
    """`PUT /users/<username>`'s answer: the seed shows the record without its dates."""

    class Meta:
        exclude = ("date_joined", "last_login")


class UserUpdateSchema(Schema):
    """`PUT /users/<username>`: any of the profile fields.

    Role, privileges, the active flag, ids and dates are not fields here: sending one is
    refused with 400 like any unknown key.
    """

    username = fields.String(validate=USERNAME)
    email = fields.Email(validate=validate.Length(max=254))
    first_name = fields.String(data_key="firstName", validate=validate.Length(max=150))
    last_name = fields.String(data_key="lastName", validate=validate.Length(max=150))
    phone_number = fields.String(data_key="phoneNumber", allow_none=True, validate=PHONE_NUMBER)
    college_name = fields.String(data_key="collegeName", validate=validate.Length(max=200))
    profile_picture = fields.String(
        data_key="profilePicture", allow_none=True, validate=validate_picture_url
    )


class UsersQuerySchema(PageArgs):
    """`GET /users`: a 1-based `page` of `limit` users; a larger `limit` is lowered to
    MAX_PAGE_SIZE (the seed's behaviour), not refused."""

    limit = page_size(10, MAX_PAGE_SIZE, clamp=True)


class UsersPageSchema(Schema):
    """`GET /users`'s answer: a servicekit.pagination.Page in the seed's shape."""

    current_page = fields.Integer(data_key="currentPage", attribute="number")
    pages = fields.Integer(data_key="noOfPages")
    users = fields.List(fields.Nested(UserSchema), attribute="items")


class PrivilegesSchema(Schema):
    """`PUT /users/<username>/privileges`: the role, and a staff member's privileges."""

    state = fields.String(required=True, validate=validate.OneOf(ROLES))
    privileges = fields.Dict(
        keys=fields.String(
            validate=validate.Regexp(
                MODEL_NAME_PATTERN, error="model names are 1 to 64 letters, digits or '_'"
            )
        ),
        values=fields.List(
            fields.String(validate=validate.OneOf(list(ACTIONS.values()))),
            validate=validate.Length(max=len(ACTIONS) * 2),
        ),
        validate=validate.Length(max=MAX_PRIVILEGE_MODELS),
    )

    @validates_schema
    def privileges_only_for_staff(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if data.get("privileges") and data["state"] != "staff":
            raise ValidationError("only staff have privileges", field_name="privileges")


class AuthModesSchema(Schema):
    password = fields.Boolean()
    oauth = fields.List(fields.String(), data_key="o-auth")


class MessageSchema(Schema):
    message = fields.String()


class CreatePasswordSchema(Schema):
    password = fields.String(required=True, load_only=True)


class ChangePasswordSchema(Schema):
    old_password = fields.String(data_key="oldPassword", required=True, load_only=True)
    new_password = fields.String(data_key="newPassword", required=True, load_only=True)


class ResetPasswordSchema(Schema):
    reset_token = fields.String(
        data_key="resetToken", required=True, load_only=True, validate=validate.Length(max=256)
    )
    new_password = fields.String(data_key="newPassword", required=True, load_only=True)


class ProviderSchema(Schema):
    provider = fields.String(
        required=True,
        validate=validate.Regexp(PROVIDER_PATTERN, error="must be a provider name like 'google'"),
    )


class CredentialsSchema(Schema):
    username = fields.String(required=True)
    password = fields.String(required=True, load_only=True)


class TokenPairSchema(Schema):
    access = fields.String()
    refresh = fields.String()


class RefreshSchema(Schema):
    refresh = fields.String(required=True, load_only=True)


class RevokeTokenSchema(Schema):
    token = fields.String(required=True, load_only=True)


class TokensDeletedSchema(Schema):
    tokens_deleted = fields.Integer()


class ApiRegistrationSchema(Schema):
    """`POST /register/` (the image API): JSON or a form; no profile beyond an e-mail."""

    username = fields.String(required=True, validate=USERNAME)
    password = fields.String(required=True, load_only=True)
    email = fields.Email(load_default=None, validate=validate.Length(max=254))


class ApiTokenSchema(Schema):
    token = fields.String()


class ServiceTokenRequestSchema(Schema):
    service = fields.String(
        required=True,
        validate=validate.Regexp(
            SERVICE_NAME_PATTERN, error="must be 2 to 32 characters: a-z or '_'"
        ),
    )


class ServiceTokenSchema(Schema):
    access = fields.String()
    expires_in = fields.Integer()
