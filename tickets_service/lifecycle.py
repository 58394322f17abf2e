"""Following auth_service's users: tickets_service's handler of the user lifecycle stream.

It runs as its own process, a consumer of the group `tickets` (`tickets_users` in
`make run` and docker-compose.yml), like events_service's:

    python -m servicekit.streams tickets_service.lifecycle:handle_entry \\
        --group tickets --app tickets_service

or `flask --app tickets_service consume-user-events` (the same consumer; `--once`
handles what the stream holds and stops).

- `user.deleted`: the user's private tickets go, with their threads. Their public
  tickets stay (their answers help others) with `openedBy` shown as `deleted-user`;
  their replies and the solutions they wrote stay too, by `deleted-user`.
- `user.updated` of a rename: every stored username of the user becomes their current
  one (asked of the directory by publicId, so a rename handled late, after a later one,
  does not bring back an old name).
- Any other event: nothing to do here (acknowledged). A disabled user's tickets stay.

Each event is applied once, in one transaction that records its `eventId` in
`HandledUserEvent` (servicekit.user_events).
"""

from __future__ import annotations

from flask import current_app
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from servicekit.streams import StreamEntry
from servicekit.user_events import UserEventFollower
from servicekit.users import USER_DELETED, UserDirectory, UserEvent
from tickets_service.context import tickets_context
from tickets_service.models import Comment, HandledUserEvent, Ticket, db

GROUP = "tickets"  # this service's consumer group on the user lifecycle stream


def handle_entry(entry: StreamEntry) -> None:
    """The stream handler (run in the tickets app's context)."""
    FOLLOWER.handle_entry(entry, db.session(), tickets_context(current_app).directory)


def apply_user_event(session: Session, event: UserEvent, directory: UserDirectory | None) -> bool:
    """Apply one event in one transaction (False: nothing to do, or applied already)."""
    return FOLLOWER.apply(session, event, directory)


def forget_user(session: Session, user_id: str) -> None:
    """Delete the user's private tickets and threads; anonymise the rest of their words."""
    private = select(Ticket.id).where(Ticket.opener_id == user_id, Ticket.is_public.is_(False))
    session.execute(delete(Comment).where(Comment.ticket_id.in_(private)))
    session.execute(delete(Ticket).where(Ticket.opener_id == user_id, Ticket.is_public.is_(False)))
    session.execute(
        update(Ticket)
        .where(Ticket.opener_id == user_id)
        .values(opener_id=None, opener_username=None)
    )
    session.execute(
        update(Ticket)
        .where(Ticket.solver_id == user_id)
        .values(solver_id=None, solver_username=None)
    )
    session.execute(
        update(Comment)
        .where(Comment.author_id == user_id)
        .values(author_id=None, author_username=None)
    )


def rename_user(session: Session, user_id: str, username: str) -> None:
    """Every username stored for the user (by publicId) becomes `username`."""
    session.execute(
        update(Ticket).where(Ticket.opener_id == user_id).values(opener_username=username)
    )
    session.execute(
        update(Ticket).where(Ticket.solver_id == user_id).values(solver_username=username)
    )
    session.execute(
        update(Comment).where(Comment.author_id == user_id).values(author_username=username)
    )


FOLLOWER = UserEventFollower(
    HandledUserEvent, remove=forget_user, rename=rename_user, removing=(USER_DELETED,)
)
