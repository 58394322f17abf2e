"""Computed values kept current: by data entry up the tree, by a region moved between
parents (the old and the new ancestors), by an indicator's aggregation changed (sum, avg,
none), each through the API, checked against the roll-up table and a walk of the tree."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.datapoints_service.dp_entry_helpers import (
    EntryWorld,
    assert_rollups_current,
    cell,
    entered,
    make_entry_world,
    rollup_values,
)
from tests.datapoints_service.dp_helpers import Person


@pytest.fixture
def world(app: Flask) -> EntryWorld:
    return make_entry_world(app)


def _leaves(client: FlaskClient, staff: Person, world: EntryWorld, indicator: int) -> None:
    """ward 7 = 1 (under district 3), district 4 = 2, district 5 = 4, district 6 = 8, in
    the first campaign."""
    r, c = world.regions, world.campaigns[0]
    body = [cell(r[7], c, indicator, 1), cell(r[4], c, indicator, 2)]
    body += [cell(r[5], c, indicator, 4), cell(r[6], c, indicator, 8)]
    entered(client, staff, body)


def _computed(app: Flask, world: EntryWorld, indicator: int) -> dict[int, float]:
    """The computed values of the first campaign's `indicator`, by region index."""
    index = {region: n for n, region in enumerate(world.regions)}
    c = world.campaigns[0]
    return {
        index[r]: value
        for (r, campaign, i), value in rollup_values(app).items()
        if campaign == c and i == indicator
    }


def _move(client: FlaskClient, staff: Person, region: int, parent: int | None) -> None:
    response = client.put(
        f"/api/v2/region/{region}", json={"parent_region_id": parent}, headers=staff.headers
    )
    assert response.status_code == 200, response.get_json()


def _aggregate(client: FlaskClient, staff: Person, indicator: int, how: str) -> None:
    response = client.post(
        "/api/v2/indicator/", json={"id": indicator, "aggregation": how}, headers=staff.headers
    )
    assert response.status_code == 200, response.get_json()


def test_entered_values_roll_up_the_tree(
    app: Flask, client: FlaskClient, staff: Person, world: EntryWorld
) -> None:
    for indicator in world.indicators:
        _leaves(client, staff, world, indicator)
    assert _computed(app, world, world.summed) == {3: 1, 1: 3, 2: 12, 0: 15}
    assert _computed(app, world, world.averaged) == {3: 1, 1: 1.5, 2: 6, 0: 3.75}
    assert _computed(app, world, world.unrolled) == {}
    assert_rollups_current(app)


def test_a_stored_value_above_the_leaves_is_counted_once(
    app: Flask, client: FlaskClient, staff: Person, world: EntryWorld
) -> None:
    _leaves(client, staff, world, world.summed)
    province = world.regions[1]
    entered(client, staff, cell(province, world.campaigns[0], world.summed, 100))
    assert _computed(app, world, world.summed) == {3: 1, 2: 12, 0: 112}
    entered(client, staff, cell(world.regions[7], world.campaigns[0], world.summed, 50))
    assert _computed(app, world, world.summed) == {3: 50, 2: 12, 0: 112}
    entered(client, staff, cell(province, world.campaigns[0], world.summed, None))
    assert _computed(app, world, world.summed) == {3: 50, 1: 52, 2: 12, 0: 64}
    assert_rollups_current(app)


def test_campaigns_roll_up_apart(
    app: Flask, client: FlaskClient, staff: Person, world: EntryWorld
) -> None:
    r, (c1, c2), i = world.regions, world.campaigns, world.summed
    entered(client, staff, [cell(r[4], c1, i, 1), cell(r[4], c2, i, 10), cell(r[5], c2, i, 5)])
    computed = rollup_values(app)
    assert computed[(r[0], c1, i)] == 1
    assert computed[(r[0], c2, i)] == 15
    assert (r[2], c1, i) not in computed
    assert_rollups_current(app)


