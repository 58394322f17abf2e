"""A slow client cannot hold the gateway: the real gateway under gunicorn (2 event-loop
workers), with stalled connections of every kind.

Two gateways: a patient one (deadlines far longer than any test) shows that clients
stalled before their request is complete hold nothing the next client needs, as normal
requests are served while those connections are still open; a strict one (deadlines of
1.5 s) shows that the gateway closes every stalled connection: a stalled head silently,
a stalled body with a 408 (and the service never sees that request), a client that stops
reading its answer by disconnecting it. Waits are generous and nothing is timed.
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psutil
import pytest
import requests

from devstack.stack import RATE_LIMITS_OFF
from servicekit.testing import TestKeys
from tests.gateway.gateway_harness import (
    MIB,
    EchoUpstream,
    PatternFile,
    parse_raw_response,
    pattern_sha256,
)
from tests.gateway.gunicorn_harness import ServedGateway, gunicorn_gateway
from tests.support.connections import rest_until_closed, still_open

WORKERS = 2
STALLED = 16
GENEROUS = 30.0

SERVER = {"GUNICORN_WORKERS": str(WORKERS), **RATE_LIMITS_OFF}
PUBLIC_GET = b"GET /ticket/public HTTP/1.1\r\nHost: gateway\r\n\r\n"
# What each kind of slow client sends before it stops.
EARLY_STALLS = {
    "silent": b"",
    "mid-head": b"GET /ticket/public HTTP/1.1\r\nHost: gateway\r\nX-Slow: ",
    "mid-small-body": (
        b"POST /users HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
        b"Content-Length: 200\r\n\r\n" + b'{"username": "slow'
    ),
    "idle-keep-alive": PUBLIC_GET,  # a whole request, answered; then nothing more
}
LARGE_BODY = 4 * MIB
LARGE_BODY_SENT = 256 * 1024


class BodyWatcher(BaseHTTPRequestHandler):
    """An upstream that reports, for each POST, the declared and the received body size
    once its connection has delivered the whole body or been closed."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        declared = int(self.headers.get("Content-Length") or 0)
        received = 0
        while received < declared:
            chunk = self.rfile.read1(min(65536, declared - received))
            if not chunk:
                break
            received += len(chunk)
        self.server.bodies.put((declared, received))  # type: ignore[attr-defined]
        if received < declared:
            self.close_connection = True
            return
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


