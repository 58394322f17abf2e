"""POST /sample/posts: the document's payload, idempotence, updates, all-or-nothing, DST."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, func, select, update
from werkzeug.test import TestResponse

from activity_service.models import ActivityPeriod, Member, db
from tests.activity_service.activity_helpers import (
    DOWNLOAD,
    document,
    member,
    seed_download,
    seed_payload,
    uploader,
)

Upload = Callable[..., TestResponse]


def stored(app: Flask) -> dict[str, list[tuple[datetime, datetime]]]:
    """Every member's periods as stored (UTC instants), by member id."""
    with app.app_context():
        rows = db.session.execute(
            select(Member.external_id, ActivityPeriod.start_time, ActivityPeriod.end_time)
            .outerjoin(ActivityPeriod)
            .order_by(Member.external_id, ActivityPeriod.start_time)
        ).all()
    periods: dict[str, list[tuple[datetime, datetime]]] = {}
    for member_id, start, end in rows:
        periods.setdefault(member_id, [])
        if start is not None:
            periods[member_id].append((start, end))
    return periods


def counts(app: Flask) -> tuple[int, int]:
    with app.app_context():
        members = db.session.scalar(select(func.count()).select_from(Member))
        periods = db.session.scalar(select(func.count()).select_from(ActivityPeriod))
    return int(members or 0), int(periods or 0)


def test_the_documents_payload_as_sent_is_stored_and_read_back(
    app: Flask, client: FlaskClient, upload: Upload, admin: dict[str, str]
) -> None:
    response = upload(seed_payload())
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {
        "ok": "true",
        "members_created": 2,
        "members_updated": 0,
        "periods_added": 6,
        "periods_duplicate": 0,
        "warnings": [
            "members[0].activity_periods[2]: end_time is before start_time; stored as sent",
            "members[1].activity_periods[2]: end_time is before start_time; stored as sent",
        ],
        "warnings_total": 2,
    }
    download = client.get(DOWNLOAD, headers=admin)
    assert download.status_code == 200
    assert download.mimetype == "application/json"
    assert download.get_json() == seed_download()
    # Local times are stored as UTC instants: 1:33PM PST and 2:33PM IST.
    periods = stored(app)
    assert periods["W012A3CDE"][0] == (
        datetime(2020, 2, 1, 21, 33, tzinfo=UTC),
        datetime(2020, 2, 1, 21, 54, tzinfo=UTC),
    )
    assert periods["W07QCRPA4"][0][0] == datetime(2020, 2, 1, 9, 3, tzinfo=UTC)
    # Mar 16 is after the US switch to daylight time (UTC-7).
    assert periods["W012A3CDE"][2][0] == datetime(2020, 3, 16, 20, 33, tzinfo=UTC)


def test_the_document_renders_each_time_as_the_document_shows_it(
    client: FlaskClient, upload: Upload, admin: dict[str, str]
) -> None:
    upload(seed_payload())
    text = client.get(DOWNLOAD, headers=admin).get_data(as_text=True)
    assert '"start_time":"Feb 1 2020  1:33PM","end_time":"Feb 1 2020 1:54PM"' in text


def test_uploading_the_same_file_again_stores_nothing_twice(
    app: Flask, client: FlaskClient, upload: Upload, admin: dict[str, str]
) -> None:
    assert upload(seed_payload()).status_code == 200
    again = upload(seed_payload())
    assert again.status_code == 200
    body = again.get_json()
    assert (body["members_created"], body["members_updated"]) == (0, 2)
    assert (body["periods_added"], body["periods_duplicate"]) == (0, 6)
    assert counts(app) == (2, 6)
    assert client.get(DOWNLOAD, headers=admin).get_json() == seed_download()


