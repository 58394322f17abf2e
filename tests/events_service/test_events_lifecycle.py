"""Following auth_service's users: a user deleted, disabled or renamed there, and the
lifecycle stream (real Redis) carrying it to events_service's consumer."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from sqlalchemy import func, select

from auth_service import service as auth_users
from auth_service.context import auth_context
from auth_service.outbox import publish_now
from events_service import seats
from events_service.lifecycle import GROUP, apply_user_event, handle_entry
from events_service.models import (
    CONFIRMED,
    PENDING,
    WAITING,
    Event,
    HandledUserEvent,
    Invitation,
    Organiser,
    Participant,
    Registration,
    Team,
    TeamMember,
    Volunteer,
    db,
)
from servicekit.config import REPO_ROOT
from servicekit.streams import ConsumerOptions, StreamConsumer, StreamEntry, entry_fields
from servicekit.user_events import KEEP_HANDLED
from servicekit.users import DEFAULT_USER_STREAM, DirectoryUnavailable, UserDirectory, UserEvent
from tests.events_service.events_helpers import SERVICE_SECRET
from tests.real_auth import ROOT, AuthServer, User

STREAM = DEFAULT_USER_STREAM


# Rows the other domains would have written


def add_event(app: Flask, *, team_event: bool = False, capacity: int | None = None) -> int:
    with app.app_context():
        name = f"event {secrets.token_hex(4)}"
        event = Event(
            public_id=secrets.token_hex(8),
            name=name,
            name_key=name,
            date=date(2030, 1, 15),
            time=clock(10, 0),
            team_event=team_event,
            min_size=1,
            max_size=5 if team_event else 1,
            capacity=capacity,
        )
        db.session.add(event)
        db.session.commit()
        return int(event.id)


def add_team(app: Flask, leader: User, *members: tuple[User, int]) -> int:
    """A team; each member with the day of January 2030 they joined."""
    with app.app_context():
        team = Team(name=f"team {secrets.token_hex(4)}", leader_id=leader.public_id)
        team.leader_username = leader.username
        for member, day in members:
            joined = datetime(2030, 1, day, tzinfo=UTC)
            team.members.append(
                TeamMember(user_id=member.public_id, username=member.username, joined_at=joined)
            )
        db.session.add(team)
        db.session.commit()
        return int(team.id)


def invite(app: Flask, team_id: int, user: User, status: str = PENDING) -> None:
    with app.app_context():
        db.session.add(
            Invitation(
                team_id=team_id, user_id=user.public_id, username=user.username, status=status
            )
        )
        db.session.commit()


def register(
    app: Flask,
    event_id: int,
    registrant: User,
    *participants: User,
    team_id: int | None = None,
) -> int:
    """A registration placed by events_service.seats (a seat or the waiting list): the
    registrant's own, or, with `team_id`, their team's."""
    with app.app_context():
        session = db.session()
        event = session.get(Event, event_id)
        registration = Registration(
            event_id=event_id,
            team_id=team_id,
            user_id=None if team_id else registrant.public_id,
            username=registrant.username,
        )
        seats.place(session, event, registration)
        session.add(registration)
        session.flush()
        for person in (registrant, *participants):
            session.add(
                Participant(
                    registration_id=registration.id,
                    event_id=event_id,
                    user_id=person.public_id,
                    username=person.username,
                )
            )
        session.commit()
        return int(registration.id)


def add_staffing(app: Flask, event_id: int, user: User, role: str | None = None) -> None:
    """An organiser with `role`, else a volunteer."""
    with app.app_context():
        ids = {"event_id": event_id, "user_id": user.public_id, "username": user.username}
        db.session.add(Organiser(role=role, **ids) if role else Volunteer(tasks=["doors"], **ids))
        db.session.commit()


# Reading what is left


def rows(app: Flask, model: type[Any], *columns: str) -> list[tuple[Any, ...]]:
    with app.app_context():
        found = db.session.scalars(select(model).order_by(*model.__table__.primary_key.columns))
        return [tuple(getattr(row, column) for column in columns) for row in found]


def snapshot(app: Flask) -> dict[str, list[tuple[Any, ...]]]:
    """Every row this handler may change."""
    return {
        "teams": rows(app, Team, "id", "leader_id", "leader_username"),
        "members": rows(app, TeamMember, "id", "team_id", "user_id", "username"),
        "invitations": rows(app, Invitation, "id", "user_id", "username", "status"),
        "registrations": rows(
            app, Registration, "id", "team_id", "user_id", "username", "status", "holds_seat"
        ),
        "participants": rows(app, Participant, "id", "registration_id", "user_id", "username"),
        "organisers": rows(app, Organiser, "user_id", "username"),
        "volunteers": rows(app, Volunteer, "user_id", "username"),
        "events": rows(app, Event, "id", "seats_taken"),
        "handled": rows(app, HandledUserEvent, "event_id"),
    }


def registration(app: Flask, registration_id: int) -> tuple[str, bool] | None:
    with app.app_context():
        found = db.session.get(Registration, registration_id)
        return None if found is None else (found.status, found.holds_seat)


def participants(app: Flask, registration_id: int) -> list[str]:
    with app.app_context():
        statement = select(Participant.username).where(
            Participant.registration_id == registration_id
        )
        return sorted(db.session.scalars(statement))


def seats_taken(app: Flask, event_id: int) -> int:
    with app.app_context():
        return int(db.session.scalar(select(Event.seats_taken).where(Event.id == event_id)))


def handled_count(app: Flask) -> int:
    with app.app_context():
        statement = select(func.count()).select_from(HandledUserEvent)
        return int(db.session.scalar(statement) or 0)


# The stream


def publish(auth: AuthServer) -> None:
    """What auth_service's outbox still holds, onto the stream (as its relay does)."""
    with auth.app.app_context():
        publish_now(auth.app)


