"""Request and response shapes of teams and invitations, with the document's wire names."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from events_service.models import NAME_LENGTH, PUBLIC_ID_LENGTH, USERNAME_LENGTH
from servicekit.pagination import PageArgs, page_size

MAX_PAGE_SIZE = 100


def no_control_characters(value: str) -> None:
    if any(ord(character) < 32 or ord(character) == 127 for character in value):
        raise ValidationError("must not contain control characters")


class StrippedString(fields.String):
    """A string without its surrounding whitespace (validated after stripping)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return super()._deserialize(value, attr, data, **kwargs).strip()


def team_name() -> StrippedString:
    return StrippedString(
        required=True,
        validate=[validate.Length(min=1, max=NAME_LENGTH), no_control_characters],
        metadata={"description": f"1 to {NAME_LENGTH} characters, surrounding spaces removed"},
    )


def username(**kwargs: Any) -> fields.String:
    return fields.String(
        validate=[validate.Length(min=1, max=USERNAME_LENGTH), no_control_characters], **kwargs
    )


class TeamNameSchema(Schema):
    """`POST /teams/` and `PUT /teams/<teamid>`: the team's name."""

    name = team_name()


class InviteSchema(Schema):
    """`POST /teams/<teamid>/invitations`: whom to invite."""

    username = username(required=True)


class TeamSchema(Schema):
    """A team: usernames of its leader, members (in joining order) and pending invitees,
    and the publicIds of the events it is registered for."""

    teamid = fields.String()
    name = fields.String()
    leader = fields.String()
    members = fields.List(fields.String())
    invitees = fields.List(fields.String())
    events = fields.List(fields.String())


class TeamsQuerySchema(PageArgs):
    """`GET /teams`: a 1-based `page` of `limit` teams, optionally only those registered
    for `event` (a publicId) or led by or counting `user` (a username) as a member."""

    limit = page_size(10, MAX_PAGE_SIZE)
    event = fields.String(
        validate=[validate.Length(min=1, max=PUBLIC_ID_LENGTH), no_control_characters]
    )
    user = username()


class TeamsPageSchema(Schema):
    """`GET /teams`'s answer: a servicekit.pagination.Page in the document's shape."""

    pages = fields.Integer()
    currentpage = fields.Integer(attribute="number")
    result = fields.List(fields.Nested(TeamSchema), attribute="items")


class InvitationSchema(Schema):
    """One of a user's invitations: the team and the invitation's state."""

    teamid = fields.String()
    name = fields.String()
    leader = fields.String()
    status = fields.String(metadata={"enum": ["pending", "accepted", "rejected"]})


class AnswerSchema(Schema):
    """The answer to accepting or rejecting an invitation."""

    status = fields.String()
    teamid = fields.String()
    name = fields.String()
