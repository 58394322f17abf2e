"""Fixtures for activity_service's tests: the app on a fresh database, callers' tokens."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

import activity_service
from servicekit.testing import ServiceUnderTest, TestKeys
from tests.activity_service.activity_helpers import bearer, uploader


@pytest.fixture
def service_under_test() -> ServiceUnderTest:
    return ServiceUnderTest("activity", activity_service.create_app)


@pytest.fixture
def headers(test_keys: TestKeys) -> Callable[..., dict[str, str]]:
    """Authorization headers: `headers("superuser")`, `headers("staff", priv={"activity": "r"})`."""

    def make(role: str = "superuser", **claims: Any) -> dict[str, str]:
        return bearer(test_keys.token(sub=f"{role}-1", username=role, role=role, **claims))

    return make


@pytest.fixture
def admin(headers: Callable[..., dict[str, str]]) -> dict[str, str]:
    """A superuser: may upload and read."""
    return headers("superuser")


@pytest.fixture
def upload(client: FlaskClient, admin: dict[str, str]) -> Callable[..., TestResponse]:
    """POST a document as the superuser."""
    return uploader(client, admin)
