"""Real pieces for the gateway tests: an echo upstream, loopback servers, crafted tokens.

The echo upstream is a WSGI app served on loopback. It answers every request with JSON
describing what it received (method, path, query string, headers, body length and sha256,
read in chunks and never held whole), except for a few special paths:

- `/ready`: 200, for the gateway's /health.
- `/.well-known/jwks.json`: the test keys, for a gateway that fetches its keys.
- `.../slow/<seconds>`: sleeps, then echoes.
- `.../large/<bytes>`: a streamed body of that many pattern bytes (see `pattern_bytes`).
- `.../hop`: an echo carrying hop-by-hop response headers.

Like every servicekit service, it answers with the `X-Request-ID` it was sent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import requests
from requests.adapters import HTTPAdapter
from werkzeug.wrappers import Response
from werkzeug.wsgi import get_input_stream

from gateway.app import Gateway
from gateway.testing import serve_gateway

MIB = 1024 * 1024
CHUNK = 64 * 1024
PATTERN = bytes(range(256)) * (CHUNK // 256)
StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
_SPECIAL = re.compile(r"/(slow|large)/([0-9.]+)/?$|/(hop)/?$")


def pattern_bytes(size: int) -> Iterator[bytes]:
    """`size` bytes of a repeating pattern, in chunks of at most 64 KiB."""
    remaining = size
    while remaining > 0:
        chunk = PATTERN[: min(CHUNK, remaining)]
        remaining -= len(chunk)
        yield chunk


def pattern_sha256(size: int) -> str:
    digest = hashlib.sha256()
    for chunk in pattern_bytes(size):
        digest.update(chunk)
    return digest.hexdigest()


class PatternFile:
    """A file-like body of known length, so `requests` sends a Content-Length."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._chunks = pattern_bytes(size)
        self._buffer = b""

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, b"")
            if not chunk:
                break
            self._buffer += chunk
        cut = len(self._buffer) if size < 0 else size
        data, self._buffer = self._buffer[:cut], self._buffer[cut:]
        return data


class EchoUpstream:
    """The echo WSGI app; `seen` lists (method, path, query string) of every request."""

    def __init__(self, jwks: dict[str, Any] | None = None) -> None:
        self.jwks = jwks or {"keys": []}
        self.seen: list[tuple[str, str, str]] = []
        self.url = ""

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        answer = self._answer(environ, start_response)
        # werkzeug's development server would send the body of an answer to HEAD, which
        # no HTTP server may (gunicorn, which runs the services, does not).
        return [] if environ["REQUEST_METHOD"] == "HEAD" else answer

    def _answer(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        self.seen.append((environ["REQUEST_METHOD"], path, environ.get("QUERY_STRING", "")))
        if path == "/ready":
            return self._json(start_response, {"status": "ready"})
        if path == "/.well-known/jwks.json":
            return self._json(start_response, self.jwks)
        special = _SPECIAL.search(path)
        if special and special.group(1) == "large":
            size = int(special.group(2))
            headers = [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))]
            start_response("200 OK", headers)
            return pattern_bytes(size)
        if special and special.group(1) == "slow":
            time.sleep(float(special.group(2)))
        extra = HOP_RESPONSE_HEADERS if special and special.group(3) == "hop" else []
        if environ.get("HTTP_X_REQUEST_ID"):  # as every servicekit service answers
            extra = [*extra, ("X-Request-ID", environ["HTTP_X_REQUEST_ID"])]
        return self._json(start_response, self._describe(environ), extra)

    def _describe(self, environ: dict[str, Any]) -> dict[str, Any]:
        digest, length = hashlib.sha256(), 0
        stream = get_input_stream(environ)
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
            length += len(chunk)
        headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(key):
                headers[key.replace("_", "-").lower()] = environ[key]
        return {
            "method": environ["REQUEST_METHOD"],
            "path": (environ.get("PATH_INFO") or "/").encode("latin-1").decode(),
            "query_string": environ.get("QUERY_STRING", ""),
            "headers": headers,
            "body_length": length,
            "body_sha256": digest.hexdigest(),
        }

    @staticmethod
    def _json(
        start_response: StartResponse,
        payload: object,
        extra: list[tuple[str, str]] | None = None,
    ) -> list[bytes]:
        body = json.dumps(payload).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        start_response("200 OK", [*headers, *(extra or [])])
        return [body]


HOP_RESPONSE_HEADERS = [
    ("Keep-Alive", "timeout=5, max=100"),
    ("Proxy-Authenticate", 'Basic realm="upstream"'),
    ("Upgrade", "h2c"),
    ("Trailer", "X-Checksum"),
    ("Connection", "X-Hop-Secret"),
    ("X-Hop-Secret", "hop value"),
    ("X-End-To-End", "kept"),
]


class KeepAliveUpstream(BaseHTTPRequestHandler):
    """An HTTP/1.1 upstream that keeps connections open (werkzeug's server closes each one).

    GET sends 64 KiB at once, then drips 5 x 1000 bytes, 0.2 s apart (a path ending in
    `/trickle` skips the 64 KiB head); POST answers JSON with the body length.
    `server.peers` lists the client port of every request.
    """

    protocol_version = "HTTP/1.1"
    DRIP = 5

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.peers.append(self.client_address[1])  # type: ignore[attr-defined]
        head = b"" if self.path.rstrip("/").endswith("/trickle") else PATTERN
        self.send_response(200)
        self.send_header("Content-Length", str(len(head) + self.DRIP * 1000))
        self.end_headers()
        try:
            self.wfile.write(head)
            self.wfile.flush()
            for _ in range(self.DRIP):
                time.sleep(0.2)
                self.wfile.write(b"d" * 1000)
                self.wfile.flush()
        except OSError:
            self.close_connection = True

    def do_POST(self) -> None:
        self.server.peers.append(self.client_address[1])  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        payload = json.dumps({"method": "POST", "path": self.path, "body_length": len(body)})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload.encode())


