"""activity_service's wire shapes: the document's upload and download, the query string,
and the streamed JSON writer that renders times in each member's zone.

The upload is validated by service.py's plain loops (a schema library costs too much per
period); its schemas here describe it in the OpenAPI document.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, tzinfo
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from activity_service.service import MEMBER_ID_PATTERN, ActivityRow
from activity_service.times import (
    TimeFormatError,
    parse_iso_instant,
    render_document_time,
    zone_named,
)

DOCUMENT_FORMAT = "document"
ISO_FORMAT = "iso"
ROWS_PER_CHUNK = 512  # about 40 KB of JSON per write


class PeriodSchema(Schema):
    start_time = fields.String(
        required=True, metadata={"example": "Feb 1 2020  1:33PM", "description": "local time"}
    )
    end_time = fields.String(required=True, metadata={"example": "Feb 1 2020 1:54PM"})


class MemberSchema(Schema):
    id = fields.String(required=True, metadata={"example": "W012A3CDE"})
    real_name = fields.String(required=True, metadata={"example": "Egon Spengler"})
    tz = fields.String(required=True, metadata={"example": "America/Los_Angeles"})
    activity_periods = fields.List(fields.Nested(PeriodSchema))


class UploadSchema(Schema):
    """`POST /sample/posts`: the document's payload."""

    members = fields.List(fields.Nested(MemberSchema), required=True)


class UploadResultSchema(Schema):
    """What an upload did (the original answered the text `None`)."""

    ok = fields.Constant("true")
    members_created = fields.Integer()
    members_updated = fields.Integer()
    periods_added = fields.Integer()
    periods_duplicate = fields.Integer(
        metadata={"description": "periods already stored, or sent twice, and skipped"}
    )
    warnings = fields.List(
        fields.String(), metadata={"description": "the first 100 warnings, with locations"}
    )
    warnings_total = fields.Integer()


class ActivityDocumentSchema(Schema):
    """`GET /sample/gets`: the document's shape (`next_cursor` only with `limit`)."""

    ok = fields.Constant("true")
    members = fields.List(fields.Nested(MemberSchema))
    next_cursor = fields.String(allow_none=True)


def check_member_id(value: str) -> None:
    if not MEMBER_ID_PATTERN.fullmatch(value):
        raise ValidationError("not a member id")


class IsoInstant(fields.Field[datetime]):
    """An ISO 8601 date-time query value as an aware UTC datetime (no offset: UTC)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if not isinstance(value, str):
            raise ValidationError("expected an ISO 8601 date-time")
        try:
            return parse_iso_instant(value)
        except TimeFormatError as exc:
            raise ValidationError(str(exc)) from exc


class Cursor(fields.Field[str]):
    """The opaque `next_cursor` of a page: the last member id it listed."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        try:
            member_id = decode_cursor(str(value))
        except ValueError as exc:
            raise ValidationError("not a cursor from a previous page") from exc
        return member_id


class ActivityQuerySchema(Schema):
    member = fields.List(
        fields.String(
            validate=check_member_id, metadata={"pattern": f"^{MEMBER_ID_PATTERN.pattern}$"}
        ),
        load_default=list,
        metadata={"description": "only these members (repeatable)"},
    )
    since = IsoInstant(metadata={"description": "periods starting at or after (ISO 8601)"})
    until = IsoInstant(metadata={"description": "periods starting before (ISO 8601)"})
    format = fields.String(
        load_default=DOCUMENT_FORMAT,
        validate=validate.OneOf([DOCUMENT_FORMAT, ISO_FORMAT]),
        metadata={"description": "`iso`: ISO 8601 times with the member's offset"},
    )
    limit = fields.Integer(
        validate=validate.Range(min=1), metadata={"description": "members per page"}
    )
    cursor = Cursor(metadata={"description": "`next_cursor` of the previous page"})


def encode_cursor(member_id: str) -> str:
    return base64.urlsafe_b64encode(member_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        member_id = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError("invalid cursor") from exc
    if not MEMBER_ID_PATTERN.fullmatch(member_id):
        raise ValueError("invalid cursor")
    return member_id


# The download, written as it is read: memory stays flat however many periods there are.


def _document_period(start: datetime, end: datetime, zone: tzinfo) -> str:
    # The document pads start hours to two characters and not end hours; so do we.
    start_text = render_document_time(start.astimezone(zone))
    end_text = render_document_time(end.astimezone(zone), pad_hour=False)
    return f'{{"start_time":"{start_text}","end_time":"{end_text}"}}'


def _iso_period(start: datetime, end: datetime, zone: tzinfo) -> str:
    start_text = start.astimezone(zone).isoformat()
    end_text = end.astimezone(zone).isoformat()
    return f'{{"start_time":"{start_text}","end_time":"{end_text}"}}'


def _member_head(member_id: str, real_name: str, tz: str) -> str:
    return (
        f'{{"id":{json.dumps(member_id)},"real_name":{json.dumps(real_name)},'
        f'"tz":{json.dumps(tz)},"activity_periods":['
    )


def stream_document(
    rows: Iterable[ActivityRow], time_format: str, next_cursor: str | None, paged: bool
) -> Iterator[bytes]:
    """`{"ok":"true","members":[…]}` from rows ordered by member then time, in chunks."""
    render = _iso_period if time_format == ISO_FORMAT else _document_period
    parts: list[str] = ['{"ok":"true","members":[']
    size = 0
    current: str | None = None
    zone: tzinfo = UTC
    first_period = True
    for member_id, real_name, tz, start, end in rows:
        if member_id != current:
            parts.append("]}," if current is not None else "")
            parts.append(_member_head(member_id, real_name, tz))
            current, zone, first_period = member_id, zone_named(tz) or UTC, True
        if start is not None and end is not None:
            parts.append(
                render(start, end, zone) if first_period else "," + render(start, end, zone)
            )
            first_period = False
        size += 1
        if size >= ROWS_PER_CHUNK:
            yield "".join(parts).encode()
            parts, size = [], 0
    if current is not None:
        parts.append("]}")
    parts.append("]")
    if paged:
        parts.append(f',"next_cursor":{json.dumps(next_cursor and encode_cursor(next_cursor))}')
    parts.append("}")
    yield "".join(parts).encode()


class PeriodRangeSchema(Schema):
    start = IsoInstant(metadata={"description": "periods starting at or after (ISO 8601)"})
    end = IsoInstant(metadata={"description": "periods starting before (ISO 8601)"})


class DeletedPeriodsSchema(Schema):
    deleted = fields.Integer(metadata={"description": "periods deleted"})
