"""Pieces for the slow-client drill and the framing tests: an upstream that records what it
received, raw HTTP on sockets, and the drill itself (asyncio, many connections at once).

The recording upstream is a threaded HTTP/1.1 server on loopback. For every request it
records when it arrived, the request line exactly as received, the headers, the body it
read (decoded when chunked) and whether that body was complete, and how many requests it
was handling at that moment. It answers `/ready` (for the gateway's /health) and
`/.well-known/jwks.json` (the keys it was given), and every other request with a small
JSON body and `X-Recorded: <its index>`.

The drill (`run_drill`) opens, against a served gateway: keep-alive connections that make
one request each and then idle, stalled heads (part of a request head, then nothing),
and trickling uploads (a whole head, then one body byte at a time), spread over several
client addresses; throughout, it probes the gateway with whole requests on new
connections and times each one.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# --- the recording upstream -----------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """One request as the upstream received it."""

    arrived: float  # time.monotonic()
    request_line: str
    method: str
    target: str  # the request target, byte for byte (latin-1)
    headers: list[tuple[str, str]]
    declared: int | None  # Content-Length, when the request had one
    body: bytes
    complete: bool  # the whole body arrived (declared length, or the last chunk)
    in_flight: int  # requests the upstream was handling, this one included

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


class RecordingServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def __init__(self, jwks: dict[str, Any]) -> None:
        super().__init__(("127.0.0.1", 0), _Recorder)
        self.jwks = jwks
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

    def requests_to(self, prefix: str) -> list[Received]:
        """What arrived for targets starting with `prefix`."""
        with self.lock:
            return [r for r in self.received if r.target.startswith(prefix)]

    def forwarded(self) -> list[Received]:
        """Every request but the gateway's own (/ready for /health, the keys)."""
        with self.lock:
            return [r for r in self.received if r.target not in ("/ready", JWKS_PATH)]

    def clear(self) -> None:
        with self.lock:
            self.received.clear()
            self.max_in_flight = 0

    def _arrive(self) -> int:
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return self.in_flight

    def _leave(self, received: Received | None) -> None:
        with self.lock:
            self.in_flight -= 1
            if received is not None:
                self.received.append(received)


JWKS_PATH = "/.well-known/jwks.json"


class _Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # An answer goes out in one write with TCP_NODELAY: a head and a body written apart
    # wait for the gateway's delayed ACK (40 ms) under Nagle's algorithm.
    disable_nagle_algorithm = True
    server: RecordingServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _record(self) -> None:
        arrived = time.monotonic()
        in_flight = self.server._arrive()
        received: Received | None = None
        try:
            declared, body, complete = self._read_body()
            received = Received(
                arrived,
                self.requestline,
                self.command,
                self.requestline.split(" ")[1] if " " in self.requestline else "",
                list(self.headers.items()),
                declared,
                body,
                complete,
                in_flight,
            )
            if not complete:
                self.close_connection = True
                return
            self._answer(received.target)
        finally:
            self.server._leave(received)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _record

    def _read_body(self) -> tuple[int | None, bytes, bool]:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            body, complete = self._read_chunked()
            return None, body, complete
        length = self.headers.get("Content-Length")
        if length is None:
            return None, b"", True
        declared = int(length)
        body = b""
        while len(body) < declared:
            chunk = self.rfile.read1(min(65536, declared - len(body)))
            if not chunk:
                break
            body += chunk
        return declared, body, len(body) == declared

    def _read_chunked(self) -> tuple[bytes, bool]:
        body = b""
        while True:
            line = self.rfile.readline()
            if not line:
                return body, False
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return body, True
            chunk = self.rfile.read(size)
            self.rfile.readline()
            body += chunk
            if len(chunk) < size:
                return body, False

    def _answer(self, target: str) -> None:
        path = target.partition("?")[0]
        payload: object
        if path == "/ready":
            payload = {"status": "ready"}
        elif path == JWKS_PATH:
            payload = self.server.jwks
        else:
            payload = {"recorded": True}
        body = json.dumps(payload).encode()
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nX-Recorded: 1\r\n\r\n"
        )
        self.wfile.write(head.encode() + (body if self.command != "HEAD" else b""))


@contextmanager
def recording_upstream(jwks: dict[str, Any] | None = None) -> Iterator[RecordingServer]:
    """The recording upstream on a free loopback port, for the block's duration."""
    server = RecordingServer(jwks or {"keys": []})
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --- raw HTTP on blocking sockets ---------------------------------------------------------


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


class Unanswered(Exception):
    """The server neither answered nor closed the connection in time."""


