"""`confirm_replicated` against a real master and replica (the replica stopped with SIGSTOP
to hold its acknowledgements back): it covers writes made on other connections, reports a
replica that does not answer in time, and waits for nothing when no replica is asked for."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest
import redis

from servicekit.config import ConfigError
from servicekit.replication import confirm_replicated, replication
from tests.support.replication import asking_for_replicas
from tests.support.sentinel import SentinelGroup, sentinel_group


@pytest.fixture(scope="module")
def group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelGroup]:
    with sentinel_group(tmp_path_factory.mktemp("replication")) as started:
        yield started


@pytest.fixture
def asking(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with asking_for_replicas(monkeypatch, timeout_ms=300):
        yield


def replica_of(group: SentinelGroup) -> int:
    master = group.master_port()
    (replica,) = (port for port in group.servers if port != master)
    return replica


@pytest.mark.usefixtures("asking")
def test_a_write_on_another_connection_counts_only_once_the_replica_has_it(
    group: SentinelGroup,
) -> None:
    writer, confirmer = group.server(group.master_port()), group.server(group.master_port())
    replica = replica_of(group)
    process = group.servers[replica]
    assert confirm_replicated(confirmer, "warm-up")
    os.kill(process.pid, signal.SIGSTOP)
    try:
        writer.set("revoked:jti:x", "1")
        assert not confirm_replicated(confirmer, "a revocation")
    finally:
        os.kill(process.pid, signal.SIGCONT)
    assert confirm_replicated(confirmer, "a revocation")
    assert group.server(replica).get("revoked:jti:x") == b"1"


def test_without_replicas_asked_for_it_issues_no_wait(
    group: SentinelGroup, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REDIS_WAIT_REPLICAS", raising=False)
    replication.cache_clear()
    master = group.server(group.master_port())
    before = master.info("commandstats").get("cmdstat_wait", {}).get("calls", 0)
    assert confirm_replicated(master, "anything")
    assert master.info("commandstats").get("cmdstat_wait", {}).get("calls", 0) == before


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("REDIS_WAIT_REPLICAS", "-1", "REDIS_WAIT_REPLICAS must be at least 0"),
        ("REDIS_WAIT_TIMEOUT_MS", "0", "REDIS_WAIT_TIMEOUT_MS must be at least 1"),
        ("REDIS_WAIT_REPLICAS", "one", "REDIS_WAIT_REPLICAS must be an integer"),
    ],
)
def test_bad_settings_are_refused_naming_them(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    replication.cache_clear()
    try:
        with pytest.raises(ConfigError, match=message):
            confirm_replicated(redis.Redis(), "anything")
    finally:
        replication.cache_clear()
