"""Teams: creating, reading, renaming, listing and deleting them (invitations and members
are in test_events_invitations.py, which shares the helpers below)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, time
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, func, select

from events_service import seats
from events_service.models import (
    CONFIRMED,
    WAITING,
    Event,
    Invitation,
    Participant,
    Registration,
    Team,
    TeamMember,
    db,
)
from tests.real_auth import AuthServer, User

DEEP_JSON = b'{"name": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"


# Helpers shared with test_events_invitations.py


def create_team(client: FlaskClient, leader: User, name: str = "The Gingers") -> str:
    response = client.post("/teams/", json={"name": name}, headers=leader.headers)
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["teamid"])


def join(client: FlaskClient, leader: User, teamid: str, member: User) -> None:
    """`member` joins the team: invited by the leader, then accepting."""
    invited = client.post(
        f"/teams/{teamid}/invitations", json={"username": member.username}, headers=leader.headers
    )
    assert invited.status_code == 201, invited.get_json()
    accepted = client.put(
        f"/users/{member.username}/invitation/{teamid}/accept/", headers=member.headers
    )
    assert accepted.status_code == 200, accepted.get_json()


def add_event(
    app: Flask, *, max_size: int = 4, capacity: int | None = None, team_event: bool = True
) -> str:
    """An event inserted directly; returns its publicId."""
    with app.app_context():
        added = Event(
            public_id=uuid4().hex,
            name="Hackathon",
            name_key="hackathon",
            date=date(2027, 3, 1),
            time=time(10, 0),
            fees=Decimal(0),
            team_event=team_event,
            min_size=1,
            max_size=max_size,
            capacity=capacity,
        )
        db.session.add(added)
        db.session.commit()
        return str(added.public_id)


def _register(app: Flask, public_id: str, team_id: int | None, people: list[User]) -> int:
    with app.app_context():
        found = db.session.scalars(select(Event).where(Event.public_id == public_id)).one()
        registration = Registration(
            event_id=found.id,
            team_id=team_id,
            user_id=None if team_id is not None else people[0].public_id,
            username=people[0].username,
        )
        seats.place(db.session(), found, registration)
        registration.participants = [
            Participant(event_id=found.id, user_id=person.public_id, username=person.username)
            for person in people
        ]
        db.session.add(registration)
        db.session.commit()
        return int(registration.id)


def register_team(app: Flask, public_id: str, teamid: str, people: list[User]) -> int:
    """Register the team (its leader first in `people`) through seats.place."""
    return _register(app, public_id, int(teamid), people)


def register_user(app: Flask, public_id: str, user: User) -> int:
    """Register a user alone through seats.place."""
    return _register(app, public_id, None, [user])


def count(app: Flask, model: Any, *where: Any) -> int:
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def participants(app: Flask, registration_id: int) -> list[str]:
    with app.app_context():
        return list(
            db.session.scalars(
                select(Participant.username)
                .where(Participant.registration_id == registration_id)
                .order_by(Participant.id)
            )
        )


@contextmanager
def counted_queries(app: Flask) -> Iterator[list[str]]:
    """The SQL statements the app runs inside the block."""
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.fixture
def reader(auth: AuthServer) -> User:
    """Staff who may only read events."""
    return auth.add_user("staff_reader", role="staff", priv={"event": "r"})


@pytest.fixture
def clerk(auth: AuthServer) -> User:
    """Staff with event privileges, but neither read, update nor delete."""
    return auth.add_user("staff_clerk", role="staff", priv={"event": "c"})


# Creating


@pytest.mark.parametrize("path", ["/teams/", "/teams"])
def test_a_signed_in_user_creates_a_team_they_lead(
    client: FlaskClient, alice: User, path: str
) -> None:
    response = client.post(path, json={"name": "  The Gingers "}, headers=alice.headers)

    assert response.status_code == 201
    body = response.get_json()
    assert body == {
        "teamid": body["teamid"],
        "name": "The Gingers",
        "leader": "alice",
        "members": [],
        "events": [],
        "invitees": [],
    }
    assert body["teamid"].isdigit()


def test_staff_create_teams_too(client: FlaskClient, staff: User) -> None:
    response = client.post("/teams/", json={"name": "Crew"}, headers=staff.headers)

    assert response.status_code == 201
    assert response.get_json()["leader"] == "staff_1"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "x" * 200_000}, "name"),
        ({"name": 42}, "name"),
        ({"name": None}, "name"),
        ({"name": ["The Gingers"]}, "name"),
        ({"name": {"first": "x"}}, "name"),
        ({"name": "line\nbreak"}, "name"),
        ({"name": "nul\u0000"}, "name"),
        ({"name": "Ok", "leader": "bob"}, "leader"),
    ],
)
def test_a_bad_name_is_400_naming_it_and_nothing_is_stored(
    app: Flask, client: FlaskClient, alice: User, body: dict[str, Any], field: str
) -> None:
    response = client.post("/teams/", json=body, headers=alice.headers)

    assert response.status_code == 400
    assert field in response.get_json()["errors"]
    assert count(app, Team) == 0


def test_a_name_of_100_characters_is_taken(client: FlaskClient, alice: User) -> None:
    response = client.post("/teams/", json={"name": "é" * 100}, headers=alice.headers)

    assert response.status_code == 201
    assert response.get_json()["name"] == "é" * 100


@pytest.mark.parametrize(
    "raw",
    [DEEP_JSON, b'{"name": ' + b"9" * 5000 + b"}", b'{"name": "x"', b"[", b"\xff\xfe"],
)
def test_malformed_json_is_400_invalid_json(
    app: Flask, client: FlaskClient, alice: User, raw: bytes
) -> None:
    response = client.post(
        "/teams/", data=raw, content_type="application/json", headers=alice.headers
    )

    assert response.status_code == 400
    assert response.get_json()["code"] == "invalid_json"
    assert count(app, Team) == 0


def test_a_body_that_is_not_an_object_is_400(app: Flask, client: FlaskClient, alice: User) -> None:
    response = client.post("/teams/", json=["The Gingers"], headers=alice.headers)

    assert response.status_code == 400
    assert count(app, Team) == 0


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/teams/"),
        ("GET", "/teams"),
        ("GET", "/teams/1"),
        ("PUT", "/teams/1"),
        ("DELETE", "/teams/1"),
        ("POST", "/teams/1/invitations"),
        ("DELETE", "/teams/1/invitations/bob"),
        ("DELETE", "/teams/1/bob"),
        ("GET", "/users/bob/invitation"),
        ("PUT", "/users/bob/invitation/1/accept/"),
        ("PUT", "/users/bob/invitation/1/reject"),
    ],
)
def test_every_route_needs_a_signed_in_caller(
    client: FlaskClient, alice: User, method: str, path: str
) -> None:
    create_team(client, alice)

    response = client.open(path, method=method, data=DEEP_JSON, content_type="application/json")

    assert response.status_code == 401
    assert response.get_json()["code"] == "unauthorized"


# Reading one team


@pytest.fixture
def formed_team(
    app: Flask, client: FlaskClient, alice: User, bob: User, auth: AuthServer
) -> tuple[str, User, User]:
    """alice's team with bob as member, and dave invited; it is registered for an event."""
    teamid = create_team(client, alice)
    join(client, alice, teamid, bob)
    dave = auth.add_user("dave")
    invited = client.post(
        f"/teams/{teamid}/invitations", json={"username": "dave"}, headers=alice.headers
    )
    assert invited.status_code == 201
    return teamid, bob, dave


