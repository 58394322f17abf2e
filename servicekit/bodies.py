"""Request bodies, parsed once and bounded: JSON, forms, or either.

Every JSON body a service reads goes through `loads_json`, whichever way it is read
(flask-smorest arguments, `request.get_json()`, `json_body()`): a document nested deeper
than `MAX_JSON_DEPTH`, a number Python refuses to convert (over 4,300 digits), bytes that
are not UTF-8 JSON, or an empty body is a 400 `invalid_json`, never a 500. The body's size
is bounded before it is read (`MAX_CONTENT_LENGTH`: 413 `payload_too_large`).
"""

from __future__ import annotations

import json
from typing import Any

from flask import request
from flask.json.provider import DefaultJSONProvider
from marshmallow import Schema, ValidationError

from servicekit.errors import DomainError, flatten_messages

MAX_JSON_DEPTH = 64
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class InvalidJson(DomainError):
    status, code, message = 400, "invalid_json", "the body is not valid JSON"


class UnsupportedBody(DomainError):
    status, code = 415, "unsupported_media_type"
    message = "expected a JSON body (Content-Type: application/json)"


class InvalidBody(DomainError):
    status, code, message = 400, "validation_error", "invalid input"


def loads_json(raw: bytes | str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The JSON document in `raw`, or `InvalidJson` saying what is wrong with it."""
    if isinstance(raw, bytes | bytearray):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidJson("malformed JSON: the body is not UTF-8 text") from None
    if not raw.strip():
        raise InvalidJson("empty body: expected a JSON document")
    try:
        document = json.loads(raw)
    except RecursionError:
        raise _too_deep(max_depth) from None
    except ValueError as exc:  # includes json.JSONDecodeError and over-long integers
        raise InvalidJson(f"malformed JSON: {exc}") from None
    if _openers(raw) > max_depth and _depth(document) > max_depth:
        raise _too_deep(max_depth)
    return document


def _too_deep(max_depth: int) -> InvalidJson:
    return InvalidJson(f"the JSON document is nested more than {max_depth} levels deep")


def _openers(text: str) -> int:
    """An upper bound of the nesting depth that costs almost nothing to compute."""
    return text.count("[") + text.count("{")


def _depth(document: Any) -> int:
    """How deeply lists and objects nest in a parsed document (without recursion)."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        deepest = max(deepest, depth)
        pending.extend((child, depth + 1) for child in children)
    return deepest


class BoundedJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider with `loads_json` as its parser (`request.get_json()`)."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads_json(s)


def json_body(*, require_object: bool = False, cache: bool = True) -> Any:
    """The request's JSON document: 415 unless declared JSON, 400 when it is not JSON
    (or, with `require_object`, not a JSON object). `cache=False` lets a large body's
    bytes go as soon as they are parsed (nothing else may read the body then)."""
    if not request.is_json:
        raise UnsupportedBody()
    document = loads_json(request.get_data(cache=cache))
    if require_object and not isinstance(document, dict):
        raise InvalidBody("the body must be a JSON object")
    return document


def json_or_form_body() -> dict[str, Any]:
    """A JSON object, or a form with the same keys (a repeated key is a list). A body with
    no content is an empty object, so the schema says which fields are missing."""
    if request.mimetype in FORM_TYPES:
        return {
            key: values if len(values) > 1 else values[0] for key, values in request.form.lists()
        }
    if not request.get_data(cache=True).strip():
        return {}
    if request.mimetype and not request.is_json:
        raise UnsupportedBody("send a JSON object or a form")
    return dict(json_body(require_object=True))


def load_body(schema: Schema) -> dict[str, Any]:
    """`json_or_form_body()` loaded with `schema`; a 400 naming each refused field."""
    try:
        return dict(schema.load(json_or_form_body()))
    except ValidationError as exc:
        raise InvalidBody(errors=flatten_messages(exc.messages)) from exc