def consumer(
    app: Flask, client: redis.Redis, name: str = "events-test", claim_idle: float = 60
) -> StreamConsumer:
    """A consumer of events_service's group whose handler runs in `app`'s context."""

    def handle(entry: StreamEntry) -> None:
        with app.app_context():
            handle_entry(entry)

    options = ConsumerOptions(block=0.1, claim_idle=claim_idle)
    made = StreamConsumer(client, STREAM, GROUP, handle, consumer=name, options=options)
    made.ensure_group()
    return made


def consume(app: Flask, client: redis.Redis) -> int:
    """One poll of the consumer: every entry of the stream not yet handled."""
    return consumer(app, client).poll()


def entries(client: redis.Redis, event_type: str) -> list[StreamEntry]:
    return [
        StreamEntry(STREAM, entry_id.decode(), fields, 1)
        for entry_id, raw in client.xrange(STREAM)
        if (fields := {k.decode(): v.decode() for k, v in raw.items()})["type"] == event_type
    ]


def pending(client: redis.Redis) -> int:
    return int(client.xpending(STREAM, GROUP)["pending"])


def rename(auth: AuthServer, username: str, new_name: str) -> None:
    with auth.app.app_context():
        auth_users.update_profile(auth_context(auth.app), username, ROOT, {"username": new_name})


@pytest.fixture
def dave(auth: AuthServer) -> User:
    return auth.add_user("dave")


@pytest.fixture
def erin(auth: AuthServer) -> User:
    return auth.add_user("erin")


# A user deleted or disabled