@pytest.mark.parametrize("slash", ["", "/"])
@pytest.mark.parametrize("who", ["alice", "bob", "dave", "staff", "superuser", "reader"])
def test_the_team_is_shown_to_leader_members_invitees_and_staff_who_read(
    app: Flask,
    client: FlaskClient,
    formed_team: tuple[str, User, User],
    alice: User,
    staff: User,
    superuser: User,
    reader: User,
    who: str,
    slash: str,
) -> None:
    teamid, bob, dave = formed_team
    public_id = add_event(app)
    register_team(app, public_id, teamid, [alice, bob])
    callers = {
        "alice": alice,
        "bob": bob,
        "dave": dave,
        "staff": staff,
        "superuser": superuser,
        "reader": reader,
    }

    response = client.get(f"/teams/{teamid}{slash}", headers=callers[who].headers)

    assert response.status_code == 200
    assert response.get_json() == {
        "teamid": teamid,
        "name": "The Gingers",
        "leader": "alice",
        "members": ["bob"],
        "invitees": ["dave"],
        "events": [public_id],
    }


@pytest.mark.parametrize("who", ["carol", "stranger", "clerk"])
def test_anyone_else_is_refused_the_team(
    client: FlaskClient,
    formed_team: tuple[str, User, User],
    carol: User,
    clerk: User,
    auth: AuthServer,
    who: str,
) -> None:
    teamid, _bob, _dave = formed_team
    callers = {"carol": carol, "stranger": auth.add_user("erin"), "clerk": clerk}

    response = client.get(f"/teams/{teamid}", headers=callers[who].headers)

    assert response.status_code == 403
    assert response.get_json()["code"] == "forbidden"


