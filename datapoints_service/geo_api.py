"""A map of the regions: `GET /api/v1/geo`, a GeoJSON FeatureCollection (what it holds:
geo.py)."""

from __future__ import annotations

from typing import Any

from flask import Response, request, stream_with_context

from datapoints_service.engine.resource import Caller
from datapoints_service.geo import (
    DEFAULT_LIMIT,
    MAX_DEPTH_LEVEL,
    MAX_LIMIT,
    MAX_OFFSET,
    feature_collection,
    parse_geo_query,
)
from datapoints_service.models import db
from servicekit import Blueprint, require_identity

GEOJSON = "application/geo+json"

blp = Blueprint(
    "geo",
    __name__,
    url_prefix="/api/v1",
    description="A map of the regions the caller may read, as GeoJSON, with values.",
)


def _parameter(name: str, description: str, **schema: Any) -> dict[str, Any]:
    return {"in": "query", "name": name, "schema": schema, "description": description}


INT32 = {"type": "integer", "format": "int32"}
OPENAPI = {
    "parameters": [
        _parameter("region__in", "region ids, comma-separated", type="string"),
        _parameter("parent_region_id", "the regions directly under this one", **INT32),
        _parameter(
            "depth_level",
            "levels under each permitted region (0: all)",
            type="integer",
            minimum=0,
            maximum=MAX_DEPTH_LEVEL,
        ),
        _parameter("indicator_id", "with campaign_id: each region's value", **INT32),
        _parameter("campaign_id", "with indicator_id: each region's value", **INT32),
        _parameter(
            "limit",
            f"features per page, {DEFAULT_LIMIT} by default; above {MAX_LIMIT}: {MAX_LIMIT}",
            type="integer",
            minimum=1,
        ),
        _parameter("offset", "features to skip", type="integer", minimum=0, maximum=MAX_OFFSET),
    ],
    "responses": {
        "200": {
            "description": "a GeoJSON FeatureCollection, with `meta` (limit, offset, total_count)",
            "content": {GEOJSON: {"schema": {"type": "object"}}},
        },
        "400": {"description": "bad parameters, each named in `errors`"},
    },
}


@blp.route("/geo", methods=["GET"])
@blp.doc(**OPENAPI)
def geo() -> Response:
    """The regions the caller may read as a GeoJSON FeatureCollection (filters, values,
    `limit` and `offset`)."""
    caller = Caller(require_identity())
    query = parse_geo_query(request.args.to_dict(flat=False))
    chunks = feature_collection(db.session(), caller, query)
    response = Response(stream_with_context(chunks), mimetype=GEOJSON)
    response.headers["Cache-Control"] = "no-store"
    return response
