"""Following auth_service's users: events_service's handler of the user lifecycle stream.

It runs as its own process, a consumer of the group `events`:

    python -m servicekit.streams events_service.lifecycle:handle_entry \\
        --group events --app events_service

- `user.deleted` and `user.disabled`: the user leaves the fest. Their invitations, team
  memberships and places in team registrations go; the registrations they made alone
  are cancelled (each freed seat goes to the first waiting registration); each team
  they lead passes to its longest-standing member (earliest `joined_at`), or is
  dissolved when it has none (its registrations cancelled like the others); their
  organiser and volunteer roles go. A user enabled again gets none of it back.
- `user.updated` of a rename: every stored username of the user becomes their current
  one (asked of the directory by publicId, so a rename handled late, after a later
  one, does not bring back an old name).
- Any other event: nothing to do here (acknowledged).

Each event is applied once, in one transaction that records its `eventId` in
`HandledUserEvent` (servicekit.user_events).
"""

from __future__ import annotations

from flask import current_app
from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from events_service import seats
from events_service.context import events_context
from events_service.models import (
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
from servicekit.streams import StreamEntry
from servicekit.user_events import UserEventFollower
from servicekit.users import USER_DELETED, USER_DISABLED, UserDirectory, UserEvent

GROUP = "events"  # this service's consumer group on the user lifecycle stream


def handle_entry(entry: StreamEntry) -> None:
    """The stream handler (run in the events app's context)."""
    FOLLOWER.handle_entry(entry, db.session(), events_context(current_app).directory)


def apply_user_event(session: Session, event: UserEvent, directory: UserDirectory | None) -> bool:
    """Apply one event in one transaction (False: nothing to do, or applied already)."""
    return FOLLOWER.apply(session, event, directory)


def remove_user(session: Session, user_id: str) -> None:
    """Everything the user has here goes (see the module's docstring)."""
    led = session.scalars(select(Team).where(Team.leader_id == user_id).order_by(Team.id))
    for team in led.all():
        pass_on_or_dissolve(session, team)
    alone = select(Registration).where(Registration.user_id == user_id).order_by(Registration.id)
    for registration in session.scalars(alone).all():
        seats.cancel(session, registration)
    for model in (Participant, TeamMember, Invitation, Organiser, Volunteer):
        session.execute(delete(model).where(model.user_id == user_id))


def pass_on_or_dissolve(session: Session, team: Team) -> None:
    """A team whose leader leaves: led by its longest-standing member from now on (who is
    no longer a member row), or, without members, dissolved."""
    successor = session.scalar(
        select(TeamMember)
        .where(TeamMember.team_id == team.id)
        .order_by(TeamMember.joined_at, TeamMember.id)
        .limit(1)
    )
    if successor is None:
        dissolve(session, team)
        return
    team.leader_id, team.leader_username = successor.user_id, successor.username
    # A team's registrations name its leader as their registrant.
    session.execute(
        update(Registration)
        .where(Registration.team_id == team.id)
        .values(username=successor.username)
    )
    session.delete(successor)


def dissolve(session: Session, team: Team) -> None:
    registered = select(Registration).where(Registration.team_id == team.id)
    for registration in session.scalars(registered.order_by(Registration.id)).all():
        seats.cancel(session, registration)
    session.delete(team)
    session.flush()


def rename_user(session: Session, user_id: str, username: str) -> None:
    """Every username stored for the user (by publicId) becomes `username`."""
    for model in (TeamMember, Invitation, Participant, Organiser, Volunteer):
        session.execute(update(model).where(model.user_id == user_id).values(username=username))
    session.execute(update(Team).where(Team.leader_id == user_id).values(leader_username=username))
    led = select(Team.id).where(Team.leader_id == user_id)
    session.execute(
        update(Registration)
        .where(or_(Registration.user_id == user_id, Registration.team_id.in_(led)))
        .values(username=username)
    )


FOLLOWER = UserEventFollower(
    HandledUserEvent, remove=remove_user, rename=rename_user, removing=(USER_DELETED, USER_DISABLED)
)
