"""activity_service through the gateway, as the document's client calls it."""

from __future__ import annotations

import json
import uuid
from typing import Any

import requests

from tests.activity_service.activity_helpers import seed_download, seed_payload
from tests.e2e.e2e_helpers import bearer, login, new_user

UPLOAD = "/sample/posts"
DOWNLOAD = "/sample/gets"
SEED_MEMBERS = "?member=W012A3CDE&member=W07QCRPA4"
# The headers the document's client sends (its CSRF cookie is meaningless here).
DOCUMENT_HEADERS = {
    "Content-Type": "application/json",
    "Cookie": "csrftoken=6mbdxx7NHJWqf6Co5hgs1USNdaLrlGlTqzRMn7q1bp5XufD0rBDcMBNFM7MNzMtb",
}


def post(gateway_url: str, token: str, body: str | dict[str, Any]) -> requests.Response:
    data = body if isinstance(body, str) else json.dumps(body)
    return requests.post(
        f"{gateway_url}{UPLOAD}",
        data=data,
        headers={**DOCUMENT_HEADERS, **bearer(token)},
        timeout=30,
    )


def normal_user_token(gateway_url: str) -> str:
    return login(gateway_url, new_user(gateway_url))["access"]


def test_the_documents_upload_and_download_through_the_gateway(
    gateway_url: str, admin_token: str
) -> None:
    first = post(gateway_url, admin_token, seed_payload())
    assert first.status_code == 200, first.text
    assert first.headers["Content-Type"] == "application/json"
    body = first.json()
    assert body["ok"] == "true"
    assert body["members_created"] + body["members_updated"] == 2
    assert body["periods_added"] + body["periods_duplicate"] == 6
    assert len(body["warnings"]) == 2

    again = post(gateway_url, admin_token, seed_payload()).json()
    assert (again["members_created"], again["members_updated"]) == (0, 2)
    assert (again["periods_added"], again["periods_duplicate"]) == (0, 6)

    # The document's client sends its payload along with the GET as well.
    download = requests.get(
        f"{gateway_url}{DOWNLOAD}{SEED_MEMBERS}",
        data=seed_payload(),
        headers={**DOCUMENT_HEADERS, **bearer(admin_token)},
        timeout=30,
    )
    assert download.status_code == 200, download.text
    assert download.json() == seed_download()


def test_a_known_member_is_updated_and_times_follow_its_zone(
    gateway_url: str, admin_token: str
) -> None:
    member_id = f"E2E{uuid.uuid4().hex[:8]}"
    period = {"start_time": "Mar 8 2020 2:30AM", "end_time": "Mar 8 2020 4:00AM"}
    first = {"id": member_id, "real_name": "A", "tz": "America/Los_Angeles",
             "activity_periods": [period]}  # fmt: skip
    created = post(gateway_url, admin_token, {"members": [first]})
    assert created.status_code == 200, created.text
    assert "does not exist in America/Los_Angeles" in created.json()["warnings"][0]
    renamed = first | {"real_name": "B", "tz": "UTC", "activity_periods": []}
    moved = post(gateway_url, admin_token, {"members": [renamed]})
    assert moved.json()["members_updated"] == 1
    answer = requests.get(
        f"{gateway_url}{DOWNLOAD}?member={member_id}&format=iso",
        headers=bearer(admin_token),
        timeout=30,
    ).json()
    assert answer["members"] == [
        {"id": member_id, "real_name": "B", "tz": "UTC", "activity_periods": [
            {"start_time": "2020-03-08T10:30:00+00:00", "end_time": "2020-03-08T11:00:00+00:00"}
        ]}
    ]  # fmt: skip


def test_a_bad_upload_is_a_located_400_and_stores_nothing(
    gateway_url: str, admin_token: str
) -> None:
    good_id, bad_id = f"E2E{uuid.uuid4().hex[:8]}", f"E2E{uuid.uuid4().hex[:8]}"
    good = {"id": good_id, "real_name": "G", "tz": "UTC", "activity_periods": []}
    bad = {"id": bad_id, "real_name": "B", "tz": "Mars/Base", "activity_periods": []}
    response = post(gateway_url, admin_token, {"members": [good, bad]})
    assert response.status_code == 400
    assert response.json()["errors"] == {
        "members[1].tz": "unknown time zone 'Mars/Base' (an IANA name)"
    }
    listed = requests.get(
        f"{gateway_url}{DOWNLOAD}?member={good_id}", headers=bearer(admin_token), timeout=30
    ).json()
    assert listed["members"] == []
    malformed = post(gateway_url, admin_token, '{"members": [')
    assert malformed.status_code == 400
    assert malformed.json()["code"] == "invalid_json"


def test_pages_through_the_gateway(gateway_url: str, admin_token: str) -> None:
    prefix = f"P{uuid.uuid4().hex[:8]}"
    members = [{"id": f"{prefix}-{n}", "real_name": str(n), "tz": "UTC"} for n in range(3)]
    assert post(gateway_url, admin_token, {"members": members}).status_code == 200
    query = "&".join(f"member={m['id']}" for m in members)
    first = requests.get(
        f"{gateway_url}{DOWNLOAD}?{query}&limit=2", headers=bearer(admin_token), timeout=30
    ).json()
    assert [m["id"] for m in first["members"]] == [f"{prefix}-0", f"{prefix}-1"]
    rest = requests.get(
        f"{gateway_url}{DOWNLOAD}?{query}&limit=2&cursor={first['next_cursor']}",
        headers=bearer(admin_token),
        timeout=30,
    ).json()
    assert [m["id"] for m in rest["members"]] == [f"{prefix}-2"]
    assert rest["next_cursor"] is None


def test_only_privileged_callers_upload_or_read(gateway_url: str) -> None:
    anonymous_upload = requests.post(
        f"{gateway_url}{UPLOAD}", data=seed_payload(), headers=DOCUMENT_HEADERS, timeout=10
    )
    assert anonymous_upload.status_code == 401
    assert anonymous_upload.json()["code"] == "unauthorized"
    assert requests.get(f"{gateway_url}{DOWNLOAD}", timeout=10).status_code == 401
    token = normal_user_token(gateway_url)
    refused = post(gateway_url, token, seed_payload())
    assert refused.status_code == 403
    assert refused.json() == {"error": "missing privilege: activity create", "code": "forbidden"}
    reading = requests.get(f"{gateway_url}{DOWNLOAD}", headers=bearer(token), timeout=10)
    assert reading.status_code == 403
