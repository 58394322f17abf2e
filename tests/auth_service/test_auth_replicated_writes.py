"""Revocations and published user events wait for the Redis replicas when asked to
(`REDIS_WAIT_REPLICAS`), so a failover cannot lose them: the `WAIT` commands are counted
on a real Redis (with no replica, each times out after the short timeout set here)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient

from servicekit.replication import replication
from tests.auth_service.auth_helpers import bearer
from tests.support.replication import asking_for_replicas


def waits(redis_client: redis.Redis) -> int:
    stats = redis_client.info("commandstats")
    return int(stats.get("cmdstat_wait", {}).get("calls", 0))


@pytest.fixture
def wait_for_one_replica(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with asking_for_replicas(monkeypatch, timeout_ms=20):
        yield


@pytest.mark.usefixtures("wait_for_one_replica")
def test_each_revocation_waits_for_the_replicas_and_warns_when_they_do_not_answer(
    client: FlaskClient,
    register: Callable[..., dict[str, Any]],
    login: Callable[..., dict[str, str]],
    redis_client: redis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    register()
    phone, laptop = login(), login()
    caplog.clear()
    before = waits(redis_client)
    one_device = client.put(
        "/auth/token/", json={"token": phone["refresh"]}, headers=bearer(laptop["access"])
    )
    assert one_device.status_code == 200, one_device.get_json()
    assert waits(redis_client) == before + 1
    everywhere = client.delete("/auth/token/", headers=bearer(laptop["access"]))
    assert everywhere.status_code == 200
    assert waits(redis_client) == before + 2
    warned = [record for record in caplog.records if record.name == "flotilla.redis"]
    assert [getattr(record, "write", None) for record in warned] == [
        "token revocation",
        "revocation of a user's tokens",
    ]


@pytest.mark.usefixtures("wait_for_one_replica")
def test_published_user_events_wait_for_the_replicas(
    register: Callable[..., dict[str, Any]], redis_client: redis.Redis
) -> None:
    before = waits(redis_client)
    register()
    assert waits(redis_client) == before + 1


def test_without_replicas_asked_for_nothing_waits(
    client: FlaskClient,
    register: Callable[..., dict[str, Any]],
    login: Callable[..., dict[str, str]],
    redis_client: redis.Redis,
) -> None:
    replication.cache_clear()
    before = waits(redis_client)
    register()
    pair = login()
    assert client.delete("/auth/token/", headers=bearer(pair["access"])).status_code == 200
    assert waits(redis_client) == before
