"""Request framing and request targets, fuzzed through the gateway (served in-process) to
an upstream that records each request line and body exactly as it received them.

The property, for every request sent on a raw socket:

- what reaches the upstream is what the client framed: the request target byte for byte
  (the raw path the gateway matched) and the body the client's framing delimits, in
  order, and nothing else (no request read out of another's body);
- what the gateway does not accept never reaches the upstream, and is answered with the
  gateway's JSON error (4xx/5xx, application/json, "error" and "code") or a closed
  connection, never an HTML page;
- the gateway's contract (gateway/edge.py) holds: no encoded '/', '\\' or '%' in a path,
  no dot segment, HTTP/1.0 and 1.1 only, one Host, `chunked` as the only transfer
  coding, never a length with a transfer coding, never two lengths;
- a well-formed request is forwarded (a gateway refusing everything fails).

Paths and framing headers are generated with hypothesis; the known smuggling shapes are
listed one by one. The gateway keeps bodies over 64 bytes in a temporary file, so both
ways of forwarding a body are exercised.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.app import Gateway, create_app
from gateway.config import GatewayConfig
from gateway.routing import AUTHENTICATED, PUBLIC, Route
from gateway.testing import serve_gateway
from servicekit.config import UPSTREAMS
from servicekit.testing import TestKeys
from tests.gateway.drill_harness import (
    RawResponse,
    Received,
    RecordingServer,
    ResponseReader,
    Unanswered,
    connect,
    is_gateway_error,
    recording_upstream,
)

READ_TIMEOUT = 2.0
HOST = b"Host: gateway\r\n"
CLOSE = b"Connection: close\r\n"


@dataclass(frozen=True)
class Framed:
    """A request as the client framed it: what the upstream may receive for it."""

    method: str
    target: str
    body: bytes = b""


@dataclass(frozen=True)
class Outcome:
    responses: list[RawResponse]
    closed: bool
    received: list[Received]


# The route table of this gateway: the public GET routes of the real table the paths are
# generated for, and one of each kind of route taking a body.
ROUTES = (
    Route("GET", "/ticket/public", "tickets", PUBLIC),
    Route("GET", "/ticket/<ticket_id>/comments", "tickets", PUBLIC),
    Route("GET", "/events/<event_id>", "events", PUBLIC),
    Route("GET", "/media/<path:key>", "media", PUBLIC),
    Route("POST", "/upload", "media", PUBLIC),
    Route("POST", "/login", "auth", PUBLIC, credential=True),
    Route("POST", "/private", "media", AUTHENTICATED),
)


@pytest.fixture(scope="module")
def recorder(test_keys: TestKeys) -> Iterator[RecordingServer]:
    with recording_upstream(test_keys.jwks) as server:
        yield server


@pytest.fixture(scope="module")
def gateway_address(recorder: RecordingServer, test_keys: TestKeys) -> Iterator[tuple[str, int]]:
    config = GatewayConfig(
        upstreams=dict.fromkeys(UPSTREAMS, recorder.url),
        redis_url=None,
        connect_timeout=0.5,
        read_timeout=2.0,
        max_body=1024 * 1024,
        body_in_memory=64,
    )
    gateway: Gateway = create_app(config, keys=test_keys.key_set, routes=ROUTES)
    with serve_gateway(gateway) as served:
        host, port = served.url.removeprefix("http://").split(":")
        yield host, int(port)


def exchange(
    address: tuple[str, int],
    recorder: RecordingServer,
    raw: bytes,
    head_requests: int = 0,
    *,
    then: bytes = b"",
) -> Outcome:
    """Send `raw` on a new connection (and `then`, 0.2 s later, in a segment of its own);
    read every answer until the gateway closes it (each shape's last request asks for
    the close). The first `head_requests` answers are read as answers to HEAD requests."""
    recorder.clear()
    responses: list[RawResponse] = []
    with connect(address, timeout=READ_TIMEOUT) as sock:
        sock.sendall(raw)
        if then:
            time.sleep(0.2)
            sock.sendall(then)
        reader = ResponseReader(sock)
        try:
            while (response := reader.next(to_head=len(responses) < head_requests)) is not None:
                responses.append(response)
        except Unanswered as exc:
            pytest.fail(
                f"the gateway neither answered nor closed within {READ_TIMEOUT} s after "
                f"{len(responses)} answers to {raw!r}: {exc}"
            )
    time.sleep(0.01)  # a request forwarded after the last answer would show up by now
    return Outcome(responses, reader.closed, recorder.forwarded())


def upstream_answered(response: RawResponse) -> bool:
    return response.header("X-Recorded") == "1" and response.status == 200


def looks_like_html(response: RawResponse) -> bool:
    content_type = (response.header("Content-Type") or "").lower()
    return "html" in content_type or b"<html" in response.body.lower()


def check_outcome(outcome: Outcome, raw: bytes, framed: list[Framed], *, forwarded: bool) -> None:
    """The property: the upstream got a subsequence of `framed` (all of it when
    `forwarded`), exactly; every other answer is the gateway's JSON error."""
    got = [Framed(r.method, r.target, r.body) for r in outcome.received]
    assert is_subsequence(got, framed), (
        f"the upstream received {got!r}\nbut the client framed only {framed!r}\nsent: {raw!r}"
    )
    if forwarded:
        assert got == framed, f"a well-formed request was not forwarded: {raw!r}\n{outcome}"
    incomplete = [r for r in outcome.received if not r.complete]
    assert incomplete == [], f"the upstream received an incomplete body: {incomplete}"
    answered = [r for r in outcome.responses if upstream_answered(r)]
    assert len(answered) == len(got), f"answers and forwarded requests differ: {outcome}"
    for response in (r for r in outcome.responses if r.status >= 200):  # not 100 Continue
        assert not looks_like_html(response), f"an HTML page for {raw!r}: {response}"
        assert upstream_answered(response) or is_gateway_error(response), (
            f"neither the upstream's answer nor the gateway's JSON error for {raw!r}: {response}"
        )


