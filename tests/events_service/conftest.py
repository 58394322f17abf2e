"""Fixtures for events_service's tests: the app on a fresh database, asking a real
auth_service (on loopback, its own database) about users."""

from __future__ import annotations

import pytest

import events_service
from devstack.redis_server import free_port
from servicekit.testing import ServiceUnderTest
from tests.events_service.events_helpers import EVENT_PRIVILEGES, OTHER_COLLEGE, SERVICE_SECRET
from tests.real_auth import AuthServer, User, auth_fixture

auth = auth_fixture(SERVICE_SECRET)


@pytest.fixture
def dead_url() -> str:
    """A loopback URL where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def service_under_test(auth: AuthServer, dead_url: str) -> ServiceUnderTest:
    """events apps that ask this test's auth_service about users; media_service is a
    closed port unless a test serves one."""
    settings = {
        "AUTH_SERVICE_URL": auth.url,
        "SERVICE_SECRET": SERVICE_SECRET,
        "MEDIA_SERVICE_URL": dead_url,
    }
    return ServiceUnderTest("events", events_service.create_app, settings)


@pytest.fixture
def staff(auth: AuthServer) -> User:
    """A staff user with every event privilege."""
    return auth.add_user("staff_1", role="staff", priv=EVENT_PRIVILEGES)


@pytest.fixture
def superuser(auth: AuthServer) -> User:
    return auth.add_user("root_1", role="superuser")


@pytest.fixture
def alice(auth: AuthServer) -> User:
    return auth.add_user("alice")


@pytest.fixture
def bob(auth: AuthServer) -> User:
    return auth.add_user("bob")


@pytest.fixture
def carol(auth: AuthServer) -> User:
    """A user of another college than alice and bob."""
    return auth.add_user("carol", college=OTHER_COLLEGE)
