"""Routing: unknown routes, methods, trailing slashes, query strings, the route table,
and the gateway's own /health and /metrics."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
import requests

from gateway.app import Gateway
from gateway.routes import ROUTES
from gateway.routing import ANY_METHOD, AUTHENTICATED, PARAMETER, PUBLIC, STAFF, Route, RouteTable
from servicekit.config import UPSTREAMS
from tests.gateway.gateway_harness import EchoUpstream, GatewayClient

GatewayFactory = Callable[..., Gateway]
Bearer = Callable[..., dict[str, str]]
GENERATED_ID = re.compile(r"^[0-9a-f]{32}$")
EVERY_METHOD = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@pytest.mark.parametrize("path", ["/no/such/route", "/users/u/v/w", "/", "/healthz"])
def test_unknown_route_is_a_json_404(client: GatewayClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json"
    assert response.json == {"error": "no such route", "code": "not_found"}
    assert GENERATED_ID.match(response.headers["X-Request-ID"])


def test_known_path_with_wrong_method_is_405_with_allow(client: GatewayClient) -> None:
    response = client.patch("/users", headers={"X-Request-ID": "req-405"})
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD, POST"
    assert response.json == {"error": "method not allowed", "code": "method_not_allowed"}
    assert response.headers["X-Request-ID"] == "req-405"


@pytest.mark.parametrize("path", ["/events/category", "/events/category/"])
def test_trailing_slash_variants_are_both_routed(client: GatewayClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.json["method"] == "GET"
    assert response.json["path"] == path


@pytest.mark.parametrize(
    ("method", "sent", "received"),
    [
        ("PUT", "/events/category/caf%C3%A9", "/events/category/café"),
        ("PUT", "/events/category/two%20words", "/events/category/two words"),
        ("GET", "/media/photos/%E6%97%A5%E6%9C%AC.png", "/media/photos/日本.png"),
    ],
)
def test_encoded_paths_reach_the_upstream_unchanged(
    client: GatewayClient, bearer: Bearer, method: str, sent: str, received: str
) -> None:
    response = client.open(sent, method=method, headers=bearer(role="staff"))
    assert response.status_code == 200
    assert (response.json["method"], response.json["path"]) == (method, received)


def test_head_is_allowed_where_get_is(client: GatewayClient) -> None:
    response = client.head("/events/tags")
    assert response.status_code == 200
    assert response.get_data() == b""
    assert response.headers["Content-Type"] == "application/json"


def test_query_string_is_forwarded_intact(client: GatewayClient) -> None:
    query = "a=1&b=%20two%2Fthree&a=2&empty=&flag&q=%C3%A9t%C3%A9+x"
    response = client.get(f"/events/tags?{query}")
    assert response.status_code == 200
    assert response.json["query_string"] == query
    assert response.json["path"] == "/events/tags"


def test_every_route_goes_to_a_known_upstream() -> None:
    assert len(UPSTREAMS) == 7
    unknown = {route.upstream for route in ROUTES} - set(UPSTREAMS)
    assert unknown == set()
    assert {route.upstream for route in ROUTES} == set(UPSTREAMS)


@pytest.mark.parametrize(
    ("method", "path", "upstream", "policy"),
    [
        ("GET", "/users/u/invitation", "events", AUTHENTICATED),
        ("PUT", "/users/u/invitation/7/accept", "events", AUTHENTICATED),
        ("GET", "/users/u", "auth", AUTHENTICATED),
        ("DELETE", "/users/u", "auth", STAFF),
        ("GET", "/users/u/privileges", "auth", STAFF),
        ("GET", "/ticket/public", "tickets", PUBLIC),
        ("GET", "/ticket/someone", "tickets", AUTHENTICATED),
        ("GET", "/events/category", "events", PUBLIC),
        ("POST", "/events/category", "events", STAFF),
        ("GET", "/events/42", "events", PUBLIC),
        ("GET", "/media/a/b/c.png", "media", PUBLIC),
        ("POST", "/auth/token/", "auth", PUBLIC),
    ],
)
def test_documented_matches(method: str, path: str, upstream: str, policy: str) -> None:
    match, allowed = RouteTable(ROUTES).match(method, path)
    assert match is not None, allowed
    assert (match.route.upstream, match.route.policy) == (upstream, policy)


def sample_request(route: Route) -> tuple[str, dict[str, str]]:
    """A path for the route's pattern, each parameter filled with a value no literal
    segment of the table uses, and the parameters the match must yield."""
    params: dict[str, str] = {}

    def fill(parameter: re.Match[str]) -> str:
        is_path, name = parameter.group(1), parameter.group(2)
        params[name] = f"sample-{name}/more/parts" if is_path else f"sample-{name}"
        return params[name]

    return PARAMETER.sub(fill, route.pattern), params


def route_methods(route: Route) -> frozenset[str]:
    return EVERY_METHOD if ANY_METHOD in route.method_set else route.method_set


@pytest.mark.parametrize("route", ROUTES, ids=lambda route: f"{route.methods} {route.pattern}")
def test_no_route_is_shadowed_by_an_earlier_one(route: Route) -> None:
    table = RouteTable(ROUTES)
    path, params = sample_request(route)
    for method in sorted(route_methods(route)):
        for variant in (path.rstrip("/"), path.rstrip("/") + "/"):
            match, _ = table.match(method, variant)
            assert match is not None, f"{method} {variant} matches no route"
            assert match.route is route, f"{method} {variant} goes to {match.route}"
            assert match.params == params


def test_health_reports_each_upstream(
    make_gateway: GatewayFactory, echo: EchoUpstream, dead_url: str
) -> None:
    upstreams = {**dict.fromkeys(UPSTREAMS, echo.url), "events": dead_url}
    client = GatewayClient(make_gateway(upstreams=upstreams))
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json
    assert body["status"] == "degraded"
    assert body["service"] == "gateway"
    assert set(body["upstreams"]) == set(UPSTREAMS)
    states = {name: state["status"] for name, state in body["upstreams"].items()}
    assert states == {name: "unreachable" if name == "events" else "ready" for name in UPSTREAMS}
    assert GENERATED_ID.match(response.headers["X-Request-ID"])


def test_health_is_ok_when_every_upstream_is_ready(client: GatewayClient) -> None:
    response = client.get("/health/")
    assert response.status_code == 200
    assert response.json["status"] == "ok"
    assert {state["status"] for state in response.json["upstreams"].values()} == {"ready"}


def test_metrics_are_prometheus_text_on_the_internal_listener_only(
    client: GatewayClient,
) -> None:
    assert client.get("/events/tags").status_code == 200
    public = client.get("/metrics")
    assert (public.status_code, public.json["code"]) == (404, "not_found")
    response = requests.get(client.metrics_url + "/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    text = response.text
    assert "# TYPE gateway_requests_total counter" in text
    assert re.search(
        r'^gateway_requests_total\{method="GET",route="/events/tags",status="200",'
        r'upstream="events"\} [1-9]',
        text,
        re.MULTILINE,
    )
