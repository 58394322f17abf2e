"""Registrations: registering a user or a team, the refusals, seats, the waiting list,
payment, reading and cancelling, and who may do each."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from auth_service.models import User as Account
from auth_service.models import db as auth_db
from events_service import seats
from events_service.models import Event, Participant, Registration, Team, TeamMember, db
from events_service.registrations import service
from tests.real_auth import COLLEGE, AuthServer, User

# Helpers (the other registration test files use them too)


def add_event(
    app: Flask,
    *,
    team: bool = False,
    capacity: int | None = None,
    fees: str = "0",
    min_size: int = 1,
    max_size: int = 1,
    opens: datetime | None = None,
    closes: datetime | None = None,
    name: str = "Hackathon",
) -> str:
    """An event row (the events routes belong elsewhere); its publicId."""
    public_id = uuid.uuid4().hex
    with app.app_context():
        db.session.add(
            Event(
                public_id=public_id,
                name=name,
                name_key=name.casefold(),
                date=date(2027, 3, 1),
                time=time(10, 0),
                fees=Decimal(fees),
                team_event=team,
                min_size=min_size,
                max_size=max_size,
                capacity=capacity,
                registration_opens=opens,
                registration_closes=closes,
            )
        )
        db.session.commit()
    return public_id


def add_team(app: Flask, leader: User, members: Iterable[User] = (), name: str = "Team") -> str:
    """A team led by `leader` whose `members` accepted their invitations; its teamId."""
    with app.app_context():
        team = Team(name=name, leader_id=leader.public_id, leader_username=leader.username)
        team.members = [TeamMember(user_id=m.public_id, username=m.username) for m in members]
        db.session.add(team)
        db.session.commit()
        return str(team.id)


def add_users(auth: AuthServer, prefix: str, count: int) -> list[User]:
    """`count` users written straight into auth_service's database in one transaction
    (its create_user commits each one: fine for a few, slow for hundreds)."""
    with auth.app.app_context():
        accounts = [
            Account(
                username=f"{prefix}{n}",
                email=f"{prefix}{n}@example.org",
                first_name=prefix.title(),
                last_name=str(n),
                college_name=COLLEGE,
            )
            for n in range(count)
        ]
        auth_db.session.add_all(accounts)
        auth_db.session.commit()
        people = [(account.public_id, account.username) for account in accounts]
    return [
        User(public_id, name, {"Authorization": f"Bearer {auth.keys.token(public_id, name)}"})
        for public_id, name in people
    ]


def register(
    client: FlaskClient, public_id: str, user: User, team_id: str | None = None
) -> TestResponse:
    body = {} if team_id is None else {"teamId": team_id}
    return client.post(f"/events/{public_id}/register/", json=body, headers=user.headers)


def registered_id(client: FlaskClient, public_id: str, user: User, team: str | None = None) -> str:
    response = register(client, public_id, user, team)
    assert response.status_code == 201, response.json
    return str(response.json["registrationId"])  # type: ignore[index]


def seats_taken(app: Flask, public_id: str) -> int:
    with app.app_context():
        taken = db.session.scalar(select(Event.seats_taken).where(Event.public_id == public_id))
        assert taken is not None
        return taken


def stored_rows(app: Flask) -> tuple[int, int]:
    """How many registrations and participants are stored."""
    with app.app_context():
        registrations = db.session.scalar(select(func.count()).select_from(Registration))
        participants = db.session.scalar(select(func.count()).select_from(Participant))
        return int(registrations or 0), int(participants or 0)


def statuses(client: FlaskClient, public_id: str, staff: User) -> list[tuple[str, str]]:
    """(userId or teamId, status) of every registration, in the list's order."""
    response = client.get(f"/events/{public_id}/registrations", headers=staff.headers)
    assert response.status_code == 200, response.json
    return [
        (entry.get("userId") or entry["teamId"], entry["status"])
        for entry in response.json["registrations"]  # type: ignore[index]
    ]


def url(public_id: str, registration_id: str, slash: str = "") -> str:
    return f"/events/{public_id}/registrations/{registration_id}{slash}"


