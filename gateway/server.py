"""The gateway's connections: aiohttp's HTTP server (llhttp parsing) on asyncio, with the
limits that make a slow or hostile client cost memory rather than capacity.

- A request head must arrive within `head_timeout` seconds of its first byte (of the
  connection's start, for the first request); a stalled head is disconnected.
- A connection may idle between requests for `idle_timeout` seconds; beyond
  `max_idle_connections` idle ones in a worker, the longest idle is closed.
- One client address holds at most `max_connections_per_address` open connections per
  worker; more are closed on arrival (behind a proxy every client has the proxy's
  address: raise the cap there, or let the proxy limit).
- The body deadline and buffering are the request pipeline's (gateway/body.py).
- A request the parser refuses gets a JSON 400, one log line, and the connection closed.

`GatewayConnection` is aiohttp's `RequestHandler` (the asyncio protocol of one
connection) with those limits added around its public protocol methods.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from gateway.errors import json_body
from servicekit.observability import request_id_from

if TYPE_CHECKING:
    from gateway.app import Gateway

log = logging.getLogger("flotilla.gateway")
BACKLOG = 2048
Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


class Connections:
    """A worker's client connections: how many each address holds, and the idle ones in
    the order they went idle."""

    def __init__(self, per_address: int, max_idle: int) -> None:
        self.per_address = per_address
        self.max_idle = max_idle
        self._by_address: dict[str, int] = {}
        self._idle: OrderedDict[GatewayConnection, None] = OrderedDict()

    def open(self, address: str) -> bool:
        held = self._by_address.get(address, 0)
        if held >= self.per_address:
            return False
        self._by_address[address] = held + 1
        return True

    def closed(self, connection: GatewayConnection, address: str) -> None:
        self._idle.pop(connection, None)
        held = self._by_address.get(address, 0) - 1
        if held > 0:
            self._by_address[address] = held
        else:
            self._by_address.pop(address, None)

    def idle(self, connection: GatewayConnection) -> None:
        self._idle[connection] = None
        while len(self._idle) > self.max_idle:
            oldest, _ = self._idle.popitem(last=False)
            oldest.force_close()

    def busy(self, connection: GatewayConnection) -> None:
        self._idle.pop(connection, None)


class GatewayConnection(web.RequestHandler):
    def __init__(
        self, manager: web.Server, connections: Connections, head_timeout: float, **kwargs: Any
    ) -> None:
        super().__init__(manager, **kwargs)
        self._connections = connections
        self._head_timeout = head_timeout
        self._address: str | None = None
        self._head_clock: asyncio.TimerHandle | None = None
        self._in_request = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if peer else ""
        if not self._connections.open(address):
            log.warning("connection refused", extra={"remote": address, "code": "too_many"})
            transport.close()
            return
        self._address = address
        super().connection_made(transport)
        self._start_head_clock()

    def data_received(self, data: bytes) -> None:
        if not self._in_request and self._head_clock is None:
            self._connections.busy(self)
            self._start_head_clock()
        super().data_received(data)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._address is None:  # refused on arrival: aiohttp never saw it
            return
        self._stop_head_clock()
        self._connections.closed(self, self._address)
        super().connection_lost(exc)

    def request_started(self) -> None:
        self._in_request = True
        self._stop_head_clock()
        self._connections.busy(self)

    def request_finished(self) -> None:
        self._in_request = False
        self._connections.idle(self)

    def _start_head_clock(self) -> None:
        loop = asyncio.get_running_loop()
        self._head_clock = loop.call_later(self._head_timeout, self._head_too_slow)

    def _stop_head_clock(self) -> None:
        if self._head_clock is not None:
            self._head_clock.cancel()
            self._head_clock = None

    def _head_too_slow(self) -> None:
        self._head_clock = None
        log.info("request head timed out", extra={"remote": self._address})
        self.force_close()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """A request the parser refused (or, never expected, a failure outside the
        gateway's handler): a JSON answer, one log line, the connection closed."""
        request_id = request_id_from(None)
        code = "bad_request" if status == 400 else "internal_error"
        log.warning(
            "malformed request",
            extra={
                "request_id": request_id,
                "status": status,
                "code": code,
                "error": (message or str(exc or ""))[:200],
                "remote": self._address,
            },
        )
        detail = (message or "").strip().splitlines()[:1]
        reason = "malformed HTTP request" + (f": {detail[0].rstrip(':')}" if detail else "")
        if status != 400:
            reason = "internal gateway error"
        body, headers = json_body({"error": reason, "code": code})
        response = web.Response(status=status, body=body, headers=[*headers[:1]])
        response.headers["X-Request-ID"] = request_id
        response.force_close()
        return response


def connection_factory(
    handler: Handler,
    connections: Connections,
    *,
    head_timeout: float,
    idle_timeout: float,
) -> tuple[web.Server, Callable[[], GatewayConnection]]:
    """aiohttp's low-level server for `handler`, and the protocol factory that gives each
    connection the gateway's limits."""

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        connection = request.protocol
        assert isinstance(connection, GatewayConnection)
        connection.request_started()
        try:
            return await handler(request)
        finally:
            connection.request_finished()
            if "Upgrade" in request.headers:
                # The gateway upgrades nothing: after the answer to such a request the
                # connection closes, so no byte that follows it is ever read as HTTP.
                connection.force_close()

    server = web.Server(handle, handler_cancellation=True)
    options: dict[str, Any] = {
        "loop": asyncio.get_running_loop(),
        "keepalive_timeout": idle_timeout,
        "access_log": None,
        "auto_decompress": False,  # bodies go on as the client encoded them
        "lingering_time": 2.0,
        "max_field_size": 8190,
        "max_line_size": 8190,
        "max_headers": 100,
    }

    def factory() -> GatewayConnection:
        return GatewayConnection(server, connections, head_timeout, **options)

    return server, factory


class Serving:
    """The gateway listening: its public and internal servers, until `stop`."""

    def __init__(self, gateway: Gateway, servers: list[asyncio.Server], webs: list[web.Server]):
        self.gateway = gateway
        self.servers = servers
        self.webs = webs

    async def stop(self, grace: float) -> None:
        """Stop accepting, let requests in flight finish for up to `grace` seconds."""
        for server in self.servers:
            server.close()
        for web_server in self.webs:
            web_server.pre_shutdown()
        await asyncio.gather(*(w.shutdown(grace) for w in self.webs))
        await self.gateway.close()


async def serve(
    gateway: Gateway, public: list[socket.socket], internal: list[socket.socket]
) -> Serving:
    """Listen on already bound sockets: `public` for clients, `internal` for /metrics."""
    config = gateway.config
    limits = {"head_timeout": config.head_timeout, "idle_timeout": config.idle_timeout}
    clients = Connections(config.max_connections_per_address, config.max_idle_connections)
    public_web, public_factory = connection_factory(gateway.handle, clients, **limits)
    scrapers = Connections(per_address=16, max_idle=16)
    internal_web, internal_factory = connection_factory(gateway.handle_internal, scrapers, **limits)
    loop = asyncio.get_running_loop()
    servers = [
        *[await loop.create_server(public_factory, sock=s, backlog=BACKLOG) for s in public],
        *[await loop.create_server(internal_factory, sock=s, backlog=BACKLOG) for s in internal],
    ]
    return Serving(gateway, servers, [public_web, internal_web])
