"""Fixtures for servicekit's tests: the sample service on a fresh SQLite file, and helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from devstack.redis_server import free_port
from servicekit.keys import KeyResolver
from servicekit.testing import TestKeys, dispose_engines
from tests.servicekit.servicekit_sample import create_sample_app, db

_DEFAULT = object()
AppFactory = Callable[..., Flask]


@pytest.fixture
def make_app(tmp_path: Path, test_keys: TestKeys) -> Iterator[AppFactory]:
    """`make_app(**config)`: the sample service on its own SQLite file, tables created.

    `keys` defaults to the test keys; `keys=None` makes the app fetch `JWKS_URL`.
    """
    built: list[Flask] = []

    def make(*, keys: Any = _DEFAULT, uses_redis: bool = False, **config: Any) -> Flask:
        settings = {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / f'sample-{len(built)}.db'}",
            "TESTING": True,
            **config,
        }
        resolver: KeyResolver | None = test_keys.key_set if keys is _DEFAULT else keys
        app = create_sample_app(settings, keys=resolver, uses_redis=uses_redis)
        if settings["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///"):
            with app.app_context():
                db.create_all()
        built.append(app)
        return app

    yield make
    dispose_engines(built)


@pytest.fixture
def dead_url() -> str:
    """A loopback URL where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"
