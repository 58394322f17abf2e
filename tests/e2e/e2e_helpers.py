"""The stack every end-to-end test runs on, and what each does as a client: register users,
log in, send tokens."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from sqlalchemy.engine import make_url

from devstack.stack import RunningStack, databases_of, running_stack
from servicekit.testing import recreate_postgres_database
from tests.scheduler_service.scheduler_helpers import TargetServer

PASSWORD = "correct horse battery"
ADMIN_PASSWORD = "e2e-admin-password"  # the stack's bootstrap superuser
TIMEOUT = 10
# What every stack of these tests runs with, beside its own ports, databases and secrets.
STACK_SETTINGS = {
    "ADMIN_PASSWORD": ADMIN_PASSWORD,
    "LOG_LEVEL": "WARNING",
    # One worker a process: light on a small machine, and a request's memory is one worker's.
    "GUNICORN_WORKERS": "1",
    "PASSWORD_HASH_TIME_COST": "1",
    "PASSWORD_HASH_MEMORY_KIB": "1024",
    # Every test logs in from 127.0.0.1: the limits are tested on their own.
    "GATEWAY_LOGIN_RATE_LIMIT": "100000/minute",
    "GATEWAY_LOGIN_USER_RATE_LIMIT": "100000/minute",
    "GATEWAY_RATE_LIMIT": "100000/minute",
    "GATEWAY_USER_RATE_LIMIT": "100000/minute",
}


@contextmanager
def e2e_stack(
    var: Path,
    processes: Collection[str],
    *,
    label: str,
    redis_url: str | None = None,
    settings: Mapping[str, str] | None = None,
) -> Iterator[RunningStack]:
    """`running_stack` with the tests' settings, on PostgreSQL databases of its own when
    TEST_DATABASE_URL names a server (`label` tells them apart), else on SQLite files."""
    databases = postgres_databases(databases_of(processes), label)
    environment = {**STACK_SETTINGS, **databases, **(settings or {})}
    with running_stack(processes, settings=environment, redis_url=redis_url, var=var) as stack:
        yield stack


def postgres_databases(services: Collection[str], label: str) -> dict[str, str]:
    """`<NAME>_DATABASE_URL` of a fresh `<database>_<label>_<name>` per service on the
    TEST_DATABASE_URL server; nothing without one."""
    server = os.environ.get("TEST_DATABASE_URL")
    if not server:
        return {}
    base = make_url(server)
    urls = {}
    for name in services:
        database = f"{base.database or 'flotilla_test'}_{label}_{name}"
        recreate_postgres_database(server, database)
        url = base.set(database=database).render_as_string(hide_password=False)
        urls[f"{name.upper()}_DATABASE_URL"] = url
    return urls


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def new_user(gateway_url: str, prefix: str = "user") -> str:
    """Register a fresh account (the seed's "Create New User" body); return its username."""
    username = f"{prefix}_{uuid.uuid4().hex[:10]}"
    response = requests.post(
        f"{gateway_url}/users/",
        json={
            "username": username,
            "firstName": "Test",
            "lastName": "User",
            "email": f"{username}@example.org",
            "password": PASSWORD,
            "phoneNumber": "+911234567890",
            "collegeName": "Test College 123",
            "profilePicture": "url_to_profile_pic",
        },
        timeout=TIMEOUT,
    )
    assert response.status_code == 201, response.text
    return username


def login(gateway_url: str, username: str, password: str = PASSWORD) -> dict[str, str]:
    """A token pair: {"access", "refresh"}."""
    response = requests.post(
        f"{gateway_url}/auth/token/",
        json={"username": username, "password": password},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


class CallTargets:
    """The one loopback port the stack's scheduled calls may reach (its allow-list names that
    port only); each test installs a recorder of its own behind it."""

    def __init__(self) -> None:
        self.current = TargetServer()

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        return self.current(environ, start_response)


def allowing_calls_to(url: str) -> dict[str, str]:
    """The scheduler's allow-list for a stack whose calls go to `url`'s port only."""
    return {"SCHEDULER_ALLOWED_HOSTS": f"127.0.0.1:{urlsplit(url).port}"}