NOW = datetime.now(UTC)


# Registering yourself for a single event


@pytest.mark.parametrize("path", ["register/", "register"])
def test_a_user_registers_for_a_free_event(
    app: Flask, client: FlaskClient, alice: User, path: str
) -> None:
    event = add_event(app)

    response = client.post(f"/events/{event}/{path}", headers=alice.headers)

    assert response.status_code == 201
    assert response.json == {
        "message": "Successfully registered",
        "registrationId": response.json["registrationId"],  # type: ignore[index]
        "status": "confirmed",
    }
    assert response.json["registrationId"].isdigit()
    assert seats_taken(app, event) == 1
    assert stored_rows(app) == (1, 1)


def test_an_empty_object_or_a_form_registers_too(
    app: Flask, client: FlaskClient, alice: User, bob: User
) -> None:
    event = add_event(app)

    assert register(client, event, alice).status_code == 201
    form = client.post(f"/events/{event}/register/", data={}, headers=bob.headers)
    assert form.status_code == 201


def test_registering_again_is_the_documents_422(
    app: Flask, client: FlaskClient, alice: User
) -> None:
    event = add_event(app)
    first = registered_id(client, event, alice)

    again = register(client, event, alice)

    assert again.status_code == 422
    assert again.json == {
        "message": "Already registered for event",
        "eventId": event,
        "status": "registered",
        "registrationId": first,
    }
    assert stored_rows(app) == (1, 1)
    assert seats_taken(app, event) == 1


def test_a_paid_event_holds_the_seat_until_payment(
    app: Flask, client: FlaskClient, alice: User
) -> None:
    event = add_event(app, fees="300")

    response = register(client, event, alice)

    assert response.json["status"] == "payment pending"  # type: ignore[index]
    assert seats_taken(app, event) == 1


def test_beyond_the_capacity_registrations_wait_in_order(
    app: Flask, client: FlaskClient, auth: AuthServer, staff: User
) -> None:
    event = add_event(app, capacity=2)
    users = [auth.add_user(f"user_{n}") for n in range(4)]

    answers = [register(client, event, user).json["status"] for user in users]  # type: ignore[index]

    assert answers == ["confirmed", "confirmed", "waiting", "waiting"]
    assert statuses(client, event, staff) == [
        ("user_0", "confirmed"),
        ("user_1", "confirmed"),
        ("user_2", "waiting"),
        ("user_3", "waiting"),
    ]
    assert seats_taken(app, event) == 2


def test_a_capacity_of_none_is_unlimited(app: Flask, client: FlaskClient, auth: AuthServer) -> None:
    event = add_event(app, capacity=None)
    users = [auth.add_user(f"user_{n}") for n in range(6)]

    answers = {register(client, event, user).json["status"] for user in users}  # type: ignore[index]

    assert answers == {"confirmed"}
    assert seats_taken(app, event) == 6


def test_a_capacity_of_zero_puts_everyone_on_the_waiting_list(
    app: Flask, client: FlaskClient, alice: User
) -> None:
    event = add_event(app, capacity=0)

    assert register(client, event, alice).json["status"] == "waiting"  # type: ignore[index]
    assert seats_taken(app, event) == 0


def test_an_unknown_event_is_404(client: FlaskClient, alice: User) -> None:
    response = register(client, "no-such-event", alice)

    assert response.status_code == 404
    assert response.json["code"] == "not_found"  # type: ignore[index]


def test_registering_needs_a_token(app: Flask, client: FlaskClient) -> None:
    event = add_event(app)

    assert client.post(f"/events/{event}/register/", json={}).status_code == 401
    assert stored_rows(app) == (0, 0)


def test_a_single_event_refuses_a_team(app: Flask, client: FlaskClient, alice: User) -> None:
    event = add_event(app)
    team = add_team(app, alice)

    response = register(client, event, alice, team)

    assert response.status_code == 422
    assert response.json["code"] == "not_a_team_event"  # type: ignore[index]
    assert "teamId" in response.json["errors"]  # type: ignore[index]
    assert stored_rows(app) == (0, 0)


