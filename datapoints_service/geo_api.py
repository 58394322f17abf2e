"""A map of the regions: GET /api/v1/geo (GeoJSON)."""

from __future__ import annotations

from servicekit import Blueprint

blp = Blueprint("geo", __name__, description=__doc__)
