"""Forwarding to an upstream: pooled keep-alive connections, bodies streamed both ways."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

from gateway.errors import GatewayError

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
        chunk = stream.read(min(CHUNK, remaining))
        if not chunk:
            raise GatewayError(400, "bad_request", "request body shorter than Content-Length")
        remaining -= len(chunk)
        yield chunk


def _read_limited(stream: Any, limit: int) -> Iterator[bytes]:
    total = 0
    while chunk := stream.read(CHUNK):
        total += len(chunk)
        if total > limit:
            raise BodyTooLarge()
        yield chunk


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


def response_headers(upstream_headers: Any) -> list[tuple[str, str]]:
    """The upstream's headers minus hop-by-hop ones and its X-Request-ID (the gateway adds
    its own, so the client gets exactly one)."""
    dropped = HOP_BY_HOP | {"x-request-id"}
    connection_tokens = {
        token.strip().lower() for token in upstream_headers.get("connection", "").split(",")
    }
    return [
        (name, value)
        for name, value in upstream_headers.items()
        if name.lower() not in dropped and name.lower() not in connection_tokens
    ]


class UpstreamResponse:
    """The upstream's answer, streamed to the client; the connection goes back to the pool."""

    def __init__(self, response: urllib3.BaseHTTPResponse, on_close: Callable[[], None]) -> None:
        self.response = response
        self.status = response.status
        self.reason = response.reason
        self.headers = response_headers(response.headers)
        self._on_close = on_close

    def __iter__(self) -> Iterator[bytes]:
        # read1: pass on whatever has arrived, so a trickling response is not held back.
        while chunk := self.response.read1(CHUNK, decode_content=False):
            yield chunk

    def close(self) -> None:
        if not self.response.closed:
            # Not read to its end (the client went away): the connection is mid-body
            # and must not be reused for another request.
            self.response.close()
        self.response.release_conn()
        self._on_close()


class Upstream:
    """One service: a keep-alive connection pool and the rules for calling it."""

    def __init__(self, name: str, base_url: str, *, pool_size: int, connect_timeout: float) -> None:
        self.name = name
        self.base_url = base_url
        self.connect_timeout = connect_timeout
        self.pool = urllib3.connection_from_url(
            base_url, maxsize=pool_size, block=False, retries=False
        )

    def send(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: Iterable[bytes] | None,
        chunked: bool,
        read_timeout: float,
    ) -> urllib3.BaseHTTPResponse:
        """One request; retried once on a connection failure when that is safe."""
        attempts = 2 if method in IDEMPOTENT and body is None else 1
        timeout = urllib3.Timeout(connect=self.connect_timeout, read=read_timeout)
        for attempt in range(attempts):
            try:
                return self.pool.urlopen(
                    method,
                    target,
                    body=body,
                    headers=headers,
                    chunked=chunked,
                    timeout=timeout,
                    retries=False,
                    redirect=False,
                    preload_content=False,
                    decode_content=False,
                    assert_same_host=False,
                )
            except (NewConnectionError, ProtocolError) as exc:
                if attempt + 1 == attempts:
                    raise self._unavailable() from exc
            except ConnectTimeoutError as exc:
                raise self._unavailable() from exc
            except ReadTimeoutError as exc:
                raise GatewayError(
                    504, "upstream_timeout", f"{self.name} did not answer in time"
                ) from exc
            except HTTPError as exc:
                raise GatewayError(
                    502, "bad_gateway", f"{self.name} failed: {type(exc).__name__}"
                ) from exc
        raise AssertionError("unreachable")

    def _unavailable(self) -> GatewayError:
        return GatewayError(502, "upstream_unavailable", f"{self.name} is unavailable")
