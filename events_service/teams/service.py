"""Teams and the invitations that fill them (no Flask here: api.py hands in the session,
the caller and the user directory).

A team is a leader (not a row of `team_members`) and the members who accepted an
invitation. Writes that change who is in a team first touch the team's row
(`_lock_team`): PostgreSQL then holds a row lock and SQLite the write lock until the
commit, so two acceptances never both fit into the last place of a team, a member never
joins a team that is being deleted, and a team is never deleted under a registration
being made for it (whose seat the foreign key's cascade would otherwise take away
without freeing it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Integer,
    Select,
    String,
    cast,
    delete,
    func,
    literal_column,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from events_service import seats
from events_service.errors import DocumentRefusal, Forbidden, TeamNotFound, UnknownUsers
from events_service.locks import lock_row
from events_service.models import (
    ACCEPTED,
    PENDING,
    REJECTED,
    USERNAME_LENGTH,
    Event,
    Invitation,
    Participant,
    Registration,
    Team,
    TeamMember,
)
from events_service.people import Person, resolve_user, resolve_users
from servicekit.db import utcnow
from servicekit.errors import DomainError
from servicekit.identity import Identity
from servicekit.pagination import Page, Window, paginate
from servicekit.users import UserDirectory

# Team ids are the digits of an `integer` column: anything else names no team.
TEAM_ID_PATTERN = re.compile(r"[0-9]{1,10}")
MAX_TEAM_ID = 2**31 - 1
# A user's invitations are listed newest first, at most this many.
MAX_INVITATIONS_LISTED = 500

WRONG_USERNAME = "Wrong Username"
NOT_SAME_COLLEGE = "Not from same college"
ALREADY_INVITED = "Already invited"
ALREADY_MEMBER = "Already a member"
ALREADY_ANSWERED = {ACCEPTED: "Already Accepted", REJECTED: "Already Rejected"}
DOES_NOT_EXIST = "Does not exist"
NOT_A_MEMBER = "Not a member"
LEADER_STAYS = "The leader cannot leave the team: delete the team instead"


class TeamPageNotFound(DomainError):
    """A page past the last one, in the body the fest's lists use."""

    status, code, message = 400, "page_not_found", "This page does not exist"

    def __init__(self, page_size: int, pages: int) -> None:
        super().__init__()
        self.page_size = page_size
        self.pages = pages

    def body(self) -> dict[str, Any]:
        return {"message": self.detail, "pageSize": self.page_size, "noOfPages": self.pages}


class InvitationNotFound(DomainError):
    status, code, message = 404, "not_found", "no such invitation"


def team_full(event_public_id: str | None = None) -> DocumentRefusal:
    if event_public_id is None:
        return DocumentRefusal("Team is full")
    return DocumentRefusal(f"Team is full for event {event_public_id}")


def already_registered(event_public_id: str) -> DocumentRefusal:
    return DocumentRefusal(f"Already registered for event {event_public_id}")


# Rendering


MEMBER, INVITEE, EVENT = 0, 1, 2


@dataclass
class TeamView:
    """A team as the wire shows it, and who may see it."""

    team: Team
    members: list[str] = field(default_factory=list)
    invitees: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    member_ids: set[str] = field(default_factory=set)
    invitee_ids: set[str] = field(default_factory=set)

    @property
    def teamid(self) -> str:
        return str(self.team.id)

    @property
    def name(self) -> str:
        return self.team.name

    @property
    def leader(self) -> str:
        return self.team.leader_username

    def visible_to(self, identity: Identity) -> bool:
        return (
            identity.subject == self.team.leader_id
            or identity.subject in self.member_ids
            or identity.subject in self.invitee_ids
            or identity.can("event", "read")
        )


def _parts_of(team_ids: list[int]) -> Select[Any]:
    """Members (in joining order), pending invitees and registered events of these teams,
    as one query: rows of (team_id, kind, value, user_id)."""
    members = select(
        TeamMember.team_id.label("team_id"),
        literal_column(str(MEMBER), Integer).label("kind"),
        func.row_number()
        .over(partition_by=TeamMember.team_id, order_by=(TeamMember.joined_at, TeamMember.id))
        .label("position"),
        TeamMember.username.label("value"),
        TeamMember.user_id.label("user_id"),
    ).where(TeamMember.team_id.in_(team_ids))
    invitees = select(
        Invitation.team_id,
        literal_column(str(INVITEE), Integer),
        func.row_number().over(partition_by=Invitation.team_id, order_by=Invitation.id),
        Invitation.username,
        Invitation.user_id,
    ).where(Invitation.team_id.in_(team_ids), Invitation.status == PENDING)
    events = (
        select(
            Registration.team_id,
            literal_column(str(EVENT), Integer),
            func.row_number().over(partition_by=Registration.team_id, order_by=Registration.id),
            Event.public_id,
            cast(null(), String),
        )
        .join(Event, Event.id == Registration.event_id)
        .where(Registration.team_id.in_(team_ids))
    )
    parts = union_all(members, invitees, events).subquery()
    return select(parts.c.team_id, parts.c.kind, parts.c.value, parts.c.user_id).order_by(
        parts.c.team_id, parts.c.kind, parts.c.position
    )


