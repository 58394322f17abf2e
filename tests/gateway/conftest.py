"""Fixtures for the gateway tests: a real echo upstream, real Redis, gateways built on them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from devstack.redis_server import free_port
from gateway.app import Gateway, create_app
from gateway.config import GatewayConfig
from gateway.testing import serve_gateway
from servicekit.config import UPSTREAMS
from servicekit.testing import TestKeys, serve_wsgi
from tests.gateway.gateway_harness import MIB, EchoUpstream, GatewayClient

GatewayFactory = Callable[..., Gateway]


@pytest.fixture(scope="session")
def echo(test_keys: TestKeys) -> Iterator[EchoUpstream]:
    """The echo upstream, served on loopback for the whole session."""
    upstream = EchoUpstream(test_keys.jwks)
    with serve_wsgi(upstream) as url:
        upstream.url = url
        yield upstream


@pytest.fixture
def dead_url() -> str:
    """A loopback URL where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def make_gateway(
    echo: EchoUpstream, redis_url: str, redis_client: redis.Redis, test_keys: TestKeys
) -> GatewayFactory:
    """`make_gateway(**config)`: a gateway with every upstream at the echo, short timeouts,
    a 1 MiB default body limit, and the test keys; Redis is flushed for each test."""

    def make(**overrides: Any) -> Gateway:
        settings: dict[str, Any] = {
            "upstreams": dict.fromkeys(UPSTREAMS, echo.url),
            "redis_url": redis_url,
            "connect_timeout": 0.5,
            "read_timeout": 2.0,
            "max_body": MIB,
            "health_timeout": 0.5,
            **overrides,
        }
        return create_app(GatewayConfig(**settings), keys=test_keys.key_set)

    return make


@pytest.fixture
def gateway(make_gateway: GatewayFactory) -> Gateway:
    return make_gateway()


@pytest.fixture(autouse=True)
def _stop_served_gateways() -> Iterator[None]:
    yield
    GatewayClient.stop_all()


@pytest.fixture
def client(gateway: Gateway) -> GatewayClient:
    return GatewayClient(gateway)


@pytest.fixture
def served_gateway(gateway: Gateway) -> Iterator[str]:
    """The default gateway served for real on loopback; yields its base URL."""
    with serve_gateway(gateway) as served:
        yield served.url


@pytest.fixture
def bearer(test_keys: TestKeys) -> Callable[..., dict[str, str]]:
    """`bearer(**claims)`: an Authorization header with a fresh token from the test keys."""

    def make(**claims: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {test_keys.token(**claims)}"}

    return make
