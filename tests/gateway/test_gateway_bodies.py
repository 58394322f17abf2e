"""Request body limits, checked on a gateway served for real on loopback."""

from __future__ import annotations

import hashlib
import json
import socket
import uuid
from collections.abc import Callable, Iterator

import requests

from tests.gateway.gateway_harness import (
    MIB,
    EchoUpstream,
    GatewayClient,
    parse_raw_response,
    pattern_bytes,
    pattern_sha256,
    raw_exchange,
)

Bearer = Callable[..., dict[str, str]]
# A public route with the default body limit (credential routes have their own).
OPEN_ROUTE = "/auth/token/refresh/"
TOO_LARGE = {"error": f"request body over {MIB} bytes", "code": "payload_too_large"}


def chunked(parts: Iterator[bytes]) -> Iterator[bytes]:
    """HTTP/1.1 chunked transfer coding of `parts`."""
    for part in parts:
        yield f"{len(part):x}\r\n".encode() + part + b"\r\n"
    yield b"0\r\n\r\n"


def test_declared_length_over_limit_is_413_before_the_body_is_read(
    served_gateway: str, echo: EchoUpstream
) -> None:
    probe = uuid.uuid4().hex
    head = (
        f"POST /auth/token/refresh/?probe={probe} HTTP/1.1\r\n"
        "Host: gateway.test\r\n"
        "Content-Type: application/octet-stream\r\n"
        f"Content-Length: {20 * MIB}\r\n"
        "X-Request-ID: too-large-1\r\n"
        "\r\n"
    ).encode()
    # Only 1 KiB of the announced 20 MiB is ever sent: the answer cannot wait for the rest.
    status, headers, body = parse_raw_response(raw_exchange(served_gateway, head, [b"x" * 1024]))
    assert status == 413
    assert headers["content-type"] == "application/json"
    assert headers["x-request-id"] == "too-large-1"
    assert json.loads(body) == TOO_LARGE
    assert not [seen for seen in echo.seen if probe in seen[2]]


def test_chunked_body_over_limit_is_413(served_gateway: str) -> None:
    head = (
        b"POST /auth/token/refresh/ HTTP/1.1\r\nHost: gateway.test\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    response = raw_exchange(served_gateway, head, chunked(pattern_bytes(2 * MIB)))
    status, headers, body = parse_raw_response(response)
    assert status == 413
    assert json.loads(body) == TOO_LARGE
    assert headers["x-request-id"]


def test_chunked_body_over_limit_sent_with_requests_is_413(served_gateway: str) -> None:
    response = requests.post(
        f"{served_gateway}/auth/token/refresh/", data=pattern_bytes(MIB + 1), timeout=10
    )
    assert response.status_code == 413
    assert response.json() == TOO_LARGE


def test_chunked_body_under_limit_reaches_the_upstream_whole_with_its_length(
    served_gateway: str,
) -> None:
    size = MIB - 10
    response = requests.post(
        f"{served_gateway}/auth/token/refresh/", data=pattern_bytes(size), timeout=10
    )
    assert response.status_code == 200
    echoed = response.json()
    assert "transfer-encoding" not in echoed["headers"]
    assert echoed["headers"]["content-length"] == str(size)
    assert (echoed["body_length"], echoed["body_sha256"]) == (size, pattern_sha256(size))


def test_body_at_the_limit_passes_and_one_byte_more_does_not(client: GatewayClient) -> None:
    at_limit = b"a" * MIB
    response = client.post("/auth/token/refresh/", data=at_limit)
    assert response.status_code == 200
    assert response.json["body_length"] == MIB
    assert response.json["body_sha256"] == hashlib.sha256(at_limit).hexdigest()
    response = client.post("/auth/token/refresh/", data=at_limit + b"a")
    assert response.status_code == 413
    assert response.json == TOO_LARGE


def test_upload_route_has_its_own_larger_limit(served_gateway: str, bearer: Bearer) -> None:
    size = 3 * MIB
    for body in (bytes(b"".join(pattern_bytes(size))), pattern_bytes(size)):
        response = requests.post(
            f"{served_gateway}/sample/posts", data=body, headers=bearer(), timeout=10
        )
        assert response.status_code == 200
        echoed = response.json()
        assert (echoed["body_length"], echoed["body_sha256"]) == (size, pattern_sha256(size))
    response = requests.post(
        f"{served_gateway}/auth/token/refresh/", data=b"".join(pattern_bytes(size)), timeout=10
    )
    assert response.status_code == 413


def test_invalid_content_length_is_400(served_gateway: str) -> None:
    head = (
        b"POST /auth/token/refresh/ HTTP/1.1\r\nHost: gateway.test\r\nContent-Length: 12abc\r\n\r\n"
    )
    status, _, body = parse_raw_response(raw_exchange(served_gateway, head, [b"hello"]))
    assert status == 400
    assert json.loads(body)["code"] == "bad_request"
    assert "Content-Length" in json.loads(body)["error"]


def test_an_admitted_request_expecting_100_continue_is_told_to_send_its_body(
    served_gateway: str, bearer: Bearer
) -> None:
    host, port = served_gateway.removeprefix("http://").split(":")
    authorization = bearer()["Authorization"]
    head = (
        f"POST /images/ HTTP/1.1\r\nHost: gateway.test\r\nAuthorization: {authorization}\r\n"
        "Expect: 100-continue\r\nContent-Length: 5\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(head)
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hello")
        status, _, body = parse_raw_response(read_until_complete(sock))
    assert status == 200
    assert json.loads(body)["body_length"] == 5


def test_a_refused_request_expecting_100_continue_is_answered_without_its_body(
    served_gateway: str,
) -> None:
    head = (
        b"POST /images/ HTTP/1.1\r\nHost: gateway.test\r\nExpect: 100-continue\r\n"
        b"Content-Length: 5\r\n\r\n"
    )
    status, _, body = parse_raw_response(raw_exchange(served_gateway, head, []))
    assert status == 401
    assert json.loads(body)["code"] == "unauthorized"


def read_until_complete(sock: socket.socket) -> bytes:
    received = b""
    while not received.endswith(b"}"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    return received
