"""The registrations CSV: one row per participant, names from auth_service, safe in a
spreadsheet, streamed in batches, refused with 503 when auth_service does not answer."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import datetime

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from events_service.models import CONFIRMED, Event, Participant, Registration, db
from tests.events_service.events_helpers import OTHER_COLLEGE
from tests.events_service.test_events_registrations import (
    add_event,
    add_team,
    add_users,
    registered_id,
)
from tests.real_auth import AuthServer, User

HEADER = ["username", "name", "email", "college", "team", "status", "registered_at"]


def export(client: FlaskClient, public_id: str, caller: User) -> list[dict[str, str]]:
    response = client.get(f"/events/{public_id}/registrations?format=csv", headers=caller.headers)
    assert response.status_code == 200, response.data[:500]
    assert response.mimetype == "text/csv"
    assert response.is_streamed
    reader = csv.DictReader(io.StringIO(response.get_data(as_text=True), newline=""))
    assert reader.fieldnames == HEADER
    return list(reader)


def test_a_team_event_exports_one_row_per_member(
    app: Flask, client: FlaskClient, auth: AuthServer, staff: User
) -> None:
    lead = auth.add_user("lead", first_name="Ada", last_name="Lovelace")
    member = auth.add_user("member", first_name="Alan", last_name="Turing")
    other = auth.add_user("other", college=OTHER_COLLEGE, email="o@example.org")
    event = add_event(app, team=True, min_size=1, max_size=2, capacity=1, fees="10")
    registered_id(client, event, lead, add_team(app, lead, [member], "Engines"))
    registered_id(client, event, other, add_team(app, other, [], "Solo"))

    rows = export(client, event, staff)

    assert [(r["username"], r["name"], r["email"], r["team"], r["status"]) for r in rows] == [
        ("lead", "Ada Lovelace", "lead@example.org", "Engines", "payment pending"),
        ("member", "Alan Turing", "member@example.org", "Engines", "payment pending"),
        ("other", "", "o@example.org", "Solo", "waiting"),
    ]
    assert rows[2]["college"] == OTHER_COLLEGE
    registered_at = datetime.fromisoformat(rows[0]["registered_at"])
    assert registered_at.utcoffset() is not None and registered_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_the_download_is_an_attachment_named_after_the_event(
    app: Flask, client: FlaskClient, alice: User, staff: User
) -> None:
    event = add_event(app)
    registered_id(client, event, alice)

    for path in ("registrations", "registrations/"):
        response = client.get(f"/events/{event}/{path}?format=csv", headers=staff.headers)
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
        assert response.headers["Content-Disposition"] == (
            f'attachment; filename="registrations-{event}.csv"'
        )
        assert response.get_data(as_text=True).startswith("username,")


def test_an_event_without_registrations_exports_the_header(
    app: Flask, client: FlaskClient, staff: User
) -> None:
    assert export(client, add_event(app), staff) == []


def test_cells_a_spreadsheet_would_evaluate_are_escaped(
    app: Flask, client: FlaskClient, auth: AuthServer, staff: User
) -> None:
    lead = auth.add_user("lead", first_name='=HYPERLINK("http://x")', last_name="x")
    member = auth.add_user("member", first_name="+1", last_name="", college="@college")
    third = auth.add_user("third", first_name="-2", last_name="")
    fourth = auth.add_user("fourth", first_name="\tTab", college="\rReturn")
    event = add_event(app, team=True, max_size=4)
    registered_id(client, event, lead, add_team(app, lead, [member, third, fourth], "=1+1"))

    rows = export(client, event, staff)

    assert [row["name"] for row in rows] == ['\'=HYPERLINK("http://x") x', "'+1", "'-2", "'\tTab"]
    assert [row["college"] for row in rows][1:4:2] == ["'@college", "'\rReturn"]
    assert {row["team"] for row in rows} == {"'=1+1"}


def test_participants_are_looked_up_in_batches(
    app: Flask, client: FlaskClient, auth: AuthServer, staff: User
) -> None:
    """More participants than one directory lookup takes: every one of them named."""
    users = add_users(auth, "fan", 1_101)
    event = add_event(app)
    add_registrations(app, event, users)

    rows = export(client, event, staff)

    assert [row["username"] for row in rows] == [user.username for user in users]
    assert all(row["name"] == f"Fan {n}" for n, row in enumerate(rows))
    assert len({row["email"] for row in rows}) == 1_101


def add_registrations(app: Flask, public_id: str, users: list[User]) -> None:
    """Confirmed registrations written straight into the database (quicker than the
    route for a thousand)."""
    with app.app_context():
        event = db.session.scalar(select(Event).where(Event.public_id == public_id))
        assert event is not None
        for user in users:
            registration = Registration(
                event_id=event.id,
                user_id=user.public_id,
                username=user.username,
                status=CONFIRMED,
                holds_seat=True,
            )
            registration.participants = [
                Participant(event_id=event.id, user_id=user.public_id, username=user.username)
            ]
            db.session.add(registration)
        event.seats_taken += len(users)
        db.session.commit()


def test_a_user_auth_service_no_longer_knows_keeps_their_username(
    app: Flask, client: FlaskClient, auth: AuthServer, alice: User, staff: User
) -> None:
    event = add_event(app)
    registered_id(client, event, alice)
    auth.delete("alice")

    rows = export(client, event, staff)

    assert [(row["username"], row["name"], row["email"]) for row in rows] == [("alice", "", "")]


def test_auth_service_down_is_503_before_any_byte(
    make_app: Callable[..., Flask], dead_url: str, alice: User, staff: User
) -> None:
    app = make_app(AUTH_SERVICE_URL=dead_url)
    client = app.test_client()
    event = add_event(app)
    registered_id(client, event, alice)  # registering needs no directory

    response = client.get(f"/events/{event}/registrations?format=csv", headers=staff.headers)

    assert response.status_code == 503
    assert response.json["code"] == "service_unavailable"  # type: ignore[index]
    assert response.headers["Retry-After"] == "5"


def test_without_a_service_secret_the_export_is_503(
    make_app: Callable[..., Flask], alice: User, staff: User
) -> None:
    app = make_app(SERVICE_SECRET="")
    client = app.test_client()
    event = add_event(app)
    registered_id(client, event, alice)

    response = client.get(f"/events/{event}/registrations?format=csv", headers=staff.headers)

    assert response.status_code == 503


def test_who_may_export(app: Flask, client: FlaskClient, auth: AuthServer, alice: User) -> None:
    event = add_event(app)
    registered_id(client, event, alice)
    writer = auth.add_user("writer", role="staff", priv={"event": "cud"})
    root = auth.add_user("root_2", role="superuser")
    path = f"/events/{event}/registrations?format=csv"

    assert client.get(path).status_code == 401
    assert client.get(path, headers=alice.headers).status_code == 403
    assert client.get(path, headers=writer.headers).status_code == 403
    assert [row["username"] for row in export(client, event, root)] == ["alice"]
    assert client.get(
        "/events/nope/registrations?format=csv", headers=root.headers
    ).status_code == (404)
