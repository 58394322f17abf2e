"""The route map rendered from the table, and the planned status of the routes it shows."""

from __future__ import annotations

import importlib
from collections.abc import Callable

import pytest
from flask import Flask

from gateway.routemap import render
from gateway.routes import ROUTES
from gateway.routing import Route
from servicekit.config import UPSTREAMS
from servicekit.testing import TestKeys
from tests.gateway.test_gateway_routing import sample_request

PLANNED = [route for route in ROUTES if route.planned]


def route_rows() -> list[list[str]]:
    """The cells of each route's row in the rendered map, in table order."""
    lines = [line for line in render().splitlines() if line.startswith("| ") and "`" in line]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


@pytest.mark.parametrize("name", UPSTREAMS)
def test_every_service_serves_an_api(name: str, service_app: Callable[..., Flask]) -> None:
    app = service_app(name, importlib.import_module(f"{name}_service").create_app)
    paths = app.test_client().get("/openapi.json").get_json()["paths"]
    assert paths != {}


@pytest.mark.parametrize("route", PLANNED, ids=lambda route: f"{route.methods} {route.pattern}")
def test_a_planned_route_is_not_served_yet(
    route: Route, service_app: Callable[..., Flask], test_keys: TestKeys
) -> None:
    app = service_app(
        route.upstream, importlib.import_module(f"{route.upstream}_service").create_app
    )
    token = test_keys.token(sub="root-id", username="root", role="superuser")
    path, _ = sample_request(route)
    for method in sorted(route.method_set - {"HEAD"}):
        response = app.test_client().open(
            path, method=method, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code in (404, 405), (method, path, response.get_json())


def test_the_map_has_one_row_per_route_with_its_status_and_limits() -> None:
    rows = route_rows()
    assert len(rows) == len(ROUTES)
    for route, (methods, pattern, service, status, policy, limits) in zip(
        ROUTES, rows, strict=True
    ):
        assert (methods, pattern, service) == (
            route.methods,
            f"`{route.pattern}`",
            f"{route.upstream}_service",
        )
        assert status == ("planned" if route.planned else "served")
        assert policy == route.policy.value
        assert limits.startswith("credential") == route.credential
        assert (limits == "default") == (
            not route.credential and route.max_body is None and route.timeout is None
        )


def test_the_map_counts_the_planned_routes() -> None:
    assert f"Planned routes: {len(PLANNED)}." in render()
