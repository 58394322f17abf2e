"""The registrations of an event as CSV, streamed: one row per participant.

Rows are read in batches of BATCH, each one short query continuing after the last row
sent (keyset), never the whole table in memory; each batch's names, emails and colleges
come from auth_service's user directory in one lookup. Between batches no transaction
stays open, so a slow download holds no connection: the request's own session is gone by
the time the stream continues (Flask tears it down when the view returns), and each batch
asks `sessions()` for the current one.

The first batch is read and looked up before anything is sent, so a directory that is
down is a 503 rather than a broken download; if it goes down later, the stream stops
short (the client sees an incomplete body, not a complete-looking file).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select, tuple_
from sqlalchemy.orm import Session

from events_service.errors import DirectoryDown
from events_service.models import Event, Participant, Registration, Team
from servicekit.users import MAX_LOOKUP, DirectoryUnavailable, DirectoryUser, UserDirectory

HEADER = ("username", "name", "email", "college", "team", "status", "registered_at")
# A spreadsheet reads a cell starting with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
BATCH = MAX_LOOKUP  # participants per database batch and per directory lookup
# registration_id, id, user_id, username, team name (None on single events), status, created_at
ParticipantRow = Row[int, int, str, str, str | None, str, datetime]


def filename(event: Event) -> str:
    return f"registrations-{event.public_id}.csv"


def registrations_csv(
    sessions: Callable[[], Session], event_id: int, directory: UserDirectory | None
) -> Iterator[str]:
    """The CSV's text, in chunks. The first batch is read, and its users looked up, now
    (DirectoryDown when the directory does not answer); the rest as the chunks are read."""
    first = _batch(sessions(), event_id, None)
    first_chunk = _chunk(first, _users(directory, first)) if first else ""
    return _stream(sessions, event_id, directory, first, first_chunk)


def _stream(
    sessions: Callable[[], Session],
    event_id: int,
    directory: UserDirectory | None,
    first: Sequence[ParticipantRow],
    first_chunk: str,
) -> Iterator[str]:
    yield _lines([HEADER]) + first_chunk
    batch = first
    while len(batch) == BATCH:
        last = batch[-1]
        batch = _batch(sessions(), event_id, (last.registration_id, last.id))
        if batch:
            yield _chunk(batch, _users(directory, batch))


def _batch(
    session: Session, event_id: int, after: tuple[int, int] | None
) -> Sequence[ParticipantRow]:
    """The next BATCH participants in order of arrival (registration, then participant)."""
    statement = (
        select(
            Participant.registration_id,
            Participant.id,
            Participant.user_id,
            Participant.username,
            Team.name,
            Registration.status,
            Registration.created_at,
        )
        .join(Registration, Participant.registration_id == Registration.id)
        .outerjoin(Team, Registration.team_id == Team.id)
        .where(Participant.event_id == event_id)
        .order_by(Participant.registration_id, Participant.id)
        .limit(BATCH)
    )
    if after is not None:
        statement = statement.where(tuple_(Participant.registration_id, Participant.id) > after)
    rows = session.execute(statement).all()
    session.rollback()  # a read: end its transaction, give the connection back
    return rows


def _users(
    directory: UserDirectory | None, batch: Sequence[ParticipantRow]
) -> dict[str, DirectoryUser]:
    if directory is None:
        raise DirectoryDown()
    try:
        return dict(directory.lookup(public_ids=[row.user_id for row in batch]).by_public_id)
    except DirectoryUnavailable as exc:
        raise DirectoryDown() from exc


def _chunk(batch: Sequence[ParticipantRow], users: dict[str, DirectoryUser]) -> str:
    return _lines(_cells(row, users.get(row.user_id)) for row in batch)


def _cells(row: ParticipantRow, user: DirectoryUser | None) -> tuple[str, ...]:
    """One participant's row; a user auth_service no longer knows keeps their username."""
    name = " ".join(part for part in (user.first_name, user.last_name) if part) if user else ""
    return (
        row.username,
        name,
        (user.email or "") if user is not None else "",
        user.college_name if user is not None else "",
        row.name or "",
        row.status,
        _timestamp(row.created_at),
    )


def _lines(rows: Any) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows(tuple(_safe(cell) for cell in row) for row in rows)
    return buffer.getvalue()


def _safe(cell: str) -> str:
    """A cell a spreadsheet shows as text, never evaluates."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def _timestamp(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
