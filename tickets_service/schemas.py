"""Request and response shapes of tickets and their threads, with the document's wire names."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from marshmallow import Schema, ValidationError, fields, pre_load, validate

from servicekit.pagination import PageArgs, page_size
from tickets_service.models import (
    CONTENT_LENGTH,
    DESCRIPTION_LENGTH,
    TITLE_LENGTH,
    TOPIC_LENGTH,
    USERNAME_LENGTH,
    Comment,
    Ticket,
)

MAX_PAGE_SIZE = 100
MAX_QUERY_LENGTH = 200  # `q`: a few words, not a document
DELETED_USER = "deleted-user"  # who a deleted account's tickets and replies are by
VIEWS = ("public", "private")
STATUSES = ("solved", "unsolved")


def not_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError("must not be blank")


def no_nul(value: str) -> None:
    """NUL is no text (and PostgreSQL stores none)."""
    if "\x00" in value:
        raise ValidationError("must not contain NUL characters")


def printable_text(value: str) -> None:
    """Line breaks and tabs are text; other control characters are not."""
    if any(
        (ord(character) < 32 and character not in "\t\n\r") or ord(character) == 127
        for character in value
    ):
        raise ValidationError("must not contain control characters other than line breaks")


def no_control_characters(value: str) -> None:
    if any(ord(character) < 32 or ord(character) == 127 for character in value):
        raise ValidationError("must not contain control characters")


class StrippedString(fields.String):
    """A string without its surrounding whitespace (validated after stripping)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return super()._deserialize(value, attr, data, **kwargs).strip()


def text(maximum: int, **kwargs: Any) -> fields.String:
    """Free text (line breaks allowed), not blank, at most `maximum` characters."""
    return fields.String(
        validate=[validate.Length(max=maximum), not_blank, printable_text],
        metadata={"description": f"1 to {maximum} characters"},
        **kwargs,
    )


def line(maximum: int, **kwargs: Any) -> StrippedString:
    """One line: surrounding spaces removed, 1 to `maximum` characters, no control ones."""
    return StrippedString(
        validate=[validate.Length(min=1, max=maximum), no_control_characters],
        metadata={"description": f"1 to {maximum} characters on one line"},
        **kwargs,
    )


# Input


class NewTicketSchema(Schema):
    """`POST /ticket/`: a question, public (everyone reads it and its answers) or private."""

    title = line(TITLE_LENGTH, required=True)
    description = text(DESCRIPTION_LENGTH, required=True)
    view = fields.String(required=True, validate=validate.OneOf(VIEWS))
    topic = line(TOPIC_LENGTH)


class ContentSchema(Schema):
    """`PUT /ticket/<ticketid>/close` (the solution) and `POST .../comments` (a reply)."""

    content = text(CONTENT_LENGTH, required=True)


class PageQuerySchema(PageArgs):
    """`limit` (10 by default, at most 100) and a 1-based `page`. Empty values (the
    document's own example sends `?limit&page&status=&topic`) mean the default, or no
    filter."""

    limit = page_size(10, MAX_PAGE_SIZE)

    @pre_load
    def drop_empty_values(self, data: Any, **_kwargs: Any) -> dict[str, Any]:
        loaded: dict[str, Any] = {}
        for key in data:
            values = data.getlist(key) if hasattr(data, "getlist") else [data[key]]
            if values and values[-1] != "":
                loaded[key] = values[-1]
        return loaded


class TicketsQuerySchema(PageQuerySchema):
    """The filters of every ticket list."""

    status = fields.String(validate=validate.OneOf(STATUSES))
    topic = fields.String(validate=[validate.Length(max=TOPIC_LENGTH), no_nul])
    q = fields.String(
        validate=[validate.Length(max=MAX_QUERY_LENGTH), no_nul],
        metadata={"description": "words matched in the title and description"},
    )


class AllTicketsQuerySchema(TicketsQuerySchema):
    """`GET /ticket`: staff filter by opener too."""

    user = fields.String(
        validate=[validate.Length(max=USERNAME_LENGTH), no_nul],
        metadata={"description": "the opener's username"},
    )


# Output


def _solution(ticket: Ticket) -> dict[str, Any]:
    if not ticket.solved or ticket.solved_at is None:
        return {"status": "unsolved"}
    return {
        "status": "solved",
        "solvedBy": ticket.solver_username or DELETED_USER,
        "solvingDate": ticket.solved_at.astimezone(UTC).date().isoformat(),
        "content": ticket.solution,
    }


class TicketSchema(Schema):
    """A ticket as the document shows it (`openingDate` spelled one way), with its topic
    and view."""

    ticketid = fields.Function(lambda ticket: str(ticket.id))
    title = fields.String()
    description = fields.String()
    topic = fields.String()
    view = fields.Function(lambda ticket: VIEWS[0] if ticket.is_public else VIEWS[1])
    opened_by = fields.Function(
        lambda ticket: ticket.opener_username or DELETED_USER, data_key="openedBy"
    )
    opening_date = fields.Function(
        lambda ticket: ticket.opened_at.astimezone(UTC).date().isoformat(),
        data_key="openingDate",
    )
    solution = fields.Function(_solution)


class TicketsPageSchema(Schema):
    """A list's answer: a servicekit.pagination.Page in the document's shape."""

    pages = fields.Integer()
    currentpage = fields.Integer(attribute="number")
    result = fields.List(fields.Nested(TicketSchema), attribute="items")


def _created_at(comment: Comment) -> str:
    return comment.created_at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class CommentSchema(Schema):
    commentid = fields.Function(lambda comment: str(comment.id))
    author = fields.Function(lambda comment: comment.author_username or DELETED_USER)
    content = fields.String()
    created_at = fields.Function(_created_at, data_key="createdAt")


class CommentsPageSchema(Schema):
    pages = fields.Integer()
    currentpage = fields.Integer(attribute="number")
    result = fields.List(fields.Nested(CommentSchema), attribute="items")
