"""Invitations and members: inviting, answering, withdrawing, removing and leaving."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from events_service.models import (
    ACCEPTED,
    PENDING,
    Invitation,
    Participant,
    Team,
    TeamMember,
)
from servicekit.testing import serve_wsgi
from tests.events_service.test_events_teams import (
    DEEP_JSON,
    add_event,
    count,
    create_team,
    join,
    participants,
    register_team,
    register_user,
)
from tests.real_auth import AuthServer, User


def invite(client: FlaskClient, leader: User, teamid: str, username: Any) -> Any:
    return client.post(
        f"/teams/{teamid}/invitations", json={"username": username}, headers=leader.headers
    )


def answer(client: FlaskClient, user: User, teamid: str, verb: str, slash: str = "/") -> Any:
    return client.put(
        f"/users/{user.username}/invitation/{teamid}/{verb}{slash}", headers=user.headers
    )


def team_of(client: FlaskClient, teamid: str, caller: User) -> dict[str, Any]:
    response = client.get(f"/teams/{teamid}", headers=caller.headers)
    assert response.status_code == 200
    body: dict[str, Any] = response.get_json()
    return body


@pytest.fixture
def teamid(client: FlaskClient, alice: User) -> str:
    """alice's team, nobody invited yet."""
    return create_team(client, alice)


@pytest.fixture
def clerk(auth: AuthServer) -> User:
    """Staff with every event privilege but read and update."""
    return auth.add_user("staff_clerk", role="staff", priv={"event": "cd"})


# Inviting


@pytest.mark.parametrize("slash", ["", "/"])
def test_the_leader_invites_a_user_of_their_college(
    app: Flask, client: FlaskClient, alice: User, bob: User, teamid: str, slash: str
) -> None:
    response = client.post(
        f"/teams/{teamid}/invitations{slash}", json={"username": "bob"}, headers=alice.headers
    )

    assert response.status_code == 201
    assert response.get_json() == {
        "teamid": teamid,
        "name": "The Gingers",
        "leader": "alice",
        "members": [],
        "invitees": ["bob"],
        "events": [],
    }
    stored = (Invitation.user_id == bob.public_id, Invitation.status == PENDING)
    assert count(app, Invitation, *stored) == 1


@pytest.mark.parametrize("college", ["college of engineering", "  COLLEGE OF ENGINEERING \t"])
def test_colleges_compare_ignoring_case_and_surrounding_spaces(
    client: FlaskClient, alice: User, auth: AuthServer, teamid: str, college: str
) -> None:
    auth.add_user("dave", college=college)

    response = invite(client, alice, teamid, "dave")

    assert response.status_code == 201
    assert response.get_json()["invitees"] == ["dave"]


@pytest.mark.parametrize("username", ["ghost", "Bob", "x" * 150, "carol "])
def test_an_unknown_username_is_refused(
    app: Flask, client: FlaskClient, alice: User, bob: User, carol: User, teamid: str, username: str
) -> None:
    response = invite(client, alice, teamid, username)

    assert response.status_code == 422
    assert response.get_json() == {"error": "Wrong Username"}
    assert count(app, Invitation) == 0


def test_a_disabled_account_is_a_wrong_username(
    app: Flask, client: FlaskClient, alice: User, auth: AuthServer, teamid: str
) -> None:
    auth.add_user("dave")
    auth.disable("dave")

    response = invite(client, alice, teamid, "dave")

    assert (response.status_code, response.get_json()) == (422, {"error": "Wrong Username"})
    assert count(app, Invitation) == 0


def test_a_leader_whose_account_was_disabled_is_told_so(
    app: Flask, client: FlaskClient, alice: User, bob: User, auth: AuthServer, teamid: str
) -> None:
    auth.disable("alice")

    response = invite(client, alice, teamid, "bob")

    assert response.status_code == 422
    assert response.get_json()["code"] == "unknown_user"
    assert response.get_json()["errors"] == {"leader": "unknown: 'alice'"}
    assert count(app, Invitation) == 0


def test_a_user_of_another_college_is_refused(
    app: Flask, client: FlaskClient, alice: User, carol: User, teamid: str
) -> None:
    response = invite(client, alice, teamid, "carol")

    assert (response.status_code, response.get_json()) == (422, {"error": "Not from same college"})
    assert count(app, Invitation) == 0


