"""CORS at the gateway, the per-upstream circuit breaker, and the verified-token cache."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import jwt
import pytest
import redis
from werkzeug.serving import make_server

from devstack.redis_server import free_port
from gateway.breaker import CircuitBreaker, State
from gateway.errors import GatewayError
from servicekit.config import UPSTREAMS
from servicekit.revocation import revoke_token
from servicekit.testing import TestKeys
from tests.gateway.gateway_harness import EchoUpstream, GatewayClient

ORIGIN = "https://app.example.org"
Bearer = Callable[..., dict[str, str]]


@pytest.fixture
def cors_client(make_gateway: Callable[..., Any]) -> GatewayClient:
    return GatewayClient(make_gateway(cors_origins=(ORIGIN, "https://admin.example.org")))


def test_allowed_origin_is_echoed_never_a_wildcard(cors_client: GatewayClient) -> None:
    response = cors_client.get("/events/category", headers={"Origin": ORIGIN})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Origin" in response.headers["Vary"]
    assert "X-Request-ID" in response.headers["Access-Control-Expose-Headers"]
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_disallowed_origin_gets_no_allow_origin(cors_client: GatewayClient) -> None:
    response = cors_client.get("/events/category", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in response.headers
    error = cors_client.get("/nope", headers={"Origin": ORIGIN})
    assert error.status_code == 404
    assert error.headers["Access-Control-Allow-Origin"] == ORIGIN  # errors are readable too


def test_preflight_is_answered_at_the_gateway(
    cors_client: GatewayClient, echo: EchoUpstream
) -> None:
    seen_before = len(echo.seen)
    response = cors_client.options(
        "/sample/posts",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, Content-Type",
        },
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert response.headers["Access-Control-Allow-Headers"] == "authorization, content-type"
    assert int(response.headers["Access-Control-Max-Age"]) > 0
    assert len(echo.seen) == seen_before  # no upstream was bothered


def test_preflight_from_a_disallowed_origin_is_refused(cors_client: GatewayClient) -> None:
    response = cors_client.options(
        "/sample/posts",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == 403
    assert response.json["code"] == "cors_origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in response.headers


def test_no_cors_headers_when_no_origin_is_configured(client: GatewayClient) -> None:
    response = client.get("/events/category", headers={"Origin": ORIGIN})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_breaker_state_machine() -> None:
    breaker = CircuitBreaker("svc", failure_threshold=2, cooldown=0.2)
    for _ in range(2):
        breaker.before_call()
        breaker.record(False)
    assert breaker.state is State.OPEN
    with pytest.raises(GatewayError) as refused:
        breaker.before_call()
    assert refused.value.status == 503 and ("Retry-After", "1") in refused.value.headers
    time.sleep(0.25)
    breaker.before_call()  # the one probe
    assert breaker.state is State.HALF_OPEN
    with pytest.raises(GatewayError):
        breaker.before_call()  # no second probe while the first is out
    breaker.record(True)
    assert breaker.state is State.CLOSED


@contextmanager
def serve_on(port: int, app: Any) -> Iterator[None]:
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_a_down_upstream_opens_the_breaker_then_a_probe_closes_it(
    make_gateway: Callable[..., Any], echo: EchoUpstream
) -> None:
    port = free_port()
    upstreams = {**dict.fromkeys(UPSTREAMS, echo.url), "events": f"http://127.0.0.1:{port}"}
    gateway = make_gateway(upstreams=upstreams, breaker_failures=3, breaker_cooldown=0.5)
    client = GatewayClient(gateway)
    for _ in range(3):
        assert client.get("/events/category").json["code"] == "upstream_unavailable"
    started = time.monotonic()
    fast = client.get("/events/category")
    assert time.monotonic() - started < 0.5
    assert fast.status_code == 503
    assert fast.json == {
        "error": "events is unavailable (circuit open)",
        "code": "upstream_unavailable",
    }
    assert fast.headers["Retry-After"] == "1"
    assert client.get("/sample/gets", headers={}).status_code == 401  # other upstreams unaffected
    metrics = client.metrics()
    assert 'gateway_circuit_state{upstream="events"} 1.0' in metrics
    with serve_on(port, echo):
        time.sleep(0.6)
        assert client.get("/events/category").status_code == 200  # the half-open probe
        assert client.get("/events/category").status_code == 200
    metrics = client.metrics()
    assert 'gateway_circuit_state{upstream="events"} 0.0' in metrics


class CountingKeys:
    def __init__(self, keys: TestKeys) -> None:
        self.keys = keys
        self.lookups = 0

    def key_for(self, kid: str | None) -> Any:
        self.lookups += 1
        return self.keys.key_set.key_for(kid)


def test_verified_tokens_are_cached_but_revocation_is_checked_every_time(
    make_gateway: Callable[..., Any],
    test_keys: TestKeys,
    redis_client: redis.Redis,
) -> None:
    counting = CountingKeys(test_keys)
    gateway = make_gateway()
    gateway.guard.verifier.keys = counting
    client = GatewayClient(gateway)
    token = test_keys.token(sub="cached-user")
    headers = {"Authorization": f"Bearer {token}"}
    for _ in range(3):
        assert client.get("/sample/gets", headers=headers).status_code == 200
    assert counting.lookups == 1
    claims = jwt.decode(token, options={"verify_signature": False})
    revoke_token(redis_client, claims["jti"], claims["exp"])
    refused = client.get("/sample/gets", headers=headers)
    assert refused.status_code == 401
    assert refused.json["error"] == "token revoked"


def test_a_cached_token_still_expires(
    make_gateway: Callable[..., Any], test_keys: TestKeys
) -> None:
    client = GatewayClient(make_gateway(leeway=0))
    token = test_keys.token(ttl=1)
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/sample/gets", headers=headers).status_code == 200
    time.sleep(1.1)
    assert client.get("/sample/gets", headers=headers).status_code == 401
