"""The user lifecycle stream: every user change publishes its event through the outbox."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from auth_service import service
from auth_service.context import auth_context
from auth_service.models import db
from auth_service.outbox import (
    BATCH_SIZE,
    OutboxEvent,
    directory_snapshot,
    publish_now,
    record_updated,
)
from auth_service.settings import MIN_RETENTION
from devstack.redis_server import start_redis, stop_redis
from servicekit import Identity
from servicekit.config import REPO_ROOT
from servicekit.settings import SettingsError
from servicekit.users import DEFAULT_USER_STREAM, UserEvent
from tests.auth_service.auth_helpers import PASSWORD, bearer, wait_for

STREAM = DEFAULT_USER_STREAM
ADMIN_PASSWORD = "admin password 1"

AddUser = Callable[..., str]


def published(client: redis.Redis, username: str | None = None) -> list[UserEvent]:
    """The events on the stream (of one username, old or new, when given), oldest first."""
    events = [
        UserEvent.from_fields({k.decode(): v.decode() for k, v in fields.items()})
        for _id, fields in client.xrange(STREAM)
    ]
    if username is None:
        return events
    return [e for e in events if username in (e.username, e.previous_username)]


def kinds(events: list[UserEvent]) -> list[str]:
    return [event.type for event in events]


def outbox_size(app: Flask) -> int:
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(OutboxEvent)) or 0)


@pytest.fixture
def superuser(staff_token: Callable[..., str]) -> dict[str, str]:
    return bearer(staff_token(role="superuser"))


# Where users change


def test_a_registration_publishes_user_created(
    app: Flask, register: Callable[..., dict[str, Any]], redis_client: redis.Redis
) -> None:
    user = register()

    (event,) = published(redis_client)
    assert event.type == "user.created"
    assert (event.public_id, event.username) == (user["publicId"], "test_user_001")
    assert len(event.event_id) == 32
    assert event.occurred_at.utcoffset() is not None
    assert outbox_size(app) == 0  # published at once, not left for the relay


def test_the_image_api_registration_publishes_user_created(
    client: FlaskClient, redis_client: redis.Redis
) -> None:
    response = client.post("/register/", json={"username": "imager", "password": PASSWORD})

    assert response.status_code == 201
    assert kinds(published(redis_client, "imager")) == ["user.created"]


def test_the_admin_commands_publish_user_created(app: Flask, redis_client: redis.Redis) -> None:
    runner = app.test_cli_runner()
    env = {"ADMIN_PASSWORD": ADMIN_PASSWORD}

    assert runner.invoke(args=["create-admin"], env=env).exit_code == 0
    assert runner.invoke(args=["create-admin"], env=env).exit_code == 0  # exists: no event
    created = runner.invoke(
        args=["create-superuser", "--username", "root2", "--password", ADMIN_PASSWORD]
    )

    assert created.exit_code == 0, created.output
    assert [(e.type, e.username) for e in published(redis_client)] == [
        ("user.created", "admin"),
        ("user.created", "root2"),
    ]


def test_a_refused_registration_publishes_nothing(
    app: Flask,
    client: FlaskClient,
    register: Callable[..., dict[str, Any]],
    registration: Callable[..., dict[str, Any]],
    redis_client: redis.Redis,
) -> None:
    register()

    taken = client.post("/users/", json=registration())
    invalid = client.post("/users/", json=registration(username="x y"))

    assert (taken.status_code, invalid.status_code) == (422, 400)
    assert kinds(published(redis_client)) == ["user.created"]
    assert outbox_size(app) == 0


def test_a_profile_change_publishes_the_fields_it_changed(
    client: FlaskClient, add_user: AddUser, token_for: Any, redis_client: redis.Redis
) -> None:
    add_user("alice", college_name="College A")
    headers = bearer(token_for("alice"))

    changed = client.put(
        "/users/alice", json={"collegeName": "College B", "lastName": "L"}, headers=headers
    )
    same = client.put("/users/alice", json={"collegeName": "College B"}, headers=headers)
    phone = client.put("/users/alice", json={"phoneNumber": "+911234567890"}, headers=headers)

    assert [changed.status_code, same.status_code, phone.status_code] == [200, 200, 200]
    events = published(redis_client, "alice")
    assert kinds(events) == ["user.created", "user.updated"]
    assert events[1].changed == {"collegeName", "lastName"}
    assert events[1].previous_username is None


def test_a_rename_names_the_previous_username(
    client: FlaskClient, add_user: AddUser, token_for: Any, redis_client: redis.Redis
) -> None:
    public_id = add_user("alice")

    response = client.put(
        "/users/alice", json={"username": "alicia"}, headers=bearer(token_for("alice"))
    )

    assert response.status_code == 200
    event = published(redis_client, "alicia")[-1]
    assert (event.type, event.public_id, event.username) == ("user.updated", public_id, "alicia")
    assert (event.changed, event.previous_username) == ({"username"}, "alice")


def test_a_role_change_publishes_user_updated(
    client: FlaskClient, add_user: AddUser, superuser: dict[str, str], redis_client: redis.Redis
) -> None:
    add_user("bob")
    staff = {"state": "staff", "privileges": {"event": ["read"]}}

    first = client.put("/users/bob/privileges", json=staff, headers=superuser)
    other_privileges = {"state": "staff", "privileges": {"event": ["create"]}}
    second = client.put("/users/bob/privileges", json=other_privileges, headers=superuser)

    assert (first.status_code, second.status_code) == (200, 200)
    events = published(redis_client, "bob")
    assert kinds(events) == ["user.created", "user.updated"]  # privileges are not listed
    assert events[1].changed == {"role"}


def test_the_staff_commands_publish_user_updated(
    app: Flask, add_user: AddUser, redis_client: redis.Redis
) -> None:
    add_user("carol")
    runner = app.test_cli_runner()

    granted = runner.invoke(args=["grant-staff", "carol", "--privilege", "event:cr"])
    revoked = runner.invoke(args=["revoke-staff", "carol"])

    assert (granted.exit_code, revoked.exit_code) == (0, 0)
    events = published(redis_client, "carol")
    assert kinds(events) == ["user.created", "user.updated", "user.updated"]
    assert all(event.changed == {"role"} for event in events[1:])


def test_disable_enable_and_delete_publish_their_events_once(
    client: FlaskClient, add_user: AddUser, superuser: dict[str, str], redis_client: redis.Redis
) -> None:
    public_id = add_user("dave")

    statuses = [
        client.put("/users/dave/disable", headers=superuser).status_code,
        client.put("/users/dave/disable", headers=superuser).status_code,  # no change
        client.put("/users/dave/enable", headers=superuser).status_code,
        client.put("/users/dave/enable", headers=superuser).status_code,  # no change
        client.delete("/users/dave", headers=superuser).status_code,
    ]

    assert statuses == [200] * 5
    events = published(redis_client, "dave")
    assert kinds(events) == ["user.created", "user.disabled", "user.enabled", "user.deleted"]
    assert {event.public_id for event in events} == {public_id}
    assert len({event.event_id for event in events}) == 4


def test_a_refused_change_publishes_nothing(
    client: FlaskClient, add_user: AddUser, token_for: Any, redis_client: redis.Redis
) -> None:
    add_user("erin")
    add_user("frank")
    headers = bearer(token_for("erin"))

    taken = client.put("/users/erin", json={"username": "frank"}, headers=headers)
    not_staff = client.put("/users/frank/disable", headers=headers)

    assert (taken.status_code, not_staff.status_code) == (422, 403)
    assert kinds(published(redis_client, "erin")) == ["user.created"]
    assert kinds(published(redis_client, "frank")) == ["user.created"]


def test_a_transaction_rolled_back_leaves_no_event(app: Flask, add_user: AddUser) -> None:
    add_user("gina")
    with app.app_context():
        user = service.find_user("gina")
        assert user is not None
        before = directory_snapshot(user)
        user.college_name = "Elsewhere"
        record_updated(user, before)
        db.session.rollback()

    assert outbox_size(app) == 0


# Redis unavailable: the outbox keeps the events, the relay publishes them


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A redis-server of this test alone, which the test stops and starts again."""
    process, url = start_redis(tmp_path / "redis")
    state: dict[str, Any] = {"process": process, "url": url}
    yield state
    if state["process"] is not None:
        stop_redis(state["process"])


