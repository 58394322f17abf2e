"""Request and response shapes of registrations, with the document's wire names."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, missing, validate

from events_service.models import REGISTRATION_STATUSES, Registration
from servicekit.pagination import PageArgs, page_size

CSV, JSON = "csv", "json"
TEAM_ID_MAX_DIGITS = 18


class TeamIdField(fields.Field):  # type: ignore[type-arg]
    """A team's id: a string of digits as the document sends it ("2"), or a number."""

    default_error_messages = {"invalid": 'must be a team id: a string of digits such as "2"'}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        if isinstance(value, int) and value > 0:
            text = str(value)
        elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
            text = value.strip()
        else:
            raise self.make_error("invalid")
        if len(text) > TEAM_ID_MAX_DIGITS:
            raise self.make_error("invalid")
        return int(text)


class RegisterSchema(Schema):
    """`POST /events/<publicId>/register/`: nothing for a single event, `teamId` for a
    team event."""

    team_id = TeamIdField(data_key="teamId", load_default=None, allow_none=True)


class RegisteredSchema(Schema):
    """The document's `{"message": "Successfully registered"}`, with the registration's id
    and status (`confirmed`, `payment pending` or `waiting`)."""

    message = fields.Constant("Successfully registered")
    registration_id = fields.Function(lambda r: str(r.id), data_key="registrationId")
    status = fields.String()


class RegistrationsQuerySchema(PageArgs):
    """`GET /events/<publicId>/registrations`: a page of the list, or the whole CSV."""

    limit = page_size(1000, 5000)
    format = fields.String(
        load_default=JSON,
        validate=validate.OneOf([JSON, CSV]),
        metadata={"description": "json (the default) or csv (every participant, streamed)"},
    )


def _team_id(registration: Registration) -> str | Any:
    return missing if registration.team_id is None else str(registration.team_id)


class RegistrationSchema(Schema):
    """One registration: `{registrationId, userId, status}`, `teamId` too for a team's;
    `userId` is the username of who registered it."""

    registration_id = fields.Function(lambda r: str(r.id), data_key="registrationId")
    team_id = fields.Function(_team_id, data_key="teamId")
    user_id = fields.String(attribute="username", data_key="userId")
    status = fields.String(metadata={"description": ", ".join(REGISTRATION_STATUSES)})


class ListedRegistrationSchema(Schema):
    """The document's list entry: `{registrationId, teamId, status}` on a team event,
    `{registrationId, userId, status}` (userId: a username) on a single event."""

    registration_id = fields.Function(lambda r: str(r.id), data_key="registrationId")
    team_id = fields.Function(_team_id, data_key="teamId")
    user_id = fields.Function(
        lambda r: r.username if r.team_id is None else missing, data_key="userId"
    )
    status = fields.String()


class RegistrationListSchema(Schema):
    event_public_id = fields.String(data_key="eventPublicId")
    event_type = fields.String(data_key="eventType", metadata={"description": "single or team"})
    registrations = fields.List(fields.Nested(ListedRegistrationSchema))
    pages = fields.Integer()
    current_page = fields.Integer(data_key="currentpage")


class StatusChangeSchema(Schema):
    """`PUT .../registrations/<registrationId>`: `{"status": "confirmed"}` (payment
    received)."""

    status = fields.String(required=True)
