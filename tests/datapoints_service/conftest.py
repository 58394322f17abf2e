"""Fixtures for datapoints_service's tests: the app on a fresh database and callers with
tokens it accepts (users of its users copy)."""

from __future__ import annotations

import pytest
from flask import Flask

import datapoints_service
from servicekit.testing import ServiceUnderTest, TestKeys
from tests.datapoints_service.dp_helpers import ALL_PRIVILEGES, Person, add_person


@pytest.fixture
def service_under_test() -> ServiceUnderTest:
    return ServiceUnderTest("datapoints", datapoints_service.create_app, {})


@pytest.fixture
def root(app: Flask, test_keys: TestKeys) -> Person:
    return add_person(app, test_keys, "root", role="superuser")


@pytest.fixture
def staff(app: Flask, test_keys: TestKeys) -> Person:
    """Staff with every privilege of this service."""
    return add_person(app, test_keys, "staff", role="staff", priv=ALL_PRIVILEGES)


@pytest.fixture
def clerk(app: Flask, test_keys: TestKeys) -> Person:
    """Staff without any privilege of this service."""
    return add_person(app, test_keys, "clerk", role="staff", priv={"event": "crud"})


@pytest.fixture
def alice(app: Flask, test_keys: TestKeys) -> Person:
    return add_person(app, test_keys, "alice")


@pytest.fixture
def bob(app: Flask, test_keys: TestKeys) -> Person:
    return add_person(app, test_keys, "bob")