def test_inviting_twice_is_refused(
    app: Flask, client: FlaskClient, alice: User, bob: User, teamid: str
) -> None:
    invite(client, alice, teamid, "bob")

    response = invite(client, alice, teamid, "bob")

    assert (response.status_code, response.get_json()) == (422, {"error": "Already invited"})
    assert count(app, Invitation) == 1


def test_inviting_a_member_or_the_leader_is_refused(
    client: FlaskClient, alice: User, bob: User, teamid: str
) -> None:
    join(client, alice, teamid, bob)

    for username in ("bob", "alice"):
        response = invite(client, alice, teamid, username)
        assert (response.status_code, response.get_json()) == (422, {"error": "Already a member"})


def test_a_user_who_rejected_can_be_invited_again(
    app: Flask, client: FlaskClient, alice: User, bob: User, teamid: str
) -> None:
    invite(client, alice, teamid, "bob")
    assert answer(client, bob, teamid, "reject").status_code == 200

    response = invite(client, alice, teamid, "bob")

    assert response.status_code == 201
    assert response.get_json()["invitees"] == ["bob"]
    assert count(app, Invitation, Invitation.status == PENDING) == 1
    assert answer(client, bob, teamid, "accept").status_code == 200


def test_a_team_at_an_events_largest_size_invites_nobody_more(
    app: Flask, client: FlaskClient, alice: User, bob: User, auth: AuthServer, teamid: str
) -> None:
    auth.add_user("dave")
    join(client, alice, teamid, bob)
    public_id = add_event(app, max_size=2)
    register_team(app, public_id, teamid, [alice, bob])

    response = invite(client, alice, teamid, "dave")

    assert response.status_code == 422
    assert response.get_json() == {"error": f"Team is full for event {public_id}"}
    assert count(app, Invitation, Invitation.username == "dave") == 0


def test_pending_invitations_count_towards_the_largest_team(
    make_app: Callable[..., Flask], alice: User, bob: User, auth: AuthServer
) -> None:
    client = make_app(EVENTS_MAX_TEAM_SIZE=3).test_client()
    teamid = create_team(client, alice)
    auth.add_user("dave")
    erin = auth.add_user("erin")
    assert invite(client, alice, teamid, "bob").status_code == 201
    assert invite(client, alice, teamid, "dave").status_code == 201

    refused = invite(client, alice, teamid, "erin")
    withdrawn = client.delete(f"/teams/{teamid}/invitations/dave", headers=alice.headers)
    again = invite(client, alice, teamid, "erin")

    assert (refused.status_code, refused.get_json()) == (422, {"error": "Team is full"})
    assert withdrawn.status_code == 204
    assert again.status_code == 201
    assert answer(client, bob, teamid, "accept").status_code == 200
    assert answer(client, erin, teamid, "accept").status_code == 200
    assert team_of(client, teamid, alice)["members"] == ["bob", "erin"]
    assert invite(client, alice, teamid, "dave").get_json() == {"error": "Team is full"}


@pytest.mark.parametrize("who", ["bob", "carol", "staff", "superuser", "invitee"])
def test_only_the_leader_invites(
    app: Flask,
    client: FlaskClient,
    alice: User,
    bob: User,
    carol: User,
    staff: User,
    superuser: User,
    auth: AuthServer,
    teamid: str,
    who: str,
) -> None:
    join(client, alice, teamid, bob)
    dave = auth.add_user("dave")
    invite(client, alice, teamid, "dave")
    auth.add_user("erin")
    callers = {"bob": bob, "carol": carol, "staff": staff, "superuser": superuser, "invitee": dave}

    response = invite(client, callers[who], teamid, "erin")

    assert response.status_code == 403
    assert count(app, Invitation, Invitation.username == "erin") == 0


def test_inviting_to_an_unknown_team_is_404(client: FlaskClient, alice: User, bob: User) -> None:
    assert invite(client, alice, "77", "bob").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "username"),
        ({"username": ""}, "username"),
        ({"username": 5}, "username"),
        ({"username": None}, "username"),
        ({"username": ["bob"]}, "username"),
        ({"username": "b" * 151}, "username"),
        ({"username": "b" * 100_000}, "username"),
        ({"username": "bo\u0000b"}, "username"),
        ({"username": "bob", "status": "accepted"}, "status"),
    ],
)
def test_a_bad_invitation_body_is_400_naming_the_field(
    app: Flask, client: FlaskClient, alice: User, teamid: str, body: dict[str, Any], field: str
) -> None:
    response = client.post(f"/teams/{teamid}/invitations", json=body, headers=alice.headers)

    assert response.status_code == 400
    assert field in response.get_json()["errors"]
    assert count(app, Invitation) == 0


