"""Categories and tags: listed by anyone, written by staff with the `event` privilege."""

from __future__ import annotations

from datetime import date, time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import insert, select

from events_service.models import Category, Event, Tag, db, event_categories, event_tags
from tests.real_auth import AuthServer, User

KINDS = ["category", "tags"]
MESSAGES = {
    "category": {
        "exists": "This category already exist.",
        "missing": "Category does not exist.",
        "missing_on_delete": "This category does not exist.",
        "in_use": "Cant delete a category that is in use.",
    },
    "tags": {
        "exists": "Tag already exist.",
        "missing": "Tag does not exist.",
        "missing_on_delete": "This tag does not exist.",
        "in_use": "Cant delete a tag that is in use.",
    },
}


def names(client: FlaskClient, kind: str) -> list[str]:
    return [entry["name"] for entry in client.get(f"/events/{kind}").get_json()]


def baseline(kind: str) -> list[str]:
    """What a fresh database lists: the category Others, no tag."""
    return ["Others"] if kind == "category" else []


def add(client: FlaskClient, user: User, kind: str, name: str, description: str = "") -> Any:
    return client.post(
        f"/events/{kind}", json={"name": name, "description": description}, headers=user.headers
    )


def link_to_an_event(app: Flask, kind: str, name: str) -> None:
    """An event of the database uses the entry (events are made by their own routes)."""
    model = Category if kind == "category" else Tag
    table = event_categories if kind == "category" else event_tags
    column = "category_id" if kind == "category" else "tag_id"
    with app.app_context():
        event = Event(
            public_id="linked", name="E", name_key="e", date=date(2030, 1, 1), time=time(9, 0)
        )
        db.session.add(event)
        db.session.flush()
        entry_id = db.session.scalar(select(model.id).where(model.name_key == name.casefold()))
        db.session.execute(insert(table).values({"event_id": event.id, column: entry_id}))
        db.session.commit()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("slash", ["", "/"])
def test_anyone_lists_them_by_name(client: FlaskClient, staff: User, kind: str, slash: str) -> None:
    for name, description in [("zeta", "last"), ("Alpha One", "first"), ("beta", "")]:
        assert add(client, staff, kind, name, description).status_code == 201

    response = client.get(f"/events/{kind}{slash}")

    assert response.status_code == 200
    listed = response.get_json()
    expected = [
        {"name": "Alpha One", "description": "first"},
        {"name": "beta", "description": ""},
        {"name": "zeta", "description": "last"},
    ]
    if kind == "category":
        expected.insert(2, {"name": "Others", "description": listed[2]["description"]})
    assert listed == expected


def test_others_exists_from_the_start(client: FlaskClient) -> None:
    assert names(client, "category") == ["Others"]
    assert client.get("/events/tags").get_json() == []


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("slash", ["", "/"])
def test_staff_create_one(client: FlaskClient, staff: User, kind: str, slash: str) -> None:
    response = client.post(
        f"/events/{kind}{slash}",
        json={"name": "  Coding Event ", "description": "Code, Code and code."},
        headers=staff.headers,
    )

    assert response.status_code == 201
    assert response.get_json() == {"name": "Coding Event", "description": "Code, Code and code."}
    assert "Coding Event" in names(client, kind)


@pytest.mark.parametrize("kind", KINDS)
def test_the_description_is_optional(client: FlaskClient, staff: User, kind: str) -> None:
    response = client.post(f"/events/{kind}", json={"name": "Free"}, headers=staff.headers)

    assert response.status_code == 201
    assert response.get_json() == {"name": "Free", "description": ""}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("again", ["Hackathon", "hackathon", " HACKATHON  "])
def test_an_existing_name_ignoring_case_is_refused(
    client: FlaskClient, staff: User, kind: str, again: str
) -> None:
    add(client, staff, kind, "Hackathon", "first")

    response = add(client, staff, kind, again, "second")

    assert response.status_code == 422
    assert response.get_json() == {"error": MESSAGES[kind]["exists"]}
    assert client.get(f"/events/{kind}").get_json()[0] == {
        "name": "Hackathon",
        "description": "first",
    }


def test_others_cannot_be_created_again(client: FlaskClient, staff: User) -> None:
    response = add(client, staff, "category", "others")

    assert response.status_code == 422
    assert response.get_json() == {"error": MESSAGES["category"]["exists"]}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": 5}, "name"),
        ({"name": None}, "name"),
        ({"name": ["a"]}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "ß" * 60}, "name"),  # 120 characters once folded
        ({"name": "a/b"}, "name"),
        ({"name": "tab\there"}, "name"),
        ({"name": "ok", "description": 3}, "description"),
        ({"name": "ok", "description": None}, "description"),
        ({"name": "ok", "description": "d" * 10_001}, "description"),
        ({"name": "ok", "colour": "red"}, "colour"),
    ],
)
def test_bad_input_is_400_naming_the_field_and_stores_nothing(
    client: FlaskClient, staff: User, kind: str, body: dict[str, Any], field: str
) -> None:
    response = client.post(f"/events/{kind}", json=body, headers=staff.headers)

    assert response.status_code == 400
    assert field in response.get_json()["errors"]
    assert names(client, kind) == baseline(kind)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "raw",
    [b"[" * 10_000 + b"]" * 10_000, b'{"name": ' + b"9" * 5000 + b"}", b"{nope"],
    ids=["deep", "huge-integer", "malformed"],
)
def test_bodies_that_are_not_json_are_400_invalid_json(
    client: FlaskClient, staff: User, kind: str, raw: bytes
) -> None:
    response = client.post(
        f"/events/{kind}", data=raw, content_type="application/json", headers=staff.headers
    )

    assert response.status_code == 400
    assert response.get_json()["code"] == "invalid_json"
    assert names(client, kind) == baseline(kind)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("slash", ["", "/"])
