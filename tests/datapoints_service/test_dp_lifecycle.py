"""The users copy follows auth_service: a user created, renamed, disabled and deleted
there (a real auth_service, its lifecycle stream on a real Redis) appears, changes and
disappears here, with their permission rows."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from auth_service import models as auth_models
from auth_service import service as auth_users
from auth_service.context import auth_context
from auth_service.outbox import publish_now
from datapoints_service.lifecycle import GROUP, handle_entry
from datapoints_service.models import DataPoint, RegionPermission, User, db
from datapoints_service.values import Cell, write_cells
from devstack.redis_server import free_port
from servicekit import Identity
from servicekit.streams import ConsumerOptions, StreamConsumer, StreamEntry
from servicekit.testing import TestKeys, serve_wsgi
from servicekit.users import DEFAULT_USER_STREAM
from tests.datapoints_service.dp_helpers import Person, add_person, listing, region_tree
from tests.datapoints_service.dp_values import campaigns, indicators
from tests.real_auth import auth_app

SERVICE_SECRET = "datapoints-test-secret"
ROOT = Identity(subject="root-public-id", username="root", role="superuser")


class Auth:
    """A real auth_service on loopback, and the changes a test makes to its users."""

    def __init__(self, app: Flask, url: str) -> None:
        self.app, self.url = app, url

    def add(self, username: str, **profile: str) -> str:
        with self.app.app_context():
            user = auth_users.create_user(
                auth_context(self.app),
                username=username,
                password=None,
                role="normal",
                college_name="College",
                email=f"{username}@example.org",
                **profile,
            )
            return str(user.public_id)

    def rename(self, username: str, new_name: str) -> None:
        with self.app.app_context():
            changes = {"username": new_name}
            auth_users.update_profile(auth_context(self.app), username, ROOT, changes)

    def disable(self, username: str) -> None:
        with self.app.app_context():
            auth_users.set_active(auth_context(self.app), username, ROOT, False)

    def delete(self, username: str) -> None:
        with self.app.app_context():
            auth_users.delete_user(auth_context(self.app), username, ROOT)

    def stamp(self, username: str, **times: datetime | None) -> None:
        """Set a user's stored `date_joined` / `last_login` (what a password login writes)."""
        with self.app.app_context():
            user = auth_models.db.session.scalars(
                auth_models.db.select(auth_models.User).where(auth_models.User.username == username)
            ).one()
            for name, value in times.items():
                setattr(user, name, value)
            auth_models.db.session.commit()

    def publish(self) -> None:
        """What auth_service's outbox still holds, onto the stream (as its relay does)."""
        with self.app.app_context():
            publish_now(self.app)


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
    """datapoints_service asking the test's auth_service about users."""
    return make_app(AUTH_SERVICE_URL=auth.url, SERVICE_SECRET=SERVICE_SECRET)


def consume(app: Flask, client: redis.Redis) -> int:
    """One poll of datapoints_service's consumer: every entry not yet handled."""

    def handle(entry: StreamEntry) -> None:
        with app.app_context():
            handle_entry(entry)

    options = ConsumerOptions(block=0.1, claim_idle=60)
    consumer = StreamConsumer(
        client, DEFAULT_USER_STREAM, GROUP, handle, consumer="datapoints-test", options=options
    )
    consumer.ensure_group()
    return consumer.poll()


def replay(app: Flask, client: redis.Redis) -> None:
    """Every entry of the stream handled once more (a second delivery of each)."""
    for entry_id, raw in client.xrange(DEFAULT_USER_STREAM):
        fields = {key.decode(): value.decode() for key, value in raw.items()}
        with app.app_context():
            handle_entry(StreamEntry(DEFAULT_USER_STREAM, entry_id.decode(), fields, 2))


def copied(client: FlaskClient, staff: Person, username: str) -> list[dict[str, object]]:
    return list(listing(client, staff.headers, "user", username=username)["objects"])


