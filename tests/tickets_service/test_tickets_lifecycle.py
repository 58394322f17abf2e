"""Following auth_service's users through the lifecycle stream: a deleted user's private
tickets go, their public ones stay by `deleted-user`; a renamed user's name follows.
Events are published by a real auth_service and consumed by the service's command."""

from __future__ import annotations

from typing import Any

import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from servicekit.streams import entry_fields
from servicekit.users import DEFAULT_USER_STREAM
from tests.real_auth import AuthServer, User
from tests.tickets_service.tickets_helpers import ids, open_ticket
from tickets_service.models import Comment, HandledUserEvent, Ticket, db


def consume(app: Flask) -> str:
    """Run `flask --app tickets_service consume-user-events --once`."""
    result = app.test_cli_runner().invoke(args=["consume-user-events", "--once", "--block", "0.1"])
    assert result.exit_code == 0, result.output
    return result.output


def reply(client: FlaskClient, user: User, ticket: dict[str, Any], content: str) -> None:
    path = f"/ticket/{ticket['ticketid']}/comments"
    assert client.post(path, json={"content": content}, headers=user.headers).status_code == 201


def close(client: FlaskClient, user: User, ticket: dict[str, Any], content: str) -> None:
    path = f"/ticket/{ticket['ticketid']}/close"
    assert client.put(path, json={"content": content}, headers=user.headers).status_code == 200


def authors(client: FlaskClient, ticket: dict[str, Any], user: User) -> list[str]:
    body = client.get(f"/ticket/{ticket['ticketid']}/comments", headers=user.headers).get_json()
    return [comment["author"] for comment in body["result"]]


def counts(app: Flask) -> tuple[int, int, int]:
    with app.app_context():
        return tuple(  # type: ignore[return-value]
            int(db.session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (Ticket, Comment, HandledUserEvent)
        )


def test_a_deleted_users_private_tickets_go_and_public_ones_stay_by_deleted_user(
    app: Flask, client: FlaskClient, auth: AuthServer, alice: User, bob: User, staff: User
) -> None:
    public = open_ticket(client, alice, "Parking?")
    private = open_ticket(client, alice, "My refund", view="private")
    others = open_ticket(client, bob, "Food?")
    for ticket in (public, private):
        reply(client, alice, ticket, "Any news?")
        reply(client, staff, ticket, "Looking into it")
    close(client, staff, public, "Lot C is free.")

    auth.delete("alice")
    consume(app)

    listed = client.get("/ticket", headers=staff.headers).get_json()["result"]
    assert ids({"result": listed}) == [others["ticketid"], public["ticketid"]]
    kept = listed[1]
    assert kept == {**public, "openedBy": "deleted-user", "solution": kept["solution"]}
    assert kept["solution"]["solvedBy"] == "staff_1"
    assert authors(client, public, staff) == ["deleted-user", "staff_1", "staff_1"]
    private_path = f"/ticket/{private['ticketid']}/comments"
    assert client.get(private_path, headers=staff.headers).status_code == 404
    assert client.get("/ticket/alice", headers=staff.headers).get_json()["result"] == []
    assert client.get("/ticket/public?q=parking").get_json()["result"] == [kept]
    assert counts(app)[:2] == (2, 3)  # two tickets; the public one's three comments


def test_a_deleted_staff_members_answers_stay_by_deleted_user(
    app: Flask, client: FlaskClient, auth: AuthServer, alice: User, staff: User, superuser: User
) -> None:
    ticket = open_ticket(client, alice, view="private")
    reply(client, staff, ticket, "Hello")
    close(client, staff, ticket, "Solved")

    auth.delete("staff_1")
    consume(app)

    (kept,) = client.get("/ticket/alice", headers=alice.headers).get_json()["result"]
    assert (kept["openedBy"], kept["solution"]["solvedBy"]) == ("alice", "deleted-user")
    assert authors(client, ticket, alice) == ["deleted-user", "deleted-user"]


def test_handling_the_deletion_twice_changes_nothing(
    app: Flask,
    client: FlaskClient,
    auth: AuthServer,
    alice: User,
    staff: User,
    redis_client: redis.Redis,
) -> None:
    open_ticket(client, alice, "Public")
    open_ticket(client, alice, "Private", view="private")
    auth.delete("alice")
    consume(app)
    before = client.get("/ticket", headers=staff.headers).get_json()
    counted = counts(app)

    # The same event again, as a relay that published it twice would.
    entries: Any = redis_client.xrange(DEFAULT_USER_STREAM)  # redis-py types every reply loosely
    (deleted,) = [
        {key.decode(): value.decode() for key, value in fields.items()}
        for _id, fields in entries
        if fields[b"type"] == b"user.deleted"
    ]
    redis_client.xadd(DEFAULT_USER_STREAM, entry_fields(deleted))
    output = consume(app)

    assert output.strip() == "1 entries handled"
    assert client.get("/ticket", headers=staff.headers).get_json() == before
    assert counts(app) == counted


def test_a_rename_follows_the_user(
    app: Flask, client: FlaskClient, auth: AuthServer, alice: User, staff: User
) -> None:
    ticket = open_ticket(client, alice, view="private")
    reply(client, alice, ticket, "Hi")
    other = open_ticket(client, staff, "Staff's own question")
    reply(client, staff, other, "Note")

    auth.change_profile("alice", username="alicia")
    consume(app)

    (renamed,) = client.get("/ticket/alicia", headers=staff.headers).get_json()["result"]
    assert renamed == {**ticket, "openedBy": "alicia"}
    assert authors(client, ticket, staff) == ["alicia"]
    assert client.get("/ticket/alice", headers=staff.headers).get_json()["result"] == []
    assert authors(client, other, staff) == ["staff_1"]


def test_other_events_change_nothing(
    app: Flask, client: FlaskClient, auth: AuthServer, alice: User, staff: User
) -> None:
    ticket = open_ticket(client, alice, view="private")
    auth.change_profile("alice", email="new@example.org")

    consume(app)

    assert client.get("/ticket/alice", headers=alice.headers).get_json()["result"] == [ticket]
    assert counts(app)[2] == 0  # nothing applied, nothing recorded
