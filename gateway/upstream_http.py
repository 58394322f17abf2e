"""The gateway's HTTP/1.1 client for forwarding: pooled keep-alive sockets, request bodies
streamed (with their Content-Length, or chunked), answers streamed as they arrive.

urllib3, with http.client under it, spends about 150 µs of CPU on every call (header
validation, the email package's header parser, its retry and timeout objects); this
client does the part the gateway needs, to the suite's own services over plain HTTP,
for about a tenth of that. The gateway's health check and API document still use urllib3.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterable

CHUNK = 64 * 1024
MAX_HEAD = 64 * 1024
_FORBIDDEN_IN_HEADERS = re.compile(r"[\r\n\x00]")
_METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


class UpstreamError(Exception):
    """A call to an upstream failed."""


class ConnectFailed(UpstreamError):
    """No connection (refused, unreachable): the upstream saw nothing."""


class ConnectTimedOut(UpstreamError):
    pass


class AnswerTimedOut(UpstreamError):
    """The upstream did not take the request, or did not answer, within the timeout."""


class ConnectionLost(UpstreamError):
    """The connection closed or broke before the whole answer arrived (a kept-alive one
    may have been closed by the upstream while it sat in the pool)."""


class BadAnswer(UpstreamError):
    """The answer is not HTTP/1.x as it should be."""


class Pool:
    """Idle keep-alive sockets to one upstream (most recently used first)."""

    def __init__(self, host: str, port: int, size: int, connect_timeout: float) -> None:
        self.host = host
        self.port = port
        self.host_header = host if port == 80 else f"{host}:{port}"
        self.size = size
        self.connect_timeout = connect_timeout
        self._idle: list[socket.socket] = []
        self._lock = threading.Lock()

    def acquire(self) -> tuple[socket.socket, bool]:
        """A live idle socket (reused: True), else a new connection."""
        while True:
            with self._lock:
                sock = self._idle.pop() if self._idle else None
            if sock is None:
                return self._connect(), False
            if _still_open(sock):
                return sock, True
            sock.close()

    def release(self, sock: socket.socket) -> None:
        sock.settimeout(0)  # idle sockets are checked without waiting
        with self._lock:
            if len(self._idle) < self.size:
                self._idle.append(sock)
                return
        sock.close()

    def _connect(self) -> socket.socket:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        except TimeoutError as exc:
            raise ConnectTimedOut(str(exc)) from exc
        except OSError as exc:
            raise ConnectFailed(str(exc)) from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock


def _still_open(sock: socket.socket) -> bool:
    """An idle socket with nothing to read: anything readable means closed (or garbage)."""
    try:
        sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    except OSError:
        pass
    return False


def request_head(
    method: str, target: str, host: str, headers: dict[str, str], framing: str | None
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1\r\nHost: {host}\r\n"]
    for name, value in headers.items():
        if _FORBIDDEN_IN_HEADERS.search(name) or _FORBIDDEN_IN_HEADERS.search(value):
            raise ValueError(f"invalid header {name!r}")
        lines.append(f"{name}: {value}\r\n")
    if framing:
        lines.append(framing)
    lines.append("\r\n")
    return "".join(lines).encode("latin-1")


class Exchange:
    """One request on one connection, and its answer read as it arrives."""

    def __init__(self, pool: Pool, sock: socket.socket, method: str) -> None:
        self.pool = pool
        self.sock: socket.socket | None = sock
        self.method = method
        self.buffer = b""
        self.status = 0
        self.reason = ""
        self.headers: list[tuple[str, str]] = []
        self.reusable = False
        self.broken = False  # the upstream stopped taking the request
        self.complete = False
        self._body: _Body = _NoBody()

    def send(
        self,
        target: str,
        headers: dict[str, str],
        body: Iterable[bytes] | None,
        chunked: bool,
        timeout: float,
    ) -> None:
        """Send the request. An upstream that stops reading (it answered early, or went
        away) ends the sending; its answer, if any, is then read as usual."""
        framing = None
        if chunked:
            framing = "transfer-encoding: chunked\r\n"
        elif body is None and "content-length" not in headers and self.method in _METHODS_WITH_BODY:
            framing = "content-length: 0\r\n"
        head = request_head(self.method, target, self.pool.host_header, headers, framing)
        sock = self.sock
        assert sock is not None, "a request is sent once, before its answer is read"
        sock.settimeout(timeout)
        try:
            if body is None or (isinstance(body, list) and not chunked):  # small: one write
                sock.sendall(b"".join([head, *(body or ())]))
            else:
                sock.sendall(head)
                for chunk in body:
                    if chunk:
                        sock.sendall(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
                if chunked:
                    sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.broken = True
        except TimeoutError as exc:
            raise AnswerTimedOut("upstream did not take the request in time") from exc

    def abort(self) -> None:
        """Close the connection whatever state it is in (never back to the pool)."""
        self.reusable = False
        self.close()

    def receive_head(self) -> None:
        """Read the status line and headers (skipping interim 1xx answers)."""
        while True:
            head = self._read_head()
            self._parse_head(head)
            if not 100 <= self.status < 200 or self.status == 101:
                break
        self._body = self._body_reader()

    def read1(self) -> bytes:
        """The next part of the body that has arrived (b"" at its end)."""
        if self.complete:
            return b""
        data = self._body.read1(self)
        if not data and self._body.finished:
            self._finish()
        return data

    def close(self) -> None:
        """Done with the answer: the connection goes back to the pool only if the whole
        body was read and the upstream keeps it open."""
        sock, self.sock = self.sock, None
        if sock is None:
            return
        if self.complete and self.reusable:
            self.pool.release(sock)
        else:
            sock.close()

    def _finish(self) -> None:
        self.complete = True
        if self.buffer:  # bytes after the end of the answer: the stream cannot be trusted
            self.reusable = False
        self.close()

    def recv(self) -> bytes:
        if self.buffer:
            data, self.buffer = self.buffer, b""
            return data
        if self.sock is None:
            raise ConnectionLost("connection already closed")
        try:
            return self.sock.recv(CHUNK)
        except TimeoutError as exc:
            raise AnswerTimedOut("upstream did not answer in time") from exc
        except OSError as exc:
            raise ConnectionLost(str(exc)) from exc

    def _read_head(self) -> bytes:
        data = self.buffer
        self.buffer = b""
        while (end := data.find(b"\r\n\r\n")) < 0:
            if len(data) > MAX_HEAD:
                raise BadAnswer("answer head too large")
            chunk = self.recv()
            if not chunk and data:
                raise BadAnswer("closed mid-head")
            if not chunk:
                raise ConnectionLost("closed before answering")
            data += chunk
        self.buffer = data[end + 4 :]
        return data[:end]

    def _parse_head(self, head: bytes) -> None:
        lines = head.decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        code, _, self.reason = rest.partition(" ")
        if not version.startswith("HTTP/1.") or not code.isdigit() or len(code) != 3:
            raise BadAnswer(f"bad status line {lines[0][:80]!r}")
        self.status = int(code)
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and headers:  # an obsolete folded line
                name, value = headers[-1]
                headers[-1] = (name, f"{value} {line.strip()}")
                continue
            name, colon, value = line.partition(":")
            if not colon or not name or name != name.strip():
                raise BadAnswer(f"bad header line {line[:80]!r}")
            headers.append((name, value.strip()))
        self.headers = headers
        self.reusable = version == "HTTP/1.1" and not self.broken and not self._says_close()

    def _says_close(self) -> bool:
        return any(
            name.lower() == "connection" and "close" in value.lower()
            for name, value in self.headers
        )

    def _body_reader(self) -> _Body:
        if self.method == "HEAD" or self.status in (204, 304) or self.status < 200:
            self._finish()
            return _NoBody()
        encodings = [v.lower() for n, v in self.headers if n.lower() == "transfer-encoding"]
        if encodings:
            if encodings[-1].rsplit(",", 1)[-1].strip() != "chunked":
                self.reusable = False
                return _UntilClose()
            return _Chunked()
        lengths = {v.strip() for n, v in self.headers if n.lower() == "content-length"}
        if not lengths:
            self.reusable = False
            return _UntilClose()
        if len(lengths) > 1 or not next(iter(lengths)).isdigit():
            raise BadAnswer("invalid Content-Length")
        length = int(next(iter(lengths)))
        if length == 0:
            self._finish()
        return _Length(length)


class _Body:
    finished = True

    def read1(self, exchange: Exchange) -> bytes:
        return b""


class _NoBody(_Body):
    pass


class _Length(_Body):
    def __init__(self, length: int) -> None:
        self.remaining = length
        self.finished = length == 0

    def read1(self, exchange: Exchange) -> bytes:
        if self.remaining == 0:
            return b""
        data = exchange.recv()
        if not data:
            raise ConnectionLost("closed mid-body")
        if len(data) > self.remaining:
            data, exchange.buffer = data[: self.remaining], data[self.remaining :]
        self.remaining -= len(data)
        self.finished = self.remaining == 0
        if self.finished:  # back to the pool now; this data is returned, then b""
            exchange._finish()
        return data


class _UntilClose(_Body):
    def __init__(self) -> None:
        self.finished = False

    def read1(self, exchange: Exchange) -> bytes:
        data = exchange.recv()
        if not data:
            self.finished = True
        return data


class _Chunked(_Body):
    """De-chunks the answer; what follows the last chunk (trailers) is dropped."""

    def __init__(self) -> None:
        self.finished = False
        self.in_chunk = 0  # bytes left in the current chunk
        self.pending = b""

    def read1(self, exchange: Exchange) -> bytes:
        while not self.finished:
            if self.in_chunk:
                data = self._take(exchange, self.in_chunk)
                self.in_chunk -= len(data)
                if not self.in_chunk:
                    self.pending = b"\r\n"  # the CRLF after the chunk's data
                return data
            self._next_chunk(exchange)
        exchange._finish()
        return b""

    def _take(self, exchange: Exchange, most: int) -> bytes:
        data = exchange.recv()
        if not data:
            raise ConnectionLost("closed mid-chunk")
        if len(data) > most:
            data, exchange.buffer = data[:most], data[most:]
        return data

    def _next_chunk(self, exchange: Exchange) -> None:
        line = self._line(exchange)
        if self.pending:
            if line:
                raise BadAnswer("chunk not followed by CRLF")
            self.pending = b""
            line = self._line(exchange)
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError as exc:
            raise BadAnswer("bad chunk size") from exc
        if size:
            self.in_chunk = size
            return
        while self._line(exchange):  # trailers, up to the empty line
            pass
        self.finished = True

    @staticmethod
    def _line(exchange: Exchange) -> bytes:
        data = b""
        while (end := data.find(b"\r\n")) < 0:
            if len(data) > MAX_HEAD:
                raise BadAnswer("chunk line too long")
            chunk = exchange.recv()
            if not chunk:
                raise ConnectionLost("closed mid-chunk")
            data += chunk
        exchange.buffer = data[end + 2 :] + exchange.buffer
        return data[:end]