def test_a_deleted_user_leaves_teams_registrations_and_roles(
    app: Flask,
    auth: AuthServer,
    redis_client: redis.Redis,
    alice: User,
    bob: User,
    carol: User,
    dave: User,
    erin: User,
) -> None:
    # A single event with one seat: alice holds it, bob waits.
    single = add_event(app, capacity=1)
    alices_seat = register(app, single, alice)
    bobs_wait = register(app, single, bob)
    # alice leads a team of two: dave joined first (though added second), erin after.
    led = add_team(app, alice, (erin, 5), (dave, 2))
    invite(app, led, carol)
    led_registration = register(
        app, add_event(app, team_event=True), alice, erin, dave, team_id=led
    )
    # alice leads a team of her own only, holding a team event's one seat; carol's waits.
    alone = add_team(app, alice)
    carols = add_team(app, carol, (dave, 1))
    team_event = add_event(app, team_event=True, capacity=1)
    register(app, team_event, alice, team_id=alone)
    carols_wait = register(app, team_event, carol, dave, team_id=carols)
    # alice is a member of bob's team, which is registered; she is invited to carol's.
    bobs = add_team(app, bob, (alice, 3))
    bobs_registration = register(app, add_event(app, team_event=True), bob, alice, team_id=bobs)
    invite(app, carols, alice)
    # alice organises and volunteers; bob organises.
    add_staffing(app, single, alice, "Head")
    add_staffing(app, single, bob, "Member")
    add_staffing(app, single, alice)

    auth.delete("alice")
    publish(auth)
    consume(app, redis_client)

    assert registration(app, alices_seat) is None
    assert registration(app, bobs_wait) == (CONFIRMED, True)  # promoted
    assert seats_taken(app, single) == 1
    teams = {team_id: (leader_id, name) for team_id, leader_id, name in snapshot(app)["teams"]}
    assert teams == {
        led: (dave.public_id, "dave"),  # the longest-standing member leads
        carols: (carol.public_id, "carol"),
        bobs: (bob.public_id, "bob"),
    }  # alice's team without members is dissolved
    members = {(team_id, name) for _id, team_id, _user, name in snapshot(app)["members"]}
    assert members == {(led, "erin"), (carols, "dave")}
    assert registration(app, carols_wait) == (CONFIRMED, True)  # the dissolved team's seat
    assert seats_taken(app, team_event) == 1
    assert participants(app, led_registration) == ["dave", "erin"]
    assert dict(rows(app, Registration, "id", "username"))[led_registration] == "dave"
    assert participants(app, bobs_registration) == ["bob"]
    assert rows(app, Invitation, "team_id", "username", "status") == [(led, "carol", PENDING)]
    assert rows(app, Organiser, "username") == [("bob",)]
    assert rows(app, Volunteer, "username") == []
    every_user_column = [
        value for table in snapshot(app).values() for row in table for value in row
    ]
    assert alice.public_id not in every_user_column and "alice" not in every_user_column
    assert pending(redis_client) == 0
    assert handled_count(app) == 1


def test_a_disabled_user_is_removed_the_same_way(
    app: Flask, auth: AuthServer, redis_client: redis.Redis, alice: User, bob: User
) -> None:
    event = add_event(app)
    bobs_team = add_team(app, bob, (alice, 1))
    alices_team = add_team(app, alice)
    invite(app, alices_team, bob)
    registered = register(app, event, bob)
    add_staffing(app, event, bob, "Head")
    add_staffing(app, event, alice, "Member")
    add_staffing(app, event, bob)

    auth.disable("bob")
    publish(auth)
    consume(app, redis_client)

    assert registration(app, registered) is None
    assert rows(app, Team, "id", "leader_username") == [
        (bobs_team, "alice"),
        (alices_team, "alice"),
    ]
    assert rows(app, TeamMember, "username") == []
    assert rows(app, Invitation, "username") == []
    assert rows(app, Organiser, "username") == [("alice",)]
    assert rows(app, Volunteer, "username") == []


def test_the_same_event_handled_twice_changes_nothing(
    app: Flask, auth: AuthServer, redis_client: redis.Redis, alice: User, bob: User, carol: User
) -> None:
    event = add_event(app, capacity=1)
    register(app, event, alice)
    register(app, event, bob)
    register(app, event, carol)
    add_team(app, alice, (bob, 1), (carol, 2))
    auth.delete("alice")
    publish(auth)
    consume(app, redis_client)
    (deleted,) = entries(redis_client, "user.deleted")
    # Something the event would remove, had it not been handled already.
    add_staffing(app, event, alice, "Head")
    before = snapshot(app)

    with app.app_context():
        handle_entry(deleted)
        handle_entry(StreamEntry(deleted.stream, deleted.id, deleted.fields, 2))

    assert snapshot(app) == before
    assert [status for _i, _t, _u, _n, status, _s in before["registrations"]] == [
        CONFIRMED,
        WAITING,
    ]  # bob promoted once, carol still waiting
    assert rows(app, Organiser, "username") == [("alice",)]


def test_records_of_events_older_than_the_stream_keeps_are_forgotten(
    app: Flask, auth: AuthServer, redis_client: redis.Redis, alice: User
) -> None:
    long_ago = datetime.now(UTC) - KEEP_HANDLED - timedelta(hours=1)
    recently = datetime.now(UTC) - timedelta(days=1)
    with app.app_context():
        db.session.add(HandledUserEvent(event_id="old-event", handled_at=long_ago))
        db.session.add(HandledUserEvent(event_id="recent-event", handled_at=recently))
        db.session.commit()
    auth.delete("alice")
    publish(auth)
    consume(app, redis_client)
    (deleted,) = entries(redis_client, "user.deleted")
    handled = {event_id for (event_id,) in rows(app, HandledUserEvent, "event_id")}
    assert handled == {"recent-event", deleted.fields["eventId"]}


