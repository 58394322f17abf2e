"""Defects the gateway once had, each pinned by the behaviour now required of it: the
request target, malformed answers from a service, retries, credential bodies and routes,
malformed requests from a client, the metrics listener and the pool's connection age."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest
import requests

from gateway.app import Gateway
from gateway.guard import RateLimitPolicy
from gateway.ratelimit import parse_limits
from servicekit.config import UPSTREAMS
from tests.gateway.gateway_harness import EchoUpstream, GatewayClient
from tests.gateway.gunicorn_harness import ServedGateway, gunicorn_gateway
from tests.gateway.scripted_upstream import (
    Received,
    Reply,
    ScriptedUpstream,
    answer,
    by_path,
    scripted_upstream,
)

GatewayFactory = Callable[..., Gateway]
Bearer = Callable[..., dict[str, str]]


class Exchange:
    """One request sent with http.client, its target exactly as given (no client-side
    normalisation of escapes), from a chosen loopback address."""

    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def json(self) -> Any:
        assert self.headers.get("Content-Type") == "application/json", self.body[:200]
        return json.loads(self.body)


def send(
    base_url: str,
    method: str,
    target: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    source: str = "127.0.0.1",
) -> Exchange:
    host, port = base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5, source_address=(source, 0))
    try:
        connection.request(method, target, body=body, headers=headers or {})
        response = connection.getresponse()
        return Exchange(response.status, response.headers, response.read())
    finally:
        connection.close()


def limited(make_gateway: GatewayFactory, url: str | None = None, **limits: str) -> GatewayClient:
    policy = RateLimitPolicy(**{name: parse_limits(text) for name, text in limits.items()})
    upstreams = {"upstreams": dict.fromkeys(UPSTREAMS, url)} if url else {}
    return GatewayClient(make_gateway(rate_limits=policy, **upstreams))


def assert_gateway_error(
    exchange: Exchange, status: int, code: str | None = None, why: str = ""
) -> None:
    """The gateway's own JSON error: `status`, and `code` when given."""
    assert exchange.status == status, f"{why}: {exchange.status} {exchange.body[:300]!r}"
    payload = exchange.json
    assert set(payload) == {"error", "code"}, payload
    if code is not None:
        assert payload["code"] == code, payload


@pytest.fixture
def upstream() -> Iterator[ScriptedUpstream]:
    """A scripted upstream answering every request with an empty JSON object."""
    with scripted_upstream(lambda _: answer()) as served:
        yield served


def via(make_gateway: GatewayFactory, upstream: ScriptedUpstream, **config: Any) -> GatewayClient:
    return GatewayClient(make_gateway(upstreams=dict.fromkeys(UPSTREAMS, upstream.url), **config))


# 1. The request target: decoded once, and the service receives what the gateway matched.


@pytest.mark.parametrize(
    ("target", "authenticated"),
    [
        ("/users/usera%252Fauth_modes", True),  # `%25` decoded twice would make a '/'
        ("/events/1%252Fregistrations", False),  # would reach a staff-only route anonymously
        ("/users/usera%2Fauth_modes", True),
        ("/users/usera%2fauth_modes", True),
        ("/users/a%5Cb", True),
        ("/users/a%5cb", True),
        ("/users/100%25", True),
    ],
)
def test_an_encoded_separator_or_percent_in_a_segment_is_refused(
    make_gateway: GatewayFactory,
    upstream: ScriptedUpstream,
    bearer: Bearer,
    target: str,
    authenticated: bool,
) -> None:
    client = via(make_gateway, upstream)
    headers = bearer(role="staff") if authenticated else {}
    refused = send(client.url, "GET", target, headers=headers)
    assert_gateway_error(refused, 400, "bad_request_target")
    assert upstream.targets == [], f"{target} was forwarded as {upstream.targets}"


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("GET", "/users/%61lice"),
        ("GET", "/users/alice/auth_modes"),
        ("PUT", "/events/category/caf%C3%A9"),
        ("PUT", "/events/category/two%20words"),
        ("GET", "/media/photos/%E6%97%A5%E6%9C%AC.png?name=a%2Fb%25c&x=%5C"),
        ("GET", "/events/category/"),
    ],
)
def test_the_service_receives_the_target_the_gateway_matched_byte_for_byte(
    make_gateway: GatewayFactory,
    upstream: ScriptedUpstream,
    bearer: Bearer,
    method: str,
    target: str,
) -> None:
    client = via(make_gateway, upstream)
    response = send(client.url, method, target, headers=bearer(role="staff"))
    assert response.status == 200, response.body
    assert upstream.targets == [target]


