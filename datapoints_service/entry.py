"""Data entry: the cells a person types on the entry page, read, checked and stored.

A request names cells by (region, campaign, indicator) with a value (or null: remove
the stored value, so the region's computed value takes over again). Everything is
checked before anything is written, in this order: the body's shape and values (400),
that every region, campaign and indicator exists (422), that the caller may write every
region and indicator named (403). A list is all or nothing. Writing goes through
`values.write_cells` (history and computed values kept in the same transaction).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import ColumnElement, Select, func, select, tuple_
from sqlalchemy.orm import Session

from datapoints_service import permissions
from datapoints_service.engine.errors import Forbidden, InvalidValues
from datapoints_service.engine.fields import INTEGER, MAX_INT, MIN_INT
from datapoints_service.engine.parameters import Parameters
from datapoints_service.engine.resource import Caller, Options
from datapoints_service.models import WRITE, Campaign, DataPoint, Indicator, Region
from datapoints_service.values import Cell
from servicekit.errors import DomainError
from servicekit.pagination import OffsetArgs, Window, page_size

MAX_CELLS = 1000
# What an answer shows of a stored value, in order (JSON keys, CSV columns).
OBJECT_FIELDS = (
    "id",
    "region_id",
    "campaign_id",
    "indicator_id",
    "value",
    "changed_by_id",
    "document_id",
    "updated_at",
)
KEYS = ("region_id", "campaign_id", "indicator_id", "value")
# A number written as text: what JSON allows, plus a leading "+" and bare ".5" / "5.".
NUMBER_TEXT = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
# Ids looked up per statement (far below every database's limit on bound parameters).
LOOKUP_CHUNK = 500
FILTERS = {
    "region__in": "region_id",
    "campaign__in": "campaign_id",
    "indicator__in": "indicator_id",
}
RESERVED = ("limit", "offset", "format")
FORMATS = ("json", "csv")
DEFAULT_LIMIT, MAX_LIMIT = 20, 1000


class UnknownReferences(DomainError):
    """Cells naming a region, campaign or indicator that does not exist: `errors` names
    them by key."""

    status, code, message = 422, "unknown_references", "no such region, campaign or indicator"


@dataclass(frozen=True)
class Entry:
    """A request's cells: one per distinct (region, campaign, indicator), in the order
    each first appears, holding the last value given for it."""

    cells: tuple[Cell, ...]

    @property
    def keys(self) -> list[tuple[int, int, int]]:
        return [cell_key(cell) for cell in self.cells]

    def ids(self, key: str) -> set[int]:
        return {int(getattr(cell, key)) for cell in self.cells}


# Reading the body ---------------------------------------------------------------------


def parse_body(document: Any) -> Entry:
    """One `{"region_id", "campaign_id", "indicator_id", "value"}` object or a list of
    them; 400 naming every bad item and key (`"0.value"`)."""
    items = document if isinstance(document, list) else [document]
    if not items:
        raise InvalidValues(errors={"body": "an empty list: send at least one value"})
    if len(items) > MAX_CELLS:
        raise InvalidValues(errors={"body": f"at most {MAX_CELLS} values per request"})
    errors: dict[str, str] = {}
    cells = [_cell(index, item, errors) for index, item in enumerate(items)]
    if errors:
        raise InvalidValues(errors=errors)
    latest: dict[tuple[int, int, int], Cell] = {}
    for cell in cells:
        if cell is not None:
            latest[(cell.region_id, cell.campaign_id, cell.indicator_id)] = cell
    return Entry(tuple(latest.values()))


def _cell(index: int, item: Any, errors: dict[str, str]) -> Cell | None:
    if not isinstance(item, dict):
        errors[str(index)] = "not an object with region_id, campaign_id, indicator_id, value"
        return None
    found: dict[str, Any] = {}
    for key in item:
        if key not in KEYS:
            errors[f"{index}.{key}"] = "unknown key"
    for key in KEYS:
        if key not in item:
            errors[f"{index}.{key}"] = "missing required key"
            continue
        try:
            found[key] = _value(item[key]) if key == "value" else _id(item[key])
        except ValueError as exc:
            errors[f"{index}.{key}"] = str(exc)
    if len(found) != len(KEYS):
        return None
    return Cell(found["region_id"], found["campaign_id"], found["indicator_id"], found["value"])


def _id(value: Any) -> int:
    """An integer id, or its digits as a string ("2"), within 32 bits."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"not an integer id: {_shown(value)}")
    if isinstance(value, str) and not INTEGER.fullmatch(value):
        raise ValueError(f"not an integer id: {value!r}")
    number = int(value)
    if not MIN_INT <= number <= MAX_INT:
        raise ValueError(f"out of range: {number}")
    return number


