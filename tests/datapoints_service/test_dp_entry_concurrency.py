"""Concurrent data entry through a served app (a threaded server, real threads): values
entered into the same and neighbouring cells, removed, and regions moved meanwhile, never
fail with a 500; afterwards the roll-up table is exactly what a walk of the tree gives,
and each cell's history is one unbroken chain ending at its stored value."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import requests
from flask import Flask
from sqlalchemy import select

from datapoints_service.models import DataPointHistory, db
from servicekit.testing import serve_wsgi
from tests.datapoints_service.dp_entry_helpers import (
    ENTRY,
    EntryWorld,
    Key,
    assert_rollups_current,
    cell,
    grant_indicator,
    grant_region,
    make_entry_world,
    stored_values,
)
from tests.datapoints_service.dp_helpers import Person, run_together

WORKERS = 8
REQUESTS_PER_WORKER = 12


def _run_workers(work: Callable[[int], list[int]]) -> list[int]:
    return run_together(WORKERS, work)


def _body(rng: random.Random, world: EntryWorld) -> list[dict[str, Any]]:
    """One to four cells among a few regions (leaves and the province above them), both
    campaigns and the summed and averaged indicators; now and then a removal."""
    r = world.regions
    regions = [r[1], r[3], r[4], r[7]]
    cells = []
    for _ in range(rng.randint(1, 4)):
        value = None if rng.random() < 0.2 else rng.randint(0, 100)
        region, campaign = rng.choice(regions), rng.choice(world.campaigns)
        cells.append(cell(region, campaign, rng.choice([world.summed, world.averaged]), value))
    return cells


def _histories(app: Flask) -> dict[Key, list[tuple[float | None, float | None]]]:
    with app.app_context():
        rows = db.session.execute(
            select(
                DataPointHistory.region_id,
                DataPointHistory.campaign_id,
                DataPointHistory.indicator_id,
                DataPointHistory.old_value,
                DataPointHistory.new_value,
            ).order_by(DataPointHistory.id)
        )
        chains: dict[Key, list[tuple[float | None, float | None]]] = defaultdict(list)
        for region, campaign, indicator, old, new in rows:
            chains[(region, campaign, indicator)].append((old, new))
    return chains


def test_concurrent_entries_and_moves_keep_rollups_and_history_exact(
    app: Flask, staff: Person, alice: Person
) -> None:
    world = make_entry_world(app)
    r = world.regions
    grant_region(app, alice, r[0], "w")
    for indicator in (world.summed, world.averaged):
        grant_indicator(app, alice, world.group, indicator, "w")

    with serve_wsgi(app) as url:

        def work(worker: int) -> list[int]:
            rng = random.Random(worker)
            person = staff if worker % 2 == 0 else alice
            seen: list[int] = []
            with requests.Session() as http:
                for step in range(REQUESTS_PER_WORKER):
                    if worker == 0 and step % 3 == 0:
                        # district 4 goes back and forth between the provinces
                        parent = r[2] if step % 2 == 0 else r[1]
                        answer = http.put(
                            f"{url}/api/v2/region/{r[4]}",
                            json={"parent_region_id": parent},
                            headers=staff.headers,
                        )
                    else:
                        answer = http.post(
                            f"{url}{ENTRY}", json=_body(rng, world), headers=person.headers
                        )
                    assert answer.status_code in (200, 201), answer.text
                    seen.append(answer.status_code)
            return seen

        statuses = _run_workers(work)

    assert len(statuses) == WORKERS * REQUESTS_PER_WORKER
    assert_rollups_current(app)
    stored = stored_values(app)
    chains = _histories(app)
    assert set(stored) <= set(chains)
    for key, chain in chains.items():
        previous: float | None = None
        for old, new in chain:
            assert old == previous, (key, chain)
            assert new != old, (key, chain)
            previous = new
        assert stored.get(key) == previous, (key, chain)
