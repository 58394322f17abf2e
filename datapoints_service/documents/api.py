"""CSV uploads: POST /api/v2/document/, PUT and DELETE /api/v2/document/<id>."""

from __future__ import annotations

from servicekit import Blueprint

blp = Blueprint(
    "documents",
    __name__,
    description=__doc__,
)
