"""A Redis Sentinel deployment on loopback for the tests: a master, a replica and three
Sentinels (quorum 2), each a real redis-server process (`redis-server <conf> --sentinel`
for the Sentinels) in a folder of its own."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis

from devstack.redis_server import free_port, redis_server_binary, start_redis, stop_redis

SERVICE = "flotilla"
HOST = "127.0.0.1"
SENTINELS = 3
QUORUM = 2
# How long a master may be silent before a Sentinel calls it down: short, for the tests.
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 10_000
READY_TIMEOUT = 30.0


@dataclass
class SentinelGroup:
    """The processes of one deployment; the master is whichever server the Sentinels name."""

    directory: Path
    servers: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    sentinels: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    def url(self, db: int = 0) -> str:
        hosts = ",".join(f"{HOST}:{port}" for port in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}/{db}"

    def sentinel(self, port: int) -> redis.Redis:
        return redis.Redis(HOST, port, socket_timeout=2, decode_responses=True)

    def master_port(self) -> int:
        """The master's port, as the first Sentinel that answers names it."""
        for port in self.sentinels:
            named = self._named_master(port)
            if named is not None:
                return named
        raise RuntimeError("no Sentinel answers")

    def server(self, port: int, db: int = 0) -> redis.Redis:
        return redis.Redis(HOST, port, db=db, socket_timeout=5)

    def replicate(self) -> int:
        """Every write made so far is on the replicas (the master's WAIT): how many acked."""
        master = self.server(self.master_port())
        master.set("sentinel-group:fence", time.time())
        return int(master.wait(len(self.servers) - 1, 5000))

    def kill_master(self) -> int:
        """kill -9 of the master (a crash: nothing it has not replicated survives); returns
        the port of the server that took over, once every Sentinel names it and it
        answers as a master."""
        old = self.master_port()
        self.servers[old].kill()
        self.servers[old].wait(timeout=10)
        return self.wait_for_new_master(old)

    def wait_for_new_master(self, old: int, timeout: float = READY_TIMEOUT) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            named = {self._named_master(port) for port in self.sentinels}
            new = named.pop() if len(named) == 1 else None
            if new is not None and new != old and self._role(new) == "master":
                return new
            time.sleep(0.1)
        raise RuntimeError(f"no new master within {timeout:.0f} s: see {self.directory}")

    def _named_master(self, sentinel_port: int) -> int | None:
        try:
            address = self.sentinel(sentinel_port).sentinel_get_master_addr_by_name(SERVICE)
        except redis.RedisError:
            return None
        return int(address[1]) if isinstance(address, tuple) else None

    def _role(self, port: int) -> str | None:
        try:
            return str(self.server(port).role()[0].decode())
        except redis.RedisError:
            return None


@contextmanager
def sentinel_group(directory: Path) -> Iterator[SentinelGroup]:
    """A master, one replica of it, and three Sentinels watching it, all answering; every
    process is stopped when the block ends."""
    group = SentinelGroup(directory)
    try:
        master, master_url = start_redis(directory / "master")
        master_port = _port(master_url)
        group.servers[master_port] = master
        replica_port = free_port()
        group.servers[replica_port] = _start_replica(
            directory / "replica", replica_port, master_port
        )
        _wait_for_link(group.server(replica_port))
        for index in range(SENTINELS):
            port = free_port()
            group.sentinels[port] = _start_sentinel(
                directory / f"sentinel{index}", port, master_port
            )
        _wait_for_sentinels(group, master_port)
        yield group
    finally:
        for process in [*group.sentinels.values(), *group.servers.values()]:
            if process.poll() is None:
                stop_redis(process)


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/", 1)[0])


def _start_replica(directory: Path, port: int, master_port: int) -> subprocess.Popen[bytes]:
    directory.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [
            redis_server_binary(),
            "--port", str(port),
            "--bind", HOST,
            "--save", "",
            "--appendonly", "no",
            "--dir", str(directory),
            "--logfile", str(directory / "redis.log"),
            "--replicaof", HOST, str(master_port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _start_sentinel(directory: Path, port: int, master_port: int) -> subprocess.Popen[bytes]:
    """A Sentinel rewrites its configuration file as it learns: each gets one of its own."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "sentinel.conf"
    config.write_text(
        "\n".join(
            [
                f"port {port}",
                f"bind {HOST}",
                f"dir {directory}",
                f"logfile {directory / 'sentinel.log'}",
                f"sentinel monitor {SERVICE} {HOST} {master_port} {QUORUM}",
                f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}",
                f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}",
                f"sentinel parallel-syncs {SERVICE} 1",
                "",
            ]
        )
    )
    return subprocess.Popen(
        [redis_server_binary(), str(config), "--sentinel"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_for_link(replica: redis.Redis) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        try:
            if replica.info("replication").get("master_link_status") == "up":
                return
        except redis.ConnectionError:
            pass
        time.sleep(0.05)
    raise RuntimeError("the replica did not reach its master")


def _wait_for_sentinels(group: SentinelGroup, master_port: int) -> None:
    """Until each Sentinel knows the master, its replica and the other Sentinels: a
    failover needs all three."""
    deadline = time.monotonic() + READY_TIMEOUT
    for port in group.sentinels:
        while not _sentinel_ready(group.sentinel(port), master_port):
            if group.sentinels[port].poll() is not None:
                raise RuntimeError(f"a Sentinel exited: see {group.directory}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Sentinels did not meet: see {group.directory}")
            time.sleep(0.1)


def _sentinel_ready(sentinel: redis.Redis, master_port: int) -> bool:
    try:
        state = sentinel.sentinel_master(SERVICE)
    except redis.RedisError:
        return False
    assert isinstance(state, dict)
    return (
        int(state["port"]) == master_port
        and int(state["num-slaves"]) >= 1
        and int(state["num-other-sentinels"]) >= SENTINELS - 1
    )
