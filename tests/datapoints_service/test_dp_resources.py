"""Every written resource, alike: insert (the document's POST), read (list, `/<id>`,
CSV), update both ways, delete both ways, the refusals and who may write."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from datapoints_service.engine.fields import (
    CONTAINS,
    EXACT,
    GT,
    GTE,
    IN,
    ISNULL,
    LT,
    LTE,
    STARTSWITH,
    Field,
    Kind,
)
from datapoints_service.resources import RESOURCES
from servicekit.testing import TestKeys
from tests.datapoints_service.dp_helpers import Person, create, csv_rows, listing, stranger
from tests.datapoints_service.dp_world import World, make_world

Body = Callable[[World, Person], dict[str, Any]]


@dataclass(frozen=True)
class Case:
    resource: str
    body: Body  # a valid insert (numbers as the document sends them: strings)
    change: Body  # a valid update
    shown: dict[str, str]  # wire name -> body key, checked after the insert
    dangling: str | None = None  # a reference column, refused when it names no row


CASES = [
    Case(
        "office", lambda w, p: {"name": "somalia"}, lambda w, p: {"name": "kenya"}, {"name": "name"}
    ),
    Case(
        "region_type",
        lambda w, p: {"name": "district"},
        lambda w, p: {"name": "ward"},
        {"name": "name"},
    ),
    Case(
        "region",
        lambda w, p: {
            "name": "fake_place",
            "office_id": str(w.office),
            "parent_region_id": str(w.region),
            "region_code": "fake_code",
            "region_type_id": str(w.region_type),
            "source_id": "1",
        },
        lambda w, p: {"name": "renamed", "parent_region_id": w.region2, "latitude": "9.5"},
        {"name": "name", "region_code": "region_code", "office": "office_id"},
        dangling="parent_region_id",
    ),
    Case(
        "campaign_type",
        lambda w, p: {"name": "mop-up"},
        lambda w, p: {"name": "nid"},
        {"name": "name"},
    ),
    Case(
        "campaign",
        lambda w, p: {
            "campaign_type_id": str(w.campaign_type),
            "end_date": "2017-01-01",
            "office_id": str(w.office),
            "slug": "fake_campaign",
            "start_date": "2017-01-01",
        },
        lambda w, p: {"end_date": "2017-02-01"},
        {"slug": "slug", "start_date": "start_date", "end_date": "end_date"},
        dangling="office_id",
    ),
    Case(
        "indicator",
        lambda w, p: {
            "description": "fake description",
            "is_reported": "0",
            "name": "fake indicator name",
            "short_name": "fake short name",
            "slug": "fake_indicator",
            "source_id": "1",
        },
        lambda w, p: {
            "tag_json": [w.tag],
            "bound_json": [{"bound_name": "bad", "mn_val": 0.2, "mx_val": None}],
        },
        {"name": "name", "slug": "slug", "description": "description"},
    ),
    Case(
        "indicator_tag",
        lambda w, p: {"tag_name": "polio", "parent_tag_id": w.tag},
        lambda w, p: {"tag_name": "measles", "parent_tag_id": None},
        {"tag_name": "tag_name", "parent_tag_id": "parent_tag_id"},
        dangling="parent_tag_id",
    ),
    Case(
        "region_map",
        lambda w, p: {"source_object_id": w.source_region, "master_object_id": w.region},
        lambda w, p: {"master_object_id": w.region2},
        {"source_object_id": "source_object_id", "master_object_id": "master_object_id"},
        dangling="master_object_id",
    ),
    Case(
        "campaign_map",
        lambda w, p: {"source_object_id": w.source_campaign, "master_object_id": w.campaign},
        lambda w, p: {"master_object_id": w.campaign2},
        {"source_object_id": "source_object_id", "master_object_id": "master_object_id"},
        dangling="source_object_id",
    ),
    Case(
        "indicator_map",
        lambda w, p: {"source_object_id": w.source_indicator, "master_object_id": w.indicator},
        lambda w, p: {"master_object_id": w.indicator2},
        {"source_object_id": "source_object_id", "master_object_id": "master_object_id"},
        dangling="master_object_id",
    ),
    Case(
        "group", lambda w, p: {"name": "fake_group"}, lambda w, p: {"name": "g"}, {"name": "name"}
    ),
    Case(
        "user_group",
        lambda w, p: {"user_id": p.user_id, "group_id": w.group},
        lambda w, p: {"group_id": w.group2},
        {"user_id": "user_id", "group_id": "group_id"},
        dangling="group_id",
    ),
    Case(
        "region_permission",
        lambda w, p: {"user_id": p.user_id, "region_id": w.region},
        lambda w, p: {"read_write": "w"},
        {"user_id": "user_id", "region_id": "region_id"},
        dangling="region_id",
    ),
    Case(
        "group_permission",
        lambda w, p: {"group_id": w.group, "indicator_id": w.indicator},
        lambda w, p: {"read_write": "w"},
        {"group_id": "group_id", "indicator_id": "indicator_id"},
        dangling="indicator_id",
    ),
    Case(
        "user_permission",
        lambda w, p: {"user_id": str(p.user_id), "auth_code": "upload_csv"},
        lambda w, p: {"auth_code": "review_documents"},
        {"user_id": "user_id", "auth_code": "auth_code"},
        dangling="user_id",
    ),
]
CASE_IDS = [case.resource for case in CASES]
REGION_MAP = next(case for case in CASES if case.resource == "region_map")


@pytest.fixture
def world(app: Flask) -> World:
    return make_world(app)


def _url(case: Case, row_id: int | None = None, slash: bool = True) -> str:
    path = f"/api/v2/{case.resource}" + ("" if row_id is None else f"/{row_id}")
    return path + "/" if slash else path


def _one(client: FlaskClient, person: Person, case: Case, row_id: int) -> dict[str, Any]:
    response = client.get(_url(case, row_id, slash=False), headers=person.headers)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["meta"]["total_count"] == 1 and body["errors"] == {}
    (shown,) = body["objects"]
    assert shown["id"] == row_id
    return dict(shown)


def _as_shown(value: Any) -> Any:
    return int(value) if isinstance(value, str) and value.isdigit() else value


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_insert_read_update_delete(
    client: FlaskClient, staff: Person, alice: Person, world: World, case: Case
) -> None:
    body = case.body(world, alice)
    response = client.post(_url(case), json=body, headers=staff.headers)
    assert response.status_code == 201, response.get_json()
    answer = response.get_json()
    assert set(answer) == {"objects", "meta", "error"}
    assert answer["meta"] is None and answer["error"] is None
    row_id = answer["objects"]["new_id"]

    shown = _one(client, staff, case, row_id)
    for wire, key in case.shown.items():
        assert shown[wire] == _as_shown(body[key]), wire
    listed = client.get(_url(case), query_string={"id": row_id}, headers=staff.headers)
    assert [row["id"] for row in listed.get_json()["objects"]] == [row_id]

    change = case.change(world, alice)
    updated = client.post(
        _url(case, slash=False), json={"id": str(row_id), **change}, headers=staff.headers
    )
    assert updated.status_code == 200, updated.get_json()
    assert updated.get_json()["objects"][0]["id"] == row_id
    put = client.put(_url(case, row_id), json=change, headers=staff.headers)
    assert put.status_code == 200, put.get_json()
    after = _one(client, staff, case, row_id)
    for key, value in change.items():
        wire = key.removesuffix("_id") if key in ("office_id", "parent_region_id") else key
        expected = float(value) if key == "latitude" else value
        assert after[wire] == expected, key

    assert client.delete(_url(case, row_id), headers=staff.headers).status_code == 204
    assert client.delete(_url(case, row_id, slash=False), headers=staff.headers).status_code == 404
    assert client.get(_url(case, row_id), headers=staff.headers).status_code == 404

    again = create(client, staff.headers, case.resource, **body)
    deleted = client.post(_url(case), json={"id": again, "delete": True}, headers=staff.headers)
    assert deleted.status_code == 200, deleted.get_json()
    assert deleted.get_json() == {"objects": {"deleted_id": again}, "meta": None, "error": None}
    assert client.get(_url(case, again), headers=staff.headers).status_code == 404


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_csv(client: FlaskClient, staff: Person, alice: Person, world: World, case: Case) -> None:
    row_id = create(client, staff.headers, case.resource, **case.body(world, alice))
    rows = csv_rows(client, staff.headers, _url(case))
    ours = [row for row in rows if row["id"] == str(row_id)]
    assert len(ours) == 1
    for wire, key in case.shown.items():
        assert ours[0][wire] == str(case.body(world, alice)[key]), wire
    one = csv_rows(client, staff.headers, _url(case, row_id))
    assert [row["id"] for row in one] == [str(row_id)]


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_who_may_write(
    client: FlaskClient,
    test_keys: TestKeys,
    root: Person,
    clerk: Person,
    alice: Person,
    world: World,
    case: Case,
) -> None:
    body = case.body(world, alice)
    assert client.get(_url(case)).status_code == 401
    assert client.post(_url(case), json=body).status_code == 401
    for headers in (alice.headers, clerk.headers, stranger(test_keys, "staff")):
        refused = client.post(_url(case), json=body, headers=headers)
        assert refused.status_code == 403, refused.get_json()
        assert refused.get_json()["code"] == "forbidden"
    row_id = create(client, root.headers, case.resource, **body)
    for method in (client.put, client.delete):
        assert method(_url(case, row_id), json={}, headers=clerk.headers).status_code == 403
        assert method(_url(case, row_id), json={}, headers=alice.headers).status_code == 403
    form = client.post(_url(case), json={"id": row_id, "delete": True}, headers=alice.headers)
    assert form.status_code == 403
    assert client.delete(_url(case, row_id), headers=root.headers).status_code == 204


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_bad_bodies_write_nothing(
    client: FlaskClient, staff: Person, alice: Person, world: World, case: Case
) -> None:
    body = case.body(world, alice)
    unknown = client.post(_url(case), json={**body, "password": "x"}, headers=staff.headers)
    assert unknown.status_code == 400
    assert unknown.get_json()["errors"] == {"password": "unknown column"}
    missing = client.post(_url(case), json={}, headers=staff.headers)
    assert missing.status_code == 400
    assert set(missing.get_json()["errors"]) <= set(body)
    assert all(m == "missing required column" for m in missing.get_json()["errors"].values())
    if case.dangling is not None:
        dangling = client.post(
            _url(case), json={**body, case.dangling: 99999}, headers=staff.headers
        )
        assert dangling.status_code == 400
        assert list(dangling.get_json()["errors"]) == [case.dangling]
    not_json = client.post(_url(case), data="x", headers=staff.headers)
    assert not_json.status_code == 415
    total = client.get(_url(case), headers=staff.headers).get_json()["meta"]["total_count"]
    row_id = create(client, staff.headers, case.resource, **body)
    duplicate = client.post(_url(case), json=body, headers=staff.headers)
    assert duplicate.status_code == 409, duplicate.get_json()
    assert duplicate.get_json()["errors"]
    wrong_id = client.put(_url(case, row_id), json={"id": row_id + 1}, headers=staff.headers)
    assert wrong_id.status_code == 400
    gone = client.put(_url(case, 99999), json={}, headers=staff.headers)
    assert gone.status_code == 404
    after = client.get(_url(case), headers=staff.headers).get_json()["meta"]["total_count"]
    assert after == total + 1


def _filters(field: Field, shown: Any) -> list[tuple[str, str, bool]]:
    """(parameter, value, whether the row matches) for each operator `field` allows,
    built from the row's own shown value."""
    if shown is None:
        return [(f"{field.name}__isnull", "true", True)] if ISNULL in field.allowed else []
    if field.kind is Kind.DATETIME:  # shown to the millisecond, stored finer
        return [(f"{field.name}__gte", shown, True), (f"{field.name}__lt", shown, False)]
    text = ("true" if shown else "false") if field.kind is Kind.BOOL else str(shown)
    expected = {
        EXACT: (field.name, text, True),
        IN: (f"{field.name}__in", text, True),
        GT: (f"{field.name}__gt", text, False),
        GTE: (f"{field.name}__gte", text, True),
        LT: (f"{field.name}__lt", text, False),
        LTE: (f"{field.name}__lte", text, True),
        CONTAINS: (f"{field.name}__contains", text[1:-1], True),
        STARTSWITH: (f"{field.name}__startswith", text[:2], True),
        ISNULL: (f"{field.name}__isnull", "false", True),
    }
    return [expected[operator] for operator in sorted(field.allowed)]


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_every_declared_filter(
    client: FlaskClient, staff: Person, alice: Person, world: World, case: Case
) -> None:
    row_id = create(client, staff.headers, case.resource, **case.body(world, alice))
    shown = _one(client, staff, case, row_id)
    checked = 0
    for field in RESOURCES[case.resource].fields:
        for parameter, value, matches in _filters(field, shown[field.name]):
            found = listing(client, staff.headers, case.resource, limit=1000, **{parameter: value})
            assert (row_id in [row["id"] for row in found["objects"]]) is matches, parameter
            checked += 1
        if not field.allowed:
            refused = client.get(_url(case), query_string={field.name: "1"}, headers=staff.headers)
            assert refused.status_code == 400
            assert list(refused.get_json()["errors"]) == [field.name]
    assert checked >= 5


