"""The cap on a user's unfinished calls: refused whole with a 422 naming it, finished and
cancelled calls freeing room, staff under their own cap, and concurrent requests of one
user never passing it together."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from scheduler_service.models import SUCCEEDED, ScheduledCall, db
from scheduler_service.timestamps import render
from servicekit.settings import SettingsError
from tests.scheduler_service.scheduler_helpers import OTHER, STAFF

URL = "/api/schedule-api/"
Auth = Callable[..., dict[str, str]]
CAP = {"SCHEDULER_MAX_PENDING": 5}


def instants(count: int, hours: float = 1) -> list[str]:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=hours)
    return [render(start + timedelta(seconds=index)) or "" for index in range(count)]


def schedule(client: FlaskClient, headers: dict[str, str], count: int) -> Any:
    return client.post(URL, json={"timestamps": instants(count)}, headers=headers)


def calls_of(app: Flask, owner: str) -> int:
    with app.app_context():
        query = select(func.count()).where(ScheduledCall.owner == owner)
        return int(db.session.scalar(query) or 0)


@pytest.mark.parametrize("app_config", [CAP], indirect=True)
def test_a_request_past_the_cap_is_refused_whole_naming_it(
    app: Flask, client: FlaskClient, auth: Auth
) -> None:
    assert schedule(client, auth(), 3).status_code == 201
    refused = schedule(client, auth(), 3)
    assert refused.status_code == 422
    body = refused.get_json()
    assert body["code"] == "pending_limit" and body["limit"] == 5 and body["pending"] == 3
    assert body["error"].startswith("at most 5 pending calls per user: 3 are pending")
    assert calls_of(app, "owner-0001") == 3
    assert schedule(client, auth(), 2).status_code == 201
    assert schedule(client, auth(), 1).status_code == 422
    # The cap is each user's own.
    assert schedule(client, auth(OTHER), 5).status_code == 201


@pytest.mark.parametrize("app_config", [CAP], indirect=True)
def test_finished_and_cancelled_calls_free_room(
    app: Flask, client: FlaskClient, auth: Auth
) -> None:
    created = schedule(client, auth(), 5).get_json()
    assert schedule(client, auth(), 1).status_code == 422
    cancelled = client.delete(f"{URL}{created[0]['id']}/", headers=auth())
    assert cancelled.status_code == 200
    with app.app_context():
        finished = update(ScheduledCall).where(ScheduledCall.id == created[1]["id"])
        db.session.execute(finished.values(status=SUCCEEDED))
        db.session.commit()
    assert schedule(client, auth(), 2).status_code == 201
    assert schedule(client, auth(), 1).status_code == 422


@pytest.mark.parametrize("app_config", [CAP], indirect=True)
def test_past_timestamps_do_not_count_against_the_cap(client: FlaskClient, auth: Auth) -> None:
    assert schedule(client, auth(), 5).status_code == 201
    past = render(datetime.now(UTC) - timedelta(hours=1))
    ignored = client.post(URL, json={"timestamps": [past]}, headers=auth())
    assert ignored.status_code == 201 and ignored.get_json() == []


@pytest.mark.parametrize(
    ("app_config", "allowed"),
    [(CAP, 8), ({**CAP, "SCHEDULER_STAFF_MAX_PENDING": 7}, 7)],
    indirect=["app_config"],
)
def test_staff_have_their_own_cap_or_none(client: FlaskClient, auth: Auth, allowed: int) -> None:
    staff = auth(STAFF, role="staff")
    assert schedule(client, staff, 7).status_code == 201
    answer = schedule(client, staff, 1)
    assert answer.status_code == (201 if allowed > 7 else 422), answer.get_json()


@pytest.mark.parametrize("app_config", [{"SCHEDULER_MAX_PENDING": 10}], indirect=True)
def test_concurrent_requests_of_one_user_never_pass_the_cap_together(
    app: Flask, auth: Auth
) -> None:
    headers = auth()
    start = threading.Barrier(8)
    statuses: list[int] = []

    def post_three() -> None:
        client = app.test_client()
        start.wait()
        statuses.append(schedule(client, headers, 3).status_code)

    threads = [threading.Thread(target=post_three) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == [201] * 3 + [422] * 5
    assert calls_of(app, "owner-0001") == 9


def test_the_cap_is_checked_at_start(make_app: Callable[..., Flask]) -> None:
    with pytest.raises(SettingsError, match="SCHEDULER_MAX_PENDING: must be at least 1"):
        make_app(SCHEDULER_MAX_PENDING=0)