def test_an_invitee_who_rejected_no_longer_sees_the_team(
    client: FlaskClient, formed_team: tuple[str, User, User]
) -> None:
    teamid, _bob, dave = formed_team
    rejected = client.put(f"/users/dave/invitation/{teamid}/reject", headers=dave.headers)

    response = client.get(f"/teams/{teamid}", headers=dave.headers)

    assert rejected.status_code == 200
    assert response.status_code == 403


@pytest.mark.parametrize("teamid", ["999", "abc", "1.5", "-1", "99999999999999999999", "\u0661"])
def test_an_unknown_team_is_404(client: FlaskClient, staff: User, teamid: str) -> None:
    response = client.get(f"/teams/{teamid}", headers=staff.headers)

    assert response.status_code == 404
    assert response.get_json()["code"] == "not_found"


def test_members_are_listed_in_joining_order_and_events_in_registration_order(
    app: Flask, client: FlaskClient, alice: User, bob: User, auth: AuthServer
) -> None:
    teamid = create_team(client, alice)
    dave, erin = auth.add_user("dave"), auth.add_user("erin")
    for member in (erin, bob, dave):
        join(client, alice, teamid, member)
    first, second = add_event(app), add_event(app)
    register_team(app, second, teamid, [alice])
    register_team(app, first, teamid, [alice])

    body = client.get(f"/teams/{teamid}", headers=alice.headers).get_json()

    assert body["members"] == ["erin", "bob", "dave"]
    assert body["events"] == [second, first]


def test_one_team_is_read_in_two_queries(
    app: Flask, formed_team: tuple[str, User, User], client: FlaskClient, alice: User
) -> None:
    teamid, bob, _dave = formed_team
    register_team(app, add_event(app), teamid, [alice, bob])
    client.get(f"/teams/{teamid}", headers=alice.headers)  # the connection is set up

    with counted_queries(app) as statements:
        response = client.get(f"/teams/{teamid}", headers=alice.headers)

    assert response.status_code == 200
    assert len(statements) == 2


# Renaming


@pytest.mark.parametrize("slash", ["", "/"])
@pytest.mark.parametrize("who", ["alice", "staff", "superuser"])
def test_the_leader_and_staff_who_update_rename_the_team(
    client: FlaskClient,
    formed_team: tuple[str, User, User],
    alice: User,
    staff: User,
    superuser: User,
    who: str,
    slash: str,
) -> None:
    teamid, _bob, _dave = formed_team
    callers = {"alice": alice, "staff": staff, "superuser": superuser}

    response = client.put(
        f"/teams/{teamid}{slash}", json={"name": " The Flockers "}, headers=callers[who].headers
    )

    assert response.status_code == 200
    assert response.get_json() == {
        "teamid": teamid,
        "name": "The Flockers",
        "leader": "alice",
        "members": ["bob"],
        "invitees": ["dave"],
        "events": [],
    }


@pytest.mark.parametrize("who", ["bob", "dave", "carol", "reader", "clerk"])
def test_members_invitees_strangers_and_staff_without_update_cannot_rename(
    app: Flask,
    client: FlaskClient,
    formed_team: tuple[str, User, User],
    carol: User,
    reader: User,
    clerk: User,
    who: str,
) -> None:
    teamid, bob, dave = formed_team
    callers = {"bob": bob, "dave": dave, "carol": carol, "reader": reader, "clerk": clerk}

    response = client.put(
        f"/teams/{teamid}", json={"name": "Taken over"}, headers=callers[who].headers
    )

    assert response.status_code == 403
    assert count(app, Team, Team.name == "The Gingers") == 1


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": 7}, {"name": "y" * 101}])
def test_a_bad_new_name_is_400_and_the_old_one_stays(
    app: Flask, client: FlaskClient, alice: User, body: dict[str, Any]
) -> None:
    teamid = create_team(client, alice)

    response = client.put(f"/teams/{teamid}", json=body, headers=alice.headers)

    assert response.status_code == 400
    assert "name" in response.get_json()["errors"]
    assert count(app, Team, Team.name == "The Gingers") == 1