# The registration window


def test_before_the_window_opens_registration_is_refused(
    app: Flask, client: FlaskClient, alice: User
) -> None:
    opens = NOW + timedelta(days=1)
    event = add_event(app, opens=opens, closes=opens + timedelta(days=7))

    response = register(client, event, alice)

    assert response.status_code == 422
    assert response.json["code"] == "registration_closed"  # type: ignore[index]
    assert "has not opened yet" in response.json["error"]  # type: ignore[index]
    assert opens.isoformat()[:16] in response.json["error"]  # type: ignore[index]
    assert response.json["registrationOpens"].startswith(opens.isoformat()[:19])  # type: ignore[index]
    assert stored_rows(app) == (0, 0)
    assert seats_taken(app, event) == 0


def test_after_the_window_closes_registration_is_refused(
    app: Flask, client: FlaskClient, alice: User
) -> None:
    closes = NOW - timedelta(minutes=1)
    event = add_event(app, closes=closes)

    response = register(client, event, alice)

    assert response.status_code == 422
    assert "has closed" in response.json["error"]  # type: ignore[index]
    assert f"until {closes.isoformat()[:16]}" in response.json["error"]  # type: ignore[index]
    assert response.json["registrationOpens"] is None  # type: ignore[index]
    assert stored_rows(app) == (0, 0)


def test_inside_the_window_registration_is_open(
    app: Flask, client: FlaskClient, alice: User
) -> None:
    event = add_event(app, opens=NOW - timedelta(days=1), closes=NOW + timedelta(days=1))

    assert register(client, event, alice).status_code == 201


# Teams


def test_the_leader_registers_a_team(
    app: Flask, client: FlaskClient, alice: User, bob: User, staff: User
) -> None:
    event = add_event(app, team=True, min_size=2, max_size=3)
    team = add_team(app, alice, [bob])

    response = register(client, event, alice, team)

    assert response.status_code == 201
    assert response.json["message"] == "Successfully registered"  # type: ignore[index]
    assert statuses(client, event, staff) == [(team, "confirmed")]
    assert stored_rows(app) == (1, 2)  # one registration, the leader and the member
    assert seats_taken(app, event) == 1  # a team takes one seat


def test_a_team_id_may_be_a_number(app: Flask, client: FlaskClient, alice: User) -> None:
    event = add_event(app, team=True)
    team = add_team(app, alice)

    response = client.post(
        f"/events/{event}/register", json={"teamId": int(team)}, headers=alice.headers
    )

    assert response.status_code == 201


def test_registering_a_team_again_is_the_documents_422(
    app: Flask, client: FlaskClient, alice: User
) -> None:
    event = add_event(app, team=True)
    team = add_team(app, alice)
    first = registered_id(client, event, alice, team)

    again = register(client, event, alice, team)

    assert again.status_code == 422
    assert again.json == {
        "message": "Team already registered for event",
        "eventId": event,
        "teamId": team,
        "status": "registered",
        "registrationId": first,
    }
    assert stored_rows(app) == (1, 1)


def test_a_team_event_needs_a_team(app: Flask, client: FlaskClient, alice: User) -> None:
    event = add_event(app, team=True)

    response = register(client, event, alice)

    assert response.status_code == 400
    assert response.json["errors"] == {"teamId": "required for a team event"}  # type: ignore[index]
    assert stored_rows(app) == (0, 0)


@pytest.mark.parametrize("team_id", ["999999", "99999999999999"])
def test_an_unknown_team_is_422(app: Flask, client: FlaskClient, alice: User, team_id: str) -> None:
    event = add_event(app, team=True)

    response = register(client, event, alice, team_id)

    assert response.status_code == 422
    assert response.json["code"] == "unknown_team"  # type: ignore[index]
    assert stored_rows(app) == (0, 0)


