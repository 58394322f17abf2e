"""Documents processed at the same time by several workers, using the same new source
strings: each string gets one source object (PostgreSQL: INSERT ... ON CONFLICT DO
NOTHING, then a lookup; SQLite: the write lock serialises the chunks)."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from datapoints_service.documents import jobs
from datapoints_service.models import SourceCampaign, SourceIndicator, SourceRegion, db
from tests.datapoints_service.dp_documents import document, grant_upload, review_rows, uploaded
from tests.datapoints_service.dp_helpers import Person, run_together

WORKERS = 4
REGIONS = 40
STRIDES = (1, 3, 7, 9)  # prime to REGIONS: each is a permutation of the regions


@pytest.mark.parametrize("app_config", [{"DATAPOINTS_DOCUMENT_CHUNK_ROWS": 5}], indirect=True)
def test_concurrent_documents_share_each_new_source_string(
    client: FlaskClient, app: Flask, alice: Person
) -> None:
    grant_upload(app, alice)
    documents = []
    for worker in range(WORKERS):
        # Each document meets the same strings in another order.
        names = [f"region {(n * STRIDES[worker]) % REGIONS}" for n in range(REGIONS)]
        lines = [f"{name},June,indicator {worker % 2},{n}" for n, name in enumerate(names)]
        text = "region,campaign,indicator,value\n" + "\n".join(lines) + "\n"
        documents.append(uploaded(client, alice.headers, text))

    def work(index: int) -> None:
        with app.app_context():
            jobs.process_document(documents[index])

    run_together(len(documents), work)
    for doc in documents:
        shown = document(client, alice.headers, doc)
        assert (shown["status"], shown["source_datapoint_count"]) == ("processed", REGIONS)
        assert len(review_rows(client, alice.headers, doc)) == REGIONS + 2
    with app.app_context():
        count = db.session.scalar
        assert count(select(func.count()).select_from(SourceRegion)) == REGIONS
        assert count(select(func.count()).select_from(SourceCampaign)) == 1
        assert count(select(func.count()).select_from(SourceIndicator)) == 2
