"""The route map rendered from the table, and the planned status of services it shows."""

from __future__ import annotations

import importlib
from collections.abc import Callable

import pytest
from flask import Flask

from gateway.routemap import render
from gateway.routes import PLANNED_SERVICES, ROUTES
from servicekit.config import UPSTREAMS


def route_rows() -> list[list[str]]:
    """The cells of each route's row in the rendered map, in table order."""
    lines = [line for line in render().splitlines() if line.startswith("| ") and "`" in line]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def test_planned_services_are_upstreams_with_routes() -> None:
    assert PLANNED_SERVICES
    assert set(UPSTREAMS) >= PLANNED_SERVICES
    assert {route.upstream for route in ROUTES} >= PLANNED_SERVICES


@pytest.mark.parametrize("name", UPSTREAMS)
def test_a_service_is_planned_exactly_while_it_serves_no_api(
    name: str, service_app: Callable[..., Flask]
) -> None:
    app = service_app(name, importlib.import_module(f"{name}_service").create_app)
    paths = app.test_client().get("/openapi.json").get_json()["paths"]
    assert (paths == {}) == (name in PLANNED_SERVICES), sorted(paths)


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
        assert status == ("planned" if route.upstream in PLANNED_SERVICES else "served")
        assert policy == route.policy.value
        assert limits.startswith("credential") == route.credential
        assert (limits == "default") == (
            not route.credential and route.max_body is None and route.timeout is None
        )


def test_the_map_names_the_planned_services() -> None:
    names = ", ".join(f"{name}_service" for name in sorted(PLANNED_SERVICES))
    assert f"Planned services: {names}." in render()
