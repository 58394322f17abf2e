"""Forwarding to an upstream: pooled keep-alive connections, bodies streamed both ways."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

import urllib3

from gateway.errors import GatewayError
from gateway.upstream_http import (
    AnswerTimedOut,
    BadAnswer,
    ConnectFailed,
    ConnectionLost,
    ConnectTimedOut,
    Exchange,
    Pool,
)

CHUNK = 64 * 1024
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
# Identity is only ever what the gateway verified: a client cannot claim to be someone.
IDENTITY_PREFIXES = (
    "x-user",
    "x-auth",
    "x-identity",
    "x-remote-user",
    "x-forwarded-user",
    "x-service",
    "remote-user",
    "x-authenticated",
)
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})


class BodyTooLarge(Exception):
    pass


def request_body(environ: dict[str, Any], limit: int) -> tuple[Iterator[bytes] | None, bool]:
    """The request body as a stream of chunks, and whether it must be sent chunked.

    A declared Content-Length over the limit is refused before anything is read; a chunked
    body is counted as it streams and cut off at the limit.
    """
    stream = environ["wsgi.input"]
    length_header = environ.get("CONTENT_LENGTH") or ""
    if length_header:
        try:
            length = int(length_header)
        except ValueError as exc:
            raise GatewayError(400, "bad_request", "invalid Content-Length") from exc
        if length < 0:
            raise GatewayError(400, "bad_request", "invalid Content-Length")
        if length > limit:
            raise GatewayError(413, "payload_too_large", f"request body over {limit} bytes")
        return (_read_exactly(stream, length) if length else None), False
    if environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked":
        return _read_limited(stream, limit), True
    return None, False


def _read_exactly(stream: Any, length: int) -> Iterator[bytes]:
    remaining = length
    while remaining > 0:
        chunk = _read_client(stream, min(CHUNK, remaining))
        if not chunk:
            raise GatewayError(400, "bad_request", "request body shorter than Content-Length")
        remaining -= len(chunk)
        yield chunk


def _read_limited(stream: Any, limit: int) -> Iterator[bytes]:
    total = 0
    while chunk := _read_client(stream, CHUNK):
        total += len(chunk)
        if total > limit:
            raise BodyTooLarge()
        yield chunk


def _read_client(stream: Any, size: int) -> bytes:
    """One read of the client's body. Its failures are the client's, so they must not
    reach the upstream client (gateway.upstream_http) as socket errors: it would take a
    timeout for the upstream's and answer 504, and a reset for the upstream refusing the
    rest of the body and wait for an answer to a request never finished. Raised as a
    GatewayError, a failure aborts the exchange: the upstream connection is closed, so
    the service stops waiting for the rest of the body at once."""
    try:
        data: bytes = stream.read(size)
    except TimeoutError as exc:  # the server's client timeout: the client stalled
        raise GatewayError(408, "request_timeout", "request body not received in time") from exc
    except OSError as exc:
        raise GatewayError(400, "client_disconnected", "request body cut off") from exc
    except Exception as exc:  # the server's body parser refused it (a malformed chunk)
        raise GatewayError(400, "bad_request", "malformed request body") from exc
    return data


def forwarded_headers(
    environ: dict[str, Any], request_id: str, forwarded_for: str
) -> dict[str, str]:
    """The client's headers minus hop-by-hop and identity headers, plus X-Forwarded-*."""
    connection_tokens = {
        token.strip().lower() for token in environ.get("HTTP_CONNECTION", "").split(",")
    }
    headers: dict[str, str] = {}
    for key, value in environ.items():
        if not key.startswith("HTTP_"):
            continue
        name = key[5:].replace("_", "-").lower()
        if name in HOP_BY_HOP or name in connection_tokens or name == "host":
            continue
        if name.startswith(IDENTITY_PREFIXES) or name.startswith("x-forwarded-"):
            continue
        headers[name] = value
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = environ["CONTENT_TYPE"]
    if environ.get("CONTENT_LENGTH"):
        headers["content-length"] = environ["CONTENT_LENGTH"]
    headers["x-forwarded-for"] = forwarded_for
    headers["x-forwarded-proto"] = environ.get("wsgi.url_scheme", "http")
    headers["x-forwarded-host"] = environ.get("HTTP_HOST", "")
    headers["x-request-id"] = request_id
    return headers


