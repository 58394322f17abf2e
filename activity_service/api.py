"""activity_service's HTTP API: thin flask-smorest blueprints over service.py."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from flask import Flask, Response, current_app, request, stream_with_context

from activity_service import service
from activity_service.schemas import (
    ActivityDocumentSchema,
    ActivityQuerySchema,
    UploadResultSchema,
    UploadSchema,
    stream_document,
)
from servicekit import ApiError, Blueprint, require_privilege
from servicekit.errors import error_response

blp = Blueprint(
    "activity",
    __name__,
    url_prefix="/sample",
    description="Members' activity periods: upload and download.",
)

# The privilege each method needs on the `activity` model (superusers have them all).
REQUIRED_ACTION = {"POST": "create"}


@blp.before_request
def authorize() -> None:
    """Before anything of the request is read: 401 without a token, 403 without privilege.
    OPTIONS is answered by Flask with the allowed methods (it reveals no data)."""
    if request.method != "OPTIONS":
        require_privilege("activity", REQUIRED_ACTION.get(request.method, "read"))


@blp.route("/posts", methods=["POST"])
@blp.doc(
    security=[{"bearerAuth": []}],
    requestBody={"required": True, "content": {"application/json": {"schema": UploadSchema}}},
)
@blp.response(200, UploadResultSchema)
def upload_activity() -> service.UploadResult:
    """Upload members and their activity periods (staff with `activity` create).

    New members are created, known ones get the name and zone sent; periods already
    stored are skipped. All or nothing: any problem is a 400 listing each one.
    """
    return service.upload(json_body(), upload_limits())


@blp.route("/gets", methods=["GET"])
@blp.arguments(ActivityQuerySchema, location="query")
@blp.response(200, ActivityDocumentSchema)
@blp.doc(security=[{"bearerAuth": []}])
def download_activity(args: dict[str, Any]) -> Response:
    """Every member with their periods, in the document's shape (staff with `activity`
    read); streamed, so any number of periods is served with flat memory."""
    query = activity_query(args)
    page = service.plan_page(query)
    body = stream_document(
        service.activity_rows(page), args["format"], page.next_after, query.limit is not None
    )
    return Response(stream_with_context(body), mimetype="application/json")


blueprints = [blp]


def json_body() -> Any:
    """The request's JSON document: 415 unless declared JSON, 413 beyond the body limit,
    400 when it does not parse."""
    if not request.is_json:
        raise ApiError(415, "expected a JSON body (Content-Type: application/json)")
    raw = request.get_data(cache=False)
    if not raw.strip():
        raise ApiError(400, "empty body: expected a JSON document", "invalid_json")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, f"malformed JSON: {exc}", "invalid_json") from None


def upload_limits() -> service.UploadLimits:
    config = current_app.config
    return service.UploadLimits(
        max_members=config["ACTIVITY_MAX_MEMBERS"],
        max_periods=config["ACTIVITY_MAX_PERIODS"],
        max_period=timedelta(seconds=config["ACTIVITY_MAX_PERIOD_SECONDS"]),
    )


def activity_query(args: dict[str, Any]) -> service.ActivityQuery:
    """The parsed query string within the configured limits."""
    config = current_app.config
    problems: dict[str, str] = {}
    limit = args.get("limit")
    if limit is not None and limit > config["ACTIVITY_MAX_PAGE_SIZE"]:
        problems["limit"] = f"at most {config['ACTIVITY_MAX_PAGE_SIZE']}"
    members = tuple(dict.fromkeys(args["member"]))
    if len(members) > config["ACTIVITY_MAX_MEMBER_FILTERS"]:
        problems["member"] = f"at most {config['ACTIVITY_MAX_MEMBER_FILTERS']} members"
    since, until = args.get("since"), args.get("until")
    if since is not None and until is not None and until < since:
        problems["until"] = "must not be before since"
    if problems:
        raise ApiError(400, "invalid input", "validation_error", errors=problems)
    return service.ActivityQuery(
        members=members, since=since, until=until, limit=limit, after=args.get("cursor")
    )


def as_api_error(error: service.InvalidUpload) -> ApiError:
    extra: dict[str, Any] = {"errors": error.errors}
    if error.truncated:
        extra["errors_truncated"] = True
    return ApiError(400, "invalid upload; nothing was stored", "validation_error", **extra)


def register_domain_errors(app: Flask) -> None:
    """service.py's exceptions as JSON answers."""

    def invalid(error: service.InvalidUpload) -> Response:
        return error_response(as_api_error(error))

    def busy(_error: service.DatabaseBusy) -> Response:
        message = "the database is busy with other uploads; nothing was stored, try again"
        response = error_response(ApiError(503, message, "service_unavailable"))
        response.headers["Retry-After"] = "1"
        return response

    app.register_error_handler(service.InvalidUpload, invalid)
    app.register_error_handler(service.DatabaseBusy, busy)
