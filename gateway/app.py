"""The gateway WSGI application: route, check the token, forward, log.

It is a plain WSGI callable rather than a Flask app: the hot path is one regex match, one
token check and one pooled upstream call, and nothing else should cost time there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import redis
import urllib3

from gateway import metrics
from gateway.auth import TokenVerifier, bearer_token
from gateway.config import GatewayConfig
from gateway.errors import GatewayError, json_body, status_line
from gateway.proxy import (
    BodyTooLarge,
    Upstream,
    UpstreamResponse,
    forwarded_headers,
    request_body,
)
from gateway.routes import ROUTES
from gateway.table import PUBLIC, STAFF, Match, Route, RouteTable
from servicekit.keys import KeyResolver, RemoteKeySet
from servicekit.observability import configure_logging, request_id_from

log = logging.getLogger("flotilla.gateway")
StartResponse = Callable[..., Any]
STAFF_ROLES = frozenset({"staff", "superuser"})


class Gateway:
    def __init__(
        self,
        config: GatewayConfig,
        routes: tuple[Route, ...] = ROUTES,
        keys: KeyResolver | None = None,
        revocations: redis.Redis | None = None,
    ) -> None:
        self.config = config
        self.table = RouteTable(routes)
        self.upstreams = {
            name: Upstream(
                name, url, pool_size=config.pool_size, connect_timeout=config.connect_timeout
            )
            for name, url in config.upstreams.items()
        }
        if revocations is None and config.redis_url:
            revocations = redis.Redis.from_url(
                config.redis_url, socket_timeout=1, socket_connect_timeout=1
            )
        self.verifier = TokenVerifier(
            keys or RemoteKeySet(config.jwks_url),
            revocations,
            issuer=config.issuer,
            audience=config.audience,
            leeway=config.leeway,
        )
        self._own_routes: dict[str, Callable[[], tuple[int, bytes, list[tuple[str, str]]]]] = {
            "/health": self.health,
            "/metrics": metrics.render,
        }

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        request_id = request_id_from(environ.get("HTTP_X_REQUEST_ID"))
        method = environ["REQUEST_METHOD"].upper()
        path = environ.get("PATH_INFO") or "/"
        record = AccessRecord(request_id, method, path, environ.get("REMOTE_ADDR"), started)
        try:
            own = self._own_routes.get(path.rstrip("/") or "/")
            if own is not None and method in ("GET", "HEAD"):
                status, body, headers = own()
                return self._respond(start_response, record, status, body, headers)
            return self._forward(environ, start_response, record, method, path)
        except GatewayError as error:
            return self._error(start_response, record, error)
        except Exception:
            log.exception("gateway failure", extra={"request_id": request_id})
            error = GatewayError(500, "internal_error", "internal gateway error")
            return self._error(start_response, record, error)

    def _forward(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        record: AccessRecord,
        method: str,
        path: str,
    ) -> Iterable[bytes]:
        match = self._route(method, path)
        record.route, record.upstream = match.route.pattern, match.route.upstream
        record.user = self._authorize(match.route, environ)
        upstream = self.upstreams.get(match.route.upstream)
        if upstream is None:
            raise GatewayError(502, "upstream_unknown", f"no upstream {match.route.upstream!r}")
        limit = match.route.max_body or self.config.max_body
        body, chunked = request_body(environ, limit)
        headers = forwarded_headers(environ, record.request_id)
        # PATH_INFO holds the path's bytes as latin-1 characters (PEP 3333).
        target = quote(path.encode("latin-1"), safe="/%:@!$&'()*+,;=-._~")
        if environ.get("QUERY_STRING"):
            target += "?" + environ["QUERY_STRING"]
        upstream_started = time.perf_counter()
        try:
            response = upstream.send(
                method,
                target,
                headers,
                body,
                chunked,
                match.route.timeout or self.config.read_timeout,
            )
        except BodyTooLarge as exc:
            raise GatewayError(
                413, "payload_too_large", f"request body over {limit} bytes"
            ) from exc
        except GatewayError as error:
            metrics.upstream_error(upstream.name, error.code)
            raise
        record.upstream_ms = (time.perf_counter() - upstream_started) * 1000
        proxied = UpstreamResponse(response, on_close=lambda: record.finish(proxied.status))
        headers_out = [*proxied.headers, ("X-Request-ID", record.request_id)]
        start_response(status_line(proxied.status, proxied.reason), headers_out)
        return proxied

    def _route(self, method: str, path: str) -> Match:
        match, allowed = self.table.match(method, path)
        if match is not None:
            return match
        if allowed:
            allow = ", ".join(sorted(allowed))
            raise GatewayError(405, "method_not_allowed", "method not allowed", [("Allow", allow)])
        raise GatewayError(404, "not_found", "no such route")

    def _authorize(self, route: Route, environ: dict[str, Any]) -> str | None:
        """Check the caller against the route's policy; return the subject, if any."""
        header = environ.get("HTTP_AUTHORIZATION")
        if not header:
            if route.policy is PUBLIC:
                return None
            raise GatewayError(
                401, "unauthorized", "authentication required", [("WWW-Authenticate", "Bearer")]
            )
        try:
            claims = self.verifier.verify(bearer_token(header))
        except GatewayError as error:
            if route.policy is PUBLIC and error.status == 401:
                # A public route is answered as for an anonymous caller.
                del environ["HTTP_AUTHORIZATION"]
                return None
            raise
        if route.policy is STAFF and claims.get("role") not in STAFF_ROLES:
            raise GatewayError(403, "forbidden", "staff only")
        return str(claims["sub"])

    def health(self) -> tuple[int, bytes, list[tuple[str, str]]]:
        """The gateway answers; each upstream's /ready is asked in parallel."""
        with ThreadPoolExecutor(max_workers=len(self.upstreams) or 1) as pool:
            states = dict(
                zip(self.upstreams, pool.map(self._ready, self.upstreams.values()), strict=False)
            )
        degraded = any(state["status"] != "ready" for state in states.values())
        body, headers = json_body(
            {"status": "degraded" if degraded else "ok", "service": "gateway", "upstreams": states}
        )
        return 200, body, headers

    def _ready(self, upstream: Upstream) -> dict[str, Any]:
        started = time.perf_counter()
        timeout = urllib3.Timeout(
            connect=self.config.health_timeout, read=self.config.health_timeout
        )
        try:
            response = upstream.pool.urlopen("GET", "/ready", timeout=timeout, retries=False)
            status = "ready" if response.status == 200 else "unavailable"
        except urllib3.exceptions.HTTPError:
            status = "unreachable"
        return {"status": status, "latency_ms": round((time.perf_counter() - started) * 1000, 1)}

    def _respond(
        self,
        start_response: StartResponse,
        record: AccessRecord,
        status: int,
        body: bytes,
        headers: list[tuple[str, str]],
    ) -> Iterable[bytes]:
        start_response(status_line(status), [*headers, ("X-Request-ID", record.request_id)])
        record.finish(status)
        return [body]

    def _error(
        self, start_response: StartResponse, record: AccessRecord, error: GatewayError
    ) -> Iterable[bytes]:
        body, headers = json_body({"error": error.message, "code": error.code})
        return self._respond(start_response, record, error.status, body, [*headers, *error.headers])