def restart(private_redis: dict[str, Any], tmp_path: Path) -> redis.Redis:
    port = int(private_redis["url"].rsplit(":", 1)[1].split("/")[0])
    private_redis["process"], _ = start_redis(tmp_path / "redis", port=port)
    return redis.Redis.from_url(private_redis["url"])


def stop(private_redis: dict[str, Any]) -> None:
    stop_redis(private_redis["process"])
    private_redis["process"] = None


def test_events_recorded_while_redis_is_down_are_relayed_when_it_is_back(
    make_app: Callable[..., Flask], private_redis: dict[str, Any], tmp_path: Path
) -> None:
    app = make_app(REDIS_URL=private_redis["url"])
    client = app.test_client()
    stop(private_redis)

    response = client.post(
        "/users/", json={"username": "offline", "email": "o@e.org", "password": PASSWORD}
    )
    with app.app_context():
        user = service.find_user("offline")
        assert user is not None
        changes = {"college_name": "Later College"}
        service.update_profile(auth_context(app), "offline", _identity_of(user), changes)

    assert response.status_code == 201  # the change is not held up by the stream
    assert outbox_size(app) == 2
    relayed_early = app.test_cli_runner().invoke(args=["relay-user-events", "--once"])
    assert relayed_early.exit_code != 0  # still down: the relay fails, the rows stay
    assert outbox_size(app) == 2

    back = restart(private_redis, tmp_path)
    relayed = app.test_cli_runner().invoke(args=["relay-user-events", "--once"])

    assert relayed.exit_code == 0, relayed.output
    events = [UserEvent.from_fields(_decoded(f)) for _id, f in back.xrange(STREAM)]
    assert [(e.type, e.username) for e in events] == [
        ("user.created", "offline"),
        ("user.updated", "offline"),
    ]
    assert outbox_size(app) == 0


