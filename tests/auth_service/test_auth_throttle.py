"""Login throttling: failed attempts per username and per client address, in Redis."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from auth_service.throttle import Limit, parse_limit
from devstack.redis_server import free_port
from tests.auth_service.auth_helpers import PASSWORD

TOO_MANY = {"error": "too many failed attempts: try again later", "code": "rate_limited"}


@pytest.fixture
def throttled(make_app: Callable[..., Flask], redis_client: redis.Redis) -> Flask:
    return make_app(LOGIN_RATE_LIMIT_USERNAME="3/minute", LOGIN_RATE_LIMIT_ADDRESS="5/minute")


def login(client: FlaskClient, username: str, password: str, address: str = "") -> int:
    headers = {"X-Forwarded-For": address} if address else {}
    response = client.post(
        "/auth/token/", json={"username": username, "password": password}, headers=headers
    )
    return response.status_code


def test_failures_per_username_lead_to_429_even_with_the_right_password(
    throttled: Flask,
) -> None:
    client = throttled.test_client()
    client.post("/users/", json={"username": "victim", "email": "v@e.org", "password": PASSWORD})

    attempts = [login(client, "victim", "wrong password", f"10.0.0.{i}") for i in range(3)]
    blocked = client.post(
        "/auth/token/",
        json={"username": "victim", "password": PASSWORD},
        headers={"X-Forwarded-For": "10.0.0.9"},
    )

    assert attempts == [401, 401, 401]
    assert blocked.status_code == 429
    assert blocked.get_json() == TOO_MANY
    assert 1 <= int(blocked.headers["Retry-After"]) <= 60
    # another username from the same addresses is not affected
    client.post("/users/", json={"username": "bystander", "email": "b@e.org", "password": PASSWORD})
    assert login(client, "bystander", PASSWORD, "10.0.0.1") == 200


def test_an_unknown_username_is_throttled_alike(throttled: Flask) -> None:
    client = throttled.test_client()
    client.post("/users/", json={"username": "real_one", "email": "r@e.org", "password": PASSWORD})

    real = [login(client, "real_one", "wrong password", f"10.1.0.{i}") for i in range(4)]
    ghost = [login(client, "ghost_one", "wrong password", f"10.2.0.{i}") for i in range(4)]

    assert real == ghost == [401, 401, 401, 429]


def test_successful_logins_are_not_counted(throttled: Flask) -> None:
    client = throttled.test_client()
    client.post("/users/", json={"username": "regular", "email": "r@e.org", "password": PASSWORD})

    assert [login(client, "regular", PASSWORD) for _ in range(8)] == [200] * 8


def test_failures_per_address_use_the_last_forwarded_entry(throttled: Flask) -> None:
    """The gateway appends the peer address; what a client put before it is not trusted."""
    client = throttled.test_client()

    spoofed = [
        login(client, f"name_{i}", "wrong password", f"1.2.3.{i}, 192.0.2.7") for i in range(5)
    ]
    blocked = login(client, "name_9", "wrong password", "8.8.8.8, 192.0.2.7")
    elsewhere = login(client, "name_9", "wrong password", "192.0.2.8")

    assert spoofed == [401] * 5
    assert blocked == 429
    assert elsewhere == 401


def test_without_forwarding_the_peer_address_counts(throttled: Flask) -> None:
    client = throttled.test_client()

    statuses = [login(client, f"someone_{i}", "wrong password") for i in range(6)]

    assert statuses == [401] * 5 + [429]


def test_the_image_api_login_is_throttled_too(throttled: Flask) -> None:
    client = throttled.test_client()
    statuses = [
        client.post(
            "/api-token-auth/", json={"username": "demo", "password": "nope nope"}
        ).status_code
        for _ in range(4)
    ]

    assert statuses == [400, 400, 400, 429]


def test_a_wrong_old_password_counts_as_a_failed_login(
    throttled: Flask,
) -> None:
    client = throttled.test_client()
    client.post("/users/", json={"username": "changer", "email": "c@e.org", "password": PASSWORD})
    access = client.post(
        "/auth/token/", json={"username": "changer", "password": PASSWORD}
    ).get_json()["access"]
    body = {"oldPassword": "not it at all", "newPassword": "brand new password"}

    statuses = [
        client.put(
            "/users/changer/password/", json=body, headers={"Authorization": f"Bearer {access}"}
        ).status_code
        for _ in range(4)
    ]

    assert statuses == [422, 422, 422, 429]


def test_limits_can_be_switched_off(make_app: Callable[..., Flask]) -> None:
    client = make_app(LOGIN_RATE_LIMIT_USERNAME="off", LOGIN_RATE_LIMIT_ADDRESS="off").test_client()

    assert [login(client, "x_user", "wrong password") for _ in range(12)] == [401] * 12


def test_without_redis_logins_still_work(make_app: Callable[..., Flask]) -> None:
    """The throttle is a safety net: an unreachable Redis does not stop logins."""
    app = make_app(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    client = app.test_client()
    client.post("/users/", json={"username": "lonely", "email": "l@e.org", "password": PASSWORD})

    assert login(client, "lonely", "wrong password") == 401
    assert login(client, "lonely", PASSWORD) == 200


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10/15 minutes", Limit(10, 900)),
        ("5/hour", Limit(5, 3600)),
        ("3 per minute", Limit(3, 60)),
        ("off", None),
        ("", None),
    ],
)
def test_parse_limit(text: str, expected: Limit | None) -> None:
    assert parse_limit(text) == expected


def test_a_mistyped_limit_fails_at_start(make_app: Callable[..., Flask]) -> None:
    with pytest.raises(RuntimeError, match="LOGIN_RATE_LIMIT_ADDRESS"):
        make_app(LOGIN_RATE_LIMIT_ADDRESS="lots")
