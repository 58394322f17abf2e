"""The real suite for end-to-end tests: every service, the gateway and the RQ worker under
their production servers (gunicorn, rq) on free loopback ports, driven with `requests`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
from e2e_helpers import ADMIN_PASSWORD, STACK_SETTINGS
from sqlalchemy.engine import make_url

from servicekit.config import SERVICE_PORTS
from servicekit.devstack import (
    PACKAGES,
    Stack,
    prepare,
    start_processes,
    stop_processes,
    wait_until_ready,
)
from servicekit.redisserver import free_port
from servicekit.testing import recreate_postgres_database


def e2e_redis_url(redis_url: str) -> str:
    """A Redis database of its own: the unit tests flush theirs between tests."""
    parts = urlsplit(redis_url)
    database = int(parts.path.lstrip("/") or 0)
    other = 14 if database == 15 else database + 1
    return urlunsplit(parts._replace(path=f"/{other}"))


def database_environment(var: Path) -> dict[str, str]:
    """SQLite files in the stack's folder, or fresh PostgreSQL databases when configured."""
    server = os.environ.get("TEST_DATABASE_URL")
    env: dict[str, str] = {}
    for name in PACKAGES:
        if server:
            base = make_url(server)
            database = f"{base.database or 'flotilla_test'}_e2e_{name}"
            recreate_postgres_database(server, database)
            url = base.set(database=database).render_as_string(hide_password=False)
        else:
            url = f"sqlite:///{var / f'{name}.db'}"
        env[f"{name.upper()}_DATABASE_URL"] = url
    return env


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Stack]:
    var = tmp_path_factory.mktemp("stack")
    environment = {
        **STACK_SETTINGS,
        "REDIS_URL": e2e_redis_url(redis_url),
        "SERVICE_SECRET": "e2e-service-secret",
        "MEDIA_URL_SECRET": "e2e-media-url-secret",
        "GUNICORN_WORKERS": "1",
        "GUNICORN_THREADS": "8",
        **database_environment(var),
    }
    ports = {name: free_port() for name in SERVICE_PORTS}
    suite = Stack(var=var, ports=ports, environment=environment)
    prepare(suite)
    processes = start_processes(suite)
    try:
        wait_until_ready(suite, [*PACKAGES, "gateway"])
        yield suite
    finally:
        stop_processes(processes)


@pytest.fixture(scope="session")
def gateway_url(stack: Stack) -> str:
    return stack.url("gateway")


@pytest.fixture(scope="session")
def admin_token(gateway_url: str) -> str:
    response = requests.post(
        f"{gateway_url}/auth/token/",
        json={"username": "admin", "password": ADMIN_PASSWORD},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access"])
