"""HTTP routes of teams and invitations: parse, call service.py, serialize."""

from __future__ import annotations

from typing import Any

from flask import current_app
from sqlalchemy.orm import Session

from events_service.context import EventsContext, events_context
from events_service.errors import Forbidden
from events_service.models import Team, db
from events_service.teams import service
from events_service.teams.schemas import (
    AnswerSchema,
    InvitationSchema,
    InviteSchema,
    TeamNameSchema,
    TeamSchema,
    TeamsPageSchema,
    TeamsQuerySchema,
)
from servicekit import Blueprint, Identity, require_identity
from servicekit.pagination import Page, page_window

BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]

blp = Blueprint("teams", __name__, description="Teams and invitations.")


@blp.before_request
def signed_in() -> None:
    """Every route here needs a signed-in caller: 401 before the body is looked at."""
    require_identity()


def session() -> Session:
    return db.session()


def context() -> EventsContext:
    return events_context(current_app)


def caller() -> Identity:
    return require_identity()


def answer(team: Team, status: str) -> dict[str, str]:
    return {"status": status, "teamid": str(team.id), "name": team.name}


# Teams


@blp.route("/teams/", methods=["POST"])
@blp.arguments(TeamNameSchema)
@blp.response(201, TeamSchema)
@blp.doc(security=BEARER)
def create_team(data: dict[str, Any]) -> service.TeamView:
    """Create a team led by the caller (any signed-in user)."""
    return service.create_team(session(), caller(), data["name"])


@blp.route("/teams/", methods=["GET"])
@blp.arguments(TeamsQuerySchema, location="query")
@blp.response(200, TeamsPageSchema)
@blp.doc(security=BEARER)
def list_teams(query: dict[str, Any]) -> Page[service.TeamView]:
    """One page of teams, oldest first (staff with event read)."""
    if not caller().can("event", "read"):
        raise Forbidden("missing privilege: event read")
    return service.list_teams(
        session(), page_window(query), event=query.get("event"), user=query.get("user")
    )


@blp.route("/teams/<teamid>", methods=["GET"])
@blp.response(200, TeamSchema)
@blp.doc(security=BEARER)
def get_team(teamid: str) -> service.TeamView:
    """A team (its leader, members, invitees, and staff with event read)."""
    return service.visible_team(session(), caller(), teamid)


@blp.route("/teams/<teamid>", methods=["PUT"])
@blp.arguments(TeamNameSchema)
@blp.response(200, TeamSchema)
@blp.doc(security=BEARER)
def rename_team(data: dict[str, Any], teamid: str) -> service.TeamView:
    """Rename a team (its leader, or staff with event update)."""
    return service.rename_team(session(), caller(), teamid, data["name"])


@blp.route("/teams/<teamid>", methods=["DELETE"])
@blp.response(204)
@blp.doc(security=BEARER)
def delete_team(teamid: str) -> None:
    """Delete a team and cancel its registrations (its leader, or staff with event delete)."""
    service.delete_team(session(), caller(), teamid)


# Members and invitations


@blp.route("/teams/<teamid>/invitations", methods=["POST"])
@blp.arguments(InviteSchema)
@blp.response(201, TeamSchema)
@blp.doc(security=BEARER)
def invite(data: dict[str, str], teamid: str) -> service.TeamView:
    """Invite a user of the leader's college (the leader only)."""
    return service.invite(
        session(),
        context().directory,
        caller(),
        teamid,
        data["username"],
        context().settings.max_team_size,
    )


@blp.route("/teams/<teamid>/invitations/<username>", methods=["DELETE"])
@blp.response(204)
@blp.doc(security=BEARER)
def withdraw_invitation(teamid: str, username: str) -> None:
    """Take back a pending invitation (the leader only)."""
    service.withdraw_invitation(session(), caller(), teamid, username)


@blp.route("/teams/<teamid>/<username>", methods=["DELETE"])
@blp.response(204)
@blp.doc(security=BEARER)
def remove_member(teamid: str, username: str) -> None:
    """Remove a member (the leader, or staff with event update), or leave (the member)."""
    service.remove_member(session(), caller(), teamid, username)


@blp.route("/users/<username>/invitation", methods=["GET"])
@blp.response(200, InvitationSchema(many=True))
@blp.doc(security=BEARER)
def invitations(username: str) -> list[service.InvitationView]:
    """A user's invitations, newest first (that user, or staff with event read)."""
    return service.invitations_of(session(), caller(), username)


@blp.route("/users/<username>/invitation/<teamid>/accept/", methods=["PUT"])
@blp.response(200, AnswerSchema)
@blp.doc(security=BEARER)
def accept(username: str, teamid: str) -> dict[str, str]:
    """Join the team (the invited user only)."""
    team = service.accept(session(), caller(), username, teamid, context().settings.max_team_size)
    return answer(team, "invitation accepted")


@blp.route("/users/<username>/invitation/<teamid>/reject/", methods=["PUT"])
@blp.response(200, AnswerSchema)
@blp.doc(security=BEARER)
def reject(username: str, teamid: str) -> dict[str, str]:
    """Decline the invitation (the invited user only)."""
    team = service.reject(session(), caller(), username, teamid)
    return answer(team, "invitation rejected")
