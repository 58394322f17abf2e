"""An event's photo and logo, kept by media_service's file store (servicekit.files).

The files go to media_service before the event is written, with no database connection
held meanwhile; the event then points at them in one short transaction, and the files
they replace are deleted after it commits. A refusal or a failure changes nothing: files
media_service has just stored for a write that failed are deleted again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import BinaryIO

from events_service.errors import EventNotFound
from events_service.events.service import DbSession, FileStore, find_event
from events_service.models import Event
from servicekit.db import utcnow
from servicekit.errors import DomainError
from servicekit.files import FileTooLarge

PICTURE, LOGO = "picture_url", "logo_url"
# media_service's purpose of each kind of file (its records say what a file was for).
PURPOSES = {PICTURE: "event-photo", LOGO: "event-logo"}


class InvalidUpload(DomainError):
    status, code = 400, "validation_error"

    def __init__(self, message: str, errors: dict[str, str]) -> None:
        super().__init__(message, errors=errors)


def store_photos(
    session: DbSession,
    store: FileStore,
    public_id: str,
    uploads: Mapping[str, tuple[str, BinaryIO]],
    max_bytes: int,
) -> Event:
    """Set the event's picture and/or logo: `uploads` maps PICTURE or LOGO to the form
    field the file came in and its stream."""
    event = find_event(session, public_id)
    sizes = {
        kind: _checked_size(field, stream, max_bytes) for kind, (field, stream) in uploads.items()
    }
    event_id, owner = event.id, event.public_id
    session.commit()  # media_service may take a while: hold no database connection
    saved: dict[str, str] = {}
    try:
        for kind, (_field, stream) in uploads.items():
            saved[kind] = store.save(owner, PURPOSES[kind], stream, sizes[kind])
    except Exception:
        _delete_all(store, saved.values())
        raise
    replaced = _point_at(session, store, event_id, saved)
    _delete_all(store, [url for kind, url in replaced.items() if url and url != saved[kind]])
    return find_event(session, public_id)


def _point_at(
    session: DbSession, store: FileStore, event_id: int, saved: dict[str, str]
) -> dict[str, str | None]:
    """Write the new URLs; the URLs they replace. The row is locked until the commit, so
    of two concurrent uploads the second sees (and replaces) the first one's files."""
    try:
        event = session.get(Event, event_id, with_for_update=True, populate_existing=True)
        if event is None:  # deleted while media_service stored the files
            raise EventNotFound()
        replaced: dict[str, str | None] = {kind: getattr(event, kind) for kind in saved}
        for kind, url in saved.items():
            setattr(event, kind, url)
        event.updated_at = utcnow()
        session.commit()
    except Exception:
        session.rollback()
        _delete_all(store, saved.values())
        raise
    return replaced


def _checked_size(field: str, stream: BinaryIO, max_bytes: int) -> int:
    stream.seek(0, 2)
    size = stream.tell()
    stream.seek(0)
    if size == 0:
        raise InvalidUpload(f"the uploaded {field} is empty", {field: "empty file"})
    if size > max_bytes:
        raise FileTooLarge(max_bytes, field)
    return size


def _delete_all(store: FileStore, urls: Iterable[str]) -> None:
    for url in list(urls):
        store.delete(url)
