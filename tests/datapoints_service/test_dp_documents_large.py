"""A 100,000-row document end to end: uploaded, processed on a real RQ worker, every value
merged (its strings mapped beforehand) into a three-level region tree with roll-ups."""

from __future__ import annotations

import time
from datetime import date

import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, insert, select

from datapoints_service.models import (
    Campaign,
    CampaignMap,
    CampaignType,
    DataPoint,
    DataPointRollup,
    Indicator,
    IndicatorMap,
    Office,
    RegionMap,
    SourceCampaign,
    SourceIndicator,
    SourceRegion,
    db,
)
from tests.datapoints_service.dp_documents import document, grant_upload, run_worker, uploaded
from tests.datapoints_service.dp_helpers import Person, region_tree

PROVINCES, DISTRICTS_PER_PROVINCE, CAMPAIGNS, INDICATORS = 10, 10, 10, 100
ROWS = PROVINCES * DISTRICTS_PER_PROVINCE * CAMPAIGNS * INDICATORS  # 100,000


def _masters_with_maps(app: Flask) -> tuple[list[int], list[int], list[int]]:
    """Districts (under provinces under a country), campaigns and indicators, each with a
    source string `district-i`, `campaign-j`, `indicator-k` mapped to it."""
    parents: list[int | None] = [None]
    parents += [0] * PROVINCES
    parents += [1 + p for p in range(PROVINCES) for _d in range(DISTRICTS_PER_PROVINCE)]
    districts = region_tree(app, parents)[1 + PROVINCES :]
    with app.app_context():
        session = db.session()
        kind, office = CampaignType(name="large campaigns"), Office(name="large office")
        session.add_all([kind, office])
        session.flush()
        campaigns = [
            Campaign(
                name=f"c{j}",
                slug=f"c{j}",
                start_date=date(2016, 1, 1),
                end_date=date(2016, 1, 31),
                office_id=office.id,
                campaign_type_id=kind.id,
            )
            for j in range(CAMPAIGNS)
        ]
        indicators = [
            Indicator(name=f"i{k}", short_name=f"i{k}", slug=f"i{k}") for k in range(INDICATORS)
        ]
        session.add_all([*campaigns, *indicators])
        session.flush()
        for source, mapping, prefix, masters in (
            (SourceRegion, RegionMap, "district", districts),
            (SourceCampaign, CampaignMap, "campaign", [c.id for c in campaigns]),
            (SourceIndicator, IndicatorMap, "indicator", [i.id for i in indicators]),
        ):
            for index, master in enumerate(masters):
                row = source(source_string=f"{prefix}-{index}")
                session.add(row)
                session.flush()
                session.execute(
                    insert(mapping).values(source_object_id=row.id, master_object_id=master)
                )
        session.commit()
        return districts, [c.id for c in campaigns], [i.id for i in indicators]


def _file() -> str:
    lines = ["region,campaign,indicator,value"]
    districts = PROVINCES * DISTRICTS_PER_PROVINCE
    for d in range(districts):
        for c in range(CAMPAIGNS):
            for i in range(INDICATORS):
                lines.append(f"district-{d},campaign-{c},indicator-{i},{d + c + i}")
    return "\n".join(lines) + "\n"


def test_a_hundred_thousand_rows(
    client: FlaskClient, app: Flask, redis_client: redis.Redis, alice: Person
) -> None:
    districts, campaigns, indicators = _masters_with_maps(app)
    grant_upload(app, alice)
    text = _file()
    started = time.perf_counter()
    doc_id = uploaded(client, alice.headers, text)
    uploaded_at = time.perf_counter()
    run_worker(app, redis_client)
    finished = time.perf_counter()

    shown = document(client, alice.headers, doc_id)
    assert shown["status"] == "processed", shown["error"]
    assert shown["rows_total"] == shown["rows_done"] == ROWS
    assert shown["source_datapoint_count"] == ROWS
    assert shown["master_datapoint_count"] == ROWS
    assert shown["row_error_count"] == 0
    with app.app_context():
        session = db.session()
        assert session.scalar(select(func.count()).select_from(DataPoint)) == ROWS
        value = session.scalar(
            select(DataPoint.value).where(
                DataPoint.region_id == districts[57],
                DataPoint.campaign_id == campaigns[3],
                DataPoint.indicator_id == indicators[42],
            )
        )
        assert value == 57 + 3 + 42
        # Each province sums its ten districts; the country its hundred.
        rolled = session.scalar(select(func.count()).select_from(DataPointRollup))
        assert rolled == (PROVINCES + 1) * CAMPAIGNS * INDICATORS
    print(
        f"\n{ROWS} rows ({len(text)} bytes): upload {uploaded_at - started:.2f} s, "
        f"worker {finished - uploaded_at:.2f} s, "
        f"{ROWS / (finished - started):,.0f} rows/s end to end"
    )
