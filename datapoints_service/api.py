"""datapoints_service's HTTP API: `/api/v2/<resource>/` and `/api/v2/<resource>/<id>` for
every resource datapoints_service/resources.py declares (the engine serves them alike).

- GET: the document's envelope (`meta`, `objects`, `errors`), or CSV with `format=csv`.
- POST: the document's insert (201 `{"objects": {"new_id": N}, "meta": null, "error":
  null}`), update (a body with `id`) and delete (`{"id": N, "delete": true}`).
- PUT `/<id>`: update; DELETE `/<id>`: 204.
"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, jsonify, request

from datapoints_service.answers import csv_attachment, envelope
from datapoints_service.context import datapoints_context
from datapoints_service.engine import reading, writes
from datapoints_service.engine.errors import InvalidValues, NotFound, ReadOnly
from datapoints_service.engine.fields import MAX_INT
from datapoints_service.engine.listing import ListQuery, parse_query
from datapoints_service.engine.reading import Listing
from datapoints_service.engine.rendering import csv_lines
from datapoints_service.engine.resource import Caller, Resource
from datapoints_service.locking import take_write_lock
from datapoints_service.models import db
from datapoints_service.resources import RESOURCES
from datapoints_service.users import ensure_user
from servicekit import Blueprint, require_identity
from servicekit.bodies import json_body

blp = Blueprint(
    "datapoints",
    __name__,
    url_prefix="/api/v2",
    description="Health-campaign data: regions, indicators, campaigns, their permissions.",
)


@blp.route("/<name>", methods=["GET"])
def list_objects(name: str) -> Response:
    """A page of objects (filters, `order_by`, `limit`, `offset`, `format`, ...)."""
    resource, caller = _resource(name), _caller()
    query = parse_query(resource, request.args.to_dict(flat=False))
    if query.format == "csv":
        return _csv(resource, caller, query)
    listing = reading.page(db.session(), RESOURCES, resource, caller, query)
    return _envelope(query, listing)


@blp.route("/<name>/<int:row_id>", methods=["GET"])
def get_object(name: str, row_id: int) -> Response:
    resource, caller, row_id = _resource(name), _caller(), _row(row_id)
    query = parse_query(resource, request.args.to_dict(flat=False))
    if query.format == "csv":
        reading.one(db.session(), RESOURCES, resource, caller, query, row_id)
        return _csv(resource, caller, query, row_id)
    return _envelope(query, reading.one(db.session(), RESOURCES, resource, caller, query, row_id))


@blp.route("/<name>", methods=["POST"])
def post(name: str) -> tuple[Response, int]:
    """Insert, or (a body with `id`) update, or (with `"delete": true`) delete."""
    resource, caller = _resource(name), _caller()
    _refuse_read_only(resource)
    take_write_lock(db.session())  # before ensure_user or the engine reads
    body = dict(json_body(require_object=True))
    if "delete" in body:
        return _post_delete(resource, caller, body)
    if "id" in body:
        row_id = _body_id(body["id"])
        author = _author(resource, caller)
        writes.update(db.session(), RESOURCES, resource, caller, row_id, body, author)
        return _written(resource, caller, row_id), 200
    new_id = writes.insert(
        db.session(), RESOURCES, resource, caller, body, owner_id=_author(resource, caller)
    )
    return jsonify({"objects": {"new_id": new_id}, "meta": None, "error": None}), 201


@blp.route("/<name>/<int:row_id>", methods=["PUT"])
def put(name: str, row_id: int) -> Response:
    resource, caller, row_id = _resource(name), _caller(), _row(row_id)
    _refuse_read_only(resource)
    take_write_lock(db.session())  # before ensure_user or the engine reads
    body = dict(json_body(require_object=True))
    author = _author(resource, caller)
    writes.update(db.session(), RESOURCES, resource, caller, row_id, body, author)
    return _written(resource, caller, row_id)


@blp.route("/<name>/<int:row_id>", methods=["DELETE"])
def delete(name: str, row_id: int) -> tuple[str, int]:
    resource, caller, row_id = _resource(name), _caller(), _row(row_id)
    _refuse_read_only(resource)
    take_write_lock(db.session())  # before ensure_user or the engine reads
    writes.delete(db.session(), RESOURCES, resource, caller, row_id)
    return "", 204


def _row(row_id: int) -> int:
    """An id from the path: one no row can have is not found (never a database error)."""
    if row_id > MAX_INT:
        raise NotFound(f"no object {row_id}")
    return row_id


def _resource(name: str) -> Resource:
    resource = RESOURCES.get(name)
    if resource is None or not resource.routed:
        raise NotFound(f"no resource {name!r}")
    return resource


def _caller() -> Caller:
    return Caller(require_identity())


def _refuse_read_only(resource: Resource) -> None:
    if resource.read_only is not None:
        raise ReadOnly(resource.read_only)


def _author(resource: Resource, caller: Caller) -> int | None:
    """The caller's user id, for the resources whose rows record who wrote them."""
    if resource.owner is None and resource.author is None:
        return None
    return ensure_user(db.session(), caller.identity)


def _body_id(value: Any) -> int:
    if isinstance(value, bool) or not str(value).isdigit() or int(value) > MAX_INT:
        raise InvalidValues(errors={"id": "not an id"})
    return int(value)


def _post_delete(resource: Resource, caller: Caller, body: dict[str, Any]) -> tuple[Response, int]:
    """The document's delete by POST: exactly `{"id": N, "delete": true}`."""
    if body.get("delete") is not True or set(body) != {"id", "delete"}:
        raise InvalidValues(errors={"delete": 'a delete is exactly {"id": N, "delete": true}'})
    row_id = _body_id(body["id"])
    writes.delete(db.session(), RESOURCES, resource, caller, row_id)
    return jsonify({"objects": {"deleted_id": row_id}, "meta": None, "error": None}), 200


def _written(resource: Resource, caller: Caller, row_id: int) -> Response:
    """The object as it is now (the envelope of `GET /<id>`); an empty envelope when the
    caller no longer sees it (a region moved out of their own permission)."""
    query = parse_query(resource, {})
    try:
        return _envelope(
            query, reading.one(db.session(), RESOURCES, resource, caller, query, row_id)
        )
    except NotFound:
        return _envelope(query, Listing(0, []))


def _envelope(query: ListQuery, listing: Listing) -> Response:
    return envelope(query.window, listing.total, listing.objects, query.parameters)


def _csv(
    resource: Resource, caller: Caller, query: ListQuery, row_id: int | None = None
) -> Response:
    if row_id is not None:
        query = reading.only(resource, query, row_id)
    batch = datapoints_context(current_app).settings.csv_batch_rows
    objects = reading.stream(db.session(), RESOURCES, resource, caller, query, batch)
    return csv_attachment(csv_lines(resource, objects), resource.name)
