"""datapoints_service through the gateway: the document's writes as the admin, a user
copied from auth_service through the stream, and row permissions over the region tree
seen by that user, in JSON and CSV."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

import requests

from tests.e2e.fest_helpers import Client, participant, wait_for

API = "/api/v2"


def created_id(response: requests.Response) -> int:
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["meta"] is None and body["error"] is None
    return int(body["objects"]["new_id"])


def objects(response: requests.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    return list(response.json()["objects"])


def copied_user_id(admin: Client, username: str) -> int:
    """This service's id of a user auth_service just created (the stream's copy)."""

    def found() -> int | None:
        users = objects(admin.get(f"{API}/user/", params={"username": username}))
        return int(users[0]["id"]) if users else None

    return wait_for(found, 15, f"{username} copied into datapoints_service")


def a_tree(admin: Client) -> dict[str, int]:
    """An office and a country > province > district chain of regions, as the document
    writes them (numbers as strings)."""
    tag = uuid.uuid4().hex[:8]
    office = created_id(admin.post(f"{API}/office/", json={"name": f"office {tag}"}))
    kind = created_id(admin.post(f"{API}/region_type/", json={"name": f"kind {tag}"}))
    ids = {"office": office}
    parent: int | None = None
    for level in ("country", "province", "district"):
        body = {
            "name": f"{level} {tag}",
            "region_code": f"{level}-{tag}",
            "office_id": str(office),
            "region_type_id": str(kind),
        }
        if parent is not None:
            body["parent_region_id"] = str(parent)
        parent = ids[level] = created_id(admin.post(f"{API}/region/", json=body))
    return ids


def test_a_user_sees_the_regions_under_their_permission(gateway_url: str, admin_token: str) -> None:
    admin = Client(gateway_url, admin_token, "admin")
    tree = a_tree(admin)
    analyst = participant(gateway_url, "analyst")
    analyst_id = copied_user_id(admin, analyst.username)
    granted = admin.post(
        f"{API}/region_permission/",
        json={"user_id": str(analyst_id), "region_id": str(tree["province"]), "read_write": "r"},
    )
    created_id(granted)

    seen = analyst.get(f"{API}/region/", params={"office": tree["office"]})
    as_csv = analyst.get(f"{API}/region/", params={"office": tree["office"], "format": "csv"})
    hidden = analyst.get(f"{API}/region/{tree['country']}")

    assert sorted(region["id"] for region in objects(seen)) == [
        tree["province"],
        tree["district"],
    ]
    assert seen.json()["meta"]["total_count"] == 2
    assert as_csv.status_code == 200, as_csv.text
    assert as_csv.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert sorted(int(row["id"]) for row in rows) == [tree["province"], tree["district"]]
    assert hidden.status_code == 404


def test_the_documents_writes_update_and_delete_both_ways(
    gateway_url: str, admin_token: str
) -> None:
    admin = Client(gateway_url, admin_token, "admin")
    tree = a_tree(admin)

    renamed = admin.post(f"{API}/region/", json={"id": tree["district"], "name": "Renamed"})
    moved = admin.put(f"{API}/region/{tree['district']}", json={"latitude": "9.5"})
    referenced = admin.delete(f"{API}/region/{tree['province']}")
    deleted = admin.post(f"{API}/region/", json={"id": tree["district"], "delete": True})
    gone = admin.get(f"{API}/region/{tree['district']}")
    then = admin.delete(f"{API}/region/{tree['province']}")

    assert renamed.status_code == 200, renamed.text
    assert objects(renamed)[0]["name"] == "Renamed"
    assert moved.status_code == 200, moved.text
    assert float(objects(moved)[0]["latitude"]) == 9.5
    assert referenced.status_code == 409
    assert referenced.json()["referred_by"] == ["region.parent_region_id"]
    assert deleted.json() == {
        "objects": {"deleted_id": tree["district"]},
        "meta": None,
        "error": None,
    }
    assert gone.status_code == 404
    assert then.status_code == 204


def test_bad_filters_and_writes_are_refused_naming_them(gateway_url: str, admin_token: str) -> None:
    admin = Client(gateway_url, admin_token, "admin")
    analyst = participant(gateway_url, "analyst")

    unknown_filter = admin.get(f"{API}/region/", params={"colour": "red"})
    bad_value = admin.get(f"{API}/region/", params={"id__in": "1,x"})
    dangling = admin.post(
        f"{API}/region/",
        json={"name": "x", "region_code": uuid.uuid4().hex, "office_id": "999999",
              "region_type_id": "999999"},
    )  # fmt: skip
    by_a_user = analyst.post(f"{API}/office/", json={"name": uuid.uuid4().hex})
    anonymous = Client(gateway_url).get(f"{API}/region/")
    users_elsewhere = admin.post(f"{API}/user/", json={"username": "someone"})

    assert unknown_filter.status_code == 400
    assert "colour" in unknown_filter.json()["errors"]
    assert bad_value.status_code == 400
    assert "id__in" in bad_value.json()["errors"]
    assert dangling.status_code == 400
    assert set(dangling.json()["errors"]) >= {"office_id", "region_type_id"}
    assert by_a_user.status_code == 403
    assert anonymous.status_code == 401
    assert users_elsewhere.status_code == 405
    assert "/users/" in users_elsewhere.json()["error"]
