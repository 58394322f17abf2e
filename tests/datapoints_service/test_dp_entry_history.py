"""The history of stored values (`/api/v2/datapoint_history/`): every change entered is
a row (who, when, from what to what; null for a value created or removed), nothing else
is; staff read it, nobody writes it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.datapoints_service.dp_entry_helpers import (
    EntryWorld,
    cell,
    enter,
    entered,
    grant_indicator,
    grant_region,
    make_entry_world,
)
from tests.datapoints_service.dp_helpers import Person, listing

HISTORY = "/api/v2/datapoint_history/"


@pytest.fixture
def world(app: Flask) -> EntryWorld:
    return make_entry_world(app)


def _history(client: FlaskClient, person: Person, **params: Any) -> list[dict[str, Any]]:
    params.setdefault("order_by", "id")
    objects: list[dict[str, Any]] = listing(client, person.headers, "datapoint_history", **params)[
        "objects"
    ]
    return objects


def test_every_change_is_a_row_with_who_when_and_what(
    app: Flask, client: FlaskClient, staff: Person, alice: Person, world: EntryWorld
) -> None:
    key = (world.regions[3], world.campaigns[0], world.summed)
    grant_region(app, alice, world.regions[1], "w")
    grant_indicator(app, alice, world.group, world.summed, "w")
    entered(client, staff, cell(*key, 1))  # created
    entered(client, staff, cell(*key, 2))  # changed
    entered(client, staff, cell(*key, "2"))  # the same value: no row
    entered(client, alice, cell(*key, None))  # removed
    entered(client, alice, cell(*key, None))  # nothing to remove: no row
    entered(client, alice, cell(*key, 3.25))  # created again
    rows = _history(client, staff)
    assert [(row["old_value"], row["new_value"], row["changed_by_id"]) for row in rows] == [
        (None, 1, staff.user_id),
        (1, 2, staff.user_id),
        (2, None, alice.user_id),
        (None, 3.25, alice.user_id),
    ]
    for row in rows:
        assert (row["region_id"], row["campaign_id"], row["indicator_id"]) == key
        assert row["document_id"] is None
    moments = [datetime.fromisoformat(row["changed_at"]) for row in rows]
    assert moments == sorted(moments)
    assert all(moment.utcoffset() is not None for moment in moments)


def test_a_list_is_one_row_per_changed_cell_and_a_refusal_writes_none(
    app: Flask, client: FlaskClient, staff: Person, world: EntryWorld
) -> None:
    r, c, i = world.regions, world.campaigns[0], world.summed
    entered(client, staff, [cell(r[3], c, i, 1), cell(r[4], c, i, 2), cell(r[3], c, i, 5)])
    refused = enter(client, staff, [cell(r[5], c, i, 1), cell(999_999, c, i, 1)])
    assert refused.status_code == 422
    rows = _history(client, staff)
    assert [(row["region_id"], row["old_value"], row["new_value"]) for row in rows] == [
        (r[3], None, 5),
        (r[4], None, 2),
    ]
    by_region = _history(client, staff, region_id=r[4])
    assert [row["new_value"] for row in by_region] == [2]


def test_only_staff_read_the_history(
    app: Flask, client: FlaskClient, staff: Person, clerk: Person, alice: Person, world: EntryWorld
) -> None:
    grant_region(app, alice, world.regions[0], "w")
    grant_indicator(app, alice, world.group, world.summed, "w")
    entered(client, alice, cell(world.regions[3], world.campaigns[0], world.summed, 1))
    refused = client.get(HISTORY, headers=alice.headers)
    assert refused.status_code == 403
    assert refused.get_json()["code"] == "forbidden"
    assert len(_history(client, clerk)) == 1  # staff without privileges read it too


def test_nobody_writes_the_history(client: FlaskClient, root: Person) -> None:
    body = {"region_id": 1, "campaign_id": 1, "indicator_id": 1, "new_value": 1}
    response = client.post(HISTORY, json=body, headers=root.headers)
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD"
