"""HTTP routes of categories and tags: parse, call service.py, serialize."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from events_service.catalogue import service
from events_service.catalogue.schemas import DescriptionSchema, EntrySchema
from events_service.catalogue.service import CATEGORIES, TAGS, Entry, Kind
from events_service.events.access import event_privilege
from events_service.models import db
from servicekit import Blueprint

blp = Blueprint("catalogue", __name__, description="Categories and tags of events.")

BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]
KINDS = {"category": CATEGORIES, "tags": TAGS}


def _register(path: str, kind: Kind, noun: str) -> None:
    """The four routes of one kind (`/events/category` or `/events/tags`)."""

    @blp.route(f"/events/{path}", methods=["GET"], endpoint=f"list_{path}")
    @blp.response(200, EntrySchema(many=True))
    @blp.doc(summary=f"Every {noun}, by name (anyone, no token).")
    def list_entries() -> Sequence[Entry]:
        return service.list_entries(db.session, kind)

    @blp.route(f"/events/{path}", methods=["POST"], endpoint=f"create_{path}")
    @event_privilege("create")
    @blp.arguments(EntrySchema)
    @blp.response(201, EntrySchema)
    @blp.doc(security=BEARER, summary=f"Add a {noun} (staff with `event: create`).")
    def create_entry(data: dict[str, Any]) -> Entry:
        return service.create_entry(db.session, kind, data["name"], data["description"])

    @blp.route(f"/events/{path}/<name>", methods=["PUT"], endpoint=f"update_{path}")
    @event_privilege("update")
    @blp.arguments(DescriptionSchema)
    @blp.response(202, EntrySchema)
    @blp.doc(security=BEARER, summary=f"Change a {noun}'s description (`event: update`).")
    def update_entry(data: dict[str, Any], name: str) -> Entry:
        return service.update_entry(db.session, kind, name, data["description"])

    @blp.route(f"/events/{path}/<name>", methods=["DELETE"], endpoint=f"delete_{path}")
    @event_privilege("delete")
    @blp.response(204)
    @blp.doc(security=BEARER, summary=f"Delete a {noun} no event uses (`event: delete`).")
    def delete_entry(name: str) -> None:
        service.delete_entry(db.session, kind, name)


for _path, _kind in KINDS.items():
    _register(_path, _kind, "category" if _kind is CATEGORIES else "tag")
