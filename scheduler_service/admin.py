"""The staff page for scheduled calls, served through the gateway at `/admin/schedule-api/`.

A browser cannot send a Bearer token when it navigates, so the page itself is a static
shell with no data in it (public): its script signs in with `POST /auth/token/`, keeps
the access token in the tab's sessionStorage, and reads and cancels calls through the
staff-only JSON routes below (`/admin/schedule-api/api/...`), which the gateway admits
for staff tokens only and this service checks again. A strict Content-Security-Policy
allows scripts from this origin only, and the page renders data as text, never as HTML.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import request

from scheduler_service import service
from scheduler_service.api import call_page
from scheduler_service.models import ScheduledCall
from scheduler_service.schemas import CallPageSchema, CallQuerySchema, CallSchema
from servicekit import Blueprint, redis_client, require_staff
from servicekit.pages import StaticPage, page_blueprint

STATIC = Path(__file__).parent / "static"
ASSETS = {"admin.js": "text/javascript", "admin.css": "text/css"}

admin_blp = page_blueprint(
    __name__,
    StaticPage(
        name="scheduler_admin",
        url_prefix="/admin/schedule-api",
        folder=STATIC,
        page="admin.html",
        assets=ASSETS,
        description="The staff page for scheduled calls: a static shell (public).",
    ),
)
admin_api_blp = Blueprint(
    "scheduler_admin_api",
    __name__,
    url_prefix="/admin/schedule-api/api",
    description="The staff page's data: every call, and the cancel action (staff only).",
)


@admin_api_blp.before_request
def staff_only() -> None:
    """Checked before any input is read."""
    require_staff()


@admin_api_blp.route("/calls", methods=["GET"])
@admin_api_blp.doc(security=[{"bearerAuth": []}])
@admin_api_blp.arguments(CallQuerySchema, location="query")
@admin_api_blp.response(200, CallPageSchema)
def admin_calls(query: dict[str, Any]) -> dict[str, Any]:
    """Every call (staff only), filtered and paginated."""
    return call_page(require_staff(), query, request.path)


@admin_api_blp.route("/calls/<int:call_id>/cancel", methods=["POST"])
@admin_api_blp.doc(security=[{"bearerAuth": []}])
@admin_api_blp.response(200, CallSchema)
def admin_cancel(call_id: int) -> ScheduledCall:
    """Cancel a Pending call (staff only; 409 once it ran)."""
    return service.cancel_call(redis_client(), require_staff(), call_id)


admin_blueprints = [admin_blp, admin_api_blp]
