"""auth_service's request and response shapes (marshmallow 4), with the seed's wire names."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from auth_service.passwords import password_problem
from auth_service.service import SERVICE_NAME_PATTERN, USERNAME_PATTERN

USERNAME = validate.Regexp(
    USERNAME_PATTERN, error="must be 3 to 64 characters: letters, digits, '_', '.' or '-'"
)
PHONE_NUMBER = validate.Regexp(
    r"^\+?[0-9]{7,15}$", error="must be 7 to 15 digits, optionally after a '+'"
)
PICTURE_MAX_LENGTH = 2048


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
    email = fields.String()
    phone_number = fields.String(data_key="phoneNumber")
    college_name = fields.String(data_key="collegeName")
    profile_picture = fields.String(data_key="profilePicture")
    date_joined = fields.DateTime(data_key="dateJoined")
    last_login = fields.DateTime(data_key="lastLogin")


class CredentialsSchema(Schema):
    username = fields.String(required=True)
    password = fields.String(required=True, load_only=True)


class TokenPairSchema(Schema):
    access = fields.String()
    refresh = fields.String()


class RefreshSchema(Schema):
    refresh = fields.String(required=True, load_only=True)


class AccessTokenSchema(Schema):
    access = fields.String()


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