def test_only_the_leader_registers_a_team(
    app: Flask, client: FlaskClient, alice: User, bob: User, staff: User, superuser: User
) -> None:
    event = add_event(app, team=True, max_size=2)
    team = add_team(app, alice, [bob])

    for caller in (bob, staff, superuser):
        response = register(client, event, caller, team)
        assert response.status_code == 403, caller.username
        assert "leader" in response.json["error"]  # type: ignore[index]
    assert stored_rows(app) == (0, 0)


@pytest.mark.parametrize(("min_size", "max_size"), [(3, 4), (1, 1)])
def test_a_team_of_the_wrong_size_is_refused(
    app: Flask, client: FlaskClient, alice: User, bob: User, min_size: int, max_size: int
) -> None:
    event = add_event(app, team=True, min_size=min_size, max_size=max_size)
    team = add_team(app, alice, [bob])

    response = register(client, event, alice, team)

    assert response.status_code == 422
    assert response.json["code"] == "team_size"  # type: ignore[index]
    message = response.json["error"]  # type: ignore[index]
    assert f"teams of {min_size} to {max_size}" in message
    assert "has 2 members" in message
    assert stored_rows(app) == (0, 0)
    assert seats_taken(app, event) == 0


def test_nobody_is_registered_twice_through_two_teams(
    app: Flask, client: FlaskClient, auth: AuthServer, alice: User, bob: User
) -> None:
    dave = auth.add_user("dave")
    event = add_event(app, team=True, max_size=3)
    registered_id(client, event, alice, add_team(app, alice, [bob], "First"))
    second = add_team(app, dave, [bob], "Second")

    response = register(client, event, dave, second)

    assert response.status_code == 422
    assert response.json["code"] == "participant_already_registered"  # type: ignore[index]
    assert response.json["usernames"] == ["bob"]  # type: ignore[index]
    assert "'bob'" in response.json["error"]  # type: ignore[index]
    assert stored_rows(app) == (1, 2)
    assert seats_taken(app, event) == 1


