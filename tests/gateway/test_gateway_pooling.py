"""Pooled keep-alive connections to an upstream that keeps them open."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator

import pytest
import requests

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


def test_a_client_gone_mid_answer_costs_the_pool_that_connection_only(
    pooled_client: GatewayClient, keep_alive: tuple[str, list[int]], bearer: Bearer
) -> None:
    host, port = pooled_client.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as gone:
        gone.sendall(b"GET /media/drip HTTP/1.1\r\nHost: gateway.test\r\n\r\n")
        time.sleep(0.3)  # the upstream is mid-answer when the client goes away
    time.sleep(0.2)

    response = pooled_client.post("/images", data=b"hello", headers=bearer())
    assert response.status_code == 200
    assert response.json == {"method": "POST", "path": "/images", "body_length": 5}
    _, peers = keep_alive
    assert len(peers) == 2
    assert peers[0] != peers[1]  # the abandoned exchange's connection was not reused


def test_a_dripping_answer_is_read_whole_before_the_client_gets_it(
    pooled_client: GatewayClient,
) -> None:
    started = time.monotonic()
    with requests.get(pooled_client.url + "/media/trickle", stream=True, timeout=10) as download:
        head_arrived = time.monotonic() - started
        body = download.content
    assert len(body) == 5 * 1000
    # The upstream drips for about 1 s, at its own pace: the gateway holds the answer
    # until it is whole, so a slow client never holds the service.
    assert head_arrived >= 0.8
