"""Refresh-token rotation with reuse detection, and signing out (`DELETE`/`PUT /auth/token/`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from auth_service.models import RefreshToken, db
from servicekit.revocation import is_revoked, jti_key, user_key
from tests.auth_service.auth_helpers import bearer, set_user, stored_user

Decode = Callable[[str], dict[str, Any]]
Login = Callable[..., dict[str, str]]


@pytest.fixture
def user(register: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    return register()


def refresh(client: FlaskClient, token: str) -> Any:
    return client.post("/auth/token/refresh/", json={"refresh": token})


def refresh_rows(app: Flask) -> list[RefreshToken]:
    with app.app_context():
        rows = db.session.query(RefreshToken).order_by(RefreshToken.issued_at).all()
        for row in rows:
            db.session.expunge(row)
        return rows


def test_each_refresh_uses_up_the_token_and_continues_the_family(
    app: Flask, client: FlaskClient, user: dict[str, Any], login: Login
) -> None:
    first = login()
    second = refresh(client, first["refresh"]).get_json()
    third = refresh(client, second["refresh"]).get_json()

    rows = refresh_rows(app)
    assert len(rows) == 3
    assert len({row.family_id for row in rows}) == 1
    assert [row.used_at is not None for row in rows] == [True, True, False]
    assert all(row.revoked_at is None for row in rows)
    assert refresh(client, third["refresh"]).status_code == 200


def test_reusing_a_rotated_refresh_token_revokes_the_whole_family(
    app: Flask,
    client: FlaskClient,
    user: dict[str, Any],
    login: Login,
    decode: Decode,
    redis_client: redis.Redis,
) -> None:
    stolen = login()
    legitimate = refresh(client, stolen["refresh"]).get_json()
    other_device = login()

    replay = refresh(client, stolen["refresh"])

    assert replay.status_code == 401
    assert replay.get_json() == {
        "error": "refresh token reused: its session is revoked",
        "code": "invalid_token",
    }
    assert refresh(client, legitimate["refresh"]).status_code == 401
    # the access tokens issued in that session are revoked at the gateway too
    for access in (stolen["access"], legitimate["access"]):
        assert is_revoked(redis_client, decode(access))
    # another login session of the same user is untouched
    assert not is_revoked(redis_client, decode(other_device["access"]))
    assert refresh(client, other_device["refresh"]).status_code == 200


def test_concurrent_refreshes_with_one_token_let_exactly_one_through(
    app: Flask, user: dict[str, Any], login: Login
) -> None:
    token = login()["refresh"]
    start = threading.Barrier(4)
    statuses: list[int] = []

    def attempt() -> None:
        client = app.test_client()
        start.wait(timeout=10)
        statuses.append(refresh(client, token).status_code)

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(statuses) == [200, 401, 401, 401]


def test_an_unrecorded_refresh_token_is_refused(
    app: Flask, client: FlaskClient, user: dict[str, Any], login: Login
) -> None:
    token = login()["refresh"]
    with app.app_context():
        db.session.query(RefreshToken).delete()
        db.session.commit()

    response = refresh(client, token)

    assert response.status_code == 401
    assert response.get_json()["error"] == "unknown refresh token"


def test_sign_out_everywhere(
    app: Flask,
    client: FlaskClient,
    user: dict[str, Any],
    login: Login,
    redis_client: redis.Redis,
) -> None:
    sessions = [login() for _ in range(3)]
    refresh(client, sessions[0]["refresh"])  # used up: not counted again
    current = sessions[2]["access"]

    response = client.delete("/auth/token/", headers=bearer(current))

    assert response.status_code == 200
    assert response.get_json() == {"tokens_deleted": 4}  # 3 live refresh tokens + this access
    mark = float(redis_client.get(user_key(user["publicId"])))
    assert abs(mark - time.time()) < 60
    assert stored_user(app, "test_user_001").tokens_valid_after == pytest.approx(mark)
    assert client.get("/users/test_user_001", headers=bearer(current)).status_code == 401
    for pair in sessions:
        assert refresh(client, pair["refresh"]).status_code == 401
    # a login after it is good
    time.sleep(0.01)
    fresh = login()["access"]
    assert client.get("/users/test_user_001", headers=bearer(fresh)).status_code == 200


def test_sign_out_everywhere_needs_a_token(client: FlaskClient) -> None:
    response = client.delete("/auth/token/")

    assert response.status_code == 401


def test_revoke_one_refresh_token_ends_that_session_only(
    client: FlaskClient,
    user: dict[str, Any],
    login: Login,
    decode: Decode,
    redis_client: redis.Redis,
) -> None:
    phone, laptop = login(), login()

    response = client.put(
        "/auth/token/", json={"token": phone["refresh"]}, headers=bearer(laptop["access"])
    )

    assert response.status_code == 200
    assert response.get_json() == {"tokens_deleted": 1}
    assert refresh(client, phone["refresh"]).status_code == 401
    assert is_revoked(redis_client, decode(phone["access"]))
    assert refresh(client, laptop["refresh"]).status_code == 200
    again = client.put(
        "/auth/token/", json={"token": phone["refresh"]}, headers=bearer(laptop["access"])
    )
    assert again.get_json() == {"tokens_deleted": 0}


def test_revoke_one_access_token(
    client: FlaskClient,
    user: dict[str, Any],
    login: Login,
    decode: Decode,
    redis_client: redis.Redis,
) -> None:
    phone, laptop = login(), login()

    response = client.put(
        "/auth/token/", json={"token": phone["access"]}, headers=bearer(laptop["access"])
    )

    assert response.get_json() == {"tokens_deleted": 1}
    assert redis_client.exists(jti_key(decode(phone["access"])["jti"]))
    assert client.get("/users/test_user_001", headers=bearer(phone["access"])).status_code == 401
    assert refresh(client, phone["refresh"]).status_code == 401  # its session ended with it
    assert client.get("/users/test_user_001", headers=bearer(laptop["access"])).status_code == 200


def test_revoking_another_users_token_is_403(
    client: FlaskClient,
    register: Callable[..., dict[str, Any]],
    user: dict[str, Any],
    login: Login,
) -> None:
    register(username="test_user_002", email="two@example.org")
    mine = login()
    theirs = login("test_user_002")

    response = client.put(
        "/auth/token/", json={"token": theirs["refresh"]}, headers=bearer(mine["access"])
    )

    assert response.status_code == 403
    assert refresh(client, theirs["refresh"]).status_code == 200


@pytest.mark.parametrize("body", [{"token": "garbage"}, {"token": ""}, {}, {"token": 5}])
def test_revoking_a_bad_token_is_4xx(
    client: FlaskClient, user: dict[str, Any], login: Login, body: dict[str, Any]
) -> None:
    response = client.put("/auth/token/", json=body, headers=bearer(login()["access"]))

    assert response.status_code in (400, 401)
    assert response.is_json


def test_auth_refuses_a_revoked_or_orphaned_token_itself(
    app: Flask, client: FlaskClient, user: dict[str, Any], login: Login, test_keys: Any
) -> None:
    """Defence in depth: a request that did not come through the gateway is checked too."""
    access = login()["access"]
    url = "/users/test_user_001"
    assert client.get(url, headers=bearer(access)).status_code == 200

    set_user(app, "test_user_001", is_active=False)
    assert client.get(url, headers=bearer(access)).status_code == 401

    nobody = test_keys.token(sub="no-such-user", username="test_user_001", role="staff")
    assert client.get(url, headers=bearer(nobody)).status_code == 401
    service = test_keys.token(sub="service:events", username="events", role="service")
    refused = client.get(url, headers=bearer(service))
    assert refused.status_code == 403
    assert refused.get_json()["error"] == "a user token is required"
