"""Fixtures for tickets_service's tests: the app on a fresh database, with a real
auth_service (on loopback, its own database) as the user directory its mail jobs ask."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import tickets_service
from servicekit.testing import ServiceUnderTest
from tests.real_auth import AuthServer, User, auth_fixture
from tests.tickets_service.tickets_helpers import SERVICE_SECRET
from tickets_service import notifications

auth = auth_fixture(SERVICE_SECRET)


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
