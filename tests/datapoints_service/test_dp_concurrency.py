"""Concurrent writes through a served app (a threaded server, real threads): region
inserts and moves never fail with a 500 ("database is locked" on SQLite), and the closure
table afterwards is exactly the one a walk up the parents gives."""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Callable
from typing import Any

import requests
from flask import Flask
from sqlalchemy import select

from datapoints_service.models import Region, RegionTree, db
from servicekit.testing import serve_wsgi
from tests.datapoints_service.dp_helpers import Person, region_tree, run_together

WORKERS = 8
WRITES_PER_WORKER = 12


def _closure_by_walking(parents: dict[int, int | None]) -> set[tuple[int, int, int]]:
    """(ancestor, descendant, depth) for every region, by following parent_region_id."""
    rows = set()
    for region in parents:
        above: int | None = region
        depth = 0
        while above is not None:
            rows.add((above, region, depth))
            above = parents[above]
            depth += 1
            assert depth <= len(parents), "a cycle in parent_region_id"
    return rows


def _stored_tree(app: Flask) -> tuple[dict[int, int | None], set[tuple[int, int, int]]]:
    with app.app_context():
        regions = db.session.execute(select(Region.id, Region.parent_region_id))
        parents = {region_id: parent for region_id, parent in regions}
        paths = db.session.execute(
            select(RegionTree.ancestor_id, RegionTree.descendant_id, RegionTree.depth)
        )
        closure = {(ancestor, descendant, depth) for ancestor, descendant, depth in paths}
    return parents, closure


def _run_workers(work: Callable[[int], list[int]]) -> list[int]:
    return run_together(WORKERS, work)


def test_concurrent_region_inserts_and_moves(app: Flask, staff: Person) -> None:
    seeded = region_tree(app, [None, 0, 0, 1, 1, 2, 2, None, 7, 8])
    with app.app_context():
        first = db.session.get(Region, seeded[0])
        assert first is not None
        office, kind = first.office_id, first.region_type_id
    known = list(seeded)
    lock = threading.Lock()

    with serve_wsgi(app) as url:

        def work(worker: int) -> list[int]:
            rng = random.Random(worker)
            seen: list[int] = []
            with requests.Session() as http:
                for step in range(WRITES_PER_WORKER):
                    with lock:
                        region, parent = rng.choice(known), rng.choice(known)
                    if step % 2 == 0:
                        tag = uuid.uuid4().hex[:10]
                        body: dict[str, Any] = {
                            "name": f"r-{tag}",
                            "region_code": f"c-{tag}",
                            "slug": f"s-{tag}",
                            "office_id": str(office),
                            "region_type_id": kind,
                            "parent_region_id": parent,
                        }
                        answer = http.post(
                            f"{url}/api/v2/region/", json=body, headers=staff.headers
                        )
                        if answer.status_code == 201:
                            with lock:
                                known.append(answer.json()["objects"]["new_id"])
                    else:
                        answer = http.put(
                            f"{url}/api/v2/region/{region}",
                            json={"parent_region_id": parent},
                            headers=staff.headers,
                        )
                        if answer.status_code == 400:  # a cycle, or a region under itself
                            assert list(answer.json()["errors"]) == ["parent_region_id"], (
                                answer.json()
                            )
                    seen.append(answer.status_code)
            return seen

        statuses = _run_workers(work)

    assert len(statuses) == WORKERS * WRITES_PER_WORKER
    assert set(statuses) <= {200, 201, 400}, statuses
    assert statuses.count(201) == WORKERS * WRITES_PER_WORKER // 2
    parents, closure = _stored_tree(app)
    assert len(parents) == len(seeded) + statuses.count(201)
    assert closure == _closure_by_walking(parents)


def test_concurrent_duplicate_slugs(app: Flask, staff: Person) -> None:
    """Writers that check a slug and then insert it: one wins, the others get a 409 naming
    the slug (never a 500)."""
    with app.app_context():
        first = db.session.get(Region, region_tree(app, [None])[0])
        assert first is not None
        office, kind = first.office_id, first.region_type_id

    with serve_wsgi(app) as url:

        def work(worker: int) -> list[int]:
            body = {
                "name": f"twin {worker}",
                "region_code": f"twin-{worker}",
                "slug": "twin",
                "office_id": office,
                "region_type_id": kind,
            }
            answer = requests.post(f"{url}/api/v2/region", json=body, headers=staff.headers)
            if answer.status_code != 201:
                assert "slug" in answer.json()["errors"], answer.json()
            return [answer.status_code]

        statuses = _run_workers(work)

    assert sorted(statuses) == [201] + [409] * (WORKERS - 1)
    with app.app_context():
        twins = db.session.scalars(select(Region.id).where(Region.slug == "twin")).all()
    assert len(twins) == 1