def test_a_known_member_gets_the_new_name_and_zone_and_the_new_periods(
    app: Flask, client: FlaskClient, upload: Upload, admin: dict[str, str]
) -> None:
    upload(seed_payload())
    changed = member(
        "W012A3CDE",
        ("Feb 1 2020  1:33PM", "Feb 1 2020 1:54PM"),  # Berlin time now: a new instant
        ("Apr 2 2020  9:00AM", "Apr 2 2020 9:30AM"),
        tz="Europe/Berlin",
        real_name="Egon Spengler, PhD",
    )
    response = upload(document(changed))
    assert response.status_code == 200
    body = response.get_json()
    assert (body["members_created"], body["members_updated"]) == (0, 1)
    assert (body["periods_added"], body["periods_duplicate"]) == (2, 0)
    egon = client.get(f"{DOWNLOAD}?member=W012A3CDE", headers=admin).get_json()["members"][0]
    assert egon["real_name"] == "Egon Spengler, PhD"
    assert egon["tz"] == "Europe/Berlin"
    # Stored instants do not move: the old ones are now shown in Berlin time, in order.
    assert [p["start_time"] for p in egon["activity_periods"]] == [
        "Feb 1 2020  1:33PM",
        "Feb 1 2020 10:33PM",
        "Mar 1 2020 10:11AM",
        "Mar 16 2020  9:33PM",
        "Apr 2 2020  9:00AM",
    ]
    assert counts(app) == (2, 8)


def test_an_upload_with_one_bad_member_stores_nothing(app: Flask, upload: Upload) -> None:
    good = member("GOOD1", ("Feb 1 2020 1:00PM", "Feb 1 2020 2:00PM"))
    bad = member(
        "BAD1",
        ("Feb 1 2020 1:00PM", "Feb 1 2020 2:00PM"),
        ("Feb 31 2020 1:00PM", "Feb 1 2020 2:00PM"),
    )
    response = upload(document(good, good | {"id": "GOOD2"}, member("GOOD3"), bad))
    assert response.status_code == 400
    body = response.get_json()
    assert body["code"] == "validation_error"
    assert body["error"] == "invalid upload; nothing was stored"
    assert list(body["errors"]) == ["members[3].activity_periods[1].start_time"]
    assert (
        "day is out of range for month"
        in body["errors"]["members[3].activity_periods[1].start_time"]
    )
    assert counts(app) == (0, 0)


def test_every_problem_is_listed_with_its_location(upload: Upload) -> None:
    response = upload(
        document(
            member("A1", ("Feb 1 2020 1:00PM", "soon")),
            {"id": 7, "real_name": "X", "tz": "Mars/Olympus_Mons", "activity_periods": []},
            member("A3", ("Feb 1 2020 1:00PM", "Feb 1 2020 2:00PM"), tz="Nowhere/Else"),
        )
    )
    assert response.status_code == 400
    errors = response.get_json()["errors"]
    assert set(errors) == {
        "members[0].activity_periods[0].end_time",
        "members[1].id",
        "members[1].tz",
        "members[2].tz",
    }
    assert errors["members[1].id"] == "expected a string"
    assert "unknown time zone 'Mars/Olympus_Mons'" in errors["members[1].tz"]
    assert "Feb 1 2020  1:33PM" in errors["members[0].activity_periods[0].end_time"]


def test_the_list_of_problems_is_capped(upload: Upload) -> None:
    periods = [("never", "Feb 1 2020 2:00PM")] * 150
    response = upload(document(member("A1", *periods)))
    assert response.status_code == 400
    body = response.get_json()
    assert len(body["errors"]) == 100
    assert body["errors_truncated"] is True


def test_a_period_ending_before_it_starts_is_kept_with_a_warning(
    app: Flask, upload: Upload
) -> None:
    response = upload(document(member("R1", ("Mar 16 2020  1:33PM", "Mar 16 2020 1:02PM"))))
    assert response.status_code == 200
    assert response.get_json()["warnings"] == [
        "members[0].activity_periods[0]: end_time is before start_time; stored as sent"
    ]
    [(start, end)] = stored(app)["R1"]
    assert end < start