def test_a_deep_invitation_body_is_400_invalid_json(
    app: Flask, client: FlaskClient, alice: User, teamid: str
) -> None:
    response = client.post(
        f"/teams/{teamid}/invitations",
        data=DEEP_JSON,
        content_type="application/json",
        headers=alice.headers,
    )

    assert response.status_code == 400
    assert response.get_json()["code"] == "invalid_json"
    assert count(app, Invitation) == 0


def test_inviting_while_auth_service_is_down_is_503_and_stores_nothing(
    make_app: Callable[..., Flask], dead_url: str, alice: User, bob: User
) -> None:
    app = make_app(AUTH_SERVICE_URL=dead_url)
    client = app.test_client()
    teamid = create_team(client, alice)

    response = invite(client, alice, teamid, "bob")

    assert response.status_code == 503
    assert response.get_json()["code"] == "service_unavailable"
    assert response.headers["Retry-After"] == "5"
    assert count(app, Invitation) == 0


# A user's invitations


def test_a_user_sees_their_invitations_newest_first(
    client: FlaskClient, alice: User, bob: User, auth: AuthServer
) -> None:
    dave, erin = auth.add_user("dave"), auth.add_user("erin")
    rookies = create_team(client, alice, "The Rookies")
    sweet = create_team(client, dave, "The Sweet")
    musketeers = create_team(client, erin, "The Three Musketeers")
    join(client, alice, rookies, bob)
    invite(client, dave, sweet, "bob")
    answer(client, bob, sweet, "reject")
    invite(client, erin, musketeers, "bob")

    response = client.get("/users/bob/invitation", headers=bob.headers)

    assert response.status_code == 200
    assert response.get_json() == [
        {
            "teamid": musketeers,
            "name": "The Three Musketeers",
            "leader": "erin",
            "status": "pending",
        },
        {"teamid": sweet, "name": "The Sweet", "leader": "dave", "status": "rejected"},
        {"teamid": rookies, "name": "The Rookies", "leader": "alice", "status": "accepted"},
    ]


@pytest.mark.parametrize("slash", ["", "/"])
@pytest.mark.parametrize("who", ["staff", "superuser"])
def test_staff_who_read_see_anyones_invitations(
    client: FlaskClient,
    alice: User,
    bob: User,
    staff: User,
    superuser: User,
    teamid: str,
    who: str,
    slash: str,
) -> None:
    invite(client, alice, teamid, "bob")
    callers = {"staff": staff, "superuser": superuser}

    response = client.get(f"/users/bob/invitation{slash}", headers=callers[who].headers)

    assert response.status_code == 200
    assert response.get_json() == [
        {"teamid": teamid, "name": "The Gingers", "leader": "alice", "status": "pending"}
    ]


@pytest.mark.parametrize("who", ["alice", "carol", "clerk"])
def test_others_cannot_see_a_users_invitations(
    client: FlaskClient,
    alice: User,
    bob: User,
    carol: User,
    clerk: User,
    teamid: str,
    who: str,
) -> None:
    invite(client, alice, teamid, "bob")
    callers = {"alice": alice, "carol": carol, "clerk": clerk}

    response = client.get("/users/bob/invitation", headers=callers[who].headers)

    assert response.status_code == 403


def test_a_user_without_invitations_has_an_empty_list(client: FlaskClient, staff: User) -> None:
    for path in ("/users/staff_1/invitation", "/users/nobody/invitation", "/users/%00/invitation"):
        response = client.get(path, headers=staff.headers)
        assert (response.status_code, response.get_json()) == (200, [])


# Accepting and rejecting


@pytest.mark.parametrize("slash", ["", "/"])
def test_accepting_joins_the_team(
    app: Flask, client: FlaskClient, alice: User, bob: User, teamid: str, slash: str
) -> None:
    invite(client, alice, teamid, "bob")

    response = answer(client, bob, teamid, "accept", slash)

    assert response.status_code == 200
    assert response.get_json() == {
        "status": "invitation accepted",
        "teamid": teamid,
        "name": "The Gingers",
    }
    team = team_of(client, teamid, bob)
    assert (team["members"], team["invitees"]) == (["bob"], [])
    assert count(app, TeamMember, TeamMember.user_id == bob.public_id) == 1
    assert count(app, Invitation, Invitation.status == ACCEPTED) == 1


