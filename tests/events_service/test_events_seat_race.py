"""No seat is sold twice: hundreds of registrations at once, against a real threaded
server, on SQLite and on PostgreSQL (TEST_DATABASE_URL)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from flask import Flask
from sqlalchemy import select

from events_service.models import CONFIRMED, WAITING, Event, Participant, Registration, db
from servicekit.testing import serve_wsgi
from tests.events_service.test_events_registrations import add_event, add_users
from tests.real_auth import AuthServer, User

USERS, SEATS, THREADS, CANCELLED = 500, 100, 50, 10
TIMEOUT = 60  # seconds a request may take before the test fails (a hang, not a timing test)


@pytest.fixture
def server(app: Flask) -> Iterator[str]:
    """The events app behind a threaded werkzeug server on loopback (one thread a request)."""
    with serve_wsgi(app) as url:
        yield url


def concurrently(call: Callable[[User], requests.Response], users: Sequence[User]) -> list[int]:
    """Each user's call from a pool of THREADS threads at once; the statuses, in order."""
    with ThreadPoolExecutor(THREADS) as pool:
        return [response.status_code for response in pool.map(call, users)]


def registrations(app: Flask, public_id: str) -> list[tuple[int, str | None, str, bool]]:
    """(id, user publicId, status, holds a seat) of the event's registrations, by id."""
    with app.app_context():
        event_id = db.session.scalar(select(Event.id).where(Event.public_id == public_id))
        rows = db.session.execute(
            select(
                Registration.id, Registration.user_id, Registration.status, Registration.holds_seat
            )
            .where(Registration.event_id == event_id)
            .order_by(Registration.id)
        )
        return [(row.id, row.user_id, row.status, row.holds_seat) for row in rows]


def seats_taken(app: Flask, public_id: str) -> int:
    with app.app_context():
        taken = db.session.scalar(select(Event.seats_taken).where(Event.public_id == public_id))
        assert taken is not None
        return taken


def participants(app: Flask) -> int:
    with app.app_context():
        return len(db.session.scalars(select(Participant.id)).all())


def test_five_hundred_registrations_for_a_hundred_seats(
    app: Flask, auth: AuthServer, server: str
) -> None:
    users = add_users(auth, "racer", USERS)
    event = add_event(app, capacity=SEATS)

    def register(user: User) -> requests.Response:
        path = f"{server}/events/{event}/register/"
        return requests.post(path, json={}, headers=user.headers, timeout=TIMEOUT)

    answers = concurrently(register, users)

    assert Counter(answers) == {201: USERS}
    rows = registrations(app, event)
    assert len(rows) == USERS
    assert len({user_id for _, user_id, _, _ in rows}) == USERS  # nobody twice
    assert {user_id for _, user_id, _, _ in rows} == {user.public_id for user in users}
    assert Counter(status for _, _, status, _ in rows) == {CONFIRMED: SEATS, WAITING: USERS - SEATS}
    assert all(holds == (status == CONFIRMED) for _, _, status, holds in rows)
    # The seats went to the first arrivals: the registrations with the lowest ids.
    assert [status for _, _, status, _ in rows[:SEATS]] == [CONFIRMED] * SEATS
    assert seats_taken(app, event) == SEATS
    assert participants(app) == USERS

    # Ten seated registrations cancelled at once: the first ten waiting take their seats.
    owner = {user.public_id: user for user in users}
    cancelled = rows[: SEATS : SEATS // CANCELLED]
    waiting = [row for row in rows if row[2] == WAITING]

    def cancel(user: User) -> requests.Response:
        (registration_id,) = [row[0] for row in cancelled if row[1] == user.public_id]
        path = f"{server}/events/{event}/registrations/{registration_id}"
        return requests.delete(path, headers=user.headers, timeout=TIMEOUT)

    answers = concurrently(cancel, [owner[str(row[1])] for row in cancelled])

    assert answers == [204] * CANCELLED
    after = {row[0]: row[2] for row in registrations(app, event)}
    assert len(after) == USERS - CANCELLED
    assert [after[row[0]] for row in waiting[:CANCELLED]] == [CONFIRMED] * CANCELLED
    assert {after[row[0]] for row in waiting[CANCELLED:]} == {WAITING}
    assert Counter(after.values()) == {CONFIRMED: SEATS, WAITING: USERS - SEATS - CANCELLED}
    assert seats_taken(app, event) == SEATS


def test_a_user_registering_twice_at_once_is_registered_once(
    app: Flask, auth: AuthServer, server: str
) -> None:
    """The same user's two requests race to the unique constraints: one 201 and one 422
    each, never a 500, and one seat."""
    users = add_users(auth, "twice", THREADS)
    event = add_event(app, capacity=THREADS // 2)

    def register(user: User) -> requests.Response:
        path = f"{server}/events/{event}/register"
        return requests.post(path, headers=user.headers, timeout=TIMEOUT)

    answers = concurrently(register, [user for user in users for _ in range(2)])

    assert Counter(answers) == {201: THREADS, 422: THREADS}
    assert all(sorted(answers[n : n + 2]) == [201, 422] for n in range(0, 2 * THREADS, 2))
    rows = registrations(app, event)
    assert len(rows) == THREADS
    assert Counter(status for _, _, status, _ in rows) == {
        CONFIRMED: THREADS // 2,
        WAITING: THREADS - THREADS // 2,
    }
    assert seats_taken(app, event) == THREADS // 2
