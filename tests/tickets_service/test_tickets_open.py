"""Opening a ticket: `POST /ticket/` and what it refuses (nothing stored then)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.real_auth import User
from tickets_service.models import Ticket, db


def stored_tickets(app: Flask) -> int:
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(Ticket)) or 0)


@pytest.mark.parametrize("path", ["/ticket/", "/ticket"])
def test_a_signed_in_user_opens_an_unsolved_ticket(
    client: FlaskClient, alice: User, path: str
) -> None:
    body = {"title": "Another Issue", "description": "Fix it Faster", "view": "public"}

    response = client.post(path, json=body, headers=alice.headers)

    assert response.status_code == 201
    ticket = response.get_json()
    assert re.fullmatch(r"[0-9]+", ticket["ticketid"])
    assert ticket == {
        "ticketid": ticket["ticketid"],
        "title": "Another Issue",
        "description": "Fix it Faster",
        "topic": "general",
        "view": "public",
        "openedBy": "alice",
        "openingDate": datetime.now(UTC).date().isoformat(),
        "solution": {"status": "unsolved"},
    }


def test_a_private_ticket_with_a_topic(client: FlaskClient, alice: User) -> None:
    body = {"title": " Refund ", "description": "Paid twice", "view": "private", "topic": "fees"}

    ticket = client.post("/ticket/", json=body, headers=alice.headers).get_json()

    assert (ticket["title"], ticket["view"], ticket["topic"]) == ("Refund", "private", "fees")


def test_anonymous_callers_open_nothing(app: Flask, client: FlaskClient) -> None:
    body = {"title": "t", "description": "d", "view": "public"}

    response = client.post("/ticket/", json=body)

    assert response.status_code == 401
    assert stored_tickets(app) == 0


@pytest.mark.parametrize("missing", ["title", "description", "view"])
def test_a_missing_field_is_named(
    app: Flask, client: FlaskClient, alice: User, missing: str
) -> None:
    body = {"title": "t", "description": "d", "view": "public"}
    del body[missing]

    response = client.post("/ticket/", json=body, headers=alice.headers)

    assert response.status_code == 400
    assert response.get_json()["errors"] == {missing: "missing required field"}
    assert stored_tickets(app) == 0


BAD_FIELDS: list[tuple[dict[str, Any], str]] = [
    ({"view": "secret"}, "view"),
    ({"view": "public or private"}, "view"),
    ({"view": None}, "view"),
    ({"title": 12}, "title"),
    ({"title": ["a"]}, "title"),
    ({"title": {"a": 1}}, "title"),
    ({"title": None}, "title"),
    ({"title": "   "}, "title"),
    ({"title": "a\nb"}, "title"),
    ({"title": "x" * 201}, "title"),
    ({"description": "x" * 10_001}, "description"),
    ({"description": " \n "}, "description"),
    ({"description": True}, "description"),
    ({"description": "nul\x00inside"}, "description"),
    ({"description": "bell\x07"}, "description"),
    ({"title": "nul\x00"}, "title"),
    ({"topic": "x" * 101}, "topic"),
    ({"topic": ""}, "topic"),
    ({"topic": 7}, "topic"),
    ({"solution": "mine"}, "solution"),
]


@pytest.mark.parametrize(("change", "field"), BAD_FIELDS)
def test_bad_fields_are_refused_and_nothing_is_stored(
    app: Flask, client: FlaskClient, alice: User, change: dict[str, Any], field: str
) -> None:
    body = {"title": "t", "description": "d", "view": "public", **change}

    response = client.post("/ticket/", json=body, headers=alice.headers)

    assert response.status_code == 400
    assert list(response.get_json()["errors"]) == [field]
    assert stored_tickets(app) == 0


def test_line_breaks_and_tabs_are_text(client: FlaskClient, alice: User) -> None:
    body = {"title": "t", "description": "Line one\r\n\tLine two", "view": "public"}

    response = client.post("/ticket/", json=body, headers=alice.headers)

    assert response.get_json()["description"] == "Line one\r\n\tLine two"


def test_the_longest_fields_are_taken(client: FlaskClient, alice: User) -> None:
    body = {"title": "t" * 200, "description": "d" * 10_000, "view": "private", "topic": "x" * 100}

    response = client.post("/ticket/", json=body, headers=alice.headers)

    assert response.status_code == 201
    assert len(response.get_json()["description"]) == 10_000


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 10_000 + b"]" * 10_000,
        b'{"title": ' + b"9" * 5000 + b', "description": "d", "view": "public"}',
        b'{"title": "t", ',
        b'["title", "description"]',
        b"\xff\xfe",
    ],
)
def test_malformed_bodies_are_400_never_500(
    app: Flask, client: FlaskClient, alice: User, raw: bytes
) -> None:
    response = client.post(
        "/ticket/", data=raw, content_type="application/json", headers=alice.headers
    )

    assert response.status_code == 400
    assert response.get_json()["code"] in ("invalid_json", "validation_error")
    assert stored_tickets(app) == 0


def test_a_body_over_the_limit_is_413(app: Flask, client: FlaskClient, alice: User) -> None:
    body = b'{"title": "t", "view": "public", "description": "' + b"d" * 200_000 + b'"}'

    response = client.post(
        "/ticket/", data=body, content_type="application/json", headers=alice.headers
    )

    assert response.status_code == 413
    assert stored_tickets(app) == 0


@pytest.mark.parametrize("app_config", [{"TICKETS_PER_HOUR": 2}], indirect=True)
def test_at_most_n_tickets_per_user_and_hour(
    app: Flask, client: FlaskClient, alice: User, bob: User
) -> None:
    body = {"title": "t", "description": "d", "view": "public"}
    for _ in range(2):
        assert client.post("/ticket/", json=body, headers=alice.headers).status_code == 201

    refused = client.post("/ticket/", json=body, headers=alice.headers)

    assert refused.status_code == 429
    assert refused.get_json()["code"] == "too_many_requests"
    assert 3500 <= int(refused.headers["Retry-After"]) <= 3600
    assert stored_tickets(app) == 2
    # The limit is per user.
    assert client.post("/ticket/", json=body, headers=bob.headers).status_code == 201


@pytest.mark.parametrize("app_config", [{"TICKETS_PER_HOUR": 0}], indirect=True)
def test_a_limit_of_zero_limits_nothing(client: FlaskClient, alice: User) -> None:
    body = {"title": "t", "description": "d", "view": "public"}
    for _ in range(12):
        assert client.post("/ticket/", json=body, headers=alice.headers).status_code == 201
