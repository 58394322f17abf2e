"""Helpers for the data entry tests: a small region tree with campaigns and indicators,
permission rows written straight to the database, and the computed values a walk of the
tree gives (to compare the roll-up table with)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from datapoints_service.models import (
    AVG,
    NONE,
    SUM,
    Campaign,
    CampaignType,
    DataPoint,
    DataPointRollup,
    Group,
    GroupPermission,
    Indicator,
    Region,
    RegionPermission,
    UserGroup,
    db,
)
from tests.datapoints_service.dp_helpers import Person, region_tree

ENTRY = "/api/v1/dataentry"
# country 0; provinces 1 and 2; districts 3, 4 (in 1) and 5, 6 (in 2); a ward 7 in 3.
TREE: list[int | None] = [None, 0, 0, 1, 1, 2, 2, 3]
Key = tuple[int, int, int]


@dataclass(frozen=True)
class EntryWorld:
    regions: list[int]
    campaigns: list[int]
    summed: int  # an indicator with aggregation "sum"
    averaged: int  # "avg"
    unrolled: int  # "none"
    group: int

    @property
    def indicators(self) -> list[int]:
        return [self.summed, self.averaged, self.unrolled]


def make_entry_world(app: Flask) -> EntryWorld:
    regions = region_tree(app, TREE)
    tag = uuid.uuid4().hex[:8]
    with app.app_context():
        session = db.session()
        office = session.get(Region, regions[0])
        assert office is not None
        kind = CampaignType(name=f"campaigns-{tag}")
        group = Group(name=f"enterers-{tag}")
        session.add_all([kind, group])
        session.flush()
        campaigns = [
            Campaign(
                name=f"{tag}-{month}",
                slug=f"{tag}-{month}",
                start_date=date(2016, month, 1),
                end_date=date(2016, month, 28),
                office_id=office.office_id,
                campaign_type_id=kind.id,
            )
            for month in (1, 2)
        ]
        indicators = [
            Indicator(name=f"{tag}-{how}", short_name=how, slug=f"{tag}-{how}", aggregation=how)
            for how in (SUM, AVG, NONE)
        ]
        session.add_all([*campaigns, *indicators])
        session.commit()
        return EntryWorld(
            regions=regions,
            campaigns=[campaign.id for campaign in campaigns],
            summed=indicators[0].id,
            averaged=indicators[1].id,
            unrolled=indicators[2].id,
            group=group.id,
        )


def grant_region(app: Flask, person: Person, region_id: int, read_write: str) -> None:
    with app.app_context():
        db.session.add(
            RegionPermission(user_id=person.user_id, region_id=region_id, read_write=read_write)
        )
        db.session.commit()


def grant_indicator(
    app: Flask, person: Person, group_id: int, indicator_id: int, read_write: str
) -> None:
    """`person` in `group_id` (once), and the group's permission on the indicator."""
    with app.app_context():
        member = db.session.scalar(
            select(UserGroup.id).where(
                UserGroup.user_id == person.user_id, UserGroup.group_id == group_id
            )
        )
        if member is None:
            db.session.add(UserGroup(user_id=person.user_id, group_id=group_id))
        db.session.add(
            GroupPermission(group_id=group_id, indicator_id=indicator_id, read_write=read_write)
        )
        db.session.commit()


def cell(
    region: int | str, campaign: int | str, indicator: int | str, value: Any
) -> dict[str, Any]:
    return {"region_id": region, "campaign_id": campaign, "indicator_id": indicator, "value": value}


def enter(client: FlaskClient, person: Person, body: Any, path: str = ENTRY) -> TestResponse:
    return client.post(path, json=body, headers=person.headers)


def entered(client: FlaskClient, person: Person, body: Any) -> list[dict[str, Any]]:
    """POST values that must be stored; the answer's objects."""
    response = enter(client, person, body)
    assert response.status_code == 201, response.get_json()
    objects: list[dict[str, Any]] = response.get_json()["objects"]
    return objects


def stored_values(app: Flask) -> dict[Key, float]:
    with app.app_context():
        rows = db.session.execute(
            select(
                DataPoint.region_id, DataPoint.campaign_id, DataPoint.indicator_id, DataPoint.value
            )
        )
        return {(r, c, i): v for r, c, i, v in rows}


def rollup_values(app: Flask) -> dict[Key, float]:
    """The roll-up table as it is."""
    with app.app_context():
        rows = db.session.execute(
            select(
                DataPointRollup.region_id,
                DataPointRollup.campaign_id,
                DataPointRollup.indicator_id,
                DataPointRollup.value,
            )
        )
        return {(r, c, i): v for r, c, i, v in rows}


def expected_rollups(app: Flask) -> dict[Key, float]:
    """The computed values by the definition, walking the tree from the stored values: a
    region without a stored value gets the sum (or mean, for `avg`) of its children's
    values; `none` indicators get none."""
    with app.app_context():
        regions = db.session.execute(select(Region.id, Region.parent_region_id))
        parents = {region: parent for region, parent in regions}
        indicators = db.session.execute(select(Indicator.id, Indicator.aggregation))
        aggregation = {indicator: how for indicator, how in indicators}
    stored = stored_values(app)
    children: dict[int, list[int]] = defaultdict(list)
    for region, parent in parents.items():
        if parent is not None:
            children[parent].append(region)
    pairs = {(c, i) for (_r, c, i) in stored if aggregation[i] != NONE}
    computed: dict[Key, float] = {}
    for campaign, indicator in pairs:
        for region in parents:
            _value(region, campaign, indicator, children, stored, aggregation, computed)
    return {
        key: value for key, value in computed.items() if key not in stored and value is not None
    }


def _value(
    region: int,
    campaign: int,
    indicator: int,
    children: dict[int, list[int]],
    stored: dict[Key, float],
    aggregation: dict[int, str],
    computed: dict[Key, Any],
) -> float | None:
    key = (region, campaign, indicator)
    if key in stored:
        return stored[key]
    if key not in computed:
        below = [
            _value(child, campaign, indicator, children, stored, aggregation, computed)
            for child in children[region]
        ]
        known = [value for value in below if value is not None]
        if not known:
            computed[key] = None
        elif aggregation[indicator] == AVG:
            computed[key] = sum(known) / len(known)
        else:
            computed[key] = sum(known)
    value: float | None = computed[key]
    return value


def assert_rollups_current(app: Flask) -> None:
    """The roll-up table holds exactly what the definition gives (floats compared with a
    relative tolerance: the database sums in its own order)."""
    actual, expected = rollup_values(app), expected_rollups(app)
    assert set(actual) == set(expected)
    for key, value in expected.items():
        assert abs(actual[key] - value) <= 1e-9 * max(1.0, abs(value)), (key, actual[key], value)
