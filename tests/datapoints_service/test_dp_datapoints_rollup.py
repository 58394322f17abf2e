"""Roll-ups against brute force: a random tree of 150 regions, values stored at random
levels, and every (region, campaign, indicator) the API answers compared with the
document's recursive definition computed here in plain Python; again after values are
added and removed, regions moved and aggregations changed."""

from __future__ import annotations

import random

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.datapoints_service.dp_helpers import Person, region_tree
from tests.datapoints_service.dp_values import (
    Key,
    Model,
    campaigns,
    indicators,
    random_parents,
    read_all,
    store,
)

AGGREGATIONS = ("sum", "avg", "none", "sum")


def _random_cells(
    rng: random.Random, model: Model, leaf_share: float, middle_share: float
) -> dict[Key, float | None]:
    """Values for about `leaf_share` of the leaves' cells and `middle_share` of the
    other regions' cells."""
    parents = {parent for parent in model.parent.values() if parent is not None}
    cells: dict[Key, float | None] = {}
    for region in model.parent:
        share = middle_share if region in parents else leaf_share
        for campaign in model.campaigns:
            for indicator in model.aggregation:
                if rng.random() < share:
                    cells[(region, campaign, indicator)] = rng.randint(-50, 2000) / 8
    return cells


def _removals(rng: random.Random, model: Model, count: int) -> dict[Key, float | None]:
    return dict.fromkeys(rng.sample(sorted(model.stored), count))


def _assert_answers_match(client: FlaskClient, staff: Person, model: Model) -> None:
    observed = read_all(client, staff.headers)
    expected = model.expected()
    assert sorted(observed) == sorted(expected)
    assert {key: value for key, (value, _) in observed.items()} == pytest.approx(
        {key: value for key, (value, _) in expected.items()}
    )
    assert {key: agg for key, (_, agg) in observed.items()} == {
        key: agg for key, (_, agg) in expected.items()
    }


def _subtree(model: Model, region: int) -> set[int]:
    below = {region}
    grown = True
    while grown:
        more = {child for child, parent in model.parent.items() if parent in below}
        grown = not more <= below
        below |= more
    return below


def _move(
    client: FlaskClient, staff: Person, model: Model, region: int, parent: int | None
) -> None:
    response = client.put(
        f"/api/v2/region/{region}", json={"parent_region_id": parent}, headers=staff.headers
    )
    assert response.status_code == 200, response.get_json()
    model.parent[region] = parent


def _set_aggregation(
    client: FlaskClient, staff: Person, model: Model, indicator: int, aggregation: str
) -> None:
    response = client.put(
        f"/api/v2/indicator/{indicator}", json={"aggregation": aggregation}, headers=staff.headers
    )
    assert response.status_code == 200, response.get_json()
    model.aggregation[indicator] = aggregation


def _world(app: Flask, rng: random.Random) -> Model:
    parents = random_parents(rng, 150, max_depth=4)
    regions = region_tree(app, parents)
    parent = {
        regions[index]: None if above is None else regions[above]
        for index, above in enumerate(parents)
    }
    dates = [
        ("2015-01-01", "2015-01-31"),
        ("2015-06-01", "2015-06-30"),
        ("2016-01-01", "2016-01-31"),
    ]
    names = [(f"indicator {n}", aggregation) for n, aggregation in enumerate(AGGREGATIONS)]
    made = indicators(app, names)
    return Model(parent, dict(zip(made, AGGREGATIONS, strict=True)), campaigns(app, dates))


def test_rollups_match_the_recursive_definition_through_changes(
    app: Flask, client: FlaskClient, staff: Person
) -> None:
    rng = random.Random(20150601)
    model = _world(app, rng)
    assert read_all(client, staff.headers) == {}  # nothing stored: nothing known

    first = _random_cells(rng, model, leaf_share=0.5, middle_share=0.12)
    store(app, first)
    model.apply(first)
    assert any(is_agg for _, is_agg in model.expected().values())
    _assert_answers_match(client, staff, model)

    # More values (some replacing stored ones), and some removed.
    changes = _random_cells(rng, model, leaf_share=0.08, middle_share=0.05)
    changes.update(_removals(rng, model, 60))
    store(app, changes)
    model.apply(changes)
    _assert_answers_match(client, staff, model)

    # A middle region moved under another branch, and another made a root.
    middles = [
        r for r in model.parent if model.parent[r] is not None and len(_subtree(model, r)) > 2
    ]
    moved = rng.choice(middles)
    targets = [
        r for r in model.parent if r not in _subtree(model, moved) and r != model.parent[moved]
    ]
    _move(client, staff, model, moved, rng.choice(targets))
    _assert_answers_match(client, staff, model)
    _move(client, staff, model, rng.choice([r for r in middles if r != moved]), None)
    _assert_answers_match(client, staff, model)

    # Aggregations changed: sum -> avg, none -> sum, avg -> none.
    summed, averaged, unaggregated, _ = list(model.aggregation)
    _set_aggregation(client, staff, model, summed, "avg")
    _set_aggregation(client, staff, model, unaggregated, "sum")
    _set_aggregation(client, staff, model, averaged, "none")
    _assert_answers_match(client, staff, model)


def test_a_region_with_its_own_value_hides_what_is_below(
    app: Flask, client: FlaskClient, staff: Person
) -> None:
    """Country > province > two districts: a province's stored value is the country's
    input, not its districts' (no leaf counted twice), and avg is the mean of children."""
    country, province, district, district2, province2 = region_tree(app, [None, 0, 1, 1, 0])
    (campaign,) = campaigns(app, [("2015-01-01", "2015-01-31")])
    total, share = indicators(app, [("total", "sum"), ("share", "avg")])
    store(
        app,
        {
            (district, campaign, total): 10.0,
            (district2, campaign, total): 20.0,
            (province2, campaign, total): 5.0,
            (district, campaign, share): 0.5,
            (district2, campaign, share): 1.0,
            (province2, campaign, share): 0.0,
        },
    )
    known = read_all(client, staff.headers)
    assert known[(province, campaign, total)] == (30.0, True)
    assert known[(country, campaign, total)] == (35.0, True)
    share_value, share_is_agg = known[(country, campaign, share)]
    assert share_value == pytest.approx(0.375)
    assert share_is_agg
    store(app, {(province, campaign, total): 100.0})
    known = read_all(client, staff.headers)
    assert known[(province, campaign, total)] == (100.0, False)
    assert known[(country, campaign, total)] == (105.0, True)
    store(app, {(province, campaign, total): None, (district, campaign, total): None})
    known = read_all(client, staff.headers)
    assert known[(province, campaign, total)] == (20.0, True)
    assert known[(country, campaign, total)] == (25.0, True)
