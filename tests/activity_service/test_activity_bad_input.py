"""Every kind of bad input is a clear 4xx JSON answer, never a 500, and stores nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from activity_service.models import Member, db
from tests.activity_service.activity_helpers import JSON, UPLOAD, document, member, uploader

Upload = Callable[..., TestResponse]
PERIOD = ("Feb 1 2020 1:00PM", "Feb 1 2020 2:00PM")


def assert_nothing_stored(app: Flask) -> None:
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Member)) == 0


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", '{"members": []}'),
        ("application/x-www-form-urlencoded", "members=1"),
        ("multipart/form-data; boundary=x", "--x--"),
        (None, '{"members": []}'),
    ],
)
def test_a_body_not_declared_json_is_415(
    client: FlaskClient, admin: dict[str, str], content_type: str | None, body: str
) -> None:
    headers = {**admin, **({"Content-Type": content_type} if content_type else {})}
    response = client.post(UPLOAD, data=body, headers=headers)
    assert response.status_code == 415
    assert response.get_json() == {
        "error": "expected a JSON body (Content-Type: application/json)",
        "code": "unsupported_media_type",
    }


def expected_message(body: bytes) -> str:
    if not body.strip():
        return "empty body"
    if body.startswith(b"[["):
        return "the JSON document is nested more than"
    return "malformed JSON"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   \r\n\t",
        b"{members: []}",
        b'{"members": [}',
        b'{"members": []',
        b"\xff\xfe\x00garbage",
        b'{"members": "\xc3\x28"}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"members": [{"id": ' + b"9" * 5000 + b"}]}",
    ],
    ids=[
        "empty",
        "blank",
        "bare-key",
        "bad-bracket",
        "truncated",
        "binary",
        "bad-utf8",
        "deep",
        "huge-integer",
    ],
)
def test_a_body_that_is_not_json_is_400(
    app: Flask, client: FlaskClient, admin: dict[str, str], body: bytes
) -> None:
    response = client.post(UPLOAD, data=body, headers={**admin, **JSON})
    assert response.status_code == 400
    answer = response.get_json()
    assert answer["code"] == "invalid_json"
    assert answer["error"].startswith(expected_message(body))
    assert_nothing_stored(app)


def test_a_malformed_body_is_located_in_the_message(
    client: FlaskClient, admin: dict[str, str]
) -> None:
    response = client.post(UPLOAD, data='{\r\n\t"members": [,]}', headers={**admin, **JSON})
    assert "line 2 column 14" in response.get_json()["error"]


BAD_DOCUMENTS: list[tuple[Any, dict[str, str]]] = [
    ([], {"_schema": "expected a JSON object with a 'members' list"}),
    ("members", {"_schema": "expected a JSON object with a 'members' list"}),
    ({}, {"members": "missing required field"}),
    ({"members": None}, {"members": "missing required field"}),
    ({"members": {"id": "A"}}, {"members": "expected a list"}),
    ({"members": [], "extra": 1}, {"extra": "unknown field"}),
    ({"members": ["W1"]}, {"members[0]": "expected an object"}),
    ({"members": [{"real_name": "A", "tz": "UTC"}]}, {"members[0].id": "missing required field"}),
    (document(member("W1") | {"id": 12}), {"members[0].id": "expected a string"}),
    (
        document(member("has space")),
        {"members[0].id": "must be 1 to 64 characters: letters, digits, '_', '.', ':', '@' or '-'"},
    ),
    (
        document(member("W" * 65)),
        {"members[0].id": "must be 1 to 64 characters: letters, digits, '_', '.', ':', '@' or '-'"},
    ),
    (document(member("W1", real_name=None)), {"members[0].real_name": "missing required field"}),
    (document(member("W1", real_name=["A"])), {"members[0].real_name": "expected a string"}),
    (
        document(member("W1", real_name="x" * 201)),
        {"members[0].real_name": "at most 200 characters"},
    ),
    (document(member("W1", tz=5)), {"members[0].tz": "expected a string"}),
    (
        document(member("W1", tz="America/Springfield")),
        {"members[0].tz": "unknown time zone 'America/Springfield' (an IANA name)"},
    ),
    (
        document(member("W1", tz="../../etc/passwd")),
        {"members[0].tz": "unknown time zone '../../etc/passwd' (an IANA name)"},
    ),
    (document(member("W1", nickname="E")), {"members[0].nickname": "unknown field"}),
    (
        document(member("W1") | {"activity_periods": {"start_time": "x"}}),
        {"members[0].activity_periods": "expected a list"},
    ),
    (
        document(member("W1") | {"activity_periods": ["Feb 1 2020 1:00PM"]}),
        {"members[0].activity_periods[0]": "expected an object"},
    ),
    (
        document(member("W1") | {"activity_periods": [{"start_time": "Feb 1 2020 1:00PM"}]}),
        {"members[0].activity_periods[0].end_time": "missing required field"},
    ),
    (
        document(member("W1") | {"activity_periods": [{"start_time": 1580562000, "end_time": 1}]}),
        {
            "members[0].activity_periods[0].start_time": "expected a string",
            "members[0].activity_periods[0].end_time": "expected a string",
        },
    ),
    (
        document(
            member("W1")
            | {"activity_periods": [{"start_time": PERIOD[0], "end_time": PERIOD[1], "x": 1}]}
        ),
        {"members[0].activity_periods[0].x": "unknown field"},
    ),
]


@pytest.mark.parametrize(("body", "errors"), BAD_DOCUMENTS)
def test_a_document_of_the_wrong_shape_is_400_with_locations(
    app: Flask, upload: Upload, body: Any, errors: dict[str, str]
) -> None:
    response = upload(json.dumps(body))
    assert response.status_code == 400
    answer = response.get_json()
    assert answer["code"] == "validation_error"
    assert answer["errors"] == errors
    assert_nothing_stored(app)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("2020-02-01T13:33:00", "expected a time like 'Feb 1 2020  1:33PM'"),
        ("Feb 1 2020 13:33", "expected a time like"),
        ("Feb 1 2020 13:33PM", "hour must be 1 to 12 before AM/PM"),
        ("Feb 1 2020 0:33AM", "hour must be 1 to 12 before AM/PM"),
        ("Feb 1 2020 1:60PM", "minute must be 0 to 59"),
        ("Feb 30 2020 1:00PM", "day is out of range for month"),
        ("Feb 29 2021 1:00PM", "day is out of range for month"),
        ("Feb 0 2020 1:00PM", "day is out of range for month"),
        ("Fev 1 2020 1:00PM", "unknown month 'Fev'"),
        ("February 1 2020 1:00PM", "expected a time like"),
        ("Feb 1 20 1:00PM", "expected a time like"),
        ("Feb 1 1899 1:00PM", "year must be 1900 to 9998"),
        ("Feb 1 9999 1:00PM", "year must be 1900 to 9998"),
        ("Feb 1 2020 1:00", "expected a time like"),
        ("Feb 1 2020 1:00XM", "expected a time like"),
        ("Feb \u0661 2020 1:00PM", "expected a time like"),  # an Arabic-Indic digit
        ("", "expected a time like"),
    ],
)
def test_an_unparseable_time_is_400_naming_the_field(
    app: Flask, upload: Upload, text: str, problem: str
) -> None:
    response = upload(document(member("W1", (text, PERIOD[1]))))
    assert response.status_code == 400
    message = response.get_json()["errors"]["members[0].activity_periods[0].start_time"]
    assert problem in message
    assert_nothing_stored(app)


@pytest.mark.parametrize(
    "text",
    ["Feb 1 2020 1:00PM", "Feb  1  2020   1:00PM", "feb 1 2020 1:00pm", " Feb 1 2020 1:00 PM "],
)
def test_spacing_and_case_are_free(upload: Upload, text: str) -> None:
    response = upload(document(member("W1", (text, "Feb 1 2020 2:00PM"))))
    assert response.status_code == 200, response.get_json()


def test_a_body_over_the_limit_is_413(
    make_app: Callable[..., Flask], admin: dict[str, str]
) -> None:
    app = make_app(MAX_CONTENT_LENGTH=1000)
    client = app.test_client()
    body = json.dumps(document(*(member(f"W{i}", PERIOD) for i in range(20))))
    assert len(body) > 1000
    response = client.post(UPLOAD, data=body, headers={**admin, **JSON})
    assert response.status_code == 413
    assert response.get_json()["code"] == "payload_too_large"
    assert_nothing_stored(app)


def test_the_default_body_limit_is_50_mib(app: Flask) -> None:
    assert app.config["MAX_CONTENT_LENGTH"] == 50 * 1024 * 1024


def test_too_many_members_or_periods_in_one_upload_is_400(
    make_app: Callable[..., Flask], admin: dict[str, str]
) -> None:
    app = make_app(ACTIVITY_MAX_MEMBERS=2, ACTIVITY_MAX_PERIODS=3)
    upload = uploader(app.test_client(), admin)
    three = document(member("W1"), member("W2"), member("W3"))
    assert upload(three).get_json()["errors"] == {"members": "at most 2 members per upload, got 3"}
    periods = [("Feb 1 2020 1:00PM", f"Feb 1 2020 1:0{i}PM") for i in range(4)]
    assert upload(document(member("W1", *periods))).get_json()["errors"] == {
        "members": "at most 3 activity periods per upload, got 4"
    }
    assert upload(document(member("W1", *periods[:3]))).status_code == 200
