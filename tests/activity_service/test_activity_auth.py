"""Who may upload and read: staff with the `activity` privilege, and superusers."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from activity_service.models import Member, db
from tests.activity_service.activity_helpers import DOWNLOAD, JSON, UPLOAD, seed_payload

Headers = Callable[..., dict[str, str]]

CALLERS = {
    "superuser": ("superuser", {}),
    "staff-create": ("staff", {"activity": "c"}),
    "staff-read": ("staff", {"activity": "r"}),
    "staff-crud": ("staff", {"activity": "crud"}),
    "staff-other-model": ("staff", {"event": "crud"}),
    "staff-none": ("staff", {}),
    "normal-with-claim": ("normal", {"activity": "crud"}),
    "normal": ("normal", {}),
}
MAY_UPLOAD = {"superuser", "staff-create", "staff-crud"}
MAY_READ = {"superuser", "staff-read", "staff-crud"}


def members_stored(app: Flask) -> int:
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(Member)) or 0)


@pytest.mark.parametrize("caller", CALLERS)
def test_upload_needs_the_create_privilege(
    app: Flask, client: FlaskClient, headers: Headers, caller: str
) -> None:
    role, privileges = CALLERS[caller]
    auth = headers(role, priv=privileges)
    response = client.post(UPLOAD, data=seed_payload(), headers={**auth, **JSON})
    if caller in MAY_UPLOAD:
        assert response.status_code == 200, response.get_json()
        assert members_stored(app) == 2
    else:
        assert response.status_code == 403
        assert response.get_json() == {
            "error": "missing privilege: activity create",
            "code": "forbidden",
        }
        assert members_stored(app) == 0


@pytest.mark.parametrize("caller", CALLERS)
def test_reading_needs_the_read_privilege(
    client: FlaskClient, headers: Headers, caller: str
) -> None:
    role, privileges = CALLERS[caller]
    response = client.get(DOWNLOAD, headers=headers(role, priv=privileges))
    if caller in MAY_READ:
        assert response.status_code == 200
        assert response.get_json() == {"ok": "true", "members": []}
    else:
        assert response.status_code == 403
        assert response.get_json()["error"] == "missing privilege: activity read"


@pytest.mark.parametrize(("method", "path"), [("POST", UPLOAD), ("GET", DOWNLOAD)])
def test_anonymous_callers_get_401_before_anything_is_read(
    client: FlaskClient, method: str, path: str
) -> None:
    response = client.open(path, method=method, data="{not json", headers=JSON)
    assert response.status_code == 401
    assert response.get_json() == {"error": "authentication required", "code": "unauthorized"}


def test_a_forged_token_is_401(client: FlaskClient) -> None:
    from servicekit.testing import TestKeys

    forged = TestKeys().token(role="superuser")
    response = client.get(DOWNLOAD, headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401


def test_refusals_come_before_body_and_query_checks(client: FlaskClient, headers: Headers) -> None:
    normal = headers("normal")
    assert client.post(UPLOAD, data="x", headers={**normal, **JSON}).status_code == 403
    assert client.post(UPLOAD, data="x", headers=normal).status_code == 403
    assert client.get(f"{DOWNLOAD}?limit=-5&format=xml", headers=normal).status_code == 403


@pytest.mark.parametrize("path", [UPLOAD, DOWNLOAD])
def test_options_lists_the_methods_without_a_token(client: FlaskClient, path: str) -> None:
    response = client.open(path, method="OPTIONS")
    assert response.status_code == 200
    assert "OPTIONS" in response.headers["Allow"]
    assert response.get_data() == b""


def test_head_of_the_download_needs_the_privilege_too(
    client: FlaskClient, headers: Headers
) -> None:
    assert client.head(DOWNLOAD).status_code == 401
    assert client.head(DOWNLOAD, headers=headers("normal")).status_code == 403
    assert client.head(DOWNLOAD, headers=headers("superuser")).status_code == 200
