"""One way to connect: `redis://` as redis-py reads it, `redis+sentinel://` to a client that
follows the master through a real failover (three Sentinels, a master and a replica), for
the threaded services, the gateway's asyncio pool and RQ's own settings."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio
from rq.cli.helpers import get_redis_from_config

from gateway.config import GatewayConfig
from servicekit.config import ConfigError, service_config
from servicekit.redis_connection import (
    SentinelAddress,
    async_redis_from_url,
    parse_sentinel_url,
    redis_from_url,
    rq_settings,
)
from tests.support.sentinel import SentinelGroup, sentinel_group

GRAMMAR = [
    (
        "redis+sentinel://s1:26380,s2,[::1]:26381/flotilla",
        SentinelAddress((("s1", 26380), ("s2", 26379), ("::1", 26381)), "flotilla"),
    ),
    (
        "redis+sentinel://:p%40ss@s1/flotilla/3",
        SentinelAddress((("s1", 26379),), "flotilla", db=3, password="p@ss"),
    ),
    (
        "REDIS+SENTINEL://app:pw@s1:1/main/?sentinel_password=sp&sentinel_username=su",
        SentinelAddress(
            (("s1", 1),),
            "main",
            username="app",
            password="pw",
            sentinel_username="su",
            sentinel_password="sp",
        ),
    ),
]
MALFORMED = [
    ("redis+sentinel://s1:26379", "names the master's service"),
    ("redis+sentinel://s1:26379/", "names the master's service"),
    ("redis+sentinel:///flotilla", "at least one Sentinel"),
    ("redis+sentinel://s1,,s2/flotilla", "at least one Sentinel"),
    ("redis+sentinel://s1:port/flotilla", "host[:port]"),
    ("redis+sentinel://s1:99999/flotilla", "host[:port]"),
    ("redis+sentinel://s1/flotilla/zero", "is a number"),
    ("redis+sentinel://s1/flotilla?socket_timeout=1", "unknown Sentinel URL option"),
    ("redis://s1/flotilla", "starts with redis+sentinel://"),
]


@pytest.mark.parametrize(("url", "expected"), GRAMMAR)
def test_a_sentinel_url_names_its_sentinels_service_database_and_credentials(
    url: str, expected: SentinelAddress
) -> None:
    assert parse_sentinel_url(url) == expected


@pytest.mark.parametrize(("url", "problem"), MALFORMED)
def test_a_malformed_sentinel_url_is_refused_with_what_is_wrong(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        parse_sentinel_url(url)


def test_a_password_is_never_in_the_error() -> None:
    with pytest.raises(ValueError) as refused:
        parse_sentinel_url("redis+sentinel://:hunter2@s1/flotilla/x")
    assert "hunter2" not in str(refused.value)


def test_a_plain_url_is_redis_pys_own(redis_url: str) -> None:
    client = redis_from_url(redis_url, socket_timeout=2)
    assert client.connection_pool.connection_kwargs["socket_timeout"] == 2
    assert client.ping()
    assert rq_settings(redis_url) == {"REDIS_URL": redis_url}


@pytest.fixture
def group(tmp_path: Path) -> Iterator[SentinelGroup]:
    with sentinel_group(tmp_path / "sentinel") as deployment:
        yield deployment


def eventually(attempt: object, timeout: float = 30.0) -> object:
    """The attempt's answer once it stops raising Redis errors (a failover's blip)."""
    assert callable(attempt)
    deadline = time.monotonic() + timeout
    while True:
        try:
            return attempt()
        except redis.RedisError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_the_threaded_client_follows_the_master_through_a_failover(group: SentinelGroup) -> None:
    client = redis_from_url(group.url(2), socket_timeout=2, socket_connect_timeout=2)
    key = f"key-{uuid.uuid4().hex}"
    client.set(key, "before")
    first_master = group.master_port()
    assert group.server(first_master, db=2).get(key) == b"before"  # the URL's database
    assert group.replicate() == 1

    new_master = group.kill_master()

    assert new_master != first_master
    assert eventually(lambda: client.get(key)) == b"before"
    assert eventually(lambda: client.set(key, "after"))
    assert group.server(new_master, db=2).get(key) == b"after"


def test_rqs_own_sentinel_settings_reach_the_master_and_follow_it(group: SentinelGroup) -> None:
    settings = rq_settings(group.url(1))
    assert settings["SENTINEL"]["MASTER_NAME"] == "flotilla"
    connection = get_redis_from_config(settings)  # type: ignore[no-untyped-call]
    connection.set("rq-key", "1")
    assert group.server(group.master_port(), db=1).get("rq-key") == b"1"
    group.replicate()

    new_master = group.kill_master()

    assert eventually(lambda: connection.set("rq-key", "2"))
    assert group.server(new_master, db=1).get("rq-key") == b"2"


def test_the_gateways_pool_is_bounded_waits_in_a_burst_and_follows_a_failover(
    group: SentinelGroup,
) -> None:
    async def scenario() -> None:
        client = async_redis_from_url(
            group.url(), max_connections=4, pool_timeout=5, socket_timeout=2
        )
        # Thirty-two blocking reads of 0.1 s on four connections: each waits its turn.
        burst = [client.blpop([f"empty-{index}"], timeout=0.1) for index in range(32)]
        assert await asyncio.gather(*burst) == [None] * 32
        pool = client.connection_pool
        assert len(pool._available_connections) + len(pool._in_use_connections) <= 4
        await client.set("gateway-key", "before")
        await asyncio.to_thread(group.replicate)

        await asyncio.to_thread(group.kill_master)

        deadline = time.monotonic() + 30
        while True:
            try:
                assert await client.get("gateway-key") == b"before"
                break
            except redis.RedisError:
                assert time.monotonic() < deadline, "the client never reached the new master"
                await asyncio.sleep(0.1)
        assert await client.set("gateway-key", "after")
        await client.aclose()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://cache:6379/0", "must start with one of redis://, redis+sentinel://"),
        ("redis://:s3cret@cache:notaport/0", "is not a valid Redis URL"),
        ("redis+sentinel://:s3cret@sentinel-0:26379", "names the master's service"),
    ],
)
def test_a_malformed_redis_url_stops_every_start_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, url: str, problem: str
) -> None:
    monkeypatch.setenv("REDIS_URL", url)
    for start in (lambda: service_config("activity"), GatewayConfig.from_environment):
        with pytest.raises(ConfigError) as refused:
            start()
        assert str(refused.value).startswith("REDIS_URL ") and problem in str(refused.value)
        assert "s3cret" not in str(refused.value)


@pytest.mark.parametrize(
    "url",
    [
        "redis://cache:6379/0",
        "rediss://cache/1",
        "unix:///run/redis.sock",
        "redis+sentinel://:pw@sentinel-0:26379,sentinel-1/mymaster/2",
    ],
)
def test_well_formed_redis_urls_are_kept(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("REDIS_URL", url)
    assert service_config("activity")["REDIS_URL"] == url