def test_a_user_appears_changes_and_disappears(
    client: FlaskClient,
    app: Flask,
    auth: Auth,
    redis_client: redis.Redis,
    test_keys: TestKeys,
) -> None:
    staff = add_person(app, test_keys, "staff", role="staff")
    public_id = auth.add("dave", first_name="Dave", last_name="Jones")
    auth.publish()
    assert consume(app, redis_client) >= 1
    (dave,) = copied(client, staff, "dave")
    assert dave["first_name"] == "Dave" and dave["last_name"] == "Jones"
    assert dave["email"] == "dave@example.org"
    assert dave["is_active"] is True and dave["is_staff"] is False
    with app.app_context():
        assert (
            db.session.scalar(db.select(User.public_id).where(User.id == dave["id"])) == public_id
        )

    auth.rename("dave", "david")
    auth.publish()
    consume(app, redis_client)
    assert copied(client, staff, "dave") == []
    (david,) = copied(client, staff, "david")
    assert david["id"] == dave["id"]  # this service's id stays the user's

    auth.disable("david")
    auth.publish()
    consume(app, redis_client)
    assert copied(client, staff, "david")[0]["is_active"] is False

    (region,) = region_tree(app, [None])
    (campaign,) = campaigns(app, [("2016-01-01", "2016-01-31")])
    (indicator,) = indicators(app, [("vaccinated", "sum")])
    with app.app_context():
        db.session.add(RegionPermission(user_id=dave["id"], region_id=region))
        write_cells(db.session(), [Cell(region, campaign, indicator, 5)], changed_by_id=dave["id"])
        db.session.commit()
    auth.delete("david")
    auth.publish()
    consume(app, redis_client)
    assert copied(client, staff, "david") == []
    assert listing(client, staff.headers, "region_permission")["objects"] == []
    with app.app_context():  # the values they entered stay, by nobody now
        assert db.session.execute(db.select(DataPoint.value, DataPoint.changed_by_id)).all() == [
            (5, None)
        ]

    replay(app, redis_client)  # every event delivered again: the user stays gone
    assert copied(client, staff, "david") == [] and copied(client, staff, "dave") == []


def test_join_and_last_login_times_come_from_the_directory_at_each_event(
    client: FlaskClient, app: Flask, auth: Auth, redis_client: redis.Redis, test_keys: TestKeys
) -> None:
    staff = add_person(app, test_keys, "staff", role="staff")
    joined = datetime(2025, 5, 1, 8, 0, tzinfo=UTC)
    auth.add("erin")
    auth.stamp("erin", date_joined=joined)
    auth.publish()
    consume(app, redis_client)
    (erin,) = copied(client, staff, "erin")
    assert datetime.fromisoformat(str(erin["date_joined"])) == joined
    assert erin["last_login"] is None

    signed_in = datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC)
    auth.stamp("erin", last_login=signed_in)  # a login publishes no event...
    assert consume(app, redis_client) == 0
    assert copied(client, staff, "erin")[0]["last_login"] is None

    auth.rename("erin", "erin_b")  # ...the user's next event brings it
    auth.publish()
    consume(app, redis_client)
    (renamed,) = copied(client, staff, "erin_b")
    assert datetime.fromisoformat(str(renamed["last_login"])) == signed_in
    assert datetime.fromisoformat(str(renamed["date_joined"])) == joined


def test_a_copy_that_starts_late_catches_up(
    client: FlaskClient, app: Flask, auth: Auth, redis_client: redis.Redis, test_keys: TestKeys
) -> None:
    staff = add_person(app, test_keys, "staff", role="staff")
    auth.add("erin")
    auth.add("frank")
    auth.rename("frank", "fred")
    auth.publish()
    consume(app, redis_client)
    names = [row["username"] for row in listing(client, staff.headers, "user")["objects"]]
    assert names == ["staff", "erin", "fred"]
    replay(app, redis_client)  # the older events handled again end at the same state
    again = [row["username"] for row in listing(client, staff.headers, "user")["objects"]]
    assert again == names


def test_an_event_waits_while_the_directory_is_down(
    make_app: Callable[..., Flask], auth: Auth, redis_client: redis.Redis
) -> None:
    auth.add("gina")
    auth.publish()
    closed = make_app(
        AUTH_SERVICE_URL=f"http://127.0.0.1:{free_port()}", SERVICE_SECRET=SERVICE_SECRET
    )
    assert consume(closed, redis_client) == 0  # raised: left pending, retried later
    with closed.app_context():
        assert db.session.scalar(db.select(db.func.count(User.id))) == 0
    working = make_app(AUTH_SERVICE_URL=auth.url, SERVICE_SECRET=SERVICE_SECRET)
    replay(working, redis_client)
    with working.app_context():
        assert db.session.scalar(db.select(User.username)) == "gina"
