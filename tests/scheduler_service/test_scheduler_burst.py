"""Bursts of calls due at one instant: a few go to one destination at first, each answer lets
one more in, and every call still fires once, also when the worker stops meanwhile."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from flask.testing import FlaskClient

from scheduler_service.execution import ClaimedCall
from scheduler_service.outbound import OutboundRequest
from scheduler_service.timestamps import render
from scheduler_service.worker import OPENING_AT_ONCE, FiringWindows
from tests.scheduler_service.scheduler_helpers import TargetServer, WorkerProcess, wait_until

Auth = Callable[..., dict[str, str]]


def claimed(call_id: int, url: str) -> ClaimedCall:
    return ClaimedCall(call_id, 1, 3, datetime.now(UTC), OutboundRequest(call_id, url, "GET"))


def schedule_burst(
    client: FlaskClient, auth: Auth, count: int, url: str, seconds_ahead: float = 2
) -> list[dict[str, Any]]:
    due = render(datetime.now(UTC) + timedelta(seconds=seconds_ahead)) or ""
    body = {"timestamps": ", ".join([due] * count), "url": url}
    response = client.post("/api/schedule-api/", json=body, headers=auth())
    assert response.status_code == 201, response.get_json()
    return list(response.get_json())


def statuses(client: FlaskClient, auth: Auth, calls: list[dict[str, Any]]) -> list[str]:
    return [
        client.get(f"/api/schedule-api/{call['id']}/", headers=auth()).get_json()["status"]
        for call in calls
    ]


def test_a_destination_starts_with_a_few_calls_and_each_answer_lets_one_more_in() -> None:
    started: list[int] = []
    windows = FiringWindows(
        lambda call: started.append(call.id),
        opening_at_once=2,
        per_destination=3,
        ceiling=4,
        max_wait=60,
    )
    one = [claimed(number, "http://one.example/hook") for number in range(1, 7)]
    other = [claimed(number, "https://other.example/") for number in range(7, 9)]

    windows.admit([*one, *other])
    assert started == [1, 2, 7, 8], "two calls per destination at first"

    windows.done(one[0], answered=True)  # room for two: one freed, the limit is 3 now
    assert started[4:] == [3, 4]
    windows.done(one[1], answered=False)  # no answer: the limit stays 3
    assert started[6:] == [5]
    windows.done(one[2], answered=True)  # 3 per destination at most
    assert started[7:] == [6]
    for call in (one[3], one[4], one[5], *other):
        windows.done(call, answered=True)
    assert started == [1, 2, 7, 8, 3, 4, 5, 6]

    windows.admit([claimed(number, "http://one.example/hook") for number in range(9, 13)])
    assert started[8:] == [9, 10], "a drained destination starts small again"


def test_a_destination_where_no_call_ends_may_send_more_each_second() -> None:
    now = [0.0]
    started: list[int] = []
    windows = FiringWindows(
        lambda call: started.append(call.id),
        opening_at_once=1,
        per_destination=1,
        ceiling=3,
        max_wait=60,
        patience=1.0,
        clock=lambda: now[0],
    )
    calls = [claimed(number, "http://silent.example/") for number in range(1, 5)]

    windows.admit(calls)
    now[0] = 0.9
    windows.release_overdue()
    assert started == [1]
    now[0] = 1.0
    windows.release_overdue()
    assert started == [1, 2], "a second without progress: one more may go"
    now[0] = 2.0
    windows.release_overdue()
    assert started == [1, 2, 3], "and another, up to the threads"
    windows.done(calls[0], answered=False)  # progress: back to one at once
    assert started == [1, 2, 3]
    now[0] = 4.0
    windows.release_overdue()
    assert started == [1, 2, 3, 4]


def test_a_call_waits_for_its_destination_no_longer_than_the_most_it_may_wait() -> None:
    now = [0.0]
    started: list[int] = []
    windows = FiringWindows(
        lambda call: started.append(call.id),
        opening_at_once=1,
        per_destination=1,
        ceiling=2,
        max_wait=15,
        patience=100,
        clock=lambda: now[0],
    )
    calls = [claimed(number, "http://slow.example/") for number in range(1, 5)]

    windows.admit(calls)
    now[0] = 10.0
    windows.done(calls[0], answered=True)  # slow answers: one call at a time
    now[0] = 14.9
    windows.release_overdue()
    assert started == [1, 2]
    now[0] = 15.0
    windows.release_overdue()
    assert started == [1, 2, 3], "waited long enough: it goes beside the slow one"
    windows.done(calls[1], answered=True)
    assert started == [1, 2, 3, 4], "as many at once as the threads"


def test_a_burst_to_one_host_fires_each_call_once_a_few_at_a_time_first(
    client: FlaskClient,
    auth: Auth,
    target: tuple[TargetServer, str],
    start_worker: Callable[..., WorkerProcess],
) -> None:
    server, url = target
    server.delay = 0.5  # each answer comes this long after its request
    start_worker()
    count = 3 * OPENING_AT_ONCE
    created = schedule_burst(client, auth, count, f"{url}/burst")

    received = server.wait_for(count, 30)
    assert len(received) == count
    first, later = received[0], received[OPENING_AT_ONCE]
    assert later.at >= first.at + server.delay, "more calls went out before the first answer"
    assert wait_until(lambda: set(statuses(client, auth, created)) == {"Succeeded"}, 20)
    assert server.keys() == {str(call["id"]): 1 for call in created}


def test_a_worker_stopped_during_a_burst_fires_its_waiting_calls_before_it_exits(
    client: FlaskClient,
    auth: Auth,
    target: tuple[TargetServer, str],
    start_worker: Callable[..., WorkerProcess],
) -> None:
    server, url = target
    server.delay = 1.0
    worker = start_worker()
    count = 3 * OPENING_AT_ONCE
    created = schedule_burst(client, auth, count, f"{url}/stopping")

    assert server.wait_for(1, 20), "the burst did not start"
    worker.stop()  # a warm shutdown while most calls wait for their destination's window

    assert worker.process is not None and worker.process.returncode == 0
    assert server.keys() == {str(call["id"]): 1 for call in created}
    assert statuses(client, auth, created) == ["Succeeded"] * count


def test_the_calls_in_flight_to_one_host_never_pass_the_configured_concurrency(
    client: FlaskClient,
    auth: Auth,
    target: tuple[TargetServer, str],
    start_worker: Callable[..., WorkerProcess],
) -> None:
    server, url = target
    server.delay = 0.4
    start_worker(SCHEDULER_HOST_CONCURRENCY="2")
    count = 6
    created = schedule_burst(client, auth, count, f"{url}/two-at-a-time")

    received = server.wait_for(count, 30)
    assert len(received) == count
    # Each request is answered `delay` after it arrived: a third may arrive only once one of
    # the two before it has been answered.
    for index in range(2, count):
        assert received[index].at >= received[index - 2].at + server.delay * 0.9, index
    assert wait_until(lambda: set(statuses(client, auth, created)) == {"Succeeded"}, 20)
