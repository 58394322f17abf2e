"""The staff map page: GET /datapoints/map."""

from __future__ import annotations

from servicekit import Blueprint

blp = Blueprint("map_page", __name__, description=__doc__)