def test_an_update_to_a_taken_value_names_it(
    client: FlaskClient, staff: Person, world: World
) -> None:
    first = create(client, staff.headers, "office", name="first")
    taken = client.put(
        f"/api/v2/office/{first}", json={"name": "world office"}, headers=staff.headers
    )
    assert taken.status_code == 409
    assert taken.get_json()["errors"] == {"name": "already taken"}
    slug = client.post(
        "/api/v2/campaign",
        json={"id": world.campaign2, "slug": "world-campaign"},
        headers=staff.headers,
    )
    assert slug.status_code == 409
    assert slug.get_json()["errors"] == {"slug": "already taken"}
    same = client.put(f"/api/v2/office/{first}", json={"name": "first"}, headers=staff.headers)
    assert same.status_code == 200  # its own value is not a duplicate


def test_maps_record_who_mapped_them(
    client: FlaskClient, test_keys: TestKeys, staff: Person, root: Person, world: World
) -> None:
    body = {"source_object_id": world.source_region, "master_object_id": world.region}
    map_id = create(client, staff.headers, "region_map", **body)
    assert _one(client, staff, REGION_MAP, map_id)["mapped_by_id"] == staff.user_id
    client.put(
        f"/api/v2/region_map/{map_id}",
        json={"master_object_id": world.region2},
        headers=root.headers,
    )
    assert _one(client, staff, REGION_MAP, map_id)["mapped_by_id"] == root.user_id
    newcomer = stranger(test_keys, "superuser")
    client.put(f"/api/v2/region_map/{map_id}", json={}, headers=newcomer)
    mapped_by = _one(client, staff, REGION_MAP, map_id)["mapped_by_id"]
    assert mapped_by not in (None, staff.user_id, root.user_id)
    found = listing(client, staff.headers, "user", id=mapped_by)["objects"]
    assert [user["username"] for user in found] == ["stranger"]