@pytest.mark.parametrize("slash", ["", "/"])
def test_rejecting_leaves_the_team_as_it_was(
    app: Flask, client: FlaskClient, alice: User, bob: User, teamid: str, slash: str
) -> None:
    invite(client, alice, teamid, "bob")

    response = answer(client, bob, teamid, "reject", slash)

    assert response.status_code == 200
    assert response.get_json() == {
        "status": "invitation rejected",
        "teamid": teamid,
        "name": "The Gingers",
    }
    team = team_of(client, teamid, alice)
    assert (team["members"], team["invitees"]) == ([], [])
    assert count(app, TeamMember) == 0


@pytest.mark.parametrize(
    ("first", "second", "error"),
    [
        ("accept", "accept", "Already Accepted"),
        ("accept", "reject", "Already Accepted"),
        ("reject", "reject", "Already Rejected"),
        ("reject", "accept", "Already Rejected"),
    ],
)
def test_an_answered_invitation_cannot_be_answered_again(
    app: Flask,
    client: FlaskClient,
    alice: User,
    bob: User,
    teamid: str,
    first: str,
    second: str,
    error: str,
) -> None:
    invite(client, alice, teamid, "bob")
    answer(client, bob, teamid, first)
    members = count(app, TeamMember)

    response = answer(client, bob, teamid, second)

    assert (response.status_code, response.get_json()) == (422, {"error": error})
    assert count(app, TeamMember) == members


@pytest.mark.parametrize("verb", ["accept", "reject"])
def test_answering_without_an_invitation_or_a_team_is_404(
    client: FlaskClient, alice: User, bob: User, teamid: str, verb: str
) -> None:
    assert answer(client, bob, teamid, verb).status_code == 404
    assert answer(client, bob, "404", verb).status_code == 404
    assert answer(client, bob, "x", verb).status_code == 404


@pytest.mark.parametrize("verb", ["accept", "reject"])
@pytest.mark.parametrize("who", ["alice", "carol", "staff", "superuser"])
def test_only_the_invited_user_answers(
    app: Flask,
    client: FlaskClient,
    alice: User,
    bob: User,
    carol: User,
    staff: User,
    superuser: User,
    teamid: str,
    who: str,
    verb: str,
) -> None:
    invite(client, alice, teamid, "bob")
    callers = {"alice": alice, "carol": carol, "staff": staff, "superuser": superuser}

    response = client.put(f"/users/bob/invitation/{teamid}/{verb}/", headers=callers[who].headers)

    assert response.status_code == 403
    assert count(app, Invitation, Invitation.status == PENDING) == 1


def test_a_member_joining_a_registered_team_takes_part_in_its_registrations(
    app: Flask, client: FlaskClient, alice: User, bob: User, auth: AuthServer, teamid: str
) -> None:
    dave = auth.add_user("dave")
    join(client, alice, teamid, bob)
    first = register_team(app, add_event(app), teamid, [alice, bob])
    second = register_team(app, add_event(app), teamid, [alice, bob])

    join(client, alice, teamid, dave)

    assert participants(app, first) == ["alice", "bob", "dave"]
    assert participants(app, second) == ["alice", "bob", "dave"]


def test_joining_is_refused_when_already_registered_for_one_of_the_teams_events(
    app: Flask, client: FlaskClient, alice: User, bob: User, auth: AuthServer, teamid: str
) -> None:
    dave = auth.add_user("dave")
    free, taken = add_event(app), add_event(app)
    register_team(app, free, teamid, [alice])
    registration = register_team(app, taken, teamid, [alice])
    other_team = create_team(client, dave, "Others")
    register_team(app, taken, other_team, [dave])
    invite(client, alice, teamid, "dave")

    response = answer(client, dave, teamid, "accept")

    assert response.status_code == 422
    assert response.get_json() == {"error": f"Already registered for event {taken}"}
    assert count(app, TeamMember) == 0
    assert count(app, Invitation, Invitation.status == PENDING) == 1
    assert participants(app, registration) == ["alice"]
    assert count(app, Participant, Participant.user_id == dave.public_id) == 1


def test_joining_is_refused_when_registered_alone(
    app: Flask, client: FlaskClient, alice: User, bob: User, teamid: str
) -> None:
    public_id = add_event(app)
    register_team(app, public_id, teamid, [alice])
    register_user(app, public_id, bob)
    invite(client, alice, teamid, "bob")

    response = answer(client, bob, teamid, "accept")

    assert response.get_json() == {"error": f"Already registered for event {public_id}"}
    assert count(app, TeamMember) == 0


