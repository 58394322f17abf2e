"""Helpers for tickets_service's tests (their users come from tests.real_auth):
tickets opened through the API, and the mail queue's worker."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import redis
from flask.testing import FlaskClient
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from tests.real_auth import User
from tickets_service.notifications import mail_queue

SERVICE_SECRET = "tickets-test-secret"


def open_ticket(
    client: FlaskClient, user: User, title: str = "Where is hall B?", **fields: Any
) -> dict[str, Any]:
    """A ticket opened through the API (public unless `view` says otherwise)."""
    body = {"title": title, "description": f"About: {title}", "view": "public", **fields}
    response = client.post("/ticket/", json=body, headers=user.headers)
    assert response.status_code == 201, response.get_json()
    return dict(response.get_json())


def ids(response_body: dict[str, Any]) -> list[str]:
    """The ticketids of a list's answer, in order."""
    return [ticket["ticketid"] for ticket in response_body["result"]]


def run_mail_worker(connection: redis.Redis) -> None:
    """A real RQ worker on the tickets queue, in burst mode: it runs every queued job
    (in this process, as `SimpleWorker`) and stops."""
    worker = SimpleWorker(
        [mail_queue(connection)], connection=connection, serializer=JSONSerializer
    )
    worker.work(burst=True)


def outbox_messages(outbox: Path) -> list[EmailMessage]:
    """The messages written to the local outbox, oldest first."""
    if not outbox.exists():
        return []
    return [
        message_from_bytes(path.read_bytes(), policy=policy.default)
        for path in sorted(outbox.glob("*.eml"))
    ]
