"""Fixtures for media_service's tests: the app on a fresh database and storage folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

import media_service
from servicekit.testing import TestKeys
from tests.media_service.media_helpers import URL_SECRET, bearer


@pytest.fixture
def storage_dir(tmp_path: Path) -> Path:
    return tmp_path / "media"


@pytest.fixture
def make_app(service_app: Callable[..., Flask], storage_dir: Path) -> Callable[..., Flask]:
    def make(**config: Any) -> Flask:
        settings = {"MEDIA_STORAGE_DIR": str(storage_dir), "MEDIA_URL_SECRET": URL_SECRET}
        return service_app("media", media_service.create_app, **{**settings, **config})

    return make


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


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