def test_the_constraint_decides_when_the_check_is_raced(
    app: Flask,
    client: FlaskClient,
    auth: AuthServer,
    alice: User,
    bob: User,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two teams with bob registering at once both pass the check before either commits
    (simulated: the check is skipped once); the participants' unique constraint refuses
    the second, answered as 422 naming bob, not a 500, with nothing of it stored."""
    dave = auth.add_user("dave")
    event = add_event(app, team=True, max_size=3)
    registered_id(client, event, alice, add_team(app, alice, [bob], "First"))
    second = add_team(app, dave, [bob], "Second")
    check = service._check_not_registered
    calls: list[object] = []

    def passes_once(*args: Any) -> None:
        calls.append(args)
        if len(calls) > 1:
            check(*args)

    monkeypatch.setattr(service, "_check_not_registered", passes_once)

    response = register(client, event, dave, second)

    assert len(calls) == 2  # the second call explains the constraint's refusal
    assert response.status_code == 422
    assert response.json["code"] == "participant_already_registered"  # type: ignore[index]
    assert response.json["usernames"] == ["bob"]  # type: ignore[index]
    assert stored_rows(app) == (1, 2)
    assert seats_taken(app, event) == 1


# Bad input


@pytest.mark.parametrize(
    "team_id", [[], {}, True, "abc", "-1", 1.5, -3, 0, "", "1" * 19, "\u0662\u0663"]
)  # fmt: skip
def test_a_malformed_team_id_is_400(
    app: Flask, client: FlaskClient, alice: User, team_id: Any
) -> None:
    event = add_event(app, team=True)

    response = client.post(
        f"/events/{event}/register/", json={"teamId": team_id}, headers=alice.headers
    )

    assert response.status_code == 400
    assert "teamId" in response.json["errors"]  # type: ignore[index]
    assert stored_rows(app) == (0, 0)


@pytest.mark.parametrize(
    "raw",
    [
        "[" * 10_000 + "]" * 10_000,
        '{"teamId": ' + "9" * 5_000 + "}",
        '{"teamId": ',
        b"\xff\xfe",
    ],
    ids=["deep", "huge-integer", "malformed", "not-utf8"],
)
def test_a_body_that_is_not_json_is_400_invalid_json(
    app: Flask, client: FlaskClient, alice: User, raw: str | bytes
) -> None:
    event = add_event(app, team=True)

    response = client.post(
        f"/events/{event}/register/",
        data=raw,
        content_type="application/json",
        headers=alice.headers,
    )

    assert response.status_code == 400
    assert response.json["code"] == "invalid_json"  # type: ignore[index]
    assert stored_rows(app) == (0, 0)


@pytest.mark.parametrize("body", [[], "team", 5, {"teamId": "1", "extra": 1}])
def test_a_body_that_is_not_the_object_is_400(
    app: Flask, client: FlaskClient, alice: User, body: Any
) -> None:
    event = add_event(app, team=True)
    add_team(app, alice)

    response = client.post(f"/events/{event}/register/", json=body, headers=alice.headers)

    assert response.status_code == 400
    assert stored_rows(app) == (0, 0)


# The list


def test_staff_list_a_single_events_registrations(
    app: Flask, client: FlaskClient, alice: User, bob: User, staff: User
) -> None:
    event = add_event(app, capacity=1)
    first = registered_id(client, event, alice)
    second = registered_id(client, event, bob)

    for path in (f"/events/{event}/registrations", f"/events/{event}/registrations/"):
        response = client.get(path, headers=staff.headers)
        assert response.status_code == 200
        assert response.json == {
            "eventPublicId": event,
            "eventType": "single",
            "registrations": [
                {"registrationId": first, "userId": "alice", "status": "confirmed"},
                {"registrationId": second, "userId": "bob", "status": "waiting"},
            ],
            "pages": 1,
            "currentpage": 1,
        }


def test_staff_list_a_team_events_registrations(
    app: Flask, client: FlaskClient, alice: User, bob: User, superuser: User
) -> None:
    event = add_event(app, team=True, fees="50")
    team = add_team(app, alice)
    first = registered_id(client, event, alice, team)

    response = client.get(f"/events/{event}/registrations", headers=superuser.headers)

    assert response.status_code == 200
    assert response.json["eventType"] == "team"  # type: ignore[index]
    assert response.json["registrations"] == [  # type: ignore[index]
        {"registrationId": first, "teamId": team, "status": "payment pending"}
    ]


def test_the_list_pages(app: Flask, client: FlaskClient, auth: AuthServer, staff: User) -> None:
    event = add_event(app)
    users = [auth.add_user(f"user_{n}") for n in range(5)]
    for user in users:
        registered_id(client, event, user)

    response = client.get(f"/events/{event}/registrations?limit=2&page=3", headers=staff.headers)

    assert response.status_code == 200
    assert [r["userId"] for r in response.json["registrations"]] == ["user_4"]  # type: ignore[index]
    assert (response.json["pages"], response.json["currentpage"]) == (3, 3)  # type: ignore[index]


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=5001", "limit=x", "page=0", "format=xml", "page=99999999"]
)
def test_bad_list_arguments_are_400(
    app: Flask, client: FlaskClient, staff: User, query: str
) -> None:
    event = add_event(app)

    response = client.get(f"/events/{event}/registrations?{query}", headers=staff.headers)

    assert response.status_code == 400
    assert response.json["code"] == "validation_error"  # type: ignore[index]


def test_who_may_list_registrations(
    app: Flask, client: FlaskClient, auth: AuthServer, alice: User
) -> None:
    event = add_event(app)
    registered_id(client, event, alice)
    reader = auth.add_user("reader", role="staff", priv={"event": "r"})
    writer = auth.add_user("writer", role="staff", priv={"event": "cud"})
    path = f"/events/{event}/registrations"

    assert client.get(path).status_code == 401
    assert client.get(path, headers=alice.headers).status_code == 403
    assert client.get(path, headers=writer.headers).status_code == 403
    assert client.get(path, headers=reader.headers).status_code == 200


def test_listing_an_unknown_event_is_404(client: FlaskClient, staff: User) -> None:
    assert client.get("/events/nope/registrations", headers=staff.headers).status_code == 404


# One registration


def test_the_registrant_and_staff_read_a_registration(
    app: Flask, client: FlaskClient, auth: AuthServer, alice: User, bob: User, staff: User,
    superuser: User,
) -> None:  # fmt: skip
    event = add_event(app)
    registration = registered_id(client, event, alice)
    reader = auth.add_user("reader", role="staff", priv={"event": "r"})
    writer = auth.add_user("writer", role="staff", priv={"event": "ud"})
    expected = {"registrationId": registration, "userId": "alice", "status": "confirmed"}

    for caller in (alice, staff, reader, superuser):
        for slash in ("", "/"):
            response = client.get(url(event, registration, slash), headers=caller.headers)
            assert response.status_code == 200, caller.username
            assert response.json == expected
    assert client.get(url(event, registration)).status_code == 401
    assert client.get(url(event, registration), headers=bob.headers).status_code == 403
    assert client.get(url(event, registration), headers=writer.headers).status_code == 403


def test_the_team_reads_its_registration(
    app: Flask, client: FlaskClient, auth: AuthServer, alice: User, bob: User, carol: User
) -> None:
    event = add_event(app, team=True, max_size=2)
    team = add_team(app, alice, [bob])
    registration = registered_id(client, event, alice, team)

    for caller in (alice, bob):
        response = client.get(url(event, registration), headers=caller.headers)
        assert response.status_code == 200
        assert response.json == {
            "registrationId": registration,
            "teamId": team,
            "userId": "alice",
            "status": "confirmed",
        }
    assert client.get(url(event, registration), headers=carol.headers).status_code == 403


@pytest.mark.parametrize("registration", ["abc", "0", "-1", "99999", "9" * 30, "\u0661"])
def test_an_unknown_registration_is_404(
    app: Flask, client: FlaskClient, staff: User, registration: str
) -> None:
    event = add_event(app)

    for method in ("get", "put", "delete"):
        response = client.open(
            url(event, registration),
            method=method.upper(),
            json={"status": "confirmed"},
            headers=staff.headers,
        )
        assert response.status_code == 404, method
        assert response.json["code"] == "not_found"  # type: ignore[index]


def test_a_registration_of_another_event_is_404(
    app: Flask, client: FlaskClient, alice: User, staff: User
) -> None:
    event, other = add_event(app), add_event(app)
    registration = registered_id(client, event, alice)

    assert client.get(url(other, registration), headers=staff.headers).status_code == 404
    assert client.delete(url(other, registration), headers=staff.headers).status_code == 404
    assert stored_rows(app) == (1, 1)


# Payment


@pytest.mark.parametrize("slash", ["", "/"])
def test_staff_confirm_a_payment(
    app: Flask, client: FlaskClient, alice: User, staff: User, slash: str
) -> None:
    event = add_event(app, fees="250")
    registration = registered_id(client, event, alice)

    response = client.put(
        url(event, registration, slash), json={"status": "confirmed"}, headers=staff.headers
    )

    assert response.status_code == 200
    assert response.json == {
        "registrationId": registration,
        "userId": "alice",
        "status": "confirmed",
    }
    again = client.put(
        url(event, registration), json={"status": "confirmed"}, headers=staff.headers
    )
    assert again.status_code == 200  # confirming a confirmed one changes nothing
    assert statuses(client, event, staff) == [("alice", "confirmed")]
    assert seats_taken(app, event) == 1


def test_who_may_confirm_a_payment(
    app: Flask, client: FlaskClient, auth: AuthServer, alice: User, bob: User, superuser: User
) -> None:
    event = add_event(app, fees="250")
    registration = registered_id(client, event, alice)
    reader = auth.add_user("reader", role="staff", priv={"event": "rd"})
    body = {"status": "confirmed"}

    assert client.put(url(event, registration), json=body).status_code == 401
    for caller in (alice, bob, reader):
        response = client.put(url(event, registration), json=body, headers=caller.headers)
        assert response.status_code == 403, caller.username
    assert client.get(url(event, registration), headers=alice.headers).json["status"] == (  # type: ignore[index]
        "payment pending"
    )
    response = client.put(url(event, registration), json=body, headers=superuser.headers)
    assert response.json["status"] == "confirmed"  # type: ignore[index]


def test_a_waiting_registration_cannot_be_confirmed(
    app: Flask, client: FlaskClient, alice: User, bob: User, staff: User
) -> None:
    event = add_event(app, fees="250", capacity=1)
    registered_id(client, event, alice)
    waiting = registered_id(client, event, bob)

    response = client.put(url(event, waiting), json={"status": "confirmed"}, headers=staff.headers)

    assert response.status_code == 422
    assert "waiting" in response.json["error"]  # type: ignore[index]
    assert statuses(client, event, staff)[1] == ("bob", "waiting")
    assert seats_taken(app, event) == 1


@pytest.mark.parametrize("status", ["waiting", "payment pending", "paid", "CONFIRMED", ""])
def test_only_confirmed_can_be_set(
    app: Flask, client: FlaskClient, alice: User, staff: User, status: str
) -> None:
    event = add_event(app, fees="250")
    registration = registered_id(client, event, alice)

    response = client.put(url(event, registration), json={"status": status}, headers=staff.headers)

    assert response.status_code == 422
    assert response.json["code"] == "status_change"  # type: ignore[index]
    assert "'confirmed'" in response.json["error"]  # type: ignore[index]
    assert statuses(client, event, staff) == [("alice", "payment pending")]


@pytest.mark.parametrize(
    "body", [{}, {"status": 1}, {"status": None}, [], {"status": ["confirmed"]}]
)
def test_a_malformed_status_change_is_400(
    app: Flask, client: FlaskClient, alice: User, staff: User, body: Any
) -> None:
    event = add_event(app, fees="250")
    registration = registered_id(client, event, alice)

    response = client.put(url(event, registration), json=body, headers=staff.headers)

    assert response.status_code == 400
    deep = client.put(
        url(event, registration),
        data="[" * 10_000 + "]" * 10_000,
        content_type="application/json",
        headers=staff.headers,
    )
    assert deep.status_code == 400
    assert deep.json["code"] == "invalid_json"  # type: ignore[index]
    assert statuses(client, event, staff) == [("alice", "payment pending")]


# Cancelling, and the waiting list


@pytest.mark.parametrize("slash", ["", "/"])
def test_cancelling_promotes_the_first_waiting_registration(
    app: Flask, client: FlaskClient, auth: AuthServer, staff: User, slash: str
) -> None:
    event = add_event(app, capacity=2)
    users = [auth.add_user(f"user_{n}") for n in range(5)]
    ids = [registered_id(client, event, user) for user in users]

    response = client.delete(url(event, ids[0], slash), headers=users[0].headers)

    assert response.status_code == 204
    assert response.data == b""
    assert statuses(client, event, staff) == [
        ("user_1", "confirmed"),
        ("user_2", "confirmed"),
        ("user_3", "waiting"),
        ("user_4", "waiting"),
    ]
    assert seats_taken(app, event) == 2
    assert stored_rows(app) == (4, 4)


def test_a_promoted_registration_of_a_paid_event_awaits_payment(
    app: Flask, client: FlaskClient, alice: User, bob: User, staff: User
) -> None:
    event = add_event(app, capacity=1, fees="100")
    first = registered_id(client, event, alice)
    registered_id(client, event, bob)

    assert client.delete(url(event, first), headers=staff.headers).status_code == 204

    assert statuses(client, event, staff) == [("bob", "payment pending")]
    assert seats_taken(app, event) == 1


def test_cancelling_a_waiting_registration_frees_no_seat(
    app: Flask, client: FlaskClient, auth: AuthServer, staff: User
) -> None:
    event = add_event(app, capacity=1)
    users = [auth.add_user(f"user_{n}") for n in range(3)]
    ids = [registered_id(client, event, user) for user in users]

    assert client.delete(url(event, ids[1]), headers=users[1].headers).status_code == 204

    assert statuses(client, event, staff) == [("user_0", "confirmed"), ("user_2", "waiting")]
    assert seats_taken(app, event) == 1


def test_cancelling_twice_is_404(app: Flask, client: FlaskClient, alice: User) -> None:
    event = add_event(app)
    registration = registered_id(client, event, alice)

    assert client.delete(url(event, registration), headers=alice.headers).status_code == 204
    assert client.delete(url(event, registration), headers=alice.headers).status_code == 404
    assert seats_taken(app, event) == 0


def test_who_may_cancel_a_single_registration(
    app: Flask, client: FlaskClient, auth: AuthServer, alice: User, bob: User, superuser: User
) -> None:
    event = add_event(app)
    reader = auth.add_user("reader", role="staff", priv={"event": "cru"})
    deleter = auth.add_user("deleter", role="staff", priv={"event": "d"})

    registration = registered_id(client, event, alice)
    assert client.delete(url(event, registration)).status_code == 401
    for caller in (bob, reader):
        assert client.delete(url(event, registration), headers=caller.headers).status_code == 403
    assert stored_rows(app) == (1, 1)
    for caller in (alice, deleter, superuser):
        response = client.delete(url(event, registration), headers=caller.headers)
        assert response.status_code == 204, caller.username
        registration = registered_id(client, event, alice)


def test_who_may_cancel_a_teams_registration(
    app: Flask, client: FlaskClient, alice: User, bob: User, carol: User, staff: User
) -> None:
    event = add_event(app, team=True, max_size=2)
    team = add_team(app, alice, [bob])
    registration = registered_id(client, event, alice, team)

    for caller in (bob, carol):
        assert client.delete(url(event, registration), headers=caller.headers).status_code == 403
    assert client.delete(url(event, registration), headers=alice.headers).status_code == 204
    assert stored_rows(app) == (0, 0)
    # Cancelled, the team (and its members) may register again.
    registration = registered_id(client, event, alice, team)
    assert client.delete(url(event, registration), headers=staff.headers).status_code == 204


# The seat primitives other domains call (seats.fill_seats, seats.cancel)


def test_raising_the_capacity_seats_as_many_as_fit(
    app: Flask, client: FlaskClient, auth: AuthServer, staff: User
) -> None:
    event = add_event(app, capacity=1, fees="20")
    users = [auth.add_user(f"user_{n}") for n in range(5)]
    for user in users:
        registered_id(client, event, user)

    with app.app_context():
        row = db.session.scalar(select(Event).where(Event.public_id == event))
        assert row is not None
        row.capacity = 3
        promoted = seats.fill_seats(db.session(), row.id)
        db.session.commit()
        assert [registration.username for registration in promoted] == ["user_1", "user_2"]

    assert statuses(client, event, staff) == [
        ("user_0", "payment pending"),
        ("user_1", "payment pending"),
        ("user_2", "payment pending"),
        ("user_3", "waiting"),
        ("user_4", "waiting"),
    ]
    assert seats_taken(app, event) == 3


def test_a_stale_waiting_registration_cancelled_gives_its_new_seat_back(
    app: Flask, client: FlaskClient, alice: User, bob: User, carol: User, staff: User
) -> None:
    """Bob's registration is read while it waits; before it is cancelled, alice cancels
    and bob is promoted. The cancellation sees the seat bob holds now and passes it on."""
    event = add_event(app, capacity=1)
    first = registered_id(client, event, alice)
    second = registered_id(client, event, bob)
    registered_id(client, event, carol)

    with app.app_context():
        stale = db.session.get(Registration, int(second))
        assert stale is not None and not stale.holds_seat
        assert client.delete(url(event, first), headers=alice.headers).status_code == 204
        promoted = seats.cancel(db.session(), stale)
        db.session.commit()
        assert [registration.username for registration in promoted] == ["carol"]

    assert statuses(client, event, staff) == [("carol", "confirmed")]
    assert seats_taken(app, event) == 1
    assert stored_rows(app) == (1, 1)
