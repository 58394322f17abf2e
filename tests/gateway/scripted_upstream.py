"""A loopback upstream that answers with scripted raw bytes, and records what the gateway
sent it: each request's raw target, and each connection (opened, and closed by the gateway).

A script is a function of the request received to the reply: the bytes to send, and
whether to close the connection afterwards (`Reply(b"", close=True)` closes it without a
byte of an answer, as a service does with a keep-alive connection it has given up).
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass

_LENGTH = re.compile(rb"(?im)^content-length:\s*(\d+)\s*$")


@dataclass(frozen=True)
class Received:
    method: str
    target: str  # the request target exactly as it came on the wire
    connection: int  # which connection it came on: 0 for the first accepted, and so on
    head: bytes


@dataclass(frozen=True)
class Reply:
    data: bytes
    close: bool = False


Script = Callable[[Received], Reply]


def answer(
    body: bytes = b"{}", status: bytes = b"200 OK", extra: bytes = b"", close: bool = False
) -> Reply:
    """A well-formed JSON answer with a Content-Length."""
    head = b"HTTP/1.1 %b\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%b\r\n" % (
        status,
        len(body),
        extra,
    )
    return Reply(head + body, close)


def by_path(replies: Mapping[str, Reply | Callable[[Received], Reply]]) -> Script:
    """A script answering each request with the reply of its path (query left out)."""

    def script(request: Received) -> Reply:
        reply = replies[request.target.partition("?")[0]]
        return reply(request) if callable(reply) else reply

    return script


class ScriptedUpstream:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.requests: list[Received] = []
        self.connections = 0
        self.closed_by_client: set[int] = set()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    @property
    def targets(self) -> list[str]:
        return [request.target for request in self.requests]

    def serve(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                number = self.connections
                self.connections += 1
                self._sockets.append(sock)
            threading.Thread(target=self._converse, args=(sock, number), daemon=True).start()

    def _converse(self, sock: socket.socket, number: int) -> None:
        buffer = b""
        with suppress(OSError), sock:
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = _receive(sock)
                    if not data:
                        self.closed_by_client.add(number)
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = _LENGTH.search(head)
                while length and len(buffer) < int(length.group(1)):
                    buffer += sock.recv(65536)
                buffer = buffer[int(length.group(1)) if length else 0 :]
                method, target = head.split(b" ")[:2]
                request = Received(method.decode(), target.decode("latin-1"), number, head)
                with self._lock:
                    self.requests.append(request)
                reply = self.script(request)
                sock.sendall(reply.data)
                if reply.close:
                    return

    def wait_closed_by_client(self, connection: int, timeout: float = 2.0) -> bool:
        """Whether the gateway closes `connection` within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while connection not in self.closed_by_client and time.monotonic() < deadline:
            time.sleep(0.01)
        return connection in self.closed_by_client

    def stop(self) -> None:
        with suppress(OSError):  # wakes the thread blocked in accept(), which close() does not
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        with self._lock:
            for sock in self._sockets:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def _receive(sock: socket.socket) -> bytes:
    """The next bytes, or b"" once the peer has closed (or reset) the connection."""
    try:
        return sock.recv(65536)
    except OSError:
        return b""


@contextmanager
def scripted_upstream(script: Script) -> Iterator[ScriptedUpstream]:
    upstream = ScriptedUpstream(script)
    thread = threading.Thread(target=upstream.serve, daemon=True)
    thread.start()
    try:
        yield upstream
    finally:
        upstream.stop()
        thread.join(timeout=5)
