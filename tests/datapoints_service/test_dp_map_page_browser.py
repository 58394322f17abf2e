"""The staff map page in a real headless Chromium, through the real gateway, with a real
auth_service signing the tokens: a normal user is turned away, staff see the regions
drawn and coloured by value, with a legend and a popup."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from itertools import pairwise
from pathlib import Path

import pytest
import redis
from flask import Flask

import datapoints_service
from auth_service import service
from auth_service.context import auth_context
from devstack.redis_server import free_port
from gateway.app import create_app as create_gateway
from gateway.config import GatewayConfig
from gateway.testing import serve_gateway
from servicekit.config import UPSTREAMS
from servicekit.keys import RemoteKeySet
from servicekit.testing import serve_wsgi
from tests.datapoints_service.dp_geo_helpers import GeoWorld, make_geo_world, store
from tests.real_auth import auth_app
from tests.scheduler_service.scheduler_helpers import Browser, browser

PASSWORD = "a long map password"
# Leaflet draws a path for each polygon, multipolygon and circle marker.
PATHS = "#map path.leaflet-interactive"
DRAWN = f"document.querySelectorAll('{PATHS}')"
# Whatever the page's Content-Security-Policy blocks is noted here, from the first script on.
RECORD_VIOLATIONS = (
    "window.violations = [];"
    "document.addEventListener('securitypolicyviolation',"
    " (event) => window.violations.push(`${event.violatedDirective} ${event.blockedURI}`));"
)


@pytest.fixture
def stack(
    service_app: Callable[..., Flask],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    redis_url: str,
    redis_client: redis.Redis,
) -> Iterator[tuple[str, Flask, Flask]]:
    """auth_service and datapoints_service served on loopback behind the gateway, both
    trusting auth_service's keys: (the gateway's URL, the auth app, the datapoints app)."""
    closed = f"http://127.0.0.1:{free_port()}"
    auth = auth_app(service_app, tmp_path, monkeypatch, service_secret="map", media_url=closed)
    with ExitStack() as served:
        auth_url = served.enter_context(serve_wsgi(auth))
        jwks = f"{auth_url}/.well-known/jwks.json"
        datapoints = service_app(
            "datapoints", datapoints_service.create_app, keys=RemoteKeySet(jwks)
        )
        datapoints_url = served.enter_context(serve_wsgi(datapoints))
        upstreams = {**dict.fromkeys(UPSTREAMS, closed), "auth": auth_url}
        upstreams["datapoints"] = datapoints_url
        config = GatewayConfig(upstreams=upstreams, redis_url=redis_url, jwks_url=jwks)
        gateway = create_gateway(config, keys=RemoteKeySet(jwks))
        yield served.enter_context(serve_gateway(gateway)).url, auth, datapoints


def add_account(auth: Flask, username: str, role: str) -> None:
    with auth.app_context():
        service.create_user(
            auth_context(auth),
            username=username,
            password=PASSWORD,
            role=role,
            email=f"{username}@example.org",
        )


def sign_in(page: Browser, username: str) -> None:
    page.wait_for("!document.getElementById('login-view').hidden")
    page.type_into("#username", username)
    page.type_into("#password", PASSWORD)
    page.click("#login-button")


def choose(page: Browser, world: GeoWorld) -> None:
    page.wait_for(
        f"document.querySelector('#campaign option[value=\"{world.campaign}\"]')"
        f" && document.querySelector('#indicator option[value=\"{world.summed}\"]')"
    )
    for select, value in (("#campaign", world.campaign), ("#indicator", world.summed)):
        page.evaluate(f"document.querySelector('{select}').value = '{value}'")
    page.click("#show")


def click_at_centre(page: Browser, element: str, name: str) -> str:
    """A real mouse click (DevTools input events) at the middle of an element (a script
    expression); the value shown by the popup it opens for the region `name`."""
    box = page.evaluate(
        f"(() => {{ const r = ({element}).getBoundingClientRect();"
        " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
    )
    for kind in ("mousePressed", "mouseReleased"):
        page.send(
            "Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1
        )
    shown = "document.querySelector('.leaflet-popup-content .popup-name')"
    page.wait_for(f"{shown} && {shown}.textContent === {json.dumps(name)}")
    assert page.evaluate("document.querySelectorAll('.leaflet-popup').length") == 1
    value: str = page.evaluate(
        "document.querySelector('.leaflet-popup-content .popup-value').textContent"
    )
    return value


def test_staff_see_the_regions_coloured_by_value_and_others_are_turned_away(
    stack: tuple[str, Flask, Flask], tmp_path: Path
) -> None:
    gateway_url, auth, datapoints = stack
    add_account(auth, "mapper", "staff")
    add_account(auth, "walker", "normal")
    world = make_geo_world(datapoints)
    store(
        datapoints,
        {
            (world.north_a, world.campaign, world.summed): 10.0,
            (world.north_b, world.campaign, world.summed): 5.0,
            (world.south, world.campaign, world.summed): 2.5,
        },
    )
    with browser(tmp_path / "chromium") as page:
        page.send("Page.enable")
        page.send("Page.addScriptToEvaluateOnNewDocument", source=RECORD_VIOLATIONS)
        page.send(
            "Emulation.setDeviceMetricsOverride",
            width=1200,
            height=900,
            deviceScaleFactor=1,
            mobile=False,
        )
        page.open(f"{gateway_url}/datapoints/map")
        sign_in(page, "walker")
        page.wait_for("document.getElementById('message').textContent !== ''")
        assert page.evaluate("document.getElementById('message').textContent") == (
            "This page is for staff only."
        )
        assert page.evaluate("document.getElementById('map-view').hidden") is True
        assert page.evaluate("Object.keys(sessionStorage).length") == 0

        sign_in(page, "mapper")
        page.wait_for("!document.getElementById('map-view').hidden")
        choose(page, world)
        # country (a multipolygon), north (a polygon), south, north a and north b (points);
        # south a has neither a shape nor a place.
        page.wait_for(f"{DRAWN}.length === 5 && !document.getElementById('legend').hidden")
        assert page.evaluate("document.getElementById('summary').textContent") == (
            "5 region(s) drawn, 5 with a value; 1 without a shape or a place"
        )
        legend = "document.getElementById('legend')"
        assert page.evaluate(f"[{legend}.dataset.min, {legend}.dataset.max]") == ["2.5", "17.5"]
        steps = page.evaluate(
            "[...document.querySelectorAll('#legend-steps li')].map(li => li.textContent)"
        )
        bounds = ["2.5", "5.5", "8.5", "11.5", "14.5", "17.5"]
        assert steps == [f"{a} \N{EN DASH} {b}" for a, b in pairwise(bounds)]
        fills = page.evaluate(f"[...{DRAWN}].map((path) => path.getAttribute('fill'))")
        # lowest (south: 2.5), 5.0, 10.0, 15.0 (north, computed), highest (country: 17.5)
        assert sorted(fills) == sorted(["#fff5eb", "#fff5eb", "#fd8d3c", "#7f2704", "#7f2704"])
        middle = f"document.querySelector(\"{PATHS}[fill='#fd8d3c']\")"
        assert click_at_centre(page, middle, "north a") == "10"
        # The dark polygon on the left is north's square (the country's are further east).
        dark = f"[...document.querySelectorAll(\"{PATHS}[fill='#7f2704']\")]"
        leftmost = (
            f"{dark}.sort((a, b) => a.getBoundingClientRect().x - b.getBoundingClientRect().x)[0]"
        )
        assert click_at_centre(page, leftmost, "north") == "15 (from its sub-regions)"
        assert page.evaluate("window.violations") == []
