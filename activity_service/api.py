"""activity_service's HTTP API: thin flask-smorest blueprints over service.py."""

from __future__ import annotations

from typing import Any

from flask import Response, request, stream_with_context

from activity_service import service
from activity_service.schemas import (
    ActivityDocumentSchema,
    ActivityQuerySchema,
    DeletedPeriodsSchema,
    PeriodRangeSchema,
    UploadResultSchema,
    UploadSchema,
    stream_document,
)
from activity_service.settings import ActivitySettings
from servicekit import Blueprint, require_privilege
from servicekit.bodies import json_body
from servicekit.settings import app_settings

blp = Blueprint(
    "activity",
    __name__,
    url_prefix="/sample",
    description="Members' activity periods: upload and download.",
)

# The privilege each method needs on the `activity` model (superusers have them all).
REQUIRED_ACTION = {"POST": "create", "DELETE": "delete"}


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
    return service.upload(json_body(cache=False), app_settings(ActivitySettings))


@blp.route("/gets", methods=["GET"])
@blp.arguments(ActivityQuerySchema, location="query")
@blp.response(200, ActivityDocumentSchema)
@blp.doc(security=[{"bearerAuth": []}])
def download_activity(args: dict[str, Any]) -> Response:
    """Every member with their periods, in the document's shape (staff with `activity`
    read); streamed, so any number of periods is served with flat memory."""
    query = service.activity_query(
        app_settings(ActivitySettings),
        members=tuple(args["member"]),
        since=args.get("since"),
        until=args.get("until"),
        limit=args.get("limit"),
        after=args.get("cursor"),
    )
    page = service.plan_page(query)
    body = stream_document(
        service.activity_rows(page), args["format"], page.next_after, query.limit is not None
    )
    return Response(stream_with_context(body), mimetype="application/json")


@blp.route("/members/<member_id>", methods=["DELETE"])
@blp.response(204)
@blp.alt_response(404, description="No such member")
@blp.doc(security=[{"bearerAuth": []}])
def delete_member(member_id: str) -> None:
    """Remove a member and all their periods, in one transaction (staff with `activity`
    delete). An addition to the document's API: wrong or test data can be taken back."""
    service.delete_member(member_id)


@blp.route("/members/<member_id>/periods", methods=["DELETE"])
@blp.arguments(PeriodRangeSchema, location="query")
@blp.response(200, DeletedPeriodsSchema)
@blp.alt_response(404, description="No such member")
@blp.doc(security=[{"bearerAuth": []}])
def delete_periods(args: dict[str, Any], member_id: str) -> dict[str, int]:
    """Remove a member's periods starting in [`start`, `end`) — either bound open when
    left out — in one transaction (staff with `activity` delete); the member stays."""
    return {"deleted": service.delete_periods(member_id, args.get("start"), args.get("end"))}


blueprints = [blp]
