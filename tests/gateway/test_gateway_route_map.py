"""The route map rendered from the table, and every route of the table served by its service."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable

import pytest
from flask import Flask
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import RequestRedirect

from gateway.routemap import render
from gateway.routes import ROUTES
from servicekit.config import UPSTREAMS

PLACEHOLDER = re.compile(r"<[^>]+>")


def route_rows() -> list[list[str]]:
    """The cells of each route's row in the rendered map, in table order."""
    lines = [line for line in render().splitlines() if line.startswith("| ") and "`" in line]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


@pytest.mark.parametrize("name", UPSTREAMS)
def test_every_service_serves_an_api(name: str, service_app: Callable[..., Flask]) -> None:
    app = service_app(name, importlib.import_module(f"{name}_service").create_app)
    paths = app.test_client().get("/openapi.json").get_json()["paths"]
    assert paths != {}


@pytest.mark.parametrize("upstream", sorted({route.upstream for route in ROUTES}))
def test_every_route_of_the_table_is_served_by_its_service(
    upstream: str, service_app: Callable[..., Flask]
) -> None:
    """The service has a view for each method of each of its routes (routing only: no
    request is made, so no data is needed)."""
    app = service_app(upstream, importlib.import_module(f"{upstream}_service").create_app)
    urls = app.url_map.bind("gateway.test")
    for route in (route for route in ROUTES if route.upstream == upstream):
        if "<path:" in route.pattern:  # a whole subtree: the service serves something in it
            prefix = route.pattern.split("<path:")[0]
            assert any(rule.rule.startswith(prefix) for rule in app.url_map.iter_rules())
            continue
        path = PLACEHOLDER.sub("1", route.pattern)  # a number fits every converter
        for method in sorted(route.method_set - {"HEAD"}):
            try:
                urls.match(path, method=method)
            except (NotFound, MethodNotAllowed) as refused:
                pytest.fail(f"{method} {path} ({route.pattern}): {refused!r}")
            except RequestRedirect:
                pass  # served, with or without its trailing slash


def test_the_map_has_one_row_per_route_with_its_status_and_limits() -> None:
    rows = route_rows()
    assert len(rows) == len(ROUTES)
    for route, (methods, pattern, service, policy, limits) in zip(ROUTES, rows, strict=True):
        assert (methods, pattern, service) == (
            route.methods,
            f"`{route.pattern}`",
            f"{route.upstream}_service",
        )
        assert policy == route.policy.value
        assert limits.startswith("credential") == route.credential
        assert (limits == "default") == (
            not route.credential and route.max_body is None and route.timeout is None
        )