def is_subsequence(items: list[Framed], of: list[Framed]) -> bool:
    remaining = iter(of)
    return all(any(item == candidate for candidate in remaining) for item in items)


# --- request targets -----------------------------------------------------------------------

# Pieces of a path segment. SAFE ones make a path the gateway must forward; SEPARATING
# ones (an encoded '/', '\\' or '%', a backslash, or a dot segment once decoded) one it
# must refuse; the others (bad escapes, bytes a client must encode, the query's start)
# may go either way but never past the property.
SAFE = ["a", "Z", "0", "-", "_", "~", "%41", "%20", "%C3%A9", "%E2%82%AC", ";", ",", "="]
SAFE += ["@", ":", "!", "$", "&", "'", "(", ")", "*", "+", "%3F", "%23", "%3B"]
SEPARATING = ["%2F", "%2f", "%25", "%5C", "%5c", "%252F", "%252f", "%255C", "\\"]
SEPARATING += ["%2E", "%2e", "%2E%2E", ".%2e", "%c0%af", "%%32%46"]
ODD = ["%FF", "%C3", "%00", "%0A", "%7F", "%", "%G1", "%2", "é", "€", " ", "\t", "#"]
ODD += ["?", "?%2F", "[", "]", "|", "^", "`", "{", "}", '"', "<", ">", "//", "%u002F"]
DOTS = [".", ".."]
TEMPLATES = ["/media/{}", "/ticket/{}/comments", "/events/{}"]


@st.composite
def paths(draw: st.DrawFn) -> tuple[str, bool]:
    """A request target of one of the public GET routes, and whether it is made of SAFE
    pieces only."""
    pieces = draw(st.lists(st.sampled_from(SAFE + SEPARATING + ODD), min_size=1, max_size=12))
    template = draw(st.sampled_from(TEMPLATES))
    count = draw(st.integers(1, 4)) if template == "/media/{}" else 1
    cuts = sorted(draw(st.lists(st.integers(1, len(pieces)), max_size=count - 1)))
    segments = ["".join(pieces[a:b]) for a, b in zip([0, *cuts], [*cuts, len(pieces)], strict=True)]
    segments = [s or "a" for s in segments]
    dot = draw(st.sampled_from([None, *DOTS]))
    if dot is not None:
        segments[draw(st.integers(0, len(segments) - 1))] = dot
    path = template.format("/".join(segments))
    query = draw(st.lists(st.sampled_from(SAFE + SEPARATING + ODD), max_size=3))
    if query:
        path += "?q=" + "".join(query)
    safe = dot is None and all(p in SAFE for p in [*pieces, *query])
    return path, safe


