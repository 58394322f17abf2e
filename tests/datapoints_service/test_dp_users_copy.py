"""The users copy filled from auth_service's directory listing (a real auth_service on
loopback): when it is empty as the consumer starts, and by an operator's command; then
the lifecycle stream (real Redis) takes over without taking anyone back in time. Users
are written only in auth_service: a POST reaches this service, which says so."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from auth_service import service as auth_users
from auth_service.context import auth_context
from datapoints_service.cli import backfill_when_empty
from datapoints_service.lifecycle import backfill_users, copy_is_empty
from datapoints_service.models import User, db
from devstack.redis_server import free_port
from gateway.routes import ROUTES
from gateway.routing import RouteTable
from servicekit.testing import TestKeys, serve_wsgi
from servicekit.users import DirectoryUnavailable, UserDirectory
from tests.datapoints_service.dp_helpers import add_person, listing
from tests.datapoints_service.test_dp_lifecycle import SERVICE_SECRET, Auth, consume, replay
from tests.real_auth import auth_app

UserRow = tuple[str, str, str, str | None, bool, bool, bool]


@pytest.fixture
def auth(
    service_app: Callable[..., Flask],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    redis_client: redis.Redis,
) -> Iterator[Auth]:
    closed_port = f"http://127.0.0.1:{free_port()}"
    app = auth_app(
        service_app, tmp_path, monkeypatch, service_secret=SERVICE_SECRET, media_url=closed_port
    )
    with serve_wsgi(app) as url:
        yield Auth(app, url)


@pytest.fixture
def app(make_app: Callable[..., Flask], auth: Auth) -> Flask:
    return make_app(AUTH_SERVICE_URL=auth.url, SERVICE_SECRET=SERVICE_SECRET)


def add_staff(auth: Auth, username: str) -> str:
    with auth.app.app_context():
        user = auth_users.create_user(
            auth_context(auth.app), username=username, password=None, role="staff", email=None
        )
        return str(user.public_id)


def directory(auth: Auth) -> UserDirectory:
    return UserDirectory.for_service("datapoints", SERVICE_SECRET, auth_url=auth.url)


def rows(app: Flask) -> dict[str, UserRow]:
    """The copy, by publicId: (username, first, last, email, active, staff, superuser)."""
    with app.app_context():
        users = db.session.scalars(db.select(User).order_by(User.id)).all()
        return {
            user.public_id: (
                user.username,
                user.first_name,
                user.last_name,
                user.email,
                user.is_active,
                user.is_staff,
                user.is_superuser,
            )
            for user in users
        }


def ids(app: Flask) -> dict[str, int]:
    with app.app_context():
        return {
            public_id: user_id
            for public_id, user_id in db.session.execute(db.select(User.public_id, User.id))
        }


def fill(app: Flask, stop: threading.Event | None = None) -> bool:
    with app.app_context():
        return backfill_when_empty(app, stop or threading.Event())


class StopOnWait(threading.Event):
    """Set as soon as the backfill pauses before another attempt."""

    def wait(self, timeout: float | None = None) -> bool:
        self.set()
        return True


def test_an_empty_copy_is_filled_from_the_directory_in_pages(app: Flask, auth: Auth) -> None:
    alice = auth.add("alice", first_name="Alice", last_name="Liddell")
    boss = add_staff(auth, "boss")
    others = [auth.add(f"user_{n}") for n in range(3)]
    auth.disable("user_1")

    with app.app_context():
        written = backfill_users(db.session(), directory(auth), page_size=2)

    assert written == 5
    copy = rows(app)
    assert set(copy) == {alice, boss, *others}
    assert copy[alice] == ("alice", "Alice", "Liddell", "alice@example.org", True, False, False)
    assert copy[boss] == ("boss", "", "", None, True, True, False)
    assert copy[others[1]][4] is False


def test_the_backfill_copies_join_and_last_login_times(
    client: FlaskClient, app: Flask, auth: Auth, test_keys: TestKeys
) -> None:
    joined = datetime(2024, 9, 1, 12, 0, tzinfo=UTC)
    signed_in = datetime(2026, 1, 15, 7, 45, 30, tzinfo=UTC)
    auth.add("alice")
    auth.add("bob")
    auth.stamp("alice", date_joined=joined, last_login=signed_in)

    with app.app_context():
        backfill_users(db.session(), directory(auth))

    staff = add_person(app, test_keys, "staff", role="staff")
    objects = listing(client, staff.headers, "user", username__in="alice,bob")["objects"]
    by_name = {user["username"]: user for user in objects}
    assert datetime.fromisoformat(by_name["alice"]["date_joined"]) == joined
    assert datetime.fromisoformat(by_name["alice"]["last_login"]) == signed_in
    assert by_name["bob"]["last_login"] is None


def test_the_consumer_backfills_an_empty_copy_then_the_stream_applies_in_order(
    client: FlaskClient, app: Flask, auth: Auth, redis_client: redis.Redis, test_keys: TestKeys
) -> None:
    dave = auth.add("dave")
    erin = auth.add("erin")
    auth.publish()  # their user.created events: older than the backfill

    assert fill(app) is True
    backfilled = ids(app)
    assert set(backfilled) == {dave, erin}
    # Changes made while (or after) the listing was read reach the stream after it.
    auth.rename("dave", "david")
    auth.delete("erin")
    auth.publish()
    consume(app, redis_client)

    assert {public_id: row[0] for public_id, row in rows(app).items()} == {dave: "david"}
    assert ids(app) == {dave: backfilled[dave]}  # the id this service gave stays the user's
    replay(app, redis_client)  # every event again, the oldest first: the same end
    assert {public_id: row[0] for public_id, row in rows(app).items()} == {dave: "david"}
    staff = add_person(app, test_keys, "staff", role="staff")
    (david,) = listing(client, staff.headers, "user", username="david")["objects"]
    assert david["id"] == backfilled[dave]
    assert "password" not in david


def test_a_copy_that_holds_users_is_not_backfilled_at_start(
    app: Flask, auth: Auth, test_keys: TestKeys
) -> None:
    auth.add("frank")
    add_person(app, test_keys, "writer")  # a caller known from their token

    assert fill(app) is True

    assert [row[0] for row in rows(app).values()] == ["writer"]


def test_the_backfill_is_idempotent(app: Flask, auth: Auth) -> None:
    for n in range(3):
        auth.add(f"user_{n}")
    with app.app_context():
        backfill_users(db.session(), directory(auth))
    first, first_ids = rows(app), ids(app)

    with app.app_context():
        assert backfill_users(db.session(), directory(auth)) == 3

    assert rows(app) == first
    assert ids(app) == first_ids


def test_a_stale_row_holding_a_listed_username_is_set_aside(
    app: Flask, auth: Auth, test_keys: TestKeys
) -> None:
    stale = add_person(app, test_keys, "gina")  # a gina since deleted, her event not come
    gina = auth.add("gina")

    with app.app_context():
        backfill_users(db.session(), directory(auth))

    copy = rows(app)
    assert copy[gina][0] == "gina"
    assert copy[stale.public_id][0] == "~" + stale.public_id


def test_users_swapping_names_are_copied_in_one_page(
    app: Flask, auth: Auth, test_keys: TestKeys
) -> None:
    harry = auth.add("harry")
    ivy = auth.add("ivy")
    with app.app_context():
        backfill_users(db.session(), directory(auth))
    auth.rename("harry", "tmp")
    auth.rename("ivy", "harry")
    auth.rename("tmp", "ivy")

    with app.app_context():
        backfill_users(db.session(), directory(auth))

    copy = rows(app)
    assert (copy[harry][0], copy[ivy][0]) == ("ivy", "harry")


def test_a_backfill_without_the_directory_writes_nothing_and_is_retried(
    make_app: Callable[..., Flask], auth: Auth
) -> None:
    auth.add("jack")
    closed = make_app(
        AUTH_SERVICE_URL=f"http://127.0.0.1:{free_port()}", SERVICE_SECRET=SERVICE_SECRET
    )
    with closed.app_context():
        unreachable = UserDirectory.for_service(
            "datapoints", SERVICE_SECRET, auth_url=closed.config["AUTH_SERVICE_URL"]
        )
        with pytest.raises(DirectoryUnavailable):
            backfill_users(db.session(), unreachable)
        assert copy_is_empty(db.session())

    stop = StopOnWait()
    assert fill(closed, stop) is False  # one attempt, a pause, then stopped
    assert stop.is_set()
    with closed.app_context():
        assert copy_is_empty(db.session())


def test_without_a_service_secret_the_consumer_starts_without_a_backfill(
    make_app: Callable[..., Flask],
) -> None:
    bare = make_app(SERVICE_SECRET="")

    assert fill(bare) is True
    with bare.app_context():
        assert copy_is_empty(db.session())


def test_operators_backfill_with_a_command(app: Flask, auth: Auth) -> None:
    kate = auth.add("kate")

    result = app.test_cli_runner().invoke(args=["backfill-users"])

    assert result.exit_code == 0, result.output
    assert "1 users written" in result.output
    assert rows(app)[kate][0] == "kate"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"SERVICE_SECRET": ""}, "SERVICE_SECRET is not set"),
        ({"SERVICE_SECRET": SERVICE_SECRET, "AUTH_SERVICE_URL": "closed"}, "unavailable"),
    ],
)
def test_the_command_fails_clearly(
    make_app: Callable[..., Flask], settings: dict[str, Any], message: str
) -> None:
    if settings.get("AUTH_SERVICE_URL") == "closed":
        settings = {**settings, "AUTH_SERVICE_URL": f"http://127.0.0.1:{free_port()}"}
    result = make_app(**settings).test_cli_runner().invoke(args=["backfill-users"])

    assert result.exit_code == 1
    assert message in result.output


# Writing users: auth_service's


@pytest.mark.parametrize("path", ["/api/v2/user", "/api/v2/user/"])
def test_the_gateway_takes_a_post_to_users_to_the_service_which_points_to_auth_service(
    client: FlaskClient, app: Flask, test_keys: TestKeys, path: str
) -> None:
    match, _allowed = RouteTable(ROUTES).match("POST", path)
    assert match is not None and match.route.upstream == "datapoints"
    caller = add_person(app, test_keys, "caller")

    response = client.post(path, json={"username": "new"}, headers=caller.headers)

    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD"
    assert "POST /users/" in response.get_json()["error"]
    with app.app_context():
        assert db.session.scalar(db.select(User.id).where(User.username == "new")) is None
