"""Seats and the waiting list: the only code that changes `Event.seats_taken`.

Every change is a conditional UPDATE, never a read-then-write: the database serialises
writers on the event's row (PostgreSQL) or on the database (SQLite), so two requests
never take the last seat together, and two cancellations never promote the same waiting
registration. Callers commit: a seat taken or freed is part of their transaction.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from events_service.models import CONFIRMED, PAYMENT_PENDING, WAITING, Event, Registration
from servicekit.db import utcnow


def seated_status(fees: Decimal) -> str:
    """A seat of a paid event waits for its payment; a free event's is confirmed at once."""
    return PAYMENT_PENDING if fees > 0 else CONFIRMED


def take_seat(session: Session, event_id: int) -> bool:
    """Take one of the event's free seats, if there is one."""
    taken = session.execute(
        update(Event)
        .where(
            Event.id == event_id,
            or_(Event.capacity.is_(None), Event.seats_taken < Event.capacity),
        )
        .values(seats_taken=Event.seats_taken + 1)
        .execution_options(synchronize_session=False)
    )
    return taken.rowcount == 1  # type: ignore[attr-defined, no-any-return]


def free_seat(session: Session, event_id: int) -> None:
    session.execute(
        update(Event)
        .where(Event.id == event_id, Event.seats_taken > 0)
        .values(seats_taken=Event.seats_taken - 1)
        .execution_options(synchronize_session=False)
    )


def place(session: Session, event: Event, registration: Registration) -> None:
    """Give a new registration a seat, or a place at the end of the waiting list.

    Call it before the registration is added to the session: the seat is then taken (on
    PostgreSQL, the event's row locked) before the registration is given its id, so ids,
    the order of arrival, follow the order in which seats were taken."""
    if take_seat(session, event.id):
        registration.holds_seat = True
        registration.status = seated_status(event.fees)
    else:
        registration.holds_seat = False
        registration.status = WAITING


def cancel(session: Session, registration: Registration) -> list[Registration]:
    """Delete a registration; the seat it held goes to the waiting list's first entries.

    Returns the registrations promoted (at most one, unless the capacity grew); none when
    another transaction deleted the registration first."""
    promoted = cancel_by_id(session, registration.id)
    return promoted or []


def cancel_by_id(session: Session, registration_id: int) -> list[Registration] | None:
    """`cancel` by id: None when no such registration exists (any more).

    One `DELETE ... RETURNING` says whether the row deleted held a seat, so a registration
    promoted by a concurrent cancellation a moment ago gives its new seat back too (its
    participants go with it: ON DELETE CASCADE)."""
    deleted = session.execute(
        delete(Registration)
        .where(Registration.id == registration_id)
        .returning(Registration.event_id, Registration.holds_seat)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    _forget(session, registration_id)
    if deleted is None:
        return None
    event_id, held_seat = deleted
    if not held_seat:
        return []
    free_seat(session, event_id)
    return fill_seats(session, event_id)


def _forget(session: Session, registration_id: int) -> None:
    """Drop a deleted registration (and its participants) from the session's objects."""
    registration = session.identity_map.get(identity_key(Registration, registration_id))
    if registration is not None:
        session.expunge(registration)


def fill_seats(session: Session, event_id: int) -> list[Registration]:
    """Promote waiting registrations, in order of arrival, while seats are free."""
    fees = session.scalar(select(Event.fees).where(Event.id == event_id))
    if fees is None:
        return []
    promoted: list[Registration] = []
    while take_seat(session, event_id):
        registration = _promote_first_waiting(session, event_id, seated_status(fees))
        if registration is None:
            free_seat(session, event_id)  # nobody waits: the seat stays free
            break
        promoted.append(registration)
    return promoted


def _promote_first_waiting(session: Session, event_id: int, status: str) -> Registration | None:
    """Seat the first waiting registration another transaction has not seated first."""
    while True:
        first = session.scalar(
            select(Registration.id)
            .where(Registration.event_id == event_id, Registration.holds_seat.is_(False))
            .order_by(Registration.id)
            .limit(1)
        )
        if first is None:
            return None
        seated = session.execute(
            update(Registration)
            .where(Registration.id == first, Registration.holds_seat.is_(False))
            .values(holds_seat=True, status=status, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        if seated.rowcount == 1:  # type: ignore[attr-defined]
            registration = session.get(Registration, first, populate_existing=True)
            assert registration is not None
            return registration
