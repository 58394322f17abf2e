"""The real suite for end-to-end tests: every service, the gateway and the RQ worker under
their production servers (gunicorn, rq) on free loopback ports, driven with `requests`."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

from devstack.stack import ALL_PROCESSES, RunningStack
from servicekit.testing import serve_wsgi
from tests.e2e.e2e_helpers import ADMIN_PASSWORD, CallTargets, allowing_calls_to, e2e_stack
from tests.scheduler_service.scheduler_helpers import TargetServer


def e2e_redis_url(redis_url: str) -> str:
    """A Redis database of its own: the unit tests flush theirs between tests."""
    parts = urlsplit(redis_url)
    database = int(parts.path.lstrip("/") or 0)
    other = 14 if database == 15 else database + 1
    return urlunsplit(parts._replace(path=f"/{other}"))


@pytest.fixture(scope="session")
def call_targets() -> Iterator[tuple[CallTargets, str]]:
    targets = CallTargets()
    with serve_wsgi(targets) as url:
        yield targets, url


@pytest.fixture
def target(call_targets: tuple[CallTargets, str]) -> tuple[TargetServer, str]:
    """A fresh recorder behind the one port the stacks' scheduled calls may reach."""
    targets, url = call_targets
    targets.current = TargetServer()
    return targets.current, url


@pytest.fixture(scope="session")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    redis_url: str,
    call_targets: tuple[CallTargets, str],
) -> Iterator[RunningStack]:
    var = tmp_path_factory.mktemp("stack")
    with e2e_stack(
        var,
        ALL_PROCESSES,
        label="e2e",
        redis_url=e2e_redis_url(redis_url),
        settings=allowing_calls_to(call_targets[1]),
    ) as suite:
        yield suite


@pytest.fixture(scope="session")
def gateway_url(stack: RunningStack) -> str:
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