class AccessRecord:
    """What the access log and metrics say about one request."""

    def __init__(
        self, request_id: str, method: str, path: str, remote: str | None, started: float
    ) -> None:
        self.request_id = request_id
        self.method = method
        self.path = path
        self.remote = remote
        self.started = started
        self.route = "<unmatched>"
        self.upstream: str | None = None
        self.upstream_ms: float | None = None
        self.user: str | None = None
        self._done = False

    def finish(self, status: int) -> None:
        if self._done:
            return
        self._done = True
        elapsed = time.perf_counter() - self.started
        metrics.observe(self.method, self.route, self.upstream, status, elapsed)
        log.info(
            "request",
            extra={
                "service": "gateway",
                "request_id": self.request_id,
                "method": self.method,
                "route": self.route,
                "path": self.path,
                "status": status,
                "duration_ms": round(elapsed * 1000, 2),
                "upstream": self.upstream,
                "upstream_ms": round(self.upstream_ms, 2) if self.upstream_ms is not None else None,
                "user": self.user,
                "remote": self.remote,
            },
        )


def create_app(
    config: GatewayConfig | None = None,
    *,
    keys: KeyResolver | None = None,
    revocations: redis.Redis | None = None,
    routes: tuple[Route, ...] = ROUTES,
) -> Gateway:
    configure_logging()
    return Gateway(config or GatewayConfig.from_environment(), routes, keys, revocations)
