"""GET /api/v1/geo: the regions a caller may read as GeoJSON, with stored or computed values."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from datapoints_service.models import Indicator, Region, db
from tests.datapoints_service.dp_geo_helpers import (
    SQUARE,
    TWO_SQUARES,
    by_region,
    feature_ids,
    geo,
    grant_indicator,
    grant_regions,
    make_geo_world,
    refusal,
    store,
)
from tests.datapoints_service.dp_helpers import Person


def test_features_have_the_shape_else_a_point_else_no_geometry(
    app: Flask, client: FlaskClient, staff: Person
) -> None:
    world = make_geo_world(app)
    response = client.get("/api/v1/geo/", headers=staff.headers)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/geo+json"
    body = response.get_json(force=True)
    assert body["meta"] == {"limit": 1000, "offset": 0, "total_count": 6}
    assert feature_ids(body) == world.regions
    features = by_region(body)
    assert features[world.country]["geometry"] == TWO_SQUARES
    assert features[world.north]["geometry"] == SQUARE
    assert features[world.south]["geometry"] == {"type": "Point", "coordinates": [7.5, 9.0]}
    assert features[world.north_a]["geometry"] == {"type": "Point", "coordinates": [7.0, 8.5]}
    assert features[world.south_a]["geometry"] is None
    north_a = features[world.north_a]
    assert north_a["type"] == "Feature"
    assert north_a["properties"] == {
        "region_id": world.north_a,
        "name": "north a",
        "region_code": north_a["properties"]["region_code"],
        "parent_region_id": world.north,
    }
    assert north_a["properties"]["region_code"].startswith("code-3-")
    assert features[world.country]["properties"]["parent_region_id"] is None


def test_a_user_sees_the_regions_of_their_permission_and_depth_level(
    app: Flask, client: FlaskClient, alice: Person, bob: Person
) -> None:
    world = make_geo_world(app)
    grant_regions(app, alice.user_id, world.north, world.south_a)
    body = geo(client, alice.headers)
    assert feature_ids(body) == [world.north, world.north_a, world.north_b, world.south_a]
    assert body["meta"]["total_count"] == 4
    assert feature_ids(geo(client, alice.headers, depth_level=0)) == feature_ids(body)
    grant_regions(app, bob.user_id, world.country)
    assert feature_ids(geo(client, bob.headers, depth_level=1)) == [
        world.country,
        world.north,
        world.south,
    ]
    assert feature_ids(geo(client, bob.headers, region__in=f"{world.north_a},999")) == [
        world.north_a
    ]
    # Asking for a region outside the permission does not show it, nor count it.
    outside = geo(client, alice.headers, region__in=f"{world.country},{world.north_b}")
    assert feature_ids(outside) == [world.north_b]
    assert outside["meta"]["total_count"] == 1


def test_filters_by_region_and_parent(app: Flask, client: FlaskClient, staff: Person) -> None:
    world = make_geo_world(app)
    chosen = geo(client, staff.headers, region__in=f"{world.south_a},{world.country}")
    assert feature_ids(chosen) == [world.country, world.south_a]
    children = geo(client, staff.headers, parent_region_id=world.north)
    assert feature_ids(children) == [world.north_a, world.north_b]
    assert children["meta"]["total_count"] == 2
    both = geo(client, staff.headers, parent_region_id=world.north, region__in=world.north_b)
    assert feature_ids(both) == [world.north_b]
    assert feature_ids(geo(client, staff.headers, parent_region_id=world.south_a)) == []


def test_values_are_the_stored_ones_else_the_computed_ones(
    app: Flask, client: FlaskClient, staff: Person
) -> None:
    world = make_geo_world(app)
    campaign, summed, averaged = world.campaign, world.summed, world.averaged
    store(
        app,
        {
            (world.north_a, campaign, summed): 10.0,
            (world.north_b, campaign, summed): 5.0,
            (world.south, campaign, summed): 2.5,
            (world.north_a, campaign, averaged): 0.5,
            (world.north_b, campaign, averaged): 1.0,
        },
    )
    features = by_region(geo(client, staff.headers, indicator_id=summed, campaign_id=campaign))
    values = {
        region: (f["properties"]["value"], f["properties"]["is_agg"])
        for region, f in features.items()
    }
    assert values == {
        world.country: (17.5, True),
        world.north: (15.0, True),
        world.south: (2.5, False),
        world.north_a: (10.0, False),
        world.north_b: (5.0, False),
        world.south_a: (None, False),
    }
    averages = by_region(geo(client, staff.headers, indicator_id=averaged, campaign_id=campaign))
    assert averages[world.north]["properties"]["value"] == 0.75
    assert averages[world.country]["properties"]["value"] == 0.75  # south has none
    store(app, {(world.north, campaign, summed): 1.0, (world.north_a, campaign, summed): None})
    again = by_region(geo(client, staff.headers, indicator_id=summed, campaign_id=campaign))
    assert again[world.north]["properties"] == {
        **again[world.north]["properties"],
        "value": 1.0,
        "is_agg": False,
    }
    assert again[world.country]["properties"]["value"] == 3.5
    assert again[world.north_a]["properties"]["value"] is None
    other = geo(
        client, staff.headers, indicator_id=summed, campaign_id=campaign, region__in=world.north
    )
    assert [f["properties"]["value"] for f in other["features"]] == [1.0]


def test_an_indicator_the_caller_may_not_read_is_refused_as_unknown(
    app: Flask, client: FlaskClient, alice: Person
) -> None:
    world = make_geo_world(app)
    grant_regions(app, alice.user_id, world.country)
    store(app, {(world.north_a, world.campaign, world.summed): 10.0})
    refused = refusal(client, alice.headers, indicator_id=world.summed, campaign_id=world.campaign)
    assert refused == {"indicator_id": f"no indicator {world.summed}"}
    with app.app_context():
        unknown = (db.session.query(db.func.max(Indicator.id)).scalar() or 0) + 1
    assert refusal(client, alice.headers, indicator_id=unknown, campaign_id=world.campaign) == {
        "indicator_id": f"no indicator {unknown}"
    }
    grant_indicator(app, alice.user_id, world.summed)
    features = by_region(
        geo(client, alice.headers, indicator_id=world.summed, campaign_id=world.campaign)
    )
    assert features[world.north_a]["properties"]["value"] == 10.0
    assert features[world.north]["properties"]["value"] == 10.0
    refused = refusal(
        client, alice.headers, indicator_id=world.averaged, campaign_id=world.campaign
    )
    assert refused == {"indicator_id": f"no indicator {world.averaged}"}


def test_pages_by_limit_and_offset(app: Flask, client: FlaskClient, staff: Person) -> None:
    world = make_geo_world(app)
    first = geo(client, staff.headers, limit=4)
    second = geo(client, staff.headers, limit=4, offset=4)
    assert feature_ids(first) == world.regions[:4]
    assert feature_ids(second) == world.regions[4:]
    assert second["meta"] == {"limit": 4, "offset": 4, "total_count": 6}
    past = geo(client, staff.headers, offset=50)
    assert past["features"] == [] and past["meta"]["total_count"] == 6
    assert geo(client, staff.headers, limit=50_000)["meta"]["limit"] == 10_000


def test_bad_parameters_are_refused_naming_each(
    app: Flask, client: FlaskClient, staff: Person
) -> None:
    world = make_geo_world(app)
    errors = refusal(
        client,
        staff.headers,
        region__in="1,x",
        limit=0,
        offset=-1,
        depth_level="deep",
        id=3,
        parent_region_id=2**40,
    )
    assert set(errors) == {"region__in", "limit", "offset", "depth_level", "id", "parent_region_id"}
    assert errors["id"] == "unknown parameter 'id'"
    assert "x" in errors["region__in"]
    assert refusal(client, staff.headers, indicator_id=world.summed) == {
        "campaign_id": "required with indicator_id"
    }
    assert refusal(client, staff.headers, campaign_id=world.campaign) == {
        "indicator_id": "required with campaign_id"
    }
    assert refusal(client, staff.headers, indicator_id=world.summed, campaign_id=9999) == {
        "campaign_id": "no campaign 9999"
    }
    twice = client.get("/api/v1/geo?limit=1&limit=2", headers=staff.headers)
    assert twice.status_code == 400
    assert twice.get_json()["errors"] == {"limit": "given more than once"}
    assert client.get("/api/v1/geo").status_code == 401


def test_a_shape_is_written_through_the_region_resource_and_refused_when_malformed(
    app: Flask, client: FlaskClient, staff: Person
) -> None:
    world = make_geo_world(app)
    written = client.put(
        f"/api/v2/region/{world.south_a}", json={"shape": SQUARE}, headers=staff.headers
    )
    assert written.status_code == 200, written.get_json()
    shown = geo(client, staff.headers, region__in=world.south_a)["features"][0]
    assert shown["geometry"] == SQUARE
    malformed = [
        {"type": "Point", "coordinates": [1.0, 2.0]},
        {"type": "Polygon", "coordinates": [[[1.0, 2.0], [1.0]]]},
        {"type": "Polygon", "coordinates": [[[200.0, 2.0], [1.0, 2.0], [1.0, 3.0], [200.0, 2.0]]]},
        "a square",
    ]
    for shape in malformed:
        refused = client.put(
            f"/api/v2/region/{world.south_a}", json={"shape": shape}, headers=staff.headers
        )
        assert refused.status_code == 400, shape
        assert set(refused.get_json()["errors"]) == {"shape"}
    with app.app_context():
        region = db.session.get(Region, world.south_a)
        assert region is not None and region.shape == SQUARE
    cleared = client.put(
        f"/api/v2/region/{world.south_a}", json={"shape": None}, headers=staff.headers
    )
    assert cleared.status_code == 200
    assert geo(client, staff.headers, region__in=world.south_a)["features"][0]["geometry"] is None
