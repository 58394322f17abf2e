"""Fixtures for media_service's tests: the app on a fresh database and storage folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import media_service
from servicekit.testing import ServiceUnderTest, TestKeys
from tests.media_service.media_helpers import URL_SECRET, bearer


@pytest.fixture
def storage_dir(tmp_path: Path) -> Path:
    return tmp_path / "media"


@pytest.fixture
def service_under_test(storage_dir: Path) -> ServiceUnderTest:
    settings = {"MEDIA_STORAGE_DIR": str(storage_dir), "MEDIA_URL_SECRET": URL_SECRET}
    return ServiceUnderTest("media", media_service.create_app, settings)


@pytest.fixture
def user_headers(test_keys: TestKeys) -> Callable[[str], dict[str, str]]:
    """Authorization headers of a normal user: `user_headers("alice")`."""

    def make(name: str) -> dict[str, str]:
        return bearer(test_keys.token(sub=f"id-{name}", username=name, role="normal"))

    return make


@pytest.fixture
def alice(user_headers: Callable[[str], dict[str, str]]) -> dict[str, str]:
    return user_headers("alice")


@pytest.fixture
def bob(user_headers: Callable[[str], dict[str, str]]) -> dict[str, str]:
    return user_headers("bob")


@pytest.fixture
def service_headers(test_keys: TestKeys) -> dict[str, str]:
    """A service token, as auth_service issues them to the other services."""
    return bearer(test_keys.token(sub="auth", username="auth", role="service"))
