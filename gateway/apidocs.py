"""One OpenAPI document for the whole suite, and the interactive page that reads it.

`GET /openapi.json` merges every service's flask-smorest document: only the operations
the gateway really routes to that service, with the gateway's security per route, each
service's components renamed `<service>.<Name>` so they cannot collide, and tags named
after the service. `GET /docs` is Swagger UI, served from the flask-swagger-ui wheel's
files: it works with no internet access.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from importlib.resources import files
from pathlib import Path
from typing import Any

import aiohttp
import flask_swagger_ui

from gateway.routing import PUBLIC, STAFF, RouteTable
from gateway.upstream import Forwarder, Upstream

SWAGGER_DIST = Path(flask_swagger_ui.__file__).parent / "dist"
STATIC = files("gateway") / "static"
DOC_ASSETS = {
    "swagger-ui.css": (SWAGGER_DIST / "swagger-ui.css", "text/css; charset=utf-8"),
    "swagger-ui-bundle.js": (SWAGGER_DIST / "swagger-ui-bundle.js", "text/javascript"),
    "docs.js": (STATIC / "docs.js", "text/javascript"),
}
DOCS_SECURITY_HEADERS = [
    (
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'",
    ),
    ("X-Content-Type-Options", "nosniff"),
]
SECURITY_SCHEMES = {
    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
    "tokenAuth": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "The image API's scheme: `Token <access token>`.",
    },
}
GATEWAY_ERRORS = {
    "401": "missing, invalid, expired or revoked token",
    "403": "the route is for staff",
    "429": "rate limited (see Retry-After)",
    "502": "the service is unavailable",
    "503": "the service is unavailable (circuit open) or a dependency is down",
    "504": "the service did not answer in time",
}
_PARAM = re.compile(r"\{[^}/]+\}")
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


class SuiteSpec:
    """The merged document, rebuilt from the services at most every `ttl` seconds."""

    def __init__(
        self,
        upstreams: dict[str, Upstream],
        table: RouteTable,
        forwarder: Forwarder,
        ttl: float = 30,
    ) -> None:
        self.upstreams = upstreams
        self.table = table
        self.forwarder = forwarder
        self.ttl = ttl
        self._cached: tuple[float, bytes] | None = None
        self._lock = asyncio.Lock()

    async def document(self) -> bytes:
        async with self._lock:
            if self._cached is None or time.monotonic() - self._cached[0] > self.ttl:
                merged = merge(await self._fetch_all(), self.table)
                self._cached = (time.monotonic(), json.dumps(merged).encode())
            return self._cached[1]

    async def _fetch_all(self) -> dict[str, dict[str, Any] | None]:
        specs = await asyncio.gather(*(self._fetch(u) for u in self.upstreams.values()))
        return dict(zip(self.upstreams, specs, strict=True))

    async def _fetch(self, upstream: Upstream) -> dict[str, Any] | None:
        try:
            status, body = await self.forwarder.get(upstream, "/openapi.json", timeout=2.0)
            return json.loads(body) if status == 200 else None
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None


def merge(specs: dict[str, dict[str, Any] | None], table: RouteTable) -> dict[str, Any]:
    merged: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {
            "title": "Flotilla",
            "version": "1.0",
            "description": "Every service of the suite, as the gateway exposes it.",
        },
        "paths": {},
        "tags": [],
        "components": {"securitySchemes": SECURITY_SCHEMES, "schemas": {}, "responses": {}},
    }
    merged["components"]["schemas"]["GatewayError"] = {
        "type": "object",
        "properties": {"error": {"type": "string"}, "code": {"type": "string"}},
    }
    for name, spec in specs.items():
        if spec is None:
            merged.setdefault("x-unavailable-services", []).append(name)
            continue
        _add_service(merged, name, _renamed(spec, name), table)
    return merged


def _renamed(spec: dict[str, Any], service: str) -> dict[str, Any]:
    """The spec with every component `X` renamed `<service>.X`, references included."""
    text = json.dumps(spec)
    text = re.sub(
        r'"#/components/(\w+)/([^"]+)"',
        lambda m: f'"#/components/{m.group(1)}/{service}.{m.group(2)}"',
        text,
    )
    renamed = json.loads(text)
    components = renamed.get("components", {})
    for section, entries in components.items():
        if section != "securitySchemes" and isinstance(entries, dict):
            components[section] = {f"{service}.{key}": value for key, value in entries.items()}
    return dict(renamed)


def _add_service(
    merged: dict[str, Any], service: str, spec: dict[str, Any], table: RouteTable
) -> None:
    for section, entries in spec.get("components", {}).items():
        if section != "securitySchemes":
            merged["components"].setdefault(section, {}).update(entries)
    tag_names = {tag["name"]: f"{service}_service: {tag['name']}" for tag in spec.get("tags", [])}
    used: set[str] = set()
    for path, item in spec.get("paths", {}).items():
        operations = _routed_operations(service, path, item, table)
        for operation in _ops(operations):
            tags = [tag_names.get(t, f"{service}_service") for t in operation.get("tags", [])]
            operation["tags"] = tags or [f"{service}_service"]
            used.update(operation["tags"])
        if operations:
            merged["paths"].setdefault(path, {}).update(operations)
    for tag in spec.get("tags", []):
        if tag_names[tag["name"]] in used:
            merged["tags"].append({**tag, "name": tag_names[tag["name"]]})


def _ops(item: dict[str, Any]) -> list[dict[str, Any]]:
    return [item[m] for m in _METHODS if isinstance(item.get(m), dict)]


def _routed_operations(
    service: str, path: str, item: dict[str, Any], table: RouteTable
) -> dict[str, Any]:
    """The operations of one path that the gateway sends to `service`, with its security."""
    concrete = _PARAM.sub("x", path)
    routed: dict[str, Any] = {}
    for method in _METHODS:
        operation = item.get(method)
        if not isinstance(operation, dict):
            continue
        match, _ = table.match(method.upper(), concrete)
        if match is None or match.route.upstream != service:
            continue
        routed[method] = _with_gateway_answers(operation, match.route.policy)
    if routed and "parameters" in item:
        routed["parameters"] = item["parameters"]
    return routed


def _with_gateway_answers(operation: dict[str, Any], policy: Any) -> dict[str, Any]:
    operation = dict(operation)
    responses = dict(operation.get("responses", {}))
    codes = ["429", "502", "503", "504"]
    if policy is not PUBLIC:
        operation["security"] = [{"bearerAuth": []}, {"tokenAuth": []}]
        codes.append("401")
    else:
        operation["security"] = []
    if policy is STAFF:
        codes.append("403")
    for code in codes:
        responses.setdefault(
            code,
            {
                "description": GATEWAY_ERRORS[code],
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/GatewayError"}}
                },
            },
        )
    operation["responses"] = responses
    return operation


DOCS_PAGE = b"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Flotilla API</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/docs.js"></script>
</body>
</html>
"""


def docs_page() -> tuple[int, bytes, list[tuple[str, str]]]:
    headers = [
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Length", str(len(DOCS_PAGE))),
    ]
    return 200, DOCS_PAGE, [*headers, *DOCS_SECURITY_HEADERS]


def docs_asset(name: str) -> tuple[int, bytes, list[tuple[str, str]]] | None:
    found = DOC_ASSETS.get(name)
    if found is None:
        return None
    source, content_type = found
    body = source.read_bytes()
    headers = [
        ("Content-Type", content_type),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "public, max-age=3600"),
    ]
    return 200, body, [*headers, *DOCS_SECURITY_HEADERS]
