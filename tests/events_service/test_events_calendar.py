"""Events as iCalendar (RFC 5545), read back with a small parser of the format: content
lines of at most 75 octets, unfolded, their TEXT values unescaped."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from events_service.events import api as events_api
from events_service.events.calendar import escape, fold
from tests.events_service.events_fixtures import add_catalogue, create_event
from tests.real_auth import User

Component = dict[str, Any]  # property name -> raw value; "components" -> nested ones


def unescape(text: str) -> str:
    return re.sub(r"\\([\\;,nN])", lambda m: "\n" if m[1] in "nN" else m[1], text)


def split_list(value: str) -> list[str]:
    """A TEXT list (CATEGORIES): split on the commas that are not escaped."""
    return [unescape(part) for part in re.split(r"(?<!\\),", value)]


def parse(document: bytes) -> Component:
    """The VCALENDAR of an iCalendar stream, checking the content-line rules on the way."""
    assert document.endswith(b"\r\n")
    physical = document[:-2].split(b"\r\n")
    for line in physical:
        assert len(line) <= 75, line  # octets, not characters
        line.decode("utf-8")  # no line ends inside a character
        assert b"\n" not in line and b"\r" not in line
    text = document.decode("utf-8").replace("\r\n ", "").replace("\r\n\t", "")
    stack: list[Component] = [{"components": []}]
    for line in text[:-2].split("\r\n"):
        name, _, value = line.partition(":")
        name = name.split(";")[0].upper()
        if name == "BEGIN":
            component: Component = {"type": value, "components": []}
            stack[-1]["components"].append(component)
            stack.append(component)
        elif name == "END":
            assert stack.pop()["type"] == value
        else:
            assert name not in stack[-1], f"{name} twice"
            stack[-1][name] = value
    (calendar,) = stack[0]["components"]
    assert calendar["type"] == "VCALENDAR"
    return calendar


def vevents(calendar: Component) -> list[Component]:
    return [c for c in calendar["components"] if c["type"] == "VEVENT"]


@pytest.fixture(autouse=True)
def catalogue(client: FlaskClient, staff: User) -> None:
    add_catalogue(client, staff)


@pytest.mark.parametrize("slash", ["", "/"])
def test_anyone_gets_one_event_as_icalendar(client: FlaskClient, staff: User, slash: str) -> None:
    created = create_event(client, staff)
    public_id = created["publicId"]

    response = client.get(f"/events/{public_id}/calendar.ics{slash}")  # no token

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert response.headers["Content-Disposition"] == f'inline; filename="{public_id}.ics"'
    calendar = parse(response.data)
    assert (calendar["VERSION"], calendar["PRODID"]) == ("2.0", "-//Flotilla//events_service//EN")
    (event,) = vevents(calendar)
    assert re.fullmatch(r"\d{8}T\d{6}Z", event.pop("DTSTAMP"))
    assert event == {
        "type": "VEVENT",
        "components": [],
        "UID": f"{public_id}@flotilla",
        "DTSTART": "20190924T093000",
        "DTEND": "20190924T103000",
        "SUMMARY": "Codechef Elektra",
        "DESCRIPTION": "A 3 hour long competitive coding contest.",
        "LOCATION": "Computer Lab",
        "CATEGORIES": "Coding,Contest",
    }


def test_text_is_escaped_and_long_lines_folded(client: FlaskClient, staff: User) -> None:
    name = "Quiz; Round 1, Final \\ Bonus"
    description = "Line one,\nline two; ünïcödé ✓ 🎉 " * 20
    created = create_event(
        client,
        staff,
        name=name,
        description=description,
        venue="Hall A, Block 2; ground floor",
        category=["Coding", "Hackathon"],
    )

    response = client.get(f"/events/{created['publicId']}/calendar.ics")

    (event,) = vevents(parse(response.data))
    assert unescape(event["SUMMARY"]) == name
    assert unescape(event["DESCRIPTION"]) == description
    assert unescape(event["LOCATION"]) == "Hall A, Block 2; ground floor"
    assert split_list(event["CATEGORIES"]) == ["Coding", "Hackathon"]
    assert response.data.count(b"\r\n ") > 10  # the description was folded


def test_an_event_late_in_the_evening_ends_the_next_day(client: FlaskClient, staff: User) -> None:
    created = create_event(client, staff, date="2019-12-31", time="23:30", description="")

    (event,) = vevents(parse(client.get(f"/events/{created['publicId']}/calendar.ics").data))

    assert (event["DTSTART"], event["DTEND"]) == ("20191231T233000", "20200101T003000")
    assert "DESCRIPTION" not in event


def test_the_uid_stays_when_the_event_changes(client: FlaskClient, staff: User) -> None:
    public_id = create_event(client, staff)["publicId"]
    before = vevents(parse(client.get(f"/events/{public_id}/calendar.ics").data))[0]

    client.put(f"/events/{public_id}", json={"time": "11:00"}, headers=staff.headers)
    after = vevents(parse(client.get(f"/events/{public_id}/calendar.ics").data))[0]

    assert after["UID"] == before["UID"]
    assert after["DTSTART"] == "20190924T110000"
    assert after["DTSTAMP"] >= before["DTSTAMP"]


def test_an_unknown_event_is_404(client: FlaskClient) -> None:
    response = client.get("/events/nothing/calendar.ics")

    assert response.status_code == 404
    assert response.get_json()["code"] == "not_found"


def day(offset: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=offset)).isoformat()


@pytest.mark.parametrize("slash", ["", "/"])
def test_the_feed_holds_every_event_from_a_month_ago_by_date(
    client: FlaskClient, staff: User, slash: str
) -> None:
    made = {
        name: create_event(client, staff, name=name, date=when)["publicId"]
        for name, when in [
            ("Next week", day(7)),
            ("Long ago", day(-31)),
            ("Last month", day(-30)),
            ("Today", day(0)),
        ]
    }

    response = client.get(f"/events/calendar.ics{slash}")  # no token

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    calendar = parse(response.data)
    assert calendar["X-WR-CALNAME"] == "Flotilla events"
    events = vevents(calendar)
    assert [e["SUMMARY"] for e in events] == ["Last month", "Today", "Next week"]
    assert [e["UID"] for e in events] == [
        f"{made[name]}@flotilla" for name in ("Last month", "Today", "Next week")
    ]


def test_the_feed_is_bounded(
    client: FlaskClient, staff: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events_api, "FEED_LIMIT", 2)
    for offset in (3, 1, 2):
        create_event(client, staff, name=f"In {offset} days", date=day(offset))

    events = vevents(parse(client.get("/events/calendar.ics").data))

    assert [e["SUMMARY"] for e in events] == ["In 1 days", "In 2 days"]


def test_an_empty_feed_is_a_valid_calendar(client: FlaskClient) -> None:
    calendar = parse(client.get("/events/calendar.ics").data)

    assert vevents(calendar) == []


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("a,b;c\\d", "a\\,b\\;c\\\\d"),
        ("one\r\ntwo\rthree\nfour", "one\\ntwo\\nthree\\nfour"),
        ("bell\x07 and tab\t", "bell and tab\t"),
    ],
)
def test_escape(text: str, escaped: str) -> None:
    assert escape(text) == escaped


@pytest.mark.parametrize("char", ["a", "é", "✓", "🎉"])
def test_fold_splits_at_75_octets_between_characters(char: str) -> None:
    line = "DESCRIPTION:" + char * 200

    folded = fold(line)

    pieces = folded.split("\r\n")
    assert all(len(piece.encode()) <= 75 for piece in pieces)
    assert all(piece.startswith(" ") for piece in pieces[1:])
    assert len(pieces[0].encode()) > 75 - len(char.encode())  # filled, not split early
    assert folded.replace("\r\n ", "") == line
    assert fold("SHORT:x") == "SHORT:x"
