"""The gateway: one request's way through it, top to bottom.

    edge      framing and the request target, checked before anything else (edge.py)
    route     the first route of the table matching method and path (routing.py)
    admit     token, revocation and rate limits, one Redis round trip (guard.py)
    read      the whole request body, at a pace the client must keep up (body.py)
    forward   one exchange with the service, its answer read whole (upstream.py)
    answer    the service's answer, or the gateway's own JSON error, to the client

Each step is one call in `Gateway.handle`; connections, deadlines and malformed HTTP are
the server's (server.py), which hands this class complete request heads.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import redis.asyncio
from aiohttp import web
from multidict import CIMultiDict

from gateway import metrics
from gateway.apidocs import SuiteSpec, docs_asset, docs_page
from gateway.auth import TokenVerifier
from gateway.body import Body, Pace, read_request_body
from gateway.breaker import CircuitBreaker
from gateway.config import GatewayConfig
from gateway.cors import Cors
from gateway.credentials import username_from
from gateway.edge import Target, check_framing, parse_target
from gateway.errors import GatewayError, json_body
from gateway.guard import Admission, Guard
from gateway.headers import client_address, forwarded_headers
from gateway.routes import ROUTES
from gateway.routing import Match, Route, RouteTable
from gateway.tokencache import VerifiedTokens
from gateway.upstream import Answer, Call, Forwarder, Upstream
from servicekit.keys import KeyResolver, RemoteKeySet
from servicekit.observability import configure_logging, request_id_from
from servicekit.redis_connection import async_redis_from_url

log = logging.getLogger("flotilla.gateway")
Page = tuple[int, bytes, list[tuple[str, str]]]
REDIS_TIMEOUT = 1.0
NO_BODY_STATUSES = frozenset({204, 304})


class Gateway:
    def __init__(
        self,
        config: GatewayConfig,
        routes: tuple[Route, ...] = ROUTES,
        keys: KeyResolver | None = None,
    ) -> None:
        self.config = config
        self.table = RouteTable(routes)
        self.upstreams = {
            name: Upstream(
                name, url, CircuitBreaker(name, config.breaker_failures, config.breaker_cooldown)
            )
            for name, url in config.upstreams.items()
        }
        self.forwarder = Forwarder(
            self.upstreams,
            pool_size=config.pool_size,
            pool_max_age=config.pool_max_age,
            connect_timeout=config.connect_timeout,
            longest_timeout=max([config.read_timeout, *(r.timeout or 0 for r in routes)]),
            in_memory=config.body_in_memory,
        )
        verifier = TokenVerifier(
            keys or RemoteKeySet(config.jwks_url),
            issuer=config.issuer,
            audience=config.audience,
            leeway=config.leeway,
            cache=VerifiedTokens(capacity=config.token_cache_size),
        )
        redis_client = _redis(config.redis_url, config.redis_connections)
        self.guard = Guard(verifier, redis_client, config.rate_limits)
        self.cors = Cors(config.cors_origins)
        self.pace = Pace(config.body_grace, config.body_min_rate)
        self.spec = SuiteSpec(self.upstreams, self.table, self.forwarder)
        self._pages: dict[str, Callable[[], Awaitable[Page]]] = {
            "/health": self.health,
            "/openapi.json": self.openapi,
            "/docs": self.docs,
        }

    async def close(self) -> None:
        await self.forwarder.close()
        if self.guard.redis_client is not None:
            await self.guard.redis_client.aclose()

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        """The public listener: the gateway's own pages, preflights, and every route."""
        record = AccessRecord(request)
        cors = self.cors.response_headers(request.headers)
        try:
            check_framing(request.version, request.headers)
            target = parse_target(request.raw_path)
            record.path = target.path
            page = self._page(request.method, target.path)
            if page is not None:
                return await answer_page(request, record, *(await page()), cors)
            if self.cors.is_preflight(request.method, request.headers):
                return await answer_page(request, record, *self._preflight(request, target), [])
            return await self._forward(request, record, target, cors)
        except GatewayError as error:
            return await answer_error(request, record, error, cors)
        except asyncio.CancelledError:  # the client went away before its answer
            record.code = "client_closed"
            record.finish(499)
            raise
        except Exception:
            log.exception("gateway failure", extra={"request_id": record.request_id})
            failure = GatewayError(500, "internal_error", "internal gateway error")
            return await answer_error(request, record, failure, cors)

    async def handle_internal(self, request: web.BaseRequest) -> web.StreamResponse:
        """The internal listener: the metrics, for the scraper only."""
        record = AccessRecord(request)
        if request.method in ("GET", "HEAD") and request.path.rstrip("/") == "/metrics":
            return await answer_page(request, record, *self.metrics(), [])
        return await answer_error(request, record, GatewayError(404, "not_found", "no such page"))

    async def _forward(
        self,
        request: web.BaseRequest,
        record: AccessRecord,
        target: Target,
        cors: list[tuple[str, str]],
    ) -> web.StreamResponse:
        match = self._route(request.method, target.path)
        route = match.route
        record.route, record.upstream = route.pattern, route.upstream
        upstream = self.upstreams.get(route.upstream)
        if upstream is None:
            raise GatewayError(502, "upstream_unknown", f"no upstream {route.upstream!r}")
        address, forwarded_for = client_address(
            request.remote or "",
            request.headers.get("X-Forwarded-For"),
            self.config.trusted_proxies,
        )
        # A credential body is read first: it names the user its login limit is keyed on.
        body = await self._read_body(request, route) if route.credential else None
        try:
            admission = await self._admit(request, match, address, body)
            if not route.credential:
                body = await self._read_body(request, route)
            record.user = str(admission.claims["sub"]) if admission.claims else None
            call = self._call(request, record, target, route, forwarded_for, admission, body)
            started = time.perf_counter()
            answer = await self.forwarder.forward(upstream, call)
        finally:
            if body is not None:
                body.close()
        record.upstream_ms = (time.perf_counter() - started) * 1000
        rate = admission.rate.headers() if admission.rate is not None else []
        return await answer_upstream(request, record, answer, [*cors, *rate], self.pace)

    def _call(
        self,
        request: web.BaseRequest,
        record: AccessRecord,
        target: Target,
        route: Route,
        forwarded_for: str,
        admission: Admission,
        body: Body | None,
    ) -> Call:
        """The request as the service will receive it."""
        headers = forwarded_headers(
            request.headers,
            request_id=record.request_id,
            forwarded_for=forwarded_for,
            scheme=self._scheme(request),
            body_size=body.size if body is not None else None,
            drop_authorization=admission.drop_authorization,
        )
        timeout = route.timeout or self.config.read_timeout
        return Call(request.method, target.raw, headers, body, timeout)

    def _scheme(self, request: web.BaseRequest) -> str:
        """The scheme the client used: a trusted proxy's X-Forwarded-Proto, else ours."""
        claimed = request.headers.get("X-Forwarded-Proto", "").strip().lower()
        if self.config.trusted_proxies > 0 and claimed in ("http", "https"):
            return claimed
        return request.scheme

    def _route(self, method: str, path: str) -> Match:
        match, allowed = self.table.match(method, path)
        if match is not None:
            return match
        if allowed:
            allow = ", ".join(sorted(allowed))
            raise GatewayError(405, "method_not_allowed", "method not allowed", [("Allow", allow)])
        raise GatewayError(404, "not_found", "no such route")

    async def _admit(
        self, request: web.BaseRequest, match: Match, address: str, body: Body | None
    ) -> Admission:
        username = match.params.get("username")
        if match.route.credential and username is None and body is not None:
            username = username_from(body.content(), request.headers.get("Content-Type", ""))
        authorization = request.headers.get("Authorization")
        return await self.guard.admit(match.route, authorization, address, username)

    async def _read_body(self, request: web.BaseRequest, route: Route) -> Body | None:
        if not request.body_exists:
            return None
        if request.headers.get("Expect", "").lower() == "100-continue":
            # The body is wanted now: the request is admitted (or, on a credential
            # route, its body names the user to admit). aiohttp's own expect handler
            # writes the same interim answer.
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return await read_request_body(
            request.content,
            request.content_length,
            route.body_limit(self.config.max_body),
            self.pace,
            self.config.body_in_memory,
        )

    def _page(self, method: str, path: str) -> Callable[[], Awaitable[Page]] | None:
        """The gateway's own pages: health, the API document and its viewer."""
        if method not in ("GET", "HEAD"):
            return None
        page = self._pages.get(path.rstrip("/") or "/")
        if page is None and path.startswith("/docs/"):
            asset = docs_asset(path[len("/docs/") :])
            if asset is not None:
                return _constant(asset)
        return page

    def _preflight(self, request: web.BaseRequest, target: Target) -> Page:
        if self.cors.allowed_origin(request.headers) is None:
            raise GatewayError(403, "cors_origin_not_allowed", "origin not allowed")
        _, allowed = self.table.match("OPTIONS", target.path)
        if not allowed:
            raise GatewayError(404, "not_found", "no such route")
        return 204, b"", self.cors.preflight_headers(request.headers, allowed)

    async def health(self) -> Page:
        """The gateway answers; each upstream's /ready is asked at once."""
        states = await asyncio.gather(*(self._ready(u) for u in self.upstreams.values()))
        by_name = dict(zip(self.upstreams, states, strict=True))
        degraded = any(state["status"] != "ready" for state in states)
        body, headers = json_body(
            {"status": "degraded" if degraded else "ok", "service": "gateway", "upstreams": by_name}
        )
        return 200, body, headers

    async def _ready(self, upstream: Upstream) -> dict[str, object]:
        started = time.perf_counter()
        try:
            status, _ = await self.forwarder.get(upstream, "/ready", self.config.health_timeout)
            state = "ready" if status == 200 else "unavailable"
        except Exception:  # refused, reset, timed out: all say the same
            state = "unreachable"
        return {
            "status": state,
            "circuit": upstream.breaker.state.name.lower(),
            "latency_ms": round((time.perf_counter() - started) * 1000, 1),
        }

    async def openapi(self) -> Page:
        body = await self.spec.document()
        return 200, body, [("Content-Type", "application/json")]

    async def docs(self) -> Page:
        return docs_page()

    def metrics(self) -> Page:
        for name, upstream in self.upstreams.items():
            metrics.circuit_state(name, upstream.breaker.state)
        return metrics.render()


