"""Registrations: who may register, the seat or waiting place each gets, payment, cancelling.

Every write is one transaction, committed here. Seats and the waiting list change only
through events_service.seats (conditional updates). Nobody is registered for an event
twice: the participants' unique constraint (event, user) decides when two requests race,
and the refusal names who is registered already.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from events_service import seats
from events_service.errors import EventNotFound, Forbidden, RegistrationNotFound
from events_service.locks import lock_row
from events_service.models import (
    CONFIRMED,
    PAYMENT_PENDING,
    WAITING,
    Event,
    Participant,
    Registration,
    Team,
    TeamMember,
)
from events_service.people import Person
from servicekit.errors import DomainError
from servicekit.identity import Identity
from servicekit.pagination import Page, Window, paginate

# Row ids are 32-bit integers on every database; a larger number names no row.
MAX_ROW_ID = 2**31 - 1
REGISTERED = "registered"  # the document's `status` in the already-registered answer


# Refusals


class AlreadyRegistered(DomainError):
    """The document's 422 for a second registration of the same user or team:
    `{message, eventId, teamId (teams), status: "registered"}`, plus its registrationId."""

    status, code = 422, "already_registered"

    def __init__(self, event: Event, registration: Registration) -> None:
        super().__init__()
        self.event_public_id = event.public_id
        self.team_id = registration.team_id
        self.registration_id = registration.id

    def body(self) -> dict[str, Any]:
        body = {"message": self.detail, "eventId": self.event_public_id}
        if self.team_id is not None:
            body["teamId"] = str(self.team_id)
        body["status"] = REGISTERED
        body["registrationId"] = str(self.registration_id)
        return body


class TeamAlreadyRegistered(AlreadyRegistered):
    message = "Team already registered for event"


class UserAlreadyRegistered(AlreadyRegistered):
    message = "Already registered for event"


class TeamRequired(DomainError):
    status, code = 400, "validation_error"
    message = "this is a team event: register a team with teamId"

    def __init__(self) -> None:
        super().__init__(errors={"teamId": "required for a team event"})


class NotATeamEvent(DomainError):
    status, code = 422, "not_a_team_event"
    message = "this is a single event: register without teamId (you register yourself)"

    def __init__(self) -> None:
        super().__init__(errors={"teamId": "not allowed for a single event"})


class UnknownTeam(DomainError):
    status, code = 422, "unknown_team"

    def __init__(self, team_id: int) -> None:
        super().__init__(f"no such team: '{team_id}'", errors={"teamId": "no such team"})


class NotTeamLeader(DomainError):
    status, code = 403, "forbidden"
    message = "only the team's leader may register it"


class TeamSizeOutOfRange(DomainError):
    status, code = 422, "team_size"

    def __init__(self, size: int, event: Event) -> None:
        super().__init__(
            f"the team has {size} member{'s' if size != 1 else ''} (its leader included); "
            f"this event takes teams of {event.min_size} to {event.max_size}",
            size=size,
            minSize=event.min_size,
            maxSize=event.max_size,
        )


class ParticipantsAlreadyRegistered(DomainError):
    """Users of the team registered for the event already, alone or in another team."""

    status, code = 422, "participant_already_registered"

    def __init__(self, usernames: Sequence[str]) -> None:
        listed = ", ".join(repr(name) for name in usernames)
        noun = "user is" if len(usernames) == 1 else "users are"
        super().__init__(
            f"already registered for this event (alone or in another team): the {noun} {listed}",
            usernames=list(usernames),
        )


class RegistrationClosed(DomainError):
    status, code = 422, "registration_closed"

    def __init__(self, event: Event, now: datetime) -> None:
        opens, closes = event.registration_opens, event.registration_closes
        when = "has not opened yet" if opens is not None and now < opens else "has closed"
        window = " ".join(
            part
            for part in (
                f"from {_iso(opens)}" if opens is not None else "",
                f"until {_iso(closes)}" if closes is not None else "",
            )
            if part
        )
        super().__init__(
            f"registration {when}: it is open {window}",
            registrationOpens=_iso(opens),
            registrationCloses=_iso(closes),
        )


class RegistrationConflict(DomainError):
    status, code = 409, "conflict"
    message = "the registration changed while it was being written; try again"


class StatusChangeRefused(DomainError):
    status, code = 422, "status_change"

    def __init__(self, message: str) -> None:
        super().__init__(message, errors={"status": message})


# Reading


def find_event(session: Session, public_id: str) -> Event:
    event: Event | None = session.scalar(select(Event).where(Event.public_id == public_id))
    if event is None:
        raise EventNotFound()
    return event


def find_registration(session: Session, event: Event, registration_id: str) -> Registration:
    """The event's registration with this id (as the URL spells it)."""
    number = _row_id(registration_id)
    registration = None if number is None else session.get(Registration, number)
    if registration is None or registration.event_id != event.id:
        raise RegistrationNotFound()
    return registration


