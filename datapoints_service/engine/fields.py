"""Fields: what a resource shows, filters, orders and writes, and how values are read.

Query strings carry text (`id__in=1,2`, `start_date__lte=2015-01-01`); bodies carry
JSON where the document sends numbers as strings (`"office_id": "2"`): both are read
here, and a value that is not of the field's kind is refused with a message.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement

if TYPE_CHECKING:
    from datapoints_service.engine.resource import Caller

INTEGER = re.compile(r"-?\d{1,10}")
# Ids and counts are 32-bit integers on PostgreSQL.
MIN_INT, MAX_INT = -(2**31), 2**31 - 1
TRUE_WORDS = frozenset({"1", "true", "True"})
FALSE_WORDS = frozenset({"0", "false", "False"})
MAX_STRING = 10_000


class Kind(enum.Enum):
    INT = "int"
    FLOAT = "float"
    STR = "str"
    BOOL = "bool"
    DATE = "date"
    DATETIME = "datetime"
    JSON = "json"


# Operators, as the filter grammar spells them (`exact` is `field=value`).
EXACT, IN, GT, GTE, LT, LTE = "exact", "in", "gt", "gte", "lt", "lte"
CONTAINS, STARTSWITH, ISNULL = "contains", "startswith", "isnull"
OPERATOR_NAMES = {
    "in": IN,
    "gt": GT,
    "gte": GTE,
    "lt": LT,
    "lte": LTE,
    "contains": CONTAINS,
    "startswith": STARTSWITH,
    "starts_with": STARTSWITH,  # the document's spelling
    "isnull": ISNULL,
}
ORDERED = frozenset({EXACT, IN, GT, GTE, LT, LTE})
DEFAULT_OPERATORS: dict[Kind, frozenset[str]] = {
    Kind.INT: ORDERED,
    Kind.FLOAT: ORDERED,
    Kind.DATE: ORDERED,
    Kind.DATETIME: ORDERED,
    Kind.STR: frozenset({EXACT, IN, CONTAINS, STARTSWITH}),
    Kind.BOOL: frozenset({EXACT}),
    Kind.JSON: frozenset(),
}

Expression = Callable[["Caller"], ColumnElement[Any]]


@dataclass(frozen=True)
class Field:
    """One field of a resource.

    `name` is its wire name (shown, filtered and ordered by); `column` the model
    attribute it reads and the key a write sends (`office_id` for the reference shown
    as `office`); `ref` the resource a reference points to; `expression` computes a
    field (from the caller) instead of reading a column.
    """

    name: str
    kind: Kind
    column: str | None = None
    operators: frozenset[str] | None = None  # None: the kind's defaults
    orderable: bool = True
    writable: bool = True
    required: bool = False
    nullable: bool = False
    unique: bool = False
    ref: str | None = None
    aliases: tuple[str, ...] = ()
    expression: Expression | None = None
    choices: tuple[str, ...] | None = None
    default: Callable[[dict[str, Any]], Any] | None = field(default=None, compare=False)

    @property
    def write_key(self) -> str:
        return self.column or self.name

    @property
    def renders_reference(self) -> bool:
        """Shown under its own name (`office` for `office_id`), as `uri_format` asks."""
        return self.ref is not None and self.column is not None and self.column != self.name

    def names(self) -> tuple[str, ...]:
        """The names a query string may use for it."""
        return (self.name, *self.aliases, *((self.column,) if self.column else ()))

    @property
    def allowed(self) -> frozenset[str]:
        allowed = DEFAULT_OPERATORS[self.kind] if self.operators is None else self.operators
        return allowed | {ISNULL} if self.nullable and allowed else allowed


def query_value(kind: Kind, text: str) -> Any:
    """A query-string value of `kind`; ValueError with a message when it is not one."""
    if kind is Kind.INT:
        if not INTEGER.fullmatch(text):
            raise ValueError(f"not an integer: {text!r}")
        return _in_range(int(text))
    if kind is Kind.FLOAT:
        return _float(text)
    if kind is Kind.BOOL:
        return _boolean(text)
    if kind is Kind.DATE:
        return _date(text)
    if kind is Kind.DATETIME:
        return _datetime(text)
    if kind is Kind.STR:
        if "\x00" in text:
            raise ValueError("contains a NUL character")
        return text
    raise ValueError("this field cannot be filtered")


def body_value(kind: Kind, value: Any) -> Any:
    """A body's value of `kind` (numbers and booleans may come as strings)."""
    if kind is Kind.JSON:
        return value
    if isinstance(value, bool):
        if kind is Kind.BOOL:
            return value
        raise ValueError(f"expected {kind.value}, got a boolean")
    if kind is Kind.INT and isinstance(value, int):
        return _in_range(value)
    if kind is Kind.FLOAT and isinstance(value, int | float):
        return _float(str(value))
    if kind is Kind.BOOL and isinstance(value, int) and value in (0, 1):
        return bool(value)
    if not isinstance(value, str):
        raise ValueError(f"expected {kind.value}")
    if kind is Kind.STR and len(value) > MAX_STRING:
        raise ValueError(f"longer than {MAX_STRING} characters")
    return query_value(kind, value)


def _in_range(number: int) -> int:
    if not MIN_INT <= number <= MAX_INT:
        raise ValueError(f"out of range: {number}")
    return number


def _float(text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"not a number: {text!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"not a finite number: {text!r}")
    return number


def _boolean(text: str) -> bool:
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise ValueError(f"not a boolean (true, false, 1, 0): {text!r}")


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text) if len(text) == 10 else _bad_date(text)
    except ValueError:
        return _bad_date(text)


def _bad_date(text: str) -> date:
    raise ValueError(f"not a date (YYYY-MM-DD): {text!r}")


def _datetime(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a date and time (ISO 8601): {text!r}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
