"""What the gateway refuses at the edge, before a request is routed: framing it will not
guess at, and request targets a service could read differently from the gateway.

Framing: HTTP/1.0 and HTTP/1.1 only; exactly one Host on HTTP/1.1; `chunked` as the only
transfer coding, and none in HTTP/1.0; never a length and a transfer coding together,
nor two lengths. (The
parser, llhttp, refuses most of these itself; what reaches this module is refused here.)
Each refusal closes the connection: after a framing error the next request's start is
unknown.

The request target: the one path the gateway checks and the service receives.

The path is decoded once, to match the route table; the service receives the raw path
byte for byte and decodes it once too. They can only read the same path if decoding
cannot create a separator: a `%2F`, `%5C` or `%25` inside a path segment (an encoded `/`,
`\\` or `%`) is refused, as are dot segments, control characters, malformed escapes and
bytes outside ASCII (which a client must percent-encode). Nothing is re-encoded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from multidict import CIMultiDictProxy

from gateway.errors import GatewayError

VERSIONS = ((1, 0), (1, 1))

_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})|%(?:2[Ff]|25|5[Cc])")
_UNSAFE_RAW = re.compile(r"[^\x21-\x7e]|[#\\]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Target:
    path: str  # decoded once: what the route table matches
    raw: str  # the path and query exactly as received: what the service is sent


def parse_target(raw: str) -> Target:
    raw_path, _, _ = raw.partition("?")
    if not raw_path.startswith("/"):
        raise bad_target("the request target must be a path (origin-form)")
    if _UNSAFE_RAW.search(raw):
        raise bad_target("the request target holds a character that must be percent-encoded")
    if _ESCAPE.search(raw_path):
        raise bad_target("an encoded '/', '\\' or '%', or a malformed escape, in the path")
    try:
        path = unquote(raw_path, errors="strict")
    except UnicodeDecodeError as exc:
        raise bad_target("the path is not UTF-8 once decoded") from exc
    if _CONTROL.search(path):
        raise bad_target("a control character in the path")
    if any(segment in (".", "..") for segment in path.split("/")):
        raise bad_target("a dot segment in the path")
    return Target(path, raw)


def bad_target(message: str) -> GatewayError:
    return GatewayError(400, "bad_request_target", message)


def check_framing(version: tuple[int, int], headers: CIMultiDictProxy[str]) -> None:
    if version not in VERSIONS:
        raise GatewayError(
            505, "http_version_not_supported", "HTTP/1.0 and HTTP/1.1 only", closes=True
        )
    hosts = headers.getall("Host", ())
    if len(hosts) > 1 or (version == (1, 1) and len(hosts) != 1):
        raise GatewayError(
            400, "bad_request", "an HTTP/1.1 request needs exactly one Host", closes=True
        )
    codings = headers.getall("Transfer-Encoding", ())
    lengths = headers.getall("Content-Length", ())
    if codings and [c.strip().lower() for c in codings] != ["chunked"]:
        raise GatewayError(
            501, "unsupported_transfer_coding", "chunked is the only coding", closes=True
        )
    if codings and version == (1, 0):  # RFC 9112 6.1: the framing is faulty
        raise GatewayError(400, "bad_request", "a transfer coding in HTTP/1.0", closes=True)
    if (codings and lengths) or len(lengths) > 1:
        raise GatewayError(400, "bad_request", "conflicting body lengths", closes=True)