def list_registrations(session: Session, event: Event, window: Window) -> Page[Registration]:
    """The event's registrations in order of arrival, one page."""
    statement = (
        select(Registration).where(Registration.event_id == event.id).order_by(Registration.id)
    )
    return paginate(session, statement, window)


def may_list(identity: Identity) -> bool:
    return identity.can("event", "read")


def check_may_list(identity: Identity) -> None:
    if not may_list(identity):
        raise Forbidden("missing privilege: event read")


def check_may_view(session: Session, identity: Identity, registration: Registration) -> None:
    """The registrant, the team's leader and members (and its registered participants),
    staff who may read events."""
    if may_list(identity) or _is_registrant(session, identity, registration):
        return
    if registration.team_id is not None and _in_team(session, identity, registration):
        return
    raise Forbidden("only the registrant, the team and staff may see this registration")


def _is_registrant(session: Session, identity: Identity, registration: Registration) -> bool:
    if registration.team_id is None:
        return registration.user_id == identity.subject
    return _team_leader(session, registration.team_id) == identity.subject


def _in_team(session: Session, identity: Identity, registration: Registration) -> bool:
    member = select(TeamMember.id).where(
        TeamMember.team_id == registration.team_id, TeamMember.user_id == identity.subject
    )
    participant = select(Participant.id).where(
        Participant.registration_id == registration.id, Participant.user_id == identity.subject
    )
    return session.scalar(member.union(participant).limit(1)) is not None


def _team_leader(session: Session, team_id: int) -> str | None:
    return session.scalar(select(Team.leader_id).where(Team.id == team_id))


# Registering


@dataclass(frozen=True)
class Entrant:
    """Who a registration is for: a user alone, or a team with its leader and members."""

    team: Team | None
    people: tuple[Person, ...]


def register(
    session: Session, event: Event, caller: Person, team_id: int | None, now: datetime
) -> Registration:
    """Register the caller (single event) or the caller's team (team event).

    The seat is taken, or the waiting place given, in the same transaction as the rows."""
    _check_window(event, now)
    entrant = _entrant(session, event, caller, team_id)
    _check_not_registered(session, event, entrant)
    registration = Registration(
        event_id=event.id,
        team_id=entrant.team.id if entrant.team is not None else None,
        user_id=None if entrant.team is not None else caller.user_id,
        username=caller.username,
        created_at=now,
        updated_at=now,
    )
    try:
        seats.place(session, event, registration)
        session.add(registration)
        registration.participants = [
            Participant(event_id=event.id, user_id=person.user_id, username=person.username)
            for person in entrant.people
        ]
        session.commit()
    except IntegrityError:
        session.rollback()
        raise _conflict(session, event.public_id, caller, team_id) from None
    return registration


def _check_window(event: Event, now: datetime) -> None:
    opens, closes = event.registration_opens, event.registration_closes
    if (opens is not None and now < opens) or (closes is not None and now >= closes):
        raise RegistrationClosed(event, now)