def test_renaming_an_unknown_team_is_404(client: FlaskClient, alice: User) -> None:
    response = client.put("/teams/42", json={"name": "Ghosts"}, headers=alice.headers)

    assert response.status_code == 404


def test_renaming_with_deep_json_is_400_invalid_json(client: FlaskClient, alice: User) -> None:
    teamid = create_team(client, alice)

    response = client.put(
        f"/teams/{teamid}", data=DEEP_JSON, content_type="application/json", headers=alice.headers
    )

    assert response.status_code == 400
    assert response.get_json()["code"] == "invalid_json"


# Deleting


@pytest.mark.parametrize("slash", ["", "/"])
@pytest.mark.parametrize("who", ["alice", "staff", "superuser"])
def test_the_leader_and_staff_who_delete_delete_the_team_with_its_members_and_invitations(
    app: Flask,
    client: FlaskClient,
    formed_team: tuple[str, User, User],
    alice: User,
    staff: User,
    superuser: User,
    who: str,
    slash: str,
) -> None:
    teamid, _bob, _dave = formed_team
    callers = {"alice": alice, "staff": staff, "superuser": superuser}

    response = client.delete(f"/teams/{teamid}{slash}", headers=callers[who].headers)

    assert response.status_code == 204
    assert response.data == b""
    assert client.get(f"/teams/{teamid}", headers=staff.headers).status_code == 404
    assert (count(app, Team), count(app, TeamMember), count(app, Invitation)) == (0, 0, 0)


@pytest.mark.parametrize("who", ["bob", "dave", "carol", "reader", "clerk"])
def test_members_invitees_strangers_and_staff_without_delete_cannot_delete(
    app: Flask,
    client: FlaskClient,
    formed_team: tuple[str, User, User],
    carol: User,
    reader: User,
    clerk: User,
    who: str,
) -> None:
    teamid, bob, dave = formed_team
    callers = {"bob": bob, "dave": dave, "carol": carol, "reader": reader, "clerk": clerk}

    response = client.delete(f"/teams/{teamid}", headers=callers[who].headers)

    assert response.status_code == 403
    assert (count(app, Team), count(app, TeamMember), count(app, Invitation)) == (1, 1, 2)


def test_deleting_an_unknown_team_is_404(client: FlaskClient, alice: User) -> None:
    assert client.delete("/teams/42", headers=alice.headers).status_code == 404


def test_deleting_a_team_cancels_its_registrations_and_seats_the_waiting_list(
    app: Flask, client: FlaskClient, alice: User, bob: User, carol: User
) -> None:
    teamid = create_team(client, alice)
    join(client, alice, teamid, bob)
    full = add_event(app, capacity=1)
    other = add_event(app)
    seated = register_team(app, full, teamid, [alice, bob])
    elsewhere = register_team(app, other, teamid, [alice, bob])
    waiting = register_user(app, full, carol)
    assert count(app, Registration, Registration.id == waiting, Registration.status == WAITING)

    response = client.delete(f"/teams/{teamid}", headers=alice.headers)

    assert response.status_code == 204
    assert count(app, Registration, Registration.id.in_([seated, elsewhere])) == 0
    assert count(app, Participant, Participant.registration_id.in_([seated, elsewhere])) == 0
    promoted = (Registration.id == waiting, Registration.status == CONFIRMED)
    assert count(app, Registration, *promoted, Registration.holds_seat.is_(True)) == 1
    assert count(app, Event, Event.public_id == full, Event.seats_taken == 1) == 1
    assert count(app, Event, Event.public_id == other, Event.seats_taken == 1) == 0


# Listing


def make_teams(client: FlaskClient, leader: User, how_many: int) -> list[str]:
    return [create_team(client, leader, f"Team {number}") for number in range(how_many)]


@pytest.mark.parametrize("path", ["/teams", "/teams/"])
@pytest.mark.parametrize("who", ["staff", "superuser", "reader"])
def test_staff_who_read_list_teams_oldest_first(
    client: FlaskClient,
    formed_team: tuple[str, User, User],
    alice: User,
    staff: User,
    superuser: User,
    reader: User,
    who: str,
    path: str,
) -> None:
    teamid, _bob, _dave = formed_team
    second = create_team(client, alice, "Second")
    callers = {"staff": staff, "superuser": superuser, "reader": reader}

    response = client.get(path, headers=callers[who].headers)

    assert response.status_code == 200
    assert response.get_json() == {
        "pages": 1,
        "currentpage": 1,
        "result": [
            {
                "teamid": teamid,
                "name": "The Gingers",
                "leader": "alice",
                "members": ["bob"],
                "invitees": ["dave"],
                "events": [],
            },
            {
                "teamid": second,
                "name": "Second",
                "leader": "alice",
                "members": [],
                "invitees": [],
                "events": [],
            },
        ],
    }


