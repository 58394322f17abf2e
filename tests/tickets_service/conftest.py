"""Fixtures for tickets_service's tests: the app on a fresh database, with a real
auth_service (on loopback, its own database) as the user directory its mail jobs ask."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask

import tickets_service
from devstack.redis_server import free_port
from servicekit.testing import ServiceUnderTest, TestKeys
from tests.real_auth import auth_app
from tests.tickets_service.tickets_helpers import SERVICE_SECRET, AuthServer, User, auth_server
from tickets_service import notifications


@pytest.fixture
def auth(
    service_app: Callable[..., Flask],
    test_keys: TestKeys,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    redis_client: redis.Redis,
) -> Iterator[AuthServer]:
    """A real auth_service served on loopback, on its own migrated database."""
    dead_url = f"http://127.0.0.1:{free_port()}"
    app = auth_app(
        service_app, tmp_path, monkeypatch, service_secret=SERVICE_SECRET, media_url=dead_url
    )
    with auth_server(app, test_keys) as server:
        yield server


@pytest.fixture
def outbox(tmp_path: Path) -> Path:
    """Where tickets_service's mail goes (no SMTP server configured)."""
    return tmp_path / "tickets-mail"


@pytest.fixture
def worker_environment(
    auth: AuthServer, outbox: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """The mail worker's environment, as the service's processes share it."""
    monkeypatch.setenv("SERVICE_SECRET", SERVICE_SECRET)
    monkeypatch.setenv("AUTH_SERVICE_URL", auth.url)
    monkeypatch.setenv("MAIL_OUTBOX_DIR", str(outbox))
    monkeypatch.delenv("SMTP_URL", raising=False)
    notifications.sender.cache_clear()
    yield
    notifications.sender.cache_clear()


@pytest.fixture
def service_under_test(auth: AuthServer, outbox: Path) -> ServiceUnderTest:
    settings = {
        "AUTH_SERVICE_URL": auth.url,
        "SERVICE_SECRET": SERVICE_SECRET,
        "MAIL_OUTBOX_DIR": str(outbox),
    }
    return ServiceUnderTest("tickets", tickets_service.create_app, settings)


@pytest.fixture
def staff(auth: AuthServer) -> User:
    return auth.add_user("staff_1", role="staff")


@pytest.fixture
def superuser(auth: AuthServer) -> User:
    return auth.add_user("root_1", role="superuser")


@pytest.fixture
def alice(auth: AuthServer) -> User:
    return auth.add_user("alice")


@pytest.fixture
def bob(auth: AuthServer) -> User:
    return auth.add_user("bob")
