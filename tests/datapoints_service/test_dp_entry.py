"""Data entry (`/api/v1/dataentry`, also `/api/v1/datapointentry`): storing, removing and
reading stored values, every refusal naming what is wrong, permissions, all or nothing."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from datapoints_service.models import DataPoint, DataPointHistory, db
from servicekit.testing import TestKeys
from tests.datapoints_service.dp_entry_helpers import (
    ENTRY,
    EntryWorld,
    cell,
    enter,
    entered,
    grant_indicator,
    grant_region,
    make_entry_world,
    rollup_values,
    stored_values,
)
from tests.datapoints_service.dp_helpers import Person, csv_rows, stranger

OBJECT_KEYS = [
    "id",
    "region_id",
    "campaign_id",
    "indicator_id",
    "value",
    "changed_by_id",
    "document_id",
    "updated_at",
]


@pytest.fixture
def world(app: Flask) -> EntryWorld:
    return make_entry_world(app)


def _history_count(app: Flask) -> int:
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(DataPointHistory)) or 0)


def _writer(app: Flask, person: Person, world: EntryWorld, region: int) -> None:
    """`person` may write `region` (and below) and the summed indicator."""
    grant_region(app, person, region, "w")
    grant_indicator(app, person, world.group, world.summed, "w")


# Storing ------------------------------------------------------------------------------


def test_one_value_is_stored_and_answered_as_stored(
    app: Flask, client: FlaskClient, staff: Person, world: EntryWorld
) -> None:
    district, campaign = world.regions[4], world.campaigns[0]
    response = enter(client, staff, cell(district, campaign, world.summed, 12.5))
    assert response.status_code == 201
    body = response.get_json()
    assert body["meta"] is None and body["error"] is None
    [stored] = body["objects"]
    assert list(stored) == OBJECT_KEYS
    assert stored["id"] is not None
    assert (stored["region_id"], stored["campaign_id"], stored["indicator_id"]) == (
        district,
        campaign,
        world.summed,
    )
    assert stored["value"] == 12.5
    assert stored["changed_by_id"] == staff.user_id
    assert stored["document_id"] is None
    assert stored["updated_at"].endswith("+00:00")
    assert stored_values(app) == {(district, campaign, world.summed): 12.5}


def test_a_list_is_answered_in_request_order_one_object_per_cell(
    app: Flask, client: FlaskClient, staff: Person, world: EntryWorld
) -> None:
    r, c, i = world.regions, world.campaigns[0], world.summed
    body = [cell(r[5], c, i, 1), cell(r[3], c, i, "2"), cell(r[5], c, i, 3), cell(r[4], c, i, 4)]
    objects = entered(client, staff, body)
    assert [(o["region_id"], o["value"]) for o in objects] == [(r[5], 3), (r[3], 2), (r[4], 4)]
    assert stored_values(app) == {(r[5], c, i): 3, (r[3], c, i): 2, (r[4], c, i): 4}
    # the last of the repeated cell wins, one history row per changed cell
    assert _history_count(app) == 3


@pytest.mark.parametrize(
    "path", [ENTRY, ENTRY + "/", "/api/v1/datapointentry", "/api/v1/datapointentry/"]
)
def test_both_names_with_and_without_slash(
    app: Flask, client: FlaskClient, staff: Person, world: EntryWorld, path: str
) -> None:
    key = (world.regions[3], world.campaigns[1], world.summed)
    response = enter(client, staff, cell(*key, 7), path=path)
    assert response.status_code == 201, response.get_json()
    assert stored_values(app) == {key: 7}
    listed = client.get(path, headers=staff.headers)
    assert listed.status_code == 200
    assert [o["value"] for o in listed.get_json()["objects"]] == [7]


def test_numbers_as_text_and_ids_as_text(
    app: Flask, client: FlaskClient, staff: Person, world: EntryWorld
) -> None:
    r, c, i = world.regions[3], world.campaigns[0], world.summed
    [stored] = entered(client, staff, cell(str(r), str(c), str(i), "-1.5e2"))
    assert stored["value"] == -150.0
    assert stored_values(app) == {(r, c, i): -150.0}


def test_null_removes_the_stored_value_and_the_rollup_takes_over(
    app: Flask, client: FlaskClient, staff: Person, world: EntryWorld
) -> None:
    province, d3, d4 = world.regions[1], world.regions[3], world.regions[4]
    c, i = world.campaigns[0], world.summed
    entered(client, staff, [cell(d3, c, i, 2), cell(d4, c, i, 5), cell(province, c, i, 100)])
    assert rollup_values(app)[(world.regions[0], c, i)] == 100
    assert (province, c, i) not in rollup_values(app)
    [removed] = entered(client, staff, cell(province, c, i, None))
    assert removed == {
        "id": None,
        "region_id": province,
        "campaign_id": c,
        "indicator_id": i,
        "value": None,
        "changed_by_id": None,
        "document_id": None,
        "updated_at": None,
    }
    assert (province, c, i) not in stored_values(app)
    assert rollup_values(app)[(province, c, i)] == 7
    assert rollup_values(app)[(world.regions[0], c, i)] == 7


def test_removing_what_is_not_stored_changes_nothing(
    app: Flask, client: FlaskClient, staff: Person, world: EntryWorld
) -> None:
    [removed] = entered(
        client, staff, cell(world.regions[2], world.campaigns[0], world.summed, None)
    )
    assert removed["id"] is None
    assert stored_values(app) == {} and _history_count(app) == 0


def test_entering_the_same_value_again_changes_nothing(
    app: Flask, client: FlaskClient, staff: Person, alice: Person, world: EntryWorld
) -> None:
    key = (world.regions[3], world.campaigns[0], world.summed)
    [first] = entered(client, staff, cell(*key, 4))
    _writer(app, alice, world, world.regions[0])
    [again] = entered(client, alice, cell(*key, "4.0"))
    assert again == first  # same id, same author, same updated_at
    assert _history_count(app) == 1
    [changed] = entered(client, alice, cell(*key, 5))
    assert changed["id"] == first["id"]
    assert changed["changed_by_id"] == alice.user_id
    assert changed["updated_at"] >= first["updated_at"]
    assert _history_count(app) == 2


def test_a_caller_the_users_copy_does_not_know_gets_a_row(
    app: Flask, client: FlaskClient, test_keys: TestKeys, world: EntryWorld
) -> None:
    headers = stranger(test_keys, role="staff")
    key = (world.regions[3], world.campaigns[0], world.summed)
    response = client.post(ENTRY, json=cell(*key, 1), headers=headers)
    assert response.status_code == 201, response.get_json()
    author = response.get_json()["objects"][0]["changed_by_id"]
    users = client.get("/api/v2/user/", query_string={"id": author}, headers=headers)
    assert [u["username"] for u in users.get_json()["objects"]] == ["stranger"]


def test_a_thousand_values_in_one_request(
    app: Flask, client: FlaskClient, staff: Person, world: EntryWorld
) -> None:
    """1,000 cells: 8 regions x 2 campaigns x 3 indicators are only 48 distinct cells,
    so the list repeats them; the last value of each wins."""
    keys = [(r, c, i) for r in world.regions for c in world.campaigns for i in world.indicators]
    body = [cell(*keys[n % len(keys)], n) for n in range(1000)]
    objects = entered(client, staff, body)
    assert len(objects) == len(keys)
    last = {keys[n % len(keys)]: float(n) for n in range(1000)}
    assert stored_values(app) == last
    too_many = enter(client, staff, [*body, body[0]])
    assert too_many.status_code == 400
    assert too_many.get_json()["errors"] == {"body": "at most 1000 values per request"}


# Refusals -----------------------------------------------------------------------------


def _refused(client: FlaskClient, person: Person, body: Any, status: int) -> dict[str, Any]:
    response = enter(client, person, body)
    assert response.status_code == status, response.get_json()
    assert response.mimetype == "application/json"
    answer: dict[str, Any] = response.get_json()
    return answer


@pytest.mark.parametrize(
    ("item", "errors"),
    [
        ({"value": "x"}, {"0.value": "not a number: 'x'"}),
        ({"value": True}, {"0.value": "not a number: true"}),
        ({"value": [1]}, {"0.value": "not a number: [1]"}),
        ({"value": {"n": 1}}, {"0.value": 'not a number: {"n": 1}'}),
        ({"value": "NaN"}, {"0.value": "not a number: 'NaN'"}),
        ({"value": "1e999"}, {"0.value": "not a finite number: '1e999'"}),
        ({"value": " 1"}, {"0.value": "not a number: ' 1'"}),
        ({"value": "1_000"}, {"0.value": "not a number: '1_000'"}),
        ({"value": 10**400}, {"0.value": "not a finite number"}),
        ({"region_id": "x"}, {"0.region_id": "not an integer id: 'x'"}),
        ({"region_id": 1.5}, {"0.region_id": "not an integer id: 1.5"}),
        ({"campaign_id": True}, {"0.campaign_id": "not an integer id: true"}),
        ({"indicator_id": None}, {"0.indicator_id": "not an integer id: null"}),
        ({"indicator_id": 2**31}, {"0.indicator_id": f"out of range: {2**31}"}),
        ({"region_id": "99999999999"}, {"0.region_id": "not an integer id: '99999999999'"}),
        ({"extra": 1}, {"0.extra": "unknown key"}),
    ],
)
def test_bad_items_are_refused_naming_index_and_key(
    app: Flask,
    client: FlaskClient,
    staff: Person,
    world: EntryWorld,
    item: dict[str, Any],
    errors: dict[str, str],
) -> None:
    good = cell(world.regions[3], world.campaigns[0], world.summed, 1)
    answer = _refused(client, staff, {**good, **item}, 400)
    assert answer == {"error": "invalid values", "code": "invalid_values", "errors": errors}
    assert stored_values(app) == {}


def test_every_bad_item_of_a_list_is_named_and_nothing_is_written(
    app: Flask, client: FlaskClient, staff: Person, world: EntryWorld
) -> None:
    good = cell(world.regions[3], world.campaigns[0], world.summed, 1)
    missing = {key: value for key, value in good.items() if key != "campaign_id"}
    body = [good, missing, "text", {**good, "value": "?"}]
    answer = _refused(client, staff, body, 400)
    assert answer["errors"] == {
        "1.campaign_id": "missing required key",
        "2": "not an object with region_id, campaign_id, indicator_id, value",
        "3.value": "not a number: '?'",
    }
    assert stored_values(app) == {} and _history_count(app) == 0


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ([], {"body": "an empty list: send at least one value"}),
        (5, {"0": "not an object with region_id, campaign_id, indicator_id, value"}),
    ],
)
def test_a_body_that_holds_no_values_is_refused(
    client: FlaskClient, staff: Person, body: Any, errors: dict[str, str]
) -> None:
    assert _refused(client, staff, body, 400)["errors"] == errors


def test_a_body_that_is_not_json(client: FlaskClient, staff: Person) -> None:
    as_text = client.post(ENTRY, data="region_id=1", headers=staff.headers)
    assert as_text.status_code == 415
    assert as_text.get_json()["code"] == "unsupported_media_type"
    broken = client.post(
        ENTRY, data="{", headers={**staff.headers, "Content-Type": "application/json"}
    )
    assert broken.status_code == 400
    assert broken.get_json()["code"] == "invalid_json"


def test_unknown_regions_campaigns_and_indicators_are_named(
    app: Flask, client: FlaskClient, staff: Person, world: EntryWorld
) -> None:
    good = cell(world.regions[3], world.campaigns[0], world.summed, 1)
    body = [
        good,
        {**good, "region_id": 999_999},
        {**good, "region_id": 999_998, "campaign_id": 888_888},
        {**good, "indicator_id": 0},
    ]
    answer = _refused(client, staff, body, 422)
    assert answer["code"] == "unknown_references"
    assert answer["errors"] == {
        "region_id": "no region 999998, 999999",
        "campaign_id": "no campaign 888888",
        "indicator_id": "no indicator 0",
    }
    assert stored_values(app) == {}


def test_no_token(client: FlaskClient) -> None:
    assert client.post(ENTRY, json={}).status_code == 401
    assert client.get(ENTRY).status_code == 401


# Permissions --------------------------------------------------------------------------


def test_a_region_permission_covers_the_regions_under_it(
    app: Flask, client: FlaskClient, alice: Person, world: EntryWorld
) -> None:
    _writer(app, alice, world, world.regions[1])
    c, i = world.campaigns[0], world.summed
    ward, province = world.regions[7], world.regions[1]
    objects = entered(client, alice, [cell(ward, c, i, 1), cell(province, c, i, 2)])
    assert [o["changed_by_id"] for o in objects] == [alice.user_id, alice.user_id]


def test_a_list_with_one_forbidden_cell_writes_nothing(
    app: Flask, client: FlaskClient, alice: Person, world: EntryWorld
) -> None:
    _writer(app, alice, world, world.regions[1])
    grant_region(app, alice, world.regions[2], "r")  # read, not write
    grant_indicator(app, alice, world.group, world.averaged, "r")
    c = world.campaigns[0]
    body = [
        cell(world.regions[3], c, world.summed, 1),
        cell(world.regions[5], c, world.summed, 2),  # under the read-only province
        cell(world.regions[0], c, world.summed, 3),  # above the permission
        cell(world.regions[3], c, world.averaged, 4),  # read-only indicator
        cell(world.regions[3], c, world.unrolled, 5),  # no permission at all
    ]
    answer = _refused(client, alice, body, 403)
    assert answer["code"] == "forbidden"
    assert answer["errors"] == {
        "region_id": f"no write permission on region {world.regions[0]}, {world.regions[5]}",
        "indicator_id": f"no write permission on indicator {world.averaged}, {world.unrolled}",
    }
    assert stored_values(app) == {} and _history_count(app) == 0


def test_staff_write_everything_and_others_nothing_without_permission(
    app: Flask,
    client: FlaskClient,
    clerk: Person,
    bob: Person,
    test_keys: TestKeys,
    world: EntryWorld,
) -> None:
    key = (world.regions[0], world.campaigns[0], world.unrolled)
    assert _refused(client, bob, cell(*key, 1), 403)["errors"] == {
        "region_id": f"no write permission on region {key[0]}",
        "indicator_id": f"no write permission on indicator {key[2]}",
    }
    unknown = client.post(ENTRY, json=cell(*key, 1), headers=stranger(test_keys))
    assert unknown.status_code == 403
    assert entered(client, clerk, cell(*key, 1))[0]["changed_by_id"] == clerk.user_id


# Reading ------------------------------------------------------------------------------


def _listed(
    client: FlaskClient, person: Person, path: str = ENTRY, **params: Any
) -> dict[str, Any]:
    response = client.get(path, query_string=params, headers=person.headers)
    assert response.status_code == 200, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def test_the_list_holds_stored_values_ordered_and_paged(
    app: Flask, client: FlaskClient, staff: Person, world: EntryWorld
) -> None:
    r, (c1, c2), i = world.regions, world.campaigns, world.summed
    entered(
        client,
        staff,
        [cell(r[4], c2, i, 1), cell(r[3], c2, i, 2), cell(r[4], c1, i, 3), cell(r[3], c1, i, 4)],
    )
    everything = _listed(client, staff)
    assert everything["errors"] == {}
    assert everything["meta"] == {
        "limit": 20,
        "offset": 0,
        "total_count": 4,
        "parameters_requested": {},
    }
    # stored values only: the computed values of the province and country are not listed
    shown = [(o["region_id"], o["campaign_id"], o["value"]) for o in everything["objects"]]
    assert shown == [(r[3], c1, 4), (r[3], c2, 2), (r[4], c1, 3), (r[4], c2, 1)]
    assert list(everything["objects"][0]) == [
        "id",
        "region_id",
        "campaign_id",
        "indicator_id",
        "value",
        "changed_by_id",
        "document_id",
        "updated_at",
    ]
    second = _listed(client, staff, limit=2, offset=1)
    assert [o["value"] for o in second["objects"]] == [2, 3]
    assert second["meta"]["total_count"] == 4
    assert second["meta"]["parameters_requested"] == {"limit": "2", "offset": "1"}
    filtered = _listed(client, staff, region__in=f"{r[4]},{r[7]}", campaign__in=str(c2))
    assert [o["value"] for o in filtered["objects"]] == [1]
    assert filtered["meta"]["total_count"] == 1
    assert _listed(client, staff, indicator__in=str(world.averaged))["objects"] == []
    assert _listed(client, staff, limit=5000)["meta"]["limit"] == 1000
    assert _listed(client, staff, offset=10)["objects"] == []


def test_the_list_holds_only_what_the_caller_may_read(
    app: Flask,
    client: FlaskClient,
    staff: Person,
    alice: Person,
    test_keys: TestKeys,
    world: EntryWorld,
) -> None:
    r, c = world.regions, world.campaigns[0]
    entered(
        client,
        staff,
        [
            cell(r[3], c, world.summed, 1),
            cell(r[5], c, world.summed, 2),
            cell(r[3], c, world.averaged, 3),
            cell(r[0], c, world.summed, 4),
        ],
    )
    assert _listed(client, alice)["meta"]["total_count"] == 0
    unknown = client.get(ENTRY, headers=stranger(test_keys))
    assert unknown.status_code == 200
    assert unknown.get_json()["objects"] == []
    grant_region(app, alice, r[1], "r")
    grant_indicator(app, alice, world.group, world.summed, "r")
    seen = _listed(client, alice, region__in=f"{r[0]},{r[3]},{r[5]}")
    assert [o["value"] for o in seen["objects"]] == [1]
    assert seen["meta"]["total_count"] == 1


@pytest.mark.parametrize(
    ("params", "errors"),
    [
        ({"region__in": "1,x"}, {"region__in": "not an integer: 'x'"}),
        ({"campaign__in": ""}, {"campaign__in": "not an integer: ''"}),
        ({"indicator__in": str(2**31)}, {"indicator__in": f"out of range: {2**31}"}),
        ({"limit": "0"}, {"limit": "Must be greater than or equal to 1."}),
        (
            {"offset": "-1"},
            {"offset": "Must be greater than or equal to 0 and less than or equal to 100000000."},
        ),
        ({"limit": "x"}, {"limit": "Not a valid integer."}),
        ({"region": "1"}, {"region": "unknown parameter 'region'"}),
        ({"region__in": ["1", "2"]}, {"region__in": "given more than once"}),
        ({"format": "xml"}, {"format": "json or csv"}),
        ({"region__in": ",".join(["1"] * 1001)}, {"region__in": "at most 1000 values"}),
    ],
)
def test_bad_parameters_are_named(
    client: FlaskClient, staff: Person, params: dict[str, Any], errors: dict[str, str]
) -> None:
    response = client.get(ENTRY, query_string=params, headers=staff.headers)
    assert response.status_code == 400
    assert response.get_json() == {
        "error": "invalid query parameters",
        "code": "invalid_parameters",
        "errors": errors,
    }


def test_values_of_rows_written_by_the_api_are_the_databases(
    app: Flask, client: FlaskClient, staff: Person, world: EntryWorld
) -> None:
    """What the answer shows is what is stored (id, author, time)."""
    [answer] = entered(client, staff, cell(world.regions[6], world.campaigns[1], world.summed, 9))
    with app.app_context():
        row = db.session.get(DataPoint, answer["id"])
        assert row is not None
        assert row.value == 9 and row.changed_by_id == staff.user_id
        assert row.updated_at.isoformat(timespec="milliseconds") == answer["updated_at"]
    [listed] = _listed(client, staff)["objects"]
    assert listed == answer


def test_the_list_as_csv(
    app: Flask, client: FlaskClient, staff: Person, alice: Person, world: EntryWorld
) -> None:
    """Every value the caller may read unless a page is asked for, in the JSON's order."""
    keys = [(r, c, i) for r in world.regions for c in world.campaigns for i in world.indicators]
    entered(client, staff, [cell(*key, n) for n, key in enumerate(keys)])
    rows = csv_rows(client, staff.headers, ENTRY)
    assert len(rows) == len(keys) == 48
    assert list(rows[0]) == OBJECT_KEYS
    listed = _listed(client, staff, limit=1000)["objects"]
    assert rows == [{key: "" if v is None else str(v) for key, v in o.items()} for o in listed]
    page = csv_rows(client, staff.headers, "/api/v1/datapointentry/", limit=2, offset=3)
    assert [row["id"] for row in page] == [str(o["id"]) for o in listed[3:5]]
    grant_region(app, alice, world.regions[2], "r")
    grant_indicator(app, alice, world.group, world.averaged, "r")
    mine = csv_rows(client, alice.headers, ENTRY)
    regions = {str(world.regions[n]) for n in (2, 5, 6)}
    assert {(row["region_id"], row["indicator_id"]) for row in mine} == {
        (region, str(world.averaged)) for region in regions
    }
    assert len(mine) == 6  # three regions, two campaigns