def separates_once_decoded(raw_path: str) -> bool:
    """Decoding the path once could make it a different path: an encoded separator or
    '%', a backslash, or a dot segment."""
    if re.search(r"%(2[Ff]|25|5[Cc])", raw_path) or "\\" in raw_path:
        return True
    decoded = unquote(raw_path, errors="replace")
    return any(segment in (".", "..") for segment in decoded.split("/"))


@settings(max_examples=150, deadline=None)
@given(target=paths())
def test_a_path_reaches_the_upstream_byte_for_byte_or_not_at_all(
    gateway_address: tuple[str, int], recorder: RecordingServer, target: tuple[str, bool]
) -> None:
    path, safe = target
    request_line = b"GET " + path.encode() + b" HTTP/1.1"
    raw = request_line + b"\r\n" + HOST + CLOSE + b"\r\n"
    outcome = exchange(gateway_address, recorder, raw)

    read_as = target_as_read(request_line)
    forwarded = [r.target for r in outcome.received]
    if read_as is not None and separates_once_decoded(read_as.partition("?")[0]):
        assert forwarded == [], f"a path that decodes to another path was forwarded: {path!r}"
        assert all(r.status == 400 for r in outcome.responses), outcome.responses
    framed = [] if read_as is None else [Framed("GET", read_as)]
    check_outcome(outcome, raw, framed, forwarded=safe)


def target_as_read(request_line: bytes) -> str | None:
    """The request target of a request line read as whitespace-delimited words (as RFC
    9112 section 3 lets a recipient do: a space or tab the client did not encode ends
    the target); None when the line is not three words."""
    words = request_line.split()
    return words[1].decode("latin-1") if len(words) == 3 else None


@pytest.mark.parametrize(
    "path",
    [
        *("/media/a%2Fb", "/media/a%2fb", "/media/%252F", "/media/a%5Cb", "/media/a%25b"),
        *("/media/a\\b", "/media/./a", "/media/a/../b", "/media/%2e%2e/a", "/events/%2E"),
    ],
)
def test_an_encoded_separator_or_dot_segment_is_refused_with_400(
    gateway_address: tuple[str, int], recorder: RecordingServer, path: str
) -> None:
    raw = b"GET " + path.encode() + b" HTTP/1.1\r\n" + HOST + CLOSE + b"\r\n"
    outcome = exchange(gateway_address, recorder, raw)
    assert outcome.received == []
    assert [r.status for r in outcome.responses] == [400]
    assert is_gateway_error(outcome.responses[0])


# --- framing: the known shapes ------------------------------------------------------------

POST_HELLO = Framed("POST", "/upload", b"hello")
GET_AFTER = Framed("GET", "/ticket/public?after")
AFTER = b"GET /ticket/public?after HTTP/1.1\r\n" + HOST + CLOSE + b"\r\n"
CHUNKED_HELLO = b"5\r\nhello\r\n0\r\n\r\n"
SMUGGLED = b"GET /smuggled HTTP/1.1\r\n" + HOST + b"\r\n"
LOGIN = b'{"username": "someone", "password": "' + b"p" * 100 + b'"}'


def post(headers: bytes, body: bytes, *, version: bytes = b"1.1", host: bytes = HOST) -> bytes:
    return b"POST /upload HTTP/" + version + b"\r\n" + host + headers + b"\r\n" + body


@dataclass(frozen=True)
class Shape:
    raw: bytes
    framed: list[Framed]  # what may reach the upstream, in order
    forwarded: bool = False  # all of `framed` must reach it
    head_requests: int = 0


