"""Following the user lifecycle stream: each event applied once, in one transaction.

A service that keeps users it does not own declares what a removed user and a renamed
user mean for its data, and a table of the events it has applied (two columns: the
stream's `eventId` as primary key, and when):

    FOLLOWER = UserEventFollower(
        HandledUserEvent, remove=remove_user, rename=rename_user,
        removing=(USER_DELETED, USER_DISABLED),
    )

    def handle_entry(entry: StreamEntry) -> None:  # the servicekit.streams handler
        FOLLOWER.handle_entry(entry, db.session(), my_context(current_app).directory)

The event's id is inserted first, in the transaction of its effects: a second delivery
finds it and changes nothing, and two consumers applying the same entry at once cannot
both succeed (the second insert fails; its entry is retried and then found applied).
A rename takes the user's current username from the directory (by publicId), so a
rename handled late, after a later one, does not bring back an old name.

The record of an event is needed only while the stream may deliver it again, that is
while the stream holds it (auth_service trims it after `USER_EVENTS_RETENTION`, seven
days by default): each applied event deletes the records older than `keep` (30 days), in
its transaction, so the table holds about a month of removals and renames.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from servicekit.db import utcnow
from servicekit.streams import StreamEntry
from servicekit.users import (
    USER_DELETED,
    USER_EVENT_TYPES,
    USER_UPDATED,
    DirectoryUnavailable,
    UserDirectory,
    UserEvent,
)

log = logging.getLogger(__name__)

RemoveUser = Callable[[Session, str], None]  # (session, the user's publicId)
RenameUser = Callable[[Session, str, str], None]  # (session, publicId, current username)
KEEP_HANDLED = timedelta(days=30)


@dataclass(frozen=True)
class UserEventFollower:
    # The service's mapped class of applied events (`event_id` primary key, `handled_at`).
    handled: Any
    remove: RemoveUser
    rename: RenameUser
    removing: Collection[str] = (USER_DELETED,)
    keep: timedelta = KEEP_HANDLED  # longer than the stream keeps its entries

    def handle_entry(
        self, entry: StreamEntry, session: Session, directory: UserDirectory | None
    ) -> None:
        """A stream entry. A malformed one raises (retried, then parked with its error);
        a type this service does not know (a newer auth_service's) is acknowledged."""
        if entry.fields.get("type") not in USER_EVENT_TYPES:
            log.warning("user event of an unknown type ignored", extra={"entry": entry.id})
            return
        event = UserEvent.from_fields(entry.fields)
        if self.apply(session, event, directory):
            log.info(
                "user event applied",
                extra={"entry": entry.id, "type": event.type, "publicId": event.public_id},
            )

    def apply(self, session: Session, event: UserEvent, directory: UserDirectory | None) -> bool:
        """Apply one event in one transaction. False when there was nothing to do: an
        event that changes nothing here, or one applied already."""
        renamed = event.type == USER_UPDATED and event.previous_username is not None
        if event.type not in self.removing and not renamed:
            return False
        username = current_username(directory, event) if renamed else event.username
        try:
            if session.get(self.handled, event.event_id) is not None:
                return False
            # First: a concurrent delivery of the same event waits on this row, then fails.
            session.add(self.handled(event_id=event.event_id))
            session.flush()
            if renamed:
                self.rename(session, event.public_id, username)
            else:
                self.remove(session, event.public_id)
            self._forget_old(session)
            session.commit()
        except BaseException:
            session.rollback()
            raise
        return True

    def _forget_old(self, session: Session) -> None:
        """Records of events the stream can no longer deliver again."""
        cutoff = utcnow() - self.keep
        session.execute(
            delete(self.handled)
            .where(self.handled.handled_at < cutoff)
            .execution_options(synchronize_session=False)
        )


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
