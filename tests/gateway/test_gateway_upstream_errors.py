"""Upstream failures: nothing listening (502) and too slow to answer (504)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from gateway.app import Gateway, create_app
from gateway.config import GatewayConfig
from gateway.routing import PUBLIC, Route
from servicekit.config import UPSTREAMS
from servicekit.testing import TestKeys
from tests.gateway.gateway_harness import EchoUpstream, GatewayClient

GatewayFactory = Callable[..., Gateway]
Bearer = Callable[..., dict[str, str]]


@pytest.mark.parametrize(
    ("method", "path", "data"),
    [("GET", "/sample/gets", None), ("POST", "/sample/posts", b"payload")],
)
def test_upstream_down_is_502_within_a_second(
    make_gateway: GatewayFactory,
    dead_url: str,
    bearer: Bearer,
    method: str,
    path: str,
    data: bytes | None,
) -> None:
    client = GatewayClient(make_gateway(upstreams=dict.fromkeys(UPSTREAMS, dead_url)))
    started = time.perf_counter()
    response = client.open(path, method=method, data=data, headers=bearer())
    elapsed = time.perf_counter() - started
    assert response.status_code == 502
    assert response.json == {"error": "activity is unavailable", "code": "upstream_unavailable"}
    assert response.headers["X-Request-ID"]
    assert elapsed < 1.0


def test_slow_upstream_is_504(make_gateway: GatewayFactory) -> None:
    client = GatewayClient(make_gateway(read_timeout=0.5))
    started = time.perf_counter()
    response = client.get("/media/slow/3", headers={"X-Request-ID": "slow-1"})
    elapsed = time.perf_counter() - started
    assert response.status_code == 504
    assert response.json == {"error": "media did not answer in time", "code": "upstream_timeout"}
    assert response.headers["X-Request-ID"] == "slow-1"
    assert 0.5 <= elapsed < 2.0


def test_upstream_within_the_read_timeout_is_answered(make_gateway: GatewayFactory) -> None:
    response = GatewayClient(make_gateway(read_timeout=2.0)).get("/media/slow/0.2")
    assert response.status_code == 200
    assert response.json["path"] == "/media/slow/0.2"


def test_route_timeout_overrides_the_default(
    echo: EchoUpstream, redis_url: str, test_keys: TestKeys
) -> None:
    routes = (Route("GET", "/media/<path:key>", "media", PUBLIC, timeout=0.3),)
    config = GatewayConfig(upstreams={"media": echo.url}, redis_url=redis_url, read_timeout=10)
    client = GatewayClient(create_app(config, keys=test_keys.key_set, routes=routes))
    started = time.perf_counter()
    response = client.get("/media/slow/3")
    assert response.status_code == 504
    assert response.json["code"] == "upstream_timeout"
    assert time.perf_counter() - started < 1.5