def test_joining_a_team_at_an_events_largest_size_is_refused(
    app: Flask, client: FlaskClient, alice: User, bob: User, auth: AuthServer, teamid: str
) -> None:
    dave = auth.add_user("dave")
    invite(client, alice, teamid, "dave")
    join(client, alice, teamid, bob)
    public_id = add_event(app, max_size=2)
    registration = register_team(app, public_id, teamid, [alice, bob])

    response = answer(client, dave, teamid, "accept")

    assert response.status_code == 422
    assert response.get_json() == {"error": f"Team is full for event {public_id}"}
    assert team_of(client, teamid, alice)["members"] == ["bob"]
    assert participants(app, registration) == ["alice", "bob"]
    assert count(app, Invitation, Invitation.status == PENDING) == 1


# Withdrawing invitations


@pytest.mark.parametrize("slash", ["", "/"])
def test_the_leader_withdraws_a_pending_invitation(
    app: Flask, client: FlaskClient, alice: User, bob: User, teamid: str, slash: str
) -> None:
    invite(client, alice, teamid, "bob")

    response = client.delete(f"/teams/{teamid}/invitations/bob{slash}", headers=alice.headers)

    assert response.status_code == 204
    assert team_of(client, teamid, alice)["invitees"] == []
    assert count(app, Invitation) == 0
    assert answer(client, bob, teamid, "accept").status_code == 404


@pytest.mark.parametrize(
    ("verb", "error"),
    [(None, "Does not exist"), ("accept", "Already Accepted"), ("reject", "Already Rejected")],
)
def test_withdrawing_what_is_not_pending_is_refused_naming_why(
    app: Flask,
    client: FlaskClient,
    alice: User,
    bob: User,
    teamid: str,
    verb: str | None,
    error: str,
) -> None:
    if verb is not None:
        invite(client, alice, teamid, "bob")
        answer(client, bob, teamid, verb)

    response = client.delete(f"/teams/{teamid}/invitations/bob", headers=alice.headers)

    assert (response.status_code, response.get_json()) == (422, {"error": error})
    assert count(app, Invitation) == (0 if verb is None else 1)


def test_withdrawing_for_a_name_no_one_has_is_refused(
    client: FlaskClient, alice: User, teamid: str
) -> None:
    for name in ("ghost", "%00", "n" * 300):
        response = client.delete(f"/teams/{teamid}/invitations/{name}", headers=alice.headers)
        assert (response.status_code, response.get_json()) == (422, {"error": "Does not exist"})


@pytest.mark.parametrize("who", ["bob", "invitee", "carol", "staff", "superuser"])
def test_only_the_leader_withdraws_invitations(
    app: Flask,
    client: FlaskClient,
    alice: User,
    bob: User,
    carol: User,
    staff: User,
    superuser: User,
    auth: AuthServer,
    teamid: str,
    who: str,
) -> None:
    join(client, alice, teamid, bob)
    dave = auth.add_user("dave")
    invite(client, alice, teamid, "dave")
    callers = {"bob": bob, "invitee": dave, "carol": carol, "staff": staff, "superuser": superuser}

    response = client.delete(f"/teams/{teamid}/invitations/dave", headers=callers[who].headers)

    assert response.status_code == 403
    assert count(app, Invitation, Invitation.status == PENDING) == 1


def test_withdrawing_from_an_unknown_team_is_404(client: FlaskClient, alice: User) -> None:
    assert client.delete("/teams/55/invitations/bob", headers=alice.headers).status_code == 404


# Removing members and leaving


@pytest.fixture
def registered_team(app: Flask, client: FlaskClient, alice: User, bob: User, teamid: str) -> int:
    """alice's team with bob as member, registered for an event; the registration's id."""
    join(client, alice, teamid, bob)
    return register_team(app, add_event(app), teamid, [alice, bob])


