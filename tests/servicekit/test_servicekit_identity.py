"""Token verification inside a service, and the authorization helpers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from flask import Flask
from flask.testing import FlaskClient

from servicekit.errors import ApiError
from servicekit.identity import (
    Identity,
    current_identity,
    decode_privileges,
    encode_privileges,
    require_identity,
)
from servicekit.testing import TestKeys
from tests.servicekit.servicekit_harness import bearer

THING = {"name": "lamp", "items": [{"value": 1}]}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(**overrides: Any) -> dict[str, Any]:
    now = time.time()
    payload = {
        "sub": "user-1",
        "username": "user",
        "role": "normal",
        "priv": {},
        "jti": uuid.uuid4().hex,
        "iat": round(now, 3),
        "exp": int(now + 900),
        "iss": "flotilla",
        "aud": "flotilla",
        "type": "access",
        **overrides,
    }
    return {k: v for k, v in payload.items() if v is not None}


def signed(keys: TestKeys, payload: dict[str, Any]) -> str:
    return jwt.encode(payload, keys.private_key, algorithm="RS256", headers={"kid": keys.kid})


def unsigned(keys: TestKeys) -> str:
    header = b64(json.dumps({"alg": "none", "typ": "JWT", "kid": keys.kid}).encode())
    return f"{header}.{b64(json.dumps(claims(role='superuser')).encode())}."


def hmac_with_public_key(keys: TestKeys) -> str:
    """The algorithm-confusion attack: HS256 keyed with the (public) RSA key."""
    public_pem = keys.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": keys.kid}).encode())
    body = b64(json.dumps(claims(role="superuser")).encode())
    signature = hmac.new(public_pem, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{b64(signature)}"


def tampered(keys: TestKeys) -> str:
    header, _body, signature = keys.token().split(".")
    return f"{header}.{b64(json.dumps(claims(role='superuser')).encode())}.{signature}"


BAD_TOKENS: dict[str, Callable[[TestKeys], str]] = {
    "expired": lambda k: k.token(ttl=-120),
    "wrong-audience": lambda k: k.token(audience="someone-else"),
    "wrong-issuer": lambda k: k.token(issuer="evil"),
    "unknown-kid": lambda k: k.token(headers={"kid": "no-such-key"}),
    "no-kid": lambda k: jwt.encode(claims(), k.private_key, algorithm="RS256"),
    "other-key-same-kid": lambda k: jwt.encode(
        claims(), TestKeys().private_key, algorithm="RS256", headers={"kid": k.kid}
    ),
    "refresh-type": lambda k: k.token(token_type="refresh"),
    "alg-none": unsigned,
    "hs256-with-public-key": hmac_with_public_key,
    "tampered-payload": tampered,
    "tampered-signature": lambda k: k.token()[:-6] + "AAAAAA",
    "missing-sub": lambda k: signed(k, claims(sub=None)),
    "missing-exp": lambda k: signed(k, claims(exp=None)),
    "missing-iat": lambda k: signed(k, claims(iat=None)),
    "missing-jti": lambda k: signed(k, claims(jti=None)),
    "missing-iss": lambda k: signed(k, claims(iss=None)),
    "missing-aud": lambda k: signed(k, claims(aud=None)),
    "not-yet-valid": lambda k: signed(k, claims(nbf=int(time.time()) + 3600)),
    "garbage": lambda k: "not-a-jwt",
    "two-segments": lambda k: "abc.def",
}


def assert_unauthorized(response) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 401
    assert response.mimetype == "application/json"
    assert response.get_json()["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("path", ["/me", "/things/1"])
def test_no_token_is_401(client: FlaskClient, path: str) -> None:
    assert_unauthorized(client.get(path))


@pytest.mark.parametrize(
    "header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Token", "bearer-less"]
)
def test_unusable_authorization_header_is_401(client: FlaskClient, header: str) -> None:
    assert_unauthorized(client.get("/me", headers={"Authorization": header}))


@pytest.mark.parametrize("make_token", BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
def test_bad_token_is_401(
    client: FlaskClient, test_keys: TestKeys, make_token: Callable[[TestKeys], str]
) -> None:
    token = make_token(test_keys)
    for path in ("/me", "/staff", "/things/1"):
        assert_unauthorized(client.get(path, headers=bearer(token)))
    assert_unauthorized(client.post("/things", json=THING, headers=bearer(token)))


def test_expiry_leeway(client: FlaskClient, test_keys: TestKeys) -> None:
    response = client.get("/me", headers=bearer(test_keys.token(ttl=-5)))
    assert response.status_code == 200


@pytest.mark.parametrize("scheme", ["Bearer", "Token", "token", "bearer"])
def test_bearer_and_token_schemes(client: FlaskClient, test_keys: TestKeys, scheme: str) -> None:
    token = test_keys.token(sub="u-9", username="ann")
    response = client.get("/me", headers={"Authorization": f"{scheme} {token}"})
    assert response.status_code == 200
    assert response.get_json()["subject"] == "u-9"


def test_identity_from_token(client: FlaskClient, test_keys: TestKeys) -> None:
    token = test_keys.token(
        sub="u-7", username="bob", role="staff", priv={"event": "rcx", "thing": "d"}
    )
    response = client.get("/me", headers=bearer(token))
    assert response.status_code == 200
    assert response.get_json() == {
        "subject": "u-7",
        "username": "bob",
        "role": "staff",
        "privileges": {"event": ["create", "read"], "thing": ["delete"]},
        "tokenId": jwt.decode(token, options={"verify_signature": False})["jti"],
    }


@pytest.mark.parametrize(
    ("role", "status"), [("normal", 403), ("service", 403), ("staff", 200), ("superuser", 200)]
)
def test_require_staff(client: FlaskClient, test_keys: TestKeys, role: str, status: int) -> None:
    response = client.get("/staff", headers=bearer(test_keys.token(role=role, username="z")))
    assert response.status_code == status
    if status == 403:
        assert response.get_json()["code"] == "forbidden"
    else:
        assert response.get_json() == {"staff": "z"}


@pytest.mark.parametrize(
    ("role", "priv", "status"),
    [
        ("staff", {}, 403),
        ("staff", {"thing": "r"}, 403),
        ("staff", {"other": "c"}, 403),
        ("staff", {"thing": "cr"}, 201),
        ("normal", {"thing": "c"}, 403),
        ("superuser", {}, 201),
    ],
)
def test_require_privilege(
    client: FlaskClient, test_keys: TestKeys, role: str, priv: dict[str, str], status: int
) -> None:
    token = test_keys.token(role=role, priv=priv)
    response = client.post("/things", json=THING, headers=bearer(token))
    assert response.status_code == status
    if status == 403:
        assert response.get_json() == {
            "error": "missing privilege: thing create",
            "code": "forbidden",
        }
    else:
        assert response.get_json() == {"id": 1, "name": "lamp", "items": [{"value": 1}]}


def test_privileges_round_trip() -> None:
    privileges = {"event": ["read", "create"], "thing": ["delete", "update"], "none": []}
    encoded = encode_privileges(privileges)
    assert encoded == {"event": "cr", "thing": "ud"}
    assert decode_privileges(encoded) == {
        "event": frozenset({"create", "read"}),
        "thing": frozenset({"update", "delete"}),
    }
    full = {"x": ["create", "read", "update", "delete"]}
    assert decode_privileges(encode_privileges(full)) == {"x": frozenset(full["x"])}


@pytest.mark.parametrize("claim", [None, [], "cr", 5])
def test_decode_privileges_ignores_malformed_claims(claim: object) -> None:
    assert decode_privileges(claim) == {}


def test_decode_privileges_ignores_unknown_letters() -> None:
    assert decode_privileges({"thing": "cxz"}) == {"thing": frozenset({"create"})}


def test_identity_can() -> None:
    privileges = {"thing": frozenset({"create", "read"})}
    staff = Identity("s", "s", "staff", privileges)
    assert staff.can("thing", "create") and staff.can("thing", "read")
    assert not staff.can("thing", "delete")
    assert not staff.can("other", "read")
    superuser = Identity("a", "a", "superuser")
    assert superuser.can("anything", "delete")
    assert superuser.is_staff and superuser.is_superuser
    normal = Identity("n", "n", "normal", privileges)
    assert not normal.can("thing", "create")
    assert not normal.is_staff
    service = Identity("service:x", "x", "service", privileges)
    assert service.is_service and not service.can("thing", "create")


@pytest.mark.parametrize("optional", [False, True])
def test_an_options_request_is_anonymous_not_a_server_error(
    app: Flask, test_keys: TestKeys, optional: bool
) -> None:
    """flask-jwt-extended never verifies OPTIONS; asking who calls must not crash."""
    headers = {"Authorization": f"Bearer {test_keys.token()}"}
    with app.test_request_context("/me", method="OPTIONS", headers=headers):
        if optional:
            assert current_identity(optional=True) is None
        else:
            with pytest.raises(ApiError) as refused:
                require_identity()
            assert refused.value.status == 401