def _value(value: Any) -> float | None:
    """A finite number, a number written as text, or null."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"not a number: {_shown(value)}")
    if isinstance(value, str) and not NUMBER_TEXT.fullmatch(value):
        raise ValueError(f"not a number: {value!r}")
    try:
        number = float(value)
    except OverflowError:  # an integer beyond a float's range
        raise ValueError("not a finite number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(f"not a finite number: {_shown(value)}")
    return number


def _shown(value: Any) -> str:
    """A refused value as the caller wrote it: text quoted, anything else as JSON (true,
    null, [1]), kept short."""
    text = repr(value) if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


# Checks -------------------------------------------------------------------------------


def check_references(session: Session, entry: Entry) -> None:
    """422 naming every region, campaign and indicator id that has no row."""
    errors: dict[str, str] = {}
    for key, model, label in (
        ("region_id", Region, "region"),
        ("campaign_id", Campaign, "campaign"),
        ("indicator_id", Indicator, "indicator"),
    ):
        wanted = entry.ids(key)
        missing = sorted(wanted - _existing(session, model.id, wanted))
        if missing:
            errors[key] = f"no {label} {_listed(missing)}"
    if errors:
        raise UnknownReferences(errors=errors)


def check_writable(session: Session, caller: Caller, entry: Entry) -> None:
    """403 naming every region and indicator the caller may not write (staff: none)."""
    options = Options(read_write=WRITE)
    errors: dict[str, str] = {}
    for key, column, condition, label in (
        ("region_id", Region.id, permissions.regions(caller, options), "region"),
        ("indicator_id", Indicator.id, permissions.indicators(caller, options), "indicator"),
    ):
        if condition is None:
            continue
        wanted = entry.ids(key)
        refused = sorted(wanted - _existing(session, column, wanted, condition))
        if refused:
            errors[key] = f"no write permission on {label} {_listed(refused)}"
    if errors:
        raise Forbidden("no write permission on some of these values", errors=errors)


def _existing(
    session: Session,
    column: Any,
    wanted: Iterable[int],
    condition: ColumnElement[bool] | None = None,
) -> set[int]:
    ids = sorted(wanted)
    found: set[int] = set()
    for start in range(0, len(ids), LOOKUP_CHUNK):
        statement = select(column).where(column.in_(ids[start : start + LOOKUP_CHUNK]))
        if condition is not None:
            statement = statement.where(condition)
        found.update(int(row_id) for row_id in session.scalars(statement))
    return found


def _listed(ids: Sequence[int]) -> str:
    return ", ".join(str(row_id) for row_id in ids)


# Answers ------------------------------------------------------------------------------


def stored_objects(session: Session, entry: Entry) -> list[dict[str, Any]]:
    """Each cell as it is stored now, in the entry's order (a removed cell: `id` and
    `value` null)."""
    key = tuple_(DataPoint.region_id, DataPoint.campaign_id, DataPoint.indicator_id)
    rows: dict[tuple[int, int, int], DataPoint] = {}
    keys = entry.keys
    for start in range(0, len(keys), LOOKUP_CHUNK // 3):
        chunk = keys[start : start + LOOKUP_CHUNK // 3]
        for row in session.scalars(select(DataPoint).where(key.in_(chunk))):
            rows[(row.region_id, row.campaign_id, row.indicator_id)] = row
    shown = []
    for cell in entry.cells:
        stored = rows.get(cell_key(cell))
        shown.append(_removed(cell) if stored is None else render(stored))
    return shown


def cell_key(cell: Cell) -> tuple[int, int, int]:
    return (cell.region_id, cell.campaign_id, cell.indicator_id)


def render(row: DataPoint) -> dict[str, Any]:
    return {
        "id": row.id,
        "region_id": row.region_id,
        "campaign_id": row.campaign_id,
        "indicator_id": row.indicator_id,
        "value": row.value,
        "changed_by_id": row.changed_by_id,
        "document_id": row.document_id,
        "updated_at": _moment(row.updated_at),
    }


def _removed(cell: Cell) -> dict[str, Any]:
    return {
        "id": None,
        "region_id": cell.region_id,
        "campaign_id": cell.campaign_id,
        "indicator_id": cell.indicator_id,
        "value": None,
        "changed_by_id": None,
        "document_id": None,
        "updated_at": None,
    }


def _moment(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds")


# Reading stored values ----------------------------------------------------------------


class ListArgs(OffsetArgs):
    limit = page_size(DEFAULT_LIMIT, MAX_LIMIT, clamp=True)


@dataclass(frozen=True)
class ListQuery:
    filters: dict[str, list[int]]
    window: Window
    format: str
    parameters: dict[str, str]

    @property
    def paged(self) -> bool:
        """A CSV answer holds every matching value unless a page was asked for."""
        return "limit" in self.parameters or "offset" in self.parameters


def parse_list_query(params: Mapping[str, Sequence[str]]) -> ListQuery:
    """`region__in`, `campaign__in`, `indicator__in` (ids), `limit`, `offset`, `format`;
    400 naming every parameter given twice, unknown or not understood."""
    given = Parameters(params, (*FILTERS, *RESERVED))
    filters = {column: given.ids(key) for key, column in FILTERS.items()}
    single = given.single
    window = _window({k: v for k, v in single.items() if k in ("limit", "offset")}, given)
    answer_format = single.get("format", "json")
    if answer_format not in FORMATS:
        given.refuse("format", "json or csv")
    given.check()
    chosen = {column: ids for column, ids in filters.items() if ids is not None}
    return ListQuery(chosen, window, answer_format, single)


def _window(values: dict[str, str], given: Parameters) -> Window:
    try:
        args = ListArgs().load(values)
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {}
        for key, problem in messages.items():
            given.refuse(key, " ".join(problem) if isinstance(problem, list) else str(problem))
        return Window(0, DEFAULT_LIMIT)
    return Window(int(args["offset"]), int(args["limit"]))


def readable_values(caller: Caller, query: ListQuery) -> Select[Any]:
    """The stored values the query asks for that the caller may read (read permission on
    the region and the indicator), unordered."""
    statement = select(DataPoint)
    for column, ids in query.filters.items():
        statement = statement.where(getattr(DataPoint, column).in_(ids))
    region_condition = permissions.regions(caller, Options())
    if region_condition is not None:
        statement = statement.join(Region, Region.id == DataPoint.region_id).where(region_condition)
    indicator_condition = permissions.indicators(caller, Options())
    if indicator_condition is not None:
        statement = statement.join(Indicator, Indicator.id == DataPoint.indicator_id).where(
            indicator_condition
        )
    return statement


def page(session: Session, caller: Caller, query: ListQuery) -> tuple[int, list[dict[str, Any]]]:
    """How many values match, and the page of them, ordered by region, campaign and
    indicator."""
    statement = readable_values(caller, query)
    total = session.scalar(select(func.count()).select_from(statement.subquery()))
    rows = session.scalars(
        _ordered(statement).limit(query.window.limit).offset(query.window.offset)
    )
    return int(total or 0), [render(row) for row in rows]


def csv_chunks(
    session: Session, caller: Caller, query: ListQuery, batch_rows: int
) -> Iterator[str]:
    """The values as CSV (a header, then one line each): every matching value, or the
    page when `limit` or `offset` was given; read `batch_rows` at a time, one chunk per
    batch. The session is closed at the end (a server-side cursor on PostgreSQL)."""
    statement = _ordered(readable_values(caller, query))
    if query.paged:
        statement = statement.limit(query.window.limit).offset(query.window.offset)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(OBJECT_FIELDS)
    try:
        yield _drained(buffer)
        result = session.scalars(statement.execution_options(yield_per=batch_rows))
        for rows in result.partitions():
            writer.writerows(_csv_row(render(row)) for row in rows)
            yield _drained(buffer)
    finally:
        session.close()


def _ordered(statement: Select[Any]) -> Select[Any]:
    return statement.order_by(DataPoint.region_id, DataPoint.campaign_id, DataPoint.indicator_id)


def _csv_row(shown: dict[str, Any]) -> list[Any]:
    return ["" if shown[name] is None else shown[name] for name in OBJECT_FIELDS]


def _drained(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
