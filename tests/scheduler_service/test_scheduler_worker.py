"""The real RQ worker (the dev stack's command) against a real target server: calls fire at
their instant, exactly once, are retried, recovered and refused as they should be."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from devstack.stack import WORKER_CLASS
from scheduler_service.models import RUNNING, ScheduledCall, db
from scheduler_service.queueing import hand_over
from scheduler_service.timestamps import render
from servicekit.config import REPO_ROOT
from tests.scheduler_service.scheduler_helpers import (
    Auth,
    TargetServer,
    WorkerProcess,
    detail,
    instant,
    loopback_on_port_of,
    schedule,
    wait_for_status,
    wait_until,
)


def test_a_call_fires_at_its_instant_once_with_its_idempotency_key(
    client: FlaskClient,
    auth: Auth,
    target: tuple[TargetServer, str],
    start_worker: Callable[..., WorkerProcess],
    call_log: Path,
) -> None:
    server, url = target
    start_worker()
    due = instant(2)
    (call,) = schedule(
        client,
        auth,
        [due],
        url=f"{url}/hook?x=1",
        method="POST",
        headers={"X-Trace": "abc"},
        body={"hello": "world"},
    )

    done = wait_for_status(client, auth, call["id"], {"Succeeded"})
    (received,) = server.received
    assert received.at >= due.timestamp(), "a call must never fire before its instant"
    assert received.method == "POST"
    assert received.path == "/hook?x=1"
    assert received.headers["Idempotency-Key"] == str(call["id"])
    assert received.headers["X-Trace"] == "abc"
    assert received.headers["Content-Type"] == "application/json"
    assert received.body == b'{"hello":"world"}'
    assert [attempt["status_code"] for attempt in done["history"]] == [200]
    assert done["attempts"] == 1 and done["finished_at"] is not None
    host = url.removeprefix("http://")
    lines = call_log.read_text().splitlines()
    assert lines and lines[-1].endswith(
        f"Successfully called API at {host} for timestamp {call['id']}"
    )


@pytest.mark.parametrize("app_config", [{"SCHEDULER_MAX_ATTEMPTS": 3}], indirect=True)
def test_a_failing_target_is_retried_then_the_call_fails_with_its_history(
    client: FlaskClient,
    auth: Auth,
    target: tuple[TargetServer, str],
    start_worker: Callable[..., WorkerProcess],
    call_log: Path,
) -> None:
    server, url = target
    server.default = (500, [], b"boom")
    start_worker()
    (call,) = schedule(client, auth, [instant(1.5)], url=f"{url}/fail")

    failed = wait_for_status(client, auth, call["id"], {"Failed"}, timeout=30)
    assert [attempt["status_code"] for attempt in failed["history"]] == [500, 500, 500]
    assert [attempt["number"] for attempt in failed["history"]] == [1, 2, 3]
    assert failed["attempts"] == 3 and failed["last_status_code"] == 500
    assert server.keys() == {str(call["id"]): 3}
    starts = [item.at for item in server.received]
    assert all(later > earlier for earlier, later in itertools.pairwise(starts))
    host = url.removeprefix("http://")
    expected = f"Failed to call API at {host} for timestamp {call['id']}, status code: 500"
    lines = call_log.read_text().splitlines()
    assert len(lines) == 3 and all(line.endswith(expected) for line in lines)
    dead_letters = client.get("/api/schedule-api/?status=Failed", headers=auth()).get_json()
    assert [item["id"] for item in dead_letters["results"]] == [call["id"]]


def test_retry_after_is_honoured_and_a_later_attempt_succeeds(
    client: FlaskClient,
    auth: Auth,
    target: tuple[TargetServer, str],
    start_worker: Callable[..., WorkerProcess],
) -> None:
    server, url = target
    server.answers = [(429, [("Retry-After", "2")], b""), (503, [], b"")]
    start_worker()
    (call,) = schedule(client, auth, [instant(1.5)], url=url)

    done = wait_for_status(client, auth, call["id"], {"Succeeded"}, timeout=30)
    assert [attempt["status_code"] for attempt in done["history"]] == [429, 503, 200]
    first, second, _third = (item.at for item in server.received)
    assert second - first >= 2.0, "Retry-After: 2 must be waited"
    assert server.keys() == {str(call["id"]): 3}


# Port 9 (discard) of loopback: nothing listens there.
CLOSED_PORT = {"SCHEDULER_ALLOWED_HOSTS": "127.0.0.1:9"}


@pytest.mark.parametrize(
    "app_config", [{"SCHEDULER_MAX_ATTEMPTS": 2, **CLOSED_PORT}], indirect=True
)
def test_connection_errors_are_retried_and_logged(
    client: FlaskClient,
    auth: Auth,
    start_worker: Callable[..., WorkerProcess],
    call_log: Path,
) -> None:
    start_worker(**CLOSED_PORT)
    closed = "http://127.0.0.1:9/nothing-listens-here"
    (call,) = schedule(client, auth, [instant(1.5)], url=closed)

    failed = wait_for_status(client, auth, call["id"], {"Failed"}, timeout=30)
    assert [attempt["status_code"] for attempt in failed["history"]] == [None, None]
    assert all("connection failed" in attempt["error"] for attempt in failed["history"])
    lines = call_log.read_text().splitlines()
    assert len(lines) == 2
    assert all(
        f"Error calling API at 127.0.0.1:9 for timestamp {call['id']}: connection failed" in line
        for line in lines
    )


def test_the_address_is_checked_again_when_the_call_is_made(
    client: FlaskClient,
    auth: Auth,
    target: tuple[TargetServer, str],
    start_worker: Callable[..., WorkerProcess],
) -> None:
    server, url = target
    port = url.rsplit(":", 1)[1]
    # Scheduled while localhost was allowed; the worker no longer allows it.
    start_worker(SCHEDULER_ALLOWED_HOSTS=f"127.0.0.1:{port}")
    (call,) = schedule(client, auth, [instant(1.5)], url=f"http://localhost:{port}/")

    failed = wait_for_status(client, auth, call["id"], {"Failed"}, timeout=20)
    (attempt,) = failed["history"]
    assert "localhost resolves to 127.0.0.1, a loopback address" in attempt["error"]
    assert server.received == []


def test_a_cancelled_call_never_fires_and_a_moved_one_fires_at_its_new_instant(
    client: FlaskClient,
    auth: Auth,
    target: tuple[TargetServer, str],
    start_worker: Callable[..., WorkerProcess],
) -> None:
    server, url = target
    start_worker()
    # Within the hand-over lead: both are already held by the worker.
    cancelled, moved = schedule(client, auth, [instant(2.5), instant(2.5)], url=url)
    time.sleep(0.8)
    assert client.delete(f"/api/schedule-api/{cancelled['id']}/", headers=auth()).status_code == 200
    new_due = instant(4.5)
    response = client.patch(
        f"/api/schedule-api/{moved['id']}/", json={"timestamp": render(new_due)}, headers=auth()
    )
    assert response.status_code == 200

    wait_for_status(client, auth, moved["id"], {"Succeeded"})
    time.sleep(1)
    assert server.keys() == {str(moved["id"]): 1}
    assert server.received[0].at >= new_due.timestamp()
    assert detail(client, auth, cancelled["id"])["status"] == "Cancelled"


def test_two_workers_never_both_run_a_call(
    client: FlaskClient,
    auth: Auth,
    target: tuple[TargetServer, str],
    start_worker: Callable[..., WorkerProcess],
    redis_client: redis.Redis,
) -> None:
    server, url = target
    start_worker()
    start_worker()
    due = instant(3)
    created = schedule(client, auth, [due] * 40, url=url)
    # The same calls handed to RQ once more: every call reaches the workers twice.
    hand_over(
        redis_client,
        [(call["id"], due) for call in created],
        now=datetime.now(UTC),
        lead=5,
        job_timeout=60,
    )

    assert wait_until(lambda: len(server.received) >= 40, 20)
    time.sleep(1.5)
    assert server.keys() == {str(call["id"]): 1 for call in created}


def test_calls_whose_jobs_redis_lost_are_enqueued_again(
    client: FlaskClient,
    auth: Auth,
    target: tuple[TargetServer, str],
    start_worker: Callable[..., WorkerProcess],
    redis_client: redis.Redis,
) -> None:
    server, url = target
    start_worker()
    created = schedule(client, auth, [instant(4)] * 5, url=url)
    redis_client.flushdb()  # Redis forgets every job (and the worker's holds)

    assert wait_until(lambda: len(server.received) >= 5, 20)
    time.sleep(0.5)
    assert server.keys() == {str(call["id"]): 1 for call in created}


def test_a_call_whose_worker_died_mid_call_is_recovered(
    app: Flask,
    client: FlaskClient,
    auth: Auth,
    target: tuple[TargetServer, str],
    start_worker: Callable[..., WorkerProcess],
    redis_client: redis.Redis,
) -> None:
    server, url = target
    (call,) = schedule(client, auth, [instant(60)], url=url)
    redis_client.flushdb()
    started = datetime.now(UTC) - timedelta(seconds=30)
    with app.app_context():  # as a worker that claimed it and then died would leave it
        db.session.execute(
            update(ScheduledCall)
            .where(ScheduledCall.id == call["id"])
            .values(
                status=RUNNING,
                attempts=1,
                lease_owner="dead-worker",
                started_at=started,
                lease_until=started + timedelta(seconds=5),
                next_attempt_at=started,
            )
        )
        db.session.commit()
    start_worker()

    done = wait_for_status(client, auth, call["id"], {"Succeeded"}, timeout=20)
    assert [attempt["error"] for attempt in done["history"]] == [
        "the worker stopped during the call",
        None,
    ]
    assert [attempt["status_code"] for attempt in done["history"]] == [None, 200]
    assert server.keys() == {str(call["id"]): 1}


def test_a_stopping_worker_hands_its_held_calls_to_another(
    client: FlaskClient,
    auth: Auth,
    target: tuple[TargetServer, str],
    start_worker: Callable[..., WorkerProcess],
) -> None:
    server, url = target
    first = start_worker()
    due = instant(4)
    created = schedule(client, auth, [due] * 3, url=url)
    time.sleep(1)  # the first worker holds them now (they are within the lead)
    first.stop()
    assert server.received == []
    start_worker()

    assert wait_until(lambda: len(server.received) >= 3, 20)
    time.sleep(0.5)
    assert server.keys() == {str(call["id"]): 1 for call in created}
    assert min(item.at for item in server.received) >= due.timestamp()


def test_calls_held_by_a_killed_worker_are_taken_over_soon(
    client: FlaskClient,
    auth: Auth,
    target: tuple[TargetServer, str],
    start_worker: Callable[..., WorkerProcess],
    redis_client: redis.Redis,
) -> None:
    server, url = target
    # Holds outlive their instant by 30 s: only the dead holder's missing alive mark lets
    # another worker take the calls over in time.
    first = start_worker(SCHEDULER_LEASE_GRACE="30")
    due = instant(8)
    created = schedule(client, auth, [due] * 3, url=url)
    assert wait_until(lambda: len(redis_client.keys("scheduler:hold:*")) == 3, 5)
    first.kill()
    # Killed while holding, not yet claiming: a claimed call waits out its 35 s lease.
    assert datetime.now(UTC) < due - timedelta(seconds=1), "the kill came too late to test"
    start_worker(SCHEDULER_LEASE_GRACE="30")

    assert wait_until(lambda: len(server.received) >= 3, 25)
    time.sleep(0.5)
    assert server.keys() == {str(call["id"]): 1 for call in created}
    assert max(item.at for item in server.received) < due.timestamp() + 10


def test_a_stock_rq_worker_runs_the_job_itself_at_its_instant(
    app: Flask,
    client: FlaskClient,
    auth: Auth,
    target: tuple[TargetServer, str],
    redis_url: str,
    tmp_path: Path,
) -> None:
    server, url = target
    due = instant(2)
    (call,) = schedule(client, auth, [due], url=url)
    stock = WorkerProcess(
        redis_url,
        {
            "SCHEDULER_DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
            "SCHEDULER_CALL_LOG": str(tmp_path / "logs" / "api_calls.log"),
            "SCHEDULER_ALLOWED_HOSTS": loopback_on_port_of(url),
            "LOG_LEVEL": "WARNING",
        },
        tmp_path / "stock-worker.log",
    )
    command = [part for part in stock.command if part not in ("--worker-class", WORKER_CLASS)]
    finished = subprocess.run(
        [*command, "--burst"], cwd=REPO_ROOT, env=stock.environment, timeout=60, check=False
    )
    assert finished.returncode == 0

    (received,) = server.received
    assert received.at >= due.timestamp()
    assert detail(client, auth, call["id"])["status"] == "Succeeded"


def test_rqs_scheduler_process_is_started_again_soon_after_it_dies(
    client: FlaskClient,
    auth: Auth,
    target: tuple[TargetServer, str],
    start_worker: Callable[..., WorkerProcess],
) -> None:
    server, url = target
    process = start_worker().process
    assert process is not None
    assert wait_until(lambda: bool(children_of(process.pid)), 10), "no RQ scheduler"
    (scheduler_pid,) = children_of(process.pid)
    os.kill(scheduler_pid, signal.SIGKILL)  # as it exits on a Redis error (a failover)
    # Beyond the hand-over lead: the job waits in RQ's scheduled registry, which only
    # RQ's scheduler process moves on. An idle worker would restart it only after its
    # blocking dequeue (minutes).
    due = instant(14)
    (call,) = schedule(client, auth, [due], url=url)

    assert server.wait_for(1, 30), "the call waited for a scheduler that was never restarted"
    assert server.received[0].at < due.timestamp() + 5
    assert server.keys() == {str(call["id"]): 1}


def children_of(pid: int) -> list[int]:
    listed = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    return [int(line) for line in listed.stdout.split()]
