"""Fixtures for scheduler_service's tests: the service under test (servicekit.testing
builds its app on a fresh database), a clean Redis, a recording target server on
loopback, tokens, and the real RQ worker as a process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask

import scheduler_service
from servicekit.testing import ServiceUnderTest, TestKeys, serve_wsgi
from tests.scheduler_service.scheduler_helpers import (
    TargetServer,
    WorkerProcess,
    loopback_on_port_of,
)

OWNER = "owner-0001"


@pytest.fixture
def call_log(tmp_path: Path) -> Path:
    return tmp_path / "logs" / "api_calls.log"


@pytest.fixture
def target() -> Iterator[tuple[TargetServer, str]]:
    """A recording HTTP server on loopback: (the recorder, its base URL)."""
    server = TargetServer()
    with serve_wsgi(server) as url:
        yield server, url


@pytest.fixture
def service_under_test(
    redis_client: redis.Redis, call_log: Path, target: tuple[TargetServer, str]
) -> ServiceUnderTest:
    """The scheduler, calling loopback servers and logging to this test's file; every
    app of a test starts on a flushed Redis (`redis_client` empties it)."""
    return ServiceUnderTest(
        "scheduler",
        scheduler_service.create_app,
        {
            "SCHEDULER_ALLOWED_HOSTS": loopback_on_port_of(target[1]),
            "SCHEDULER_DEFAULT_URL": f"{target[1]}/default",
            "SCHEDULER_CALL_LOG": str(call_log),
        },
    )


@pytest.fixture
def auth(test_keys: TestKeys) -> Callable[..., dict[str, str]]:
    """`auth()` -> headers of the owner; `auth(OTHER)`; `auth(STAFF, role="staff")`."""

    def headers(sub: str = OWNER, role: str = "normal") -> dict[str, str]:
        token = test_keys.token(sub=sub, username=sub, role=role)
        return {"Authorization": f"Bearer {token}"}

    return headers


@pytest.fixture
def start_worker(
    app: Flask,
    redis_url: str,
    call_log: Path,
    tmp_path: Path,
    target: tuple[TargetServer, str],
) -> Iterator[Callable[..., WorkerProcess]]:
    """Start the real worker (the dev stack's command) on this test's database and Redis."""
    started: list[WorkerProcess] = []

    def start(**environment: str) -> WorkerProcess:
        settings = {
            "SCHEDULER_DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
            "SCHEDULER_ALLOWED_HOSTS": loopback_on_port_of(target[1]),
            "SCHEDULER_CALL_LOG": str(call_log),
            "SCHEDULER_RETRY_BASE": "0.2",
            "SCHEDULER_RETRY_MAX": "1",
            "SCHEDULER_RECONCILE_INTERVAL": "1",
            "SCHEDULER_LEASE_GRACE": "2",
            "SCHEDULER_TIMEOUT": "5",
            "LOG_LEVEL": "WARNING",
            **environment,
        }
        log_path = tmp_path / f"worker-{len(started)}.log"
        worker = WorkerProcess(redis_url, settings, log_path)
        started.append(worker)
        return worker.start()

    yield start
    for worker in started:
        worker.stop()
