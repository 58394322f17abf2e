"""Forwarding to the services: aiohttp's client, its pooled keep-alive connections, one
circuit breaker per service, and the service's answer read whole at its own pace.

A request is sent again only when the pooled connection it went out on turned out to be
dead before any byte of an answer (the service closed it while it idled) and the method
is idempotent; never when the connection was new. aiohttp would also retry on a new
connection, so its retry is turned off (a client middleware raises the failure as
`ConnectionLost`) and the decision is taken here, knowing from aiohttp's connection
trace whether the connection was reused. Pooled connections are given up after
`pool_max_age` seconds by starting a new client session and closing the old one once its
requests are done, so a new replica behind a service's address gets traffic.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import aiohttp
from aiohttp import ClientHandlerType, ClientRequest, ClientResponse
from multidict import CIMultiDict
from yarl import URL

from gateway import metrics
from gateway.body import Body
from gateway.breaker import UNAVAILABLE_STATUSES, CircuitBreaker
from gateway.errors import GatewayError
from gateway.headers import answer_headers

log = logging.getLogger("flotilla.gateway")
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# aiohttp adds these unless told not to; the service gets the client's own, or none.
NOT_ADDED = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")


class ConnectionLost(Exception):
    """The connection failed before the answer was whole. `before_answer`: not one byte
    of an answer had arrived (the request may be sent again, if it is idempotent)."""

    def __init__(self, message: str, *, before_answer: bool) -> None:
        super().__init__(message)
        self.before_answer = before_answer


@dataclass
class Answer:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: Body
    head_length: str | None = None  # a HEAD answer's Content-Length, passed on as it is


@dataclass
class Call:
    """One request to a service, as the gateway will send it."""

    method: str
    target: str
    headers: CIMultiDict[str]
    body: Body | None
    read_timeout: float


class Upstream:
    """One service: its base URL and circuit breaker."""

    def __init__(self, name: str, base_url: str, breaker: CircuitBreaker) -> None:
        url = URL(base_url)
        if url.scheme != "http" or not url.host:
            raise ValueError(f"{name}: the gateway forwards over plain HTTP, not {base_url!r}")
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.breaker = breaker

    def url(self, target: str) -> URL:
        return URL(self.base_url + target, encoded=True)


class Sessions:
    """The client session in use, replaced by a fresh one every `max_age` seconds; a
    replaced session is closed once the longest request it may carry has had its time."""

    def __init__(
        self, make: Callable[[], aiohttp.ClientSession], max_age: float, drain: float
    ) -> None:
        self._make = make
        self.max_age = max_age
        self.drain = drain
        self._session: aiohttp.ClientSession | None = None
        self._born = 0.0
        self._retired: set[asyncio.Task[None]] = set()

    def current(self) -> aiohttp.ClientSession:
        now = time.monotonic()
        if self._session is None or now - self._born > self.max_age:
            if self._session is not None:
                self._retire(self._session)
            self._session, self._born = self._make(), now
        return self._session

    def _retire(self, session: aiohttp.ClientSession) -> None:
        async def close_later() -> None:
            await asyncio.sleep(self.drain)
            await session.close()

        task = asyncio.get_running_loop().create_task(close_later())
        self._retired.add(task)
        task.add_done_callback(self._retired.discard)

    async def close(self) -> None:
        for task in list(self._retired):
            task.cancel()
        if self._session is not None:
            await self._session.close()
            self._session = None


async def _raise_connection_lost(request: ClientRequest, handler: ClientHandlerType) -> Any:
    """A client middleware: a connection lost before the answer's head leaves aiohttp as
    ConnectionLost, which aiohttp does not retry (it would on a new connection too, and
    after part of an answer)."""
    try:
        return await handler(request)
    except (aiohttp.ClientConnectorError, aiohttp.ServerTimeoutError):
        raise
    except aiohttp.ServerDisconnectedError as exc:
        # Its message is the partly parsed answer when any byte of one had arrived.
        nothing_arrived = isinstance(exc.message, str)
        raise ConnectionLost(repr(exc), before_answer=nothing_arrived) from exc
    except aiohttp.ClientOSError as exc:
        reset = exc.errno in (errno.ECONNRESET, errno.EPIPE)
        raise ConnectionLost(repr(exc), before_answer=reset) from exc


async def _on_reused(_session: Any, context: SimpleNamespace, _params: Any) -> None:
    attempt = context.trace_request_ctx
    if attempt is not None:  # the gateway's own small GETs carry none
        attempt.reused = True


def _trace() -> aiohttp.TraceConfig:
    trace = aiohttp.TraceConfig()
    trace.on_connection_reuseconn.append(_on_reused)
    return trace


class Forwarder:
    """Calls services: the breaker first, then one exchange (two when a reused pooled
    connection was found dead), the answer read whole."""

    def __init__(
        self,
        upstreams: dict[str, Upstream],
        *,
        pool_size: int,
        pool_max_age: float,
        connect_timeout: float,
        longest_timeout: float,
        in_memory: int,
    ) -> None:
        self.upstreams = upstreams
        self.connect_timeout = connect_timeout
        self.in_memory = in_memory
        self._pool_size = pool_size
        self.sessions = Sessions(self._new_session, pool_max_age, longest_timeout + 5)

    def _new_session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=0, limit_per_host=self._pool_size, keepalive_timeout=15, ttl_dns_cache=60
        )
        return aiohttp.ClientSession(
            connector=connector,
            # One client's cookies must never go out with another client's request.
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            skip_auto_headers=NOT_ADDED,
            trace_configs=[_trace()],
            middlewares=(_raise_connection_lost,),
        )

    async def close(self) -> None:
        await self.sessions.close()

    async def forward(self, upstream: Upstream, call: Call) -> Answer:
        """The service's answer; a GatewayError when there is none to give."""
        breaker = upstream.breaker
        breaker.before_call()
        outcome: bool | None = None
        try:
            answer = await self._send(upstream, call)
            outcome = answer.status not in UNAVAILABLE_STATUSES
            return answer
        except GatewayError as error:
            if error.status in UNAVAILABLE_STATUSES:
                outcome = False
                metrics.upstream_error(upstream.name, error.code)
            raise
        finally:  # also when the client went away and the exchange was cancelled
            breaker.record(outcome)
            metrics.circuit_state(upstream.name, breaker.state)

    async def _send(self, upstream: Upstream, call: Call) -> Answer:
        attempt = SimpleNamespace(reused=False)
        try:
            return await self._exchange(upstream, call, attempt)
        except ConnectionLost as exc:
            if not (exc.before_answer and attempt.reused and call.method in IDEMPOTENT):
                raise _failed(upstream, "upstream_unavailable", exc) from exc
        try:  # a pooled connection the service had closed: once more, on another
            return await self._exchange(upstream, call, SimpleNamespace(reused=False))
        except ConnectionLost as exc:
            raise _failed(upstream, "upstream_unavailable", exc) from exc

    async def _exchange(self, upstream: Upstream, call: Call, attempt: SimpleNamespace) -> Answer:
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self.connect_timeout, sock_read=call.read_timeout
        )
        data = None if call.body is None else _payload(call.body)
        try:
            async with self.sessions.current().request(
                call.method,
                upstream.url(call.target),
                headers=call.headers,
                data=data,
                timeout=timeout,
                allow_redirects=False,
                trace_request_ctx=attempt,
            ) as response:
                return await self._read_answer(upstream, response)
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise _failed(upstream, "upstream_unavailable", exc) from exc
        except aiohttp.ServerTimeoutError as exc:
            raise GatewayError(
                504, "upstream_timeout", f"{upstream.name} did not answer in time"
            ) from exc
        except aiohttp.ClientError as exc:  # a malformed answer or a cut-off body
            raise _failed(upstream, "bad_gateway", exc) from exc

    async def _read_answer(self, upstream: Upstream, response: ClientResponse) -> Answer:
        if response.status < 200:  # a 101 to a request that asked for no upgrade
            response.close()
            raise _failed(upstream, "bad_gateway", f"unexpected status {response.status}")
        body = Body(self.in_memory)
        try:
            while chunk := await response.content.readany():
                body.append(chunk)
        except BaseException:
            body.close()
            raise
        head_length = response.headers.get("Content-Length") if response.method == "HEAD" else None
        return Answer(
            response.status,
            response.reason or "",
            answer_headers(response.raw_headers),
            body,
            head_length,
        )

    async def get(self, upstream: Upstream, path: str, timeout: float) -> tuple[int, bytes]:
        """A small GET of the gateway's own (health, API documents), outside the breaker."""
        limits = aiohttp.ClientTimeout(total=timeout)
        async with self.sessions.current().get(
            upstream.url(path), timeout=limits, allow_redirects=False
        ) as response:
            return response.status, await response.read()


def _payload(body: Body) -> bytes | Any:
    return body.content() if not body.spooled else body.chunks()


def _failed(upstream: Upstream, code: str, cause: object) -> GatewayError:
    if code == "upstream_unavailable":
        return GatewayError(502, code, f"{upstream.name} is unavailable")
    log.warning("bad answer", extra={"upstream": upstream.name, "error": str(cause)})
    return GatewayError(502, code, f"{upstream.name} failed")
