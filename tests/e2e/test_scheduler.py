"""The scheduler through the gateway with the stack's real RQ worker; the staff page in a real
headless Chromium; and the durability drill (kill -9 the worker, FLUSHALL Redis) on a stack
of its own, with its own Redis server, so the flush touches nobody else."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from devstack.stack import RunningStack
from scheduler_service.timestamps import render
from tests.e2e.e2e_helpers import (
    ADMIN_PASSWORD,
    CallTargets,
    allowing_calls_to,
    bearer,
    e2e_stack,
    login,
    new_user,
)
from tests.scheduler_service.scheduler_helpers import (
    TargetServer,
    WorkerProcess,
    browser,
    wait_until,
)

CALLS = "/api/schedule-api/"


def user_token(gateway_url: str) -> tuple[str, str]:
    """A new user's access token and public id (the owner of the calls they schedule)."""
    username = new_user(gateway_url)
    token = login(gateway_url, username)["access"]
    me = requests.get(f"{gateway_url}/users/{username}", headers=bearer(token), timeout=10)
    return token, str(me.json()["publicId"])


def at(seconds_ahead: float) -> str:
    return render(datetime.now(UTC) + timedelta(seconds=seconds_ahead)) or ""


def schedule(gateway_url: str, token: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    response = requests.post(f"{gateway_url}{CALLS}", json=body, headers=bearer(token), timeout=30)
    assert response.status_code == 201, response.text
    return list(response.json())


def call_status(gateway_url: str, token: str, call_id: int) -> str:
    response = requests.get(f"{gateway_url}{CALLS}{call_id}/", headers=bearer(token), timeout=10)
    assert response.status_code == 200, response.text
    return str(response.json()["status"])


def test_the_documents_request_fires_through_the_gateway_and_the_worker(
    gateway_url: str, target: tuple[TargetServer, str]
) -> None:
    server, url = target
    token, _owner = user_token(gateway_url)
    first, second = at(2), at(2.5)
    created = schedule(gateway_url, token, {"timestamps": f"{first}, {second}", "url": url})
    assert [(call["timestamp"], call["status"]) for call in created] == [
        (first, "Pending"),
        (second, "Pending"),
    ]
    ids = [call["id"] for call in created]
    done = wait_until(
        lambda: all(call_status(gateway_url, token, i) == "Succeeded" for i in ids), 30, 0.2
    )
    assert done, [call_status(gateway_url, token, i) for i in ids]
    assert server.keys() == {str(i): 1 for i in ids}


def test_calls_belong_to_their_owner_and_staff_see_them(
    gateway_url: str, admin_token: str, target: tuple[TargetServer, str]
) -> None:
    owner, _ = user_token(gateway_url)
    other, _ = user_token(gateway_url)
    (call,) = schedule(gateway_url, owner, {"timestamps": at(3600), "url": target[1]})
    path = f"{gateway_url}{CALLS}{call['id']}/"
    assert requests.get(path, headers=bearer(other), timeout=10).status_code == 404
    assert requests.delete(path, headers=bearer(other), timeout=10).status_code == 404
    moved = requests.patch(path, json={"timestamp": at(7200)}, headers=bearer(other), timeout=10)
    assert moved.status_code == 404
    assert requests.get(path, headers=bearer(admin_token), timeout=10).status_code == 200
    assert requests.get(path, timeout=10).status_code == 401


def test_the_staff_pages_data_is_refused_to_others_and_its_shell_is_public(
    gateway_url: str,
) -> None:
    token, _ = user_token(gateway_url)
    data = f"{gateway_url}/admin/schedule-api/api/calls"
    assert requests.get(data, timeout=10).status_code == 401
    refused = requests.get(data, headers=bearer(token), timeout=10)
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    page = requests.get(f"{gateway_url}/admin/schedule-api/", timeout=10)
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    script = requests.get(f"{gateway_url}/admin/schedule-api/assets/admin.js", timeout=10)
    assert script.status_code == 200


def test_a_staff_member_sees_the_calls_and_cancels_one_in_a_browser(
    gateway_url: str, admin_token: str, tmp_path: Path, target: tuple[TargetServer, str]
) -> None:
    token, owner = user_token(gateway_url)
    kept, cancelled = (
        call["id"]
        for call in schedule(
            gateway_url, token, {"timestamps": [at(3600), at(3700)], "url": target[1]}
        )
    )
    with browser(tmp_path / "chromium") as page:
        page.open(f"{gateway_url}/admin/schedule-api/")
        page.wait_for("!document.getElementById('login-view').hidden")
        page.type_into("#username", "admin")
        page.type_into("#password", ADMIN_PASSWORD)
        page.click("#login-button")
        page.wait_for("!document.getElementById('calls-view').hidden")
        page.type_into("#filter-owner", owner)
        page.click("#apply-filters")
        row = "document.querySelector('tr[data-call-id=\"{}\"]')"
        page.wait_for(
            "document.getElementById('summary').textContent === '2 call(s)'"
            f" && {row.format(kept)} && {row.format(cancelled)}"
        )
        assert page.evaluate("document.querySelectorAll('#call-rows tr').length") == 2
        status = row + ".querySelector('.status').textContent"
        assert page.evaluate(status.format(kept)) == "Pending"
        page.evaluate(f"{row.format(cancelled)}.querySelector('button.cancel').click()")
        page.wait_for(f"{status.format(cancelled)} === 'Cancelled'")
        assert page.evaluate(f"{row.format(cancelled)}.querySelector('button.cancel')") is None
        assert page.evaluate(status.format(kept)) == "Pending"
    assert call_status(gateway_url, admin_token, cancelled) == "Cancelled"
    assert call_status(gateway_url, admin_token, kept) == "Pending"


# The durability drill


@dataclass
class DrillStack:
    stack: RunningStack
    redis_url: str
    worker: WorkerProcess

    @property
    def gateway_url(self) -> str:
        return self.stack.url("gateway")


@pytest.fixture
def drill(tmp_path: Path, call_targets: tuple[CallTargets, str]) -> Iterator[DrillStack]:
    """auth, the scheduler and the gateway on free ports with a Redis of their own, and the
    worker as a process the test kills and restarts."""
    processes = ("auth", "scheduler", "gateway")
    allowed = allowing_calls_to(call_targets[1])
    with e2e_stack(tmp_path / "stack", processes, label="drill", settings=allowed) as stack:
        redis_url = stack.environment["REDIS_URL"]
        worker = WorkerProcess(redis_url, stack.env(), stack.var / "worker.log")
        try:
            worker.start()
            yield DrillStack(stack, redis_url, worker)
        finally:
            worker.stop()


def test_durability_drill_kill_the_worker_and_flush_redis_then_every_call_fires_once(
    drill: DrillStack, target: tuple[TargetServer, str]
) -> None:
    server, url = target
    token = login(drill.gateway_url, "admin", ADMIN_PASSWORD)["access"]
    # Half are due within the worker's hand-over lead (it holds them in memory when it
    # dies); half are further out (their jobs wait in RQ's scheduled registry).
    held = [at(7 + index * 0.01) for index in range(50)]
    waiting = [at(11 + index * 0.01) for index in range(50)]
    created = schedule(drill.gateway_url, token, {"timestamps": held, "url": f"{url}/held"})
    created += schedule(drill.gateway_url, token, {"timestamps": waiting, "url": f"{url}/later"})
    ids = [call["id"] for call in created]
    time.sleep(3)  # the first fifty reach the worker, which holds them until their instant

    connection = redis.Redis.from_url(drill.redis_url)
    assert connection.keys("scheduler:hold:*"), "the worker should be holding calls by now"
    drill.worker.kill()
    connection.flushall()
    first_due = min(datetime.fromisoformat(call["timestamp"]) for call in created)
    assert datetime.now(UTC) < first_due, "the drill must strike before any call is due"
    assert server.received == []
    drill.worker.start()

    assert wait_until(lambda: len(server.received) >= 100, 40, 0.1), len(server.received)
    time.sleep(1)  # any duplicate would arrive now
    assert server.keys() == {str(call_id): 1 for call_id in ids}
    succeeded = wait_until(
        lambda: (
            requests.get(
                f"{drill.gateway_url}{CALLS}?status=Succeeded&page_size=1",
                headers=bearer(token),
                timeout=10,
            ).json()["count"]
            == 100
        ),
        20,
        0.2,
    )
    assert succeeded
