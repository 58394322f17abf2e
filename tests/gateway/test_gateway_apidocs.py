"""The suite's merged OpenAPI document and the docs page, from real service apps."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

import auth_service
from servicekit.config import UPSTREAMS
from servicekit.testing import serve_wsgi
from tests.gateway.gateway_harness import EchoUpstream, GatewayClient


@pytest.fixture
def docs_client(
    make_gateway: Callable[..., Any],
    service_app: Callable[..., Flask],
    echo: EchoUpstream,
    dead_url: str,
    tmp_path: Path,
) -> Iterator[GatewayClient]:
    auth = service_app("auth", auth_service.create_app, JWT_KEYS_DIR=str(tmp_path / "keys"))
    with serve_wsgi(auth) as auth_url:
        upstreams = {**dict.fromkeys(UPSTREAMS, echo.url), "auth": auth_url, "media": dead_url}
        yield GatewayClient(make_gateway(upstreams=upstreams))


def refs_in(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs_in(value)


def test_merged_document_has_the_routed_operations_with_gateway_security(
    docs_client: GatewayClient,
) -> None:
    spec = docs_client.get("/openapi.json").json
    assert spec["openapi"].startswith("3.")
    paths = spec["paths"]
    assert paths["/users/"]["post"]["security"] == []  # public: registration
    protected = paths["/users/{username}"]["get"]
    assert protected["security"] == [{"bearerAuth": []}, {"tokenAuth": []}]
    assert "401" in protected["responses"] and "429" in protected["responses"]
    assert "/auth/token/" in paths
    assert not any(path.startswith("/internal") for path in paths)  # not routed
    assert set(spec["components"]["securitySchemes"]) == {"bearerAuth", "tokenAuth"}


def test_components_are_namespaced_and_every_reference_resolves(docs_client: GatewayClient) -> None:
    spec = docs_client.get("/openapi.json").json
    schemas = spec["components"]["schemas"]
    assert "auth.User" in schemas and "User" not in schemas
    for ref in refs_in(spec["paths"]):
        section, name = re.fullmatch(r"#/components/(\w+)/(.+)", ref).groups()  # type: ignore[union-attr]
        assert name in spec["components"][section], ref


def test_tags_are_named_after_their_service(docs_client: GatewayClient) -> None:
    spec = docs_client.get("/openapi.json").json
    tag_names = {tag["name"] for tag in spec["tags"]}
    assert "auth_service: users" in tag_names
    assert "auth_service: internal" not in tag_names  # no routed operation uses it
    assert spec["paths"]["/users/"]["post"]["tags"] == ["auth_service: users"]


def test_an_unreachable_service_is_listed_not_fatal(docs_client: GatewayClient) -> None:
    spec = docs_client.get("/openapi.json").json
    assert spec["x-unavailable-services"] == ["media"]


def test_docs_page_and_its_local_assets(docs_client: GatewayClient) -> None:
    page = docs_client.get("/docs")
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    html = page.get_data(as_text=True)
    assert "http://" not in html and "https://" not in html  # nothing from the internet
    for asset, kind in (("swagger-ui-bundle.js", "javascript"), ("swagger-ui.css", "css")):
        response = docs_client.get(f"/docs/{asset}")
        assert response.status_code == 200
        assert kind in response.headers["Content-Type"]
        assert len(response.data) > 10_000
    init = docs_client.get("/docs/docs.js").get_data(as_text=True)
    assert json.dumps("/openapi.json") in init
    assert docs_client.get("/docs/nope.js").status_code == 404
