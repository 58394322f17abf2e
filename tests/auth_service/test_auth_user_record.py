"""`GET /users/<username>`: your own record, or anyone's for staff."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient

from servicekit.testing import TestKeys
from tests.auth_service.auth_helpers import USER_KEYS, bearer


def test_own_record_has_the_documented_keys(
    client: FlaskClient,
    register: Callable[..., dict[str, Any]],
    login: Callable[..., dict[str, str]],
) -> None:
    created = register()
    access = login()["access"]
    response = client.get("/users/test_user_001", headers=bearer(access))
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == USER_KEYS
    assert body["publicId"] == created["publicId"]
    assert body["lastLogin"] is not None  # the login above was recorded
    assert "password" not in response.get_data(as_text=True).lower()


def test_the_image_api_token_scheme_works_too(
    client: FlaskClient,
    register: Callable[..., dict[str, Any]],
    login: Callable[..., dict[str, str]],
) -> None:
    register()
    access = login()["access"]
    response = client.get("/users/test_user_001", headers={"Authorization": f"Token {access}"})
    assert response.status_code == 200


def test_another_users_record_is_refused_like_an_unknown_one(
    client: FlaskClient,
    register: Callable[..., dict[str, Any]],
    login: Callable[..., dict[str, str]],
) -> None:
    register()
    register(username="test_user_002", email="two@example.org")
    access = login()["access"]
    other = client.get("/users/test_user_002", headers=bearer(access))
    unknown = client.get("/users/nobody_here", headers=bearer(access))
    assert other.status_code == unknown.status_code == 403
    assert other.get_json() == unknown.get_json()
    assert other.get_json()["code"] == "forbidden"


def test_staff_see_anyone_and_get_404_for_unknown(
    client: FlaskClient, register: Callable[..., dict[str, Any]], staff_token: Callable[..., str]
) -> None:
    register()
    staff = staff_token()
    assert client.get("/users/test_user_001", headers=bearer(staff)).status_code == 200
    missing = client.get("/users/nobody_here", headers=bearer(staff))
    assert missing.status_code == 404
    assert missing.get_json() == {"error": "no such user", "code": "not_found"}


def test_anonymous_and_bad_tokens_get_401(
    client: FlaskClient, register: Callable[..., dict[str, Any]], test_keys: TestKeys
) -> None:
    register()
    assert client.get("/users/test_user_001").status_code == 401
    expired = test_keys.token(ttl=-120)
    assert client.get("/users/test_user_001", headers=bearer(expired)).status_code == 401
    refresh = test_keys.token(token_type="refresh")
    assert client.get("/users/test_user_001", headers=bearer(refresh)).status_code == 401
