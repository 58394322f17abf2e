"""Row permissions beyond regions: indicators through groups, documents, the caller's
own permission rows, dashboards and their owners, the users copy."""

from __future__ import annotations

import random
import uuid
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from datapoints_service.models import (
    Document,
    Group,
    GroupPermission,
    Indicator,
    User,
    UserGroup,
    db,
)
from servicekit.testing import TestKeys
from tests.datapoints_service.dp_helpers import (
    Person,
    add_person,
    create,
    csv_rows,
    ids,
    listing,
    stranger,
)
from tests.datapoints_service.dp_world import World, make_world

USER_FIELDS = {
    "id",
    "username",
    "first_name",
    "last_name",
    "is_active",
    "is_superuser",
    "is_staff",
    "last_login",
    "email",
    "date_joined",
}


@pytest.fixture
def world(app: Flask) -> World:
    return make_world(app)


def test_indicators_through_groups(
    client: FlaskClient, staff: Person, alice: Person, bob: Person, world: World
) -> None:
    third = create(client, staff.headers, "indicator", name="third", slug="third")
    other = create(client, staff.headers, "group", name="other")
    create(client, staff.headers, "user_group", user_id=alice.user_id, group_id=world.group)
    create(client, staff.headers, "user_group", user_id=bob.user_id, group_id=other)
    for indicator, group, rw in (
        (world.indicator, world.group, "r"),
        (world.indicator2, world.group, "w"),
        (third, other, "w"),
    ):
        create(
            client,
            staff.headers,
            "group_permission",
            indicator_id=indicator,
            group_id=group,
            read_write=rw,
        )
    assert ids(client, alice.headers, "indicator") == [world.indicator, world.indicator2]
    assert ids(client, alice.headers, "indicator", read_write="w") == [world.indicator2]
    assert ids(client, alice.headers, "indicator", id=third) == []
    assert client.get(f"/api/v2/indicator/{third}", headers=alice.headers).status_code == 404
    assert ids(client, bob.headers, "indicator") == [third]
    assert ids(client, staff.headers, "indicator") == [world.indicator, world.indicator2, third]
    # group_permission rows: everyone reads them; `read_write=w` keeps the write grants
    assert len(ids(client, alice.headers, "group_permission", read_write="w")) == 2
    # user_group rows: the caller's own (staff: all)
    own = listing(client, alice.headers, "user_group")["objects"]
    assert [row["user_id"] for row in own] == [alice.user_id]
    assert len(ids(client, staff.headers, "user_group")) == 2


def test_own_permission_rows(
    client: FlaskClient, staff: Person, alice: Person, bob: Person, world: World
) -> None:
    for person in (alice, bob):
        create(client, staff.headers, "user_permission", user_id=person.user_id, auth_code="upload")
        create(
            client,
            staff.headers,
            "region_permission",
            user_id=person.user_id,
            region_id=world.region,
        )
    create(
        client,
        staff.headers,
        "region_permission",
        user_id=alice.user_id,
        region_id=world.region2,
        read_write="w",
    )
    for resource in ("user_permission", "region_permission"):
        rows = listing(client, alice.headers, resource)["objects"]
        assert {row["user_id"] for row in rows} == {alice.user_id}
        assert (
            client.get(
                f"/api/v2/{resource}/?user_id={bob.user_id}", headers=alice.headers
            ).get_json()["meta"]["total_count"]
            == 0
        )
    writes = listing(client, alice.headers, "region_permission", read_write="w")["objects"]
    assert [(row["region_id"], row["read_write"]) for row in writes] == [(world.region2, "w")]
    assert len(ids(client, staff.headers, "region_permission")) == 3
    assert len(ids(client, staff.headers, "user_permission")) == 2


def _document(app: Flask, owner: Person | None) -> int:
    with app.app_context():
        document = Document(
            guid=uuid.uuid4().hex,
            docfile="upload.csv",
            created_by_id=None if owner is None else owner.user_id,
        )
        db.session.add(document)
        db.session.commit()
        return int(document.id)


def test_documents(
    client: FlaskClient, app: Flask, staff: Person, alice: Person, bob: Person
) -> None:
    mine, theirs = _document(app, alice), _document(app, bob)
    assert ids(client, alice.headers, "document") == [mine]
    assert ids(client, bob.headers, "document") == [theirs]
    assert ids(client, staff.headers, "document") == []
    assert ids(client, staff.headers, "document", show_all=1) == [mine, theirs]
    refused = client.get("/api/v2/document/?show_all=1", headers=alice.headers)
    assert refused.status_code == 403
    assert client.get(f"/api/v2/document/{theirs}", headers=alice.headers).status_code == 404
    row = listing(client, alice.headers, "document")["objects"][0]
    assert set(row) == {
        "id",
        "source_datapoint_count",
        "is_processed",
        "created_at",
        "docfile",
        "doc_text",
        "master_datapoint_count",
        "source_id",
        "created_by_id",
        "guid",
        "status",
        "rows_total",
        "rows_done",
        "row_error_count",
        "row_errors",
        "error",
        "processed_at",
    }
    upload = client.post("/api/v2/document/", json={"docfile": "x"}, headers=staff.headers)
    assert upload.status_code == 400  # an upload without a file (uploads: test_dp_documents.py)
    assert upload.get_json()["errors"] == {"docfile": "send a CSV file (docfile) or doc_text"}


