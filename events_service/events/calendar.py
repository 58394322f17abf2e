"""Events as iCalendar (RFC 5545): one VEVENT per event, for a phone's calendar.

The fest's dates and times are the venue's wall-clock time, stored without a zone, so
DTSTART is a floating local time (RFC 5545 3.3.5, form 1) and DTEND is an hour later (the
document gives events no end). UID is `<publicId>@flotilla`: stable, so a calendar that
imports an event again updates it instead of adding a copy. DTSTAMP is the event's last
change (UTC). Text values are escaped (3.3.11) and lines folded at 75 octets (3.1).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

from events_service.models import Event

PRODID = "-//Flotilla//events_service//EN"
UID_DOMAIN = "flotilla"
DURATION = timedelta(hours=1)
LINE_OCTETS = 75
CONTENT_TYPE = "text/calendar; charset=utf-8"
LOCAL_TIME = "%Y%m%dT%H%M%S"  # floating: no zone, no "Z"
UTC_TIME = "%Y%m%dT%H%M%SZ"


def calendar(events: Iterable[Event], name: str | None = None) -> str:
    """A VCALENDAR holding one VEVENT per event (`name`: the feed's display name)."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{PRODID}", "CALSCALE:GREGORIAN"]
    lines.append("METHOD:PUBLISH")
    if name is not None:
        lines.append(f"X-WR-CALNAME:{escape(name)}")
    for event in events:
        lines.extend(vevent(event))
    lines.append("END:VCALENDAR")
    return "".join(fold(line) + "\r\n" for line in lines)


def vevent(event: Event) -> Iterator[str]:
    start = datetime.combine(event.date, event.time)
    yield "BEGIN:VEVENT"
    yield f"UID:{event.public_id}@{UID_DOMAIN}"
    yield f"DTSTAMP:{event.updated_at.strftime(UTC_TIME)}"
    yield f"DTSTART:{start.strftime(LOCAL_TIME)}"
    yield f"DTEND:{(start + DURATION).strftime(LOCAL_TIME)}"
    yield f"SUMMARY:{escape(event.name)}"
    if event.description:
        yield f"DESCRIPTION:{escape(event.description)}"
    if event.venue:
        yield f"LOCATION:{escape(event.venue)}"
    if event.categories:
        yield "CATEGORIES:" + ",".join(escape(category.name) for category in event.categories)
    yield "END:VEVENT"


def escape(text: str) -> str:
    """A TEXT value: backslash, semicolon, comma and line breaks escaped; other control
    characters (which a content line may not hold) dropped."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    text = text.replace("\n", "\\n")
    return "".join(c for c in text if c == "\t" or not (ord(c) < 32 or ord(c) == 127))


def fold(line: str) -> str:
    """The line split into pieces of at most 75 octets (UTF-8), never inside a
    character; every piece after the first starts with a space."""
    pieces: list[str] = []
    current, size = "", 0
    for char in line:
        octets = len(char.encode())
        limit = LINE_OCTETS if not pieces else LINE_OCTETS - 1  # the leading space counts
        if size + octets > limit:
            pieces.append(current)
            current, size = "", 0
        current += char
        size += octets
    pieces.append(current)
    return "\r\n ".join(pieces)
