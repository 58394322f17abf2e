"""Datapoints part two: stored values, their roll-ups, data entry and document ingestion,
on SQLite or PostgreSQL.

Starts auth_service, datapoints_service, the gateway (gunicorn) and datapoints_service's
RQ worker (the stack's `datapoints_worker`; where the stack has none, a worker on the
service's queue started here the same way) on free loopback ports, as
`bench/datapoints.py` does (its tree generator and loader are reused).

Setup, not measured: the tree of `--regions` regions with its closure table, 50
indicators (45 `sum`, 4 `avg`, 1 `none`), 10 campaigns, and `--values` stored values at
the leaves, written with SQLAlchemy Core bulk inserts: every leaf holds a value for each
of the 10 requested indicators (8 `sum`, 2 `avg`) in each of the 5 requested campaigns
(19,188 x 50 = 959,400 with 20,000 regions), the rest spread at random over the other
indicators and campaigns. Then the computed values are built by the service's own
`rollup.refresh(session)` over the whole tree; that refresh is timed and reported.

Measured:

- `GET /api/v1/datapoint/?region__in=<country + 37 provinces>&indicator__in=<10>
  &campaign__in=<5>&limit=1000` through the gateway as staff, one request after another
  for `--duration` seconds (baseline: `GET /api/v2/campaign/<id>`, same run); every value
  of the answer is computed (no region asked for holds a stored value). Its values are
  checked against the naive computation below.
- In this process, on the same database, the same values three ways: the maintained
  table (stored and computed values looked up by region, campaign and indicator: what
  the service reads), the naive way (each requested region's stored leaf values fetched
  through the closure table and aggregated in Python, bottom-up, with the indicator's
  aggregation), and at read time in SQL without the maintained table (`region_tree` x
  `datapoints` grouped by ancestor, `sum` indicators only: it counts every leaf, right
  only while only leaves hold values). All three answers are checked equal.
- The cost side of the maintained table: `values.write_cells` of one value at a leaf
  (the refresh of its ancestors included), and `values.merge` of 100,000 values
  (`--merge`), each in a transaction that is rolled back, so the data stays as loaded;
  the refresh's share of each is timed separately; and the same merge with the refresh
  given its scope as id lists fetched first (a prototype, not the service's code).
- `POST /api/v1/dataentry` of one value at a leaf, in a requested campaign and
  indicator, through the gateway as staff, p50/p99 (after the reads: it changes them).
- A long-form CSV of `--ingest` rows (region, campaign, indicator, value; every string
  mapped beforehand, so each row becomes a stored value) uploaded through the gateway,
  processed by the real RQ worker, polled with `GET /api/v2/document/<id>/` until
  processed (a 10-row document first, so the worker has built its app): rows/s end to
  end, and when each stage was first seen.

`--profile`: cProfile of the datapoint read served by the app in this process, and of
the document's job run again in this process (every value changed). `--explain`
(PostgreSQL): EXPLAIN ANALYZE of the reads and of every statement of one datapoint
read, those statements timed with and without parallel workers. `--quick`: 2,000
regions, the dense block of values only, small merge and document, 2 s per case.

    .venv/bin/python bench/datapoints_values.py [--database-url URL] [--duration 10] [--quick]
        [--explain] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import pstats
import random
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import psutil
import requests
from flask import Flask
from redis import Redis
from rq import Worker as RqWorker
from sqlalchemy import (
    Column,
    Engine,
    Float,
    Integer,
    MetaData,
    Select,
    Table,
    create_engine,
    event,
    func,
    insert,
    select,
)
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.datapoints import (
    Person,
    authorized,
    copy_user,
    generate_tree,
    load_regions,
    sign_in_users,
)
from bench.harness import (
    SETTINGS,
    TIMEOUT,
    Timing,
    analyze,
    captured_queries,
    database_url,
    explain,
    percentile,
    print_timings,
    service_database,
    time_requests,
)
from datapoints_service import rollup, values
from datapoints_service.locking import take_write_lock
from datapoints_service.models import (
    AVG,
    NONE,
    SUM,
    Campaign,
    CampaignMap,
    CampaignType,
    DataPoint,
    DataPointRollup,
    Document,
    DocumentFile,
    Indicator,
    IndicatorMap,
    Office,
    Region,
    RegionMap,
    RegionTree,
    SourceCampaign,
    SourceIndicator,
    SourceRegion,
)
from devstack.stack import ALL_PROCESSES, RunningStack, running_stack
from servicekit.db import utcnow

WORKER = "datapoints_worker"
PROCESSES = ["auth", "datapoints", "gateway", *([WORKER] if WORKER in ALL_PROCESSES else [])]
INDICATORS, CAMPAIGNS = 50, 10
ASKED_INDICATORS, ASKED_CAMPAIGNS = 10, 5  # the first ones of each
AVG_INDICATORS = (3, 7, 20, 30)  # by index: two of them among those asked for
NONE_INDICATOR = 49
LEAF_LEVEL = 3
INSERT_BATCH = 10_000
LIMIT = 1000
MISSING = (404, 405, 501)  # a route not served (yet)
REPO = Path(__file__).resolve().parent.parent
QUEUE = "datapoints"  # datapoints_service.documents.jobs.QUEUE_NAME
POLL, INGEST_TIMEOUT = 0.1, 1800

Cell = tuple[int, int, int]  # region, campaign, indicator
Answer = dict[Cell, float]


# The data


@dataclass(frozen=True)
class World:
    region_ids: list[int]  # by the tree's index
    parents: dict[int, int | None]  # region id -> parent id
    levels: list[int]  # by the tree's index
    indicator_ids: list[int]
    aggregation: dict[int, str]  # indicator id -> sum/avg/none
    campaign_ids: list[int]
    office_id: int

    @property
    def leaves(self) -> list[int]:
        return [
            r for r, level in zip(self.region_ids, self.levels, strict=True) if level == LEAF_LEVEL
        ]

    @property
    def asked_regions(self) -> list[int]:
        """The country and the provinces."""
        return [r for r, level in zip(self.region_ids, self.levels, strict=True) if level <= 1]

    @property
    def asked_indicators(self) -> list[int]:
        return self.indicator_ids[:ASKED_INDICATORS]

    @property
    def asked_campaigns(self) -> list[int]:
        return self.campaign_ids[:ASKED_CAMPAIGNS]


def aggregation_of(index: int) -> str:
    if index == NONE_INDICATOR:
        return NONE
    return AVG if index in AVG_INDICATORS else SUM


def load_indicators(connection: Any) -> tuple[list[int], dict[int, str]]:
    now = utcnow()
    rows: list[dict[str, Any]] = [
        {
            "name": f"Indicator {index}",
            "short_name": f"ind {index}",
            "slug": f"indicator-{index}",
            "description": "",
            "is_reported": True,
            "source_id": None,
            "bound_json": [],
            "tag_json": [],
            "aggregation": aggregation_of(index),
            "created_at": now,
        }
        for index in range(INDICATORS)
    ]
    table = Indicator.__table__
    found = connection.execute(
        insert(table).returning(table.c.id, sort_by_parameter_order=True), rows
    )
    ids = [int(row.id) for row in found]
    return ids, {ids[index]: aggregation_of(index) for index in range(INDICATORS)}


def load_campaigns(connection: Any, office_id: int) -> list[int]:
    type_id = connection.execute(
        insert(CampaignType.__table__).returning(CampaignType.id), {"name": "bench NID"}
    ).scalar_one()
    start = date(2015, 1, 1)
    rows = [
        {
            "name": f"Campaign {index}",
            "slug": f"campaign-{index}",
            "start_date": start + timedelta(days=30 * index),
            "end_date": start + timedelta(days=30 * index + 6),
            "office_id": office_id,
            "campaign_type_id": type_id,
            "created_at": utcnow(),
        }
        for index in range(CAMPAIGNS)
    ]
    table = Campaign.__table__
    found = connection.execute(
        insert(table).returning(table.c.id, sort_by_parameter_order=True), rows
    )
    return [int(row.id) for row in found]


def stored_cells(world: World, target: int, rng: random.Random) -> list[Cell]:
    """Every leaf x asked campaign x asked indicator, then cells drawn at random among
    the other campaigns and indicators until `target` (at most every such cell)."""
    leaves = world.leaves
    cells = [
        (leaf, campaign, indicator)
        for leaf in leaves
        for campaign in world.asked_campaigns
        for indicator in world.asked_indicators
    ]
    others = world.indicator_ids[ASKED_INDICATORS:]
    extra = min(max(0, target - len(cells)), len(leaves) * CAMPAIGNS * len(others))
    drawn: set[Cell] = set()
    while len(drawn) < extra:
        drawn.add((rng.choice(leaves), rng.choice(world.campaign_ids), rng.choice(others)))
    return cells + sorted(drawn)


def value_of(cell: Cell) -> float:
    """A made-up count, the same every run for the same cell."""
    region, campaign, indicator = cell
    return float((region * 31 + campaign * 17 + indicator * 7) % 500)


def load_values(engine: Engine, cells: Sequence[Cell]) -> float:
    """The stored values, by batches of INSERT_BATCH rows; the seconds it took."""
    started = time.perf_counter()
    now = utcnow()
    with engine.begin() as connection:
        for start in range(0, len(cells), INSERT_BATCH):
            connection.execute(
                insert(DataPoint.__table__),
                [
                    {
                        "region_id": cell[0],
                        "campaign_id": cell[1],
                        "indicator_id": cell[2],
                        "value": value_of(cell),
                        "document_id": None,
                        "changed_by_id": None,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for cell in cells[start : start + INSERT_BATCH]
                ],
            )
    return time.perf_counter() - started


def full_refresh(engine: Engine) -> tuple[float, float]:
    """The service's refresh of every computed value; seconds of the refresh, and of the
    commit after it."""
    with Session(engine) as session:
        take_write_lock(session)
        rollup.lock(session)
        started = time.perf_counter()
        rollup.refresh(session)
        refreshed = time.perf_counter()
        session.commit()
        return refreshed - started, time.perf_counter() - refreshed


def load_world(engine: Engine, regions: int) -> World:
    rng = random.Random(14)
    tree = generate_tree(regions, rng)
    with engine.begin() as connection:
        region_ids = load_regions(connection, tree, rng)
        office_id = int(
            connection.execute(select(Office.id).where(Office.name == "bench office")).scalar_one()
        )
        indicator_ids, aggregation = load_indicators(connection)
        campaign_ids = load_campaigns(connection, office_id)
    parents = {
        region_ids[index]: None if parent is None else region_ids[parent]
        for index, parent in enumerate(tree.parents)
    }
    return World(
        region_ids, parents, tree.levels, indicator_ids, aggregation, campaign_ids, office_id
    )


def staff_user(engine: Engine, stack: Any) -> tuple[Person, int]:
    """A real staff user signed in through the gateway, and their id in the users copy."""
    staff = sign_in_users(stack, {"staff": None})["staff"]
    with engine.begin() as connection:
        user_id = copy_user(connection, staff.public_id, staff.username, staff=True)
    return staff, user_id


# The same values three ways, in this process


def maintained(session: Session, world: World) -> Answer:
    """Stored and computed values looked up: what the service reads."""
    known = rollup.effective_values().subquery()
    rows = session.execute(
        select(known.c.region_id, known.c.campaign_id, known.c.indicator_id, known.c.value).where(
            known.c.region_id.in_(world.asked_regions),
            known.c.campaign_id.in_(world.asked_campaigns),
            known.c.indicator_id.in_(world.asked_indicators),
        )
    )
    return {(r, c, i): float(v) for r, c, i, v in rows}


def naive(session: Session, world: World) -> Answer:
    """Each requested region on its own: its subtree's links and stored values fetched
    through the closure table, then aggregated in Python from the leaves up (a stored
    value wins; otherwise the sum, or the mean for `avg`, of the children's values)."""
    answer: Answer = {}
    for region in world.asked_regions:
        subtree = select(RegionTree.descendant_id).where(RegionTree.ancestor_id == region)
        children: dict[int, list[int]] = defaultdict(list)
        for child, parent in session.execute(
            select(Region.id, Region.parent_region_id).where(
                Region.id.in_(subtree), Region.id != region
            )
        ):
            if parent is not None:
                children[parent].append(child)
        stored: dict[tuple[int, int], dict[int, float]] = defaultdict(dict)
        for r, c, i, v in session.execute(
            select(
                DataPoint.region_id, DataPoint.campaign_id, DataPoint.indicator_id, DataPoint.value
            )
            .join(RegionTree, RegionTree.descendant_id == DataPoint.region_id)
            .where(
                RegionTree.ancestor_id == region,
                DataPoint.campaign_id.in_(world.asked_campaigns),
                DataPoint.indicator_id.in_(world.asked_indicators),
            )
        ):
            stored[(c, i)][r] = v
        for (campaign, indicator), by_region in stored.items():
            how = world.aggregation[indicator]
            value = _aggregate(region, children, by_region, how)
            if value is not None:
                answer[(region, campaign, indicator)] = value
    return answer


def _aggregate(
    region: int, children: dict[int, list[int]], stored: dict[int, float], how: str
) -> float | None:
    if region in stored:
        return stored[region]
    if how == NONE:
        return None
    found = [
        value
        for child in children.get(region, [])
        for value in (_aggregate(child, children, stored, how),)
        if value is not None
    ]
    if not found:
        return None
    return sum(found) / len(found) if how == AVG else sum(found)


def read_time_sql(session: Session, world: World) -> Answer:
    """The roll-up at read time without the maintained table: every stored value under
    each requested region, summed per ancestor (sum indicators only)."""
    sums = [i for i in world.asked_indicators if world.aggregation[i] == SUM]
    rows = session.execute(
        select(
            RegionTree.ancestor_id,
            DataPoint.campaign_id,
            DataPoint.indicator_id,
            func.sum(DataPoint.value),
        )
        .join(DataPoint, DataPoint.region_id == RegionTree.descendant_id)
        .where(
            RegionTree.ancestor_id.in_(world.asked_regions),
            DataPoint.campaign_id.in_(world.asked_campaigns),
            DataPoint.indicator_id.in_(sums),
        )
        .group_by(RegionTree.ancestor_id, DataPoint.campaign_id, DataPoint.indicator_id)
    )
    return {(r, c, i): float(v) for r, c, i, v in rows}


def same_values(expected: Answer, found: Answer) -> bool:
    if expected.keys() != found.keys():
        return False
    return all(abs(expected[k] - found[k]) <= 1e-6 * max(1.0, abs(expected[k])) for k in expected)


def median_seconds(
    engine: Engine, action: Callable[[Session, World], Answer], world: World, runs: int
) -> tuple[float, Answer]:
    times: list[float] = []
    answer: Answer = {}
    for _ in range(runs):
        with Session(engine) as session:
            started = time.perf_counter()
            answer = action(session, world)
            times.append(time.perf_counter() - started)
    return statistics.median(times), answer


def compare_ways(engine: Engine, world: World, runs: int) -> Answer:
    """The three ways, timed; their answers checked equal. The maintained answer."""
    ours_s, ours = median_seconds(engine, maintained, world, runs)
    naive_s, slow = median_seconds(engine, naive, world, max(1, runs // 5))
    sql_s, summed = median_seconds(engine, read_time_sql, world, max(1, runs // 5))
    if not same_values(ours, slow):
        raise SystemExit("the naive answer differs from the maintained table's")
    sums = {k: v for k, v in ours.items() if world.aggregation[k[2]] == SUM}
    if not same_values(sums, summed):
        raise SystemExit("the read-time SQL's sums differ from the maintained table's")
    print(f"\nThe same {len(ours)} values in this process (p50):")
    print("| way | p50 | / maintained |")
    print("|---|---|---|")
    for way, seconds in (
        ("maintained table: stored and computed values looked up", ours_s),
        ("naive: leaves through the closure table, aggregated in Python", naive_s),
        (f"read time in SQL: region_tree x datapoints, {len(sums)} sum values only", sql_s),
    ):
        print(f"| {way} | {seconds * 1000:.1f} ms | {seconds / ours_s:.1f} |")
    return ours


def explain_reads(engine: Engine, world: World) -> None:
    """EXPLAIN ANALYZE (PostgreSQL) of the maintained lookup and the read-time SUM."""
    for name, action in (("maintained table", maintained), ("read-time SUM", read_time_sql)):
        print(f"\nEXPLAIN ANALYZE, {name}:")
        explain(engine, captured_queries(engine, partial(action, world=world)))


# The cost side: writes and their refresh, rolled back


class RefreshClock:
    """Seconds spent in `rollup.refresh` while installed (values.py calls it through the
    module, so the clock sees the service's own calls)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._original = rollup.refresh

    def __enter__(self) -> RefreshClock:
        original = self._original

        def timed(session: Session, **scope: Any) -> None:
            started = time.perf_counter()
            original(session, **scope)
            self.seconds += time.perf_counter() - started

        rollup.refresh = timed
        return self

    def __exit__(self, *_: object) -> None:
        rollup.refresh = self._original


def timed_write(engine: Engine, write: Callable[[Session], None]) -> tuple[float, float]:
    """Seconds of `write` (in a transaction then rolled back), and of its refresh."""
    with Session(engine) as session, RefreshClock() as clock:
        take_write_lock(session)
        started = time.perf_counter()
        write(session)
        session.flush()
        elapsed = time.perf_counter() - started
        session.rollback()
    return elapsed, clock.seconds


def measure_one_value(engine: Engine, world: World, user_id: int, runs: int) -> None:
    rng = random.Random(5)
    totals: list[float] = []
    refreshes: list[float] = []
    for _ in range(runs):
        cell = values.Cell(
            rng.choice(world.leaves),
            rng.choice(world.asked_campaigns),
            rng.choice(world.asked_indicators),
            float(rng.randint(1000, 2000)),
        )
        total, refresh = timed_write(
            engine,
            lambda session, cell=cell: values.write_cells(  # type: ignore[misc]
                session, [cell], changed_by_id=user_id
            ),
        )
        totals.append(total)
        refreshes.append(refresh)
    print(f"| write_cells, one value at a leaf ({runs} runs) | {_ms(totals)} | {_ms(refreshes)} |")


def merge_cells(world: World, count: int, stored: set[Cell]) -> list[Cell]:
    """`count` cells of the asked indicators in the campaigns not asked for, at leaves,
    none stored yet."""
    found: list[Cell] = []
    for campaign in reversed(world.campaign_ids[ASKED_CAMPAIGNS:]):
        for leaf in world.leaves:
            for indicator in world.asked_indicators:
                if (leaf, campaign, indicator) not in stored:
                    found.append((leaf, campaign, indicator))
                    if len(found) == count:
                        return found
    return found


def measure_merge(engine: Engine, world: World, user_id: int, cells: list[Cell], runs: int) -> None:
    """values.merge of `cells` from a table of their own (as a document's rows would
    come from its source datapoints)."""
    staging = Table(
        "bench_merge_cells",
        MetaData(),
        Column("region_id", Integer),
        Column("campaign_id", Integer),
        Column("indicator_id", Integer),
        Column("value", Float),
    )
    staging.create(engine)
    with engine.begin() as connection:
        for start in range(0, len(cells), INSERT_BATCH):
            connection.execute(
                insert(staging),
                [
                    {"region_id": r, "campaign_id": c, "indicator_id": i, "value": 1.0 + n % 7}
                    for n, (r, c, i) in enumerate(cells[start : start + INSERT_BATCH])
                ],
            )
    analyze(engine)
    selection = select(
        staging.c.region_id, staging.c.campaign_id, staging.c.indicator_id, staging.c.value
    )
    ways: tuple[tuple[str, Callable[[Session], None]], ...] = (
        ("values.merge", partial(_merge_as_is, selection=selection, user_id=user_id)),
        (
            "values.merge, the refresh's scope fetched as id lists first (prototype)",
            partial(_merge_listed_scope, selection=selection, user_id=user_id),
        ),
    )
    for name, merge in ways:
        totals: list[float] = []
        refreshes: list[float] = []
        for _ in range(runs):
            total, refresh = timed_write(engine, merge)
            totals.append(total)
            refreshes.append(refresh)
        print(
            f"| {name}: {len(cells):,} new values at leaves ({runs} runs) "
            f"| {_ms(totals)} | {_ms(refreshes)} |"
        )
    staging.drop(engine)


def _merge_as_is(session: Session, selection: Select[Any], user_id: int) -> None:
    values.merge(session, selection, changed_by_id=user_id, document_id=None)


def _merge_listed_scope(session: Session, selection: Select[Any], user_id: int) -> None:
    """values.merge with one change: the regions, campaigns and indicators written are
    fetched first and the refresh is given them as lists, not as sub-selects (which the
    planner joins into every level's aggregate)."""
    rollup.lock(session)
    values._merge(session, selection, user_id, None)
    written = selection.subquery("written")
    rollup.refresh(
        session,
        regions=session.scalars(select(written.c.region_id).distinct()).all(),
        campaign_ids=session.scalars(select(written.c.campaign_id).distinct()).all(),
        indicator_ids=session.scalars(select(written.c.indicator_id).distinct()).all(),
    )


def _ms(seconds: Sequence[float]) -> str:
    return f"{statistics.median(seconds) * 1000:.1f} ms (slowest {max(seconds) * 1000:.1f})"


# Through the gateway


def answer_of(body: dict[str, Any]) -> Answer:
    """The values of a `GET /api/v1/datapoint/` answer, by cell."""
    found: Answer = {}
    for item in body["objects"]:
        for entry in item["indicators"]:
            if entry["value"] is not None:
                found[(int(item["region"]), int(item["campaign"]), int(entry["indicator"]))] = (
                    float(entry["value"])
                )
    return found


def datapoint_url(gateway: str, world: World) -> str:
    def joined(ids: list[int]) -> str:
        return ",".join(map(str, ids))

    return (
        f"{gateway}/api/v1/datapoint/?region__in={joined(world.asked_regions)}"
        f"&indicator__in={joined(world.asked_indicators)}"
        f"&campaign__in={joined(world.asked_campaigns)}&limit={LIMIT}"
    )


def measure_datapoints(
    gateway: str, session: requests.Session, world: World, expected: Answer, duration: float
) -> list[Timing]:
    url = datapoint_url(gateway, world)
    response = session.get(url, timeout=TIMEOUT)
    if response.status_code in MISSING:
        print(f"GET /api/v1/datapoint/: {response.status_code}, not served yet: not measured")
        return []
    if response.status_code != 200:
        raise SystemExit(f"GET /api/v1/datapoint/: {response.status_code} {response.text[:300]}")
    if not same_values(expected, answer_of(response.json())):
        raise SystemExit("GET /api/v1/datapoint/ answers other values than the maintained table")
    print(f"GET /api/v1/datapoint/: {len(response.json()['objects'])} objects, values checked")
    baseline = f"{gateway}/api/v2/campaign/{world.campaign_ids[0]}"
    return [
        time_requests(session, "baseline: GET /api/v2/campaign/<id>", baseline, duration),
        time_requests(
            session,
            f"GET /api/v1/datapoint/ ({len(world.asked_regions)} regions x "
            f"{ASKED_INDICATORS} indicators x {ASKED_CAMPAIGNS} campaigns)",
            url,
            duration,
        ),
    ]


def time_posts(
    session: requests.Session, case: str, url: str, bodies: Iterator[Any], duration: float
) -> Timing:
    """One POST after another for `duration` seconds, each body the next of `bodies`;
    every answer must be a 2xx."""
    latencies: list[float] = []
    started = time.perf_counter()
    while time.perf_counter() - started < duration:
        body = next(bodies)
        sent = time.perf_counter()
        response = session.post(url, json=body, timeout=TIMEOUT)
        latencies.append(time.perf_counter() - sent)
        if not response.ok:
            raise SystemExit(f"{case}: {response.status_code} {response.text[:300]}")
    elapsed = time.perf_counter() - started
    return Timing(
        case,
        len(latencies),
        len(latencies) / elapsed,
        percentile(latencies, 0.50) * 1000,
        percentile(latencies, 0.99) * 1000,
    )


def entry_bodies(world: World) -> Iterator[dict[str, Any]]:
    """One value at a random leaf, of an asked indicator and campaign (each of which
    holds a value at every leaf: the refresh's heaviest case). Measured after the
    reads, whose answers it changes."""
    rng = random.Random(6)
    while True:
        yield {
            "region_id": rng.choice(world.leaves),
            "campaign_id": rng.choice(world.asked_campaigns),
            "indicator_id": rng.choice(world.asked_indicators),
            "value": rng.randint(0, 1000),
        }


def measure_entry(
    gateway: str, session: requests.Session, world: World, duration: float
) -> list[Timing]:
    url = f"{gateway}/api/v1/dataentry"
    bodies = entry_bodies(world)
    response = session.post(url, json=next(bodies), timeout=TIMEOUT)
    if response.status_code in MISSING:
        print(f"POST /api/v1/dataentry: {response.status_code}, not served yet: not measured")
        return []
    if response.status_code != 201:
        raise SystemExit(f"POST /api/v1/dataentry: {response.status_code} {response.text[:300]}")
    baseline = f"{gateway}/api/v2/campaign/{world.campaign_ids[0]}"
    return [
        time_requests(session, "baseline: GET /api/v2/campaign/<id>", baseline, duration),
        time_posts(session, "POST /api/v1/dataentry, one value at a leaf", url, bodies, duration),
    ]


# Document ingestion through the gateway and the RQ worker


def map_every_string(engine: Engine, world: World, user_id: int) -> dict[str, dict[int, str]]:
    """A source string for every leaf, campaign and indicator, each mapped to its
    master object (as a person mapping them on the review page would); the strings by
    kind and master id."""
    kinds = (
        ("region", world.leaves, SourceRegion, RegionMap),
        ("campaign", world.campaign_ids, SourceCampaign, CampaignMap),
        ("indicator", world.indicator_ids, SourceIndicator, IndicatorMap),
    )
    strings: dict[str, dict[int, str]] = {}
    now = utcnow()
    with engine.begin() as connection:
        for kind, masters, source, mapping in kinds:
            strings[kind] = {master: f"src {kind} {master}" for master in masters}
            table = source.__table__
            found = connection.execute(
                insert(table).returning(table.c.id, sort_by_parameter_order=True),
                [{"source_string": text, "created_at": now} for text in strings[kind].values()],
            )
            connection.execute(
                insert(mapping.__table__),
                [
                    {
                        "source_object_id": row.id,
                        "master_object_id": master,
                        "mapped_by_id": user_id,
                    }
                    for row, master in zip(found, masters, strict=True)
                ],
            )
    return strings


def csv_document(
    cells: Sequence[Cell], strings: dict[str, dict[int, str]], shift: int = 0
) -> bytes:
    """The long form: region, campaign, indicator, value, one value a line (`shift`
    changes every value)."""
    lines = ["region,campaign,indicator,value"]
    for region, campaign, indicator in cells:
        value = 1 + (region + campaign + indicator) % 97 + shift
        lines.append(
            f"{strings['region'][region]},{strings['campaign'][campaign]},"
            f"{strings['indicator'][indicator]},{value}"
        )
    return ("\n".join(lines) + "\n").encode()


@contextmanager
def document_worker(stack: RunningStack) -> Iterator[None]:
    """The stack's datapoints worker, or, while the stack does not start one, a real
    RQ worker on the service's queue started here the same way."""
    if WORKER in stack.processes:
        yield
        return
    command = [
        str(Path(sys.executable).parent / "rq"), "worker",
        "--worker-class", "rq.worker.SimpleWorker",
        "--serializer", "rq.serializers.JSONSerializer",
        "--url", stack.env()["REDIS_URL"],
        "--path", str(REPO),
        QUEUE,
    ]  # fmt: skip
    log = (stack.var / "bench_datapoints_worker.log").open("w")
    process = subprocess.Popen(command, env=stack.env(), stdout=log, stderr=subprocess.STDOUT)
    try:
        with Redis.from_url(stack.env()["REDIS_URL"]) as connection:
            deadline = time.monotonic() + 60
            while not any(w.pid == process.pid for w in RqWorker.all(connection=connection)):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the RQ worker did not start: see {log.name}")
                time.sleep(0.1)
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def document_of(session: requests.Session, gateway: str, document_id: int) -> dict[str, Any]:
    response = session.get(f"{gateway}/api/v2/document/{document_id}/", timeout=TIMEOUT)
    response.raise_for_status()
    objects = response.json()["objects"]
    return dict(objects[0] if isinstance(objects, list) else objects)


def upload(session: requests.Session, gateway: str, content: bytes) -> requests.Response:
    return session.post(
        f"{gateway}/api/v2/document/",
        files={"docfile": ("bench.csv", content, "text/csv")},
        timeout=TIMEOUT,
    )


def warm_up_worker(session: requests.Session, gateway: str, content: bytes) -> bool:
    """A small document processed first, so the worker has built its app (once per
    worker process) before the one measured; False when uploads are not served."""
    response = upload(session, gateway, content)
    if response.status_code in MISSING:
        return False
    response.raise_for_status()
    document_id = int(response.json()["objects"]["new_id"])
    deadline = time.monotonic() + 120
    while document_of(session, gateway, document_id)["status"] not in ("processed", "failed"):
        if time.monotonic() > deadline:
            raise SystemExit("the warm-up document was not processed in 120 s")
        time.sleep(POLL)
    return True


def measure_ingest(gateway: str, session: requests.Session, content: bytes, rows: int) -> None:
    """Upload, then poll the document every POLL seconds until it is processed."""
    started = time.perf_counter()
    response = upload(session, gateway, content)
    if response.status_code != 201:
        raise SystemExit(f"POST /api/v2/document/: {response.status_code} {response.text[:300]}")
    uploaded = time.perf_counter()
    document_id = int(response.json()["objects"]["new_id"])
    seen: dict[str, float] = {}  # the first time each stage was seen, from the start
    while True:
        document = document_of(session, gateway, document_id)
        now = time.perf_counter() - started
        stage = document["status"]
        if stage == "processing" and document["rows_done"] == document["rows_total"] > 0:
            stage = "merging"  # every chunk read: the review rows and the merge are left
        seen.setdefault(stage, now)
        if document["status"] in ("processed", "failed"):
            break
        if now > INGEST_TIMEOUT:
            raise SystemExit(f"document {document_id} not processed in {INGEST_TIMEOUT} s")
        time.sleep(POLL)
    total = time.perf_counter() - started
    if document["status"] != "processed" or document["master_datapoint_count"] != rows:
        raise SystemExit(f"document {document_id}: {json.dumps(document)[:500]}")
    print(
        f"\nDocument of {rows:,} rows ({len(content) / 1e6:.1f} MB, long form, every string "
        f"mapped): processed in {total:.1f} s end to end, {rows / total:,.0f} rows/s; "
        f"{document['master_datapoint_count']:,} master datapoints, "
        f"{document['row_error_count']} row errors"
    )
    print("| stage | first seen (polled every 0.1 s) |")
    print("|---|---|")
    print(f"| upload answered (201) | {uploaded - started:.2f} s |")
    for stage, at in seen.items():
        print(f"| {stage} | {at:.2f} s |")


def profile_datapoints(
    stack: RunningStack, staff: Person, world: World, runs: int, explain_sql: bool
) -> None:
    """GET /api/v1/datapoint/ served by the service's app in this process (its test
    client, the stack's settings and database), `runs` times under cProfile."""
    from datapoints_service import create_app

    os.environ.update(stack.env())
    app = create_app()
    path = datapoint_url("", world)
    headers = {"Authorization": f"Bearer {staff.token}"}
    with app.test_client() as client:
        client.get(path, headers=headers)
        profiler = cProfile.Profile()
        profiler.enable()
        started = time.perf_counter()
        for _ in range(runs):
            if client.get(path, headers=headers).status_code != 200:
                raise SystemExit("GET /api/v1/datapoint/ in this process: not a 200")
        elapsed = time.perf_counter() - started
        profiler.disable()
    print(
        f"\ncProfile of {runs} GET /api/v1/datapoint/ in this process "
        f"({elapsed / runs * 1000:.1f} ms each under the profiler), by own time:"
    )
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(15)
    if explain_sql:
        explain_request(app, path, headers)


def explain_request(app: Flask, path: str, headers: dict[str, str]) -> None:
    """EXPLAIN ANALYZE (PostgreSQL) of every statement one request runs."""
    from datapoints_service.models import db

    with app.app_context():
        engine = db.engine
    queries: list[tuple[str, Any]] = []

    def record(*arguments: Any) -> None:
        queries.append((arguments[2], arguments[3]))

    event.listen(engine, "before_cursor_execute", record)
    try:
        with app.test_client() as client:
            client.get(path, headers=headers)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    print("\nEXPLAIN ANALYZE of the statements of one GET /api/v1/datapoint/:")
    explain(engine, queries)
    time_statements(engine, queries)


def time_statements(engine: Engine, queries: list[tuple[str, Any]], runs: int = 20) -> None:
    """The statements one after another, `runs` times, with PostgreSQL's parallel
    workers allowed (its default) and not: the sum of their p50s."""
    print(f"\nThe request's {len(queries)} statements, {runs} runs, p50 of their sum:")
    for workers in ("default", "0"):
        with engine.connect() as connection:
            if workers == "0":
                connection.exec_driver_sql("SET max_parallel_workers_per_gather = 0")
            totals: list[float] = []
            for _ in range(runs):
                started = time.perf_counter()
                for statement, parameters in queries:
                    connection.exec_driver_sql(statement, parameters).all()
                totals.append(time.perf_counter() - started)
            connection.rollback()
        print(f"| max_parallel_workers_per_gather {workers} | {_ms(totals)} |")


def profile_ingest(engine: Engine, content: bytes, user_id: int, chunk_rows: int) -> None:
    """The worker's job on a document of `content` run in this process under cProfile
    (the document written straight into the database, never queued): the service's
    functions by cumulative time."""
    from datapoints_service.documents import processing

    with engine.begin() as connection:
        document_id = connection.execute(
            insert(Document.__table__).returning(Document.id),
            {
                "guid": "bench-profiled-document",
                "docfile": "profiled.csv",
                "created_by_id": user_id,
                "created_at": utcnow(),
                "status": "queued",
            },
        ).scalar_one()
        connection.execute(
            insert(DocumentFile.__table__), {"document_id": document_id, "content": content}
        )
    profiler = cProfile.Profile()
    with Session(engine) as session:
        started = time.perf_counter()
        profiler.runcall(processing.process, session, document_id, chunk_rows)
        elapsed = time.perf_counter() - started
    print(
        f"\ncProfile of the same job in this process ({elapsed:.1f} s under the profiler), "
        "datapoints_service's functions by cumulative time:"
    )
    stats = pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative")
    stats.print_stats(r"datapoints_service", 30)


# Running


def machine_facts(engine: Engine) -> str:
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            version = str(connection.exec_driver_sql("SHOW server_version").scalar_one())
            database = f"PostgreSQL {version.split()[0]}"
        else:
            database = f"SQLite {sqlite3.sqlite_version}"
    load = ", ".join(f"{figure:.1f}" for figure in os.getloadavg())
    memory = psutil.virtual_memory().total / 2**30
    return (
        f"{os.cpu_count()} cores, {memory:.0f} GiB, Python {platform.python_version()}, "
        f"{database}; load average {load}"
    )


def run(args: argparse.Namespace) -> None:
    database = "PostgreSQL" if args.database_url else "SQLite"
    with (
        service_database(args.database_url, "DATAPOINTS_DATABASE_URL") as settings,
        running_stack(PROCESSES, settings={**SETTINGS, **settings}) as stack,
    ):
        engine = create_engine(database_url(stack, "datapoints"))
        print(f"machine: {machine_facts(engine)}")
        started = time.perf_counter()
        world = load_world(engine, args.regions)
        cells = stored_cells(world, args.values, random.Random(15))
        inserted = load_values(engine, cells)
        analyze(engine)
        refresh_s, commit_s = full_refresh(engine)
        analyze(engine)
        with Session(engine) as session:
            computed = session.scalar(select(func.count()).select_from(DataPointRollup))
        staff, staff_id = staff_user(engine, stack)
        print(
            f"{database}: {len(world.region_ids):,} regions ({len(world.leaves):,} leaves), "
            f"{INDICATORS} indicators, {CAMPAIGNS} campaigns, {len(cells):,} stored values "
            f"inserted in {inserted:.1f} s; setup {time.perf_counter() - started:.1f} s"
        )
        print(
            f"full refresh (rollup.refresh over the whole tree): {refresh_s:.1f} s, "
            f"commit {commit_s:.1f} s, {computed:,} computed values"
        )
        expected = compare_ways(engine, world, args.runs)
        if args.explain and engine.dialect.name == "postgresql":
            explain_reads(engine, world)
        print("\n| write, rolled back | total p50 | of which rollup.refresh |")
        print("|---|---|---|")
        measure_one_value(engine, world, staff_id, args.runs)
        merge = merge_cells(world, args.merge, set(cells))
        measure_merge(engine, world, staff_id, merge, args.merge_runs)
        gateway = stack.url("gateway")
        http = authorized(staff.token)
        timings = measure_datapoints(gateway, http, world, expected, args.duration)
        if timings:
            print_timings(timings, database)
        if args.profile:
            postgresql = args.explain and engine.dialect.name == "postgresql"
            profile_datapoints(stack, staff, world, args.runs, postgresql)
        timings = measure_entry(gateway, http, world, args.duration)
        if timings:
            print_timings(timings, database)
        strings = map_every_string(engine, world, staff_id)
        ingest = merge_cells(world, args.ingest, set(cells))
        with document_worker(stack):
            if warm_up_worker(http, gateway, csv_document(ingest[-10:], strings)):
                measure_ingest(gateway, http, csv_document(ingest, strings), len(ingest))
            else:
                print("POST /api/v2/document/: not served yet: not measured")
        if args.profile:
            changed = csv_document(ingest, strings, shift=1)
            profile_ingest(engine, changed, staff_id, args.chunk_rows)
        print(f"\nmachine at the end: {machine_facts(engine)}")
        engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="PostgreSQL URL; its database is (re)created")
    parser.add_argument("--regions", type=int, default=20_000)
    parser.add_argument("--values", type=int, default=1_000_000, help="stored values")
    parser.add_argument("--merge", type=int, default=100_000, help="values merged at once")
    parser.add_argument("--merge-runs", type=int, default=2)
    parser.add_argument("--ingest", type=int, default=100_000, help="rows of the CSV")
    parser.add_argument("--duration", type=float, default=10, help="seconds per HTTP case")
    parser.add_argument("--runs", type=int, default=20, help="runs of in-process cases")
    parser.add_argument(
        "--explain", action="store_true", help="PostgreSQL: EXPLAIN ANALYZE the reads"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="cProfile the document's processing, run again in this process",
    )
    parser.add_argument(
        "--chunk-rows", type=int, default=10_000, help="the service's DOCUMENT_CHUNK_ROWS"
    )
    parser.add_argument("--quick", action="store_true", help="small data, 2 s per case")
    args = parser.parse_args()
    if args.quick:
        args.regions, args.values, args.merge, args.merge_runs = 2_000, 0, 5_000, 1
        args.ingest, args.duration, args.runs = 5_000, 2, 5
    run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
