"""Rows -> the document's objects (JSON) or CSV lines.

CSV cells that a spreadsheet would read as a formula (starting with `=`, `+`, `-`, `@`,
a tab or a carriage return) are prefixed with `'`; numbers are written as numbers.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime
from typing import Any

from datapoints_service.engine.fields import Field, Kind
from datapoints_service.engine.resource import URI, Registry, Resource

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def render(
    registry: Registry, resource: Resource, row: Mapping[Any, Any], uri_format: str
) -> dict[str, Any]:
    """One object, its fields in declaration order (`resource_uri` last where shown)."""
    shown = {
        field.name: _value(registry, field, row[field.name], uri_format)
        for field in resource.fields
    }
    if resource.resource_uri:
        shown["resource_uri"] = resource.uri(int(row["id"]))
    return shown


def _value(registry: Registry, field: Field, value: Any, uri_format: str) -> Any:
    if value is None:
        return None
    if field.ref is not None and field.renders_reference:
        return registry[field.ref].uri(int(value)) if uri_format == URI else value
    if field.kind is Kind.BOOL:
        return bool(value)
    if isinstance(value, datetime):
        return value.isoformat(timespec="milliseconds")
    if isinstance(value, date):
        return value.isoformat()
    return value


def header(resource: Resource) -> list[str]:
    names = [field.name for field in resource.fields]
    return [*names, "resource_uri"] if resource.resource_uri else names


def csv_lines(resource: Resource, objects: Iterable[dict[str, Any]]) -> Iterator[str]:
    """The header, then one line per object, as they come (nothing is held)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    columns = header(resource)
    writer.writerow(columns)
    yield _drain(buffer)
    for shown in objects:
        writer.writerow([csv_cell(shown[name]) for name in columns])
        yield _drain(buffer)


def csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool | int | float):
        return value
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text