def test_a_moved_region_changes_its_old_and_new_ancestors(
    app: Flask, client: FlaskClient, staff: Person, world: EntryWorld
) -> None:
    _leaves(client, staff, world, world.summed)
    _leaves(client, staff, world, world.averaged)
    r = world.regions
    _move(client, staff, r[3], r[2])  # district 3 (with ward 7) into province 2
    assert _computed(app, world, world.summed) == {3: 1, 1: 2, 2: 13, 0: 15}
    averaged = _computed(app, world, world.averaged)
    assert averaged == {3: 1, 1: 2, 2: pytest.approx(13 / 3), 0: pytest.approx((2 + 13 / 3) / 2)}
    assert_rollups_current(app)

    _move(client, staff, r[4], None)  # province 1 is left without values
    assert _computed(app, world, world.summed) == {3: 1, 2: 13, 0: 13}
    assert_rollups_current(app)

    _move(client, staff, r[2], r[4])  # province 2's subtree under the new root 4
    assert _computed(app, world, world.summed) == {3: 1, 2: 13}
    assert (r[4], world.campaigns[0], world.summed) not in rollup_values(app)  # stored: 2
    assert_rollups_current(app)


def test_a_move_of_a_region_with_a_stored_value_above_its_leaves(
    app: Flask, client: FlaskClient, staff: Person, world: EntryWorld
) -> None:
    _leaves(client, staff, world, world.summed)
    r, c, i = world.regions, world.campaigns[0], world.summed
    entered(client, staff, cell(r[3], c, i, 40))  # the district's own figure hides its ward
    _move(client, staff, r[7], r[6])  # the ward goes to a district that has a stored value
    assert _computed(app, world, i) == {1: 42, 2: 12, 0: 54}
    _move(client, staff, r[3], r[5])  # a district under a district holding a stored value
    assert _computed(app, world, i) == {1: 2, 2: 12, 0: 14}
    assert_rollups_current(app)


def test_a_new_aggregation_recomputes_the_indicator(
    app: Flask, client: FlaskClient, staff: Person, world: EntryWorld
) -> None:
    _leaves(client, staff, world, world.summed)
    _leaves(client, staff, world, world.averaged)
    averaged_before = _computed(app, world, world.averaged)
    _aggregate(client, staff, world.summed, "avg")
    assert _computed(app, world, world.summed) == {3: 1, 1: 1.5, 2: 6, 0: 3.75}
    assert_rollups_current(app)
    _aggregate(client, staff, world.summed, "none")
    assert _computed(app, world, world.summed) == {}
    assert _computed(app, world, world.averaged) == averaged_before  # others untouched
    assert_rollups_current(app)
    _aggregate(client, staff, world.summed, "sum")
    assert _computed(app, world, world.summed) == {3: 1, 1: 3, 2: 12, 0: 15}
    assert_rollups_current(app)


def test_values_entered_for_a_none_indicator_do_not_roll_up_until_it_aggregates(
    app: Flask, client: FlaskClient, staff: Person, world: EntryWorld
) -> None:
    _leaves(client, staff, world, world.unrolled)
    assert _computed(app, world, world.unrolled) == {}
    response = client.put(
        f"/api/v2/indicator/{world.unrolled}", json={"aggregation": "sum"}, headers=staff.headers
    )
    assert response.status_code == 200, response.get_json()
    assert _computed(app, world, world.unrolled) == {3: 1, 1: 3, 2: 12, 0: 15}
    assert_rollups_current(app)


@pytest.mark.parametrize("resource", ["region", "campaign", "indicator"])
def test_what_a_stored_value_names_is_not_deleted(
    app: Flask, client: FlaskClient, staff: Person, world: EntryWorld, resource: str
) -> None:
    """A stored value is part of its ancestors' computed values: deleting its region (a
    leaf), campaign or indicator is refused, so no computed value counts a row that no
    longer exists."""
    _leaves(client, staff, world, world.summed)
    row_id = {
        "region": world.regions[6],
        "campaign": world.campaigns[0],
        "indicator": world.summed,
    }[resource]
    response = client.delete(f"/api/v2/{resource}/{row_id}", headers=staff.headers)
    assert response.status_code == 409, response.get_json()
    assert response.get_json()["code"] == "conflict"
    assert response.get_json()["referred_by"] == [f"datapoint.{resource}_id"]
    assert _computed(app, world, world.summed) == {3: 1, 1: 3, 2: 12, 0: 15}