@contextmanager
def body_watcher() -> Iterator[tuple[str, queue.Queue[tuple[int, int]]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BodyWatcher)
    server.daemon_threads = True
    bodies: queue.Queue[tuple[int, int]] = queue.Queue()
    server.bodies = bodies  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", bodies
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def patient_gateway(
    echo: EchoUpstream, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedGateway]:
    log = tmp_path_factory.mktemp("patient") / "gateway.log"
    settings = {
        **SERVER,
        "GATEWAY_HEAD_TIMEOUT": "600",
        "GATEWAY_BODY_GRACE": "600",
        "GATEWAY_IDLE_TIMEOUT": "600",
    }
    with gunicorn_gateway(echo.url, redis_url, log, settings) as served:
        yield served


@pytest.fixture(scope="module")
def watcher() -> Iterator[tuple[str, queue.Queue[tuple[int, int]]]]:
    with body_watcher() as watched:
        yield watched


@pytest.fixture(scope="module")
def strict_gateway(
    echo: EchoUpstream,
    redis_url: str,
    watcher: tuple[str, queue.Queue[tuple[int, int]]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServedGateway]:
    log = tmp_path_factory.mktemp("strict") / "gateway.log"
    settings = {
        **SERVER,
        "GATEWAY_HEAD_TIMEOUT": "1.5",
        "GATEWAY_BODY_GRACE": "1.5",
        "GATEWAY_BODY_MIN_RATE": str(4 * MIB),
        "GATEWAY_IDLE_TIMEOUT": "2",
    }
    upstreams = {"activity": watcher[0]}  # POST /sample/posts goes there
    with gunicorn_gateway(echo.url, redis_url, log, settings, upstreams) as served:
        yield served


def read_response(sock: socket.socket) -> bytes:
    """One whole response with a Content-Length, read from a kept-alive connection."""
    received = b""
    while True:
        _, separator, body = received.partition(b"\r\n\r\n")
        if separator:
            _, headers, _ = parse_raw_response(received)
            if len(body) >= int(headers["content-length"]):
                return received
        chunk = sock.recv(65536)
        assert chunk, f"connection closed mid-response: {received!r}"
        received += chunk


def stall(served: ServedGateway, sent: bytes, **options: int) -> socket.socket:
    """A connection that sends `sent` (reading the answer to a whole request) and stops."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    for option, value in options.items():
        sock.setsockopt(socket.SOL_SOCKET, getattr(socket, option), value)
    sock.settimeout(GENEROUS)
    sock.connect(served.address)
    sock.sendall(sent)
    if sent == PUBLIC_GET:
        assert parse_raw_response(read_response(sock))[0] == 200
    return sock


def open_stalls(stack: ExitStack, served: ServedGateway, sent: bytes) -> list[socket.socket]:
    return [stack.enter_context(stall(served, sent)) for _ in range(STALLED)]


def assert_normal_requests_served(served: ServedGateway) -> None:
    """Requests of well-behaved clients, each on a new connection, get their answers."""
    for _ in range(2 * STALLED):
        response = requests.get(f"{served.url}/ticket/public", timeout=GENEROUS)
        assert response.status_code == 200
        assert response.json()["path"] == "/ticket/public"


def held_by_server(served: ServedGateway, sock: socket.socket) -> bool:
    """Whether a gateway worker still has this client's connection open."""
    port = sock.getsockname()[1]
    for pid in served.worker_pids:
        for connection in psutil.Process(pid).net_connections(kind="tcp"):
            if connection.raddr and connection.raddr.port == port:
                return True
    return False


@pytest.mark.parametrize("kind", list(EARLY_STALLS))
def test_clients_stalled_before_their_request_is_whole_hold_no_thread(
    patient_gateway: ServedGateway, kind: str
) -> None:
    with ExitStack() as stack:
        stalled = open_stalls(stack, patient_gateway, EARLY_STALLS[kind])

        assert_normal_requests_served(patient_gateway)

        assert all(still_open(sock) for sock in stalled)


@pytest.mark.parametrize("kind", list(EARLY_STALLS))
def test_the_server_closes_connections_stalled_before_their_request_is_whole(
    strict_gateway: ServedGateway, kind: str
) -> None:
    with ExitStack() as stack:
        stalled = open_stalls(stack, strict_gateway, EARLY_STALLS[kind])

        assert_normal_requests_served(strict_gateway)

        rests = [rest_until_closed(sock) for sock in stalled]
    if kind == "mid-small-body":  # a head was whole: the body's deadline answers it
        assert {parse_raw_response(rest)[0] for rest in rests} == {408}
    else:
        assert rests == [b""] * STALLED


def test_a_body_stalled_mid_way_gets_408_and_never_reaches_the_upstream(
    strict_gateway: ServedGateway,
    watcher: tuple[str, queue.Queue[tuple[int, int]]],
    test_keys: TestKeys,
) -> None:
    _, bodies = watcher
    token = test_keys.token(sub="slow-uploader")
    head = (
        f"POST /sample/posts HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {LARGE_BODY}\r\n\r\n"
    ).encode()
    with ExitStack() as stack:
        stalled = open_stalls(stack, strict_gateway, head + b"x" * LARGE_BODY_SENT)

        assert_normal_requests_served(strict_gateway)

        for sock in stalled:
            status, _, body = parse_raw_response(rest_until_closed(sock))
            assert (status, body) == (408, b'{"error":"request body not received in time",'
                                            b'"code":"request_timeout"}')  # fmt: skip
    # The gateway reads a body whole before it calls the service: none of these did.
    assert bodies.empty()


def test_a_client_that_stops_reading_its_response_is_disconnected(
    strict_gateway: ServedGateway,
) -> None:
    request = f"GET /media/large/{8 * MIB} HTTP/1.1\r\nHost: gateway\r\n\r\n".encode()
    with ExitStack() as stack:
        # A small receive window: the server's writes block as soon as it is full.
        stalled = [
            stack.enter_context(stall(strict_gateway, request, SO_RCVBUF=4096))
            for _ in range(STALLED)
        ]

        assert_normal_requests_served(strict_gateway)

        deadline = time.monotonic() + GENEROUS
        while any(held_by_server(strict_gateway, sock) for sock in stalled):
            assert time.monotonic() < deadline, "the server kept a slow reader's connection"
            time.sleep(0.2)


def test_uploads_through_the_strict_gateway_still_arrive_whole(
    strict_gateway: ServedGateway, test_keys: TestKeys
) -> None:
    headers = {"Authorization": f"Bearer {test_keys.token(sub='uploader')}"}
    size = 20 * MIB
    body = PatternFile(size)
    response = requests.post(f"{strict_gateway.url}/images", data=body, headers=headers, timeout=60)
    assert response.status_code == 200
    assert (response.json()["body_length"], response.json()["body_sha256"]) == (
        size,
        pattern_sha256(size),
    )
