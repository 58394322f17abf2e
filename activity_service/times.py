"""The document's time format (`Feb 1 2020  1:33PM`), time zones, and DST edges.

An uploaded time is local wall time in the member's zone. Two kinds of wall time have no
single instant, and both are accepted with a note (the caller turns it into a warning):
- a time in a spring-forward gap (`Mar 8 2020 2:30AM` in America/Los_Angeles) does not
  exist: it is read with the offset in force before the jump, so it lands as far after
  the jump as it was after the last valid minute (`3:30AM` PDT), as PEP 495 prescribes;
- a time in a fall-back overlap (`Nov 1 2020 1:30AM` there) happens twice: the first
  occurrence (daylight time) is taken.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from functools import cache, lru_cache
from zoneinfo import ZoneInfo, available_timezones

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
MONTH_NUMBERS = {name.lower(): number for number, name in enumerate(MONTHS, start=1)}
# The earliest and latest years accepted: far enough from datetime's limits that no
# offset can push a converted instant out of range.
MIN_YEAR, MAX_YEAR = 1900, 9998

_DOCUMENT_TIME = re.compile(
    r"\s*([A-Za-z]{3})\s+([0-9]{1,2})\s+([0-9]{4})\s+([0-9]{1,2}):([0-9]{2})\s*([AaPp][Mm])\s*"
)
HOUR = timedelta(hours=1)
FORMAT_HINT = "expected a time like 'Feb 1 2020  1:33PM'"


class TimeFormatError(ValueError):
    """A text that is not a time in the document's format."""


@cache
def known_zones() -> frozenset[str]:
    """Every IANA zone name this installation knows (the tzdata package ships them)."""
    return frozenset(available_timezones())


def zone_named(name: str) -> ZoneInfo | None:
    """The zone for an IANA name, or None when there is no such zone."""
    return ZoneInfo(name) if name in known_zones() else None


def parse_wall_time(text: str) -> datetime:
    """`Feb 1 2020  1:33PM` -> naive datetime(2020, 2, 1, 13, 33); one or more spaces."""
    month_name, day, year, hour, minute, meridiem = _fields(text)
    return datetime(*_calendar_day(month_name, day, year)) + _clock(hour, minute, meridiem)


def read_local_time(text: str, zone: ZoneInfo) -> tuple[datetime, str | None]:
    """A document time read as wall time in `zone`: its UTC instant, and a note when it
    is a DST edge. Fast for the many days on which the zone's offset does not change:
    the day's UTC start plus the clock reading, both remembered."""
    month_name, day, year, hour, minute, meridiem = _fields(text)
    day_start = _utc_day_start(zone.key, month_name, day, year)
    clock = _clock(hour, minute, meridiem)
    if day_start is not None:
        return day_start + clock, None
    wall = datetime(*_calendar_day(month_name, day, year)) + clock
    return resolve_local(wall, zone)


def _fields(text: str) -> tuple[str, ...]:
    match = _DOCUMENT_TIME.fullmatch(text)
    if match is None:
        raise TimeFormatError(FORMAT_HINT)
    return match.groups()


@lru_cache(maxsize=16384)
def _calendar_day(month_name: str, day: str, year: str) -> tuple[int, int, int]:
    month = MONTH_NUMBERS.get(month_name.lower())
    if month is None:
        raise TimeFormatError(f"unknown month {month_name!r}; {FORMAT_HINT}")
    year_number = int(year)
    if not MIN_YEAR <= year_number <= MAX_YEAR:
        raise TimeFormatError(f"year must be {MIN_YEAR} to {MAX_YEAR}")
    try:
        date(year_number, month, int(day))
    except ValueError as exc:  # Feb 30
        raise TimeFormatError(f"{exc}; {FORMAT_HINT}") from None
    return year_number, month, int(day)