@pytest.mark.parametrize("slash", ["", "/"])
@pytest.mark.parametrize("who", ["alice", "bob", "staff", "superuser"])
def test_the_leader_and_staff_who_update_remove_a_member_and_a_member_leaves(
    app: Flask,
    client: FlaskClient,
    alice: User,
    bob: User,
    staff: User,
    superuser: User,
    teamid: str,
    registered_team: int,
    who: str,
    slash: str,
) -> None:
    callers = {"alice": alice, "bob": bob, "staff": staff, "superuser": superuser}

    response = client.delete(f"/teams/{teamid}/bob{slash}", headers=callers[who].headers)

    assert response.status_code == 204
    assert team_of(client, teamid, alice)["members"] == []
    assert participants(app, registered_team) == ["alice"]
    assert client.get("/users/bob/invitation", headers=bob.headers).get_json() == []
    assert client.get(f"/teams/{teamid}", headers=bob.headers).status_code == 403


def test_a_member_who_left_can_be_invited_again(
    app: Flask, client: FlaskClient, alice: User, bob: User, teamid: str, registered_team: int
) -> None:
    client.delete(f"/teams/{teamid}/bob", headers=bob.headers)

    join(client, alice, teamid, bob)

    assert team_of(client, teamid, alice)["members"] == ["bob"]
    assert participants(app, registered_team) == ["alice", "bob"]


@pytest.mark.parametrize("who", ["dave", "carol", "reader", "clerk"])
def test_other_members_strangers_and_staff_without_update_cannot_remove_a_member(
    app: Flask,
    client: FlaskClient,
    alice: User,
    bob: User,
    carol: User,
    clerk: User,
    auth: AuthServer,
    teamid: str,
    registered_team: int,
    who: str,
) -> None:
    dave = auth.add_user("dave")
    join(client, alice, teamid, dave)
    reader = auth.add_user("staff_reader", role="staff", priv={"event": "r"})
    callers = {"dave": dave, "carol": carol, "reader": reader, "clerk": clerk}

    response = client.delete(f"/teams/{teamid}/bob", headers=callers[who].headers)

    assert response.status_code == 403
    assert team_of(client, teamid, alice)["members"] == ["bob", "dave"]
    assert participants(app, registered_team) == ["alice", "bob", "dave"]


@pytest.mark.parametrize("who", ["alice", "staff"])
def test_the_leader_cannot_be_removed(
    app: Flask,
    client: FlaskClient,
    alice: User,
    staff: User,
    teamid: str,
    registered_team: int,
    who: str,
) -> None:
    callers = {"alice": alice, "staff": staff}

    response = client.delete(f"/teams/{teamid}/alice", headers=callers[who].headers)

    assert response.status_code == 422
    assert response.get_json() == {
        "error": "The leader cannot leave the team: delete the team instead"
    }
    assert count(app, Team) == 1
    assert participants(app, registered_team) == ["alice", "bob"]


def test_removing_someone_who_is_not_a_member_is_refused(
    app: Flask, client: FlaskClient, alice: User, bob: User, carol: User, teamid: str
) -> None:
    invite(client, alice, teamid, "bob")

    for name in ("bob", "ghost", "%00", "n" * 300):
        response = client.delete(f"/teams/{teamid}/{name}", headers=alice.headers)
        assert (response.status_code, response.get_json()) == (422, {"error": "Not a member"})
    leaving = client.delete(f"/teams/{teamid}/carol", headers=carol.headers)
    assert (leaving.status_code, leaving.get_json()) == (422, {"error": "Not a member"})
    assert count(app, Invitation, Invitation.status == PENDING) == 1


def test_removing_from_an_unknown_team_is_404(client: FlaskClient, alice: User) -> None:
    assert client.delete("/teams/55/bob", headers=alice.headers).status_code == 404


def test_concurrent_acceptances_never_overfill_a_registered_team(
    app: Flask, client: FlaskClient, alice: User, auth: AuthServer, teamid: str
) -> None:
    invitees = [auth.add_user(f"dave_{number}") for number in range(10)]
    for invitee in invitees:
        assert invite(client, alice, teamid, invitee.username).status_code == 201
    public_id = add_event(app, max_size=2)
    registration = register_team(app, public_id, teamid, [alice])
    start = threading.Barrier(len(invitees))

    def accept(url: str, invitee: User) -> int:
        start.wait()
        path = f"/users/{invitee.username}/invitation/{teamid}/accept/"
        return requests.put(url + path, headers=invitee.headers, timeout=30).status_code

    with serve_wsgi(app) as url, ThreadPoolExecutor(len(invitees)) as pool:
        statuses = list(pool.map(lambda invitee: accept(url, invitee), invitees))

    assert sorted(statuses) == [200] + [422] * 9
    assert len(team_of(client, teamid, alice)["members"]) == 1
    assert len(participants(app, registration)) == 2
