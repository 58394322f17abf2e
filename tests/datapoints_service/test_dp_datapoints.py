"""GET /api/v1/datapoint/: objects by region and campaign, every parameter and its 400s,
pages, `no_pivot`, CSV (names, formulas neutralised, streamed in batches), the caller's
region and indicator permissions, and the few statements an answer takes."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event

from datapoints_service.models import db
from tests.datapoints_service.dp_helpers import Person, create, region_tree
from tests.datapoints_service.dp_values import (
    PATH,
    Key,
    answer,
    campaigns,
    indicators,
    pairs,
    read_all,
    store,
)

FORMULA = "=cmd|' /C calc'!A0"


@dataclass(frozen=True)
class Small:
    """country > province (district, district2), province2 > district3; four campaigns
    made in an order that is not their dates' (`by_date` is); three indicators, the
    second with a name a spreadsheet would run."""

    country: int
    province: int
    district: int
    district2: int
    province2: int
    district3: int
    by_date: list[int]  # campaigns by start date
    campaign_names: dict[int, str]
    missed: int
    formula: int
    secret: int

    @property
    def regions(self) -> list[int]:
        return [
            self.country,
            self.province,
            self.district,
            self.district2,
            self.province2,
            self.district3,
        ]


@pytest.fixture
def small(app: Flask) -> Small:
    regions = region_tree(app, [None, 0, 1, 1, 0, 4])
    made = campaigns(
        app,
        [
            ("2016-01-01", "2016-01-31"),
            ("2015-01-01", "2015-01-31"),
            ("2015-06-01", "2015-06-30"),
            ("2015-06-01", "2015-07-15"),
        ],
    )
    missed, formula, secret = indicators(
        app, [("missed children", "sum"), (FORMULA, "avg"), ("secret", "sum")]
    )
    by_date = [made[1], made[2], made[3], made[0]]
    names = {campaign: f"c-{index}" for index, campaign in enumerate(made)}
    country, province, district, district2, province2, district3 = regions
    world = Small(
        country,
        province,
        district,
        district2,
        province2,
        district3,
        by_date,
        names,
        missed,
        formula,
        secret,
    )
    cells: dict[Key, float | None] = {}
    for number, campaign in enumerate(world.by_date):
        for district in (world.district, world.district2, world.district3):
            cells[(district, campaign, missed)] = float(number * 10 + district % 7)
            cells[(district, campaign, secret)] = 1.0
        cells[(world.district, campaign, formula)] = 0.25 * number
    store(app, cells)
    return world


def _csv(
    client: FlaskClient, headers: dict[str, str], **params: Any
) -> tuple[list[list[str]], list[bytes]]:
    """A CSV answer's lines and the chunks it was streamed in (closed as a WSGI server
    closes it)."""
    with client.get(PATH, query_string={**params, "format": "csv"}, headers=headers) as response:
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.mimetype == "text/csv"
        assert response.headers["Content-Disposition"] == 'attachment; filename="datapoint.csv"'
        assert response.is_streamed
        chunks = list(response.iter_encoded())
    text = b"".join(chunks).decode()
    return list(csv.reader(io.StringIO(text))), chunks


def test_a_token_is_needed(client: FlaskClient, small: Small) -> None:
    response = client.get(PATH)
    assert response.status_code == 401
    assert response.is_json


def test_objects_by_region_then_campaign_date_with_every_indicator(
    client: FlaskClient, staff: Person, small: Small
) -> None:
    body = answer(client, staff.headers)
    # 6 regions x 4 campaigns, every one with a value (stored or rolled up).
    assert body["meta"] == {
        "limit": 20,
        "offset": 0,
        "total_count": 24,
        "parameters_requested": {},
    }
    assert body["errors"] == {}
    expected_pairs = [(region, campaign) for region in small.regions for campaign in small.by_date]
    assert pairs(body) == expected_pairs[:20]
    first = body["objects"][0]
    d1, d2, d3 = (r % 7 for r in (small.district, small.district2, small.district3))
    assert first == {
        "region": small.country,
        "campaign": small.by_date[0],
        "indicators": [
            {"indicator": small.missed, "value": float(d1 + d2 + d3), "is_agg": True},
            {"indicator": small.formula, "value": 0.0, "is_agg": True},
            {"indicator": small.secret, "value": 3.0, "is_agg": True},
        ],
    }
    # A region with no value for an indicator lists it, null and not aggregated.
    province2 = next(
        item
        for item in body["objects"]
        if item["region"] == small.province2 and item["campaign"] == small.by_date[1]
    )
    assert province2["indicators"] == [
        {"indicator": small.missed, "value": 10.0 + d3, "is_agg": True},
        {"indicator": small.formula, "value": None, "is_agg": False},
        {"indicator": small.secret, "value": 1.0, "is_agg": True},
    ]
    # Without the trailing slash too.
    response = client.get("/api/v1/datapoint", headers=staff.headers)
    assert response.status_code == 200
    assert response.get_json()["meta"]["total_count"] == 24


def test_stored_values_are_not_aggregated(client: FlaskClient, staff: Person, small: Small) -> None:
    body = answer(client, staff.headers, region__in=small.district, campaign__in=small.by_date[2])
    assert body["objects"] == [
        {
            "region": small.district,
            "campaign": small.by_date[2],
            "indicators": [
                {"indicator": small.missed, "value": 20.0 + small.district % 7, "is_agg": False},
                {"indicator": small.formula, "value": 0.5, "is_agg": False},
                {"indicator": small.secret, "value": 1.0, "is_agg": False},
            ],
        }
    ]


def test_selections(client: FlaskClient, staff: Person, small: Small) -> None:
    def pairs_of(**params: Any) -> list[tuple[int, int]]:
        return pairs(answer(client, staff.headers, limit=1000, **params))

    jan, jun, jun_jul, y2016 = small.by_date
    both = f"{small.province2},{small.district}"
    assert pairs_of(region__in=both) == [
        (small.district, jan),
        (small.district, jun),
        (small.district, jun_jul),
        (small.district, y2016),
        (small.province2, jan),
        (small.province2, jun),
        (small.province2, jun_jul),
        (small.province2, y2016),
    ]
    assert pairs_of(region__in=small.district, campaign__in=f"{y2016},{jan}") == [
        (small.district, jan),
        (small.district, y2016),
    ]
    assert pairs_of(region__in=small.district, campaign_start="2015-06-01") == [
        (small.district, jun),
        (small.district, jun_jul),
        (small.district, y2016),
    ]
    assert pairs_of(region__in=small.district, campaign_end="2015-06-30") == [
        (small.district, jan),
        (small.district, jun),
    ]
    assert pairs_of(
        region__in=small.district, campaign_start="2015-01-02", campaign_end="2015-07-15"
    ) == [(small.district, jun), (small.district, jun_jul)]
    assert pairs_of(campaign_start="2016-02-01") == []
    assert pairs_of(region__in=small.district, campaign__in=jan, campaign_end="2014-12-31") == []
    # Indicators: only those asked, in id order; pairs with none of their values left out.
    body = answer(
        client, staff.headers, indicator__in=f"{small.formula},{small.missed}", limit=1000
    )
    assert {entry["indicator"] for item in body["objects"] for entry in item["indicators"]} == {
        small.missed,
        small.formula,
    }
    assert [e["indicator"] for e in body["objects"][0]["indicators"]] == [
        small.missed,
        small.formula,
    ]
    body = answer(client, staff.headers, indicator__in=small.formula, limit=1000)
    assert {item["region"] for item in body["objects"]} == {
        small.country,
        small.province,
        small.district,
    }
    assert body["meta"]["total_count"] == 12
    # Ids of nothing: nothing, never an error.
    assert answer(client, staff.headers, region__in=2**31 - 1)["objects"] == []
    assert answer(client, staff.headers, indicator__in=2**31 - 1)["meta"]["total_count"] == 0


def test_pages(client: FlaskClient, staff: Person, small: Small) -> None:
    everything = pairs(answer(client, staff.headers, limit=1000))
    assert len(everything) == 24
    seen: list[tuple[int, int]] = []
    for offset in range(0, 24, 5):
        body = answer(client, staff.headers, limit=5, offset=offset)
        assert body["meta"]["limit"] == 5
        assert body["meta"]["offset"] == offset
        assert body["meta"]["total_count"] == 24
        seen.extend(pairs(body))
    assert seen == everything
    past = answer(client, staff.headers, offset=24)
    assert past["objects"] == []
    assert past["meta"]["total_count"] == 24
    lowered = answer(client, staff.headers, limit=5000)
    assert lowered["meta"]["limit"] == 1000
    assert lowered["meta"]["parameters_requested"] == {"limit": "5000"}


def test_no_pivot(client: FlaskClient, staff: Person, small: Small) -> None:
    known = read_all(client, staff.headers)
    body = answer(client, staff.headers, no_pivot=1, limit=1000)
    assert body["meta"]["total_count"] == len(known) == len(body["objects"])
    flat = {}
    for item in body["objects"]:
        (entry,) = item["indicators"]
        flat[(item["region"], item["campaign"], entry["indicator"])] = (
            entry["value"],
            entry["is_agg"],
        )
    assert flat == known
    order = [(item["region"], item["campaign"]) for item in body["objects"]]
    assert order == sorted(order, key=lambda pair: (pair[0], small.by_date.index(pair[1])))
    first = [item["indicators"][0]["indicator"] for item in body["objects"][:3]]
    assert first == [small.missed, small.formula, small.secret]
    # Pages of values; `no_pivot=0` and `false` are the pivoted answer.
    page = answer(client, staff.headers, no_pivot="true", limit=7, offset=7)
    assert page["objects"] == body["objects"][7:14]
    assert page["meta"]["total_count"] == len(known)
    pivoted = answer(client, staff.headers, no_pivot="false")
    assert pivoted["objects"] == answer(client, staff.headers, no_pivot=0)["objects"]
    assert pivoted["objects"] != page["objects"]
    assert len(pivoted["objects"][0]["indicators"]) == 3
    narrowed = answer(client, staff.headers, no_pivot=1, indicator__in=small.formula)
    assert narrowed["meta"]["total_count"] == 12


def test_csv_names_and_empty_cells(client: FlaskClient, staff: Person, small: Small) -> None:
    lines, _ = _csv(client, staff.headers)
    assert lines[0] == ["region", "campaign", "missed children", "'" + FORMULA, "secret"]
    # The whole result without limit or offset (more than the JSON default of 20).
    assert len(lines) == 1 + 24
    json_answer = answer(client, staff.headers, limit=1000)["objects"]
    names = {index: f"region {index}" for index in range(6)}
    for line, item in zip(lines[1:], json_answer, strict=True):
        assert line[0] == names[small.regions.index(item["region"])]
        assert line[1] == small.campaign_names[item["campaign"]]
        expected = ["" if e["value"] is None else str(e["value"]) for e in item["indicators"]]
        assert line[2:] == expected
    assert ["region 4", "c-2", str(10.0 + small.district3 % 7), "", "1.0"] in lines
    # A page when limit or offset is given.
    paged, _ = _csv(client, staff.headers, limit=2, offset=1)
    assert paged == [lines[0], lines[2], lines[3]]
    narrowed, _ = _csv(client, staff.headers, indicator__in=small.secret, region__in=small.country)
    assert narrowed == [["region", "campaign", "secret"]] + [
        ["region 0", f"c-{index}", "3.0"] for index in (1, 2, 3, 0)
    ]


def test_csv_without_pivot(client: FlaskClient, staff: Person, small: Small) -> None:
    lines, _ = _csv(client, staff.headers, no_pivot=1, region__in=small.district)
    assert lines[0] == ["region", "campaign", "indicator", "value"]
    assert lines[1:4] == [
        ["region 2", "c-1", "missed children", str(float(small.district % 7))],
        ["region 2", "c-1", "'" + FORMULA, "0.0"],
        ["region 2", "c-1", "secret", "1.0"],
    ]
    assert len(lines) == 1 + 4 * 3


@pytest.mark.parametrize("app_config", [{"DATAPOINTS_CSV_BATCH_ROWS": 5}], indirect=True)
def test_csv_is_streamed_a_batch_at_a_time(
    client: FlaskClient, staff: Person, small: Small
) -> None:
    lines, chunks = _csv(client, staff.headers)
    assert len(lines) == 25
    # The header, then one chunk per batch of 5 pairs (24 pairs: 5 batches).
    assert [chunk.count(b"\r\n") for chunk in chunks] == [1, 5, 5, 5, 5, 4]
    values, chunks = _csv(client, staff.headers, no_pivot=1, region__in=small.district)
    assert [chunk.count(b"\r\n") for chunk in chunks] == [1, 5, 5, 2]
    assert len(values) == 13


def _grant(client: FlaskClient, staff: Person, person: Person, region: int, *shown: int) -> None:
    create(
        client,
        staff.headers,
        "region_permission",
        user_id=person.user_id,
        region_id=region,
        read_write="r",
    )
    group = create(client, staff.headers, "group", name=f"readers of {person.username}")
    create(client, staff.headers, "user_group", user_id=person.user_id, group_id=group)
    for indicator in shown:
        create(
            client,
            staff.headers,
            "group_permission",
            group_id=group,
            indicator_id=indicator,
            read_write="r",
        )


def test_a_province_holder_sees_their_subtree_and_indicators_only(
    client: FlaskClient, staff: Person, alice: Person, bob: Person, small: Small
) -> None:
    _grant(client, staff, alice, small.province, small.missed, small.formula)
    everything = read_all(client, staff.headers)
    theirs = {small.province, small.district, small.district2}
    expected = {
        key: value
        for key, value in everything.items()
        if key[0] in theirs and key[2] != small.secret
    }
    assert read_all(client, alice.headers) == expected
    assert any(is_agg for _, is_agg in expected.values())  # the province's rolled-up values
    body = answer(client, alice.headers, limit=1000)
    assert body["meta"]["total_count"] == 12
    assert {e["indicator"] for item in body["objects"] for e in item["indicators"]} == {
        small.missed,
        small.formula,
    }
    # Asking for what is not theirs: nothing (not an error).
    outside = f"{small.country},{small.province2},{small.district3}"
    assert answer(client, alice.headers, region__in=outside)["meta"]["total_count"] == 0
    secret = answer(client, alice.headers, indicator__in=small.secret)
    assert secret["objects"] == []
    assert secret["meta"]["total_count"] == 0
    mixed = answer(client, alice.headers, indicator__in=f"{small.secret},{small.missed}")
    assert {e["indicator"] for item in mixed["objects"] for e in item["indicators"]} == {
        small.missed
    }
    flat = answer(client, alice.headers, no_pivot=1, limit=1000)
    assert flat["meta"]["total_count"] == len(expected)
    assert small.secret not in {item["indicators"][0]["indicator"] for item in flat["objects"]}
    lines, _ = _csv(client, alice.headers)
    assert lines[0] == ["region", "campaign", "missed children", "'" + FORMULA]
    assert {line[0] for line in lines[1:]} == {"region 1", "region 2", "region 3"}
    flat_lines, _ = _csv(client, alice.headers, no_pivot=1)
    assert "secret" not in {line[2] for line in flat_lines[1:]}
    assert {line[0] for line in flat_lines[1:]} == {"region 1", "region 2", "region 3"}
    # Bob holds nothing; staff see everything.
    assert answer(client, bob.headers)["meta"]["total_count"] == 0
    assert _csv(client, bob.headers)[0] == [["region", "campaign"]]
    assert answer(client, staff.headers)["meta"]["total_count"] == 24


@pytest.mark.parametrize(
    ("query", "named", "message"),
    [
        ("region__in=1,x", "region__in", "not an integer: 'x'"),
        ("indicator__in=4294967296", "indicator__in", "out of range: 4294967296"),
        ("campaign__in=", "campaign__in", "not an integer: ''"),
        ("region__in=1,", "region__in", "not an integer: ''"),
        ("campaign__in=" + ",".join(["1"] * 1001), "campaign__in", "at most 1000 values"),
        ("campaign_start=2015-13-01", "campaign_start", None),
        ("campaign_end=yesterday", "campaign_end", None),
        ("campaign_start=2015-06-02&campaign_end=2015-06-01", "campaign_end", None),
        ("limit=0", "limit", None),
        ("limit=x", "limit", None),
        ("offset=-1", "offset", None),
        ("format=xml", "format", None),
        ("no_pivot=yes", "no_pivot", None),
        ("region=1", "region", "unknown parameter 'region'"),
        ("order_by=region", "order_by", None),
        ("region__in=1&region__in=2", "region__in", "given more than once"),
    ],
)
def test_bad_parameters_are_refused(
    client: FlaskClient, staff: Person, small: Small, query: str, named: str, message: str | None
) -> None:
    response = client.get(f"{PATH}?{query}", headers=staff.headers)
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "invalid query parameters"
    assert body["code"] == "invalid_parameters"
    assert list(body["errors"]) == [named]
    if message is not None:
        assert body["errors"][named] == message
    with client.get(f"{PATH}?{query}&format=csv", headers=staff.headers) as refused:
        assert refused.status_code == 400
        assert refused.is_json


def test_every_bad_parameter_is_named(client: FlaskClient, staff: Person, small: Small) -> None:
    query = "region__in=a&campaign_start=2015-02-30&limit=-3&foo=1"
    response = client.get(f"{PATH}?{query}", headers=staff.headers)
    assert response.status_code == 400
    assert set(response.get_json()["errors"]) == {"region__in", "campaign_start", "limit", "foo"}


@pytest.fixture
def statements(app: Flask) -> Iterator[list[tuple[str, Any]]]:
    """Every statement the app sends to its database, with its parameters."""
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        captured.append((statement, parameters))

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", capture)
    yield captured
    event.remove(engine, "before_cursor_execute", capture)


def _reads(captured: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """The answer's statements (not the token's user lookup)."""
    return [(sql, params) for sql, params in captured if "datapoint" in sql or "indicators" in sql]


def test_an_answer_is_four_statements_whatever_its_size(
    app: Flask,
    client: FlaskClient,
    staff: Person,
    alice: Person,
    small: Small,
    statements: list[tuple[str, Any]],
) -> None:
    _grant(client, staff, alice, small.country, small.missed, small.formula)
    with app.app_context():
        postgresql = db.engine.dialect.name == "postgresql"
    # Besides its reads, an answer only turns off parallel plans on PostgreSQL.
    settings = ["SET LOCAL max_parallel_workers_per_gather = 0"] if postgresql else []
    for caller, params in [
        (staff, {"limit": 1}),
        (staff, {"limit": 1000}),
        (alice, {"limit": 1000, "region__in": small.province}),
    ]:
        statements.clear()
        assert answer(client, caller.headers, **params)["objects"]
        # The indicators, the count, the page of pairs, their values.
        assert len(_reads(statements)) == 4, _reads(statements)
        # Read only: not even SQLite's write lock (a no-op UPDATE) is taken.
        others = [sql for sql, _ in statements if not sql.lstrip().upper().startswith("SELECT")]
        assert others == settings
    statements.clear()
    answer(client, staff.headers, no_pivot=1, limit=1000)
    assert len(_reads(statements)) == 3  # the indicators, the count, the page of values


def _plan(app: Flask, sql: str, parameters: Any) -> str:
    """The database's plan of a captured statement, as text. On PostgreSQL sequential
    scans are priced out, so the plan shows whether an index *can* serve the statement
    (with a few rows any table is cheapest read whole)."""
    with app.app_context(), db.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("SET enable_seqscan = off")
            lines = connection.exec_driver_sql("EXPLAIN " + sql, parameters).scalars()
            return "\n".join(lines)
        steps = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, parameters).all()
        return "\n".join(str(step[-1]) for step in steps)


def test_the_values_lookup_uses_the_cell_indexes(
    app: Flask, client: FlaskClient, staff: Person, small: Small, statements: list[tuple[str, Any]]
) -> None:
    answer(client, staff.headers, limit=10)
    _indicators, _count, _pairs, (sql, parameters) = _reads(statements)
    assert "datapoint_rollups" in sql
    plan = _plan(app, sql, parameters)
    with app.app_context():
        postgresql = db.engine.dialect.name == "postgresql"
    if postgresql:
        assert "uq_datapoints_cell" in plan, plan
        assert "pk_datapoint_rollups" in plan, plan
        assert "Seq Scan on datapoints" not in plan, plan
        assert "Seq Scan on datapoint_rollups" not in plan, plan
    else:
        assert "SCAN datapoints" not in plan, plan
        assert "SCAN datapoint_rollups" not in plan, plan
        assert "datapoints USING INDEX sqlite_autoindex_datapoints_1" in plan, plan
        assert "datapoint_rollups USING INDEX sqlite_autoindex_datapoint_rollups_1" in plan, plan


@pytest.mark.parametrize("no_pivot", ["0", "1"])
def test_a_province_holders_statements_search_the_cells_by_region(
    app: Flask,
    client: FlaskClient,
    staff: Person,
    alice: Person,
    small: Small,
    statements: list[tuple[str, Any]],
    no_pivot: str,
) -> None:
    """Every statement reading values searches both tables' (region, campaign,
    indicator) indexes by region: on SQLite (plans from the query alone, no statistics)
    never by indicator nor campaign, nor a scan of every value; on PostgreSQL (plans from
    statistics a test's few rows cannot give) each table through an index."""
    _grant(client, staff, alice, small.province, small.missed, small.formula)
    statements.clear()
    assert answer(client, alice.headers, no_pivot=no_pivot, campaign__in=small.by_date[0])[
        "objects"
    ]
    reading = [(sql, params) for sql, params in _reads(statements) if "datapoint_rollups" in sql]
    assert len(reading) == (3 if no_pivot == "0" else 2)
    with app.app_context():
        postgresql = db.engine.dialect.name == "postgresql"
    for sql, parameters in reading:
        plan = _plan(app, sql, parameters)
        if postgresql:
            assert "Seq Scan on datapoints" not in plan, plan
            assert "Seq Scan on datapoint_rollups" not in plan, plan
        else:
            by_region = "USING INDEX sqlite_autoindex_{}_1 (region_id=?"
            assert f"SEARCH datapoints {by_region.format('datapoints')}" in plan, plan
            assert f"SEARCH datapoint_rollups {by_region.format('datapoint_rollups')}" in plan, plan
            assert "ix_datapoints" not in plan, plan
            assert "ix_datapoint_rollups" not in plan, plan
