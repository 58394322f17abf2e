"""A slow client cannot hold a service's gunicorn worker (servicekit/gunicorn_worker.py):
a real gunicorn with the services' settings (servicekit/gunicorn_conf.py), one worker of
two threads, serving a tiny app (tests/servicekit/slow_client_app.py), with many more
stalled connections than threads.

Two servers: a patient one (client timeout and keep-alive far longer than any test) shows
that clients stalled before their request is whole (on a new connection, or a kept-alive
one, or behind a whole request they pipelined), and idle keep-alive connections, hold no
thread, as normal requests are served while they are still open; a strict one (client
timeout 1.5 s, keep-alive 1 s) shows that the worker closes every stalled connection: one
stalled before its request is whole silently (the worker drops it on its poller), one
stalled mid-way through a large body with the app seeing its read fail (it answers 408),
one that stops reading its answer by giving up the write. Uploads at normal speed still
arrive whole. Waits are generous and nothing is timed.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import requests

from devstack.redis_server import free_port
from servicekit.gunicorn_worker import PRE_READ_LIMIT
from tests.support.connections import rest_until_closed, served_process, still_open

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024
THREADS = 2
STALLED = 8 * THREADS
# Connections that each hold a thread until the client timeout (a large body, a large
# answer): more than the threads, so some wait for a thread first, but few, since each
# round of them lasts a client timeout.
THREAD_HOLDERS = 2 * THREADS
GENEROUS = 30.0
BASE_SETTINGS = {"GUNICORN_WORKERS": "1", "GUNICORN_THREADS": str(THREADS)}
PATIENT = {"GUNICORN_CLIENT_TIMEOUT": "600", "GUNICORN_KEEPALIVE": "600"}
STRICT = {"GUNICORN_CLIENT_TIMEOUT": "1.5", "GUNICORN_KEEPALIVE": "1"}

READY = b"GET /ready HTTP/1.1\r\nHost: service\r\n\r\n"
HALF_HEAD = b"GET /ready HTTP/1.1\r\nHost: service\r\nX-Slow: "
HALF_SMALL_BODY = (
    b"POST /echo HTTP/1.1\r\nHost: service\r\nContent-Type: application/json\r\n"
    b"Content-Length: 200\r\n\r\n" + b'{"username": "slow'
)


@dataclass(frozen=True)
class Stall:
    """What a slow client sends, how many answers it reads, what it sends next; then it
    stops."""

    sent: bytes
    answers: int = 0
    then: bytes = b""


EARLY_STALLS = {
    "silent": Stall(b""),
    "mid-head": Stall(HALF_HEAD),
    "mid-small-body": Stall(HALF_SMALL_BODY),
    "idle-keep-alive": Stall(READY, answers=1),
    "keep-alive-then-mid-head": Stall(READY, answers=1, then=HALF_HEAD),
    "pipelined-mid-head": Stall(READY + HALF_HEAD, answers=1),
}
LARGE_BODY = 4 * MIB  # well over the worker's PRE_READ_LIMIT: a thread reads it
LARGE_BODY_SENT = 256 * 1024
LARGE_ANSWER = 32 * MIB  # more than the server's socket buffers can take


@dataclass(frozen=True)
class ServedApp:
    url: str
    master_pid: int

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.url.removeprefix("http://").split(":")
        return host, int(port)

    @property
    def worker_pids(self) -> list[int]:
        return [child.pid for child in psutil.Process(self.master_pid).children()]


@contextmanager
def gunicorn_app(log: Path, settings: dict[str, str]) -> Iterator[ServedApp]:
    """The slow-client app under gunicorn with the services' settings file."""
    port = free_port()
    env = {
        **os.environ,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_GRACEFUL_TIMEOUT": "2",
        "LOG_LEVEL": "info",
        **BASE_SETTINGS,
        **settings,
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    command = [sys.executable, "-m", "gunicorn", "-c", "servicekit/gunicorn_conf.py"]
    url = f"http://127.0.0.1:{port}"
    argv = [*command, "tests.servicekit.slow_client_app:app"]
    with served_process(argv, env, log, f"{url}/ready") as process:
        yield ServedApp(url, process.pid)


@pytest.fixture(scope="module")
def patient_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    log = tmp_path_factory.mktemp("patient") / "gunicorn.log"
    with gunicorn_app(log, PATIENT) as served:
        yield served


@pytest.fixture(scope="module")
def strict_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    log = tmp_path_factory.mktemp("strict") / "gunicorn.log"
    with gunicorn_app(log, STRICT) as served:
        yield served


def parse_response(response: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


def read_response(sock: socket.socket) -> bytes:
    """One whole response with a Content-Length, read from a kept-alive connection."""
    received = b""
    while True:
        _, separator, body = received.partition(b"\r\n\r\n")
        if separator and len(body) >= int(parse_response(received)[1]["content-length"]):
            return received
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            pytest.fail(f"no whole answer within {GENEROUS} s (every thread held?): {received!r}")
        assert chunk, f"connection closed mid-response: {received!r}"
        received += chunk


@contextmanager
def stall(served: ServedApp, how: Stall, **options: int) -> Iterator[socket.socket]:
    """A connection of a slow client that behaves as `how` says (socket `options` set)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        for option, value in options.items():
            sock.setsockopt(socket.SOL_SOCKET, getattr(socket, option), value)
        sock.settimeout(GENEROUS)
        sock.connect(served.address)
        sock.sendall(how.sent)
        for _ in range(how.answers):
            assert parse_response(read_response(sock))[0] == 200
        sock.sendall(how.then)
        yield sock


def open_stalls(
    stack: ExitStack, served: ServedApp, how: Stall, count: int, **options: int
) -> list[socket.socket]:
    return [stack.enter_context(stall(served, how, **options)) for _ in range(count)]


def assert_normal_requests_served(served: ServedApp) -> None:
    """Requests of well-behaved clients, each on a new connection, get their answers."""
    for _ in range(2 * STALLED):
        response = requests.get(f"{served.url}/ready", timeout=GENEROUS)
        assert (response.status_code, response.json()) == (200, {"ready": True})


def server_states(served: ServedApp, sock: socket.socket) -> set[str]:
    """The TCP states of the worker's sockets to this client (empty once it let go)."""
    port = sock.getsockname()[1]
    return {
        connection.status
        for pid in served.worker_pids
        for connection in psutil.Process(pid).net_connections(kind="tcp")
        if connection.raddr and connection.raddr.port == port
    }


def wait_until_server_stops_sending(served: ServedApp, stalled: list[socket.socket]) -> None:
    """Until the worker has shut down its sending side of every stalled connection."""
    deadline = time.monotonic() + GENEROUS
    while any(psutil.CONN_ESTABLISHED in server_states(served, sock) for sock in stalled):
        assert time.monotonic() < deadline, "the worker kept writing to a slow reader"
        time.sleep(0.2)


@pytest.mark.parametrize("kind", list(EARLY_STALLS))
def test_clients_stalled_before_their_request_is_whole_hold_no_thread(
    patient_app: ServedApp, kind: str
) -> None:
    with ExitStack() as stack:
        stalled = open_stalls(stack, patient_app, EARLY_STALLS[kind], STALLED)

        assert_normal_requests_served(patient_app)

        assert [still_open(sock) for sock in stalled] == [True] * STALLED
        # Accepted by the worker, not waiting in the listen backlog.
        assert [server_states(patient_app, sock) for sock in stalled] == [
            {psutil.CONN_ESTABLISHED}
        ] * STALLED


def test_the_worker_silently_closes_every_connection_stalled_before_its_request_is_whole(
    strict_app: ServedApp,
) -> None:
    """Every kind at once, so that the test waits out the timeouts once."""
    with ExitStack() as stack:
        stalled = {
            kind: open_stalls(stack, strict_app, how, STALLED) for kind, how in EARLY_STALLS.items()
        }

        assert_normal_requests_served(strict_app)

        rests = {
            kind: [rest_until_closed(sock) for sock in socks] for kind, socks in stalled.items()
        }
    # Dropped on the poller: no thread ever took these requests, so nothing answers them.
    assert rests == {kind: [b""] * STALLED for kind in EARLY_STALLS}


def test_a_body_stalled_mid_way_fails_the_apps_read_and_is_disconnected(
    strict_app: ServedApp,
) -> None:
    head = (
        f"POST /echo HTTP/1.1\r\nHost: service\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: {LARGE_BODY}\r\n\r\n"
    ).encode()
    assert LARGE_BODY > PRE_READ_LIMIT
    with ExitStack() as stack:
        stalled = open_stalls(
            stack, strict_app, Stall(head + b"x" * LARGE_BODY_SENT), THREAD_HOLDERS
        )

        answers = [parse_response(rest_until_closed(sock)) for sock in stalled]

        assert_normal_requests_served(strict_app)
    for status, _, body in answers:
        assert (status, json.loads(body)) == (
            408,
            {"error": "TimeoutError", "received": LARGE_BODY_SENT},
        )


def test_a_client_that_stops_reading_its_answer_is_disconnected(strict_app: ServedApp) -> None:
    request = f"GET /large/{LARGE_ANSWER} HTTP/1.1\r\nHost: service\r\n\r\n".encode()
    with ExitStack() as stack:
        # A small receive window: the worker's writes block as soon as it is full.
        stalled = open_stalls(stack, strict_app, Stall(request), THREAD_HOLDERS, SO_RCVBUF=4096)

        wait_until_server_stops_sending(strict_app, stalled)

        # What the worker had sent before it gave up, then its close: never the whole.
        answers = [parse_response(rest_until_closed(sock)) for sock in stalled]

        assert_normal_requests_served(strict_app)
    for status, headers, body in answers:
        assert (status, headers["content-length"]) == (200, str(LARGE_ANSWER))
        assert 0 < len(body) < LARGE_ANSWER


def chunked(data: bytes) -> Iterator[bytes]:
    for start in range(0, len(data), MIB):
        yield data[start : start + MIB]


@pytest.mark.parametrize(
    ("size", "framing"),
    [
        (PRE_READ_LIMIT // 2, "length"),  # gathered on the poller
        (20 * MIB, "length"),  # read by a thread
        (20 * MIB, "chunked"),  # chunks are always read by a thread
    ],
)
def test_uploads_at_normal_speed_arrive_whole(
    strict_app: ServedApp, size: int, framing: str
) -> None:
    body = os.urandom(size)
    data = body if framing == "length" else chunked(body)
    response = requests.post(f"{strict_app.url}/echo", data=data, timeout=GENEROUS)
    assert (response.status_code, response.json()) == (
        200,
        {"length": size, "sha256": hashlib.sha256(body).hexdigest()},
    )
