"""What the gateway's own HTTP/1.1 and Redis clients do on the wire, against scripted
loopback servers and a private password-protected redis-server."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest
import redis

from devstack.redis_server import start_redis
from gateway.app import Gateway
from servicekit.config import UPSTREAMS
from servicekit.revocation import revoke_token
from servicekit.testing import TestKeys
from tests.gateway.gateway_harness import GatewayClient, token_parts

GatewayFactory = Callable[..., Gateway]
Answer = Callable[[str, str], tuple[bytes, bool]]  # (method, path) -> (bytes, then close)


def json_answer(body: bytes = b"{}", extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n%b\r\n%b" % (len(body), extra, body)
    )


ANSWERS: dict[str, tuple[bytes, bool]] = {
    "/media/chunked": (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;name=value\r\nhello\r\n7\r\n, world\r\n0\r\nX-Checksum: abc\r\n\r\n",
        False,
    ),
    "/media/empty": (b"HTTP/1.1 204 No Content\r\n\r\n", False),
    "/media/until-close": (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nall of it",
        True,
    ),
    "/media/interim": (b"HTTP/1.1 100 Continue\r\n\r\n" + json_answer(b'{"final": true}'), False),
    "/media/cookies": (json_answer(extra=b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n"), False),
    "/media/garbage": (b"HTTP/1.1 OK whatever\r\n\r\n", True),
    "/media/close-after": (json_answer(b'{"then": "closed"}', b"Connection: close\r\n"), True),
}


class ScriptedUpstream:
    """Answers each request with ANSWERS[path] (a HEAD gets the head only); records the
    client port of every request in `peers`."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.peers: list[int] = []
        self.open: list[socket.socket] = []

    def serve(self) -> None:
        while True:
            try:
                sock, (_, port) = self.listener.accept()
            except OSError:
                return
            self.open.append(sock)
            threading.Thread(target=self.converse, args=(sock, port), daemon=True).start()

    def converse(self, sock: socket.socket, port: int) -> None:
        buffer = b""
        with suppress(OSError), sock:
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = sock.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                method, path = head.split(b" ")[:2]
                length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                while length and len(buffer) < int(length.group(1)):
                    buffer += sock.recv(65536)
                buffer = buffer[int(length.group(1)) if length else 0 :]
                self.peers.append(port)
                answer, close = ANSWERS[path.decode()]
                if method == b"HEAD":
                    answer = answer.partition(b"\r\n\r\n")[0] + b"\r\n\r\n"
                sock.sendall(answer)
                if close:
                    return

    def drop_idle_connections(self) -> None:
        for sock in self.open:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def scripted() -> Iterator[ScriptedUpstream]:
    upstream = ScriptedUpstream()
    thread = threading.Thread(target=upstream.serve, daemon=True)
    thread.start()
    yield upstream
    upstream.listener.close()
    upstream.drop_idle_connections()


@pytest.fixture
def client(make_gateway: GatewayFactory, scripted: ScriptedUpstream) -> GatewayClient:
    return GatewayClient(make_gateway(upstreams=dict.fromkeys(UPSTREAMS, scripted.url)))


def test_a_chunked_answer_is_passed_on_whole_and_its_connection_reused(
    client: GatewayClient, scripted: ScriptedUpstream
) -> None:
    for _ in range(2):
        response = client.get("/media/chunked")
        assert (response.status_code, response.data) == (200, b"hello, world")
        assert "Transfer-Encoding" not in response.headers
    assert len(scripted.peers) == 2 and len(set(scripted.peers)) == 1


@pytest.mark.parametrize(("method", "path"), [("HEAD", "/media/cookies"), ("GET", "/media/empty")])
def test_answers_without_a_body_do_not_wait_for_one(
    client: GatewayClient, scripted: ScriptedUpstream, method: str, path: str
) -> None:
    for _ in range(2):
        response = client.open(path, method=method)
        assert response.status_code in (200, 204)
        assert response.data == b""
    assert len(set(scripted.peers)) == 1


def test_a_body_delimited_by_the_close_is_read_to_the_end(
    client: GatewayClient, scripted: ScriptedUpstream
) -> None:
    for _ in range(2):
        response = client.get("/media/until-close")
        assert (response.status_code, response.data) == (200, b"all of it")
    assert len(set(scripted.peers)) == 2


def test_a_connection_the_upstream_closes_is_not_reused(
    client: GatewayClient, scripted: ScriptedUpstream
) -> None:
    assert client.get("/media/close-after").json == {"then": "closed"}
    assert client.get("/media/close-after").json == {"then": "closed"}
    assert len(set(scripted.peers)) == 2


def test_interim_answers_are_skipped(client: GatewayClient) -> None:
    response = client.get("/media/interim")
    assert (response.status_code, response.json) == (200, {"final": True})


def test_repeated_headers_are_all_passed_on(client: GatewayClient) -> None:
    response = client.get("/media/cookies")
    assert response.headers.getlist("Set-Cookie") == ["a=1", "b=2"]


def test_a_malformed_answer_is_502(client: GatewayClient) -> None:
    response = client.get("/media/garbage")
    assert response.status_code == 502
    assert response.json["code"] == "bad_gateway"


def test_a_pooled_connection_closed_while_idle_is_replaced(
    client: GatewayClient, scripted: ScriptedUpstream
) -> None:
    assert client.get("/media/cookies").status_code == 200
    scripted.drop_idle_connections()
    response = client.get("/media/cookies")
    assert response.status_code == 200
    assert len(set(scripted.peers)) == 2


@contextmanager
def protected_redis(directory: Path, password: str) -> Iterator[str]:
    """A private redis-server that demands a password; yields its host:port."""
    process, url = start_redis(directory)
    try:
        redis.Redis.from_url(url).config_set("requirepass", password)
        yield url.removeprefix("redis://").removesuffix("/0")
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_resp2_client_authenticates_and_uses_the_database_of_its_url(
    make_gateway: GatewayFactory, test_keys: TestKeys, tmp_path: Path
) -> None:
    with protected_redis(tmp_path, "s3cret/pw") as address:
        token = test_keys.token(sub="revoked-in-db-3")
        marks = redis.Redis.from_url(f"redis://:s3cret%2Fpw@{address}/3")
        revoke_token(marks, token_parts(token)[1]["jti"], expires_at=2e9)
        headers = {"Authorization": f"Bearer {token}"}

        right = GatewayClient(make_gateway(redis_url=f"redis://:s3cret%2Fpw@{address}/3"))
        other_database = GatewayClient(make_gateway(redis_url=f"redis://:s3cret%2Fpw@{address}/4"))
        wrong_password = GatewayClient(make_gateway(redis_url=f"redis://:nope@{address}/3"))

        assert right.get("/sample/gets", headers=headers).json["error"] == "token revoked"
        assert other_database.get("/sample/gets", headers=headers).status_code == 200
        refused = wrong_password.get("/sample/gets", headers=headers)
        assert (refused.status_code, refused.json["code"]) == (503, "revocation_unavailable")