def client_address(environ: dict[str, Any], trusted_proxies: int) -> tuple[str, str]:
    """The client's address, and the X-Forwarded-For to pass on (ending with that address).

    With N trusted proxies in front, the client is the Nth entry from the right of their
    X-Forwarded-For; entries further left were written by the client and prove nothing.
    The forwarded chain ends with the client address the gateway settled on, so services
    can take its last element.
    """
    peer = environ.get("REMOTE_ADDR", "")
    chain = [part.strip() for part in environ.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    chain = [part for part in chain if part]
    if trusted_proxies > 0 and len(chain) >= trusted_proxies:
        position = len(chain) - trusted_proxies
        return chain[position], ", ".join(chain[: position + 1])
    return peer, ", ".join([*chain, peer])


def response_headers(upstream_headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The upstream's headers minus hop-by-hop ones and its X-Request-ID (the gateway adds
    its own, so the client gets exactly one)."""
    dropped = HOP_BY_HOP | {"x-request-id"}
    connection_tokens = {
        token.strip().lower()
        for name, value in upstream_headers
        if name.lower() == "connection"
        for token in value.split(",")
    }
    return [
        (name, value)
        for name, value in upstream_headers
        if name.lower() not in dropped and name.lower() not in connection_tokens
    ]


class UpstreamResponse:
    """The upstream's answer, streamed to the client; the connection goes back to the pool
    once the whole body has been read."""

    def __init__(self, exchange: Exchange, on_close: Callable[[], None]) -> None:
        self.exchange = exchange
        self.status = exchange.status
        self.reason = exchange.reason
        self.headers = response_headers(exchange.headers)
        self._on_close = on_close

    def __iter__(self) -> Iterator[bytes]:
        # read1: pass on whatever has arrived, so a trickling response is not held back.
        while chunk := self.exchange.read1():
            yield chunk

    def close(self) -> None:
        # Not read to its end (the client went away): the connection is mid-body and is
        # closed rather than reused.
        self.exchange.close()
        self._on_close()


class Upstream:
    """One service: keep-alive connections and the rules for calling it."""

    def __init__(self, name: str, base_url: str, *, pool_size: int, connect_timeout: float) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"{name}: the gateway forwards over plain HTTP, not {base_url!r}")
        self.name = name
        self.base_url = base_url
        self.sockets = Pool(parts.hostname, parts.port or 80, pool_size, connect_timeout)
        # The health check and the API document (a few calls a minute) use urllib3.
        self.pool = urllib3.connection_from_url(base_url, maxsize=2, block=False, retries=False)

    def send(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: Iterable[bytes] | None,
        chunked: bool,
        read_timeout: float,
    ) -> Exchange:
        """One request, up to the answer's head; retried once on a connection failure
        when that is safe (an idempotent method without a body)."""
        attempts = 2 if method in IDEMPOTENT and body is None else 1
        for attempt in range(attempts):
            try:
                return self._exchange(method, target, headers, body, chunked, read_timeout)
            except (ConnectFailed, ConnectionLost) as exc:
                if attempt + 1 == attempts:
                    raise self._unavailable() from exc
            except ConnectTimedOut as exc:
                raise self._unavailable() from exc
            except AnswerTimedOut as exc:
                raise GatewayError(
                    504, "upstream_timeout", f"{self.name} did not answer in time"
                ) from exc
            except BadAnswer as exc:
                raise GatewayError(502, "bad_gateway", f"{self.name} failed: {exc}") from exc
        raise AssertionError("unreachable")

    def _exchange(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: Iterable[bytes] | None,
        chunked: bool,
        read_timeout: float,
    ) -> Exchange:
        sock, _ = self.sockets.acquire()
        exchange = Exchange(self.sockets, sock, method)
        try:
            exchange.send(target, headers, body, chunked, read_timeout)
            exchange.receive_head()
        except BaseException:
            exchange.abort()  # the upstream must not wait for the rest of this request
            raise
        return exchange

    def _unavailable(self) -> GatewayError:
        return GatewayError(502, "upstream_unavailable", f"{self.name} is unavailable")