def render(session: Session, teams: Sequence[Team]) -> list[TeamView]:
    """The teams' views, with one query for all their members, invitees and events."""
    views = {team.id: TeamView(team) for team in teams}
    if views:
        for team_id, kind, value, user_id in session.execute(_parts_of(list(views))):
            view = views[team_id]
            if kind == MEMBER:
                view.members.append(value)
                view.member_ids.add(user_id)
            elif kind == INVITEE:
                view.invitees.append(value)
                view.invitee_ids.add(user_id)
            else:
                view.events.append(value)
    return list(views.values())


def render_one(session: Session, team: Team) -> TeamView:
    return render(session, [team])[0]


# Finding and locking teams


def parse_team_id(teamid: str) -> int:
    """The team id in a path; TeamNotFound for anything that cannot be one."""
    if not TEAM_ID_PATTERN.fullmatch(teamid) or int(teamid) > MAX_TEAM_ID:
        raise TeamNotFound()
    return int(teamid)


def find_team(session: Session, teamid: str) -> Team:
    team = session.get(Team, parse_team_id(teamid))
    if team is None:
        raise TeamNotFound()
    return team


def _lock_team(session: Session, teamid: str) -> Team:
    """The team, its row locked until the commit (see the module's docstring)."""
    team = lock_row(session, Team, parse_team_id(teamid))
    if team is None:
        raise TeamNotFound()
    return team


def _is_leader(team: Team, identity: Identity) -> bool:
    return team.leader_id == identity.subject


def _require_leader_or(team: Team, identity: Identity, action: str) -> None:
    """The leader, or staff with the event privilege `action`."""
    if not (_is_leader(team, identity) or identity.can("event", action)):
        raise Forbidden(f"only the team's leader or staff with event {action} may do this")


def _require_leader(team: Team, identity: Identity) -> None:
    if not _is_leader(team, identity):
        raise Forbidden("only the team's leader may do this")


# Teams


def create_team(session: Session, identity: Identity, name: str) -> TeamView:
    leader = Person.caller(identity)
    team = Team(name=name, leader_id=leader.user_id, leader_username=leader.username)
    session.add(team)
    session.commit()
    return TeamView(team)


def visible_team(session: Session, identity: Identity, teamid: str) -> TeamView:
    view = render_one(session, find_team(session, teamid))
    if not view.visible_to(identity):
        raise Forbidden("only the team's leader, members, invitees and staff may see it")
    return view


def rename_team(session: Session, identity: Identity, teamid: str, name: str) -> TeamView:
    team = find_team(session, teamid)
    _require_leader_or(team, identity, "update")
    team.name = name
    session.commit()
    return render_one(session, team)


def delete_team(session: Session, identity: Identity, teamid: str) -> None:
    """Cancel the team's registrations (their seats go to the waiting lists), then the
    team goes with its members and invitations."""
    _require_leader_or(find_team(session, teamid), identity, "delete")
    team = _lock_team(session, teamid)
    registrations = session.scalars(
        select(Registration).where(Registration.team_id == team.id).order_by(Registration.id)
    ).all()
    for registration in registrations:
        seats.cancel(session, registration)
    session.delete(team)
    session.commit()


def list_teams(
    session: Session, window: Window, event: str | None = None, user: str | None = None
) -> Page[TeamView]:
    """One page of teams, oldest first; `event` keeps the teams registered for it,
    `user` those the user leads or is a member of."""
    statement = select(Team).order_by(Team.id)
    if event is not None:
        registered = (
            select(Registration.team_id)
            .join(Event, Event.id == Registration.event_id)
            .where(Event.public_id == event, Registration.team_id.is_not(None))
        )
        statement = statement.where(Team.id.in_(registered))
    if user is not None:
        member_of = select(TeamMember.team_id).where(TeamMember.username == user)
        statement = statement.where(or_(Team.leader_username == user, Team.id.in_(member_of)))
    page = paginate(session, statement, window)
    if page.number > page.pages:
        raise TeamPageNotFound(page.size, page.pages)
    return Page(render(session, page.items), page.total, page.window)


# Invitations


def _same_college(first: str, second: str) -> bool:
    return first.strip().casefold() == second.strip().casefold()


