"""scheduler_service's request and response shapes (marshmallow 4), snake_case like the
document's Django REST framework serializer."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate

from scheduler_service.models import STATUSES
from scheduler_service.outbound import URL_MAX_LENGTH
from scheduler_service.timestamps import InvalidTimestamp, parse_instant, render
from servicekit import pagination
from servicekit.bodies import InvalidJson, loads_json

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
MAX_HEADERS = 50
MAX_HEADER_VALUE = 8192
MAX_BODY = 64 * 1024
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 50
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,128}$")
# RFC 9110 5.5: a field value is visible ASCII and Latin-1 (obs-text), spaces and tabs.
_FIELD_VALUE = re.compile(r"^[\t\x20-\x7e\x80-\xff]*$")
# Set by the scheduler or by the connection itself, never by the caller.
RESERVED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "upgrade",
        "te",
        "trailer",
        "proxy-authorization",
        "proxy-connection",
        "idempotency-key",
    }
)
SECRET_HEADER = re.compile(r"authorization|cookie|token|secret|password|api-?key", re.IGNORECASE)
REDACTED = "***"


class Method(fields.String):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs).strip().upper()
        if text not in METHODS:
            raise ValidationError(f"must be one of {', '.join(METHODS)}")
        return text


class HeaderMap(fields.Field[dict[str, str]]):
    """An object of header names to string values (a JSON text of one in a form)."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> dict[str, str]:
        if isinstance(value, str):
            try:
                value = loads_json(value)
            except InvalidJson as exc:
                raise ValidationError("must be an object of header names to values") from exc
        if not isinstance(value, dict):
            raise ValidationError("must be an object of header names to values")
        if len(value) > MAX_HEADERS:
            raise ValidationError(f"at most {MAX_HEADERS} headers")
        headers: dict[str, str] = {}
        for name, header_value in value.items():
            problem = _header_problem(name, header_value)
            if problem:
                raise ValidationError(problem)
            headers[name] = header_value
        return headers


def _header_problem(name: Any, value: Any) -> str | None:
    if not isinstance(name, str) or not _TOKEN.match(name):
        return f"{name!r} is not a valid header name"
    if name.lower() in RESERVED_HEADERS:
        return f"{name} is set by the scheduler, not by the caller"
    if not isinstance(value, str):
        return f"the value of {name} must be a string"
    if len(value) > MAX_HEADER_VALUE or any(ch in value for ch in "\r\n\0"):
        return f"the value of {name} must be one line of at most {MAX_HEADER_VALUE} characters"
    if not _FIELD_VALUE.match(value):
        return (
            f"the value of {name} may hold only visible ASCII or Latin-1 characters, "
            "spaces and tabs (percent-encode other text)"
        )
    return None


class Body(fields.Field[dict[str, Any]]):
    """A string sent as it is, or any other JSON value sent as JSON."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> dict[str, Any]:
        is_json = not isinstance(value, str)
        text = json.dumps(value, separators=(",", ":")) if is_json else value
        if len(text.encode("utf-8")) > MAX_BODY:
            raise ValidationError(f"must be at most {MAX_BODY} bytes")
        return {"text": text, "is_json": is_json}


class ScheduleRequestSchema(Schema):
    """`POST /api/schedule-api/`: the document's `timestamps`, and an optional target."""

    timestamps = fields.Raw(
        load_default=None,
        metadata={"description": "comma-separated ISO 8601 instants, or a list of them"},
    )
    url = fields.String(load_default=None, validate=validate.Length(max=URL_MAX_LENGTH))
    method = Method(load_default="GET")
    headers = HeaderMap(load_default=dict)
    body = Body(load_default=None, allow_none=True)

    @post_load
    def json_content_type(self, data: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
        body = data.pop("body")
        data["body"] = None if body is None else body["text"]
        if body is not None and body["is_json"]:
            names = {name.lower() for name in data["headers"]}
            if "content-type" not in names:
                data["headers"] = {**data["headers"], "Content-Type": "application/json"}
        return data


class RescheduleSchema(Schema):
    """`PATCH /api/schedule-api/<id>/`: a new instant for a Pending call."""

    timestamp = fields.Raw(required=True)


class Instant(fields.Field[datetime]):
    """An ISO 8601 instant in a query string (naive values are UTC)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        try:
            return parse_instant(value)
        except InvalidTimestamp as exc:
            raise ValidationError(str(exc)) from exc


class CallQuerySchema(pagination.PageArgs):
    """Filters and the page of a call listing (`page`, 1-based, and `page_size`)."""

    status = fields.String(validate=validate.OneOf(STATUSES))
    since = Instant(metadata={"description": "calls due at or after this instant"})
    until = Instant(metadata={"description": "calls due before this instant"})
    owner = fields.String(
        validate=validate.Length(max=64), metadata={"description": "staff only: one owner"}
    )
    ordering = fields.String(
        load_default="timestamp", validate=validate.OneOf(("timestamp", "-timestamp", "id", "-id"))
    )
    page_size = pagination.page_size(DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


class UtcInstant(fields.Field[datetime]):
    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return render(value)


class CallSummarySchema(Schema):
    """A call as the document shows one."""

    id = fields.Integer()
    timestamp = UtcInstant()
    status = fields.String()


class AttemptSchema(Schema):
    number = fields.Integer()
    started_at = UtcInstant()
    duration_ms = fields.Float()
    status_code = fields.Integer(allow_none=True)
    error = fields.String(allow_none=True)
    outcome = fields.String()


class CallSchema(CallSummarySchema):
    """A call in a listing."""

    owner = fields.String()
    url = fields.String()
    method = fields.String()
    attempts = fields.Integer()
    max_attempts = fields.Integer()
    next_attempt_at = UtcInstant()
    last_status_code = fields.Integer(allow_none=True)
    last_error = fields.String(allow_none=True)
    created_at = UtcInstant()
    finished_at = UtcInstant()


class CallDetailSchema(CallSchema):
    """One call with its request (secret header values masked) and its attempt history."""

    headers = fields.Method("masked_headers")
    body = fields.String(allow_none=True)
    history = fields.List(fields.Nested(AttemptSchema))

    def masked_headers(self, call: Any) -> dict[str, str]:
        return {
            name: REDACTED if SECRET_HEADER.search(name) else value
            for name, value in (call.headers or {}).items()
        }


class CallPageSchema(Schema):
    """A page of calls, the way Django REST framework paginates."""

    count = fields.Integer()
    next = fields.String(allow_none=True)
    previous = fields.String(allow_none=True)
    results = fields.List(fields.Nested(CallSchema))
