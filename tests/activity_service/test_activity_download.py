"""GET /sample/gets: order, filters, ISO times, pagination, and the document's GET as sent."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.activity_service.activity_helpers import (
    DOWNLOAD,
    JSON,
    document,
    member,
    seed_download,
    seed_payload,
    uploader,
)

Upload = Callable[..., TestResponse]


@pytest.fixture
def read(client: FlaskClient, admin: dict[str, str]) -> Callable[..., dict[str, Any]]:
    def get(query: str = "", status: int = 200) -> dict[str, Any]:
        response = client.get(f"{DOWNLOAD}{query}", headers=admin)
        assert response.status_code == status, response.get_data(as_text=True)
        return dict(response.get_json())

    return get


def ids(body: dict[str, Any]) -> list[str]:
    return [entry["id"] for entry in body["members"]]


@pytest.fixture
def three_members(upload: Upload) -> None:
    """Sent out of order: members by id, periods by time, must come back sorted."""
    late = ("Mar 2 2020 9:00AM", "Mar 2 2020 10:00AM")
    early = ("Jan 5 2020 9:00AM", "Jan 5 2020 10:00AM")
    middle = ("Feb 2 2020 9:00AM", "Feb 2 2020 10:00AM")
    response = upload(
        document(
            member("b2", late, early, middle),
            member("B1", middle),
            member("a3", late, tz="Asia/Kolkata"),
            member("Z0"),
        )
    )
    assert response.status_code == 200, response.get_json()


def test_members_come_by_id_and_periods_in_time_order(
    read: Callable[..., dict[str, Any]], three_members: None
) -> None:
    body = read()
    assert body["ok"] == "true"
    assert ids(body) == ["B1", "Z0", "a3", "b2"]  # byte order of the ids, on every database
    b2 = body["members"][3]
    assert [p["start_time"] for p in b2["activity_periods"]] == [
        "Jan 5 2020  9:00AM",
        "Feb 2 2020  9:00AM",
        "Mar 2 2020  9:00AM",
    ]
    assert body["members"][1] == {
        "id": "Z0",
        "real_name": "Member Z0",
        "tz": "UTC",
        "activity_periods": [],
    }
    assert "next_cursor" not in body


def test_member_filter_is_repeatable(
    read: Callable[..., dict[str, Any]], three_members: None
) -> None:
    assert ids(read("?member=b2&member=B1&member=nobody")) == ["B1", "b2"]
    assert ids(read("?member=nobody")) == []


def test_since_and_until_pick_periods_by_start_time(
    read: Callable[..., dict[str, Any]], three_members: None
) -> None:
    body = read("?since=2020-02-01&until=2020-03-02T09:00:00Z")
    periods = {entry["id"]: entry["activity_periods"] for entry in body["members"]}
    assert ids(body) == ["B1", "Z0", "a3", "b2"]  # every member, with the periods that fit
    assert [p["start_time"] for p in periods["b2"]] == ["Feb 2 2020  9:00AM"]
    assert periods["a3"] == [
        # 9:00AM in Kolkata is 03:30 UTC: before `until`
        {"start_time": "Mar 2 2020  9:00AM", "end_time": "Mar 2 2020 10:00AM"}
    ]
    later = read("?since=2020-03-02T09:00:00%2B00:00")
    assert [p["start_time"] for p in later["members"][3]["activity_periods"]] == [
        "Mar 2 2020  9:00AM"
    ]


def test_iso_format_shows_each_members_offset(
    read: Callable[..., dict[str, Any]], three_members: None
) -> None:
    body = read("?format=iso&member=a3")
    assert body["members"][0]["activity_periods"] == [
        {"start_time": "2020-03-02T09:00:00+05:30", "end_time": "2020-03-02T10:00:00+05:30"}
    ]


def test_pages_follow_the_cursor_to_the_end(
    read: Callable[..., dict[str, Any]], three_members: None
) -> None:
    seen: list[str] = []
    query = "?limit=3"
    pages = 0
    while True:
        body = read(query)
        pages += 1
        seen += ids(body)
        if body["next_cursor"] is None:
            break
        query = f"?limit=3&cursor={body['next_cursor']}"
    assert pages == 2
    assert seen == ["B1", "Z0", "a3", "b2"]
    first = read("?limit=2")
    assert ids(first) == ["B1", "Z0"]
    assert ids(read(f"?limit=2&cursor={first['next_cursor']}")) == ["a3", "b2"]
    assert read("?limit=4")["next_cursor"] is None
    assert read("?limit=2&member=b2&member=a3") == {
        **read("?member=a3&member=b2"),
        "next_cursor": None,
    }


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?limit=0", "limit"),
        ("?limit=1001", "limit"),
        ("?limit=ten", "limit"),
        ("?cursor=!!!", "cursor"),
        ("?cursor=aGFzIHNwYWNl", "cursor"),  # decodes to a string that is no member id
        ("?since=yesterday", "since"),
        ("?until=2020-13-01", "until"),
        ("?since=2020-03-01&until=2020-02-01", "until"),
        ("?format=xml", "format"),
        ("?member=bad%20id", "member[0]"),
    ],
)
def test_bad_query_values_are_400(
    read: Callable[..., dict[str, Any]], query: str, field: str
) -> None:
    body = read(query, status=400)
    assert body["code"] == "validation_error"
    assert field in body["errors"]


def test_too_many_member_filters_are_400(
    make_app: Callable[..., Flask], admin: dict[str, str]
) -> None:
    client = make_app(ACTIVITY_MAX_MEMBER_FILTERS=2).test_client()
    response = client.get(f"{DOWNLOAD}?member=a&member=b&member=c", headers=admin)
    assert response.status_code == 400
    assert response.get_json()["errors"] == {"member": "at most 2 members"}


def test_the_documents_get_with_its_body_is_answered(
    client: FlaskClient, upload: Upload, admin: dict[str, str]
) -> None:
    """The document's client sends the payload along with its GET: it is ignored."""
    upload(seed_payload())
    response = client.get(
        DOWNLOAD,
        data=seed_payload(),
        headers={**admin, **JSON, "Cookie": "csrftoken=6mbdxx7NHJWqf6Co5hgs1USNdaLrlGlTqzRMn7q1"},
    )
    assert response.status_code == 200
    assert response.get_json() == seed_download()


def test_the_answer_is_streamed(client: FlaskClient, upload: Upload, admin: dict[str, str]) -> None:
    upload(seed_payload())
    response = client.get(DOWNLOAD, headers=admin, buffered=False)
    assert response.is_streamed
    assert "Content-Length" not in response.headers
    response.close()


def test_a_page_size_limit_is_configurable(
    make_app: Callable[..., Flask], admin: dict[str, str]
) -> None:
    app = make_app(ACTIVITY_MAX_PAGE_SIZE=5)
    client = app.test_client()
    uploader(client, admin)(document(*(member(f"M{i}") for i in range(7))))
    assert client.get(f"{DOWNLOAD}?limit=6", headers=admin).status_code == 400
    body = client.get(f"{DOWNLOAD}?limit=5", headers=admin).get_json()
    assert len(body["members"]) == 5
    assert body["next_cursor"] is not None
