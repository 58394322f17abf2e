"""Helpers for tickets_service's tests: users known to a real auth_service and their
tokens, tickets opened through the API, and the mail queue's worker."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import redis
from flask import Flask
from flask.testing import FlaskClient
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from auth_service import service
from auth_service.context import auth_context
from servicekit import Identity
from servicekit.testing import TestKeys, serve_wsgi
from tickets_service.notifications import mail_queue

SERVICE_SECRET = "tickets-test-secret"
ROOT = Identity(subject="root-public-id", username="root", role="superuser")


@dataclass(frozen=True)
class User:
    """A user of the test: known to auth_service, with a token tickets_service accepts."""

    public_id: str
    username: str
    headers: dict[str, str]


@dataclass
class AuthServer:
    """A real auth_service on loopback: the user directory tickets_service's jobs ask."""

    app: Flask
    url: str
    keys: TestKeys

    def add_user(self, username: str, *, role: str = "normal", **profile: Any) -> User:
        profile.setdefault("email", f"{username}@example.org")
        with self.app.app_context():
            user = service.create_user(
                auth_context(self.app), username=username, password=None, role=role, **profile
            )
            public_id = str(user.public_id)
        token = self.keys.token(sub=public_id, username=username, role=role)
        return User(public_id, username, {"Authorization": f"Bearer {token}"})

    def change_profile(self, name: str, **changes: Any) -> None:
        """Change the user's profile fields (`username=` renames them)."""
        with self.app.app_context():
            service.update_profile(auth_context(self.app), name, ROOT, changes)

    def delete(self, username: str) -> None:
        with self.app.app_context():
            service.delete_user(auth_context(self.app), username, ROOT)


@contextmanager
def auth_server(app: Flask, keys: TestKeys) -> Iterator[AuthServer]:
    with serve_wsgi(app) as url:
        yield AuthServer(app, url, keys)


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
