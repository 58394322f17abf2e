"""The gateway WSGI application: route, admit (token, revocation, rate limits), forward, log.

It is a plain WSGI callable rather than a Flask app: the hot path is one route lookup
(the first route of the table whose pattern and method match), a cached token check, one
Redis round trip and one exchange on a pooled upstream connection; nothing else should
cost time there.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, quote

import urllib3

from gateway import metrics
from gateway.apidocs import SuiteSpec, docs_asset, docs_page
from gateway.auth import TokenVerifier
from gateway.breaker import UNAVAILABLE_STATUSES, CircuitBreaker
from gateway.config import GatewayConfig
from gateway.cors import Cors
from gateway.errors import GatewayError, json_body, status_line
from gateway.guard import Guard
from gateway.proxy import (
    BodyTooLarge,
    Upstream,
    UpstreamResponse,
    client_address,
    forwarded_headers,
    request_body,
)
from gateway.redis_client import RedisClient, open_redis_client
from gateway.routes import ROUTES
from gateway.routing import Match, Route, RouteTable
from gateway.tokencache import VerifiedTokens
from gateway.upstream_http import Exchange
from servicekit.keys import KeyResolver, RemoteKeySet
from servicekit.observability import configure_logging, request_id_from

log = logging.getLogger("flotilla.gateway")
StartResponse = Callable[..., Any]
Answer = tuple[int, bytes, list[tuple[str, str]]]


class Gateway:
    def __init__(
        self,
        config: GatewayConfig,
        routes: tuple[Route, ...] = ROUTES,
        keys: KeyResolver | None = None,
        redis_client: RedisClient | None = None,
    ) -> None:
        self.config = config
        self.table = RouteTable(routes)
        self.upstreams = {
            name: Upstream(
                name, url, pool_size=config.pool_size, connect_timeout=config.connect_timeout
            )
            for name, url in config.upstreams.items()
        }
        self.breakers = {
            name: CircuitBreaker(name, config.breaker_failures, config.breaker_cooldown)
            for name in config.upstreams
        }
        if redis_client is None and config.redis_url:
            redis_client = open_redis_client(config.redis_url, timeout=1.0)
        verifier = TokenVerifier(
            keys or RemoteKeySet(config.jwks_url),
            issuer=config.issuer,
            audience=config.audience,
            leeway=config.leeway,
            cache=VerifiedTokens(capacity=config.token_cache_size),
        )
        self.guard = Guard(verifier, redis_client, config.rate_limits)
        self.cors = Cors(config.cors_origins)
        self.spec = SuiteSpec(self.upstreams, self.table)
        self._own_routes: dict[str, Callable[[], Answer]] = {
            "/health": self.health,
            "/metrics": self.metrics,
            "/openapi.json": self.openapi,
            "/docs": docs_page,
        }

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        request_id = request_id_from(environ.get("HTTP_X_REQUEST_ID"))
        method = environ["REQUEST_METHOD"].upper()
        path = environ.get("PATH_INFO") or "/"
        record = AccessRecord(request_id, method, path, environ.get("REMOTE_ADDR"), started)
        extra = self.cors.response_headers(environ)
        try:
            own = self._own_answer(path)
            if own is not None and method in ("GET", "HEAD"):
                return self._respond(start_response, record, *own(), extra)
            if self.cors.is_preflight(environ):
                return self._respond(start_response, record, *self._preflight(environ, path), [])
            return self._forward(environ, start_response, record, method, path, extra)
        except GatewayError as error:
            return self._error(start_response, record, error, extra)
        except Exception:
            log.exception("gateway failure", extra={"request_id": request_id})
            internal = GatewayError(500, "internal_error", "internal gateway error")
            return self._error(start_response, record, internal, extra)

    def _own_answer(self, path: str) -> Callable[[], Answer] | None:
        """The gateway's own pages: health, metrics, the API document and its viewer."""
        own = self._own_routes.get(path.rstrip("/") or "/")
        if own is None and path.startswith("/docs/"):
            asset = docs_asset(path[len("/docs/") :])
            if asset is not None:
                return lambda: asset
        return own

    def openapi(self) -> Answer:
        body = self.spec.document()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        return 200, body, headers

    def _forward(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        record: AccessRecord,
        method: str,
        path: str,
        extra: list[tuple[str, str]],
    ) -> Iterable[bytes]:
        match = self._route(method, path)
        route = match.route
        record.route, record.upstream = route.pattern, route.upstream
        upstream = self.upstreams.get(route.upstream)
        if upstream is None:
            raise GatewayError(502, "upstream_unknown", f"no upstream {route.upstream!r}")
        address, forwarded_for = client_address(environ, self.config.trusted_proxies)
        body, chunked, login_username = self._request_body(environ, match)
        admission = self.guard.admit(route, environ, address, login_username)
        if admission.rate is not None:
            extra = [*extra, *admission.rate.headers()]
        record.user = str(admission.claims["sub"]) if admission.claims else None
        headers = forwarded_headers(environ, record.request_id, forwarded_for)
        upstream_started = time.perf_counter()
        response = self._send(
            upstream, route, method, _target(environ, path), headers, body, chunked
        )
        record.upstream_ms = (time.perf_counter() - upstream_started) * 1000
        proxied = UpstreamResponse(response, on_close=lambda: record.finish(proxied.status))
        headers_out = [*proxied.headers, ("X-Request-ID", record.request_id), *extra]
        start_response(status_line(proxied.status, proxied.reason), headers_out)
        return proxied

    def _request_body(
        self, environ: dict[str, Any], match: Match
    ) -> tuple[Iterable[bytes] | None, bool, str | None]:
        """The body to forward; credential routes are read whole (they are tiny) for the
        username their rate limit is keyed on."""
        route = match.route
        limit = route.body_limit(self.config.max_body)
        if not route.credential:
            body, chunked = request_body(environ, limit)
            return body, chunked, None
        body, _ = request_body(environ, limit)
        try:
            data = b"".join(body or [])
        except BodyTooLarge as exc:
            raise GatewayError(413, "payload_too_large", "credentials body too large") from exc
        environ["CONTENT_LENGTH"] = str(len(data))
        username = match.params.get("username") or _username_from(data, environ)
        return ([data] if data else None), False, username

    def _send(
        self,
        upstream: Upstream,
        route: Route,
        method: str,
        target: str,
        headers: dict[str, str],
        body: Iterable[bytes] | None,
        chunked: bool,
    ) -> Exchange:
        """Call the upstream through its circuit breaker."""
        breaker = self.breakers[upstream.name]
        breaker.before_call()
        read_timeout = route.timeout or self.config.read_timeout
        try:
            response = upstream.send(method, target, headers, body, chunked, read_timeout)
        except BodyTooLarge as exc:
            breaker.record(None)
            limit = route.body_limit(self.config.max_body)
            raise GatewayError(
                413, "payload_too_large", f"request body over {limit} bytes"
            ) from exc
        except GatewayError as error:
            upstream_failed = error.status in UNAVAILABLE_STATUSES
            breaker.record(False if upstream_failed else None)
            if upstream_failed:
                metrics.upstream_error(upstream.name, error.code)
            raise
        finally:
            metrics.circuit_state(upstream.name, breaker.state)
        breaker.record(response.status not in UNAVAILABLE_STATUSES)
        return response

    def _route(self, method: str, path: str) -> Match:
        match, allowed = self.table.match(method, path)
        if match is not None:
            return match
        if allowed:
            allow = ", ".join(sorted(allowed))
            raise GatewayError(405, "method_not_allowed", "method not allowed", [("Allow", allow)])
        raise GatewayError(404, "not_found", "no such route")

    def _preflight(self, environ: dict[str, Any], path: str) -> Answer:
        if self.cors.allowed_origin(environ) is None:
            raise GatewayError(403, "cors_origin_not_allowed", "origin not allowed")
        _, allowed = self.table.match("OPTIONS", path)
        if not allowed:
            raise GatewayError(404, "not_found", "no such route")
        return 204, b"", self.cors.preflight_headers(environ, allowed)

    def health(self) -> Answer:
        """The gateway answers; each upstream's /ready is asked in parallel."""
        with ThreadPoolExecutor(max_workers=len(self.upstreams) or 1) as pool:
            states = dict(
                zip(self.upstreams, pool.map(self._ready, self.upstreams.values()), strict=True)
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
        return {
            "status": status,
            "circuit": self.breakers[upstream.name].state.name.lower(),
            "latency_ms": round((time.perf_counter() - started) * 1000, 1),
        }

    def metrics(self) -> Answer:
        for name, breaker in self.breakers.items():
            metrics.circuit_state(name, breaker.state)
        return metrics.render()

    def _respond(
        self,
        start_response: StartResponse,
        record: AccessRecord,
        status: int,
        body: bytes,
        headers: list[tuple[str, str]],
        extra: list[tuple[str, str]],
    ) -> Iterable[bytes]:
        start_response(status_line(status), [*headers, ("X-Request-ID", record.request_id), *extra])
        record.finish(status)
        return [body] if record.method != "HEAD" else []

    def _error(
        self,
        start_response: StartResponse,
        record: AccessRecord,
        error: GatewayError,
        extra: list[tuple[str, str]],
    ) -> Iterable[bytes]:
        record.code = error.code
        if error.status == 429:
            metrics.rate_limited(record.route)
        body, headers = json_body({"error": error.message, "code": error.code})
        return self._respond(
            start_response, record, error.status, body, [*headers, *error.headers], extra
        )


def _target(environ: dict[str, Any], path: str) -> str:
    # PATH_INFO is WSGI's latin-1 decoding of the raw bytes: quote those bytes again.
    target = quote(path.encode("latin-1"), safe="/%:@!$&'()*+,;=-._~")
    if environ.get("QUERY_STRING"):
        target += "?" + environ["QUERY_STRING"]
    return target


def _username_from(data: bytes, environ: dict[str, Any]) -> str | None:
    """The `username` field of a small JSON or form body, if there is one."""
    content_type = environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
    try:
        if content_type == "application/x-www-form-urlencoded":
            values = parse_qs(data.decode("utf-8")).get("username")
            value: object = values[0] if values else None
        else:
            parsed = json.loads(data or b"null")
            value = parsed.get("username") if isinstance(parsed, dict) else None
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, str) and value else None


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
        self.code: str | None = None
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
                "code": self.code,
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
    redis_client: RedisClient | None = None,
    routes: tuple[Route, ...] = ROUTES,
) -> Gateway:
    configure_logging()
    skip_unused_log_record_fields()
    return Gateway(config or GatewayConfig.from_environment(), routes, keys, redis_client)


def skip_unused_log_record_fields() -> None:
    """The JSON log lines never show a record's caller, thread or process: do not look
    them up for every line (the logging module's documented optimisations)."""
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
