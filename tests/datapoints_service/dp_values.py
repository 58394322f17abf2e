"""Helpers for the datapoint reading tests: campaigns and indicators written straight to
the database, values stored through `values.write_cells`, a random region tree, the
expected value of every cell computed in plain Python from the recursive definition, and
`GET /api/v1/datapoint/` read back whole."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from datapoints_service.models import AVG, NONE, Campaign, CampaignType, Indicator, Office, db
from datapoints_service.values import Cell, write_cells

PATH = "/api/v1/datapoint/"
Key = tuple[int, int, int]  # (region, campaign, indicator)
Known = dict[Key, tuple[float, bool]]  # -> (value, is_agg)


def campaigns(app: Flask, dates: Iterable[tuple[str, str]], prefix: str = "c") -> list[int]:
    """Campaigns of these (start, end) dates (ISO), named `<prefix>-<index>`."""
    with app.app_context():
        office = Office(name=f"office-{uuid.uuid4().hex[:8]}")
        kind = CampaignType(name=f"type-{uuid.uuid4().hex[:8]}")
        db.session.add_all([office, kind])
        db.session.flush()
        rows = [
            Campaign(
                name=f"{prefix}-{index}",
                slug=f"{prefix}-{index}-{uuid.uuid4().hex[:6]}",
                start_date=date.fromisoformat(start),
                end_date=date.fromisoformat(end),
                office_id=office.id,
                campaign_type_id=kind.id,
            )
            for index, (start, end) in enumerate(dates)
        ]
        db.session.add_all(rows)
        db.session.commit()
        return [row.id for row in rows]


def indicators(app: Flask, specs: Iterable[tuple[str, str]]) -> list[int]:
    """Indicators of these (name, aggregation)."""
    with app.app_context():
        rows = [
            Indicator(
                name=name,
                short_name=name,
                slug=f"{uuid.uuid4().hex[:10]}",
                aggregation=aggregation,
            )
            for name, aggregation in specs
        ]
        db.session.add_all(rows)
        db.session.commit()
        return [row.id for row in rows]


def store(app: Flask, cells: Mapping[Key, float | None]) -> None:
    """Store (a number) or remove (None) values, as data entry does, in one transaction."""
    with app.app_context():
        write_cells(
            db.session(),
            [Cell(r, c, i, value) for (r, c, i), value in cells.items()],
            changed_by_id=None,
        )
        db.session.commit()


def random_parents(rng: random.Random, count: int, max_depth: int) -> list[int | None]:
    """A random forest of `count` regions, each one's parent an earlier region (index),
    at most `max_depth` levels below a root (index 0 and about one in 50 are roots)."""
    parents: list[int | None] = [None]
    depth = [0]
    for _ in range(1, count):
        candidates = [index for index, level in enumerate(depth) if level < max_depth]
        if rng.random() < 0.02:
            parents.append(None)
            depth.append(0)
            continue
        parent = rng.choice(candidates)
        parents.append(parent)
        depth.append(depth[parent] + 1)
    return parents


@dataclass
class Model:
    """The world in plain Python: parents (region id -> parent id), stored values and
    aggregations; `expected()` applies the document's definition recursively."""

    parent: dict[int, int | None]
    aggregation: dict[int, str]
    campaigns: list[int]
    stored: dict[Key, float] = field(default_factory=dict)

    def apply(self, cells: Mapping[Key, float | None]) -> None:
        for key, value in cells.items():
            if value is None:
                self.stored.pop(key, None)
            else:
                self.stored[key] = value

    def expected(self) -> Known:
        children: dict[int, list[int]] = defaultdict(list)
        for region, parent in self.parent.items():
            if parent is not None:
                children[parent].append(region)
        known: Known = {}
        for campaign in self.campaigns:
            for indicator, aggregation in self.aggregation.items():
                memo: dict[int, float | None] = {}
                for region in self.parent:
                    value = self._value(region, campaign, indicator, aggregation, children, memo)
                    if value is not None:
                        stored = (region, campaign, indicator) in self.stored
                        known[(region, campaign, indicator)] = (value, not stored)
        return known

    def _value(
        self,
        region: int,
        campaign: int,
        indicator: int,
        aggregation: str,
        children: dict[int, list[int]],
        memo: dict[int, float | None],
    ) -> float | None:
        if region in memo:
            return memo[region]
        value = self.stored.get((region, campaign, indicator))
        if value is None and aggregation != NONE:
            below = [
                self._value(child, campaign, indicator, aggregation, children, memo)
                for child in children[region]
            ]
            numbers = [number for number in below if number is not None]
            if numbers:
                value = sum(numbers) / len(numbers) if aggregation == AVG else sum(numbers)
        memo[region] = value
        return value


def answer(
    client: FlaskClient, headers: dict[str, str], status: int = 200, **params: Any
) -> dict[str, Any]:
    response = client.get(PATH, query_string=params, headers=headers)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    body: dict[str, Any] = response.get_json()
    return body


def read_all(client: FlaskClient, headers: dict[str, str], **params: Any) -> Known:
    """Every known value the API answers (pivoted pages of 1,000); checks that each object
    lists the same indicators and that no pair comes without a known value."""
    known: Known = {}
    offset = 0
    while True:
        body = answer(client, headers, limit=1000, offset=offset, **params)
        for item in body["objects"]:
            values = [entry for entry in item["indicators"] if entry["value"] is not None]
            assert values, item  # a pair is listed only with a known value
            for entry in values:
                key = (item["region"], item["campaign"], entry["indicator"])
                known[key] = (entry["value"], entry["is_agg"])
        offset += 1000
        if offset >= body["meta"]["total_count"]:
            return known


def pairs(body: dict[str, Any]) -> list[tuple[int, int]]:
    return [(item["region"], item["campaign"]) for item in body["objects"]]