def test_the_maximum_period_is_configurable(
    make_app: Callable[..., Flask], admin: dict[str, str]
) -> None:
    upload = uploader(make_app(ACTIVITY_MAX_PERIOD_SECONDS=3600).test_client(), admin)
    hour = member("H1", ("Feb 1 2020 1:00PM", "Feb 1 2020 2:00PM"))
    assert upload(document(hour)).status_code == 200
    response = upload(document(member("H2", ("Feb 1 2020 1:00PM", "Feb 1 2020 2:01PM"))))
    assert response.status_code == 400
    assert response.get_json()["errors"] == {
        "members[0].activity_periods[0]": "a period may last at most 1 hour"
    }


def test_the_default_maximum_period_is_seven_days(upload: Upload) -> None:
    week = member("L1", ("Feb 1 2020 1:00PM", "Feb 8 2020 1:00PM"))
    assert upload(document(week)).status_code == 200
    longer = member("L2", ("Feb 1 2020 1:00PM", "Feb 8 2020 1:01PM"))
    response = upload(document(longer))
    assert response.status_code == 400
    assert response.get_json()["errors"] == {
        "members[0].activity_periods[0]": "a period may last at most 7 days"
    }
    backwards = member("L3", ("Feb 8 2020 1:01PM", "Feb 1 2020 1:00PM"))
    assert upload(document(backwards)).status_code == 400


def test_a_period_sent_twice_in_one_upload_is_stored_once(app: Flask, upload: Upload) -> None:
    period = ("Feb 1 2020 1:00PM", "Feb 1 2020 2:00PM")
    response = upload(document(member("D1", period, period)))
    body = response.get_json()
    assert (body["periods_added"], body["periods_duplicate"]) == (1, 1)
    assert counts(app) == (1, 1)


def test_a_member_listed_twice_is_one_member_with_all_periods(app: Flask, upload: Upload) -> None:
    first = member("T1", ("Feb 1 2020 1:00PM", "Feb 1 2020 2:00PM"), real_name="Old")
    second = member("T1", ("Feb 2 2020 1:00PM", "Feb 2 2020 2:00PM"), real_name="New")
    body = upload(document(first, second)).get_json()
    assert (body["members_created"], body["members_updated"], body["periods_added"]) == (1, 0, 2)
    with app.app_context():
        assert db.session.scalar(select(Member.real_name)) == "New"
    assert len(stored(app)["T1"]) == 2


def test_a_member_may_come_without_periods(
    client: FlaskClient, upload: Upload, admin: dict[str, str]
) -> None:
    plain = {"id": "N1", "real_name": "No Periods", "tz": "Asia/Kolkata"}
    assert upload(document(plain)).status_code == 200
    assert client.get(DOWNLOAD, headers=admin).get_json()["members"] == [
        plain | {"activity_periods": []}
    ]


def test_a_downloaded_document_uploads_as_is(
    app: Flask, client: FlaskClient, upload: Upload, admin: dict[str, str]
) -> None:
    upload(seed_payload())
    downloaded = client.get(DOWNLOAD, headers=admin).get_data(as_text=True)
    body = upload(downloaded).get_json()
    assert (body["periods_added"], body["periods_duplicate"]) == (0, 6)


def upload_one(upload: Upload, start: str, end: str, tz: str) -> dict[str, Any]:
    response = upload(document(member("DST1", (start, end), tz=tz)))
    assert response.status_code == 200, response.get_json()
    return dict(response.get_json())