@pytest.mark.parametrize("encoded", ["%61lice", "%41LICE", "alic%65", "%61%6c%69%63%65"])
def test_the_login_limit_per_username_holds_across_encodings_of_the_name(
    make_gateway: GatewayFactory, upstream: ScriptedUpstream, encoded: str
) -> None:
    client = limited(make_gateway, upstream.url, login_user="1/minute")
    first = send(client.url, "POST", "/users/alice/password/reset", body=b"{}", source="127.0.0.2")
    assert first.status == 200, first.body
    again = send(
        client.url, "POST", f"/users/{encoded}/password/reset", body=b"{}", source="127.0.0.3"
    )
    assert again.status == 429, f"/users/{encoded}/ was counted as another user: {again.body!r}"
    assert upstream.targets == ["/users/alice/password/reset"]


# 2. Malformed answers from a service: 502, the connection dropped, the breaker told.


def chunked_with_size(size: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%b\r\nhello\r\n0\r\n\r\n" % size


def with_status(status: str) -> bytes:
    return f"HTTP/1.1 {status} OK\r\nContent-Length: 2\r\n\r\n{{}}".encode()


def with_length(length: str) -> bytes:
    return f"HTTP/1.1 200 OK\r\nContent-Length: {length}\r\n\r\n{{}}".encode()


ARABIC_INDIC_TWO, FULLWIDTH_TWO, FULLWIDTH_ZERO = "\u0662", "\uff12", "\uff10"
MALFORMED_ANSWERS = {
    "chunk size 0x5": chunked_with_size(b"0x5"),
    "chunk size +5": chunked_with_size(b"+5"),
    "chunk size -1": chunked_with_size(b"-1"),
    "Transfer-Encoding and Content-Length": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "101 to a request without Upgrade": b"HTTP/1.1 101 Switching Protocols\r\n"
    b"Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    "Arabic-Indic digit in the status": with_status(f"{ARABIC_INDIC_TWO}00"),
    "fullwidth digits in the status": with_status(FULLWIDTH_TWO + FULLWIDTH_ZERO * 2),
    "Arabic-Indic digit in Content-Length": with_length(ARABIC_INDIC_TWO),
    "fullwidth digit in Content-Length": with_length(FULLWIDTH_TWO),
}
COOLDOWN = 0.2


@pytest.mark.parametrize("malformed", list(MALFORMED_ANSWERS), ids=list(MALFORMED_ANSWERS))
def test_a_malformed_answer_is_502_drops_its_connection_and_fails_the_breaker(
    make_gateway: GatewayFactory, malformed: str
) -> None:
    script = by_path({"/media/bad": Reply(MALFORMED_ANSWERS[malformed]), "/media/good": answer()})
    with scripted_upstream(script) as upstream:
        client = via(make_gateway, upstream, breaker_failures=1, breaker_cooldown=COOLDOWN)
        bad = send(client.url, "GET", "/media/bad")
        assert_gateway_error(bad, 502, "bad_gateway")
        assert upstream.wait_closed_by_client(0), "the connection of a malformed answer was kept"
        opened = send(client.url, "GET", "/media/good")
        assert_gateway_error(opened, 503, "upstream_unavailable", "the failure was not counted")

        time.sleep(COOLDOWN + 0.05)
        probe = send(client.url, "GET", "/media/bad")
        assert_gateway_error(probe, 502, "bad_gateway")
        assert upstream.wait_closed_by_client(1), "the probe's connection was kept"
        reopened = send(client.url, "GET", "/media/good")
        why = "the failed probe did not open the breaker again"
        assert_gateway_error(reopened, 503, "upstream_unavailable", why)

        time.sleep(COOLDOWN + 0.05)
        recovered = send(client.url, "GET", "/media/good")
        assert recovered.status == 200, (
            f"the breaker still refuses after the failed probe's cool-down: {recovered.body!r}"
        )
        assert [r.connection for r in upstream.requests] == [0, 1, 2]


# 3. Retries: only a reused pooled connection found dead before any byte of the answer,
#    only an idempotent method, and only once.


def dies_on_reuse(then: Callable[[Received], Reply]) -> Callable[[Received], Reply]:
    """The first request on the first connection is answered and the connection kept; the
    second on it is read and the connection closed without a byte; `then` answers the
    requests on later connections."""
    seen_on_first: list[Received] = []

    def script(request: Received) -> Reply:
        if request.connection != 0:
            return then(request)
        seen_on_first.append(request)
        return answer() if len(seen_on_first) == 1 else Reply(b"", close=True)

    return script


@pytest.mark.parametrize("method", ["DELETE", "GET", "PUT"])
def test_a_new_connection_that_fails_is_not_retried(
    make_gateway: GatewayFactory, bearer: Bearer, method: str
) -> None:
    with scripted_upstream(lambda _: Reply(b"", close=True)) as upstream:
        client = via(make_gateway, upstream)
        failed = send(client.url, method, "/images/1", headers=bearer())
        assert_gateway_error(failed, 502, "upstream_unavailable")
        assert (upstream.connections, len(upstream.requests)) == (1, 1), (
            f"{method} on a new connection was sent {len(upstream.requests)} times "
            f"on {upstream.connections} connections"
        )


@pytest.mark.parametrize("method", ["DELETE", "GET", "PUT"])
def test_an_idempotent_request_on_a_dead_pooled_connection_is_sent_once_more(
    make_gateway: GatewayFactory, bearer: Bearer, method: str
) -> None:
    with scripted_upstream(dies_on_reuse(lambda _: answer(b'{"retried": true}'))) as upstream:
        client = via(make_gateway, upstream)
        assert send(client.url, "GET", "/images/1", headers=bearer()).status == 200
        retried = send(client.url, method, "/images/1", headers=bearer())
        assert retried.status == 200, retried.body
        assert retried.json == {"retried": True}
        sent = [(r.method, r.connection) for r in upstream.requests]
        assert sent == [("GET", 0), (method, 0), (method, 1)]


def test_a_post_on_a_dead_pooled_connection_is_not_retried(
    make_gateway: GatewayFactory, bearer: Bearer
) -> None:
    with scripted_upstream(dies_on_reuse(lambda _: answer())) as upstream:
        client = via(make_gateway, upstream)
        assert send(client.url, "GET", "/images/1", headers=bearer()).status == 200
        failed = send(client.url, "POST", "/images", headers=bearer(), body=b"image")
        assert_gateway_error(failed, 502, "upstream_unavailable")
        assert [(r.method, r.connection) for r in upstream.requests] == [("GET", 0), ("POST", 0)]


def test_a_connection_that_dies_after_part_of_the_answer_is_not_retried(
    make_gateway: GatewayFactory, bearer: Bearer
) -> None:
    answered: list[Received] = []

    def script(request: Received) -> Reply:
        answered.append(request)
        if len(answered) == 1:
            return answer()
        return Reply(b"HTTP/1.1 200 OK\r\nContent-Le", close=True)

    with scripted_upstream(script) as upstream:
        client = via(make_gateway, upstream)
        assert send(client.url, "GET", "/images/1", headers=bearer()).status == 200
        failed = send(client.url, "DELETE", "/images/1", headers=bearer())
        assert failed.status == 502, failed.body
        assert failed.json["code"] in ("bad_gateway", "upstream_unavailable")
        sent = [(r.method, r.connection) for r in upstream.requests]
        assert sent == [("GET", 0), ("DELETE", 0)], f"sent again after part of an answer: {sent}"


def test_the_second_attempt_on_a_new_connection_is_the_last(
    make_gateway: GatewayFactory, bearer: Bearer
) -> None:
    with scripted_upstream(dies_on_reuse(lambda _: Reply(b"", close=True))) as upstream:
        client = via(make_gateway, upstream)
        assert send(client.url, "GET", "/images/1", headers=bearer()).status == 200
        failed = send(client.url, "DELETE", "/images/1", headers=bearer())
        assert_gateway_error(failed, 502, "upstream_unavailable")
        sent = [(r.method, r.connection) for r in upstream.requests]
        assert sent == [("GET", 0), ("DELETE", 0), ("DELETE", 1)]
        assert upstream.connections == 2


# 4. A credential body nested deeper than the parser allows.

DEPTH = 10_000


@pytest.mark.parametrize(
    "body",
    [
        b"[" * DEPTH + b"]" * DEPTH,
        b'{"a":' * DEPTH + b"1" + b"}" * DEPTH,
        b'{"username": ' + b"[" * DEPTH + b"]" * DEPTH + b"}",
    ],
    ids=["arrays", "objects", "under-username"],
)
def test_a_deeply_nested_json_credential_body_is_a_400_from_the_gateway(
    make_gateway: GatewayFactory, upstream: ScriptedUpstream, body: bytes
) -> None:
    client = limited(make_gateway, upstream.url, login_user="5/minute")
    refused = send(
        client.url,
        "POST",
        "/auth/token/",
        body=body,
        headers={"Content-Type": "application/json"},
    )
    assert_gateway_error(refused, 400, "bad_request")
    assert upstream.targets == [], "a body the gateway could not read was forwarded"


# 5. Account creation hashes a password: the login limit per address applies.


@pytest.mark.parametrize("path", ["/users/", "/register/"])
def test_account_creation_routes_have_the_login_address_limit(
    make_gateway: GatewayFactory, path: str
) -> None:
    client = limited(make_gateway, address="100/minute", login_address="1/minute")
    first = client.post(path, json={"username": "new-1", "password": "pw"})
    assert first.status_code == 200
    second = client.post(path, json={"username": "new-2", "password": "pw"})
    assert second.status_code == 429, (
        f"POST {path} (a password hash at auth_service) escaped the login limit per address"
    )
    assert second.headers["X-RateLimit-Limit"] == "1"


# 6. The username of a multipart body counts against the same login limit.

BOUNDARY = "red-flags-boundary"


def multipart(fields: dict[str, str]) -> tuple[bytes, str]:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    ]
    body = ("".join(parts) + f"--{BOUNDARY}--\r\n").encode()
    return body, f"multipart/form-data; boundary={BOUNDARY}"


