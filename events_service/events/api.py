"""HTTP routes of events, their photos and calendars: parse, call the domain, serialize."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO, cast

from flask import Response, current_app, request

from events_service.events import calendar, photos, service
from events_service.events.access import event_privilege
from events_service.events.media import file_store
from events_service.events.schemas import (
    DeletedSchema,
    EventDetailSchema,
    EventEditedSchema,
    EventEditSchema,
    EventInputSchema,
    EventsPageSchema,
    EventsQuerySchema,
    EventWrittenSchema,
    PhotosSchema,
)
from events_service.models import Event, db
from events_service.settings import EventsSettings
from servicekit import Blueprint, require_identity
from servicekit.pagination import page_window
from servicekit.settings import app_settings

blp = Blueprint("events", __name__, description="Events, their photos and calendars.")

BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]
PHOTO_FIELDS = ("photo", "picture", "image")  # the document's field and its aliases
LOGO_FIELD = "logo"
# The feed of all events: from a month ago on, the first of them by date.
FEED_PAST = timedelta(days=30)
FEED_LIMIT = 1000


def settings() -> EventsSettings:
    return app_settings(EventsSettings)


@blp.route("/events", methods=["GET"])
@blp.arguments(EventsQuerySchema, location="query")
@blp.response(200, EventsPageSchema)
@blp.doc(security=BEARER)
def list_events(query: dict[str, Any]) -> dict[str, Any]:
    """Events (any signed-in user): `category` and `tags` filter by name (repeated or
    comma-separated; an event matches with any of the names of each), `order` is
    `date` (default), `-date`, `name` or `-name`."""
    require_identity()
    window = page_window(query)
    page = service.list_events(
        db.session,
        window,
        categories=query["category"],
        tags=query["tags"],
        order=query["order"],
    )
    return {
        "events": page.items,
        "pages": page.pages,
        "currentpage": page.number,
        "total": page.total,
    }


@blp.route("/events", methods=["POST"])
@event_privilege("create")
@blp.arguments(EventInputSchema)
@blp.response(201, EventWrittenSchema)
@blp.doc(security=BEARER)
def create_event(data: dict[str, Any]) -> Event:
    """Create an event (staff with `event: create`); without categories it is in Others."""
    return service.create_event(db.session, settings(), data)


@blp.route("/events/<public_id>", methods=["GET"])
@blp.response(200, EventDetailSchema)
def read_event(public_id: str) -> Event:
    """An event (anyone, no token)."""
    return service.find_event(db.session, public_id)


@blp.route("/events/<public_id>", methods=["PUT"])
@event_privilege("update")
@blp.arguments(EventEditSchema(partial=True))
@blp.response(202, EventEditedSchema)
@blp.doc(security=BEARER)
def update_event(data: dict[str, Any], public_id: str) -> Event:
    """Change an event (staff with `event: update`): the keys sent replace the stored
    values, the others keep theirs."""
    return service.update_event(db.session, settings(), public_id, data)


@blp.route("/events/<public_id>", methods=["DELETE"])
@event_privilege("delete")
@blp.response(200, DeletedSchema)
@blp.doc(security=BEARER)
def delete_event(public_id: str) -> dict[str, str]:
    """Delete an event, its registrations, organisers and volunteers, and its files
    (staff with `event: delete`)."""
    service.delete_event(db.session, file_store(current_app), public_id)
    return {"message": "Event deleted"}


@blp.route("/events/<public_id>/photo", methods=["POST"])
@event_privilege("update")
@blp.response(200, PhotosSchema)
@blp.doc(security=BEARER)
def upload_photos(public_id: str) -> Event:
    """Set the event's photo (multipart file `photo`, or `picture`, or `image`) and/or
    logo (`logo`): JPEG, PNG, GIF or WebP (staff with `event: update`)."""
    service.find_event(db.session, public_id)  # 404 before the body is read
    store = file_store(current_app)
    return photos.store_photos(
        db.session, store, public_id, uploaded_files(), settings().photo_max_bytes
    )


def uploaded_files() -> dict[str, tuple[str, BinaryIO]]:
    """{PICTURE or LOGO: (its form field, its stream)}; 400 when no file came, a file came
    twice or in a field this route does not know."""
    files = request.files
    unknown = [name for name in files if name not in (*PHOTO_FIELDS, LOGO_FIELD)]
    if unknown:
        expected = "send the photo as 'photo' and the logo as 'logo'"
        raise photos.InvalidUpload(
            f"unexpected file field: {', '.join(unknown)}", dict.fromkeys(unknown, expected)
        )
    sent = [name for name in files if len(files.getlist(name)) > 1]
    photo_fields = [name for name in PHOTO_FIELDS if name in files]
    if len(photo_fields) > 1:
        sent.append(photo_fields[1])
    if sent:
        raise photos.InvalidUpload("one photo and one logo at most", dict.fromkeys(sent, "twice"))
    uploads: dict[str, tuple[str, BinaryIO]] = {}
    if photo_fields:
        uploads[photos.PICTURE] = (photo_fields[0], cast(BinaryIO, files[photo_fields[0]].stream))
    if LOGO_FIELD in files:
        uploads[photos.LOGO] = (LOGO_FIELD, cast(BinaryIO, files[LOGO_FIELD].stream))
    if not uploads:
        raise photos.InvalidUpload(
            "no file uploaded: send the multipart file fields 'photo' and/or 'logo'",
            {"photo": "missing required field"},
        )
    return uploads


@blp.route("/events/calendar.ics", methods=["GET"])
@blp.response(200, {"type": "string"}, content_type=calendar.CONTENT_TYPE)
def events_calendar() -> Response:
    """Every event from 30 days ago on (the first 1,000 by date) as iCalendar (anyone)."""
    since = (datetime.now(UTC) - FEED_PAST).date()
    events = service.calendar_events(db.session, since, FEED_LIMIT)
    return _ics(calendar.calendar(events, "Flotilla events"), "events.ics")


@blp.route("/events/<public_id>/calendar.ics", methods=["GET"])
@blp.response(200, {"type": "string"}, content_type=calendar.CONTENT_TYPE)
def event_calendar(public_id: str) -> Response:
    """One event as iCalendar, for a phone's calendar (anyone)."""
    event = service.find_event(db.session, public_id)
    return _ics(calendar.calendar([event]), f"{event.public_id}.ics")


def _ics(text: str, filename: str) -> Response:
    response = Response(text, content_type=calendar.CONTENT_TYPE)
    response.headers["Content-Disposition"] = f'inline; filename="{filename}"'
    return response
