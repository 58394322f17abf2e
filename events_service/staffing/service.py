"""Organisers and volunteers of an event: users checked with auth_service, with a role
(organisers) or a list of tasks (volunteers).

Each list keeps the order in which its people were first added; adding someone again
changes their role or tasks in place. A write locks the event's row, so the bound on a
list (`MAX_PER_EVENT`) holds under concurrent writers and two writers adding the same
user meet one row, not a duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from events_service.errors import EventNotFound
from events_service.locks import lock_row
from events_service.models import Event, Organiser, Volunteer
from events_service.people import resolve_user
from servicekit.errors import DomainError
from servicekit.users import UserDirectory

MAX_PER_EVENT = 500  # organisers, and volunteers, of one event


class OrganiserNotFound(DomainError):
    status, code, message = 404, "not_found", "no such organiser of this event"


class VolunteerNotFound(DomainError):
    status, code, message = 404, "not_found", "no such volunteer of this event"


class ListFull(DomainError):
    status, code = 422, "too_many"

    def __init__(self, people: str) -> None:
        message = f"an event has at most {MAX_PER_EVENT} {people}"
        super().__init__(message, errors={"username": message})


@dataclass(frozen=True)
class VolunteerTasks:
    """A volunteer's tasks in one event (`event_id` is the event's publicId)."""

    event_id: str
    username: str
    tasks: list[str]


def event_of(session: Session, public_id: str) -> Event:
    event: Event | None = session.scalar(select(Event).where(Event.public_id == public_id))
    if event is None:
        raise EventNotFound()
    return event


# Organisers


def organisers(session: Session, public_id: str) -> list[Organiser]:
    return _organisers(session, event_of(session, public_id).id)


def add_organiser(
    session: Session, directory: UserDirectory | None, public_id: str, username: str, role: str
) -> list[Organiser]:
    """Make `username` an organiser of the event with `role` (their new role if they are
    one already); the event's organisers after the change."""
    event = event_of(session, public_id)
    user = resolve_user(directory, username)
    _lock(session, event)
    organiser = session.scalar(
        select(Organiser).where(Organiser.event_id == event.id, Organiser.user_id == user.public_id)
    )
    if organiser is None:
        _check_room(session, Organiser, event.id, "organisers")
        organiser = Organiser(event_id=event.id, user_id=user.public_id)
        session.add(organiser)
    organiser.username = user.username
    organiser.role = role
    session.commit()
    return _organisers(session, event.id)


def remove_organiser(session: Session, public_id: str, username: str) -> None:
    event = event_of(session, public_id)
    organiser = session.scalar(
        select(Organiser).where(Organiser.event_id == event.id, Organiser.username == username)
    )
    if organiser is None:
        raise OrganiserNotFound()
    session.delete(organiser)
    session.commit()


def _organisers(session: Session, event_id: int) -> list[Organiser]:
    statement = select(Organiser).where(Organiser.event_id == event_id).order_by(Organiser.id)
    return list(session.scalars(statement))


# Volunteers


def volunteers(session: Session, public_id: str) -> list[Volunteer]:
    return _volunteers(session, event_of(session, public_id).id)


def add_volunteer(
    session: Session,
    directory: UserDirectory | None,
    public_id: str,
    username: str,
    tasks: list[str],
) -> list[Volunteer]:
    """Make `username` a volunteer of the event with `tasks` (replacing their tasks if
    they are one already); the event's volunteers after the change."""
    event = event_of(session, public_id)
    user = resolve_user(directory, username)
    _lock(session, event)
    volunteer = session.scalar(
        select(Volunteer).where(Volunteer.event_id == event.id, Volunteer.user_id == user.public_id)
    )
    if volunteer is None:
        _check_room(session, Volunteer, event.id, "volunteers")
        volunteer = Volunteer(event_id=event.id, user_id=user.public_id)
        session.add(volunteer)
    volunteer.username = user.username
    volunteer.tasks = list(tasks)
    session.commit()
    return _volunteers(session, event.id)


def set_tasks(session: Session, public_id: str, username: str, tasks: list[str]) -> VolunteerTasks:
    """Replace a volunteer's tasks."""
    volunteer = _volunteer(session, public_id, username)
    volunteer.tasks = list(tasks)  # a new list: the JSON column sees the change
    session.commit()
    return VolunteerTasks(public_id, volunteer.username, list(volunteer.tasks))


def remove_volunteer(session: Session, public_id: str, username: str) -> None:
    session.delete(_volunteer(session, public_id, username))
    session.commit()


def _volunteer(session: Session, public_id: str, username: str) -> Volunteer:
    event = event_of(session, public_id)
    volunteer: Volunteer | None = session.scalar(
        select(Volunteer).where(Volunteer.event_id == event.id, Volunteer.username == username)
    )
    if volunteer is None:
        raise VolunteerNotFound()
    return volunteer


def _volunteers(session: Session, event_id: int) -> list[Volunteer]:
    statement = select(Volunteer).where(Volunteer.event_id == event_id).order_by(Volunteer.id)
    return list(session.scalars(statement))


# Both


def _lock(session: Session, event: Event) -> None:
    """Serialise this event's staffing writes: the count and the insert that follow
    happen under the event's row lock (events_service.locks)."""
    lock_row(session, Event, event.id)


def _check_room(
    session: Session, model: type[Organiser] | type[Volunteer], event_id: int, people: str
) -> None:
    count = session.scalar(
        select(func.count()).select_from(model).where(model.event_id == event_id)
    )
    if (count or 0) >= MAX_PER_EVENT:
        raise ListFull(people)