def _entrant(session: Session, event: Event, caller: Person, team_id: int | None) -> Entrant:
    if not event.team_event:
        if team_id is not None:
            raise NotATeamEvent()
        return Entrant(None, (caller,))
    if team_id is None:
        raise TeamRequired()
    # Locked before its members are read: a member accepting, leaving or the team being
    # deleted at the same moment waits for this registration (events_service.locks).
    team = lock_row(session, Team, team_id) if team_id <= MAX_ROW_ID else None
    if team is None:
        raise UnknownTeam(team_id)
    if team.leader_id != caller.user_id:
        raise NotTeamLeader()
    people = {team.leader_id: Person(team.leader_id, team.leader_username)}
    for member in team.members:
        people.setdefault(member.user_id, Person(member.user_id, member.username))
    return Entrant(team, tuple(people.values()))


def _check_not_registered(session: Session, event: Event, entrant: Entrant) -> None:
    if entrant.team is not None:
        existing = _registration_of(session, event, Registration.team_id == entrant.team.id)
        if existing is not None:
            raise TeamAlreadyRegistered(event, existing)
        _check_team_size(event, len(entrant.people))
    else:
        existing = _registration_of(
            session, event, Registration.user_id == entrant.people[0].user_id
        )
        if existing is not None:
            raise UserAlreadyRegistered(event, existing)
    registered = _registered_usernames(session, event, (p.user_id for p in entrant.people))
    if registered:
        raise ParticipantsAlreadyRegistered(registered)


def _check_team_size(event: Event, size: int) -> None:
    if not event.min_size <= size <= event.max_size:
        raise TeamSizeOutOfRange(size, event)


def _registration_of(session: Session, event: Event, condition: Any) -> Registration | None:
    registration: Registration | None = session.scalar(
        select(Registration).where(Registration.event_id == event.id, condition)
    )
    return registration


def _registered_usernames(session: Session, event: Event, user_ids: Iterable[str]) -> list[str]:
    return list(
        session.scalars(
            select(Participant.username)
            .where(Participant.event_id == event.id, Participant.user_id.in_(list(user_ids)))
            .order_by(Participant.id)
        )
    )


def _conflict(
    session: Session, event_public_id: str, caller: Person, team_id: int | None
) -> DomainError:
    """Why a registration another transaction raced to a unique constraint was refused:
    the refusal its checks give now that the other one is committed."""
    try:
        event = find_event(session, event_public_id)
        entrant = _entrant(session, event, caller, team_id)
        _check_not_registered(session, event, entrant)
    except DomainError as refusal:
        return refusal
    return RegistrationConflict()


# Payment


def change_status(
    session: Session, registration: Registration, status: str, now: datetime
) -> Registration:
    """Staff confirm a payment: `payment pending` -> `confirmed` (confirmed stays so).

    One conditional update: a registration cancelled meanwhile is a 404, not a lost write."""
    if status != CONFIRMED:
        raise StatusChangeRefused(f"only 'confirmed' can be set (payment received); got {status!r}")
    if registration.status == WAITING:
        raise StatusChangeRefused(
            "a waiting registration holds no seat: it cannot be confirmed until it is given one"
        )
    session.execute(
        update(Registration)
        .where(Registration.id == registration.id, Registration.status == PAYMENT_PENDING)
        .values(status=CONFIRMED, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    current = session.get(Registration, registration.id, populate_existing=True)
    if current is None:
        raise RegistrationNotFound()
    return current


# Cancelling


def check_may_cancel(session: Session, identity: Identity, registration: Registration) -> None:
    """The registered user, the team's leader, staff who may delete events."""
    if identity.can("event", "delete") or _is_registrant(session, identity, registration):
        return
    raise Forbidden("only the registrant, the team's leader and staff may cancel it")


def cancel(session: Session, registration: Registration) -> list[Registration]:
    """Delete the registration; the first waiting registrations take the seat it frees, in
    the same transaction."""
    promoted = seats.cancel_by_id(session, registration.id)
    if promoted is None:
        session.rollback()
        raise RegistrationNotFound()
    session.commit()
    return promoted


def _row_id(text: str) -> int | None:
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        return None
    number = int(text)
    return number if 0 < number <= MAX_ROW_ID else None


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")
