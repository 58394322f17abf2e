"""A ticket's thread (`GET/POST /ticket/<ticketid>/comments`), closing and reopening, and
who may do each: anonymous, the opener, another user, staff."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.real_auth import User
from tests.tickets_service.tickets_helpers import open_ticket
from tickets_service.models import Comment, db


def comments_stored(app: Flask) -> int:
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(Comment)) or 0)


def reply(client: FlaskClient, user: User, ticket: dict[str, Any], content: str) -> Any:
    return client.post(
        f"/ticket/{ticket['ticketid']}/comments", json={"content": content}, headers=user.headers
    )


def thread(client: FlaskClient, ticket: dict[str, Any], user: User | None = None) -> Any:
    headers = user.headers if user else {}
    return client.get(f"/ticket/{ticket['ticketid']}/comments", headers=headers)


def close(client: FlaskClient, user: User, ticket: dict[str, Any], content: str) -> Any:
    return client.put(
        f"/ticket/{ticket['ticketid']}/close", json={"content": content}, headers=user.headers
    )


def reopen(client: FlaskClient, user: User | None, ticket: dict[str, Any]) -> Any:
    headers = user.headers if user else {}
    return client.put(f"/ticket/{ticket['ticketid']}/reopen", headers=headers)


# Replies


def test_the_opener_and_staff_reply_and_the_thread_reads_oldest_first(
    client: FlaskClient, alice: User, staff: User
) -> None:
    ticket = open_ticket(client, alice)

    asked = reply(client, alice, ticket, "Anyone?")
    answered = reply(client, staff, ticket, "Behind the library.")

    assert asked.status_code == answered.status_code == 201
    comment = answered.get_json()
    assert set(comment) == {"commentid", "author", "content", "createdAt"}
    assert re.fullmatch(r"[0-9]+", comment["commentid"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", comment["createdAt"])
    assert (comment["author"], comment["content"]) == ("staff_1", "Behind the library.")
    body = thread(client, ticket).get_json()
    assert body == {"pages": 1, "currentpage": 1, "result": [asked.get_json(), comment]}


@pytest.mark.parametrize("suffix", ["", "/"])
def test_trailing_slashes(client: FlaskClient, alice: User, suffix: str) -> None:
    ticket = open_ticket(client, alice)
    path = f"/ticket/{ticket['ticketid']}/comments{suffix}"

    posted = client.post(path, json={"content": "Hi"}, headers=alice.headers)

    assert posted.status_code == 201
    assert client.get(path).get_json()["result"] == [posted.get_json()]
    assert (
        client.put(
            f"/ticket/{ticket['ticketid']}/reopen{suffix}", headers=alice.headers
        ).status_code
        == 200
    )


def test_anyone_reads_a_public_thread(client: FlaskClient, alice: User, bob: User) -> None:
    ticket = open_ticket(client, alice)
    reply(client, alice, ticket, "More detail")

    for caller in (None, bob):
        response = thread(client, ticket, caller)
        assert response.status_code == 200
        assert len(response.get_json()["result"]) == 1


def test_a_private_thread_is_its_openers_and_staffs_only(
    client: FlaskClient, alice: User, bob: User, staff: User, superuser: User
) -> None:
    ticket = open_ticket(client, alice, view="private")
    reply(client, alice, ticket, "My card number is wrong")

    for caller in (alice, staff, superuser):
        assert thread(client, ticket, caller).get_json()["result"][0]["author"] == "alice"
    for stranger in (None, bob):
        response = thread(client, ticket, stranger)
        assert response.status_code == 404
        assert response.get_json()["code"] == "not_found"


def test_another_user_may_not_reply(
    app: Flask, client: FlaskClient, alice: User, bob: User
) -> None:
    public = open_ticket(client, alice)
    private = open_ticket(client, alice, view="private")

    assert reply(client, bob, public, "me too").status_code == 403
    assert reply(client, bob, private, "me too").status_code == 404
    assert (
        client.post(f"/ticket/{public['ticketid']}/comments", json={"content": "x"}).status_code
        == 401
    )
    assert comments_stored(app) == 0


@pytest.mark.parametrize("ticketid", ["999", "abc", "-1", "1.5", "99999999999999999999999", "٣"])
def test_unknown_tickets_are_404(
    client: FlaskClient, alice: User, staff: User, ticketid: str
) -> None:
    assert client.get(f"/ticket/{ticketid}/comments").status_code == 404
    path = f"/ticket/{ticketid}/comments"
    assert client.post(path, json={"content": "x"}, headers=staff.headers).status_code == 404
    path = f"/ticket/{ticketid}/close"
    assert client.put(path, json={"content": "x"}, headers=staff.headers).status_code == 404
    assert client.put(f"/ticket/{ticketid}/reopen", headers=staff.headers).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "content"),
        ({"content": ""}, "content"),
        ({"content": "  "}, "content"),
        ({"content": None}, "content"),
        ({"content": 5}, "content"),
        ({"content": ["a"]}, "content"),
        ({"content": "x" * 10_001}, "content"),
        ({"content": "x", "author": "staff_1"}, "author"),
    ],
)
def test_bad_replies_are_400_and_not_stored(
    app: Flask, client: FlaskClient, alice: User, body: dict[str, Any], field: str
) -> None:
    ticket = open_ticket(client, alice)
    path = f"/ticket/{ticket['ticketid']}/comments"

    response = client.post(path, json=body, headers=alice.headers)

    assert response.status_code == 400
    assert list(response.get_json()["errors"]) == [field]
    assert comments_stored(app) == 0


def test_a_deeply_nested_reply_is_400(app: Flask, client: FlaskClient, alice: User) -> None:
    ticket = open_ticket(client, alice)
    raw = b'{"content": ' + b"[" * 5000 + b"]" * 5000 + b"}"

    response = client.post(
        f"/ticket/{ticket['ticketid']}/comments",
        data=raw,
        content_type="application/json",
        headers=alice.headers,
    )

    assert (response.status_code, response.get_json()["code"]) == (400, "invalid_json")
    assert comments_stored(app) == 0


def test_thread_pages(client: FlaskClient, alice: User) -> None:
    ticket = open_ticket(client, alice)
    written = [reply(client, alice, ticket, f"note {n}").get_json() for n in range(3)]
    path = f"/ticket/{ticket['ticketid']}/comments"

    second = client.get(f"{path}?limit=2&page=2").get_json()
    past = client.get(f"{path}?limit=2&page=3")

    assert second == {"pages": 2, "currentpage": 2, "result": written[2:]}
    assert past.status_code == 400
    assert past.get_json() == {"message": "This page does not exist", "pageSize": 2, "noOfPages": 2}
    assert client.get(f"{path}?limit=101").status_code == 400


@pytest.mark.parametrize("app_config", [{"TICKET_COMMENTS_PER_HOUR": 2}], indirect=True)
def test_at_most_n_replies_per_user_and_hour_staff_unlimited(
    app: Flask, client: FlaskClient, alice: User, staff: User
) -> None:
    ticket = open_ticket(client, alice)
    for n in range(2):
        assert reply(client, alice, ticket, f"note {n}").status_code == 201

    refused = reply(client, alice, ticket, "one more")

    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert comments_stored(app) == 2
    for n in range(3):
        assert reply(client, staff, ticket, f"answer {n}").status_code == 201


# Closing


@pytest.mark.parametrize("suffix", ["", "/"])
def test_staff_close_a_ticket_and_the_solution_joins_the_thread(
    client: FlaskClient, alice: User, staff: User, suffix: str
) -> None:
    ticket = open_ticket(client, alice, view="private")

    response = client.put(
        f"/ticket/{ticket['ticketid']}/close{suffix}",
        json={"content": "This is my solution"},
        headers=staff.headers,
    )

    assert response.status_code == 200
    solved = response.get_json()
    assert solved == {
        **ticket,
        "solution": {
            "status": "solved",
            "solvedBy": "staff_1",
            "solvingDate": ticket["openingDate"],
            "content": "This is my solution",
        },
    }
    (entry,) = thread(client, ticket, alice).get_json()["result"]
    assert (entry["author"], entry["content"]) == ("staff_1", "This is my solution")


def test_only_staff_close(client: FlaskClient, alice: User, bob: User) -> None:
    ticket = open_ticket(client, alice)

    assert close(client, alice, ticket, "solved myself").status_code == 403
    assert close(client, bob, ticket, "solved").status_code == 403
    path = f"/ticket/{ticket['ticketid']}/close"
    assert client.put(path, json={"content": "x"}).status_code == 401
    assert client.get("/ticket/public").get_json()["result"][0]["solution"] == {
        "status": "unsolved"
    }


@pytest.mark.parametrize("body", [{}, {"content": ""}, {"content": 1}, {"content": None}])
def test_closing_needs_content(
    app: Flask, client: FlaskClient, alice: User, staff: User, body: dict[str, Any]
) -> None:
    ticket = open_ticket(client, alice)

    response = client.put(f"/ticket/{ticket['ticketid']}/close", json=body, headers=staff.headers)

    assert response.status_code == 400
    assert list(response.get_json()["errors"]) == ["content"]
    assert comments_stored(app) == 0


def test_closing_again_with_the_same_solution_changes_nothing(
    client: FlaskClient, alice: User, staff: User, superuser: User
) -> None:
    ticket = open_ticket(client, alice)
    first = close(client, staff, ticket, "Answer").get_json()

    again = close(client, superuser, ticket, "Answer")
    corrected = close(client, superuser, ticket, "Better answer").get_json()

    assert again.get_json() == first
    assert corrected["solution"]["content"] == "Better answer"
    assert corrected["solution"]["solvedBy"] == "root_1"
    contents = [c["content"] for c in thread(client, ticket).get_json()["result"]]
    assert contents == ["Answer", "Better answer"]


# Reopening


def test_the_opener_or_staff_reopen_a_solved_ticket_keeping_its_thread(
    client: FlaskClient, alice: User, staff: User
) -> None:
    ticket = open_ticket(client, alice)
    for reopener in (alice, staff):
        close(client, staff, ticket, "Try this")

        response = reopen(client, reopener, ticket)

        assert response.status_code == 200
        assert response.get_json() == {**ticket, "solution": {"status": "unsolved"}}
    contents = [c["content"] for c in thread(client, ticket).get_json()["result"]]
    assert contents == ["Try this", "Try this"]
    listed = client.get("/ticket/public?status=unsolved").get_json()["result"]
    assert [t["ticketid"] for t in listed] == [ticket["ticketid"]]


def test_reopening_an_unsolved_ticket_changes_nothing(client: FlaskClient, alice: User) -> None:
    ticket = open_ticket(client, alice)

    response = reopen(client, alice, ticket)

    assert (response.status_code, response.get_json()) == (200, ticket)


def test_others_may_not_reopen(client: FlaskClient, alice: User, bob: User, staff: User) -> None:
    public = open_ticket(client, alice)
    private = open_ticket(client, alice, view="private")
    for ticket in (public, private):
        close(client, staff, ticket, "Done")

    assert reopen(client, bob, public).status_code == 403
    assert reopen(client, bob, private).status_code == 404
    assert reopen(client, None, public).status_code == 401
    solved = client.get("/ticket", headers=staff.headers).get_json()["result"]
    assert {t["solution"]["status"] for t in solved} == {"solved"}
