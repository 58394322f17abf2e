"""Helpers for the map's tests: a small region tree with places, outlines and values,
written straight to the database, and permissions granted to a caller."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from datapoints_service.models import (
    AVG,
    Campaign,
    CampaignType,
    Group,
    GroupPermission,
    Indicator,
    Office,
    Region,
    RegionPermission,
    UserGroup,
    db,
)
from datapoints_service.values import Cell, write_cells
from tests.datapoints_service.dp_helpers import region_tree

SQUARE = {
    "type": "Polygon",
    "coordinates": [[[3.0, 6.0], [4.0, 6.0], [4.0, 7.0], [3.0, 7.0], [3.0, 6.0]]],
}
TWO_SQUARES = {
    "type": "MultiPolygon",
    "coordinates": [
        [[[5.0, 6.0], [6.0, 6.0], [6.0, 7.0], [5.0, 6.0]]],
        [[[7.0, 6.0], [8.0, 6.0], [8.0, 7.0], [7.0, 6.0]]],
    ],
}


@dataclass(frozen=True)
class GeoWorld:
    """country -> (north -> (north_a, north_b), south -> (south_a)), a campaign, a summed
    and an averaged indicator.

    country has an outline (MultiPolygon), north an outline (Polygon), south, north_a
    and north_b a place (longitude and latitude), south_a neither.
    """

    country: int
    north: int
    south: int
    north_a: int
    north_b: int
    south_a: int
    campaign: int
    summed: int
    averaged: int

    @property
    def regions(self) -> list[int]:
        return [self.country, self.north, self.south, self.north_a, self.north_b, self.south_a]


PLACES = {2: (9.0, 7.5), 3: (8.5, 7.0), 4: (8.0, 7.25)}  # index: (latitude, longitude)
OUTLINES: dict[int, dict[str, Any]] = {0: TWO_SQUARES, 1: SQUARE}


def make_geo_world(app: Flask) -> GeoWorld:
    ids = region_tree(app, [None, 0, 0, 1, 1, 2])
    with app.app_context():
        session = db.session()
        names = ["country", "north", "south", "north a", "north b", "south a"]
        for index, region_id in enumerate(ids):
            region = session.get(Region, region_id)
            assert region is not None
            region.name = names[index]
            region.shape = OUTLINES.get(index)
            region.latitude, region.longitude = PLACES.get(index, (None, None))
        office = session.get(Office, session.get(Region, ids[0]).office_id)  # type: ignore[union-attr]
        assert office is not None
        kind = CampaignType(name="geo campaigns")
        session.add(kind)
        session.flush()
        campaign = Campaign(
            name="geo-june",
            slug="geo-june",
            start_date=date(2016, 6, 1),
            end_date=date(2016, 6, 30),
            office_id=office.id,
            campaign_type_id=kind.id,
        )
        summed = Indicator(name="vaccinated", short_name="vaccinated", slug="vaccinated")
        averaged = Indicator(
            name="coverage", short_name="coverage", slug="coverage", aggregation=AVG
        )
        session.add_all([campaign, summed, averaged])
        session.commit()
        country, north, south, north_a, north_b, south_a = ids
        return GeoWorld(
            country, north, south, north_a, north_b, south_a, campaign.id, summed.id, averaged.id
        )


def store(app: Flask, values: dict[tuple[int, int, int], float | None]) -> None:
    """Stored values (region, campaign, indicator) -> value, written as data entry does."""
    with app.app_context():
        cells = [Cell(*key, value) for key, value in values.items()]
        write_cells(db.session(), cells, changed_by_id=None)
        db.session.commit()


def grant_regions(app: Flask, user_id: int, *region_ids: int) -> None:
    with app.app_context():
        db.session.add_all(RegionPermission(user_id=user_id, region_id=r) for r in region_ids)
        db.session.commit()


def grant_indicator(app: Flask, user_id: int, indicator_id: int) -> None:
    """A group of the user's own, holding a read permission for the indicator."""
    with app.app_context():
        group = Group(name=f"readers of {indicator_id} for {user_id}")
        db.session.add(group)
        db.session.flush()
        db.session.add(UserGroup(user_id=user_id, group_id=group.id))
        db.session.add(GroupPermission(group_id=group.id, indicator_id=indicator_id))
        db.session.commit()


def geo(client: FlaskClient, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    """A 200 answer of GET /api/v1/geo, read as GeoJSON."""
    response = client.get("/api/v1/geo", query_string=params, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/geo+json"
    body: dict[str, Any] = response.get_json(force=True)
    assert body["type"] == "FeatureCollection"
    return body


def feature_ids(body: dict[str, Any]) -> list[int]:
    return [feature["id"] for feature in body["features"]]


def by_region(body: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {feature["id"]: feature for feature in body["features"]}


def refusal(client: FlaskClient, headers: dict[str, str], **params: Any) -> dict[str, str]:
    """The `errors` of a 400 answer of GET /api/v1/geo."""
    response = client.get("/api/v1/geo", query_string=params, headers=headers)
    assert response.status_code == 400, response.get_data(as_text=True)
    body = response.get_json()
    assert body["code"] == "invalid_parameters"
    errors: dict[str, str] = body["errors"]
    return errors