def test_events_that_change_nothing_here_are_acknowledged(
    app: Flask, auth: AuthServer, redis_client: redis.Redis, alice: User, bob: User
) -> None:
    add_team(app, alice, (bob, 1))
    add_staffing(app, add_event(app), bob, "Head")
    with auth.app.app_context():
        context = auth_context(auth.app)
        auth_users.update_profile(context, "bob", ROOT, {"college_name": "Elsewhere"})
        auth_users.set_active(context, "alice", ROOT, True)  # active already: no event
    before = snapshot(app)
    publish(auth)

    handled = consume(app, redis_client)

    assert handled == len(redis_client.xrange(STREAM)) >= 3  # created twice, updated
    assert pending(redis_client) == 0
    assert snapshot(app) == before
    assert handled_count(app) == 0


def test_a_late_consumer_group_starts_at_the_beginning(
    app: Flask, auth: AuthServer, redis_client: redis.Redis, alice: User, bob: User
) -> None:
    """Entries published before the group existed are handled by its first consumer."""
    add_staffing(app, add_event(app), alice, "Head")
    auth.delete("alice")
    publish(auth)
    assert not redis_client.exists(f"{STREAM}:dead:{GROUP}")
    assert GROUP not in [group["name"].decode() for group in redis_client.xinfo_groups(STREAM)]

    consume(app, redis_client)

    assert rows(app, Organiser, "username") == []


def test_a_re_enabled_user_gets_nothing_back(
    app: Flask, auth: AuthServer, redis_client: redis.Redis, alice: User, bob: User
) -> None:
    add_team(app, bob, (alice, 1))
    auth.disable("alice")
    with auth.app.app_context():
        auth_users.set_active(auth_context(auth.app), "alice", ROOT, True)
    publish(auth)

    consume(app, redis_client)

    assert len(entries(redis_client, "user.enabled")) == 1
    assert rows(app, TeamMember, "username") == []


# A rename


def test_a_rename_updates_every_stored_username(
    app: Flask, auth: AuthServer, redis_client: redis.Redis, alice: User, bob: User, carol: User
) -> None:
    single = add_event(app)
    alone = register(app, single, alice)
    led = add_team(app, alice, (bob, 1))
    led_registration = register(app, add_event(app, team_event=True), alice, bob, team_id=led)
    bobs = add_team(app, bob, (alice, 1))
    bobs_registration = register(app, add_event(app, team_event=True), bob, alice, team_id=bobs)
    invite(app, add_team(app, carol), alice)
    add_staffing(app, single, alice, "Head")
    add_staffing(app, single, alice)

    rename(auth, "alice", "alicia")
    publish(auth)
    consume(app, redis_client)

    assert rows(app, Team, "id", "leader_id", "leader_username")[0] == (
        led,
        alice.public_id,
        "alicia",
    )
    assert rows(app, TeamMember, "team_id", "username") == [(led, "bob"), (bobs, "alicia")]
    assert rows(app, Invitation, "username") == [("alicia",)]
    names = dict(rows(app, Registration, "id", "username"))
    assert names == {alone: "alicia", led_registration: "alicia", bobs_registration: "bob"}
    assert participants(app, alone) == ["alicia"]
    assert participants(app, bobs_registration) == ["alicia", "bob"]
    assert rows(app, Organiser, "user_id", "username") == [(alice.public_id, "alicia")]
    assert rows(app, Volunteer, "username") == [("alicia",)]
    assert handled_count(app) == 1


def test_renames_handled_out_of_order_end_at_the_current_name(
    app: Flask, auth: AuthServer, redis_client: redis.Redis, alice: User
) -> None:
    add_staffing(app, add_event(app), alice, "Head")
    rename(auth, "alice", "alicia")
    rename(auth, "alicia", "ally")
    publish(auth)
    first, second = (UserEvent.from_fields(e.fields) for e in entries(redis_client, "user.updated"))
    assert (first.username, second.username) == ("alicia", "ally")

    with app.app_context():
        directory = UserDirectory.for_service("events", SERVICE_SECRET, auth_url=auth.url)
        assert apply_user_event(db.session(), second, directory)
        assert apply_user_event(db.session(), first, directory)  # late: a retried entry

    assert rows(app, Organiser, "username") == [("ally",)]