def test_staff_change_a_description_by_name_with_spaces_in_any_case(
    client: FlaskClient, staff: User, kind: str, slash: str
) -> None:
    add(client, staff, kind, "Prime Event", "old")

    response = client.put(
        f"/events/{kind}/prime%20EVENT{slash}",
        json={"description": "Very difficult to win prizes in it."},
        headers=staff.headers,
    )

    assert response.status_code == 202
    assert response.get_json() == {
        "name": "Prime Event",
        "description": "Very difficult to win prizes in it.",
    }
    assert {"name": "Prime Event", "description": "Very difficult to win prizes in it."} in (
        client.get(f"/events/{kind}").get_json()
    )


@pytest.mark.parametrize("kind", KINDS)
def test_changing_an_unknown_one_is_the_document_s_422(
    client: FlaskClient, staff: User, kind: str
) -> None:
    response = client.put(
        f"/events/{kind}/nothing", json={"description": "x"}, headers=staff.headers
    )

    assert response.status_code == 422
    assert response.get_json() == {"error": MESSAGES[kind]["missing"]}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "body", [{}, {"description": 5}, {"description": None}, {"description": "x", "name": "y"}]
)
def test_a_bad_description_is_400_and_changes_nothing(
    client: FlaskClient, staff: User, kind: str, body: dict[str, Any]
) -> None:
    add(client, staff, kind, "Free", "kept")

    response = client.put(f"/events/{kind}/Free", json=body, headers=staff.headers)

    assert response.status_code == 400
    assert response.get_json()["code"] == "validation_error"
    assert {"name": "Free", "description": "kept"} in client.get(f"/events/{kind}").get_json()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("slash", ["", "/"])
def test_staff_delete_an_unused_one(
    client: FlaskClient, staff: User, kind: str, slash: str
) -> None:
    add(client, staff, kind, "Old Thing")

    response = client.delete(f"/events/{kind}/old%20thing{slash}", headers=staff.headers)

    assert response.status_code == 204
    assert response.data == b""
    assert names(client, kind) == baseline(kind)


@pytest.mark.parametrize("kind", KINDS)
def test_deleting_an_unknown_one_is_422(client: FlaskClient, staff: User, kind: str) -> None:
    response = client.delete(f"/events/{kind}/nothing", headers=staff.headers)

    assert response.status_code == 422
    assert response.get_json() == {"error": MESSAGES[kind]["missing_on_delete"]}


@pytest.mark.parametrize("kind", KINDS)
def test_one_in_use_is_not_deleted(app: Flask, client: FlaskClient, staff: User, kind: str) -> None:
    add(client, staff, kind, "Coding")
    link_to_an_event(app, kind, "Coding")

    response = client.delete(f"/events/{kind}/Coding", headers=staff.headers)

    assert response.status_code == 422
    assert response.get_json() == {"error": MESSAGES[kind]["in_use"]}
    assert "Coding" in names(client, kind)


def test_others_is_never_deleted(client: FlaskClient, superuser: User) -> None:
    response = client.delete("/events/category/Others", headers=superuser.headers)

    assert response.status_code == 422
    assert response.get_json() == {
        "error": "The category Others cannot be deleted: events without a category are in it."
    }
    assert names(client, "category") == ["Others"]


# Who may write


def write(client: FlaskClient, method: str, kind: str, headers: dict[str, str]) -> Any:
    if method == "POST":
        return client.post(f"/events/{kind}", json={"name": "New"}, headers=headers)
    if method == "PUT":
        return client.put(f"/events/{kind}/Seeded", json={"description": "d"}, headers=headers)
    return client.delete(f"/events/{kind}/Seeded", headers=headers)


ACTIONS = {"POST": "c", "PUT": "u", "DELETE": "d"}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_who_may_write(
    client: FlaskClient,
    auth: AuthServer,
    staff: User,
    superuser: User,
    alice: User,
    kind: str,
    method: str,
) -> None:
    add(client, staff, kind, "Seeded")
    action = ACTIONS[method]
    lacking = auth.add_user("staff_2", role="staff", priv={"event": "crud".replace(action, "")})
    only_it = auth.add_user("staff_3", role="staff", priv={"event": action})
    other_model = auth.add_user("staff_4", role="staff", priv={"user": "crud"})

    assert write(client, method, kind, {}).status_code == 401
    assert write(client, method, kind, alice.headers).status_code == 403
    assert write(client, method, kind, lacking.headers).status_code == 403
    assert write(client, method, kind, other_model.headers).status_code == 403
    assert names(client, kind) == sorted([*baseline(kind), "Seeded"], key=str.casefold)
    assert write(client, method, kind, only_it.headers).status_code in (201, 202, 204)
    # A superuser is let through: the name exists already, the change is made again, or
    # the entry is gone already.
    expected = {"POST": 422, "PUT": 202, "DELETE": 422}[method]
    assert write(client, method, kind, superuser.headers).status_code == expected


def test_the_refusal_comes_before_the_body_is_read(client: FlaskClient, alice: User) -> None:
    response = client.post(
        "/events/category", data=b"{nope", content_type="application/json", headers=alice.headers
    )

    assert response.status_code == 403
