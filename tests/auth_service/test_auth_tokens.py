"""`POST /auth/token/` and `POST /auth/token/refresh/`: token pairs and refresh."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from auth_service.context import auth_context
from auth_service.models import User, db
from auth_service.tokens import user_claims
from servicekit.identity import decode_privileges
from servicekit.revocation import revoke_token, revoke_user_tokens
from servicekit.testing import TestKeys

PASSWORD = "correct horse battery"
INVALID_CREDENTIALS = {"error": "invalid credentials", "code": "invalid_credentials"}

Decode = Callable[[str], dict[str, Any]]
Login = Callable[..., dict[str, str]]


@pytest.fixture
def user(register: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    return register()


def set_user(app: Flask, username: str, **values: Any) -> None:
    with app.app_context():
        user = db.session.query(User).filter_by(username=username).one()
        for name, value in values.items():
            setattr(user, name, value)
        db.session.commit()


def test_token_pair_claims_and_headers(
    client: FlaskClient, user: dict[str, Any], decode: Decode, login: Login
) -> None:
    before = time.time()
    pair = login()

    assert set(pair) == {"access", "refresh"}
    for token_type, token in pair.items():
        header = jwt.get_unverified_header(token)
        assert header["alg"] == "RS256"
        kids = {key["kid"] for key in client.get("/.well-known/jwks.json").get_json()["keys"]}
        assert header["kid"] in kids
        claims = decode(token)
        assert claims["type"] == token_type
        assert claims["sub"] == user["publicId"]
        assert claims["username"] == "test_user_001"
        assert claims["role"] == "normal"
        assert claims["priv"] == {}
        assert claims["iss"] == "flotilla" and claims["aud"] == "flotilla"
        assert isinstance(claims["jti"], str) and claims["jti"]
        assert isinstance(claims["iat"], float)
        assert before - 1 <= claims["iat"] <= time.time() + 1
        assert round(claims["iat"], 3) == claims["iat"]
    access, refresh = decode(pair["access"]), decode(pair["refresh"])
    assert access["exp"] - access["iat"] == pytest.approx(900, abs=1)
    assert refresh["exp"] - refresh["iat"] == pytest.approx(7 * 24 * 3600, abs=1)
    assert access["jti"] != refresh["jti"]


def test_ttls_come_from_the_config(make_app: Callable[..., Flask]) -> None:
    app = make_app(JWT_ACCESS_TTL=60, JWT_REFRESH_TTL=120)
    client = app.test_client()

    def decode(token: str) -> dict[str, Any]:
        return jwt.decode(token, options={"verify_signature": False})

    client.post("/users/", json={"username": "ttl_user", "email": "t@e.org", "password": PASSWORD})

    pair = client.post("/auth/token/", json={"username": "ttl_user", "password": PASSWORD}).json

    access, refresh = decode(pair["access"]), decode(pair["refresh"])
    assert access["exp"] - access["iat"] == pytest.approx(60, abs=1)
    assert refresh["exp"] - refresh["iat"] == pytest.approx(120, abs=1)


def test_staff_tokens_carry_compact_privileges(
    app: Flask, user: dict[str, Any], login: Login, decode: Decode
) -> None:
    set_user(app, "test_user_001", role="staff", privileges={"event": ["read", "create"]})

    claims = decode(login()["access"])

    assert claims["role"] == "staff"
    assert claims["priv"] == {"event": "cr"}
    assert decode_privileges(claims["priv"]) == {"event": frozenset({"create", "read"})}


def test_login_records_last_login(client: FlaskClient, app: Flask, user: dict[str, Any]) -> None:
    assert user["lastLogin"] is None
    client.post("/auth/token/", json={"username": "test_user_001", "password": PASSWORD})

    with app.app_context():
        stored = db.session.query(User).filter_by(username="test_user_001").one()
        assert stored.last_login is not None
        assert stored.last_login.tzinfo is not None
        assert abs(stored.last_login.timestamp() - time.time()) < 60


def test_wrong_password_and_unknown_user_get_the_same_401(
    client: FlaskClient, user: dict[str, Any]
) -> None:
    wrong = client.post("/auth/token/", json={"username": "test_user_001", "password": "nope!nope"})
    unknown = client.post("/auth/token/", json={"username": "nobody", "password": PASSWORD})

    assert wrong.status_code == unknown.status_code == 401
    assert wrong.get_json() == unknown.get_json() == INVALID_CREDENTIALS


def test_a_disabled_user_gets_the_same_401(
    app: Flask, client: FlaskClient, user: dict[str, Any]
) -> None:
    set_user(app, "test_user_001", is_active=False)

    response = client.post("/auth/token/", json={"username": "test_user_001", "password": PASSWORD})

    assert response.status_code == 401
    assert response.get_json() == INVALID_CREDENTIALS


def test_an_account_without_password_cannot_log_in(
    app: Flask, client: FlaskClient, user: dict[str, Any]
) -> None:
    set_user(app, "test_user_001", password_hash=None)

    response = client.post("/auth/token/", json={"username": "test_user_001", "password": ""})

    assert response.status_code == 401
    assert response.get_json() == INVALID_CREDENTIALS


def test_login_without_password_field_is_400(client: FlaskClient) -> None:
    response = client.post("/auth/token/", json={"username": "test_user_001"})

    assert response.status_code == 400
    assert response.get_json()["errors"] == {"password": "missing required field"}


def test_refresh_gives_a_new_pair(
    client: FlaskClient, user: dict[str, Any], login: Login, decode: Decode
) -> None:
    pair = login()

    response = client.post("/auth/token/refresh/", json={"refresh": pair["refresh"]})

    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"access", "refresh"}
    claims = decode(body["access"])
    assert claims["type"] == "access"
    assert claims["sub"] == user["publicId"]
    assert claims["jti"] != decode(pair["access"])["jti"]
    rotated = decode(body["refresh"])
    assert rotated["type"] == "refresh"
    assert rotated["sub"] == user["publicId"]
    assert rotated["jti"] != decode(pair["refresh"])["jti"]


def test_refresh_reflects_a_changed_role(
    app: Flask, client: FlaskClient, user: dict[str, Any], login: Login, decode: Decode
) -> None:
    refresh = login()["refresh"]
    set_user(app, "test_user_001", role="superuser")

    access = client.post("/auth/token/refresh/", json={"refresh": refresh}).get_json()["access"]

    assert decode(access)["role"] == "superuser"


def test_refresh_with_an_access_token_is_401(
    client: FlaskClient, user: dict[str, Any], login: Login
) -> None:
    response = client.post("/auth/token/refresh/", json={"refresh": login()["access"]})

    assert response.status_code == 401
    assert response.get_json()["code"] == "invalid_token"


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c"])
def test_refresh_with_a_malformed_token_is_401(client: FlaskClient, token: str) -> None:
    response = client.post("/auth/token/refresh/", json={"refresh": token})

    assert response.status_code == 401


def test_refresh_with_an_expired_token_is_401(app: Flask, client: FlaskClient) -> None:
    client.post("/users/", json={"username": "old_user", "email": "o@e.org", "password": PASSWORD})
    with app.app_context():
        user = db.session.query(User).filter_by(username="old_user").one()
        # Signed like any refresh token of this app, expired beyond the 30 s leeway.
        issued = auth_context(app).tokens.issue(user.public_id, user_claims(user), "refresh", -120)
    refresh = issued.token

    response = client.post("/auth/token/refresh/", json={"refresh": refresh})

    assert response.status_code == 401
    assert response.get_json()["error"] == "token expired"


def test_refresh_with_a_token_of_a_foreign_key_is_401(
    client: FlaskClient, user: dict[str, Any]
) -> None:
    stranger = TestKeys()
    token = stranger.token(sub=user["publicId"], token_type="refresh")

    response = client.post("/auth/token/refresh/", json={"refresh": token})

    assert response.status_code == 401


def test_refresh_after_tokens_valid_after_moved_is_401(
    app: Flask, client: FlaskClient, user: dict[str, Any], login: Login
) -> None:
    refresh = login()["refresh"]
    time.sleep(0.01)
    set_user(app, "test_user_001", tokens_valid_after=time.time())

    assert client.post("/auth/token/refresh/", json={"refresh": refresh}).status_code == 401
    # a token issued after the mark (fractional iat) is good
    time.sleep(0.01)
    fresh = login()["refresh"]
    assert client.post("/auth/token/refresh/", json={"refresh": fresh}).status_code == 200


def test_refresh_for_a_disabled_or_deleted_user_is_401(
    app: Flask, client: FlaskClient, user: dict[str, Any], login: Login
) -> None:
    refresh = login()["refresh"]
    set_user(app, "test_user_001", is_active=False)
    assert client.post("/auth/token/refresh/", json={"refresh": refresh}).status_code == 401

    with app.app_context():
        db.session.query(User).delete()
        db.session.commit()
    assert client.post("/auth/token/refresh/", json={"refresh": refresh}).status_code == 401


def test_refresh_honours_the_revocation_store(
    client: FlaskClient,
    user: dict[str, Any],
    login: Login,
    decode: Decode,
    redis_client: redis.Redis,
) -> None:
    first, second = login()["refresh"], login()["refresh"]
    claims = decode(first)
    revoke_token(redis_client, claims["jti"], claims["exp"])

    assert client.post("/auth/token/refresh/", json={"refresh": first}).status_code == 401
    assert client.post("/auth/token/refresh/", json={"refresh": second}).status_code == 200

    revoke_user_tokens(redis_client, user["publicId"])
    assert client.post("/auth/token/refresh/", json={"refresh": second}).status_code == 401
