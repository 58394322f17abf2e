"""Following auth_service's users: the users copy, fed by the user lifecycle stream.

It runs as its own process, a consumer of the group `datapoints`:

    python -m servicekit.streams datapoints_service.lifecycle:handle_entry \\
        --group datapoints --app datapoints_service

Every event is read as "this user changed": the user's current state is asked of the
directory by publicId (fresh) and written to the copy (an upsert), or, when the
directory no longer has them (or the event is `user.deleted`), the user leaves the
copy with their groups, permission rows and dashboards (their documents and maps stay,
their author unknown). So a second delivery, or events handled out of order, end at the
user's current state; nothing needs recording per event. Without a directory
(`SERVICE_SECRET` unset) the event's own fields are used (username, enabled or not).

A copy that is empty when the consumer starts is first filled from the directory's
listing (`backfill_users`, also `flask --app datapoints_service backfill-users`): run it
as `python -m datapoints_service.cli` (the command above, after the backfill). Events
published while the listing is read stay in the stream and are handled afterwards; as
each one writes the user's current state, a late one cannot take a user back in time.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from flask import current_app
from sqlalchemy import delete, exists, select, update
from sqlalchemy.orm import Session

from datapoints_service.context import datapoints_context
from datapoints_service.locking import take_write_lock
from datapoints_service.models import (
    CampaignMap,
    CustomDashboard,
    DataPoint,
    Document,
    IndicatorMap,
    RegionMap,
    RegionPermission,
    User,
    UserGroup,
    UserPermission,
    db,
)
from servicekit.streams import StreamEntry
from servicekit.users import (
    DEFAULT_LIST_PAGE,
    USER_CREATED,
    USER_DELETED,
    USER_DISABLED,
    USER_EVENT_TYPES,
    DirectoryUnavailable,
    DirectoryUser,
    UserDirectory,
    UserEvent,
)

log = logging.getLogger(__name__)

GROUP = "datapoints"  # this service's consumer group on the user lifecycle stream
STAFF_ROLES = ("staff", "superuser")


def handle_entry(entry: StreamEntry) -> None:
    """The stream handler (run in the datapoints app's context). A malformed entry raises:
    it is retried, then parked; a type this service does not know is acknowledged."""
    if entry.fields.get("type") not in USER_EVENT_TYPES:
        log.warning("user event of an unknown type ignored", extra={"entry": entry.id})
        return
    event = UserEvent.from_fields(entry.fields)
    apply_user_event(db.session(), event, datapoints_context(current_app).directory)
    log.info(
        "user event applied",
        extra={"entry": entry.id, "type": event.type, "publicId": event.public_id},
    )


def apply_user_event(session: Session, event: UserEvent, directory: UserDirectory | None) -> None:
    """Bring the user's copy to their current state, in one transaction. Raises
    DirectoryUnavailable (the entry is retried) when the directory does not answer."""
    current = None if event.type == USER_DELETED else _current(directory, event)
    try:
        take_write_lock(session)
        if current is None and (event.type == USER_DELETED or directory is not None):
            remove_user(session, event.public_id)
        else:
            upsert_user(session, event, current)
        session.commit()
    except BaseException:
        session.rollback()
        raise


def _current(directory: UserDirectory | None, event: UserEvent) -> DirectoryUser | None:
    if directory is None:
        return None
    try:
        found = directory.lookup(public_ids=[event.public_id], fresh=True)
    except DirectoryUnavailable:
        log.warning("the user directory is unavailable: the event waits for it")
        raise
    return found.by_public_id.get(event.public_id)


def upsert_user(session: Session, event: UserEvent, current: DirectoryUser | None) -> None:
    """The user's row as the directory has them now (or, without a directory, as the
    event says)."""
    username = event.username if current is None else current.username
    _free_username(session, username, event.public_id)
    user = session.scalar(select(User).where(User.public_id == event.public_id))
    if user is None:
        user = User(public_id=event.public_id, username=username, date_joined=event.occurred_at)
        session.add(user)
    elif event.type == USER_CREATED:
        user.date_joined = event.occurred_at  # kept unless the directory says otherwise
    user.username = username
    if current is None:
        user.is_active = event.type != USER_DISABLED
        return
    _copy_directory_fields(user, current)


def _copy_directory_fields(user: User, current: DirectoryUser) -> None:
    user.username = current.username
    user.first_name, user.last_name = current.first_name, current.last_name
    user.email = current.email
    user.is_active = current.is_active
    user.is_staff = current.role in STAFF_ROLES
    user.is_superuser = current.role == "superuser"
    if current.date_joined is not None:  # an older directory does not publish it
        user.date_joined = current.date_joined
    user.last_login = current.last_login


def _free_username(session: Session, username: str, public_id: str) -> None:
    """Another row holding `username` is stale (its user was renamed or deleted and the
    event has not arrived yet): it is set aside under a name no user can have until its
    own event puts it right."""
    session.execute(
        update(User)
        .where(User.username == username, User.public_id != public_id)
        .values(username="~" + User.public_id)
    )
    session.flush()


def remove_user(session: Session, public_id: str) -> None:
    user_id = session.scalar(select(User.id).where(User.public_id == public_id))
    if user_id is None:
        return
    for owned in (UserGroup, RegionPermission, UserPermission):
        session.execute(delete(owned).where(owned.user_id == user_id))
    session.execute(delete(CustomDashboard).where(CustomDashboard.owner_id == user_id))
    session.execute(
        update(Document).where(Document.created_by_id == user_id).values(created_by_id=None)
    )
    session.execute(
        update(DataPoint).where(DataPoint.changed_by_id == user_id).values(changed_by_id=None)
    )
    for mapped in (RegionMap, CampaignMap, IndicatorMap):
        session.execute(
            update(mapped).where(mapped.mapped_by_id == user_id).values(mapped_by_id=None)
        )
    session.execute(delete(User).where(User.id == user_id))


# The backfill


def copy_is_empty(session: Session) -> bool:
    return not session.scalar(select(exists().where(User.id.is_not(None))))


def backfill_users(
    session: Session, directory: UserDirectory, *, page_size: int = DEFAULT_LIST_PAGE
) -> int:
    """Upsert (by publicId) every user the directory lists, in one transaction: the copy
    is filled completely or not at all, so a failed backfill leaves it empty and the next
    start tries again. Users the copy holds and the directory does not list are left to
    their `user.deleted` events. Raises DirectoryUnavailable. Returns the users written."""
    written = 0
    batch: list[DirectoryUser] = []
    try:
        for user in directory.all_users(page_size=page_size):
            batch.append(user)
            if len(batch) == page_size:
                written += _upsert_batch(session, batch)
                batch = []
        written += _upsert_batch(session, batch)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return written


def _upsert_batch(session: Session, users: Sequence[DirectoryUser]) -> int:
    """A page of the listing into the copy: a few statements, not a few per user."""
    if not users:
        return 0
    take_write_lock(session)  # after the page came: no lock is held while it is fetched
    owner_of = {user.username: user.public_id for user in users}
    holders = session.execute(
        select(User.id, User.public_id, User.username).where(User.username.in_(owner_of))
    ).all()
    for holder in holders:
        if owner_of[holder.username] != holder.public_id:  # stale: see _free_username
            session.execute(
                update(User).where(User.id == holder.id).values(username="~" + holder.public_id)
            )
    public_ids = [user.public_id for user in users]
    rows = {
        row.public_id: row
        for row in session.scalars(select(User).where(User.public_id.in_(public_ids)))
    }
    for current in users:
        row = rows.get(current.public_id)
        if row is None:
            row = User(public_id=current.public_id)
            session.add(row)
        _copy_directory_fields(row, current)
    session.flush()
    return len(users)