def _invitee(directory: UserDirectory | None, team: Team, username: str) -> Person:
    """The invitee as an active user of the leader's college: one directory lookup for
    both, and a second only when one of them is unknown, to tell whether it was the
    leader (whose account may have been disabled since the token was issued)."""
    try:
        found = resolve_users(directory, [username, team.leader_username])
    except UnknownUsers:
        resolve_user(directory, team.leader_username, "leader")  # the leader's account gone
        raise DocumentRefusal(WRONG_USERNAME) from None
    invitee, leader = found[username], found[team.leader_username]
    if not _same_college(invitee.college_name, leader.college_name):
        raise DocumentRefusal(NOT_SAME_COLLEGE)
    return Person.of(invitee)


def _member_count(session: Session, team_id: int) -> int:
    count = session.scalar(select(func.count()).where(TeamMember.team_id == team_id))
    return int(count or 0)


def _registered_events(session: Session, team_id: int) -> list[tuple[int, int, str, int]]:
    """(registration id, event id, event publicId, event's max size) of every event the
    team is registered for."""
    rows = session.execute(
        select(Registration.id, Event.id, Event.public_id, Event.max_size)
        .join(Event, Event.id == Registration.event_id)
        .where(Registration.team_id == team_id)
        .order_by(Registration.id)
    )
    return [(row[0], row[1], row[2], row[3]) for row in rows]


def _check_room(
    session: Session, team: Team, max_team_size: int, pending: int = 0
) -> list[tuple[int, int, str, int]]:
    """Refuse when one more member would not fit: the team's registered events'
    max sizes (leader and members), and `max_team_size` (counting `pending`
    invitations too). Returns the registered events."""
    size = 1 + _member_count(session, team.id)
    if size + pending >= max_team_size:
        raise team_full()
    registered = _registered_events(session, team.id)
    for _registration_id, _event_id, public_id, max_size in registered:
        if size >= max_size:
            raise team_full(public_id)
    return registered


def invite(
    session: Session,
    directory: UserDirectory | None,
    identity: Identity,
    teamid: str,
    username: str,
    max_team_size: int,
) -> TeamView:
    """Invite a user of the leader's college (the leader only); an invitation the user
    rejected (or one of a member who left) becomes pending again."""
    team = find_team(session, teamid)
    _require_leader(team, identity)
    if username == team.leader_username:
        raise DocumentRefusal(ALREADY_MEMBER)
    invitee = _invitee(directory, team, username)
    team = _lock_team(session, teamid)
    if invitee.user_id == team.leader_id or _is_member(session, team.id, invitee.user_id):
        raise DocumentRefusal(ALREADY_MEMBER)
    invitation = _invitation(session, team.id, invitee.user_id)
    if invitation is not None and invitation.status == PENDING:
        raise DocumentRefusal(ALREADY_INVITED)
    _check_room(session, team, max_team_size, pending=_pending_count(session, team.id))
    if invitation is None:
        session.add(Invitation(team_id=team.id, user_id=invitee.user_id, username=username))
    else:
        invitation.status, invitation.username = PENDING, username
        invitation.created_at, invitation.answered_at = utcnow(), None
    session.commit()
    return render_one(session, team)


def _is_member(session: Session, team_id: int, user_id: str) -> bool:
    found = session.scalar(
        select(TeamMember.id).where(TeamMember.team_id == team_id, TeamMember.user_id == user_id)
    )
    return found is not None


def _pending_count(session: Session, team_id: int) -> int:
    count = session.scalar(
        select(func.count()).where(Invitation.team_id == team_id, Invitation.status == PENDING)
    )
    return int(count or 0)


def _invitation(session: Session, team_id: int, user_id: str) -> Invitation | None:
    return session.scalars(
        select(Invitation).where(Invitation.team_id == team_id, Invitation.user_id == user_id)
    ).first()


@dataclass(frozen=True)
class InvitationView:
    teamid: str
    name: str
    leader: str
    status: str


def invitations_of(session: Session, identity: Identity, username: str) -> list[InvitationView]:
    """A user's invitations, newest first (that user, or staff with event read)."""
    if identity.username == username:
        whose = Invitation.user_id == identity.subject
    elif identity.can("event", "read"):
        if not plausible_username(username):
            return []
        whose = Invitation.username == username
    else:
        raise Forbidden("only the user and staff may see a user's invitations")
    rows = session.execute(
        select(Team.id, Team.name, Team.leader_username, Invitation.status)
        .join(Team, Team.id == Invitation.team_id)
        .where(whose)
        .order_by(Invitation.created_at.desc(), Invitation.id.desc())
        .limit(MAX_INVITATIONS_LISTED)
    )
    return [InvitationView(str(row[0]), row[1], row[2], row[3]) for row in rows]


