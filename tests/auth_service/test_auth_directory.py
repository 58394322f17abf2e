"""`POST /internal/users/lookup`: the user directory other services resolve users with."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event

from auth_service.models import User, db
from gateway.routes import ROUTES
from gateway.routing import RouteTable
from servicekit.testing import TestKeys
from servicekit.users import MAX_LOOKUP, MAX_NAME_LENGTH
from tests.auth_service.auth_helpers import PASSWORD, bearer, set_user

PATH = "/internal/users/lookup"
SECRET = "test-secret"
DIRECTORY_KEYS = {
    "publicId", "username", "firstName", "lastName", "email", "collegeName", "role", "isActive",
    "dateJoined", "lastLogin",
}  # fmt: skip

AddUser = Callable[..., str]


@pytest.fixture
def service_headers(client: FlaskClient) -> dict[str, str]:
    response = client.post(
        "/internal/service-token", json={"service": "events"}, headers={"X-Service-Secret": SECRET}
    )
    assert response.status_code == 200
    return bearer(response.get_json()["access"])


@pytest.fixture
def lookup(
    client: FlaskClient, service_headers: dict[str, str]
) -> Callable[..., tuple[int, dict[str, Any]]]:
    def call(**body: Any) -> tuple[int, dict[str, Any]]:
        response = client.post(PATH, json=body, headers=service_headers)
        return response.status_code, response.get_json()

    return call


@contextmanager
def counted_statements(app: Flask) -> Iterator[list[str]]:
    """The SQL statements the app's engine runs inside the block."""
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_a_service_resolves_usernames_and_public_ids(add_user: AddUser, lookup: Any) -> None:
    alice = add_user("alice", first_name="Alice", last_name="Liddell", college_name="IIIT Sri City")
    bob = add_user("bob", role="staff", email=None)

    status, body = lookup(usernames=["alice", "ghost"], publicIds=[bob, "0000000000000000"])

    assert status == 200
    assert body["unknown"] == {"usernames": ["ghost"], "publicIds": ["0000000000000000"]}
    for user in body["users"]:
        assert datetime.fromisoformat(user.pop("dateJoined")).tzinfo is not None
        assert user.pop("lastLogin") is None  # neither has signed in
    assert body["users"] == [
        {
            "publicId": alice,
            "username": "alice",
            "firstName": "Alice",
            "lastName": "Liddell",
            "email": "alice@example.org",
            "collegeName": "IIIT Sri City",
            "role": "normal",
            "isActive": True,
        },
        {
            "publicId": bob,
            "username": "bob",
            "firstName": "",
            "lastName": "",
            "email": None,
            "collegeName": "",
            "role": "staff",
            "isActive": True,
        },
    ]


def test_the_join_and_last_login_times_are_the_stored_ones(
    app: Flask, client: FlaskClient, add_user: AddUser, lookup: Any, listing: Any
) -> None:
    alice = add_user("alice")
    _, before = lookup(usernames=["alice"])
    signed_in = client.post("/auth/token/", json={"username": "alice", "password": PASSWORD})
    assert signed_in.status_code == 200
    _, after = lookup(publicIds=[alice])
    _, listed = listing(LIST_PATH)

    with app.app_context():
        stored = db.session.scalars(db.select(User).where(User.public_id == alice)).one()
        joined, last_login = stored.date_joined, stored.last_login
    assert last_login is not None
    assert before["users"][0]["lastLogin"] is None
    for user in (before["users"][0], after["users"][0], listed["users"][0]):
        assert datetime.fromisoformat(user["dateJoined"]) == joined
    for user in (after["users"][0], listed["users"][0]):
        assert datetime.fromisoformat(user["lastLogin"]) == last_login


def test_a_disabled_account_is_listed_as_inactive(
    app: Flask, add_user: AddUser, lookup: Any
) -> None:
    add_user("carol")
    set_user(app, "carol", is_active=False)

    status, body = lookup(usernames=["carol"])

    assert status == 200
    assert [(user["username"], user["isActive"]) for user in body["users"]] == [("carol", False)]


def test_each_user_is_listed_once_and_each_unknown_name_once(
    add_user: AddUser, lookup: Any
) -> None:
    alice = add_user("alice")

    status, body = lookup(usernames=["alice", "alice", "nobody", "nobody"], publicIds=[alice])

    assert status == 200
    assert [user["publicId"] for user in body["users"]] == [alice]
    assert body["unknown"] == {"usernames": ["nobody"], "publicIds": []}