class ResponseReader:
    """Responses read one after another from a connection's bytes."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        self.closed = False

    def _fill(self) -> bool:
        if self.closed:
            return False
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""
        except TimeoutError as exc:
            raise Unanswered(f"no answer and no close; received so far {self.buffer!r}") from exc
        if not chunk:
            self.closed = True
            return False
        self.buffer += chunk
        return True

    def _line(self) -> bytes | None:
        while b"\r\n" not in self.buffer:
            if not self._fill():
                return None
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line

    def _exactly(self, size: int) -> bytes | None:
        while len(self.buffer) < size:
            if not self._fill():
                return None
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def next(self, to_head: bool = False) -> RawResponse | None:
        """The next whole response (to a HEAD request: no body whatever its headers say),
        or None when the connection closed before one."""
        status_line = self._line()
        if status_line is None:
            return None
        status = int(status_line.split()[1])
        headers: list[tuple[str, str]] = []
        while line := self._line():
            name, _, value = line.decode("latin-1").partition(":")
            headers.append((name.strip(), value.strip()))
        response = RawResponse(status, headers, b"")
        if to_head or status in (204, 304) or status < 200:
            return response
        length = response.header("Content-Length")
        if length is not None:
            body = self._exactly(int(length))
            return None if body is None else RawResponse(status, headers, body)
        if "chunked" in (response.header("Transfer-Encoding") or "").lower():
            return RawResponse(status, headers, self._chunked())
        while self._fill():
            pass
        body, self.buffer = self.buffer, b""
        return RawResponse(status, headers, body)

    def _chunked(self) -> bytes:
        body = b""
        while (line := self._line()) is not None:
            size = int(line.split(b";")[0], 16)
            if size == 0:
                self._line()
                break
            body += self._exactly(size) or b""
            self._line()
        return body

    def rest_closes(self) -> bool:
        """Nothing more arrives and the server closes the connection."""
        return not self._fill() and not self.buffer


def connect(
    address: tuple[str, int], source: str = "127.0.0.1", timeout: float = 3.0
) -> socket.socket:
    """A connection to `address` from the loopback address `source`."""
    return socket.create_connection(address, timeout=timeout, source_address=(source, 0))


def is_gateway_error(response: RawResponse) -> bool:
    """The gateway's own refusal: a 4xx/5xx JSON body with "error" and "code"."""
    if not 400 <= response.status < 600:
        return False
    if (response.header("Content-Type") or "").split(";")[0].strip() != "application/json":
        return False
    try:
        payload = json.loads(response.body)
    except ValueError:
        return False
    return isinstance(payload, dict) and {"error", "code"} <= payload.keys()


# --- the drill ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DrillPlan:
    tricklers: int = 64
    stalled_heads: int = 64
    idle: int = 1000
    # Client source addresses the drill's connections are spread over (not the probes').
    addresses: tuple[str, ...] = tuple(f"127.0.2.{n}" for n in range(1, 17))
    upload_size: int = 100_000
    trickle_interval: float = 1.0
    upload_target: str = "/sample/posts"
    idle_target: str = "/ticket/public"
    # How long a trickler or stalled head may stay open before the drill gives up on it.
    patience: float = 15.0


@dataclass(frozen=True)
class Probe:
    name: str
    started: float  # loop time
    latency: float  # seconds; the probe's bound when it timed out
    status: int  # 0: no answer (timed out, reset or closed without one)


@dataclass(frozen=True)
class Ending:
    """How a trickler or stalled head ended: when (seconds after it connected), with what
    status (None: closed without an answer), and after how many body bytes."""

    after: float | None  # None: still open when the drill gave up on it
    status: int | None
    sent: int


@dataclass
class DrillResult:
    probes: list[Probe] = field(default_factory=list)
    idle_opened: int = 0
    idle_answers: list[int] = field(default_factory=list)
    idle_open_at_end: int = 0
    tricklers: list[Ending] = field(default_factory=list)
    stalled: list[Ending] = field(default_factory=list)
    started: float = 0.0  # loop time (time.monotonic) of the first connection
    idle_held: float = 0.0  # loop time when every idle connection had its answer
    duration: float = 0.0


def request_head(method: str, target: str, headers: Sequence[tuple[str, str]] = ()) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: gateway", *(f"{k}: {v}" for k, v in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


_STATUS = re.compile(rb"^HTTP/1\.[01] (\d{3})")


def status_of(answer: bytes) -> int | None:
    found = _STATUS.match(answer)
    return int(found.group(1)) if found else None


