"""The staff page: a public static shell, and staff-only data routes behind it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from flask import Flask
from flask.testing import FlaskClient

from scheduler_service.models import ScheduledCall, db
from scheduler_service.timestamps import render
from tests.scheduler_service.scheduler_helpers import OTHER, STAFF

Auth = Callable[..., dict[str, str]]
CALLS = "/admin/schedule-api/api/calls"


def schedule(client: FlaskClient, headers: dict[str, str], count: int = 1) -> list[int]:
    moment = render(datetime.now(UTC) + timedelta(hours=1))
    response = client.post(
        "/api/schedule-api/", json={"timestamps": [moment] * count}, headers=headers
    )
    assert response.status_code == 201
    return [call["id"] for call in response.get_json()]


def test_the_page_is_a_static_shell_with_a_strict_policy(client: FlaskClient) -> None:
    page = client.get("/admin/schedule-api/")
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    assert b'src="/admin/schedule-api/assets/admin.js"' in page.data
    assert b'src="/admin/schedule-api/assets/staff-session.js"' in page.data
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    script = client.get("/admin/schedule-api/assets/admin.js")
    assert script.status_code == 200 and script.mimetype == "text/javascript"
    assert b"StaffSession.create" in script.data
    session = client.get("/admin/schedule-api/assets/staff-session.js")
    assert session.mimetype == "text/javascript" and b"/auth/token/" in session.data
    assert client.get("/admin/schedule-api/assets/admin.css").mimetype == "text/css"
    assert client.get("/admin/schedule-api/assets/admin.html").status_code == 404
    assert client.get("/admin/schedule-api/assets/..%2f__init__.py").status_code == 404


def test_the_data_is_for_staff_only(client: FlaskClient, auth: Auth) -> None:
    schedule(client, auth())
    refused = client.get(CALLS, headers=auth())
    assert refused.status_code == 403
    assert refused.get_json() == {"error": "staff only", "code": "forbidden"}
    assert client.post(f"{CALLS}/1/cancel", headers=auth()).status_code == 403


def test_staff_list_every_call_with_filters(client: FlaskClient, auth: Auth) -> None:
    mine = schedule(client, auth(), 2)
    theirs = schedule(client, auth(OTHER), 1)
    staff = auth(STAFF, role="staff")
    listed = client.get(f"{CALLS}?ordering=id", headers=staff).get_json()
    assert [call["id"] for call in listed["results"]] == [*mine, *theirs]
    assert {call["owner"] for call in listed["results"]} == {"owner-0001", OTHER}
    only = client.get(f"{CALLS}?owner={OTHER}", headers=staff).get_json()
    assert [call["id"] for call in only["results"]] == theirs
    paged = client.get(f"{CALLS}?page_size=1&ordering=id", headers=staff).get_json()
    assert paged["next"].startswith(f"{CALLS}?") and paged["count"] == 3


def test_staff_cancel_a_pending_call_and_not_one_that_ran(
    app: Flask, client: FlaskClient, auth: Auth
) -> None:
    pending, ran = schedule(client, auth(), 2)
    with app.app_context():
        db.session.get(ScheduledCall, ran).status = "Succeeded"
        db.session.commit()
    staff = auth(STAFF, role="superuser")
    cancelled = client.post(f"{CALLS}/{pending}/cancel", headers=staff)
    assert cancelled.status_code == 200
    assert cancelled.get_json()["status"] == "Cancelled"
    refused = client.post(f"{CALLS}/{ran}/cancel", headers=staff)
    assert refused.status_code == 409 and refused.get_json()["status"] == "Succeeded"
    assert client.post(f"{CALLS}/999/cancel", headers=staff).status_code == 404