@lru_cache(maxsize=4096)
def _clock(hour: str, minute: str, meridiem: str) -> timedelta:
    """The clock reading as the time since midnight."""
    hour12, minute_number = int(hour), int(minute)
    if not 1 <= hour12 <= 12:
        raise TimeFormatError(f"hour must be 1 to 12 before AM/PM; {FORMAT_HINT}")
    if minute_number > 59:
        raise TimeFormatError(f"minute must be 0 to 59; {FORMAT_HINT}")
    hour24 = hour12 % 12 + (12 if meridiem[0] in "Pp" else 0)
    return timedelta(hours=hour24, minutes=minute_number)


@lru_cache(maxsize=65536)
def _utc_day_start(zone_key: str, month_name: str, day: str, year: str) -> datetime | None:
    """The UTC instant of the local day's midnight when the zone keeps one offset all
    that day (so every wall time of the day is that instant plus the clock reading), else
    None."""
    calendar_day = _calendar_day(month_name, day, year)
    offset = _steady_offset(zone_key, *calendar_day)
    if offset is None:
        return None
    return datetime(*calendar_day, tzinfo=UTC) - offset


def _steady_offset(zone_key: str, year: int, month: int, day: int) -> timedelta | None:
    """The zone's one UTC offset on that local day, or None when the offset changes then
    (the day needs `resolve_local`). Checked on every hour, and on both sides of a fold at
    either end of the day: the IANA database never changes a zone's offset twice within
    an hour, so an offset that holds at each mark holds all day."""
    zone = ZoneInfo(zone_key)
    mark = datetime(year, month, day)
    offsets = {zone.utcoffset(mark.replace(fold=1))}
    for _ in range(24):
        offsets.add(zone.utcoffset(mark))
        mark += HOUR
    offsets.add(zone.utcoffset(mark))
    offsets.add(zone.utcoffset(mark.replace(fold=1)))
    return offsets.pop() if len(offsets) == 1 else None


def resolve_local(wall: datetime, zone: ZoneInfo) -> tuple[datetime, str | None]:
    """The UTC instant of a naive wall time in `zone`, with a note when the wall time is a
    DST edge (see the module notes)."""
    # A zone answers for a naive wall time directly; `fold` picks the side of a transition.
    offset = zone.utcoffset(wall)
    second_offset = zone.utcoffset(wall.replace(fold=1))
    assert offset is not None and second_offset is not None
    instant = (wall - offset).replace(tzinfo=UTC)
    if offset == second_offset:
        return instant, None
    if offset > second_offset:
        return instant, (
            f"{render_document_time(wall)} happens twice in {zone.key} (clocks go back); "
            f"read as the first occurrence, UTC{render_offset(offset)}"
        )
    shown = instant.astimezone(zone)
    return instant, (
        f"{render_document_time(wall)} does not exist in {zone.key} (clocks skip forward); "
        f"stored as {render_document_time(shown)} (UTC{render_offset(shown.utcoffset())})"
    )


def render_document_time(moment: datetime, *, pad_hour: bool = True) -> str:
    """`Feb 1 2020  1:33PM`: the document's format; the hour is space-padded to two
    characters when `pad_hour` (the document's start times), else not (its end times)."""
    hour = moment.hour % 12 or 12
    meridiem = "PM" if moment.hour >= 12 else "AM"
    hour_text = f"{hour:>2}" if pad_hour else str(hour)
    return (
        f"{MONTHS[moment.month - 1]} {moment.day} {moment.year} "
        f"{hour_text}:{moment.minute:02d}{meridiem}"
    )


def render_offset(offset: timedelta | None) -> str:
    """timedelta(hours=-7) -> "-07:00"."""
    total = int((offset or timedelta()).total_seconds()) // 60
    sign = "-" if total < 0 else "+"
    hours, minutes = divmod(abs(total), 60)
    return f"{sign}{hours:02d}:{minutes:02d}"


def parse_iso_instant(text: str) -> datetime:
    """An ISO 8601 date or date-time; one without an offset is read as UTC."""
    try:
        value = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError as exc:
        raise TimeFormatError("expected an ISO 8601 date-time, e.g. 2020-02-01T13:33:00Z") from exc
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise TimeFormatError(f"year must be {MIN_YEAR} to {MAX_YEAR}")
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
