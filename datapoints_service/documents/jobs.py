"""Documents on RQ: the queue `datapoints` (JSON payloads: a document id) and its job.

The API enqueues after its transaction commits; a worker runs the job:

    rq worker --worker-class rq.worker.SimpleWorker \\
        --serializer rq.serializers.JSONSerializer datapoints

with the service's environment (`DATAPOINTS_DATABASE_URL`, `REDIS_URL`). The job needs
the service's database: a worker process builds the app once (from that environment)
and runs each job in its app context; a job run where an app context is already active
(a test's worker, `flask process-document`) uses that app.
"""

from __future__ import annotations

from flask import Flask, current_app, has_app_context
from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

from datapoints_service.context import datapoints_context
from datapoints_service.documents import processing
from datapoints_service.models import db
from servicekit.app import process_app

QUEUE_NAME = "datapoints"
JOB_FUNCTION = "datapoints_service.documents.jobs.process_document"
FAILURE_TTL = 7 * 24 * 3600  # a job that raised is kept a week for inspection


def document_queue(connection: Redis) -> Queue:
    return Queue(QUEUE_NAME, connection=connection, serializer=JSONSerializer)


def enqueue(connection: Redis, document_id: int, timeout: int) -> None:
    """Hand the document to the worker (raises RedisError when Redis does not take it)."""
    document_queue(connection).enqueue(
        JOB_FUNCTION,
        document_id,
        job_timeout=timeout,
        result_ttl=0,
        failure_ttl=FAILURE_TTL,
        description=f"process document {document_id}",
    )


def _build_app() -> Flask:
    from datapoints_service import create_app

    return create_app()


def worker_app() -> Flask:
    """This worker process's app, built on first use from the environment."""
    return process_app(_build_app)


def process_document(document_id: int) -> None:
    """The job: process the document now."""
    app = current_app._get_current_object() if has_app_context() else worker_app()  # type: ignore[attr-defined]
    with app.app_context():
        chunk_rows = datapoints_context(app).settings.document_chunk_rows
        processing.process(db.session(), int(document_id), chunk_rows)
