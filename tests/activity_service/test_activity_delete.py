"""Taking data back: a member with all their periods, or some of a member's periods
(additions to the document's API, for staff with the `activity` delete privilege)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from activity_service.models import ActivityPeriod, Member, db
from tests.activity_service.activity_helpers import DOWNLOAD, document, member

Headers = Callable[..., dict[str, str]]
PERIODS = (
    ("Jan 1 2024  9:00AM", "Jan 1 2024 10:00AM"),
    ("Jan 2 2024  9:00AM", "Jan 2 2024 10:00AM"),
    ("Jan 3 2024  9:00AM", "Jan 3 2024 10:00AM"),
)


@pytest.fixture
def stored(upload: Callable[..., TestResponse]) -> None:
    response = upload(document(member("W1", *PERIODS), member("W2", *PERIODS)))
    assert response.status_code == 200, response.get_json()


def counts(app: Flask) -> tuple[int, int]:
    with app.app_context():
        members = db.session.scalar(select(func.count()).select_from(Member))
        periods = db.session.scalar(select(func.count()).select_from(ActivityPeriod))
        return int(members or 0), int(periods or 0)


def periods_of(client: FlaskClient, admin: dict[str, str], member_id: str) -> list[Any]:
    body = client.get(DOWNLOAD, query_string={"member": member_id}, headers=admin).get_json()
    return [period for found in body["members"] for period in found["activity_periods"]]


@pytest.mark.usefixtures("stored")
def test_a_member_is_deleted_with_all_their_periods(
    app: Flask, client: FlaskClient, admin: dict[str, str]
) -> None:
    response = client.delete("/sample/members/W1", headers=admin)
    assert (response.status_code, response.data) == (204, b"")
    assert counts(app) == (1, 3)
    again = client.delete("/sample/members/W1", headers=admin)
    assert (again.status_code, again.get_json()["code"]) == (404, "not_found")


@pytest.mark.usefixtures("stored")
def test_periods_starting_in_a_range_are_deleted_and_the_member_stays(
    app: Flask, client: FlaskClient, admin: dict[str, str]
) -> None:
    response = client.delete(
        "/sample/members/W1/periods",
        query_string={"start": "2024-01-02T00:00:00Z", "end": "2024-01-03T00:00:00Z"},
        headers=admin,
    )
    assert (response.status_code, response.get_json()) == (200, {"deleted": 1})
    assert [p["start_time"] for p in periods_of(client, admin, "W1")] == [
        "Jan 1 2024  9:00AM",
        "Jan 3 2024  9:00AM",
    ]
    assert counts(app) == (2, 5)  # W2 untouched
    everything = client.delete("/sample/members/W1/periods", headers=admin)
    assert everything.get_json() == {"deleted": 2}
    assert counts(app) == (2, 3)


@pytest.mark.usefixtures("stored")
@pytest.mark.parametrize(
    ("path", "query", "status"),
    [
        ("/sample/members/nobody/periods", {}, 404),
        ("/sample/members/nobody", {}, 404),
        ("/sample/members/W1/periods", {"start": "yesterday"}, 400),
        (
            "/sample/members/W1/periods",
            {"start": "2024-01-03T00:00:00Z", "end": "2024-01-02T00:00:00Z"},
            400,
        ),
    ],
)
def test_unknown_members_and_bad_ranges_are_refused_and_nothing_is_deleted(
    app: Flask,
    client: FlaskClient,
    admin: dict[str, str],
    path: str,
    query: dict[str, str],
    status: int,
) -> None:
    response = client.delete(path, query_string=query, headers=admin)
    assert response.status_code == status
    assert response.is_json
    assert counts(app) == (2, 6)


@pytest.mark.usefixtures("stored")
@pytest.mark.parametrize(
    ("role", "privileges", "allowed"),
    [
        ("superuser", {}, True),
        ("staff", {"activity": "d"}, True),
        ("staff", {"activity": "crud"}, True),
        ("staff", {"activity": "cr"}, False),
        ("normal", {"activity": "crud"}, False),
    ],
)
def test_deleting_needs_the_delete_privilege(
    app: Flask,
    client: FlaskClient,
    headers: Headers,
    role: str,
    privileges: dict[str, str],
    allowed: bool,
) -> None:
    caller = headers(role, priv=privileges)
    periods = client.delete("/sample/members/W2/periods", headers=caller)
    whole = client.delete("/sample/members/W1", headers=caller)
    if allowed:
        assert (periods.status_code, whole.status_code) == (200, 204)
        assert counts(app) == (1, 0)
    else:
        assert (periods.status_code, whole.status_code) == (403, 403)
        assert counts(app) == (2, 6)
    assert client.delete("/sample/members/W1").status_code == 401
