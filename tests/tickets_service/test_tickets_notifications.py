"""Mail to the opener when staff reply or close: queued by the request, sent by a real
RQ worker (to the local outbox, or through a real SMTP server), the address asked of
auth_service's user directory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from devstack.redis_server import free_port
from tests.auth_service.auth_smtp import smtp_server
from tests.real_auth import AuthServer, User
from tests.tickets_service.tickets_helpers import open_ticket, outbox_messages, run_mail_worker
from tickets_service import notifications
from tickets_service.notifications import mail_queue

pytestmark = pytest.mark.usefixtures("worker_environment")


def reply(client: FlaskClient, user: User, ticket: dict[str, Any], content: str) -> None:
    path = f"/ticket/{ticket['ticketid']}/comments"
    response = client.post(path, json={"content": content}, headers=user.headers)
    assert response.status_code == 201, response.get_json()


def close(client: FlaskClient, user: User, ticket: dict[str, Any], content: str) -> None:
    path = f"/ticket/{ticket['ticketid']}/close"
    response = client.put(path, json={"content": content}, headers=user.headers)
    assert response.status_code == 200, response.get_json()


def test_staff_replies_and_closing_reach_the_openers_outbox(
    client: FlaskClient, alice: User, staff: User, outbox: Path, redis_client: redis.Redis
) -> None:
    ticket = open_ticket(client, alice, "Where is hall B?", view="private")
    reply(client, alice, ticket, "Still looking")  # the opener's own reply: no mail
    reply(client, staff, ticket, "Behind the library.")
    close(client, staff, ticket, "Marked on the map now.")

    assert outbox_messages(outbox) == []  # queued, not sent by the requests
    assert mail_queue(redis_client).count == 2
    run_mail_worker(redis_client)

    replied, closed = outbox_messages(outbox)
    assert replied["To"] == closed["To"] == "alice@example.org"
    number = ticket["ticketid"]
    assert replied["Subject"] == f"New reply to your ticket #{number}: Where is hall B?"
    assert "staff_1 replied" in replied.get_content()
    assert "Behind the library." in replied.get_content()
    assert closed["Subject"] == f"Your ticket #{number} is solved: Where is hall B?"
    assert "Marked on the map now." in closed.get_content()
    assert mail_queue(redis_client).count == 0


def test_mail_goes_through_the_smtp_server_when_one_is_configured(
    client: FlaskClient,
    alice: User,
    staff: User,
    outbox: Path,
    redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ticket = open_ticket(client, alice)
    close(client, staff, ticket, "Done")

    with smtp_server() as (inbox, port):
        monkeypatch.setenv("SMTP_URL", f"smtp://127.0.0.1:{port}")
        notifications.sender.cache_clear()
        run_mail_worker(redis_client)

    (message,) = inbox.messages
    assert message["To"] == "alice@example.org"
    assert "Done" in message.get_content()
    assert outbox_messages(outbox) == []


def test_the_current_address_is_the_one_used(
    client: FlaskClient,
    auth: AuthServer,
    alice: User,
    staff: User,
    outbox: Path,
    redis_client: redis.Redis,
) -> None:
    ticket = open_ticket(client, alice)
    close(client, staff, ticket, "Done")
    auth.change_profile("alice", email="alice@new.example.org")

    run_mail_worker(redis_client)

    assert [m["To"] for m in outbox_messages(outbox)] == ["alice@new.example.org"]


def test_no_mail_when_staff_answer_their_own_ticket_or_the_opener_has_no_address(
    client: FlaskClient, auth: AuthServer, staff: User, outbox: Path, redis_client: redis.Redis
) -> None:
    own = open_ticket(client, staff)
    reply(client, staff, own, "Noting it for myself")
    close(client, staff, own, "Done")
    nameless = auth.add_user("no_mail", email=None)
    ticket = open_ticket(client, nameless)
    close(client, staff, ticket, "Done")

    run_mail_worker(redis_client)

    assert outbox_messages(outbox) == []
    assert mail_queue(redis_client).count == 0


def test_a_failed_delivery_is_retried_later_and_the_request_succeeded(
    client: FlaskClient,
    alice: User,
    staff: User,
    outbox: Path,
    redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ticket = open_ticket(client, alice)
    close(client, staff, ticket, "Done")
    monkeypatch.setenv("SMTP_URL", f"smtp://127.0.0.1:{free_port()}")  # nothing listens
    notifications.sender.cache_clear()

    run_mail_worker(redis_client)

    queue = mail_queue(redis_client)
    assert len(queue.scheduled_job_registry.get_job_ids()) == 1  # RQ tries it again later
    assert "ConnectionRefusedError" in caplog.text  # the worker's report of the attempt
    assert queue.failed_job_registry.count == 0
    assert outbox_messages(outbox) == []


def test_without_redis_replies_and_closing_still_succeed(
    make_app: Callable[..., Flask], alice: User, staff: User, outbox: Path
) -> None:
    client = make_app(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0").test_client()

    ticket = open_ticket(client, alice)
    reply(client, staff, ticket, "On it")
    close(client, staff, ticket, "Done")

    assert outbox_messages(outbox) == []
