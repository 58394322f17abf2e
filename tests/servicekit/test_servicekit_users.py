"""servicekit.users: the user directory client against a real auth_service on loopback,
and the user lifecycle stream read by a consumer group."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from werkzeug.wrappers import Request, Response

from auth_service import service
from auth_service.context import auth_context
from auth_service.models import User, db
from servicekit import Identity
from servicekit.http import ServiceClient
from servicekit.streams import ConsumerOptions, StreamConsumer, StreamEntry
from servicekit.testing import serve_wsgi
from servicekit.users import (
    LIST_PATH,
    LOOKUP_PATH,
    MAX_LOOKUP,
    DirectoryUnavailable,
    DirectoryUser,
    UserDirectory,
    UserEvent,
    user_directory,
    user_stream,
)
from tests.real_auth import auth_app
from tests.servicekit.servicekit_harness import json_response

SECRET = "directory-test-secret"
TOKEN_PATH = "/internal/service-token"
SUPERUSER = Identity(subject="root-public-id", username="root", role="superuser")


@dataclass
class AuthRecorder:
    """auth_service's WSGI app, noting each request and the names each lookup asked for;
    lookups can be made slow."""

    app: Flask
    paths: list[str] = field(default_factory=list)
    lookups: list[dict[str, list[str]]] = field(default_factory=list)
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == LOOKUP_PATH:
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(body)
            with self.lock:
                self.lookups.append(json.loads(body))
            time.sleep(self.delay)
        elif path == LIST_PATH:
            time.sleep(self.delay)
        with self.lock:
            self.paths.append(path)
        return self.app(environ, start_response)  # type: ignore[no-any-return]

    def count(self, path: str) -> int:
        with self.lock:
            return self.paths.count(path)


@dataclass
class AuthServer:
    app: Flask
    url: str
    recorder: AuthRecorder

    def add_user(self, username: str, **profile: Any) -> str:
        profile.setdefault("email", f"{username}@example.org")
        with self.app.app_context():
            user = service.create_user(
                auth_context(self.app), username=username, password=None, **profile
            )
            return str(user.public_id)

    def directory(self, **options: Any) -> UserDirectory:
        return UserDirectory.for_service("events", SECRET, auth_url=self.url, **options)


@pytest.fixture
def auth(
    service_app: Callable[..., Flask],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    redis_client: redis.Redis,
    dead_url: str,
) -> Iterator[AuthServer]:
    """A real auth_service served on loopback, on its own migrated database."""
    app = auth_app(service_app, tmp_path, monkeypatch, service_secret=SECRET, media_url=dead_url)
    recorder = AuthRecorder(app)
    with serve_wsgi(recorder) as url:
        yield AuthServer(app, url, recorder)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_lookup_answers_users_and_unknown_names(auth: AuthServer) -> None:
    alice = auth.add_user("alice", first_name="Alice", college_name="College A")
    bob = auth.add_user("bob", email=None)

    found = auth.directory().lookup(usernames=["alice", "ghost"], public_ids=[bob, "f" * 16])

    joined = found.by_username["alice"].date_joined
    assert joined is not None and joined.tzinfo is not None
    assert found.by_username == {
        "alice": DirectoryUser(
            public_id=alice,
            username="alice",
            first_name="Alice",
            last_name="",
            email="alice@example.org",
            college_name="College A",
            role="normal",
            is_active=True,
            date_joined=joined,
            last_login=None,
        )
    }
    assert found.by_public_id[bob].username == "bob"
    assert found.by_public_id[bob].email is None
    assert (found.unknown_usernames, found.unknown_public_ids) == (("ghost",), ("f" * 16,))
    assert found.unknown == ("ghost", "f" * 16)
    assert not found.complete


def test_a_batch_of_misses_is_one_round_trip_and_hits_none(auth: AuthServer) -> None:
    for name in ("u1", "u2", "u3"):
        auth.add_user(name)
    directory = auth.directory()

    first = directory.lookup(["u1", "u2"])
    again = directory.lookup(["u1", "u2"])
    more = directory.lookup(["u1", "u2", "u3", "nobody"])

    assert first.complete and again.complete
    assert set(more.by_username) == {"u1", "u2", "u3"}
    assert more.unknown_usernames == ("nobody",)
    assert auth.recorder.lookups == [
        {"usernames": ["u1", "u2"], "publicIds": []},
        {"usernames": ["u3", "nobody"], "publicIds": []},  # only what the cache lacked
    ]
    assert auth.recorder.count(TOKEN_PATH) == 1  # the service token is reused


def test_a_user_found_by_name_is_cached_by_public_id_too(auth: AuthServer) -> None:
    public_id = auth.add_user("alice")
    directory = auth.directory()

    directory.lookup(["alice"])
    found = directory.lookup(public_ids=[public_id])

    assert found.by_public_id[public_id].username == "alice"
    assert auth.recorder.count(LOOKUP_PATH) == 1


def test_cached_answers_expire_after_the_ttl(auth: AuthServer) -> None:
    auth.add_user("alice")
    clock = Clock()
    directory = UserDirectory(auth.directory().client, ttl=30, clock=clock)

    directory.lookup(["alice"])
    clock.now += 29.9
    directory.lookup(["alice"])
    clock.now += 0.2
    directory.lookup(["alice"])

    assert auth.recorder.count(LOOKUP_PATH) == 2


def test_unknown_names_are_not_cached(auth: AuthServer) -> None:
    directory = auth.directory()
    assert directory.user("newcomer") is None

    auth.add_user("newcomer")

    user = directory.user("newcomer")
    assert user is not None and user.username == "newcomer"


def test_fresh_lookups_and_forgotten_users_see_changes_at_once(auth: AuthServer) -> None:
    auth.add_user("carol")
    directory = auth.directory()
    assert directory.lookup(["carol"]).by_username["carol"].is_active
    with auth.app.app_context():
        service.set_active(auth_context(auth.app), "carol", SUPERUSER, active=False)

    stale = directory.lookup(["carol"]).by_username["carol"]
    fresh = directory.lookup(["carol"], fresh=True).by_username["carol"]

    assert stale.is_active  # the cache's answer, for up to `ttl`
    assert not fresh.is_active
    with auth.app.app_context():
        service.set_active(auth_context(auth.app), "carol", SUPERUSER, active=True)
    directory.forget(usernames=["carol"])
    assert directory.lookup(["carol"]).by_username["carol"].is_active


def test_the_cache_is_bounded(auth: AuthServer) -> None:
    for n in range(4):
        auth.add_user(f"user_{n}")
    directory = auth.directory(max_entries=4)

    directory.lookup([f"user_{n}" for n in range(4)])

    assert len(directory.cache) == 4  # two users: each is cached by name and by id
    directory.lookup(["user_2", "user_3"])
    assert auth.recorder.count(LOOKUP_PATH) == 1  # the most recent ones stayed
    directory.lookup(["user_0"])
    assert auth.recorder.count(LOOKUP_PATH) == 2


def test_more_names_than_one_request_takes_are_split(auth: AuthServer) -> None:
    auth.add_user("alice")
    names = ["alice", *(f"n{n}" for n in range(MAX_LOOKUP))]

    found = auth.directory().lookup(names)

    assert [len(body["usernames"]) for body in auth.recorder.lookups] == [MAX_LOOKUP, 1]
    assert set(found.by_username) == {"alice"}
    assert len(found.unknown_usernames) == MAX_LOOKUP


def test_names_no_user_can_have_are_never_sent(auth: AuthServer) -> None:
    found = auth.directory().lookup(["", "x" * 300])

    assert found.unknown_usernames == ("", "x" * 300)
    assert auth.recorder.count(LOOKUP_PATH) == 0


def test_concurrent_lookups_share_the_cache_safely(auth: AuthServer) -> None:
    names = [f"user_{n}" for n in range(6)]
    for name in names:
        auth.add_user(name)
    directory = auth.directory(max_entries=5)
    errors: list[BaseException] = []
    answers: list[set[str]] = []
    start = threading.Barrier(8)

    def work(offset: int) -> None:
        try:
            start.wait()
            for round_ in range(20):
                wanted = [names[(offset + round_ + k) % 6] for k in range(3)]
                answers.append(set(directory.lookup(wanted).by_username) ^ set(wanted))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert answers == [set()] * 160
    assert len(directory.cache) <= 5


def test_an_unreachable_auth_service_is_directory_unavailable(dead_url: str) -> None:
    directory = UserDirectory.for_service("events", SECRET, auth_url=dead_url)

    started = time.monotonic()
    with pytest.raises(DirectoryUnavailable, match="did not answer"):
        directory.lookup(["alice"])
    assert time.monotonic() - started < 5


def test_a_slow_auth_service_times_out(auth: AuthServer) -> None:
    directory = auth.directory(timeout=(1.0, 0.3))
    directory.lookup(["warm_up"])  # the service token, fetched once
    auth.recorder.delay = 2.0

    started = time.monotonic()
    with pytest.raises(DirectoryUnavailable):
        directory.lookup(["alice"])
    assert time.monotonic() - started < 1.5


def test_a_wrong_service_secret_is_directory_unavailable(auth: AuthServer) -> None:
    directory = UserDirectory.for_service("events", "not the secret", auth_url=auth.url)

    with pytest.raises(DirectoryUnavailable):
        directory.lookup(["alice"])
    assert auth.recorder.count(LOOKUP_PATH) == 0


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (503, {"error": "down", "code": "service_unavailable"}),
        (200, {"users": [{"username": "half a user"}]}),
        (200, {"users": "none"}),
        (200, ["not", "an", "object"]),
    ],
)
def test_an_answer_that_is_not_a_lookup_is_directory_unavailable(status: int, body: Any) -> None:
    @Request.application
    def answer(_request: Request) -> Response:
        return json_response(body, status)

    with serve_wsgi(answer) as url:
        directory = UserDirectory(ServiceClient("auth", base_url=url))
        with pytest.raises(DirectoryUnavailable):
            directory.lookup(["alice"])


def test_a_service_app_gets_its_directory_from_its_settings(
    auth: AuthServer, make_app: Callable[..., Flask]
) -> None:
    auth.add_user("alice")
    app = make_app(SERVICE_SECRET=SECRET, AUTH_SERVICE_URL=auth.url, USER_DIRECTORY_TTL=5)

    with app.app_context():
        directory = user_directory()
        assert user_directory() is directory
        assert directory.cache.ttl == 5
        user = directory.user("alice")

    assert user is not None and user.username == "alice"


def test_without_a_service_secret_there_is_no_directory(make_app: Callable[..., Flask]) -> None:
    app = make_app(SERVICE_SECRET=None)

    with app.app_context(), pytest.raises(DirectoryUnavailable, match="SERVICE_SECRET"):
        user_directory()


# The lifecycle stream, end to end


def test_a_consumer_group_follows_user_changes_and_refreshes_the_directory(
    auth: AuthServer, redis_client: redis.Redis
) -> None:
    directory = auth.directory()
    seen: list[UserEvent] = []

    def handle(entry: StreamEntry) -> None:
        event = UserEvent.from_fields(entry.fields)
        directory.forget_event(event)
        seen.append(event)

    events = StreamConsumer(
        redis_client,
        user_stream(),
        "events",
        handle,
        consumer="events-1",
        options=ConsumerOptions(block=0.05),
    )
    public_id = auth.add_user("dora", college_name="College A")
    events.ensure_group()
    assert directory.lookup(["dora"]).by_username["dora"].college_name == "College A"
    with auth.app.app_context():
        dora = Identity(subject=public_id, username="dora", role="normal")
        service.update_profile(auth_context(auth.app), "dora", dora, {"college_name": "College B"})
        service.set_active(auth_context(auth.app), "dora", SUPERUSER, active=False)

    assert events.poll() == 3

    assert [(e.type, e.public_id) for e in seen] == [
        ("user.created", public_id),
        ("user.updated", public_id),
        ("user.disabled", public_id),
    ]
    assert seen[1].changed == {"collegeName"}
    now = directory.lookup(["dora"]).by_username["dora"]
    assert (now.college_name, now.is_active) == ("College B", False)


def test_user_events_read_back_what_they_wrote() -> None:
    event = UserEvent(
        event_id="e" * 32,
        type="user.updated",
        public_id="p" * 16,
        username="alicia",
        occurred_at=datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
        changed=frozenset({"username", "email"}),
        previous_username="alice",
    )

    fields = event.to_fields()

    assert fields["changed"] == "email,username"
    assert fields["occurredAt"] == "2026-01-02T03:04:05.678+00:00"
    assert UserEvent.from_fields(fields) == event


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"eventId": "e", "type": "user.renamed", "publicId": "p", "username": "u"},
        {"eventId": "e", "type": "user.created", "publicId": "p", "username": "u"},
    ],
)
def test_an_entry_that_is_not_a_user_event_is_a_value_error(fields: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        UserEvent.from_fields(fields)


# Listing every user


def test_all_users_are_listed_a_page_at_a_time(auth: AuthServer) -> None:
    public_ids = sorted(auth.add_user(f"user_{n}") for n in range(5))

    users = list(auth.directory().all_users(page_size=2))

    assert [user.public_id for user in users] == public_ids
    assert {user.username for user in users} == {f"user_{n}" for n in range(5)}
    assert auth.recorder.count(LIST_PATH) == 3


def test_the_listing_is_fetched_as_the_iteration_goes(auth: AuthServer) -> None:
    for n in range(3):
        auth.add_user(f"user_{n}")
    users = auth.directory().all_users(page_size=1)

    next(users)

    assert auth.recorder.count(LIST_PATH) == 1


def test_an_empty_directory_lists_no_one_in_one_request(auth: AuthServer) -> None:
    assert list(auth.directory().all_users()) == []
    assert auth.recorder.count(LIST_PATH) == 1


def test_listed_users_carry_the_directory_fields(auth: AuthServer) -> None:
    alice = auth.add_user("alice", first_name="Alice", college_name="College A", role="staff")

    with auth.app.app_context():
        stored = db.session.scalars(db.select(User).where(User.public_id == alice)).one()
        stored.last_login = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
        db.session.commit()
        joined = stored.date_joined

    (user,) = auth.directory().all_users()

    assert user == DirectoryUser(
        public_id=alice,
        username="alice",
        first_name="Alice",
        last_name="",
        email="alice@example.org",
        college_name="College A",
        role="staff",
        is_active=True,
        date_joined=joined,
        last_login=datetime(2026, 3, 1, 9, 30, tzinfo=UTC),
    )


def test_an_answer_without_the_times_still_parses() -> None:
    """A directory that does not publish dateJoined and lastLogin: both are None."""
    wire = {
        "publicId": "a" * 16,
        "username": "alice",
        "firstName": "",
        "lastName": "",
        "email": None,
        "collegeName": "",
        "role": "normal",
        "isActive": True,
    }

    user = DirectoryUser.from_wire(wire)
    timed = DirectoryUser.from_wire(
        {**wire, "dateJoined": "2026-01-02T03:04:05+00:00", "lastLogin": None}
    )

    assert (user.date_joined, user.last_login) == (None, None)
    assert timed.date_joined == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert timed.last_login is None
    with pytest.raises(ValueError):
        DirectoryUser.from_wire({**wire, "dateJoined": "yesterday"})


def test_a_listing_from_an_unreachable_auth_service_is_directory_unavailable(
    dead_url: str,
) -> None:
    directory = UserDirectory.for_service("events", SECRET, auth_url=dead_url)

    with pytest.raises(DirectoryUnavailable, match="did not answer"):
        list(directory.all_users())


def test_a_slow_listing_times_out(auth: AuthServer) -> None:
    directory = auth.directory(timeout=(1.0, 0.3))
    directory.lookup(["warm_up"])  # the service token, fetched once
    auth.recorder.delay = 2.0

    started = time.monotonic()
    with pytest.raises(DirectoryUnavailable):
        list(directory.all_users())
    assert time.monotonic() - started < 1.5


def test_a_listing_with_a_wrong_service_secret_is_directory_unavailable(
    auth: AuthServer,
) -> None:
    directory = UserDirectory.for_service("events", "not the secret", auth_url=auth.url)

    with pytest.raises(DirectoryUnavailable):
        list(directory.all_users())
    assert auth.recorder.count(LIST_PATH) == 0


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (503, {"error": "down", "code": "service_unavailable"}),
        (200, {"users": [{"username": "half a user"}], "next": None}),
        (200, {"users": "none", "next": None}),
        (200, {"users": []}),
        (200, ["not", "an", "object"]),
    ],
)
def test_an_answer_that_is_not_a_listing_is_directory_unavailable(status: int, body: Any) -> None:
    @Request.application
    def answer(_request: Request) -> Response:
        return json_response(body, status)

    with serve_wsgi(answer) as url:
        directory = UserDirectory(ServiceClient("auth", base_url=url))
        with pytest.raises(DirectoryUnavailable):
            list(directory.all_users())
