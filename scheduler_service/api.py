"""scheduler_service's HTTP API: thin flask-smorest blueprints over service.py."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Response, jsonify, request

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
from scheduler_service.settings import SchedulerSettings
from servicekit import Blueprint, Identity, redis_client, require_identity
from servicekit.bodies import load_body
from servicekit.pagination import Page, page_window
from servicekit.settings import app_settings

SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}]
REQUEST_BODY = {
    "description": "A JSON object or a form with the same keys (a form's `headers` is JSON text).",
    "content": {
        "application/json": {"schema": ScheduleRequestSchema},
        "application/x-www-form-urlencoded": {"schema": ScheduleRequestSchema},
    },
}
# The query arguments a page's `next` and `previous` links keep.
FILTERS = ("status", "since", "until", "owner", "ordering")

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
@blp.alt_response(422, description="The caller's cap on pending calls would be passed")
def schedule_calls() -> tuple[Response, int]:
    """Schedule one call per timestamp (past timestamps are ignored)."""
    caller = require_identity()
    data = load_body(ScheduleRequestSchema())
    target = service.CallTarget(data["url"], data["method"], data["headers"], data["body"])
    created = service.schedule_calls(
        app_settings(SchedulerSettings), redis_client(), caller, data["timestamps"], target
    )
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
    service.cancel_call(redis_client(), caller, call_id)
    return service.visible_call(caller, call_id, with_history=True)


@blp.route("/<int:call_id>", methods=["PATCH"])
@blp.doc(security=SECURITY)
@blp.response(200, CallDetailSchema)
def reschedule_call(call_id: int) -> ScheduledCall:
    """Move a Pending call to a new `timestamp` (409 once it ran or was cancelled)."""
    caller = require_identity()
    data = load_body(RescheduleSchema())
    service.reschedule_call(
        app_settings(SchedulerSettings), redis_client(), caller, call_id, data["timestamp"]
    )
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
    page = service.list_calls(caller, filters, page_window(query, "page_size"))
    next_link, previous_link = page_links(path, page)
    return {
        "count": page.total,
        "next": next_link,
        "previous": previous_link,
        "results": page.items,
    }


def page_links(path: str, page: Page[Any]) -> tuple[str | None, str | None]:
    """Relative `next` and `previous` links of a page, keeping the request's filters."""
    kept = {key: value for key, value in request.args.items() if key in FILTERS}

    def link(number: int) -> str:
        return f"{path}?{urlencode({**kept, 'page': number, 'page_size': page.size})}"

    next_link = link(page.number + 1) if page.has_next else None
    return next_link, link(page.number - 1) if page.number > 1 else None
