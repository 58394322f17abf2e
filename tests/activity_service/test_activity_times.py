"""The document's time format, zones, and the DST edges, minute by minute."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from activity_service.times import (
    TimeFormatError,
    parse_iso_instant,
    parse_wall_time,
    read_local_time,
    render_document_time,
    resolve_local,
    zone_named,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Feb 1 2020  1:33PM", datetime(2020, 2, 1, 13, 33)),
        ("Feb 1 2020 1:54PM", datetime(2020, 2, 1, 13, 54)),
        ("Mar 16 2020  1:02PM", datetime(2020, 3, 16, 13, 2)),
        ("Dec 31 1999 11:59PM", datetime(1999, 12, 31, 23, 59)),
        ("Jan 1 2000 12:00AM", datetime(2000, 1, 1, 0, 0)),
        ("Jan 1 2000 12:30PM", datetime(2000, 1, 1, 12, 30)),
        ("Feb 29 2020 6:05am", datetime(2020, 2, 29, 6, 5)),
        ("SEP 09 2021 09:09 PM", datetime(2021, 9, 9, 21, 9)),
    ],
)
def test_document_times_parse(text: str, expected: datetime) -> None:
    assert parse_wall_time(text) == expected


@pytest.mark.parametrize("text", ["Feb 1 2020", "1:33PM", "Feb 1 2020 1:33", "Sept 1 2020 1:00PM"])
def test_other_texts_do_not(text: str) -> None:
    with pytest.raises(TimeFormatError):
        parse_wall_time(text)


def test_times_render_as_the_document_writes_them() -> None:
    assert render_document_time(datetime(2020, 2, 1, 13, 33)) == "Feb 1 2020  1:33PM"
    assert render_document_time(datetime(2020, 2, 1, 13, 33), pad_hour=False) == "Feb 1 2020 1:33PM"
    assert render_document_time(datetime(2020, 3, 16, 0, 5)) == "Mar 16 2020 12:05AM"
    assert render_document_time(datetime(2020, 3, 16, 12, 0)) == "Mar 16 2020 12:00PM"
    assert render_document_time(datetime(2020, 3, 16, 22, 0)) == "Mar 16 2020 10:00PM"


def test_zones_are_iana_names_only() -> None:
    assert zone_named("America/Los_Angeles") == ZoneInfo("America/Los_Angeles")
    assert zone_named("Etc/GMT+5") is not None
    assert zone_named("UTC") is not None
    for name in ["", "PST8PDT ", "Mars/Olympus", "../../etc/passwd", "/etc/localtime", "utc"]:
        assert zone_named(name) is None, name


def minutes_around(day: datetime) -> list[datetime]:
    """Every minute from the day before to the day after."""
    start = day - timedelta(days=1)
    return [start + timedelta(minutes=n) for n in range(3 * 24 * 60)]


@pytest.mark.parametrize(
    ("zone", "day"),
    [
        ("America/Los_Angeles", datetime(2020, 3, 8)),  # 2:00 -> 3:00
        ("America/Los_Angeles", datetime(2020, 11, 1)),  # 2:00 -> 1:00
        ("Australia/Lord_Howe", datetime(2020, 10, 4)),  # half-hour DST
        ("America/Sao_Paulo", datetime(2018, 11, 4)),  # midnight skipped
        ("Pacific/Chatham", datetime(2021, 4, 4)),  # +13:45 -> +12:45
        ("Pacific/Apia", datetime(2011, 12, 30)),  # the whole day skipped
        ("Asia/Kolkata", datetime(2020, 3, 8)),  # no change at all
    ],
)
def test_the_fast_path_agrees_with_the_exact_resolution_all_day(zone: str, day: datetime) -> None:
    tz = ZoneInfo(zone)
    for wall in minutes_around(day):
        assert read_local_time(render_document_time(wall), tz) == resolve_local(wall, tz), wall


def test_a_skipped_time_is_read_with_the_offset_before_the_jump() -> None:
    instant, note = resolve_local(datetime(2020, 3, 8, 2, 30), ZoneInfo("America/Los_Angeles"))
    assert instant == datetime(2020, 3, 8, 10, 30, tzinfo=UTC)
    assert note is not None and "does not exist" in note


def test_a_whole_skipped_day_lands_on_the_next() -> None:
    instant, note = resolve_local(datetime(2011, 12, 30, 9, 0), ZoneInfo("Pacific/Apia"))
    assert instant.astimezone(ZoneInfo("Pacific/Apia")) == datetime(
        2011, 12, 31, 9, 0, tzinfo=ZoneInfo("Pacific/Apia")
    )
    assert note is not None and "stored as Dec 31 2011  9:00AM (UTC+14:00)" in note


def test_a_repeated_time_is_its_first_occurrence() -> None:
    instant, note = resolve_local(datetime(2020, 11, 1, 1, 30), ZoneInfo("America/Los_Angeles"))
    assert instant == datetime(2020, 11, 1, 8, 30, tzinfo=UTC)
    assert note is not None and "happens twice" in note


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2020-02-01", datetime(2020, 2, 1, tzinfo=UTC)),
        ("2020-02-01T13:33:00Z", datetime(2020, 2, 1, 13, 33, tzinfo=UTC)),
        ("2020-02-01T13:33:00+05:30", datetime(2020, 2, 1, 8, 3, tzinfo=UTC)),
        ("2020-02-01 13:33", datetime(2020, 2, 1, 13, 33, tzinfo=UTC)),
    ],
)
def test_query_instants_are_iso_8601(text: str, expected: datetime) -> None:
    assert parse_iso_instant(text) == expected


@pytest.mark.parametrize("text", ["yesterday", "2020-02-30", "0001-01-01", "1580562000"])
def test_other_query_instants_are_refused(text: str) -> None:
    with pytest.raises(TimeFormatError):
        parse_iso_instant(text)
