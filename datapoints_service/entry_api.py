"""Data entry: POST and GET /api/v1/dataentry (and /api/v1/datapointentry)."""

from __future__ import annotations

from servicekit import Blueprint

blp = Blueprint(
    "dataentry",
    __name__,
    description=__doc__,
)