def _own_pending_invitation(
    session: Session, identity: Identity, username: str, teamid: str
) -> tuple[Team, Invitation]:
    """The caller's pending invitation to the team, its row locked."""
    if identity.username != username:
        raise Forbidden("only the invited user may answer an invitation")
    team = _lock_team(session, teamid)
    invitation = _invitation(session, team.id, identity.subject)
    if invitation is None:
        raise InvitationNotFound()
    if invitation.status != PENDING:
        raise DocumentRefusal(ALREADY_ANSWERED[invitation.status])
    return team, invitation


def accept(
    session: Session, identity: Identity, username: str, teamid: str, max_team_size: int
) -> Team:
    """Join the team: a member row, and a participant of each of the team's registrations."""
    team, invitation = _own_pending_invitation(session, identity, username, teamid)
    if _is_member(session, team.id, identity.subject):
        raise DocumentRefusal(ALREADY_MEMBER)
    registered = _check_room(session, team, max_team_size)
    _refuse_clash(session, identity.subject, registered)
    member = Person.caller(identity)
    try:
        with session.begin_nested():
            session.add(TeamMember(team_id=team.id, user_id=member.user_id, username=username))
            session.add_all(
                Participant(
                    registration_id=registration_id,
                    event_id=event_id,
                    user_id=member.user_id,
                    username=username,
                )
                for registration_id, event_id, _public_id, _max_size in registered
            )
    except IntegrityError:
        # Registered for one of these events a moment ago, alone or with another team.
        _refuse_clash(session, identity.subject, registered)
        raise DocumentRefusal("Already registered for an event of this team") from None
    invitation.status, invitation.answered_at = ACCEPTED, utcnow()
    session.commit()
    return team


def _refuse_clash(
    session: Session, user_id: str, registered: Iterable[tuple[int, int, str, int]]
) -> None:
    """Refuse when the user takes part in one of these events already."""
    public_ids = {event_id: public_id for _r, event_id, public_id, _m in registered}
    if not public_ids:
        return
    clash = session.scalar(
        select(Participant.event_id)
        .where(Participant.user_id == user_id, Participant.event_id.in_(public_ids))
        .order_by(Participant.event_id)
        .limit(1)
    )
    if clash is not None:
        raise already_registered(public_ids[clash])


def reject(session: Session, identity: Identity, username: str, teamid: str) -> Team:
    team, invitation = _own_pending_invitation(session, identity, username, teamid)
    invitation.status, invitation.answered_at = REJECTED, utcnow()
    session.commit()
    return team


def withdraw_invitation(session: Session, identity: Identity, teamid: str, username: str) -> None:
    """The leader takes back a pending invitation."""
    team = find_team(session, teamid)
    _require_leader(team, identity)
    if not plausible_username(username):
        raise DocumentRefusal(DOES_NOT_EXIST)
    invitation = session.scalars(
        select(Invitation).where(Invitation.team_id == team.id, Invitation.username == username)
    ).first()
    if invitation is None:
        raise DocumentRefusal(DOES_NOT_EXIST)
    if invitation.status != PENDING:
        raise DocumentRefusal(ALREADY_ANSWERED[invitation.status])
    session.delete(invitation)
    session.commit()


def remove_member(session: Session, identity: Identity, teamid: str, username: str) -> None:
    """The leader (or staff with event update) removes a member, or a member leaves.
    They stop taking part in the team's registrations; their accepted invitation goes
    too, so they can be invited again."""
    team = find_team(session, teamid)
    leaving = identity.username == username
    if not leaving:
        _require_leader_or(team, identity, "update")
    if username == team.leader_username or (leaving and _is_leader(team, identity)):
        raise DocumentRefusal(LEADER_STAYS)
    if not plausible_username(username):
        raise DocumentRefusal(NOT_A_MEMBER)
    team = _lock_team(session, teamid)
    whose = TeamMember.user_id == identity.subject if leaving else TeamMember.username == username
    member = session.scalars(select(TeamMember).where(TeamMember.team_id == team.id, whose)).first()
    if member is None:
        raise DocumentRefusal(NOT_A_MEMBER)
    team_registrations = select(Registration.id).where(Registration.team_id == team.id)
    session.execute(
        delete(Participant)
        .where(
            Participant.user_id == member.user_id,
            Participant.registration_id.in_(team_registrations),
        )
        .execution_options(synchronize_session=False)
    )
    session.execute(
        delete(Invitation)
        .where(Invitation.team_id == team.id, Invitation.user_id == member.user_id)
        .execution_options(synchronize_session=False)
    )
    session.delete(member)
    session.commit()


def plausible_username(username: str) -> bool:
    """Whether a path segment could be a stored username (no control characters, which
    PostgreSQL refuses in text, and not longer than the column)."""
    return len(username) <= USERNAME_LENGTH and all(ord(c) >= 32 for c in username)