def credential_body(kind: str, username: str) -> tuple[bytes, str]:
    fields = {"username": username, "password": "guess"}
    if kind == "json":
        return json.dumps(fields).encode(), "application/json"
    if kind == "form":
        return "&".join(f"{k}={v}" for k, v in fields.items()).encode(), (
            "application/x-www-form-urlencoded"
        )
    return multipart(fields)


@pytest.mark.parametrize(
    ("first", "second"), [("json", "multipart"), ("multipart", "form"), ("form", "multipart")]
)
def test_the_login_limit_per_username_reads_every_body_encoding(
    make_gateway: GatewayFactory, upstream: ScriptedUpstream, first: str, second: str
) -> None:
    client = limited(make_gateway, upstream.url, login_user="1/minute")
    for kind, source, expected in ((first, "127.0.0.2", 200), (second, "127.0.0.3", 429)):
        body, content_type = credential_body(kind, "Carol")
        response = send(
            client.url,
            "POST",
            "/api-token-auth/",
            body=body,
            headers={"Content-Type": content_type},
            source=source,
        )
        assert response.status == expected, f"{kind} body: {response.status} {response.body!r}"


# 7. Malformed requests to the real gateway process: JSON, the connection closed, one line
#    in its log.

MALFORMED_REQUESTS = {
    "bad request line": (b"GET /events/category HTTP/1.1 extra\r\nHost: gw\r\n\r\n", {400}),
    "bad header": (b"GET /events/category HTTP/1.1\r\nHost: gw\r\nBad Header: x\r\n\r\n", {400}),
    "HTTP/1.2": (b"GET /events/category HTTP/1.2\r\nHost: gw\r\n\r\n", {400, 505}),
    "no Host on HTTP/1.1": (b"GET /events/category HTTP/1.1\r\n\r\n", {400}),
    "gzip, chunked": (
        b"POST /auth/token/ HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
        b"0\r\n\r\n",
        {501},
    ),
    "Content-Length and chunked": (
        b"POST /auth/token/ HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        {400},
    ),
}


