"""HTTP routes of staffing: parse, call service.py, serialize.

Any signed-in user reads an event's organisers and volunteers; changing them takes the
`event: update` privilege (a superuser has every privilege). Both are checked before the
request's body is read.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, request

from events_service.context import events_context
from events_service.errors import Forbidden
from events_service.models import Organiser, Volunteer, db
from events_service.staffing import service
from events_service.staffing.schemas import (
    OrganiserInSchema,
    OrganiserSchema,
    TasksSchema,
    VolunteerInSchema,
    VolunteerSchema,
    VolunteerTasksSchema,
)
from servicekit import Blueprint, require_identity
from servicekit.users import UserDirectory

BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]
READS = ("GET", "HEAD", "OPTIONS")

blp = Blueprint(
    "staffing", __name__, url_prefix="/events", description="Organisers and volunteers of events."
)


@blp.before_request
def authorize() -> None:
    if request.method == "OPTIONS":
        return
    identity = require_identity()
    if request.method not in READS and not identity.can("event", "update"):
        raise Forbidden("changing organisers and volunteers takes the event update privilege")


def directory() -> UserDirectory | None:
    return events_context(current_app).directory


# Organisers


@blp.route("/<public_id>/organisers", methods=["GET"])
@blp.response(200, OrganiserSchema(many=True))
@blp.doc(security=BEARER)
def list_organisers(public_id: str) -> list[Organiser]:
    """The event's organisers, in the order they were added (any signed-in user)."""
    return service.organisers(db.session(), public_id)


@blp.route("/<public_id>/organisers", methods=["POST"])
@blp.arguments(OrganiserInSchema)
@blp.response(201, OrganiserSchema(many=True))
@blp.doc(security=BEARER)
def add_organiser(data: dict[str, Any], public_id: str) -> list[Organiser]:
    """Add an organiser, or change an organiser's role; answers every organiser."""
    return service.add_organiser(
        db.session(), directory(), public_id, data["username"], data["role"]
    )


@blp.route("/<public_id>/organisers/<username>", methods=["DELETE"])
@blp.response(204)
@blp.doc(security=BEARER)
def remove_organiser(public_id: str, username: str) -> None:
    service.remove_organiser(db.session(), public_id, username)


# Volunteers


@blp.route("/<public_id>/volunteers", methods=["GET"])
@blp.response(200, VolunteerSchema(many=True))
@blp.doc(security=BEARER)
def list_volunteers(public_id: str) -> list[Volunteer]:
    """The event's volunteers and their tasks, in the order they were added."""
    return service.volunteers(db.session(), public_id)


@blp.route("/<public_id>/volunteers", methods=["POST"])
@blp.arguments(VolunteerInSchema)
@blp.response(201, VolunteerSchema(many=True))
@blp.doc(security=BEARER)
def add_volunteer(data: dict[str, Any], public_id: str) -> list[Volunteer]:
    """Add a volunteer, or replace a volunteer's tasks; answers every volunteer."""
    return service.add_volunteer(
        db.session(), directory(), public_id, data["username"], data["tasks"]
    )


@blp.route("/<public_id>/volunteers/<username>", methods=["PUT"])
@blp.arguments(TasksSchema)
@blp.response(200, VolunteerTasksSchema)
@blp.doc(security=BEARER)
def set_tasks(data: dict[str, Any], public_id: str, username: str) -> service.VolunteerTasks:
    """Replace a volunteer's tasks."""
    return service.set_tasks(db.session(), public_id, username, data["tasks"])


@blp.route("/<public_id>/volunteers/<username>", methods=["DELETE"])
@blp.response(204)
@blp.doc(security=BEARER)
def remove_volunteer(public_id: str, username: str) -> None:
    service.remove_volunteer(db.session(), public_id, username)
