"""The two shapes every listing of this service answers in: the document's JSON envelope,
and a streamed CSV attachment."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from flask import Response, jsonify, stream_with_context

from servicekit.pagination import Window


def envelope(window: Window, total: int, objects: Any, parameters: Mapping[str, str]) -> Response:
    """`{"meta": {limit, offset, total_count, parameters_requested}, "objects", "errors"}`."""
    meta = {
        "limit": window.limit,
        "offset": window.offset,
        "total_count": total,
        "parameters_requested": parameters,
    }
    return jsonify({"meta": meta, "objects": objects, "errors": {}})


def csv_attachment(chunks: Iterator[str], name: str) -> Response:
    """`chunks` streamed as `<name>.csv` (each chunk written as it is made, in the
    request's context)."""
    response = Response(stream_with_context(chunks), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    response.headers["Cache-Control"] = "no-store"
    return response
