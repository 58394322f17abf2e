"""HTTP routes of registrations: parse, call service.py, serialize."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import Response, current_app, stream_with_context

from events_service.context import events_context
from events_service.errors import Forbidden
from events_service.models import Registration, db
from events_service.people import Person
from events_service.registrations import export, service
from events_service.registrations.schemas import (
    CSV,
    RegisteredSchema,
    RegisterSchema,
    RegistrationListSchema,
    RegistrationSchema,
    RegistrationsQuerySchema,
    StatusChangeSchema,
)
from servicekit import Blueprint, require_identity
from servicekit.db import utcnow
from servicekit.pagination import page_window

BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]
EVENT = "/events/<public_id>"
REGISTRATION = EVENT + "/registrations/<registration_id>"

blp = Blueprint(
    "registrations", __name__, description="Registrations for events: seats, waiting list, payment."
)


@blp.route(EVENT + "/register/", methods=["POST"])
@blp.arguments(RegisterSchema, location="json_or_form")
@blp.response(201, RegisteredSchema)
@blp.doc(security=BEARER)
def register(data: dict[str, Any], public_id: str) -> Registration:
    """Register yourself (single event) or your team (team event, `teamId`; its leader)."""
    caller = Person.caller(require_identity())
    session = db.session()
    event = service.find_event(session, public_id)
    return service.register(session, event, caller, data["team_id"], utcnow())


@blp.route(EVENT + "/registrations", methods=["GET"])
@blp.arguments(RegistrationsQuerySchema, location="query")
@blp.response(200, RegistrationListSchema)
@blp.doc(security=BEARER)
def list_registrations(query: dict[str, Any], public_id: str) -> dict[str, Any] | Response:
    """The event's registrations in order of arrival (staff who may read events);
    `?format=csv` streams one row per participant."""
    service.check_may_list(require_identity())
    session = db.session()
    event = service.find_event(session, public_id)
    if query["format"] == CSV:
        filename = export.filename(event)
        directory = events_context(current_app).directory
        return _csv_response(export.registrations_csv(db.session, event.id, directory), filename)
    page = service.list_registrations(session, event, page_window(query))
    return {
        "event_public_id": event.public_id,
        "event_type": "team" if event.team_event else "single",
        "registrations": page.items,
        "pages": page.pages,
        "current_page": page.number,
    }


@blp.route(REGISTRATION, methods=["GET"])
@blp.response(200, RegistrationSchema)
@blp.doc(security=BEARER)
def get_registration(public_id: str, registration_id: str) -> Registration:
    """One registration (the registrant, the team, staff who may read events)."""
    identity = require_identity()
    session = db.session()
    registration = _registration(public_id, registration_id)
    service.check_may_view(session, identity, registration)
    return registration


@blp.route(REGISTRATION, methods=["PUT"])
@blp.arguments(StatusChangeSchema)
@blp.response(200, RegistrationSchema)
@blp.doc(security=BEARER)
def change_status(data: dict[str, str], public_id: str, registration_id: str) -> Registration:
    """Confirm a registration's payment (staff who may update events)."""
    identity = require_identity()
    if not identity.can("event", "update"):
        raise Forbidden("missing privilege: event update")
    registration = _registration(public_id, registration_id)
    return service.change_status(db.session(), registration, data["status"], utcnow())


@blp.route(REGISTRATION, methods=["DELETE"])
@blp.response(204)
@blp.doc(security=BEARER)
def cancel(public_id: str, registration_id: str) -> None:
    """Cancel (the registered user, the team's leader, staff who may delete events); the
    seat goes to the first waiting registration."""
    identity = require_identity()
    session = db.session()
    registration = _registration(public_id, registration_id)
    service.check_may_cancel(session, identity, registration)
    service.cancel(session, registration)


def _registration(public_id: str, registration_id: str) -> Registration:
    session = db.session()
    event = service.find_event(session, public_id)
    return service.find_registration(session, event, registration_id)


def _csv_response(chunks: Iterator[str], filename: str) -> Response:
    response = Response(stream_with_context(chunks), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response