SHAPES: dict[str, Shape] = {
    # Well-formed: forwarded exactly.
    "get": Shape(
        b"GET /ticket/public?after HTTP/1.1\r\n" + HOST + CLOSE + b"\r\n", [GET_AFTER], True
    ),
    "content-length body, then a pipelined request": Shape(
        post(b"Content-Length: 5\r\n", b"hello") + AFTER, [POST_HELLO, GET_AFTER], True
    ),
    "chunked body, then a pipelined request": Shape(
        post(b"Transfer-Encoding: chunked\r\n", CHUNKED_HELLO) + AFTER,
        [POST_HELLO, GET_AFTER],
        True,
    ),
    "a body over the in-memory size, then a pipelined request": Shape(
        post(b"Content-Length: 200\r\n", b"b" * 200) + AFTER,
        [Framed("POST", "/upload", b"b" * 200), GET_AFTER],
        True,
    ),
    "a credential body over the in-memory size": Shape(
        b"POST /login HTTP/1.1\r\n" + HOST + b"Content-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(LOGIN) + LOGIN + AFTER,
        [Framed("POST", "/login", LOGIN), GET_AFTER],
        True,
    ),
    "a request inside a body is body": Shape(
        post(b"Content-Length: %d\r\n" % len(SMUGGLED), SMUGGLED) + AFTER,
        [Framed("POST", "/upload", SMUGGLED), GET_AFTER],
        True,
    ),
    "HTTP/1.0 without Host": Shape(b"GET /ticket/public?after HTTP/1.0\r\n\r\n", [GET_AFTER], True),
    # Answered by the gateway before the body is read: the body is never a request.
    "401 before a body holding a request": Shape(
        b"POST /private HTTP/1.1\r\n"
        + HOST
        + b"Content-Length: %d\r\n\r\n" % len(SMUGGLED)
        + SMUGGLED
        + AFTER,
        [GET_AFTER],
    ),
    "HEAD with a body, then a pipelined request": Shape(
        b"HEAD /ticket/public HTTP/1.1\r\n" + HOST + b"Content-Length: 5\r\n\r\nhello" + AFTER,
        [Framed("HEAD", "/ticket/public", b"hello"), GET_AFTER],
        head_requests=1,
    ),
    # Length and transfer coding together, or a coding that is not exactly chunked.
    "CL.TE": Shape(
        post(
            b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n" % (5 + len(SMUGGLED)),
            b"0\r\n\r\n" + SMUGGLED,
        ),
        [],
    ),
    "TE.CL": Shape(
        post(b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n", b"8\r\nSMUGGLED\r\n0\r\n\r\n"),
        [],
    ),
    "TE.CL with the length after": Shape(
        post(b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n", b"8\r\nSMUGGLED\r\n0\r\n\r\n"),
        [],
    ),
    "CL in the chunked trailer": Shape(
        post(b"Transfer-Encoding: chunked\r\n", b"5\r\nhello\r\n0\r\nContent-Length: 9\r\n\r\n")
        + AFTER,
        [POST_HELLO, GET_AFTER],
    ),
}
for _name, _coding in {
    "xchunked": b"Transfer-Encoding: xchunked\r\n",
    "chunked, identity": b"Transfer-Encoding: chunked, identity\r\n",
    "identity, chunked": b"Transfer-Encoding: identity, chunked\r\n",
    "chunked twice": b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
    "chunked then identity": b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
    "space before the colon": b"Transfer-Encoding : chunked\r\n",
    "vertical tab": b"Transfer-Encoding:\x0bchunked\r\n",
    "obs-fold": b"Transfer-Encoding: identity\r\n chunked\r\n",
    "obs-fold after chunked": b"Transfer-Encoding: chunked\r\n ,identity\r\n",
    "trailing comma": b"Transfer-Encoding: chunked,\r\n",
    "quoted": b'Transfer-Encoding: "chunked"\r\n',
    "underscore": b"Transfer_Encoding: chunked\r\n",
}.items():
    for _with_length in (False, True):
        _length = b"Content-Length: %d\r\n" % (len(CHUNKED_HELLO) + len(SMUGGLED))
        _key = f"TE {_name}" + (" with CL" if _with_length else "")
        _headers = _coding + (_length if _with_length else b"")
        SHAPES[_key] = Shape(post(_headers, CHUNKED_HELLO + SMUGGLED) + AFTER, [])
# Empty list elements are ignored (RFC 9110 5.6.1): read as chunked, the body is followed
# by two requests.
SHAPES["TE trailing comma"] = Shape(
    SHAPES["TE trailing comma"].raw, [POST_HELLO, Framed("GET", "/smuggled"), GET_AFTER]
)
# The underscore header is no Transfer-Encoding: without a length there is no body (and
# the chunked bytes are no request); with a length, the body is its length.
SHAPES["TE underscore"] = Shape(SHAPES["TE underscore"].raw, [Framed("POST", "/upload")])
SHAPES["TE underscore with CL"] = Shape(
    SHAPES["TE underscore with CL"].raw,
    [Framed("POST", "/upload", CHUNKED_HELLO + SMUGGLED), GET_AFTER],
)
for _name, _length in {
    "two equal lengths": b"Content-Length: 5\r\nContent-Length: 5\r\n",
    "two lengths": b"Content-Length: 5\r\nContent-Length: 6\r\n",
    "a list of lengths": b"Content-Length: 5, 5\r\n",
    "signed +": b"Content-Length: +5\r\n",
    "signed -": b"Content-Length: -5\r\n",
    "hex": b"Content-Length: 0x5\r\n",
    "decimal point": b"Content-Length: 5.0\r\n",
    "exponent": b"Content-Length: 5e0\r\n",
    "inner space": b"Content-Length: 5 5\r\n",
    "empty": b"Content-Length: \r\n",
    "overflow": b"Content-Length: 99999999999999999999999\r\n",
    "vertical tab": b"Content-Length:\x0b5\r\n",
}.items():
    SHAPES[f"CL {_name}"] = Shape(post(_length, b"hello" + SMUGGLED) + AFTER, [])
for _name, _length in {
    "padded": b"Content-Length:  5 \r\n",
    "tab padded": b"Content-Length:\t5\t\r\n",
    "leading zeros": b"Content-Length: 005\r\n",
}.items():  # valid lengths (OWS, 1*DIGIT): forwarded as 5 bytes, or refused
    SHAPES[f"CL {_name}"] = Shape(post(_length, b"hello") + AFTER, [POST_HELLO, GET_AFTER])
for _name, _size_line in {
    "0x5": b"0x5\r\n",
    "+5": b"+5\r\n",
    "-1": b"-1\r\n",
    "space after": b"5 \r\n",
    "space before": b" 5\r\n",
    "overflow": b"10000000000000005\r\n",
    "bare LF": b"5\n",
    "quoted extension with CRLF": b'5;a="x\r\n"\r\n',
    "empty": b"\r\n",
}.items():
    SHAPES[f"chunk size {_name}"] = Shape(
        post(b"Transfer-Encoding: chunked\r\n", _size_line + b"hello\r\n0\r\n\r\n" + SMUGGLED)
        + AFTER,
        [],
    )
SHAPES["chunk data longer than its size"] = Shape(
    post(b"Transfer-Encoding: chunked\r\n", b"3\r\nhello\r\n0\r\n\r\n" + SMUGGLED) + AFTER, []
)
SHAPES["chunk extension"] = Shape(
    post(b"Transfer-Encoding: chunked\r\n", b"5;ext=1\r\nhello\r\n0\r\n\r\n") + AFTER,
    [POST_HELLO, GET_AFTER],
)
SHAPES.update(
    {
        "bare LF line ends": Shape(
            b"POST /upload HTTP/1.1\nHost: gateway\nContent-Length: 5\n\nhello" + AFTER,
            [POST_HELLO, GET_AFTER],
        ),
        "bare CR in a header": Shape(
            b"GET /ticket/public?after HTTP/1.1\r\n" + HOST + b"X-A: a\rb\r\n" + CLOSE + b"\r\n",
            [GET_AFTER],
        ),
        "obs-fold": Shape(
            b"GET /ticket/public?after HTTP/1.1\r\n" + HOST + b"X-A: a\r\n b\r\n" + CLOSE + b"\r\n",
            [GET_AFTER],
        ),
        "HTTP/1.2": Shape(b"GET /ticket/public?after HTTP/1.2\r\n" + HOST + CLOSE + b"\r\n", []),
        "HTTP/2.0": Shape(b"GET /ticket/public?after HTTP/2.0\r\n" + HOST + CLOSE + b"\r\n", []),
        "HTTP/0.9": Shape(b"GET /ticket/public?after\r\n\r\n", []),
        "missing Host": Shape(b"GET /ticket/public?after HTTP/1.1\r\n" + CLOSE + b"\r\n", []),
        "two Host headers": Shape(
            b"GET /ticket/public?after HTTP/1.1\r\n" + HOST + b"Host: other\r\n" + CLOSE + b"\r\n",
            [],
        ),
        "absolute-form": Shape(
            b"GET http://other/ticket/public?after HTTP/1.1\r\n" + HOST + CLOSE + b"\r\n", []
        ),
        "asterisk-form": Shape(b"OPTIONS * HTTP/1.1\r\n" + HOST + CLOSE + b"\r\n", []),
        "authority-form": Shape(b"CONNECT other:443 HTTP/1.1\r\n" + HOST + CLOSE + b"\r\n", []),
        "HTTP/1.0 with a transfer coding, kept alive": Shape(
            post(
                b"Connection: keep-alive\r\nTransfer-Encoding: chunked\r\n",
                CHUNKED_HELLO,
                version=b"1.0",
                host=b"",
            )
            + AFTER,
            [POST_HELLO],  # RFC 9112 6.1: framing faulty, the connection closed after it
        ),
        "HTTP/1.0 with a transfer coding and a length": Shape(
            post(
                b"Transfer-Encoding: chunked\r\nContent-Length: %d\r\n" % len(CHUNKED_HELLO),
                CHUNKED_HELLO,
                version=b"1.0",
                host=b"",
            ),
            [],
        ),
        "upgrade, then a pipelined request": Shape(
            b"GET /ticket/public HTTP/1.1\r\n"
            + HOST
            + b"Connection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
            + AFTER,
            [Framed("GET", "/ticket/public"), GET_AFTER],
        ),
        # The parser refuses the whole segment (400): allowed, only no request after.
        "Connection: close, then a pipelined request": Shape(
            post(CLOSE + b"Content-Length: 5\r\n", b"hello") + AFTER, [POST_HELLO]
        ),
        "empty lines before the request line": Shape(b"\r\n\r\n" + AFTER, [GET_AFTER]),
        "100-continue, admitted": Shape(
            post(b"Expect: 100-continue\r\nContent-Length: 5\r\n", b"hello") + AFTER,
            [POST_HELLO, GET_AFTER],
            True,
        ),
        "100-continue refused, its body sent anyway and holding a request": Shape(
            b"POST /private HTTP/1.1\r\n"
            + HOST
            + b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(SMUGGLED)
            + SMUGGLED
            + AFTER,
            [GET_AFTER],
        ),
        "upper-case hex chunk size": Shape(
            post(b"Transfer-Encoding: chunked\r\n", b"A\r\nhellohello\r\n0\r\n\r\n") + AFTER,
            [Framed("POST", "/upload", b"hellohello"), GET_AFTER],
            True,
        ),
        "chunk size with leading zeros": Shape(
            post(b"Transfer-Encoding: chunked\r\n", b"0005\r\nhello\r\n0\r\n\r\n") + AFTER,
            [POST_HELLO, GET_AFTER],
        ),
        "a lower-case method": Shape(
            b"get /ticket/public?after HTTP/1.1\r\n" + HOST + CLOSE + b"\r\n",
            [Framed("get", "/ticket/public?after")],
        ),
    }
)


@pytest.mark.parametrize("name", list(SHAPES))
def test_a_known_smuggling_shape_reaches_the_upstream_only_as_framed(
    gateway_address: tuple[str, int], recorder: RecordingServer, name: str
) -> None:
    shape = SHAPES[name]
    outcome = exchange(gateway_address, recorder, shape.raw, shape.head_requests)
    check_outcome(outcome, shape.raw, shape.framed, forwarded=shape.forwarded)
    if not shape.framed:
        assert outcome.received == []
        assert outcome.closed, f"the connection stayed open after {name}"


def test_a_body_sent_after_an_upgrade_request_stays_a_body(
    gateway_address: tuple[str, int], recorder: RecordingServer
) -> None:
    """An upgrade the gateway does not take (h2c, as `curl --http2` asks for), then a
    request whose body, sent a moment after its head, looks like a request."""
    inner = b"GET /media/smuggled HTTP/1.1\r\n" + HOST + CLOSE + b"\r\n"
    upgrade = (
        b"GET /ticket/public HTTP/1.1\r\n" + HOST + b"Connection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
    )
    upload = (
        b"POST /upload HTTP/1.1\r\n" + HOST + CLOSE + b"Content-Length: %d\r\n\r\n" % len(inner)
    )
    outcome = exchange(gateway_address, recorder, upgrade + upload, then=inner)
    framed = [Framed("GET", "/ticket/public"), Framed("POST", "/upload", inner)]
    check_outcome(outcome, upgrade + upload + inner, framed, forwarded=False)


# --- framing: lengths and codings combined ---------------------------------------------------

LENGTHS = ["5", " 5", "5 ", "05", "+5", "-5", "0x5", "5.0", "5,5", "", "4", "6", "0"]
CODINGS = ["chunked", "CHUNKED", " chunked", "chunked ", "xchunked", "chunked, identity"]
CODINGS += ["identity, chunked", "identity", "chunked,", ",chunked", "gzip, chunked"]
CODING_NAMES = ["Transfer-Encoding", "transfer-encoding", "TRANSFER-ENCODING"]
DIGITS = re.compile(r"[ \t]*[0-9]+[ \t]*")


@st.composite
def framings(draw: st.DrawFn) -> tuple[list[str], list[tuple[str, str]], bytes]:
    """Content-Length and Transfer-Encoding headers (none, one, two, or both kinds) and
    a payload that is chunked or not."""
    kind = draw(st.sampled_from(["length", "coding", "both", "two", "none"]))
    length_count = {"length": 1, "coding": 0, "both": 1, "two": 2, "none": 0}[kind]
    coding_count = {"length": 0, "coding": 1, "both": 1, "two": 2, "none": 0}[kind]
    if kind == "two" and draw(st.booleans()):
        length_count, coding_count = 0, 2
    elif kind == "two":
        length_count, coding_count = 2, 0
    # The valid values half of the time, so well-formed requests are sent too.
    coding = st.tuples(
        st.sampled_from(CODING_NAMES), st.one_of(st.just("chunked"), st.sampled_from(CODINGS))
    )
    length = st.one_of(st.just("5"), st.sampled_from(LENGTHS))
    lengths = draw(st.lists(length, min_size=length_count, max_size=length_count))
    codings = draw(st.lists(coding, min_size=coding_count, max_size=coding_count))
    chunked = draw(st.booleans()) if kind in ("both", "none") else bool(coding_count)
    return lengths, codings, CHUNKED_HELLO if chunked else b"hello"


def strict_reading(
    lengths: list[str], codings: list[tuple[str, str]], payload: bytes
) -> tuple[list[Framed], bool]:
    """What a strict reader (the gateway's contract) makes of a POST /upload with these
    headers and payload, followed by the pipelined GET: the requests that may reach the
    upstream, and whether all of them must."""
    if (codings and lengths) or len(lengths) > 1:
        return [], False
    if codings:
        tokens = [t.strip().lower() for _, value in codings for t in value.split(",")]
        if [t for t in tokens if t] != ["chunked"] or payload != CHUNKED_HELLO:
            return [], False
        canonical = len(codings) == 1 and codings[0][1].strip().lower() == "chunked"
        return [POST_HELLO, GET_AFTER], canonical
    if lengths:
        if not DIGITS.fullmatch(lengths[0]):
            return [], False
        size = int(lengths[0])
        first = Framed("POST", "/upload", payload[:size])
        whole = size == len(payload)
        return ([first, GET_AFTER] if whole else [first]), whole
    return [Framed("POST", "/upload")], False


@settings(max_examples=150, deadline=None)
@given(framing=framings())
def test_lengths_and_codings_frame_the_body_as_a_strict_reader_would(
    gateway_address: tuple[str, int],
    recorder: RecordingServer,
    framing: tuple[list[str], list[tuple[str, str]], bytes],
) -> None:
    lengths, codings, payload = framing
    headers = [f"Content-Length: {value}" for value in lengths]
    headers += [f"{name}: {value}" for name, value in codings]
    raw = post("".join(f"{h}\r\n" for h in headers).encode(), payload) + AFTER
    framed, forwarded = strict_reading(lengths, codings, payload)
    outcome = exchange(gateway_address, recorder, raw)
    check_outcome(outcome, raw, framed, forwarded=forwarded)
