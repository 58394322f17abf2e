"""The image API's token flows: `POST /register/`, `POST /api-token-auth/`,
`GET /regenerateToken/`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from auth_service.models import ApiToken, User, db
from servicekit.revocation import is_revoked

Decode = Callable[[str], dict[str, Any]]
DEMO = {"username": "demo", "password": "demouser"}


def token_header(token: str) -> dict[str, str]:
    return {"Authorization": f"Token {token}"}


def register(client: FlaskClient, **body: Any) -> Any:
    return client.post("/register/", json={**DEMO, **body})


def test_register_with_json_answers_201_with_a_token(
    app: Flask, client: FlaskClient, decode: Decode
) -> None:
    response = register(client)

    assert response.status_code == 201
    assert set(response.get_json()) == {"token"}
    claims = decode(response.get_json()["token"])
    assert claims["type"] == "access"
    assert claims["username"] == "demo"
    assert claims["role"] == "normal"
    assert claims["exp"] - claims["iat"] == pytest.approx(30 * 24 * 3600, abs=2)
    with app.app_context():
        user = db.session.query(User).filter_by(username="demo").one()
        assert user.email is None and user.role == "normal" and user.password_hash
        assert db.session.get(ApiToken, claims["jti"]) is not None


def test_register_with_a_form_and_an_email(client: FlaskClient, decode: Decode) -> None:
    response = client.post("/register/", data={**DEMO, "email": "demo@example.org"})

    assert response.status_code == 201, response.get_json()
    assert decode(response.get_json()["token"])["username"] == "demo"


def test_the_registered_account_is_an_ordinary_user(client: FlaskClient) -> None:
    token = register(client).get_json()["token"]

    record = client.get("/users/demo", headers=token_header(token))
    pair = client.post("/auth/token/", json=DEMO)

    assert record.status_code == 200
    assert record.get_json()["username"] == "demo"
    assert pair.status_code == 200


def test_register_a_taken_username_is_400(client: FlaskClient) -> None:
    register(client)

    response = register(client)

    assert response.status_code == 400
    assert response.get_json()["errors"] == {"username": "This username already exists"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"password": "short"}, "password"),
        ({"password": "Demo"}, "password"),
        ({"username": "a b"}, "username"),
        ({"email": "nope"}, "email"),
        ({"role": "superuser"}, "role"),
    ],
)
def test_register_invalid_input_is_400(
    client: FlaskClient, body: dict[str, Any], field: str
) -> None:
    response = register(client, **body)

    assert response.status_code == 400
    assert set(response.get_json()["errors"]) == {field}


def test_register_without_a_password_is_400(client: FlaskClient) -> None:
    response = client.post("/register/", json={"username": "demo"})

    assert response.status_code == 400
    assert response.get_json()["errors"] == {"password": "missing required field"}


def test_api_token_auth_with_json_and_form(client: FlaskClient, decode: Decode) -> None:
    register(client)

    as_json = client.post("/api-token-auth/", json=DEMO)
    as_form = client.post("/api-token-auth/", data=DEMO)

    assert as_json.status_code == as_form.status_code == 200
    first, second = as_json.get_json()["token"], as_form.get_json()["token"]
    assert decode(first)["username"] == decode(second)["username"] == "demo"
    assert first != second


@pytest.mark.parametrize(
    "body", [{"username": "demo", "password": "wrong one"}, {"username": "nobody", "password": "x"}]
)
def test_api_token_auth_with_bad_credentials_is_400(
    client: FlaskClient, body: dict[str, str]
) -> None:
    register(client)

    response = client.post("/api-token-auth/", json=body)

    assert response.status_code == 400
    assert response.get_json() == {
        "error": "Unable to log in with provided credentials.",
        "code": "invalid_credentials",
    }


def test_regenerate_revokes_every_earlier_api_token_at_once(
    client: FlaskClient, decode: Decode, redis_client: redis.Redis
) -> None:
    first = register(client).get_json()["token"]
    second = client.post("/api-token-auth/", json=DEMO).get_json()["token"]
    session = client.post("/auth/token/", json=DEMO).get_json()["access"]

    response = client.get("/regenerateToken/", headers=token_header(first))

    assert response.status_code == 200
    new = response.get_json()["token"]
    assert decode(new)["jti"] not in (decode(first)["jti"], decode(second)["jti"])
    for old in (first, second):
        assert is_revoked(redis_client, decode(old))
        assert client.get("/users/demo", headers=token_header(old)).status_code == 401
    assert client.get("/users/demo", headers=token_header(new)).status_code == 200
    # the account's ordinary sessions are not API tokens: they stay
    assert (
        client.get("/users/demo", headers={"Authorization": f"Bearer {session}"}).status_code == 200
    )


def test_regenerate_needs_a_token(client: FlaskClient) -> None:
    assert client.get("/regenerateToken/").status_code == 401


def test_live_api_tokens_per_user_are_capped(
    make_app: Callable[..., Flask], decode: Decode, redis_client: redis.Redis
) -> None:
    client = make_app(API_TOKENS_PER_USER=2).test_client()
    first = register(client).get_json()["token"]
    second = client.post("/api-token-auth/", json=DEMO).get_json()["token"]
    third = client.post("/api-token-auth/", json=DEMO).get_json()["token"]

    assert is_revoked(redis_client, decode(first))
    assert not is_revoked(redis_client, decode(second))
    assert not is_revoked(redis_client, decode(third))