@pytest.mark.parametrize("who", ["alice", "clerk"])
def test_normal_users_and_staff_without_read_cannot_list_teams(
    client: FlaskClient, alice: User, clerk: User, who: str
) -> None:
    callers = {"alice": alice, "clerk": clerk}

    response = client.get("/teams", headers=callers[who].headers)

    assert response.status_code == 403


def test_teams_are_paged_ten_by_default(client: FlaskClient, alice: User, staff: User) -> None:
    teamids = make_teams(client, alice, 23)

    first = client.get("/teams", headers=staff.headers).get_json()
    last = client.get("/teams?page=3", headers=staff.headers).get_json()
    sized = client.get("/teams?limit=5&page=2", headers=staff.headers).get_json()

    assert (first["pages"], first["currentpage"]) == (3, 1)
    assert [team["teamid"] for team in first["result"]] == teamids[:10]
    assert (last["currentpage"], [team["teamid"] for team in last["result"]]) == (3, teamids[20:])
    assert (sized["pages"], [team["teamid"] for team in sized["result"]]) == (5, teamids[5:10])


def test_a_page_past_the_end_is_400_with_the_page_body(
    client: FlaskClient, alice: User, staff: User
) -> None:
    make_teams(client, alice, 12)

    response = client.get("/teams?limit=5&page=4", headers=staff.headers)

    assert response.status_code == 400
    assert response.get_json() == {
        "message": "This page does not exist",
        "pageSize": 5,
        "noOfPages": 3,
    }


def test_no_teams_is_one_empty_page(client: FlaskClient, staff: User) -> None:
    response = client.get("/teams", headers=staff.headers)

    assert response.get_json() == {"pages": 1, "currentpage": 1, "result": []}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("page=0", "page"),
        ("page=-2", "page"),
        ("page=x", "page"),
        ("page=99999999999999999999", "page"),
        ("user=" + "u" * 151, "user"),
        ("event=" + "e" * 33, "event"),
        ("user=%00", "user"),
    ],
)
def test_bad_list_arguments_are_400_naming_them(
    client: FlaskClient, staff: User, query: str, field: str
) -> None:
    response = client.get(f"/teams?{query}", headers=staff.headers)

    assert response.status_code == 400
    assert field in response.get_json()["errors"]


def test_the_largest_page_is_100(client: FlaskClient, alice: User, staff: User) -> None:
    make_teams(client, alice, 3)

    response = client.get("/teams?limit=100", headers=staff.headers)

    assert response.status_code == 200
    assert len(response.get_json()["result"]) == 3


def test_teams_are_filtered_by_event_and_by_user(
    app: Flask, client: FlaskClient, alice: User, bob: User, auth: AuthServer, staff: User
) -> None:
    dave = auth.add_user("dave")
    led_by_alice = create_team(client, alice, "A")
    led_by_bob = create_team(client, bob, "B")
    bob_is_member = create_team(client, dave, "D")
    join(client, dave, bob_is_member, bob)
    public_id = add_event(app)
    register_team(app, public_id, led_by_alice, [alice])
    register_team(app, public_id, bob_is_member, [dave, bob])

    def listed(query: str) -> list[str]:
        body = client.get(f"/teams?{query}", headers=staff.headers).get_json()
        return [team["teamid"] for team in body["result"]]

    assert listed(f"event={public_id}") == [led_by_alice, bob_is_member]
    assert listed("user=bob") == [led_by_bob, bob_is_member]
    assert listed(f"user=bob&event={public_id}") == [bob_is_member]
    assert listed("user=nobody") == []
    assert listed("event=" + "0" * 32) == []


def test_a_page_of_teams_costs_the_same_queries_whatever_its_size(
    app: Flask, client: FlaskClient, alice: User, bob: User, staff: User
) -> None:
    def queries_for_a_page() -> int:
        with counted_queries(app) as statements:
            assert client.get("/teams?limit=100", headers=staff.headers).status_code == 200
        return len(statements)

    for teamid in make_teams(client, alice, 2):
        join(client, alice, teamid, bob)
    few = queries_for_a_page()
    for teamid in make_teams(client, bob, 8):
        register_team(app, add_event(app), teamid, [bob])

    assert queries_for_a_page() == few == 3