class ProcessUnderTest:
    def __init__(self, served: ServedGateway, log: Path) -> None:
        self.served = served
        self.log = log

    def log_lines(self) -> list[str]:
        return [line for line in self.log.read_text(errors="replace").splitlines() if line]


@pytest.fixture(scope="module")
def gateway_process(
    echo: EchoUpstream, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProcessUnderTest]:
    log = tmp_path_factory.mktemp("gateway-process") / "gateway.log"
    settings = {"GATEWAY_HEAD_TIMEOUT": "2", "GATEWAY_BODY_GRACE": "2"}
    with gunicorn_gateway(echo.url, redis_url, log, settings) as served:
        yield ProcessUnderTest(served, log)


def exchange_until_closed(address: tuple[str, int], data: bytes) -> tuple[bytes, bool]:
    """Send raw bytes; return all that came back, and whether the server closed."""
    with socket.create_connection(address, timeout=3) as sock:
        sock.sendall(data)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except TimeoutError:
            return received, False
        except ConnectionResetError:
            pass
        with suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        return received, True


def new_lines(process: ProcessUnderTest, before: int) -> list[str]:
    """The log lines written since there were `before`, once they stop coming."""
    deadline = time.monotonic() + 2
    while len(process.log_lines()) == before and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.1)  # any further lines of the same request
    return process.log_lines()[before:]


