"""Data entry: POST and GET /api/v1/dataentry (and /api/v1/datapointentry, the same).

The entry page's two calls: store what a person typed (one cell or a list of cells,
all or nothing) and read back the stored values of a region, campaign and indicator
selection. The document names the route `dataentry`; the gateway's table also carries
`datapointentry` (the document's v1 paragraph), so both paths are served by the same
handlers. Every path works with and without its trailing slash.
"""

from __future__ import annotations

from flask import Response, current_app, jsonify, request
from sqlalchemy.exc import IntegrityError

from datapoints_service import entry, rollup, values
from datapoints_service.answers import csv_attachment, envelope
from datapoints_service.context import datapoints_context
from datapoints_service.engine.resource import Caller
from datapoints_service.locking import take_write_lock
from datapoints_service.models import db
from datapoints_service.users import ensure_user
from servicekit import Blueprint, require_identity
from servicekit.bodies import json_body

blp = Blueprint(
    "dataentry",
    __name__,
    url_prefix="/api/v1",
    description="Data entry: stored values by region, campaign and indicator.",
)


@blp.route("/dataentry", methods=["POST"])
@blp.route("/datapointentry", methods=["POST"])
def enter_values() -> tuple[Response, int]:
    """Store or remove values (data entry).

    One `{"region_id", "campaign_id", "indicator_id", "value"}` object or a list of at
    most 1,000, all or nothing (`"value": null` removes the stored value); 201 with each
    cell as stored now."""
    caller = Caller(require_identity())
    entered = entry.parse_body(json_body())
    session = db.session()
    take_write_lock(session)
    rollup.lock(session)  # entries one at a time from here (PostgreSQL), users copy too
    entry.check_references(session, entered)
    entry.check_writable(session, caller, entered)
    user_id = ensure_user(session, caller.identity)
    try:
        values.write_cells(session, entered.cells, changed_by_id=user_id)
        objects = entry.stored_objects(session, entered)
        session.commit()
    except IntegrityError:
        # A region, campaign or indicator deleted since the check (PostgreSQL, where the
        # check does not hold a lock against deletes): say which, as the check would.
        session.rollback()
        entry.check_references(session, entered)
        raise
    return jsonify({"objects": objects, "meta": None, "error": None}), 201


@blp.route("/dataentry", methods=["GET"])
@blp.route("/datapointentry", methods=["GET"])
def list_values() -> Response:
    """Stored values the caller may read.

    Stored values only, not computed ones: `region__in`, `campaign__in`, `indicator__in`
    (ids), `limit` (20; at most 1,000), `offset`, `format` (`json` or `csv`: every matching
    value unless `limit` or `offset` is given); ordered by region, campaign, indicator."""
    caller = Caller(require_identity())
    query = entry.parse_list_query(request.args.to_dict(flat=False))
    if query.format == "csv":
        return _csv(caller, query)
    total, objects = entry.page(db.session(), caller, query)
    return envelope(query.window, total, objects, query.parameters)


def _csv(caller: Caller, query: entry.ListQuery) -> Response:
    batch = datapoints_context(current_app).settings.csv_batch_rows
    chunks = entry.csv_chunks(db.session(), caller, query, batch)
    return csv_attachment(chunks, "dataentry")