def test_dashboards_belong_to_their_owner(
    client: FlaskClient,
    app: Flask,
    test_keys: TestKeys,
    root: Person,
    alice: Person,
    bob: Person,
    world: World,
) -> None:
    board = create(
        client,
        alice.headers,
        "custom_dashboard",
        title="mine",
        description="polio",
        default_office_id=world.office,
        dashboard_json=[{"chart": "line"}],
    )
    row = listing(client, alice.headers, "custom_dashboard")["objects"][0]
    assert row == {
        "id": board,
        "default_office_id": world.office,
        "description": "polio",
        "title": "mine",
        "dashboard_json": [{"chart": "line"}],
        "shared": False,
        "owned_by_current_user": True,
        "owner_username": "alice",
        "owner_id": alice.user_id,
    }
    assert ids(client, bob.headers, "custom_dashboard") == []
    assert client.get(f"/api/v2/custom_dashboard/{board}", headers=bob.headers).status_code == 404
    assert (
        client.put(
            f"/api/v2/custom_dashboard/{board}", json={"title": "x"}, headers=bob.headers
        ).status_code
        == 404
    )
    shared = client.put(
        f"/api/v2/custom_dashboard/{board}", json={"shared": True}, headers=alice.headers
    )
    assert shared.status_code == 200
    seen = listing(client, bob.headers, "custom_dashboard")["objects"]
    assert [(r["id"], r["owned_by_current_user"], r["owner_username"]) for r in seen] == [
        (board, False, "alice")
    ]
    for attempt in (
        client.put(f"/api/v2/custom_dashboard/{board}", json={"title": "x"}, headers=bob.headers),
        client.delete(f"/api/v2/custom_dashboard/{board}", headers=bob.headers),
        client.post(
            "/api/v2/custom_dashboard", json={"id": board, "delete": True}, headers=bob.headers
        ),
    ):
        assert attempt.status_code == 403
    not_theirs = client.post(
        "/api/v2/custom_dashboard",
        json={"title": "t", "owner_id": bob.user_id},
        headers=alice.headers,
    )
    assert not_theirs.status_code == 400
    # someone the users copy does not know yet gets a row from their token
    newcomer = stranger(test_keys)
    create(client, newcomer, "custom_dashboard", title="first")
    with app.app_context():
        assert db.session.query(User).filter_by(username="stranger").count() == 1
    assert (
        client.delete(f"/api/v2/custom_dashboard/{board}", headers=root.headers).status_code == 204
    )
    office = client.delete(f"/api/v2/office/{world.office}", headers=root.headers)
    assert office.status_code == 409  # campaigns and regions of the world refer to it


def test_the_users_copy(client: FlaskClient, staff: Person, alice: Person, bob: Person) -> None:
    found = listing(client, bob.headers, "user", username="alice")
    assert found["meta"]["total_count"] == 1
    (user,) = found["objects"]
    assert set(user) == USER_FIELDS
    assert user["id"] == alice.user_id and user["username"] == "alice"
    assert user["email"] is None  # another user's address is not shown
    assert listing(client, alice.headers, "user", username="alice")["objects"][0]["email"] == (
        "alice@example.org"
    )
    assert listing(client, staff.headers, "user", username="alice")["objects"][0]["email"] == (
        "alice@example.org"
    )
    assert ids(client, bob.headers, "user", username__startswith="al") == [alice.user_id]
    for method, path in (
        ("POST", "/api/v2/user"),
        ("POST", "/api/v2/user/"),
        ("PUT", f"/api/v2/user/{alice.user_id}"),
        ("DELETE", f"/api/v2/user/{alice.user_id}"),
    ):
        response = client.open(path, method=method, json={"username": "x"}, headers=staff.headers)
        assert response.status_code == 405, (method, path)
        assert "auth_service" in response.get_json()["error"]
        assert response.headers["Allow"] == "GET, HEAD"
    body: dict[str, Any] = listing(client, staff.headers, "user")
    assert all("password" not in row for row in body["objects"])


def test_indicator_permission_matrix(
    client: FlaskClient, app: Flask, test_keys: TestKeys, staff: Person
) -> None:
    chance = random.Random(2016)
    with app.app_context():
        indicators = [Indicator(name=f"i{n}", short_name=f"i{n}", slug=f"i{n}") for n in range(40)]
        groups = [Group(name=f"g{n}") for n in range(6)]
        db.session.add_all([*indicators, *groups])
        db.session.flush()
        grants = {
            (group.id, indicator.id, rw)
            for group in groups
            for indicator in chance.sample(indicators, 6)
            for rw in chance.sample(["r", "w"], chance.randint(1, 2))
        }
        db.session.add_all(
            GroupPermission(group_id=g, indicator_id=i, read_write=rw) for g, i, rw in grants
        )
        db.session.commit()
        group_ids = [group.id for group in groups]
    people = []
    for number in range(5):
        person = add_person(app, test_keys, f"member{number}")
        member_of = chance.sample(group_ids, chance.randint(0, 3))
        with app.app_context():
            db.session.add_all(UserGroup(user_id=person.user_id, group_id=g) for g in member_of)
            db.session.commit()
        people.append((person, set(member_of)))
    for person, member_of in people:
        for rw in ("r", "w"):
            expected = sorted(
                {i for g, i, granted in grants if g in member_of and (rw == "r" or granted == "w")}
            )
            found = listing(client, person.headers, "indicator", read_write=rw, limit=1000)
            assert [row["id"] for row in found["objects"]] == expected
            assert found["meta"]["total_count"] == len(expected)
            shown = [
                int(row["id"])
                for row in csv_rows(client, person.headers, "/api/v2/indicator", read_write=rw)
            ]
            assert shown == expected
