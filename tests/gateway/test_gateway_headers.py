"""What the gateway forwards: identity headers removed, X-Forwarded-*, hop-by-hop headers
stripped both ways, and the request id propagated or generated."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from gateway.app import Gateway
from servicekit.config import UPSTREAMS
from servicekit.testing import serve_wsgi
from tests.gateway.gateway_harness import HOP_RESPONSE_HEADERS, GatewayClient

Bearer = Callable[..., dict[str, str]]
GENERATED_ID = re.compile(r"^[0-9a-f]{32}$")
SPOOFED = {
    "X-User-Id": "1",
    "X-Auth-User": "admin",
    "X-Identity": "superuser",
    "X-Remote-User": "admin",
    "X-Service-Secret": "guessed",
    "Remote-User": "admin",
    "X-Authenticated-User": "admin",
    "X-Forwarded-User": "admin",
}


@pytest.mark.parametrize("path", ["/sample/gets", "/events/category"])
def test_spoofed_identity_headers_never_reach_the_upstream(
    client: GatewayClient, bearer: Bearer, path: str
) -> None:
    response = client.get(path, headers={**SPOOFED, **bearer(), "X-Custom": "kept"})
    assert response.status_code == 200
    received = response.json["headers"]
    assert set(received) & {name.lower() for name in SPOOFED} == set()
    assert received["x-custom"] == "kept"
    assert received["authorization"].startswith("Bearer ")


def test_forwarded_headers_are_set_and_appended(client: GatewayClient) -> None:
    response = client.get(
        "/events/tags",
        headers={
            "X-Forwarded-For": "1.2.3.4",
            "X-Forwarded-Proto": "gopher",
            "X-Forwarded-Host": "evil.example",
            "Host": "api.example.org",
        },
        environ_base={"REMOTE_ADDR": "127.0.0.9"},
    )
    assert response.status_code == 200
    received = response.json["headers"]
    assert received["x-forwarded-for"] == "1.2.3.4, 127.0.0.9"
    assert received["x-forwarded-proto"] == "http"  # the client's claim is not believed
    assert received["x-forwarded-host"] == "api.example.org"


def test_a_trusted_proxy_says_which_scheme_the_client_used(
    make_gateway: Callable[..., Gateway],
) -> None:
    client = GatewayClient(make_gateway(trusted_proxies=1))
    for claimed, forwarded in (("https", "https"), ("gopher", "http")):
        response = client.get(
            "/events/tags", headers={"X-Forwarded-For": "1.2.3.4", "X-Forwarded-Proto": claimed}
        )
        assert response.json["headers"]["x-forwarded-proto"] == forwarded


def test_forwarded_for_without_client_header_is_the_peer(client: GatewayClient) -> None:
    response = client.get("/events/tags", environ_base={"REMOTE_ADDR": "127.0.0.9"})
    received = response.json["headers"]
    assert received["x-forwarded-for"] == "127.0.0.9"
    assert received["x-forwarded-proto"] == "http"


def test_hop_by_hop_request_headers_are_not_forwarded(
    client: GatewayClient, bearer: Bearer
) -> None:
    response = client.get(
        "/sample/gets",
        headers={
            **bearer(),
            "Connection": "keep-alive, X-Private-Hop",
            "Keep-Alive": "timeout=5",
            "TE": "trailers",
            "Upgrade": "websocket",
            "Proxy-Authorization": "Basic dXNlcjpwYXNz",
            "X-Private-Hop": "secret",
            "X-End-To-End": "kept",
        },
    )
    assert response.status_code == 200
    received = response.json["headers"]
    dropped = {"connection", "keep-alive", "te", "upgrade", "proxy-authorization", "x-private-hop"}
    assert set(received) & dropped == set()
    assert received["x-end-to-end"] == "kept"
    assert received["authorization"].startswith("Bearer ")


def test_hop_by_hop_response_headers_are_not_returned(client: GatewayClient) -> None:
    response = client.get("/media/hop")
    assert response.status_code == 200
    assert response.json["path"] == "/media/hop"
    returned = {name.lower() for name in response.headers.keys()}  # noqa: SIM118
    sent = {name.lower() for name, _ in HOP_RESPONSE_HEADERS}
    assert returned & sent == {"x-end-to-end"}
    assert "connection" not in returned
    assert "transfer-encoding" not in returned
    assert response.headers["X-End-To-End"] == "kept"


def test_client_request_id_is_propagated(client: GatewayClient) -> None:
    response = client.get("/events/tags", headers={"X-Request-ID": "abc-123"})
    assert response.status_code == 200
    assert response.json["headers"]["x-request-id"] == "abc-123"
    assert response.headers["X-Request-ID"] == "abc-123"
    assert response.headers.getlist("X-Request-ID") == ["abc-123"]


@pytest.mark.parametrize(
    "sent",
    [None, "", "has spaces in it", "x" * 300, "semi;colon"],
    ids=["missing", "empty", "spaces", "300-chars", "semicolon"],
)
def test_missing_or_unsafe_request_id_is_replaced(client: GatewayClient, sent: str | None) -> None:
    headers = {} if sent is None else {"X-Request-ID": sent}
    response = client.get("/events/tags", headers=headers)
    assert response.status_code == 200
    generated = response.headers["X-Request-ID"]
    assert GENERATED_ID.match(generated)
    assert response.json["headers"]["x-request-id"] == generated
    assert response.headers.getlist("X-Request-ID") == [generated]


def cookie_setter(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """An upstream that sets a cookie and says which cookie it was sent."""
    body = json.dumps({"cookie": environ.get("HTTP_COOKIE")}).encode()
    start_response(
        "200 OK",
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("Set-Cookie", "session=first-client; Path=/"),
        ],
    )
    return [body]


def test_a_cookie_one_client_was_given_is_never_sent_for_another(
    make_gateway: Callable[..., Gateway],
) -> None:
    with serve_wsgi(cookie_setter) as url:
        named = url.replace("127.0.0.1", "localhost")  # cookies are kept for host names
        client = GatewayClient(make_gateway(upstreams=dict.fromkeys(UPSTREAMS, named)))
        first = client.get("/events/tags")
        assert first.headers["Set-Cookie"] == "session=first-client; Path=/"
        other = client.get("/events/tags", environ_base={"REMOTE_ADDR": "127.0.0.2"})
    assert other.json == {"cookie": None}
