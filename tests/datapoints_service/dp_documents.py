"""Helpers for the document tests: uploads, the RQ worker that processes them, rows read
straight from the database."""

from __future__ import annotations

import io
from typing import Any

import redis
from flask import Flask
from flask.testing import FlaskClient
from rq import SimpleWorker
from rq.serializers import JSONSerializer
from sqlalchemy import func, select

from datapoints_service.documents.jobs import document_queue
from datapoints_service.models import (
    DataPoint,
    Document,
    DocumentFile,
    DocumentReview,
    SourceDataPoint,
    UserPermission,
    db,
)
from tests.datapoints_service.dp_helpers import Person, listing


def grant_upload(app: Flask, person: Person) -> None:
    """The functional permission `upload_csv` for `person`."""
    with app.app_context():
        db.session.add(UserPermission(user_id=person.user_id, auth_code="upload_csv"))
        db.session.commit()


def upload(
    client: FlaskClient, headers: dict[str, str], text: str | bytes, name: str = "data.csv"
) -> Any:
    """A multipart upload of `text` as the file `docfile`; the response."""
    content = text.encode("utf-8") if isinstance(text, str) else text
    return client.post(
        "/api/v2/document/",
        data={"docfile": (io.BytesIO(content), name)},
        headers=headers,
        content_type="multipart/form-data",
    )


def uploaded(client: FlaskClient, headers: dict[str, str], text: str | bytes) -> int:
    """Upload (it must be accepted); the new document's id."""
    response = upload(client, headers, text)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["meta"] is None and body["error"] is None
    return int(body["objects"]["new_id"])


def run_worker(app: Flask, connection: redis.Redis) -> None:
    """A real RQ worker on the documents' queue, in burst mode: it runs every queued job
    (in this process, as `SimpleWorker`, in the app's context) and stops."""
    worker = SimpleWorker(
        [document_queue(connection)], connection=connection, serializer=JSONSerializer
    )
    with app.app_context():
        worker.work(burst=True)


def document(client: FlaskClient, headers: dict[str, str], document_id: int) -> dict[str, Any]:
    response = client.get(f"/api/v2/document/{document_id}/", headers=headers)
    assert response.status_code == 200, response.get_json()
    objects: list[dict[str, Any]] = response.get_json()["objects"]
    assert len(objects) == 1
    return objects[0]


def review_rows(
    client: FlaskClient, headers: dict[str, str], document_id: int
) -> dict[tuple[str, str], dict[str, Any]]:
    """The document's review rows by (db_model, source_string)."""
    rows = listing(client, headers, "document_review", document_id=document_id, limit=1000)
    return {(row["db_model"], row["source_string"]): row for row in rows["objects"]}


def stored_values(app: Flask) -> dict[tuple[int, int, int], tuple[float, int | None]]:
    """Every stored value: (region, campaign, indicator) -> (value, document_id)."""
    with app.app_context():
        rows = db.session.execute(
            select(
                DataPoint.region_id,
                DataPoint.campaign_id,
                DataPoint.indicator_id,
                DataPoint.value,
                DataPoint.document_id,
            )
        )
        return {(r, c, i): (value, doc) for r, c, i, value, doc in rows}


def row_counts(app: Flask, document_id: int | None = None) -> dict[str, int]:
    """Rows of each document table (of one document when given)."""
    counts = {}
    with app.app_context():
        for name, model, column in (
            ("documents", Document, Document.id),
            ("files", DocumentFile, DocumentFile.document_id),
            ("source_datapoints", SourceDataPoint, SourceDataPoint.document_id),
            ("reviews", DocumentReview, DocumentReview.document_id),
        ):
            statement = select(func.count()).select_from(model)
            if document_id is not None:
                statement = statement.where(column == document_id)
            counts[name] = int(db.session.scalar(statement) or 0)
    return counts