def test_usernames_match_exactly_as_at_login(add_user: AddUser, lookup: Any) -> None:
    add_user("alice")

    status, body = lookup(usernames=["Alice", "ALICE", " alice", "alice "])

    assert status == 200
    assert body["users"] == []
    assert body["unknown"]["usernames"] == ["Alice", "ALICE", " alice", "alice "]


def test_a_full_batch_is_one_sql_query(app: Flask, add_user: AddUser, lookup: Any) -> None:
    public_ids = [add_user(f"user_{n}") for n in range(3)]
    usernames = [f"user_{n}" for n in range(MAX_LOOKUP // 2)]
    ids = [*public_ids, *(f"{n:016x}" for n in range(MAX_LOOKUP // 2 - 3))]

    with counted_statements(app) as statements:
        status, body = lookup(usernames=usernames, publicIds=ids)

    assert status == 200
    assert len(body["users"]) == 3
    assert len(body["unknown"]["usernames"]) == MAX_LOOKUP // 2 - 3
    assert len(statements) == 1, statements


def test_names_no_column_can_hold_are_unknown(add_user: AddUser, lookup: Any) -> None:
    """PostgreSQL refuses NUL characters and lone surrogates as parameters: they never
    reach the query, and are answered like any name without a user."""
    add_user("alice")
    odd = ["ali\x00ce", "\ud800", ""]

    status, body = lookup(usernames=["alice", *odd], publicIds=["\x00"])

    assert status == 200
    assert [user["username"] for user in body["users"]] == ["alice"]
    assert body["unknown"] == {"usernames": odd, "publicIds": ["\x00"]}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "usernames"),
        ({"usernames": [], "publicIds": []}, "usernames"),
        ({"usernames": ["u"] * (MAX_LOOKUP + 1)}, "usernames"),
        ({"usernames": ["u"] * MAX_LOOKUP, "publicIds": ["p"]}, "usernames"),
        ({"usernames": "alice"}, "usernames"),
        ({"usernames": [7]}, "usernames[0]"),
        ({"usernames": [None]}, "usernames[0]"),
        ({"publicIds": ["x" * (MAX_NAME_LENGTH + 1)]}, "publicIds[0]"),
        ({"usernames": ["alice"], "role": "staff"}, "role"),
    ],
)
def test_bad_lookups_are_400_naming_the_field(
    client: FlaskClient, service_headers: dict[str, str], body: dict[str, Any], field: str
) -> None:
    response = client.post(PATH, json=body, headers=service_headers)

    assert response.status_code == 400
    answer = response.get_json()
    assert answer["code"] == "validation_error"
    assert field in answer["errors"]


def test_a_body_that_is_not_json_is_400(
    client: FlaskClient, service_headers: dict[str, str]
) -> None:
    response = client.post(
        PATH, data="{usernames", headers={**service_headers, "Content-Type": "application/json"}
    )

    assert response.status_code == 400
    assert response.is_json


def test_the_largest_batch_is_served(lookup: Any) -> None:
    status, body = lookup(usernames=[f"u{n}" for n in range(MAX_LOOKUP)])

    assert status == 200
    assert len(body["unknown"]["usernames"]) == MAX_LOOKUP


def test_without_a_token_it_is_401_before_the_body_is_read(client: FlaskClient) -> None:
    for headers in ({}, {"X-Service-Secret": SECRET}):
        response = client.post(PATH, json={"usernames": [1]}, headers=headers)

        assert response.status_code == 401
        assert response.get_json()["code"] == "unauthorized"


@pytest.mark.parametrize("role", ["normal", "staff", "superuser"])
def test_a_user_token_is_403_whatever_the_role(
    client: FlaskClient, add_user: AddUser, token_for: Callable[..., str], role: str
) -> None:
    add_user("someone", role=role)

    response = client.post(
        PATH, json={"usernames": ["someone"]}, headers=bearer(token_for("someone"))
    )

    assert response.status_code == 403
    assert response.get_json()["code"] == "forbidden"
    assert "users" not in response.get_json()


def test_a_service_token_of_another_signer_is_401(client: FlaskClient) -> None:
    forged = TestKeys().token(sub="service:events", username="", role="service")

    response = client.post(PATH, json={"usernames": ["x"]}, headers=bearer(forged))

    assert response.status_code == 401


def test_the_gateway_does_not_route_it() -> None:
    match, allowed = RouteTable(ROUTES).match("POST", PATH)

    assert match is None
    assert allowed == set()


# GET /internal/users: every user, a page at a time

LIST_PATH = "/internal/users"


@pytest.fixture
def listing(
    client: FlaskClient, service_headers: dict[str, str]
) -> Callable[..., tuple[int, dict[str, Any]]]:
    def call(path: str = LIST_PATH, **params: Any) -> tuple[int, dict[str, Any]]:
        response = client.get(path, query_string=params, headers=service_headers)
        return response.status_code, response.get_json()

    return call


def test_a_service_lists_every_user_a_page_at_a_time(
    app: Flask, add_user: AddUser, listing: Any, lookup: Any
) -> None:
    public_ids = sorted(add_user(f"user_{n}") for n in range(5))
    set_user(app, "user_3", is_active=False)

    pages: list[list[dict[str, Any]]] = []
    after: str | None = None
    while True:
        status, body = listing(limit=2, **({} if after is None else {"after": after}))
        assert status == 200
        pages.append(body["users"])
        after = body["next"]
        if after is None:
            break

    assert [len(page) for page in pages] == [2, 2, 1]
    users = [user for page in pages for user in page]
    assert [user["publicId"] for user in users] == public_ids
    _, looked_up = lookup(publicIds=public_ids)
    assert sorted(users, key=lambda user: user["username"]) == looked_up["users"]
    assert {user["username"]: user["isActive"] for user in users}["user_3"] is False


def test_a_page_that_ends_the_listing_has_no_next(add_user: AddUser, listing: Any) -> None:
    add_user("alice")
    add_user("bob")

    status, body = listing(limit=2)

    assert status == 200
    assert len(body["users"]) == 2
    assert body["next"] is None


def test_the_default_page_is_500_users_with_and_without_a_slash(
    add_user: AddUser, listing: Any
) -> None:
    alice = add_user("alice")

    for path in (LIST_PATH, LIST_PATH + "/"):
        status, body = listing(path)

        assert status == 200
        assert body == {"users": [body["users"][0]], "next": None}
        assert body["users"][0]["publicId"] == alice
        assert set(body["users"][0]) == DIRECTORY_KEYS


def test_the_cursor_need_not_be_a_user_any_more(add_user: AddUser, listing: Any) -> None:
    public_ids = sorted(add_user(f"user_{n}") for n in range(3))
    gone = public_ids[1][:-1] + ("0" if public_ids[1][-1] != "0" else "1")

    status, body = listing(after=gone)

    assert status == 200
    expected = [public_id for public_id in public_ids if public_id > gone]
    assert [user["publicId"] for user in body["users"]] == expected


def test_an_empty_directory_is_one_empty_page(listing: Any) -> None:
    assert listing() == (200, {"users": [], "next": None})


def test_a_page_is_one_sql_query(app: Flask, add_user: AddUser, listing: Any) -> None:
    for n in range(4):
        add_user(f"user_{n}")

    with counted_statements(app) as statements:
        status, body = listing(limit=3)

    assert status == 200
    assert len(body["users"]) == 3
    assert len(statements) == 1, statements


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"after": ""}, "after"),
        ({"after": "ab\x00cd"}, "after"),
        ({"after": "x" * (MAX_NAME_LENGTH + 1)}, "after"),
        ({"role": "staff"}, "role"),
    ],
)
def test_bad_listings_are_400_naming_the_parameter(
    listing: Any, params: dict[str, str], field: str
) -> None:
    status, body = listing(**params)

    assert status == 400
    assert body["code"] == "validation_error"
    assert field in body["errors"]


def test_the_largest_page_is_served(add_user: AddUser, listing: Any) -> None:
    add_user("alice")

    status, body = listing(limit=1000)

    assert status == 200
    assert len(body["users"]) == 1


def test_listing_without_a_token_is_401(client: FlaskClient) -> None:
    response = client.get(LIST_PATH)

    assert response.status_code == 401
    assert response.get_json()["code"] == "unauthorized"


@pytest.mark.parametrize("role", ["normal", "staff", "superuser"])
def test_listing_with_a_user_token_is_403_whatever_the_role(
    client: FlaskClient, add_user: AddUser, token_for: Callable[..., str], role: str
) -> None:
    add_user("someone", role=role)

    response = client.get(LIST_PATH, headers=bearer(token_for("someone")))

    assert response.status_code == 403
    assert response.get_json()["code"] == "forbidden"
    assert "users" not in response.get_json()


def test_the_gateway_does_not_route_the_listing() -> None:
    for path in (LIST_PATH, LIST_PATH + "/"):
        match, allowed = RouteTable(ROUTES).match("GET", path)

        assert match is None
        assert allowed == set()
