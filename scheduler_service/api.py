"""scheduler_service's HTTP API: thin flask-smorest blueprints over service.py."""

from __future__ import annotations

import json
from typing import Any

from flask import Flask, Response, jsonify, request
from marshmallow import Schema, ValidationError

from scheduler_service import service
from scheduler_service.models import ScheduledCall
from scheduler_service.schemas import (
    CallDetailSchema,
    CallPageSchema,
    CallQuerySchema,
    CallSummarySchema,
    RescheduleSchema,
    ScheduleRequestSchema,
)
from servicekit import ApiError, Blueprint, Identity, require_identity
from servicekit.errors import error_response, flatten_messages

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
SECURITY = [{"bearerAuth": []}]
REQUEST_BODY = {
    "description": "A JSON object or a form with the same keys (a form's `headers` is JSON text).",
    "content": {
        "application/json": {"schema": ScheduleRequestSchema},
        "application/x-www-form-urlencoded": {"schema": ScheduleRequestSchema},
    },
}

blp = Blueprint(
    "scheduler",
    __name__,
    url_prefix="/api/schedule-api",
    description="Outbound HTTP calls scheduled at given timestamps, run by an RQ worker.",
)


@blp.before_request
def require_token() -> None:
    """Every route needs a token, checked before any input is read."""
    require_identity()


@blp.route("/", methods=["POST"])
@blp.doc(security=SECURITY, requestBody=REQUEST_BODY)
@blp.alt_response(201, schema=CallSummarySchema(many=True), description="The scheduled calls")
def schedule_calls() -> tuple[Response, int]:
    """Schedule one call per timestamp (past timestamps are ignored)."""
    caller = require_identity()
    data = load_body(ScheduleRequestSchema())
    target = service.Target(data["url"], data["method"], data["headers"], data["body"])
    created = service.schedule_calls(caller.subject, data["timestamps"], target)
    return jsonify(created), 201


@blp.route("/", methods=["GET"])
@blp.doc(security=SECURITY)
@blp.arguments(CallQuerySchema, location="query")
@blp.response(200, CallPageSchema)
def list_calls(query: dict[str, Any]) -> dict[str, Any]:
    """Your calls (every call for staff), filtered and paginated."""
    return call_page(require_identity(), query, request.path)


@blp.route("/<int:call_id>", methods=["GET"])
@blp.doc(security=SECURITY)
@blp.response(200, CallDetailSchema)
def get_call(call_id: int) -> ScheduledCall:
    """One call with its attempt history."""
    return service.visible_call(require_identity(), call_id, with_history=True)


@blp.route("/<int:call_id>", methods=["DELETE"])
@blp.doc(security=SECURITY)
@blp.response(200, CallDetailSchema)
def cancel_call(call_id: int) -> ScheduledCall:
    """Cancel a Pending call (409 once it ran)."""
    caller = require_identity()
    service.cancel_call(caller, call_id)
    return service.visible_call(caller, call_id, with_history=True)


@blp.route("/<int:call_id>", methods=["PATCH"])
@blp.doc(security=SECURITY)
@blp.response(200, CallDetailSchema)
def reschedule_call(call_id: int) -> ScheduledCall:
    """Move a Pending call to a new `timestamp` (409 once it ran or was cancelled)."""
    caller = require_identity()
    data = load_body(RescheduleSchema())
    service.reschedule_call(caller, call_id, data["timestamp"])
    return service.visible_call(caller, call_id, with_history=True)


blueprints = [blp]


def call_page(caller: Identity, query: dict[str, Any], path: str) -> dict[str, Any]:
    """A page of calls in Django REST framework's shape: count, next, previous, results."""
    filters = service.CallFilters(
        status=query.get("status"),
        since=query.get("since"),
        until=query.get("until"),
        owner=query.get("owner"),
        ordering=query["ordering"],
    )
    page, page_size = query["page"], query["page_size"]
    found = service.list_calls(caller, filters, page, page_size)
    kept = {
        key: value
        for key, value in request.args.items()
        if key not in ("page", "page_size") and key in CallQuerySchema().fields
    }
    next_link, previous_link = service.page_links(path, kept, page, page_size, found.count)
    return {
        "count": found.count,
        "next": next_link,
        "previous": previous_link,
        "results": found.calls,
    }


def request_data() -> dict[str, Any]:
    """The body as a dict: a JSON object, or a form (a repeated `timestamps` is a list)."""
    if request.mimetype in FORM_TYPES:
        return {
            key: values if key == "timestamps" and len(values) > 1 else values[0]
            for key, values in request.form.lists()
        }
    raw = request.get_data(cache=True)
    if not raw.strip():
        return {}
    if request.mimetype and not request.is_json:
        raise ApiError(415, "send a JSON object or a form", "unsupported_media_type")
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, "invalid JSON body", "invalid_json") from exc
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object", "validation_error")
    return data


def load_body(schema: Schema) -> dict[str, Any]:
    try:
        return dict(schema.load(request_data()))
    except ValidationError as exc:
        raise ApiError(
            400, "invalid input", "validation_error", errors=flatten_messages(exc.messages)
        ) from exc


# service.py's refusals as HTTP answers.
def as_api_error(error: service.SchedulerError) -> ApiError:
    if isinstance(error, service.NoTimestamps):
        return ApiError(400, "No timestamps provided", "no_timestamps")
    if isinstance(error, service.InvalidTimestamps):
        return ApiError(400, error.message, "invalid_timestamps", errors=error.problems)
    if isinstance(error, service.InvalidTarget):
        return ApiError(400, f"url: {error.reason}", "invalid_target", errors={"url": error.reason})
    if isinstance(error, service.CallNotPending):
        message = f"the call is {error.status}: only a Pending call can be changed"
        return ApiError.with_body(
            409, {"error": message, "code": "conflict", "status": error.status}
        )
    return ApiError(404, "no such call", "not_found")


def register_domain_errors(app: Flask) -> None:
    def answer(error: service.SchedulerError) -> Response:
        return error_response(as_api_error(error))

    app.register_error_handler(service.SchedulerError, answer)
