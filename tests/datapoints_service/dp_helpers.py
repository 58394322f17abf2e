"""Helpers for datapoints_service's tests: callers (users of the users copy, with tokens
this service accepts) and rows written straight to the database."""

from __future__ import annotations

import csv
import io
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from datapoints_service import tree
from datapoints_service.models import Office, Region, RegionType, User, db
from servicekit.testing import TestKeys

# Every privilege this service's resources are written with.
WRITTEN = (
    "office",
    "region_type",
    "region",
    "campaign_type",
    "campaign",
    "indicator",
    "indicator_tag",
    "region_map",
    "campaign_map",
    "indicator_map",
    "group",
    "user_group",
    "region_permission",
    "group_permission",
    "user_permission",
)
ALL_PRIVILEGES = {model: "crud" for model in WRITTEN}


@dataclass(frozen=True)
class Person:
    """A caller: their row in the users copy (`user_id`) and their token's headers."""

    user_id: int
    public_id: str
    username: str
    headers: dict[str, str]


def add_person(
    app: Flask,
    keys: TestKeys,
    username: str,
    *,
    role: str = "normal",
    priv: dict[str, str] | None = None,
) -> Person:
    """A user as the lifecycle stream would have copied them, with a token."""
    public_id = uuid.uuid4().hex
    with app.app_context():
        user = User(
            public_id=public_id,
            username=username,
            first_name=username.title(),
            email=f"{username}@example.org",
            is_staff=role in ("staff", "superuser"),
            is_superuser=role == "superuser",
        )
        db.session.add(user)
        db.session.commit()
        user_id = user.id
    token = keys.token(sub=public_id, username=username, role=role, priv=priv)
    return Person(user_id, public_id, username, {"Authorization": f"Bearer {token}"})


def stranger(
    keys: TestKeys, role: str = "normal", priv: dict[str, str] | None = None
) -> dict[str, str]:
    """Headers of a caller the users copy does not know (yet)."""
    token = keys.token(sub=uuid.uuid4().hex, username="stranger", role=role, priv=priv)
    return {"Authorization": f"Bearer {token}"}


def create(client: FlaskClient, headers: dict[str, str], resource: str, **body: Any) -> int:
    """POST a row; its new id (the insert must succeed)."""
    response = client.post(f"/api/v2/{resource}/", json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    return int(response.get_json()["objects"]["new_id"])


def listing(
    client: FlaskClient, headers: dict[str, str], resource: str, **params: Any
) -> dict[str, Any]:
    response = client.get(f"/api/v2/{resource}/", query_string=params, headers=headers)
    assert response.status_code == 200, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def ids(client: FlaskClient, headers: dict[str, str], resource: str, **params: Any) -> list[int]:
    params.setdefault("limit", 1000)
    return [row["id"] for row in listing(client, headers, resource, **params)["objects"]]


def region_tree(app: Flask, parents: list[int | None]) -> list[int]:
    """Regions written straight to the database: region i's parent is region
    `parents[i]` (an index into the list, earlier than i) or none; their ids."""
    with app.app_context():
        office = Office(name=f"office-{uuid.uuid4().hex[:8]}")
        kind = RegionType(name=f"type-{uuid.uuid4().hex[:8]}")
        db.session.add_all([office, kind])
        db.session.flush()
        made: list[int] = []
        for index, parent in enumerate(parents):
            region = Region(
                name=f"region {index}",
                region_code=f"code-{index}-{uuid.uuid4().hex[:6]}",
                slug=f"region-{index}-{uuid.uuid4().hex[:6]}",
                region_type_id=kind.id,
                office_id=office.id,
                parent_region_id=None if parent is None else made[parent],
            )
            db.session.add(region)
            db.session.flush()
            tree.add(db.session(), region.id, region.parent_region_id)
            made.append(region.id)
        db.session.commit()
        return made


def csv_rows(
    client: FlaskClient, headers: dict[str, str], path: str, **params: Any
) -> list[dict[str, str]]:
    """A CSV answer's rows. The response is closed, as a WSGI server closes it: that ends
    the streamed answer's database transaction."""
    params["format"] = "csv"
    with client.get(path, query_string=params, headers=headers) as response:
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.mimetype == "text/csv"
        text = response.get_data(as_text=True)
    return list(csv.DictReader(io.StringIO(text)))


def run_together(count: int, work: Callable[[int], list[int] | None]) -> list[int]:
    """`work(0)` ... `work(count - 1)` on as many threads, started at once; the statuses
    they returned, all together. An exception in a thread fails the test."""
    statuses: list[int] = []
    failures: list[BaseException] = []
    start = threading.Barrier(count)

    def run(index: int) -> None:
        try:
            start.wait()
            statuses.extend(work(index) or [])
        except BaseException as exc:  # reported below, not lost in the thread
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    return statuses