def test_the_relay_process_publishes_what_is_left_and_stops_on_sigterm(
    make_app: Callable[..., Flask], private_redis: dict[str, Any], tmp_path: Path
) -> None:
    app = make_app(REDIS_URL=private_redis["url"])
    stop(private_redis)
    response = app.test_client().post(
        "/users/", json={"username": "later", "email": "l@e.org", "password": PASSWORD}
    )
    assert response.status_code == 201
    relay = _start_relay(app, private_redis["url"], tmp_path)
    try:
        back = restart(private_redis, tmp_path)

        arrived = wait_for(lambda: back.xrange(STREAM), timeout=15)

        assert [_decoded(f)["username"] for _id, f in arrived] == ["later"]
        assert wait_for(lambda: outbox_size(app) == 0)
        relay.send_signal(signal.SIGTERM)
        assert relay.wait(timeout=10) == 0
    finally:
        if relay.poll() is None:
            relay.kill()
            relay.wait()


def _start_relay(app: Flask, redis_url: str, tmp_path: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "AUTH_DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": redis_url,
        "USER_EVENTS_RELAY_INTERVAL": "0.1",
        "FLOTILLA_VAR_DIR": str(tmp_path / "var"),
        "JWT_KEYS_DIR": str(auth_context(app).settings.keys_dir),
    }
    flask = str(Path(sys.executable).parent / "flask")
    return subprocess.Popen(
        [flask, "--app", "auth_service", "relay-user-events"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "relay.log").open("wb"),
    )


def _decoded(fields: dict[bytes, bytes]) -> dict[str, str]:
    return {key.decode(): value.decode() for key, value in fields.items()}


def _identity_of(user: Any) -> Identity:
    return Identity(subject=user.public_id, username=user.username, role=user.role)


# Several publishers at once


def test_concurrent_publishers_publish_each_event_once_in_order(
    private_redis: dict[str, Any], make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    """Requests' own publishing and relays of several replicas race for the same rows."""
    app = make_app(REDIS_URL=private_redis["url"])
    stop(private_redis)
    with app.app_context():
        for n in range(BATCH_SIZE * 2 + 10):
            service.create_user(auth_context(app), username=f"user_{n:03d}", password=None)
    back = restart(private_redis, tmp_path)
    start = threading.Barrier(6)
    errors: list[BaseException] = []

    def publish() -> None:
        try:
            start.wait()
            with app.app_context():
                publish_now(app)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=publish) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    with app.app_context():
        publish_now(app)  # whatever a publisher left when it found the lock taken

    assert errors == []
    usernames = [_decoded(f)["username"] for _id, f in back.xrange(STREAM)]
    assert usernames == [f"user_{n:03d}" for n in range(BATCH_SIZE * 2 + 10)]
    assert outbox_size(app) == 0


# Retention


def test_entries_older_than_the_retention_are_trimmed(
    make_app: Callable[..., Flask], redis_client: redis.Redis
) -> None:
    app = make_app(USER_EVENTS_RETENTION=MIN_RETENTION)
    for n in range(1, 301):  # far older than an hour: ids are milliseconds since 1970
        redis_client.xadd(STREAM, {"old": str(n)}, id=f"{n}-0")

    with app.app_context():
        service.create_user(auth_context(app), username="fresh", password=None)

    remaining = redis_client.xrange(STREAM)
    assert _decoded(remaining[-1][1])["username"] == "fresh"
    # MINID ~ trims whole internal nodes (of up to 100 entries): most old ones are gone.
    assert len(remaining) <= 101


@pytest.mark.parametrize("retention", [0, MIN_RETENTION - 1, -1])
def test_a_retention_too_short_stops_the_start(
    make_app: Callable[..., Flask], retention: int
) -> None:
    with pytest.raises(SettingsError, match="USER_EVENTS_RETENTION: must be at least 3600"):
        make_app(USER_EVENTS_RETENTION=retention)


def test_the_relay_needs_redis(make_app: Callable[..., Flask]) -> None:
    app = make_app(REDIS_URL=None)

    result = app.test_cli_runner().invoke(args=["relay-user-events", "--once"])

    assert result.exit_code != 0
    assert "REDIS_URL" in result.output


def test_without_redis_events_wait_in_the_outbox(make_app: Callable[..., Flask]) -> None:
    app = make_app(REDIS_URL=None)

    response = app.test_client().post(
        "/users/", json={"username": "noredis", "email": "n@e.org", "password": PASSWORD}
    )

    assert response.status_code == 201
    assert outbox_size(app) == 1