@pytest.mark.parametrize("case", list(MALFORMED_REQUESTS), ids=list(MALFORMED_REQUESTS))
def test_a_malformed_request_gets_json_a_closed_connection_and_one_log_line(
    gateway_process: ProcessUnderTest, case: str
) -> None:
    data, statuses = MALFORMED_REQUESTS[case]
    before = len(gateway_process.log_lines())
    received, closed = exchange_until_closed(gateway_process.served.address, data)
    assert b"<html" not in received.lower(), received
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split()[1])
    assert status in statuses, received
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    assert headers.get("content-type") == "application/json", received
    payload = json.loads(body)
    assert isinstance(payload, dict) and {"error", "code"} <= set(payload), payload
    assert closed, "the connection stayed open after a malformed request"
    lines = new_lines(gateway_process, before)
    assert len(lines) == 1, f"{len(lines)} log lines for one malformed request:\n" + "\n".join(
        lines[:10]
    )
    assert "Logging error" not in lines[0]


# 8. /metrics on the internal listener only.


def test_metrics_are_not_served_on_the_public_port(client: GatewayClient) -> None:
    for path in ("/metrics", "/metrics/"):
        public = client.get(path)
        assert public.status_code == 404, f"{path} answered {public.status_code} on the public port"
        assert public.json == {"error": "no such route", "code": "not_found"}
    internal = requests.get(f"{client.metrics_url}/metrics", timeout=5)
    assert internal.status_code == 200
    assert "gateway_" in internal.text


def test_the_gateway_process_serves_metrics_on_its_internal_listener_only(
    gateway_process: ProcessUnderTest,
) -> None:
    served = gateway_process.served
    public = requests.get(f"{served.url}/metrics", timeout=5)
    assert public.status_code == 404, public.text[:300]
    assert public.headers["Content-Type"] == "application/json"
    assert public.json()["code"] == "not_found"
    internal = requests.get(f"{served.metrics_url}/metrics", timeout=5)
    assert internal.status_code == 200
    assert "gateway_" in internal.text


# 9. Pooled upstream connections are given up after GATEWAY_POOL_MAX_AGE.


def test_a_pooled_connection_older_than_the_maximum_age_is_not_reused(
    make_gateway: GatewayFactory, upstream: ScriptedUpstream
) -> None:
    client = via(make_gateway, upstream, pool_max_age=0.3)
    for _ in range(2):
        assert send(client.url, "GET", "/media/a").status == 200
    time.sleep(0.4)
    for _ in range(2):
        assert send(client.url, "GET", "/media/a").status == 200
    assert [r.connection for r in upstream.requests] == [0, 0, 1, 1]
