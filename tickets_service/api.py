"""tickets_service's HTTP routes: parse, call service.py, serialize.

Who may call: opening, replying and reopening need a signed-in caller; the public list
and a public ticket's thread need none; a user's list is theirs and staff's; the list of
every ticket and closing are staff's.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from sqlalchemy.orm import Session

from servicekit import Blueprint, Identity, current_identity, require_identity, require_staff
from servicekit.pagination import Page, page_window
from tickets_service import service
from tickets_service.context import TicketsContext, tickets_context
from tickets_service.models import Comment, Ticket, db
from tickets_service.notifications import Notice, enqueue
from tickets_service.schemas import (
    AllTicketsQuerySchema,
    CommentSchema,
    CommentsPageSchema,
    ContentSchema,
    NewTicketSchema,
    PageQuerySchema,
    TicketSchema,
    TicketsPageSchema,
    TicketsQuerySchema,
)
from tickets_service.service import TicketFilter

BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]

blp = Blueprint("tickets", __name__, description="The fest's help desk: tickets and their threads.")

# Views anyone may call (a private ticket's thread is still refused to strangers).
PUBLIC_VIEWS = frozenset({"tickets.public_tickets", "tickets.list_comments"})


@blp.before_request
def signed_in() -> None:
    """401 before a body is looked at, on every route that needs a caller."""
    if request.endpoint not in PUBLIC_VIEWS:
        require_identity()


def session() -> Session:
    return db.session()


def context() -> TicketsContext:
    return tickets_context(current_app)


def notify(notice: Notice) -> None:
    enqueue(context().redis, notice)


def which(query: dict[str, Any], **scope: Any) -> TicketFilter:
    return TicketFilter(
        status=query.get("status"), topic=query.get("topic"), q=query.get("q"), **scope
    )


# Tickets


@blp.route("/ticket", methods=["POST"])
@blp.arguments(NewTicketSchema)
@blp.response(201, TicketSchema)
@blp.doc(security=BEARER)
def open_ticket(data: dict[str, Any]) -> Ticket:
    """Open a ticket (any signed-in user; at most TICKETS_PER_HOUR an hour)."""
    return service.open_ticket(session(), context().ticket_limit(), require_identity(), **data)


@blp.route("/ticket", methods=["GET"])
@blp.arguments(AllTicketsQuerySchema, location="query")
@blp.response(200, TicketsPageSchema)
@blp.doc(security=BEARER)
def all_tickets(query: dict[str, Any]) -> Page[Ticket]:
    """Every ticket, public and private, newest first (staff)."""
    require_staff()
    return service.list_tickets(
        session(), which(query, username=query.get("user")), page_window(query)
    )


@blp.route("/ticket/public", methods=["GET"])
@blp.arguments(TicketsQuerySchema, location="query")
@blp.response(200, TicketsPageSchema)
def public_tickets(query: dict[str, Any]) -> Page[Ticket]:
    """The public tickets, newest first (anyone)."""
    return service.list_tickets(session(), which(query, public_only=True), page_window(query))


@blp.route("/ticket/<username>", methods=["GET"])
@blp.arguments(TicketsQuerySchema, location="query")
@blp.response(200, TicketsPageSchema)
@blp.doc(security=BEARER)
def user_tickets(query: dict[str, Any], username: str) -> Page[Ticket]:
    """A user's tickets, public and private, newest first (that user, staff)."""
    return service.user_tickets(
        session(), require_identity(), username, which(query, username=username), page_window(query)
    )


@blp.route("/ticket/<ticketid>/close", methods=["PUT"])
@blp.arguments(ContentSchema)
@blp.response(200, TicketSchema)
@blp.doc(security=BEARER)
def close_ticket(data: dict[str, Any], ticketid: str) -> Ticket:
    """Solve a ticket with `content` (staff); the opener gets an email."""
    caller = require_staff()
    return service.close_ticket(session(), ticketid, caller, data["content"], notify)


@blp.route("/ticket/<ticketid>/reopen", methods=["PUT"])
@blp.response(200, TicketSchema)
@blp.doc(security=BEARER)
def reopen_ticket(ticketid: str) -> Ticket:
    """Put a solved ticket back to unsolved, its thread kept (its opener, staff)."""
    return service.reopen_ticket(session(), ticketid, require_identity())


# The thread


@blp.route("/ticket/<ticketid>/comments", methods=["GET"])
@blp.arguments(PageQuerySchema, location="query")
@blp.response(200, CommentsPageSchema)
def list_comments(query: dict[str, Any], ticketid: str) -> Page[Comment]:
    """A ticket's thread, oldest first (a public one: anyone; a private one: its opener
    and staff)."""
    caller = current_identity(optional=True)
    return service.list_comments(session(), ticketid, caller, page_window(query))


@blp.route("/ticket/<ticketid>/comments", methods=["POST"])
@blp.arguments(ContentSchema)
@blp.response(201, CommentSchema)
@blp.doc(security=BEARER)
def add_comment(data: dict[str, Any], ticketid: str) -> Comment:
    """Reply (the opener, at most TICKET_COMMENTS_PER_HOUR an hour; staff, whose reply
    mails the opener)."""
    caller: Identity = require_identity()
    return service.add_comment(
        session(), ticketid, caller, data["content"], context().comment_limit(), notify
    )


blueprints = [blp]