def test_a_rename_waits_while_the_directory_is_down(
    app: Flask, auth: AuthServer, redis_client: redis.Redis, alice: User, dead_url: str
) -> None:
    add_staffing(app, add_event(app), alice, "Head")
    rename(auth, "alice", "alicia")
    publish(auth)
    (renamed,) = (UserEvent.from_fields(e.fields) for e in entries(redis_client, "user.updated"))

    with app.app_context():
        down = UserDirectory.for_service("events", SERVICE_SECRET, auth_url=dead_url)
        with pytest.raises(DirectoryUnavailable):
            apply_user_event(db.session(), renamed, down)

    assert rows(app, Organiser, "username") == [("alice",)]
    assert handled_count(app) == 0


# Entries that are not what they should be


def test_an_entry_of_an_unknown_type_is_acknowledged_and_a_malformed_one_retried(
    app: Flask, redis_client: redis.Redis, alice: User
) -> None:
    add_staffing(app, add_event(app), alice, "Head")
    newer = {"eventId": "e1", "type": "user.merged", "publicId": alice.public_id}
    malformed = {"eventId": "e2", "type": "user.deleted", "username": "alice"}
    redis_client.xadd(STREAM, entry_fields(newer))
    redis_client.xadd(STREAM, entry_fields(malformed))
    before = snapshot(app)

    handled = consumer(app, redis_client).poll()

    assert handled == len(redis_client.xrange(STREAM)) - 1  # all but the malformed one
    assert pending(redis_client) == 1
    assert snapshot(app) == before
    with app.app_context(), pytest.raises(ValueError, match="publicId"):
        handle_entry(StreamEntry(STREAM, "1-0", malformed, 1))


# Consumers that die


def test_a_consumer_that_died_mid_entry_leaves_nothing_half_done_and_it_is_reclaimed(
    app: Flask,
    auth: AuthServer,
    redis_client: redis.Redis,
    alice: User,
    bob: User,
    carol: User,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    event = add_event(app, capacity=1)
    register(app, event, alice)
    waiting = register(app, event, bob)
    team = add_team(app, alice, (carol, 1))
    auth.delete("alice")
    auth.delete("bob")
    publish(auth)
    before = snapshot(app)

    def dies(*_args: Any) -> None:
        raise RuntimeError("the process died here")

    # The first consumer passes alice's team on, then dies cancelling her registration.
    with monkeypatch.context() as patch:
        patch.setattr(seats, "cancel", dies)
        first = consumer(app, redis_client, "first", claim_idle=0.001)
        first.handle(first.read_new()[:-1])  # bob's deletion was read, never handled

    assert snapshot(app) == before  # the leader change was rolled back with the rest
    assert pending(redis_client) == 2
    time.sleep(0.01)  # longer than claim_idle: the entries are there to be claimed

    second = consumer(app, redis_client, "second", claim_idle=0.001)
    assert second.poll() == 2

    assert pending(redis_client) == 0
    assert rows(app, Team, "id", "leader_username") == [(team, "carol")]
    assert registration(app, waiting) is None  # promoted, then bob's deletion cancelled it
    assert rows(app, Registration, "id") == []
    assert seats_taken(app, event) == 0
    assert handled_count(app) == 2


@pytest.fixture
def consumer_process(
    app: Flask, auth: AuthServer, redis_url: str, dead_url: str, tmp_path: Path
) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    """The consumer as `make run` and compose start it, on this test's database."""
    started: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        command = [
            sys.executable, "-m", "servicekit.streams", "events_service.lifecycle:handle_entry",
            "--group", GROUP, "--app", "events_service", "--block", "0.2",
        ]  # fmt: skip
        env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "EVENTS_DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
            "AUTH_SERVICE_URL": auth.url,
            "MEDIA_SERVICE_URL": dead_url,
            "SERVICE_SECRET": SERVICE_SECRET,
        }
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / "consumer.log").open("wb"),
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def wait_for(condition: Callable[[], bool], timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_the_consumer_process_applies_events_and_stops_on_sigterm(
    app: Flask,
    auth: AuthServer,
    redis_client: redis.Redis,
    consumer_process: Callable[[], subprocess.Popen[bytes]],
    alice: User,
    bob: User,
) -> None:
    add_team(app, alice, (bob, 1))
    process = consumer_process()

    rename(auth, "bob", "robert")
    auth.delete("alice")
    publish(auth)

    assert wait_for(lambda: rows(app, Team, "leader_username") == [("robert",)])
    assert wait_for(lambda: pending(redis_client) == 0)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0
