"""A 100,000-period read through the real streaming path, with memory that stays flat."""

from __future__ import annotations

import json
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import insert

from activity_service.models import ActivityPeriod, Member, db
from tests.activity_service.activity_helpers import DOWNLOAD

MEMBERS = 1_000
PERIODS_EACH = 100
ZONES = ("UTC", "Asia/Kolkata", "Asia/Tokyo")  # no DST: ISO times sort as text per member


def seed_table(app: Flask) -> None:
    """100,000 periods, inserted in bulk straight into the test's database."""
    origin = datetime(2020, 1, 1, tzinfo=UTC)
    now = datetime.now(UTC)
    with app.app_context(), db.engine.begin() as connection:
        connection.execute(
            insert(Member.__table__),
            [
                {"id": number + 1, "external_id": f"M{number:05d}", "real_name": f"Member {number}",
                 "tz": ZONES[number % len(ZONES)], "created_at": now, "updated_at": now}
                for number in range(MEMBERS)
            ],
        )  # fmt: skip
        connection.execute(
            insert(ActivityPeriod.__table__),
            [
                {"member_id": number + 1,
                 "start_time": origin + timedelta(hours=(index * 7919) % 20000),
                 "end_time": origin + timedelta(hours=(index * 7919) % 20000, minutes=30)}
                for number in range(MEMBERS)
                for index in range(PERIODS_EACH)
            ],
        )  # fmt: skip


def test_a_100000_period_read_is_streamed_in_order_with_flat_memory(
    app: Flask, client: FlaskClient, admin: dict[str, str], tmp_path: Path
) -> None:
    seed_table(app)
    response = client.get(f"{DOWNLOAD}?format=iso", headers=admin, buffered=False)
    assert response.status_code == 200
    target = tmp_path / "download.json"
    tracemalloc.start()
    try:
        with target.open("wb") as out:
            for chunk in response.response:
                out.write(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        response.close()
    size = target.stat().st_size
    assert size > 8_000_000
    # A reader that built the answer in memory would hold at least the whole document.
    assert peak < size / 4, f"peak {peak} bytes while streaming {size} bytes"

    body = json.loads(target.read_bytes())
    members = body["members"]
    assert [entry["id"] for entry in members] == [f"M{n:05d}" for n in range(MEMBERS)]
    assert sum(len(entry["activity_periods"]) for entry in members) == MEMBERS * PERIODS_EACH
    for entry in members:
        starts = [period["start_time"] for period in entry["activity_periods"]]
        assert starts == sorted(starts)
        assert len(set(starts)) == PERIODS_EACH
