"""Reading an uploaded CSV file: its text, its layout (from the header), its rows.

Two layouts, told apart by the header (names trimmed, compared case-insensitively):

- long: `region,campaign,indicator,value` (in any order), one value per line;
- wide: `region,campaign,<indicator>,...`, one column per indicator (distinct, non-empty
  names), an empty cell being no value.

Cells are source strings (what the uploading system calls things): trimmed, at most 255
characters, kept as text (a cell such as `=cmd|' /C calc'!A0` is never evaluated).
A row that cannot be read is a `RowError` with its line in the file (the header is
line 1); the other rows are read.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

from datapoints_service.models import NAME_LENGTH
from servicekit.errors import DomainError

LONG, WIDE = "long", "wide"
REGION, CAMPAIGN, INDICATOR, VALUE = "region", "campaign", "indicator", "value"
LONG_COLUMNS = frozenset({REGION, CAMPAIGN, INDICATOR, VALUE})
PREVIEW_CHARACTERS = 2000  # of the text, shown as the document's doc_text


class FileRefused(DomainError):
    """A file that cannot be read as a document at all (nothing is stored)."""

    status, code, message = 400, "invalid_document", "the file is not a readable CSV document"


class FileTooLarge(DomainError):
    status, code, message = 413, "payload_too_large", "the file is too large"


@dataclass(frozen=True)
class Layout:
    """Where a row's cells are: column positions in the header."""

    kind: str
    width: int
    region: int
    campaign: int
    indicator: int = -1  # long
    value: int = -1  # long
    indicators: tuple[tuple[int, str], ...] = ()  # wide: (column, indicator's source string)


class Row(NamedTuple):
    """One value of the file, by source strings (a tuple: a file has many)."""

    line: int
    region: str
    campaign: str
    indicator: str
    value: float


@dataclass(frozen=True)
class RowError:
    line: int
    error: str

    def as_json(self) -> dict[str, object]:
        return {"line": self.line, "error": self.error}


def decode(content: bytes) -> str:
    """The file's text: UTF-8 (a byte order mark is dropped), no NUL bytes, not empty."""
    if b"\x00" in content:
        raise FileRefused("the file holds NUL bytes: it is binary, not a CSV text file")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileRefused(
            f"the file is not UTF-8 text (byte {exc.start} cannot be decoded): save it as UTF-8"
        ) from None
    if not text.strip():
        raise FileRefused("the file is empty")
    return text


def preview(text: str) -> str:
    return text[:PREVIEW_CHARACTERS]


def read_layout(text: str) -> Layout:
    """The layout the header names; the file must hold at least one row below it."""
    records = _records(text)
    header = next(records, None)
    if header is None:
        raise FileRefused("the file is empty")
    layout = layout_of(header[1])
    if next(records, None) is None:
        raise FileRefused("the file has a header but no rows")
    return layout


def layout_of(header: list[str]) -> Layout:
    names = [name.strip().lower() for name in header]
    if REGION not in names or CAMPAIGN not in names:
        raise FileRefused(_unrecognised(header))
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise FileRefused(f"the header names a column twice: {', '.join(duplicates)}")
    if set(names) == LONG_COLUMNS:
        return Layout(
            LONG,
            len(names),
            names.index(REGION),
            names.index(CAMPAIGN),
            indicator=names.index(INDICATOR),
            value=names.index(VALUE),
        )
    return _wide(header, names)


def _wide(header: list[str], names: list[str]) -> Layout:
    indicators = tuple(
        (column, header[column].strip())
        for column, name in enumerate(names)
        if name not in (REGION, CAMPAIGN)
    )
    if not indicators:
        raise FileRefused(_unrecognised(header))
    if any(not name for _column, name in indicators):
        raise FileRefused("the header has a column without a name")
    too_long = [name for _column, name in indicators if len(name) > NAME_LENGTH]
    if too_long:
        raise FileRefused(f"an indicator name in the header is over {NAME_LENGTH} characters")
    return Layout(
        WIDE, len(names), names.index(REGION), names.index(CAMPAIGN), indicators=indicators
    )


def _unrecognised(header: list[str]) -> str:
    shown = ",".join(header)[:200]
    return (
        "no recognisable header: the first line must be region,campaign,indicator,value "
        f"or region,campaign,<indicator>,... (found {shown!r})"
    )


def count_rows(text: str) -> int:
    """The rows below the header (blank lines are not rows)."""
    return sum(1 for _record in _records(text)) - 1


def read_rows(text: str, layout: Layout) -> Iterator[list[Row] | RowError]:
    """Each line below the header: its values (several in the wide layout, maybe none),
    or why it cannot be read."""
    records = _records(text)
    next(records, None)  # the header
    read = _read_long if layout.kind == LONG else _read_wide
    for line, cells in records:
        try:
            yield read(layout, line, _fitted(cells, layout.width))
        except ValueError as exc:
            yield RowError(line, str(exc))


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    """(first line of the record, its cells), skipping blank lines."""
    reader = csv.reader(io.StringIO(text, newline=""))
    start = 1
    try:
        for cells in reader:
            if cells and any(cell.strip() for cell in cells):
                yield start, cells
            start = reader.line_num + 1
    except csv.Error as exc:
        raise FileRefused(f"line {start}: the CSV cannot be read: {exc}") from None


def _fitted(cells: list[str], width: int) -> list[str]:
    """The row's cells; empty cells past the header's width (a trailing comma) are dropped."""
    if len(cells) > width and not any(cell.strip() for cell in cells[width:]):
        cells = cells[:width]
    if len(cells) != width:
        raise ValueError(f"expected {width} cells as in the header, found {len(cells)}")
    return cells


def _read_long(layout: Layout, line: int, cells: list[str]) -> list[Row]:
    region, campaign = _place(layout, cells)
    indicator = _source_string(cells[layout.indicator], INDICATOR)
    value_cell = cells[layout.value].strip()
    if not value_cell:
        raise ValueError("the value is empty")
    return [Row(line, region, campaign, indicator, _number(value_cell))]


def _read_wide(layout: Layout, line: int, cells: list[str]) -> list[Row]:
    region, campaign = _place(layout, cells)
    rows = []
    for column, indicator in layout.indicators:
        cell = cells[column].strip()
        if not cell:
            continue
        try:
            value = _number(cell)
        except ValueError as exc:
            raise ValueError(f"column {indicator!r}: {exc}") from None
        rows.append(Row(line, region, campaign, indicator, value))
    return rows


def _place(layout: Layout, cells: list[str]) -> tuple[str, str]:
    return (
        _source_string(cells[layout.region], REGION),
        _source_string(cells[layout.campaign], CAMPAIGN),
    )


def _source_string(cell: str, what: str) -> str:
    text = cell.strip()
    if not text:
        raise ValueError(f"the {what} is empty")
    if len(text) > NAME_LENGTH:
        raise ValueError(f"the {what} is over {NAME_LENGTH} characters")
    return text


def _number(cell: str) -> float:
    """A decimal number: digits, a point, an exponent (not Python's `1_000`, non-ASCII
    digits, `inf` or `nan`, which float() would take)."""
    try:
        value = float(cell)
    except ValueError:
        raise ValueError(f"not a number: {cell[:50]!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {cell[:50]!r}")
    if "_" in cell or not cell.isascii():
        raise ValueError(f"not a number: {cell[:50]!r}")
    return value
