"""Policies and token checks at the gateway, with real keys and a real Redis."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from werkzeug.test import TestResponse

from devstack.redis_server import free_port
from gateway.app import Gateway
from servicekit.revocation import revoke_token, revoke_user_tokens
from servicekit.testing import TestKeys
from tests.gateway.gateway_harness import (
    EchoUpstream,
    GatewayClient,
    craft_token,
    token_parts,
    with_claims,
)

GatewayFactory = Callable[..., Gateway]
Bearer = Callable[..., dict[str, str]]
PROTECTED = "/sample/gets"
STAFF_ONLY = "/users"
INVALID_CHALLENGE = 'Bearer error="invalid_token"'


def unauthorized(message: str) -> dict[str, str]:
    return {"error": message, "code": "unauthorized"}


def assert_invalid_token(response: TestResponse, message: str) -> None:
    assert response.status_code == 401
    assert response.json == unauthorized(message)
    assert response.headers["WWW-Authenticate"] == INVALID_CHALLENGE
    assert response.headers["X-Request-ID"]


def test_protected_route_without_token_is_401(client: GatewayClient, echo: EchoUpstream) -> None:
    response = client.get(PROTECTED, query_string={"probe": "no-token"})
    assert response.status_code == 401
    assert response.json == unauthorized("authentication required")
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.headers["X-Request-ID"]
    assert ("GET", PROTECTED, "probe=no-token") not in echo.seen


def test_protected_route_with_token_is_forwarded_with_authorization(
    client: GatewayClient, test_keys: TestKeys
) -> None:
    token = test_keys.token()
    response = client.get(PROTECTED, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json["path"] == PROTECTED
    assert response.json["headers"]["authorization"] == f"Bearer {token}"


def test_token_scheme_is_accepted_like_bearer(client: GatewayClient, test_keys: TestKeys) -> None:
    token = test_keys.token()
    response = client.get(PROTECTED, headers={"Authorization": f"Token {token}"})
    assert response.status_code == 200
    assert response.json["headers"]["authorization"] == f"Token {token}"


def test_staff_route_refuses_a_normal_user(client: GatewayClient, bearer: Bearer) -> None:
    response = client.get(STAFF_ONLY, headers=bearer(role="normal"))
    assert response.status_code == 403
    assert response.json == {"error": "staff only", "code": "forbidden"}
    assert response.headers["X-Request-ID"]


@pytest.mark.parametrize("role", ["staff", "superuser"])
def test_staff_route_accepts_staff_and_superusers(
    client: GatewayClient, bearer: Bearer, role: str
) -> None:
    response = client.get(STAFF_ONLY, headers=bearer(role=role))
    assert response.status_code == 200
    assert response.json["method"] == "GET"
    assert response.json["path"] == STAFF_ONLY


def test_token_signed_by_another_key_is_401(client: GatewayClient, test_keys: TestKeys) -> None:
    forged = TestKeys(kid=test_keys.kid).token(role="superuser")
    assert_invalid_token(
        client.get(STAFF_ONLY, headers={"Authorization": f"Bearer {forged}"}), "invalid token"
    )


def test_unsigned_alg_none_token_is_401(client: GatewayClient, test_keys: TestKeys) -> None:
    _, claims, _ = token_parts(test_keys.token())
    token = craft_token({"alg": "none", "typ": "JWT", "kid": test_keys.kid}, claims, None)
    assert_invalid_token(
        client.get(PROTECTED, headers={"Authorization": f"Bearer {token}"}),
        "token algorithm not allowed",
    )


def test_hs256_token_keyed_with_the_public_key_is_401(
    client: GatewayClient, test_keys: TestKeys
) -> None:
    from cryptography.hazmat.primitives import serialization

    public_pem = test_keys.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _, claims, _ = token_parts(test_keys.token())
    token = craft_token({"alg": "HS256", "typ": "JWT", "kid": test_keys.kid}, claims, public_pem)
    assert_invalid_token(
        client.get(PROTECTED, headers={"Authorization": f"Bearer {token}"}),
        "token algorithm not allowed",
    )


def test_tampered_payload_is_401(client: GatewayClient, test_keys: TestKeys) -> None:
    token = with_claims(test_keys.token(role="normal"), role="superuser")
    assert token_parts(token)[1]["role"] == "superuser"
    assert_invalid_token(
        client.get(STAFF_ONLY, headers={"Authorization": f"Bearer {token}"}), "invalid token"
    )


def test_expired_token_beyond_leeway_is_401(client: GatewayClient, bearer: Bearer) -> None:
    assert_invalid_token(client.get(PROTECTED, headers=bearer(ttl=-45)), "token expired")


def test_expired_token_within_leeway_is_accepted(client: GatewayClient, bearer: Bearer) -> None:
    response = client.get(PROTECTED, headers=bearer(ttl=-10))
    assert response.status_code == 200
    assert response.json["path"] == PROTECTED


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"audience": "another-audience"}, "invalid token"),
        ({"issuer": "someone-else"}, "invalid token"),
        ({"headers": {"kid": "no-such-kid"}}, "unknown signing key"),
        ({"token_type": "refresh", "ttl": 7 * 24 * 3600}, "not an access token"),
    ],
    ids=["wrong-audience", "wrong-issuer", "unknown-kid", "refresh-token"],
)
def test_token_with_wrong_claims_is_401(
    client: GatewayClient, bearer: Bearer, claims: dict[str, object], message: str
) -> None:
    assert_invalid_token(client.get(PROTECTED, headers=bearer(**claims)), message)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("Bearer not-a-jwt", "malformed token"),
        ("Bearer a.b.c", "malformed token"),
        ("Basic dXNlcjpwYXNzd29yZA==", "unsupported authorization header"),
        ("Bearer", "unsupported authorization header"),
        ("Bearer one two", "unsupported authorization header"),
    ],
)
def test_garbage_authorization_is_401(client: GatewayClient, header: str, message: str) -> None:
    assert_invalid_token(client.get(PROTECTED, headers={"Authorization": header}), message)


def test_revoked_token_is_401(
    client: GatewayClient, test_keys: TestKeys, redis_client: redis.Redis
) -> None:
    token = test_keys.token(sub="user-revoked")
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get(PROTECTED, headers=headers).status_code == 200
    _, claims, _ = token_parts(token)
    revoke_token(redis_client, claims["jti"], claims["exp"])
    assert_invalid_token(client.get(PROTECTED, headers=headers), "token revoked")
    other = client.get(PROTECTED, headers={"Authorization": f"Bearer {test_keys.token()}"})
    assert other.status_code == 200


def test_user_mark_revokes_earlier_tokens_only(
    client: GatewayClient, test_keys: TestKeys, redis_client: redis.Redis
) -> None:
    before = test_keys.token(sub="user-signed-out")
    time.sleep(0.01)
    revoke_user_tokens(redis_client, "user-signed-out")
    time.sleep(0.01)
    after = test_keys.token(sub="user-signed-out")
    response = client.get(PROTECTED, headers={"Authorization": f"Bearer {before}"})
    assert_invalid_token(response, "token revoked")
    response = client.get(PROTECTED, headers={"Authorization": f"Bearer {after}"})
    assert response.status_code == 200
    other_user = test_keys.token(sub="someone-else")
    response = client.get(PROTECTED, headers={"Authorization": f"Bearer {other_user}"})
    assert response.status_code == 200


def test_unreachable_revocation_store_fails_closed(
    make_gateway: GatewayFactory, bearer: Bearer
) -> None:
    client = GatewayClient(make_gateway(redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    started = time.perf_counter()
    response = client.get(PROTECTED, headers=bearer())
    elapsed = time.perf_counter() - started
    assert response.status_code == 503
    assert response.json == {
        "error": "token revocation store unavailable",
        "code": "revocation_unavailable",
    }
    assert response.headers["X-Request-ID"]
    assert elapsed < 1.0


@pytest.mark.parametrize(
    "header",
    ["Bearer not-a-jwt", "Basic dXNlcjpwYXNzd29yZA==", "expired"],
)
def test_public_route_with_invalid_token_is_forwarded_anonymously(
    client: GatewayClient, test_keys: TestKeys, header: str
) -> None:
    if header == "expired":
        header = f"Bearer {test_keys.token(ttl=-3600)}"
    response = client.post("/auth/token/", headers={"Authorization": header}, json={"u": "x"})
    assert response.status_code == 200
    assert response.json["method"] == "POST"
    assert response.json["path"] == "/auth/token/"
    assert "authorization" not in response.json["headers"]
    assert response.json["body_length"] == len(b'{"u": "x"}')


def test_public_route_with_valid_token_keeps_authorization(
    client: GatewayClient, test_keys: TestKeys
) -> None:
    token = test_keys.token()
    response = client.get("/events/category", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json["headers"]["authorization"] == f"Bearer {token}"


def test_a_burst_beyond_the_redis_pool_waits_for_a_connection(
    make_gateway: Callable[..., Gateway], test_keys: TestKeys
) -> None:
    client = GatewayClient(make_gateway(redis_connections=2))
    headers = {"Authorization": f"Bearer {test_keys.token(sub='bursty')}"}
    with ThreadPoolExecutor(max_workers=32) as pool:
        statuses = list(
            pool.map(lambda _: client.get("/sample/gets", headers=headers).status_code, range(96))
        )
    assert statuses == [200] * 96


def test_requests_sharing_a_redis_round_trip_each_get_their_own_verdict(
    make_gateway: Callable[..., Gateway], test_keys: TestKeys, redis_client: redis.Redis
) -> None:
    client = GatewayClient(make_gateway())
    tokens = [test_keys.token(sub=f"user-{index}") for index in range(40)]
    for token in tokens[::4]:
        claims = token_parts(token)[1]
        revoke_token(redis_client, claims["jti"], claims["exp"])

    def status(token: str) -> int:
        headers = {"Authorization": f"Bearer {token}"}
        return int(client.get("/sample/gets", headers=headers).status_code)

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(status, tokens))
    assert statuses == [401 if index % 4 == 0 else 200 for index in range(40)]
