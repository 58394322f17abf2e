"""Rows -> the document's objects (JSON) or CSV lines.

Rows are tuples in the order of `resource.fields`. How a field's value is shown depends
only on the field and the request's `uri_format`, so each field's converter is chosen
once per request and applied to a whole column (None: the value is shown as it is).

CSV cells that a spreadsheet would read as a formula (starting with `=`, `+`, `-`, `@`,
a tab or a carriage return) are prefixed with `'`; numbers are written as numbers.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from datapoints_service.engine.fields import Field, Kind
from datapoints_service.engine.resource import URI, Registry, Resource

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

Row = Sequence[Any]
Converter = Callable[[Any], Any]


@dataclass(frozen=True)
class Rows:
    """A resource's rows, fetched `batches` at a time, and how references are shown."""

    registry: Registry
    resource: Resource
    uri_format: str
    batches: Iterable[Sequence[Row]]


def render(
    registry: Registry, resource: Resource, row: Mapping[Any, Any], uri_format: str
) -> dict[str, Any]:
    """One object from a row by name (`render_rows` renders many far faster)."""
    values = tuple(row[field.name] for field in resource.fields)
    return render_rows(registry, resource, [values], uri_format)[0]


def render_rows(
    registry: Registry, resource: Resource, rows: Iterable[Row], uri_format: str
) -> list[dict[str, Any]]:
    """The objects, their fields in declaration order (`resource_uri` last where shown)."""
    names = [field.name for field in resource.fields]
    converters = [json_converter(registry, field, uri_format) for field in resource.fields]
    id_at = _id_position(resource)
    objects = []
    for row in rows:
        shown = dict(
            zip(
                names,
                [
                    value if convert is None or value is None else convert(value)
                    for convert, value in zip(converters, row, strict=True)
                ],
                strict=True,
            )
        )
        if id_at is not None:
            shown["resource_uri"] = resource.uri(int(row[id_at]))
        objects.append(shown)
    return objects


def json_converter(registry: Registry, field: Field, uri_format: str) -> Converter | None:
    """How `field`'s values (never None) are shown in JSON."""
    if field.ref is not None and field.renders_reference:
        target = registry[field.ref]
        return (lambda value: target.uri(int(value))) if uri_format == URI else None
    if field.kind is Kind.BOOL:
        return bool
    if field.kind in (Kind.DATE, Kind.DATETIME):
        return _isoformat
    return None


def _isoformat(value: date) -> str:
    if isinstance(value, datetime):
        return value.isoformat(timespec="milliseconds")
    return value.isoformat()


def header(resource: Resource) -> list[str]:
    names = [field.name for field in resource.fields]
    return [*names, "resource_uri"] if resource.resource_uri else names


def csv_lines(resource: Resource, rows: Rows) -> Iterator[str]:
    """The header, then the lines of each batch of rows as it comes, one chunk per batch
    (nothing more is held)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header(resource))
    yield _drain(buffer)
    converters = [csv_converter(rows.registry, field, rows.uri_format) for field in resource.fields]
    id_at = _id_position(resource)
    for batch in rows.batches:
        columns = list(zip(*batch, strict=True))
        cells: list[Iterable[Any]] = [
            column if convert is None else map(convert, column)
            for convert, column in zip(converters, columns, strict=True)
        ]
        if id_at is not None:
            cells.append([resource.uri(int(row_id)) for row_id in columns[id_at]])
        writer.writerows(zip(*cells, strict=True))
        yield _drain(buffer)


def csv_converter(registry: Registry, field: Field, uri_format: str) -> Converter | None:
    """How `field`'s values (None included) are written as CSV cells: the JSON value as
    `csv_cell` writes it, with only the checks the field's values can need (the csv
    module writes None as an empty cell)."""
    shown = json_converter(registry, field, uri_format)
    if field.ref is not None and field.renders_reference:
        # A URI starts with `/`; a name or a slug may look like a formula.
        return _none_safe(shown) if uri_format == URI else csv_cell
    if field.kind in (Kind.INT, Kind.FLOAT):
        return None
    if field.kind is Kind.STR:
        return _neutralised
    if shown is not None:  # booleans, dates (which never start like a formula)
        return _none_safe(shown)
    return csv_cell


def _none_safe(convert: Converter | None) -> Converter | None:
    if convert is None:
        return None
    return lambda value: None if value is None else convert(value)


def _neutralised(text: str | None) -> str | None:
    if text is None or not text.startswith(FORMULA_STARTS):
        return text
    return "'" + text


def csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool | int | float):
        return value
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _id_position(resource: Resource) -> int | None:
    """Where a row holds its id, when `resource_uri` is shown."""
    if not resource.resource_uri:
        return None
    return [field.name for field in resource.fields].index("id")


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
