"""Redis failover under traffic: auth, the scheduler, the gateway and the scheduler's real RQ
worker on `redis+sentinel://` (a master, a replica, three Sentinels, all real servers); the
master is killed (-9) while clients read through the gateway and calls wait to fire.

Shown: after a bounded blip every request succeeds again (during it the gateway refuses
authenticated requests with 503, never lets one through unchecked, never answers 500); every
call due across the failover fires exactly once (one request per Idempotency-Key); and a
token revoked before the failover stays refused (auth answers a sign-out once a replica holds
its mark: REDIS_WAIT_REPLICAS)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from devstack.stack import RunningStack
from tests.e2e.e2e_helpers import (
    ADMIN_PASSWORD,
    CallTargets,
    allowing_calls_to,
    bearer,
    e2e_stack,
    login,
    new_user,
)
from tests.e2e.test_scheduler import CALLS, at, schedule
from tests.scheduler_service.scheduler_helpers import TargetServer, wait_until
from tests.support.sentinel import SentinelGroup, sentinel_group

PROCESSES = ("auth", "scheduler", "gateway", "worker")
REVOKED = {"error": "token revoked", "code": "unauthorized"}
# What the gateway may answer while no master is reachable: it fails closed.
BLIP = 503


@dataclass
class FailoverStack:
    group: SentinelGroup
    stack: RunningStack

    @property
    def gateway_url(self) -> str:
        return self.stack.url("gateway")


@pytest.fixture
def failover(tmp_path: Path, call_targets: tuple[CallTargets, str]) -> Iterator[FailoverStack]:
    with (
        sentinel_group(tmp_path / "redis") as group,
        e2e_stack(
            tmp_path / "stack",
            PROCESSES,
            label="failover",
            redis_url=group.url(),
            # Sign-outs answer once a replica holds their marks.
            settings={**allowing_calls_to(call_targets[1]), "REDIS_WAIT_REPLICAS": "1"},
        ) as stack,
    ):
        yield FailoverStack(group, stack)


@dataclass
class Traffic:
    """Clients reading through the gateway in a loop: one with a live token, one with a
    revoked one; every answer's status is kept in order."""

    gateway_url: str
    username: str
    live: str
    revoked: str
    answers: dict[str, list[tuple[float, int]]] = field(
        default_factory=lambda: {"live": [], "revoked": []}
    )
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            for label, token in (("live", self.live), ("revoked", self.revoked)):
                response = requests.get(
                    f"{self.gateway_url}/users/{self.username}", headers=bearer(token), timeout=15
                )
                self.answers[label].append((time.monotonic(), response.status_code))
            time.sleep(0.05)

    def statuses(self, label: str) -> list[int]:
        return [status for _at, status in list(self.answers[label])]

    def report(self, killed_at: float, promoted_at: float) -> str:
        """The figures of the blip: how long, how many refusals."""
        live = list(self.answers["live"])
        refused = [at for at, status in live if status == BLIP]
        back = next((at for at, status in live if at > killed_at and status == 200), None)
        blip = f"{back - killed_at:.2f} s" if back is not None else "never"
        return (
            f"new master named after {promoted_at - killed_at:.2f} s; first 200 after the kill"
            f" at {blip}; {len(refused)} of {len(live)} reads answered {BLIP}"
        )


def sign_out_one_device(gateway_url: str, refresh: str, access: str) -> None:
    response = requests.put(
        f"{gateway_url}/auth/token/", json={"token": refresh}, headers=bearer(access), timeout=10
    )
    assert response.json() == {"tokens_deleted": 1}, response.text


def test_the_suite_rides_out_a_master_crash(
    failover: FailoverStack, target: tuple[TargetServer, str]
) -> None:
    server, url = target
    gateway = failover.gateway_url
    admin = login(gateway, "admin", ADMIN_PASSWORD)["access"]
    # Due across the failover, within the hand-over lead (10 s): the worker holds them.
    timestamps = [at(4 + index * 0.2) for index in range(30)]
    ids = [call["id"] for call in schedule(gateway, admin, {"timestamps": timestamps, "url": url})]
    username = new_user(gateway, "failover")
    phone, laptop = login(gateway, username), login(gateway, username)
    sign_out_one_device(gateway, phone["refresh"], laptop["access"])
    traffic = Traffic(gateway, username, laptop["access"], phone["access"])
    reader = threading.Thread(target=traffic.run, daemon=True)
    reader.start()
    try:
        time.sleep(1)
        killed_at = time.monotonic()
        failover.group.kill_master()
        promoted_at = time.monotonic()
        assert wait_until(lambda: traffic.statuses("live")[-3:] == [200] * 3, 30, 0.1)
        later = schedule(gateway, admin, {"timestamps": [at(2)] * 5, "url": url})
        ids += [call["id"] for call in later]
        assert wait_until(lambda: len(server.received) >= len(ids), 30, 0.1), server.keys()
        time.sleep(1)  # any duplicate would arrive now
    finally:
        traffic.stop.set()
        reader.join(timeout=20)

    assert server.keys() == {str(call_id): 1 for call_id in ids}
    live, revoked = traffic.statuses("live"), traffic.statuses("revoked")
    assert set(live) <= {200, BLIP}, live
    assert set(revoked) <= {401, BLIP}, revoked  # never let through, even unchecked
    print(traffic.report(killed_at, promoted_at))
    refused = requests.get(
        f"{gateway}/users/{username}", headers=bearer(phone["access"]), timeout=10
    )
    assert (refused.status_code, refused.json()) == (401, REVOKED)
    assert failover.stack.processes["worker"].poll() is None, "the worker rode it out"
    succeeded = requests.get(
        f"{gateway}{CALLS}?status=Succeeded&page_size=1", headers=bearer(admin), timeout=10
    )
    assert succeeded.json()["count"] == len(ids)
