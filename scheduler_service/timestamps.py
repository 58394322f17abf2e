"""ISO 8601 instants in and out: `Z` and offsets honoured, naive values read as UTC,
answers always in UTC with `Z`; and the exact integer form carried in job payloads."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
MAX_TEXT_LENGTH = 64
# A calendar or week date, then `T` (or a space) and a time: a date alone is refused.
_DATE_AND_TIME = re.compile(r"^\d{4}-?(?:\d{2}-?\d{2}|W\d{2}-?\d)[T ]\d{2}")


class InvalidTimestamp(ValueError):
    """A value that is not an ISO 8601 date and time (or names an impossible one)."""


def parse_instant(value: Any) -> datetime:
    """An aware UTC datetime from an ISO 8601 string; naive values are UTC."""
    if not isinstance(value, str):
        raise InvalidTimestamp("must be an ISO 8601 date and time string")
    text = value.strip()
    if len(text) > MAX_TEXT_LENGTH or not _DATE_AND_TIME.match(text):
        raise InvalidTimestamp("must be an ISO 8601 date and time")
    if text.endswith(("z", "Z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:  # month 13, February 30th, hour 25 ...
        raise InvalidTimestamp("is not a valid date and time") from exc
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError as exc:  # year 1 or 9999 pushed out of range by the offset
        raise InvalidTimestamp("is out of range") from exc


def render(value: datetime | None) -> str | None:
    """`2025-08-01T14:30:00Z`; fractions of a second only when there are some."""
    if value is None:
        return None
    return value.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"


def to_micros(value: datetime) -> int:
    """Exact integer microseconds since the epoch (floats would round)."""
    return (value - EPOCH) // MICROSECOND


def from_micros(value: int) -> datetime:
    return EPOCH + value * MICROSECOND


def from_seconds(value: float) -> datetime:
    return EPOCH + timedelta(seconds=value)