async def _open(
    host: str, port: int, source: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(host, port, local_addr=(source, 0))


async def _read_until_closed(reader: asyncio.StreamReader) -> bytes:
    received = b""
    with suppress(ConnectionError):
        while chunk := await reader.read(65536):
            received += chunk
    return received


async def probe_once(gateway: tuple[str, int], name: str, request: bytes, bound: float) -> Probe:
    """One request on a new connection (closed after the answer), timed."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    status = 0
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(bound):
            reader, writer = await _open(*gateway, "127.0.0.1")
            writer.write(request)
            status = status_of(await _read_until_closed(reader)) or 0
    except (TimeoutError, OSError):
        status = 0
    finally:
        if writer is not None:
            writer.close()
    return Probe(name, started, loop.time() - started, status)


async def probe_until(
    gateway: tuple[str, int],
    requests: dict[str, bytes],
    stop: asyncio.Event,
    *,
    bound: float,
    interval: float,
) -> list[Probe]:
    """Each of `requests` in turn, again and again, until `stop` is set."""
    probes: list[Probe] = []
    while not stop.is_set():
        for name, request in requests.items():
            probes.append(await probe_once(gateway, name, request, bound))
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
    return probes


class IdleConnections:
    """Keep-alive connections that made one request each and then idle."""

    def __init__(self) -> None:
        self.connections: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.answers: list[int] = []

    async def open(self, gateway: tuple[str, int], plan: DrillPlan, concurrency: int = 100) -> None:
        gate = asyncio.Semaphore(concurrency)
        request = request_head("GET", plan.idle_target)

        async def one(source: str) -> None:
            async with gate:
                reader, writer = await _open(*gateway, source)
                self.connections.append((reader, writer))
                writer.write(request)
                self.answers.append(await _read_one_answer(reader))

        sources = [plan.addresses[n % len(plan.addresses)] for n in range(plan.idle)]
        await asyncio.gather(*(one(source) for source in sources))

    def still_open(self) -> int:
        return sum(
            1
            for reader, writer in self.connections
            if not reader.at_eof() and reader.exception() is None and not writer.is_closing()
        )

    def close(self) -> None:
        for _, writer in self.connections:
            writer.close()


async def _read_one_answer(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    found = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    await reader.readexactly(int(found.group(1)) if found else 0)
    return status_of(head) or 0


async def trickle(
    gateway: tuple[str, int], source: str, plan: DrillPlan, authorization: str
) -> Ending:
    """An upload whose body comes one byte per `trickle_interval`: how it ended."""
    loop = asyncio.get_running_loop()
    reader, writer = await _open(*gateway, source)
    started = loop.time()
    head = request_head(
        "POST",
        plan.upload_target,
        [
            ("Authorization", authorization),
            ("Content-Type", "application/octet-stream"),
            ("Content-Length", str(plan.upload_size)),
        ],
    )
    answer = asyncio.ensure_future(_read_until_closed(reader))
    sent = 0
    try:
        writer.write(head)
        while not answer.done() and loop.time() - started < plan.patience:
            await asyncio.wait({answer}, timeout=plan.trickle_interval)
            if answer.done():
                break
            writer.write(b"x")
            sent += 1
        await asyncio.wait({answer}, timeout=max(0.0, plan.patience - (loop.time() - started)))
        if not answer.done():
            return Ending(None, None, sent)
        return Ending(loop.time() - started, status_of(answer.result()), sent)
    except ConnectionError:
        return Ending(loop.time() - started, None, sent)
    finally:
        answer.cancel()
        writer.close()


async def stall_head(
    gateway: tuple[str, int], source: str, plan: DrillPlan, authorization: str
) -> Ending:
    """Part of a request head, then nothing: how it ended."""
    loop = asyncio.get_running_loop()
    # The gateway's head deadline runs from the connection, so time it from the connect:
    # on a busy machine this coroutine may resume well after the gateway accepted.
    started = loop.time()
    reader, writer = await _open(*gateway, source)
    whole = request_head("POST", plan.upload_target, [("Authorization", authorization)])
    partial = whole[: whole.index(b"Authorization") + 20]
    try:
        writer.write(partial)
        async with asyncio.timeout(plan.patience):
            answer = await _read_until_closed(reader)
        return Ending(loop.time() - started, status_of(answer), 0)
    except TimeoutError:
        return Ending(None, None, 0)
    finally:
        writer.close()


async def run_drill(
    gateway: tuple[str, int],
    plan: DrillPlan,
    authorization: str,
    probes: dict[str, bytes],
    *,
    probe_bound: float,
    probe_interval: float,
) -> DrillResult:
    """The drill, probed from its first connection to its last trickler's end."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    stop = asyncio.Event()
    probing = asyncio.ensure_future(
        probe_until(gateway, probes, stop, bound=probe_bound, interval=probe_interval)
    )
    idle = IdleConnections()
    result = DrillResult(started=started)
    try:
        await idle.open(gateway, plan)
        result.idle_held = loop.time()
        sources = plan.addresses
        trickling = [
            trickle(gateway, sources[n % len(sources)], plan, authorization)
            for n in range(plan.tricklers)
        ]
        stalling = [
            stall_head(gateway, sources[n % len(sources)], plan, authorization)
            for n in range(plan.stalled_heads)
        ]
        endings = await asyncio.gather(*trickling, *stalling)
        result.tricklers = list(endings[: plan.tricklers])
        result.stalled = list(endings[plan.tricklers :])
        result.idle_opened = len(idle.connections)
        result.idle_answers = idle.answers
        result.idle_open_at_end = idle.still_open()
    finally:
        stop.set()
        result.probes = await probing
        idle.close()
    result.duration = loop.time() - started
    return result