def _constant(page: Page) -> Callable[[], Awaitable[Page]]:
    async def answer() -> Page:
        return page

    return answer


def _redis(url: str | None, connections: int) -> redis.asyncio.Redis | None:
    """A client whose pool makes a burst wait for a connection (at most the socket
    timeout) rather than fail: redis.asyncio's default pool refuses the 101st. Behind
    Sentinel (a `redis+sentinel://` URL) the pool follows the master, with the same bound."""
    if not url:
        return None
    return async_redis_from_url(
        url,
        max_connections=connections,
        pool_timeout=REDIS_TIMEOUT,
        socket_timeout=REDIS_TIMEOUT,
        socket_connect_timeout=REDIS_TIMEOUT,
    )


async def answer_upstream(
    request: web.BaseRequest,
    record: AccessRecord,
    answer: Answer,
    extra: list[tuple[str, str]],
    pace: Pace,
) -> web.StreamResponse:
    """The service's answer, whole, with the gateway's request id and headers. The client
    must take it at the pace asked of request bodies, or is disconnected."""
    headers = CIMultiDict([*answer.headers, ("X-Request-ID", record.request_id), *extra])
    with_body = request.method != "HEAD" and answer.status not in NO_BODY_STATUSES
    response: web.StreamResponse
    if with_body and not answer.body.spooled:  # head and body in one write
        response = web.Response(
            status=answer.status, reason=answer.reason, headers=headers, body=answer.body.content()
        )
        with_body = False
    else:
        response = web.StreamResponse(status=answer.status, reason=answer.reason, headers=headers)
    if request.method == "HEAD" and answer.head_length is not None:
        response.headers["Content-Length"] = answer.head_length
    elif with_body:
        response.content_length = answer.body.size
    deadline = pace.deadline(asyncio.get_running_loop().time(), answer.body.size)
    try:
        async with asyncio.timeout_at(deadline):
            await response.prepare(request)
            if with_body:
                async for chunk in answer.body.chunks():
                    await response.write(chunk)
            await response.write_eof()
    except TimeoutError:
        record.code = "response_timeout"
        if request.transport is not None:  # close() would wait to flush what is unread
            request.transport.abort()
    except ConnectionError:
        record.code = "client_closed"
    finally:
        answer.body.close()
        record.finish(answer.status)
    return response


