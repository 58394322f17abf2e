"""Rate limits at the gateway (real Redis), and the client address behind trusted proxies."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis

from gateway.app import create_app
from gateway.config import GatewayConfig
from gateway.guard import RateLimitPolicy
from gateway.ratelimit import Counter, Limit, evaluate, parse_limits
from gateway.routes import ROUTES
from gateway.routing import CREDENTIAL_MAX_BODY, PUBLIC, Route
from servicekit.testing import TestKeys
from tests.gateway.gateway_harness import EchoUpstream, GatewayClient

Bearer = Callable[..., dict[str, str]]
# One call to each credential route: its method and a path the table sends to it.
CREDENTIAL_CALLS = [
    ("POST", "/auth/token/"),
    ("POST", "/api-token-auth/"),
    ("POST", "/users/somebody/password/reset"),
    ("PATCH", "/users/somebody/password"),
    ("POST", "/users/"),
    ("POST", "/register/"),
]


def limited_client(make_gateway: Callable[..., Any], **limits: str) -> GatewayClient:
    policy = RateLimitPolicy(**{name: parse_limits(text) for name, text in limits.items()})
    return GatewayClient(make_gateway(rate_limits=policy))


def test_parse_limits_reads_the_limits_string_syntax() -> None:
    assert parse_limits("100/minute;10 per second") == (Limit(100, 60), Limit(10, 1))
    assert parse_limits("off") == () and parse_limits(None) == ()


def test_anonymous_callers_are_limited_per_address_with_headers(
    make_gateway: Callable[..., Any],
) -> None:
    client = limited_client(make_gateway, address="3/minute")
    for remaining in (2, 1, 0):
        response = client.get("/events/category")
        assert response.status_code == 200
        assert response.headers["X-RateLimit-Limit"] == "3"
        assert response.headers["X-RateLimit-Remaining"] == str(remaining)
        assert 0 < int(response.headers["X-RateLimit-Reset"]) <= 60
    refused = client.get("/events/category")
    assert refused.status_code == 429
    assert refused.json == {"error": "too many requests", "code": "rate_limited"}
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    other = client.get("/events/category", environ_base={"REMOTE_ADDR": "127.9.8.7"})
    assert other.status_code == 200  # another address has its own budget


def test_authenticated_callers_are_limited_per_user(
    make_gateway: Callable[..., Any], bearer: Bearer
) -> None:
    client = limited_client(make_gateway, address="1/minute", user="2/minute")
    alice = bearer(sub="alice")
    assert client.get("/sample/gets", headers=alice).status_code == 200
    assert client.get("/sample/gets", headers=alice).status_code == 200
    assert client.get("/sample/gets", headers=alice).status_code == 429
    # Bob shares Alice's address but not her budget; anonymous calls use the address's.
    assert client.get("/sample/gets", headers=bearer(sub="bob")).status_code == 200
    assert client.get("/events/category").status_code == 200
    assert client.get("/events/category").status_code == 429


def test_credential_routes_are_limited_per_username_across_addresses(
    make_gateway: Callable[..., Any],
) -> None:
    client = limited_client(make_gateway, login_user="2/minute", login_address="100/minute")
    body = {"username": "Victim", "password": "guess"}
    for address in ("127.0.0.1", "127.0.0.2"):
        response = client.post("/auth/token/", json=body, environ_base={"REMOTE_ADDR": address})
        assert response.status_code == 200
    third = client.post(
        "/auth/token/",
        json={**body, "username": "victim"},
        environ_base={"REMOTE_ADDR": "127.0.0.3"},
    )
    assert third.status_code == 429
    assert "Retry-After" in third.headers
    form = client.post(
        "/api-token-auth/", data={"username": "someone-else", "password": "x"}
    )  # another username still gets through
    assert form.status_code == 200


def test_credential_routes_are_limited_per_address(make_gateway: Callable[..., Any]) -> None:
    client = limited_client(make_gateway, login_address="2/minute")
    for name in ("a", "b"):
        assert client.post("/auth/token/", json={"username": name}).status_code == 200
    assert client.post("/auth/token/", json={"username": "c"}).status_code == 429
    reset = client.post("/users/somebody/password/reset", json={})
    assert reset.status_code == 429  # the same address budget covers password resets
    assert client.get("/events/category").status_code == 200  # ordinary routes unaffected


def test_the_table_marks_the_routes_that_take_passwords_or_hand_out_tokens() -> None:
    marked = {(route.methods, route.pattern) for route in ROUTES if route.credential}
    assert marked == {
        ("POST", "/auth/token"),
        ("POST", "/api-token-auth"),
        ("POST", "/users/<username>/password/reset"),
        ("PATCH", "/users/<username>/password"),
        ("POST", "/users"),
        ("POST", "/register"),
    }


@pytest.mark.parametrize(("method", "path"), CREDENTIAL_CALLS)
def test_each_credential_route_has_the_login_address_limit(
    make_gateway: Callable[..., Any], method: str, path: str
) -> None:
    client = limited_client(make_gateway, address="100/minute", login_address="1/minute")
    assert client.open(path, method=method, json={"username": "a"}).status_code == 200
    refused = client.open(path, method=method, json={"username": "b"})
    assert refused.status_code == 429
    assert refused.headers["X-RateLimit-Limit"] == "1"
    # A public route next to them that takes no password keeps the ordinary limit.
    assert client.post("/auth/token/refresh/", json={}).status_code == 200


@pytest.mark.parametrize(("method", "path"), CREDENTIAL_CALLS)
def test_each_credential_route_has_the_login_username_limit(
    make_gateway: Callable[..., Any], method: str, path: str
) -> None:
    client = limited_client(make_gateway, login_user="1/minute")
    first = client.open(
        path,
        method=method,
        json={"username": "somebody"},
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
    )
    assert first.status_code == 200
    again = client.open(
        path,
        method=method,
        json={"username": "somebody"},
        environ_base={"REMOTE_ADDR": "127.0.0.2"},
    )
    assert again.status_code == 429


@pytest.mark.parametrize(("method", "path"), CREDENTIAL_CALLS)
def test_credential_bodies_are_bounded(
    make_gateway: Callable[..., Any], method: str, path: str
) -> None:
    client = GatewayClient(make_gateway(max_body=10 * CREDENTIAL_MAX_BODY))
    fits = client.open(path, method=method, data=b"x" * CREDENTIAL_MAX_BODY)
    assert fits.status_code == 200
    too_large = client.open(path, method=method, data=b"x" * (CREDENTIAL_MAX_BODY + 1))
    assert too_large.status_code == 413
    assert too_large.json["code"] == "payload_too_large"


def test_the_login_limits_follow_the_route_wherever_it_is_mounted(
    echo: EchoUpstream, redis_url: str, redis_client: redis.Redis, test_keys: TestKeys
) -> None:
    routes = (
        Route("POST", "/sign-in", "auth", PUBLIC, credential=True),
        Route("POST", "/auth/token", "auth", PUBLIC),
    )
    config = GatewayConfig(
        upstreams={"auth": echo.url},
        redis_url=redis_url,
        rate_limits=RateLimitPolicy(login_address=parse_limits("1/minute")),
    )
    client = GatewayClient(create_app(config, keys=test_keys.key_set, routes=routes))
    assert client.post("/sign-in", json={"username": "a"}).status_code == 200
    assert client.post("/sign-in", json={"username": "b"}).status_code == 429
    for _ in range(3):
        assert client.post("/auth/token/", json={"username": "a"}).status_code == 200


def test_a_credential_route_cannot_set_its_own_body_limit() -> None:
    with pytest.raises(ValueError, match="CREDENTIAL_MAX_BODY"):
        Route("POST", "/sign-in", "auth", PUBLIC, max_body=1024, credential=True)


def test_credential_body_reaches_the_service_intact(make_gateway: Callable[..., Any]) -> None:
    client = limited_client(make_gateway, login_user="5/minute")
    response = client.post("/auth/token/", json={"username": "u1", "password": "p"})
    assert response.json["body_length"] == len(b'{"username": "u1", "password": "p"}')


def test_rate_limits_fail_open_for_anonymous_and_closed_for_tokens(
    make_gateway: Callable[..., Any], dead_url: str, bearer: Bearer
) -> None:
    policy = RateLimitPolicy(address=parse_limits("1/minute"), user=parse_limits("1/minute"))
    client = GatewayClient(
        make_gateway(rate_limits=policy, redis_url=dead_url.replace("http", "redis"))
    )
    assert client.get("/events/category").status_code == 200
    assert client.get("/events/category").status_code == 200
    refused = client.get("/sample/gets", headers=bearer())
    assert refused.status_code == 503
    assert refused.json["code"] == "revocation_unavailable"


@pytest.mark.parametrize(
    ("forwarded_for", "trusted", "client_address", "forwarded"),
    [
        (None, 0, "127.0.0.1", "127.0.0.1"),
        ("6.6.6.6", 0, "127.0.0.1", "6.6.6.6, 127.0.0.1"),
        ("6.6.6.6, 1.2.3.4", 1, "1.2.3.4", "6.6.6.6, 1.2.3.4"),
        ("6.6.6.6, 1.2.3.4, 10.0.0.5", 2, "1.2.3.4", "6.6.6.6, 1.2.3.4"),
    ],
)
def test_client_address_behind_trusted_proxies(
    make_gateway: Callable[..., Any],
    forwarded_for: str | None,
    trusted: int,
    client_address: str,
    forwarded: str,
) -> None:
    policy = RateLimitPolicy(address=parse_limits("1/minute"))
    client = GatewayClient(make_gateway(rate_limits=policy, trusted_proxies=trusted))
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    peer = {"REMOTE_ADDR": "127.0.0.1"}
    first = client.get("/events/category", headers=headers, environ_base=peer)
    assert first.json["headers"]["x-forwarded-for"] == forwarded
    assert forwarded.rsplit(", ", 1)[-1] == client_address
    # The budget belongs to the computed client: another spoofed prefix does not reset it.
    spoofed = {"X-Forwarded-For": f"9.9.9.9, {forwarded_for}"} if forwarded_for else {}
    again = client.get("/events/category", headers=spoofed, environ_base=peer)
    assert again.status_code == 429


def test_fewer_forwarded_hops_than_trusted_proxies_falls_back_to_the_peer(
    make_gateway: Callable[..., Any],
) -> None:
    client = GatewayClient(make_gateway(trusted_proxies=2))
    response = client.get(
        "/events/category",
        headers={"X-Forwarded-For": "1.2.3.4"},
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
    )
    assert response.json["headers"]["x-forwarded-for"] == "1.2.3.4, 127.0.0.1"


def test_sliding_window_weighs_the_previous_window() -> None:
    counter = Counter("t", "id", Limit(10, 60))
    # Half-way through a window, 10 hits in the previous one count as 5.
    assert evaluate(counter, [5, True, b"10"], now=30.0).allowed
    assert not evaluate(counter, [6, True, b"10"], now=30.0).allowed
    assert evaluate(counter, [10, True, None], now=59.0).remaining == 0
