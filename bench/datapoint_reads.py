"""`GET /api/v1/datapoint/` in this process (the app's test client, no gateway) on the data
of `bench/datapoints_values.py`: the 20,000-region tree, 50 indicators, 10 campaigns,
`--values` stored values at the leaves and their roll-ups, on SQLite or PostgreSQL.

Measured, `--runs` requests each, p50 and slowest: the benchmark's own question (country
and 37 provinces x 10 indicators x 5 campaigns, limit 1,000: every value computed), the
default page (20 pairs of everything: the count of every pair is the cost), a user
holding one province (every pair of their subtree, limit 1,000), the same without pivot
and for two indicators, and the whole CSV of the country and provinces for every
indicator and campaign. With `--explain` (PostgreSQL), the plans of every request's
statements.

    .venv/bin/python bench/datapoint_reads.py [--database-url URL] [--values N] [--runs N]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import flask_migrate
from flask.testing import FlaskClient
from sqlalchemy import Engine, create_engine, event, insert, select

import datapoints_service
from bench.datapoints import copy_user
from bench.datapoints_values import (
    World,
    full_refresh,
    load_values,
    load_world,
    stored_cells,
)
from bench.harness import analyze, service_database
from datapoints_service.models import (
    Group,
    GroupPermission,
    RegionPermission,
    RegionTree,
    UserGroup,
    db,
)
from servicekit.testing import TestKeys

PATH = "/api/v1/datapoint/"


def joined(ids: list[int]) -> str:
    return ",".join(map(str, ids))


def province_holder(engine: Engine, world: World) -> tuple[str, int]:
    """A user holding the first province and reading every indicator; their public id and
    how many regions they see."""
    province = next(
        r for r, level in zip(world.region_ids, world.levels, strict=True) if level == 1
    )
    public_id = uuid.uuid4().hex
    with engine.begin() as connection:
        user_id = copy_user(connection, public_id, "holder")
        connection.execute(
            insert(RegionPermission.__table__),
            {"user_id": user_id, "region_id": province, "read_write": "r"},
        )
        group_id = connection.execute(
            insert(Group.__table__).returning(Group.id), {"name": "readers"}
        ).scalar_one()
        connection.execute(insert(UserGroup.__table__), {"user_id": user_id, "group_id": group_id})
        connection.execute(
            insert(GroupPermission.__table__),
            [
                {"group_id": group_id, "indicator_id": indicator, "read_write": "r"}
                for indicator in world.indicator_ids
            ],
        )
        seen = connection.execute(
            select(RegionTree.descendant_id).where(RegionTree.ancestor_id == province)
        ).all()
    return public_id, len(seen)


def timed(client: FlaskClient, headers: dict[str, str], query: str, runs: int) -> str:
    seconds = []
    size = 0
    for _ in range(runs):
        started = time.perf_counter()
        with client.get(f"{PATH}?{query}", headers=headers) as response:
            body = response.get_data()
            assert response.status_code == 200, body[:300]
        seconds.append(time.perf_counter() - started)
        size = len(body)
    return (
        f"{statistics.median(seconds) * 1000:.1f} ms (slowest {max(seconds) * 1000:.1f}), "
        f"{size:,} bytes"
    )


def statements_of(engine: Engine, action: Callable[[], Any]) -> list[tuple[str, Any]]:
    captured: list[tuple[str, Any]] = []

    def record(*arguments: Any) -> None:
        captured.append((arguments[2], arguments[3]))

    event.listen(engine, "before_cursor_execute", record)
    try:
        action()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return captured


def explain(engine: Engine, captured: list[tuple[str, Any]]) -> None:
    with engine.connect() as connection:
        for statement, parameters in captured:
            if "datapoint" not in statement:
                continue
            print(f"\n    {' '.join(statement.split())[:400]}")
            plan = connection.exec_driver_sql("EXPLAIN (ANALYZE) " + statement, parameters)
            for line in plan.scalars():
                print(f"      {line}")


def run(args: argparse.Namespace, url: str) -> None:
    keys = TestKeys()
    app = datapoints_service.create_app(
        {"SQLALCHEMY_DATABASE_URI": url, "TESTING": True}, keys=keys.key_set
    )
    with app.app_context():
        flask_migrate.upgrade()
    engine = create_engine(url)
    world = load_world(engine, args.regions)
    cells = stored_cells(world, args.values, random.Random(15))
    load_values(engine, cells)
    analyze(engine)
    refresh_s, _ = full_refresh(engine)
    analyze(engine)
    staff_id = uuid.uuid4().hex
    with engine.begin() as connection:
        copy_user(connection, staff_id, "staff", staff=True)
    holder_id, holder_regions = province_holder(engine, world)
    staff = {"Authorization": f"Bearer {keys.token(sub=staff_id, role='staff')}"}
    holder = {"Authorization": f"Bearer {keys.token(sub=holder_id)}"}
    print(
        f"{engine.dialect.name}: {len(world.region_ids):,} regions, {len(cells):,} stored "
        f"values, full refresh {refresh_s:.1f} s; the holder sees {holder_regions} regions"
    )
    asked = world.asked_regions
    question = (
        f"region__in={joined(asked)}&indicator__in={joined(world.asked_indicators)}"
        f"&campaign__in={joined(world.asked_campaigns)}&limit=1000"
    )
    client = app.test_client()
    cases = [
        (f"staff: {len(asked)} regions x 10 indicators x 5 campaigns", staff, question),
        ("staff: the default page (limit 20, everything counted)", staff, ""),
        ("province holder: limit 1000", holder, "limit=1000"),
        ("province holder: no_pivot, limit 1000", holder, "limit=1000&no_pivot=1"),
        (
            "province holder: 2 indicators, limit 1000",
            holder,
            f"indicator__in={joined(world.asked_indicators[:2])}&limit=1000",
        ),
        (
            f"staff: CSV of {len(asked)} regions, everything",
            staff,
            f"region__in={joined(asked)}&format=csv",
        ),
    ]
    print("\n| request | p50 (slowest), size |\n|---|---|")
    for label, headers, query in cases:
        print(f"| {label} | {timed(client, headers, query, args.runs)} |")
    if args.explain and engine.dialect.name == "postgresql":
        with app.app_context():
            served = db.engine
        for _, headers, query in cases:
            explain(engine, statements_of(served, partial(timed, client, headers, query, 1)))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="PostgreSQL URL; its database is (re)created")
    parser.add_argument("--regions", type=int, default=20_000)
    parser.add_argument("--values", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--explain", action="store_true")
    args = parser.parse_args()
    with service_database(args.database_url, "DATAPOINTS_DATABASE_URL") as settings:
        if settings:
            run(args, settings["DATAPOINTS_DATABASE_URL"])
            return
        with tempfile.TemporaryDirectory() as directory:
            run(args, f"sqlite:///{Path(directory) / 'datapoints.db'}")


if __name__ == "__main__":
    main()
