"""Datapoints read back per region and campaign, stored or rolled up: GET /api/v1/datapoint/."""

from __future__ import annotations

from servicekit import Blueprint

blp = Blueprint(
    "datapoint",
    __name__,
    description=__doc__,
)
