"""JSON errors for every status a service can answer: never an HTML page, never a traceback.

The suite's own error shape is `{"error": "<message>", "code": "<stable_code>"}`, with
`"errors": {field: message}` added for invalid input.

Refusals are exceptions that carry their answer. Domain code declares one class per
refusal, and nothing else maps it to HTTP:

    class CallNotFound(DomainError):
        status, code, message = 404, "not_found", "no such call"

    raise CallNotFound()                                 # {"error": "no such call", ...}
    raise InvalidInput(errors={"email": "not an address"})  # extra keys join the body

A refusal whose body a seed document fixes overrides `body()`; one that needs headers
(`Retry-After`) overrides `headers()`. `ApiError(status, message, code)` is the same thing
for a one-off answer raised by an api.py view.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.http import HTTP_STATUS_CODES

log = logging.getLogger(__name__)

REQUIRED_MESSAGE = "missing required field"
_MARSHMALLOW_REQUIRED = "Missing data for required field."


class DomainError(Exception):
    """A refusal, with the HTTP answer it stands for (see the module's docstring)."""

    status: int = 400
    code: str = "bad_request"
    message: str = "bad request"

    def __init__(self, message: str | None = None, **extra: Any) -> None:
        self.detail = message if message is not None else type(self).message
        self.extra = extra
        super().__init__(self.detail)

    def body(self) -> dict[str, Any]:
        return {"error": self.detail, "code": self.code, **self.extra}

    def headers(self) -> dict[str, str]:
        return {}


class ApiError(DomainError):
    """A one-off answer: `raise ApiError(404, "no such file", "not_found")`."""

    def __init__(self, status: int, message: str, code: str | None = None, **extra: Any) -> None:
        super().__init__(message, **extra)
        self.status = status
        self.code = code or slug(status)
        self._body: dict[str, Any] | None = None

    def body(self) -> dict[str, Any]:
        return self._body if self._body is not None else super().body()

    @classmethod
    def with_body(cls, status: int, body: dict[str, Any]) -> ApiError:
        """An answer whose whole body a seed document fixes."""
        error = cls(status, str(body))
        error._body = body
        return error


# Codes the gateway uses too, where werkzeug's reason phrase differs (RFC 9110 renamed 413).
CODE_NAMES = {413: "payload_too_large"}


def slug(status: int) -> str:
    """A stable machine-readable code for a status: 404 -> "not_found"."""
    if status in CODE_NAMES:
        return CODE_NAMES[status]
    reason = HTTP_STATUS_CODES.get(status, "error")
    return reason.lower().replace(" ", "_").replace("-", "_").replace("'", "")


def flatten_messages(messages: Any, prefix: str = "") -> dict[str, str]:
    """marshmallow's nested error dict as {"a.b[0].c": "first message"}."""
    flat: dict[str, str] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            if isinstance(key, int):
                path = f"{prefix}[{key}]"
            elif key == "_schema":
                path = prefix or "_schema"
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            flat.update(flatten_messages(value, path))
    elif isinstance(messages, list) and messages and all(isinstance(m, str) for m in messages):
        text = messages[0]
        flat[prefix or "_schema"] = REQUIRED_MESSAGE if text == _MARSHMALLOW_REQUIRED else text
    elif isinstance(messages, list):
        for index, value in enumerate(messages):
            flat.update(flatten_messages(value, f"{prefix}[{index}]"))
    else:
        flat[prefix or "_schema"] = str(messages)
    return flat


def _validation_errors(error: HTTPException) -> dict[str, str] | None:
    """The field messages webargs attached to a 400/422 raised by flask-smorest."""
    data = getattr(error, "data", None) or {}
    messages = data.get("messages")
    if not messages:
        return None
    merged: dict[str, Any] = {}
    for location, location_messages in messages.items():  # {"json": {...}, "query": {...}}
        if isinstance(location_messages, dict):
            merged.update(location_messages)
        else:  # the location as a whole: {"json": ["Invalid JSON body."]}
            merged[location] = location_messages
    return flatten_messages(merged)


def _message(error: HTTPException) -> str:
    """The raiser's description, or the short reason phrase instead of werkzeug's prose."""
    if error.description and error.description != type(error).description:
        return error.description
    return HTTP_STATUS_CODES.get(error.code or 500, "error").lower()


def error_response(error: HTTPException | DomainError) -> Response:
    """The JSON answer for a refusal or for one of werkzeug's HTTP errors."""
    if isinstance(error, DomainError):
        return _json_response(error.body(), error.status, error.headers().items())
    status = error.code or 500
    body: dict[str, Any] = {"error": _message(error), "code": slug(status)}
    field_errors = _validation_errors(error)
    if field_errors:
        body = {"error": "invalid input", "code": "validation_error", "errors": field_errors}
    headers = [
        (name, value)
        for name, value in error.get_headers() or []
        if name.lower() not in ("content-type", "content-length")
    ]
    return _json_response(body, status, headers)


def _json_response(body: dict[str, Any], status: int, headers: Any) -> Response:
    response = jsonify(body)
    response.status_code = status
    for name, value in headers:
        response.headers[name] = value
    return response


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(HTTPException, error_response)
    app.register_error_handler(DomainError, error_response)

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:  # a 500 is a bug: log it, say little
        log.exception("unhandled error")
        return error_response(InternalServerError("internal server error"))