def test_a_time_skipped_by_spring_forward_is_moved_forward_with_a_warning(
    app: Flask, client: FlaskClient, upload: Upload, admin: dict[str, str]
) -> None:
    body = upload_one(upload, "Mar 8 2020 2:30AM", "Mar 8 2020 4:00AM", "America/Los_Angeles")
    assert body["warnings"] == [
        "members[0].activity_periods[0].start_time: Mar 8 2020  2:30AM does not exist in "
        "America/Los_Angeles (clocks skip forward); stored as Mar 8 2020  3:30AM (UTC-07:00)"
    ]
    # 2:30 with the offset before the jump (PST, UTC-8) is 10:30 UTC, which is 3:30 PDT.
    assert stored(app)["DST1"] == [
        (datetime(2020, 3, 8, 10, 30, tzinfo=UTC), datetime(2020, 3, 8, 11, 0, tzinfo=UTC))
    ]
    period = client.get(f"{DOWNLOAD}?format=iso", headers=admin).get_json()["members"][0][
        "activity_periods"
    ][0]
    assert period == {
        "start_time": "2020-03-08T03:30:00-07:00",
        "end_time": "2020-03-08T04:00:00-07:00",
    }


def test_a_time_repeated_by_fall_back_is_its_first_occurrence_with_a_warning(
    app: Flask, upload: Upload
) -> None:
    body = upload_one(upload, "Nov 1 2020 1:30AM", "Nov 1 2020 3:00AM", "America/Los_Angeles")
    assert body["warnings"] == [
        "members[0].activity_periods[0].start_time: Nov 1 2020  1:30AM happens twice in "
        "America/Los_Angeles (clocks go back); read as the first occurrence, UTC-07:00"
    ]
    assert stored(app)["DST1"] == [
        (datetime(2020, 11, 1, 8, 30, tzinfo=UTC), datetime(2020, 11, 1, 11, 0, tzinfo=UTC))
    ]


def test_times_next_to_a_transition_are_exact_and_unremarked(app: Flask, upload: Upload) -> None:
    body = upload_one(upload, "Mar 8 2020 1:59AM", "Mar 8 2020 3:00AM", "America/Los_Angeles")
    assert body["warnings"] == []
    assert stored(app)["DST1"] == [
        (datetime(2020, 3, 8, 9, 59, tzinfo=UTC), datetime(2020, 3, 8, 10, 0, tzinfo=UTC))
    ]


def test_concurrent_uploads_of_one_file_store_each_member_and_period_once(
    app: Flask, admin: dict[str, str]
) -> None:
    """The unique key decides, not a look-before-insert: four uploads race on one file."""
    periods = [(f"Feb {day} 2020 1:00PM", f"Feb {day} 2020 2:00PM") for day in range(1, 21)]
    body = json.dumps(document(*(member(f"C{n:03d}", *periods) for n in range(50))))
    answers: list[dict[str, Any]] = []

    def send() -> None:
        response = uploader(app.test_client(), admin)(body)
        assert response.status_code == 200, response.get_data(as_text=True)
        answers.append(dict(response.get_json()))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(answers) == 4
    assert sum(answer["members_created"] for answer in answers) == 50
    assert sum(answer["periods_added"] for answer in answers) == 1000
    assert all(a["periods_added"] + a["periods_duplicate"] == 1000 for a in answers)
    assert all(a["members_created"] + a["members_updated"] == 50 for a in answers)
    assert counts(app) == (50, 1000)


def test_an_upload_waits_for_a_writer_holding_its_members(app: Flask, upload: Upload) -> None:
    upload(seed_payload())
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    options = {"check_same_thread": False} if url.startswith("sqlite") else {}
    engine = create_engine(url, connect_args=options)
    try:
        with engine.connect() as other:
            transaction = other.begin()
            other.execute(
                update(Member.__table__)
                .where(Member.__table__.c.external_id == "W012A3CDE")
                .values(real_name="Held")
            )
            release = threading.Timer(0.5, transaction.commit)
            release.start()
            started = time.monotonic()
            response = upload(document(member("W012A3CDE", tz="UTC", real_name="After")))
            waited = time.monotonic() - started
            release.join()
    finally:
        engine.dispose()
    assert response.status_code == 200, response.get_json()
    assert waited >= 0.4
    with app.app_context():
        names = db.session.scalars(select(Member.real_name).order_by(Member.external_id)).all()
    assert names == ["After", "Glinda Southgood"]
