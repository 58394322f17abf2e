"""`POST /internal/users/lookup` and `GET /internal/users`: the user directory for other
services (service tokens only; the gateway never routes `/internal`)."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from auth_service.directory import list_users, lookup_users
from servicekit import Blueprint, require_service
from servicekit.users import DEFAULT_LIST_PAGE, MAX_LIST_PAGE, MAX_LOOKUP, MAX_NAME_LENGTH

NAME = fields.String(validate=validate.Length(max=MAX_NAME_LENGTH))

directory_blp = Blueprint(
    "directory",
    __name__,
    url_prefix="/internal/users",
    description="The user directory for other services; the gateway does not route it.",
)


class LookupRequestSchema(Schema):
    """Usernames and publicIds to resolve: at least one, at most MAX_LOOKUP together."""

    usernames = fields.List(NAME, load_default=list)
    public_ids = fields.List(NAME, data_key="publicIds", load_default=list)

    @validates_schema
    def check_size(self, data: dict[str, Any], **_kwargs: Any) -> None:
        total = len(data["usernames"]) + len(data["public_ids"])
        if total == 0:
            raise ValidationError("give at least one username or publicId", "usernames")
        if total > MAX_LOOKUP:
            raise ValidationError(
                f"at most {MAX_LOOKUP} usernames and publicIds together", "usernames"
            )


class DirectoryUserSchema(Schema):
    public_id = fields.String(data_key="publicId")
    username = fields.String()
    first_name = fields.String(data_key="firstName")
    last_name = fields.String(data_key="lastName")
    email = fields.String(allow_none=True)
    college_name = fields.String(data_key="collegeName")
    role = fields.String()
    is_active = fields.Boolean(data_key="isActive")
    date_joined = fields.DateTime(data_key="dateJoined")
    last_login = fields.DateTime(data_key="lastLogin", allow_none=True)  # null until a login


class UnknownNamesSchema(Schema):
    usernames = fields.List(fields.String())
    public_ids = fields.List(fields.String(), data_key="publicIds")


class ListingArgsSchema(Schema):
    """`after`: the previous page's `next` (absent for the first page)."""

    after = fields.String(
        validate=[
            validate.Length(min=1, max=MAX_NAME_LENGTH),
            # PostgreSQL refuses a NUL character as a parameter.
            validate.Regexp(r"^[^\x00]*$", error="not a publicId"),
        ]
    )
    limit = fields.Integer(
        load_default=DEFAULT_LIST_PAGE, validate=validate.Range(min=1, max=MAX_LIST_PAGE)
    )


class ListingAnswerSchema(Schema):
    users = fields.List(fields.Nested(DirectoryUserSchema))
    next = fields.String(allow_none=True)


class LookupAnswerSchema(Schema):
    users = fields.List(fields.Nested(DirectoryUserSchema))
    # Not `unknown`: marshmallow's Schema has an attribute of that name.
    unknown_names = fields.Nested(UnknownNamesSchema, data_key="unknown")


@directory_blp.before_request
def require_service_token() -> None:
    """Service tokens only (401 without a token, 403 for a user's), before the body is read."""
    require_service()


@directory_blp.route("/lookup", methods=["POST"])
@directory_blp.arguments(LookupRequestSchema)
@directory_blp.response(200, LookupAnswerSchema)
@directory_blp.doc(security=[{"bearerAuth": []}])
def lookup(data: dict[str, list[str]]) -> dict[str, Any]:
    """Resolve usernames and publicIds to users; names no user has are listed as unknown."""
    found = lookup_users(data["usernames"], data["public_ids"])
    return {
        "users": found.users,
        "unknown_names": {
            "usernames": found.unknown_usernames,
            "public_ids": found.unknown_public_ids,
        },
    }


@directory_blp.route("/", methods=["GET"])
# A misspelt parameter is refused, not ignored.
@directory_blp.arguments(ListingArgsSchema, location="query", unknown=RAISE)
@directory_blp.response(200, ListingAnswerSchema)
@directory_blp.doc(security=[{"bearerAuth": []}])
def listing(args: dict[str, Any]) -> dict[str, Any]:
    """Every user, a page at a time in publicId order (disabled ones too, with
    `isActive: false`); `next` is the `after` of the next page, null on the last."""
    page = list_users(args.get("after"), args["limit"])
    return {"users": page.users, "next": page.next_after}