async def answer_page(
    request: web.BaseRequest,
    record: AccessRecord,
    status: int,
    body: bytes,
    headers: list[tuple[str, str]],
    extra: list[tuple[str, str]],
    *,
    close: bool = False,
) -> web.StreamResponse:
    all_headers = CIMultiDict([*headers, ("X-Request-ID", record.request_id), *extra])
    all_headers.popall("Content-Length", None)
    response = web.Response(status=status, body=body, headers=all_headers)
    if close:  # after this answer: the request's framing is in doubt
        response.force_close()
    record.finish(status)
    await response.prepare(request)
    await response.write_eof()
    return response


async def answer_error(
    request: web.BaseRequest,
    record: AccessRecord,
    error: GatewayError,
    extra: list[tuple[str, str]] | None = None,
) -> web.StreamResponse:
    record.code = error.code
    if error.status == 429:
        metrics.rate_limited(record.route)
    body, headers = json_body({"error": error.message, "code": error.code})
    all_headers = [*headers, *error.headers]
    return await answer_page(
        request, record, error.status, body, all_headers, extra or [], close=error.closes
    )


class AccessRecord:
    """What the access log and metrics say about one request."""

    def __init__(self, request: web.BaseRequest) -> None:
        self.started = time.perf_counter()
        self.request_id = request_id_from(request.headers.get("X-Request-ID"))
        self.method = request.method
        self.path = request.raw_path.partition("?")[0]
        self.remote = request.remote
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
    routes: tuple[Route, ...] = ROUTES,
) -> Gateway:
    configure_logging()
    skip_unused_log_record_fields()
    return Gateway(config or GatewayConfig.from_environment(), routes, keys)


def skip_unused_log_record_fields() -> None:
    """The JSON log lines never show a record's caller or thread: do not look them up for
    every line (the logging module's documented optimisations). The process id stays:
    gunicorn's own log lines print it."""
    logging._srcfile = None
    logging.logThreads = False