@contextmanager
def serve_keep_alive() -> Iterator[tuple[str, list[int]]]:
    """Serve `KeepAliveUpstream` on a free loopback port; yield its URL and peer ports."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), KeepAliveUpstream)
    peers: list[int] = []
    server.peers = peers  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", peers
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def raw_exchange(url: str, head: bytes, body: Iterable[bytes], timeout: float = 5.0) -> bytes:
    """Send a request head and body parts on a raw socket; return what came back.

    The body is sent from a thread, so a server that answers before reading the body
    (and then stops reading) does not block the test; send errors are ignored.
    """
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(head)

        def send_body() -> None:
            try:
                for part in body:
                    sock.sendall(part)
            except OSError:
                pass

        sender = threading.Thread(target=send_body, daemon=True)
        sender.start()
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
                if _complete(received):
                    break
        except TimeoutError:
            pass
        with suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    sender.join(timeout=timeout)
    return received


def _complete(response: bytes) -> bool:
    head, separator, body = response.partition(b"\r\n\r\n")
    if not separator:
        return False
    found = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head)
    return found is not None and len(body) >= int(found.group(1))


def parse_raw_response(response: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def craft_token(header: dict[str, Any], claims: dict[str, Any], secret: bytes | None) -> str:
    """A JWT assembled by hand: unsigned (`secret` None) or HMAC-SHA256 with `secret`."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = b""
    if secret is not None:
        signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def token_parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    return json.loads(_unb64(header)), json.loads(_unb64(payload)), signature


def with_claims(token: str, **changes: Any) -> str:
    """The same token with some claims changed and the original signature kept."""
    header, payload, signature = token.split(".")
    claims = {**json.loads(_unb64(payload)), **changes}
    return f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"


class GatewayClient:
    """Calls to a gateway served for real on loopback (gateway.testing), in the shape of
    werkzeug's test client: `open(path, method=..., headers=, json=, data=,
    query_string=, environ_base={"REMOTE_ADDR": ...})`, answers as werkzeug Responses.

    REMOTE_ADDR must be a loopback address (127.x.y.z): the request is sent from it, so
    the gateway sees it as the TCP peer. Every served gateway is stopped by `stop_all`,
    which the gateway tests' conftest calls after each test.
    """

    _served: ClassVar[ExitStack] = ExitStack()

    def __init__(self, gateway: Gateway) -> None:
        served = self._served.enter_context(serve_gateway(gateway))
        self.gateway = gateway
        self.url = served.url
        self.metrics_url = served.metrics_url
        self._sessions: dict[str, requests.Session] = {}
        self._served.callback(self._close_sessions)

    @classmethod
    def stop_all(cls) -> None:
        cls._served.close()

    def open(
        self,
        path: str,
        method: str = "GET",
        *,
        headers: dict[str, str] | None = None,
        json: Any = None,
        data: Any = None,
        query_string: dict[str, str] | None = None,
        environ_base: dict[str, str] | None = None,
    ) -> Response:
        address = (environ_base or {}).get("REMOTE_ADDR", "127.0.0.1")
        answer = self._session(address).request(
            method,
            self.url + path,
            headers=headers,
            json=json,
            data=data,
            params=query_string,
            allow_redirects=False,
            timeout=30,
        )
        return Response(
            answer.content, status=answer.status_code, headers=list(answer.raw.headers.items())
        )

    def get(self, path: str, **options: Any) -> Response:
        return self.open(path, "GET", **options)

    def metrics(self) -> str:
        """The Prometheus text of the gateway's internal listener."""
        answer = requests.get(self.metrics_url + "/metrics", timeout=10)
        answer.raise_for_status()
        return answer.text

    def head(self, path: str, **options: Any) -> Response:
        return self.open(path, "HEAD", **options)

    def post(self, path: str, **options: Any) -> Response:
        return self.open(path, "POST", **options)

    def put(self, path: str, **options: Any) -> Response:
        return self.open(path, "PUT", **options)

    def patch(self, path: str, **options: Any) -> Response:
        return self.open(path, "PATCH", **options)

    def delete(self, path: str, **options: Any) -> Response:
        return self.open(path, "DELETE", **options)

    def options(self, path: str, **options: Any) -> Response:
        return self.open(path, "OPTIONS", **options)

    def _session(self, address: str) -> requests.Session:
        if address not in self._sessions:
            if not address.startswith("127."):
                raise ValueError(f"REMOTE_ADDR must be a loopback address, not {address}")
            session = requests.Session()
            session.trust_env = False
            adapter = _FromAddress(address)
            session.mount("http://", adapter)
            self._sessions[address] = session
        return self._sessions[address]

    def _close_sessions(self) -> None:
        for session in self._sessions.values():
            session.close()


class _FromAddress(HTTPAdapter):
    """Connections sent from a given local address."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)
