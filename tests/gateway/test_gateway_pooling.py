"""Pooled keep-alive connections to an upstream that keeps them open."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from gateway.app import Gateway
from servicekit.config import UPSTREAMS
from tests.gateway.gateway_harness import GatewayClient, serve_keep_alive

GatewayFactory = Callable[..., Gateway]
Bearer = Callable[..., dict[str, str]]


@pytest.fixture
def keep_alive() -> Iterator[tuple[str, list[int]]]:
    with serve_keep_alive() as served:
        yield served


@pytest.fixture
def pooled_client(make_gateway: GatewayFactory, keep_alive: tuple[str, list[int]]) -> GatewayClient:
    url, _ = keep_alive
    return GatewayClient(make_gateway(upstreams=dict.fromkeys(UPSTREAMS, url)))


def test_upstream_connection_is_reused(
    pooled_client: GatewayClient, keep_alive: tuple[str, list[int]], bearer: Bearer
) -> None:
    for _ in range(3):
        response = pooled_client.post("/images", data=b"hello", headers=bearer())
        assert response.status_code == 200
        assert response.json == {"method": "POST", "path": "/images", "body_length": 5}
    _, peers = keep_alive
    assert len(peers) == 3
    assert len(set(peers)) == 1


def test_abandoned_download_does_not_poison_the_pool(
    pooled_client: GatewayClient, keep_alive: tuple[str, list[int]], bearer: Bearer
) -> None:
    download = pooled_client.get("/media/drip")
    assert download.status_code == 200
    assert next(iter(download.response))  # some of the body has arrived, not all of it
    download.close()  # the client goes away mid-body

    response = pooled_client.post("/images", data=b"hello", headers=bearer())
    assert response.status_code == 200
    assert response.json == {"method": "POST", "path": "/images", "body_length": 5}
    _, peers = keep_alive
    assert len(peers) == 2
    assert peers[0] != peers[1]


def test_a_dripping_response_is_passed_on_as_it_arrives(pooled_client: GatewayClient) -> None:
    download = pooled_client.get("/media/trickle")
    chunks = iter(download.response)
    started = time.monotonic()
    first = next(chunks)
    first_arrived = time.monotonic() - started
    rest = b"".join(chunks)
    total = time.monotonic() - started
    download.close()
    assert len(first) + len(rest) == 5 * 1000
    # The upstream drips for about 1 s; its first bytes must not wait for the rest.
    assert total >= 0.8
    assert first_arrived < 0.5
