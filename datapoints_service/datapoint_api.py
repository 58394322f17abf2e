"""Datapoints read back per region and campaign, stored or rolled up: GET /api/v1/datapoint/.

One object per (region, campaign) pair with a known value for the selected indicators,
every selected indicator in it (`value` null where nothing is known), or with
`no_pivot=1` one object per known value. `format=csv` streams the document's "Custom
Serialization": a column per indicator, names instead of ids. Read only: no write lock.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

from flask import Response, current_app, request
from sqlalchemy import text
from sqlalchemy.orm import Session

from datapoints_service.answers import csv_attachment, envelope
from datapoints_service.context import datapoints_context
from datapoints_service.datapoint_query import (
    DatapointQuery,
    Pair,
    Selection,
    Value,
    batches,
    lookup_values,
    parse,
)
from datapoints_service.engine.rendering import csv_cell
from datapoints_service.engine.resource import Caller
from datapoints_service.models import db
from servicekit import Blueprint, require_identity
from servicekit.pagination import Window

blp = Blueprint(
    "datapoint",
    __name__,
    url_prefix="/api/v1/datapoint",
    description=__doc__,
)

IndicatorNames = dict[int, str]  # id -> name, by id


@blp.route("/", methods=["GET"])
def datapoints() -> Response:
    """Values by region and campaign (`indicator__in`, `region__in`, `campaign__in`,
    `campaign_start`, `campaign_end`, `limit`, `offset`, `format`, `no_pivot`)."""
    caller = Caller(require_identity())
    query = parse(request.args.to_dict(flat=False))
    session = db.session()
    _serial_plans(session)
    selection = Selection(caller, query)
    indicators: IndicatorNames = {
        int(row[0]): str(row[1]) for row in session.execute(selection.indicators())
    }
    selection = selection.narrowed_to(list(indicators))
    if query.format == "csv":
        return _csv(session, selection, indicators)
    if query.no_pivot:
        total, objects = _value_page(session, selection)
    else:
        total, objects = _pair_page(session, selection, list(indicators))
    return _envelope(query, total, objects)


# JSON


def _pair_page(
    session: Session, selection: Selection, indicator_ids: list[int]
) -> tuple[int, list[dict[str, Any]]]:
    total = int(session.scalar(selection.pair_count()) or 0)
    page = selection.pairs(selection.query.window)
    pairs: list[Pair] = [(int(row[0]), int(row[1])) for row in session.execute(page)]
    by_pair = _by_pair(lookup_values(session, selection, pairs))
    return total, [_pair_object(pair, indicator_ids, by_pair.get(pair, {})) for pair in pairs]


def _pair_object(pair: Pair, indicator_ids: list[int], known: dict[int, Value]) -> dict[str, Any]:
    return {
        "region": pair[0],
        "campaign": pair[1],
        "indicators": [
            _indicator(indicator_id, known.get(indicator_id)) for indicator_id in indicator_ids
        ],
    }


def _indicator(indicator_id: int, value: Value | None) -> dict[str, Any]:
    if value is None:
        return {"indicator": indicator_id, "value": None, "is_agg": False}
    return {"indicator": indicator_id, "value": value.value, "is_agg": value.is_agg}


def _value_page(session: Session, selection: Selection) -> tuple[int, list[dict[str, Any]]]:
    total = int(session.scalar(selection.value_count()) or 0)
    rows = session.execute(selection.values(selection.query.window))
    objects = [
        {
            "region": int(row[0]),
            "campaign": int(row[1]),
            "indicators": [
                {"indicator": int(row[2]), "value": float(row[3]), "is_agg": bool(row[4])}
            ],
        }
        for row in rows
    ]
    return total, objects


def _serial_plans(session: Session) -> None:
    """No parallel workers for this read's statements (PostgreSQL). Each is a few
    milliseconds of index searches, and starting workers cost more than that: the four
    statements of a country-and-provinces read took 34 ms planned in parallel, 16 ms
    without (bench/datapoints_values.py --explain)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))


def _by_pair(values: Iterable[Value]) -> dict[Pair, dict[int, Value]]:
    by_pair: dict[Pair, dict[int, Value]] = defaultdict(dict)
    for value in values:
        by_pair[(value.region_id, value.campaign_id)][value.indicator_id] = value
    return by_pair


def _envelope(query: DatapointQuery, total: int, objects: list[dict[str, Any]]) -> Response:
    return envelope(query.window, total, objects, query.parameters)


# CSV


def _csv(session: Session, selection: Selection, indicators: IndicatorNames) -> Response:
    batch_rows = datapoints_context(current_app).settings.csv_batch_rows
    if selection.query.no_pivot:
        chunks = _value_lines(session, selection, batch_rows)
    else:
        chunks = _pair_lines(session, selection, indicators, batch_rows)
    return csv_attachment(chunks, "datapoint")


def _pair_lines(
    session: Session, selection: Selection, indicators: IndicatorNames, batch_rows: int
) -> Iterator[str]:
    """`region,campaign,<indicator name>...`, then a line per pair, one chunk per batch."""
    buffer, writer = _writer()
    writer.writerow(["region", "campaign", *map(csv_cell, indicators.values())])
    yield _drain(buffer)
    for batch in batches(session, selection.pairs(_csv_window(selection.query)), batch_rows):
        pairs = [(int(row[0]), int(row[1])) for row in batch]
        by_pair = _by_pair(lookup_values(session, selection, pairs))
        for pair, row in zip(pairs, batch, strict=True):
            known = by_pair.get(pair, {})
            cells = [known[i].value if i in known else "" for i in indicators]
            writer.writerow([csv_cell(row[2]), csv_cell(row[3]), *cells])
        yield _drain(buffer)


def _value_lines(session: Session, selection: Selection, batch_rows: int) -> Iterator[str]:
    """`region,campaign,indicator,value`, then a line per known value."""
    buffer, writer = _writer()
    writer.writerow(["region", "campaign", "indicator", "value"])
    yield _drain(buffer)
    for batch in batches(session, selection.values(_csv_window(selection.query)), batch_rows):
        writer.writerows(
            [csv_cell(row[5]), csv_cell(row[6]), csv_cell(row[7]), float(row[3])] for row in batch
        )
        yield _drain(buffer)


def _csv_window(query: DatapointQuery) -> Window | None:
    """The whole result, or the page when `limit` or `offset` was given."""
    return query.window if query.paged else None


def _writer() -> tuple[io.StringIO, Any]:
    buffer = io.StringIO()
    return buffer, csv.writer(buffer, lineterminator="\r\n")


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
