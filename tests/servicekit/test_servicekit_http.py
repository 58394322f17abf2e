"""The internal HTTP client: request id propagated, timeouts set, service token attached."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests

from servicekit.http import DEFAULT_TIMEOUT, ServiceClient, ServiceTokenSource
from servicekit.testing import serve_wsgi
from tests.servicekit.servicekit_harness import SERVICE_SECRET, TokenServer, echo_app


@pytest.fixture(scope="module")
def echo_url() -> Iterator[str]:
    with serve_wsgi(echo_app) as url:
        yield url


@pytest.fixture
def token_server(request: pytest.FixtureRequest) -> Iterator[tuple[TokenServer, str]]:
    server = TokenServer(expires_in=getattr(request, "param", 3600))
    with serve_wsgi(server) as url:
        yield server, url


def test_request_id_of_current_request_is_sent(make_app, echo_url: str) -> None:
    client = make_app(ECHO_URL=echo_url).test_client()
    response = client.get("/relay", headers={"X-Request-ID": "relay-123"})
    assert response.status_code == 200
    assert response.get_json()["headers"]["x-request-id"] == "relay-123"


def test_generated_request_id_is_sent(make_app, echo_url: str) -> None:
    client = make_app(ECHO_URL=echo_url).test_client()
    response = client.get("/relay")
    assert response.get_json()["headers"]["x-request-id"] == response.headers["X-Request-ID"]


def test_no_request_id_outside_a_request(echo_url: str) -> None:
    response = ServiceClient("echo", base_url=echo_url).get("/echo")
    assert response.status_code == 200
    assert "x-request-id" not in response.json()["headers"]
    assert "authorization" not in response.json()["headers"]


def test_read_timeout_is_always_set(echo_url: str) -> None:
    client = ServiceClient("echo", base_url=echo_url, timeout=(1.0, 0.05))
    with pytest.raises(requests.Timeout):
        client.get("/slow/0.5")
    assert client.get("/slow/0.2", timeout=(1.0, 5.0)).status_code == 200


def test_default_timeouts() -> None:
    assert ServiceClient("echo", base_url="http://127.0.0.1:1").timeout == DEFAULT_TIMEOUT
    assert all(0 < seconds <= 30 for seconds in DEFAULT_TIMEOUT)


def test_base_url_from_environment(monkeypatch: pytest.MonkeyPatch, echo_url: str) -> None:
    monkeypatch.setenv("MEDIA_SERVICE_URL", echo_url + "/")
    response = ServiceClient("media").get("/files/1")
    assert response.json()["path"] == "/files/1"


def test_service_token_is_fetched_once_and_cached(token_server: tuple[TokenServer, str]) -> None:
    server, url = token_server
    source = ServiceTokenSource("events", SERVICE_SECRET, auth_url=url + "/")
    tokens = {source.token() for _ in range(3)}
    assert tokens == set(server.issued)
    assert len(server.issued) == 1
    assert server.issued[0].startswith("token-events-")


@pytest.mark.parametrize("token_server", [29], indirect=True)
def test_service_token_near_expiry_is_refetched(token_server: tuple[TokenServer, str]) -> None:
    server, url = token_server
    source = ServiceTokenSource("events", SERVICE_SECRET, auth_url=url)
    first, second = source.token(), source.token()
    assert first != second
    assert server.issued == [first, second]


@pytest.mark.parametrize("token_server", [31], indirect=True)
def test_service_token_refetched_once_it_nears_expiry(
    token_server: tuple[TokenServer, str],
) -> None:
    server, url = token_server
    source = ServiceTokenSource("events", SERVICE_SECRET, auth_url=url)
    first = source.token()
    assert source.token() == first
    time.sleep(1.1)
    assert source.token() != first
    assert len(server.issued) == 2


def test_wrong_service_secret_raises(token_server: tuple[TokenServer, str]) -> None:
    server, url = token_server
    source = ServiceTokenSource("events", "wrong-secret", auth_url=url)
    with pytest.raises(requests.HTTPError) as raised:
        source.token()
    assert raised.value.response.status_code == 403
    assert server.issued == []


def test_client_attaches_service_token(
    token_server: tuple[TokenServer, str], echo_url: str
) -> None:
    server, url = token_server
    tokens = ServiceTokenSource("events", SERVICE_SECRET, auth_url=url)
    client = ServiceClient("echo", base_url=echo_url, tokens=tokens)
    seen = [client.get("/echo").json()["headers"]["authorization"] for _ in range(2)]
    assert seen == [f"Bearer {server.issued[0]}"] * 2
    assert len(server.issued) == 1
    explicit = client.get("/echo", headers={"Authorization": "Bearer caller"}).json()
    assert explicit["headers"]["authorization"] == "Bearer caller"
