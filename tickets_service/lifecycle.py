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

Each event is applied in one transaction that also records its `eventId`
(`HandledUserEvent`): a second delivery finds it and changes nothing, and two consumers
handling the same entry at once cannot both apply it (the second one's insert of the id
fails, its entry is retried and then found handled).
"""

from __future__ import annotations

import logging

from flask import current_app
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from servicekit.streams import StreamEntry
from servicekit.users import (
    USER_DELETED,
    USER_EVENT_TYPES,
    USER_UPDATED,
    DirectoryUnavailable,
    UserDirectory,
    UserEvent,
)
from tickets_service.context import tickets_context
from tickets_service.models import Comment, HandledUserEvent, Ticket, db

log = logging.getLogger(__name__)

GROUP = "tickets"  # this service's consumer group on the user lifecycle stream


def handle_entry(entry: StreamEntry) -> None:
    """The stream handler (run in the tickets app's context). A malformed entry raises:
    it is retried, then parked with its error; a type this service does not know (a
    newer auth_service's) is acknowledged."""
    if entry.fields.get("type") not in USER_EVENT_TYPES:
        log.warning("user event of an unknown type ignored", extra={"entry": entry.id})
        return
    event = UserEvent.from_fields(entry.fields)
    if apply_user_event(db.session(), event, tickets_context(current_app).directory):
        log.info(
            "user event applied",
            extra={"entry": entry.id, "type": event.type, "publicId": event.public_id},
        )


def apply_user_event(session: Session, event: UserEvent, directory: UserDirectory | None) -> bool:
    """Apply one event in one transaction. False when there was nothing to do: an event
    that changes nothing here, or one applied already."""
    renamed = event.type == USER_UPDATED and event.previous_username is not None
    if event.type != USER_DELETED and not renamed:
        return False
    username = current_username(directory, event) if renamed else event.username
    try:
        if session.get(HandledUserEvent, event.event_id) is not None:
            return False
        # First: a concurrent delivery of the same event waits on this row, then fails.
        session.add(HandledUserEvent(event_id=event.event_id))
        session.flush()
        if renamed:
            rename_user(session, event.public_id, username)
        else:
            forget_user(session, event.public_id)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return True


def current_username(directory: UserDirectory | None, event: UserEvent) -> str:
    """The user's username now, by publicId (the event's when the user is gone or no
    directory is configured). Raises DirectoryUnavailable: the entry is retried."""
    if directory is None:
        return event.username
    try:
        found = directory.lookup(public_ids=[event.public_id], fresh=True)
    except DirectoryUnavailable:
        log.warning("the user directory is unavailable: the rename waits for it")
        raise
    user = found.by_public_id.get(event.public_id)
    return event.username if user is None else user.username


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
