"""The gateway served on loopback from a background thread, for tests that build a
gateway in-process (the real server and protocol stack, no gunicorn)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvloop

from gateway.app import Gateway
from gateway.server import serve


@dataclass(frozen=True)
class ServedGateway:
    url: str
    metrics_url: str
    loop: asyncio.AbstractEventLoop


def _listener() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def serve_gateway(gateway: Gateway) -> Iterator[ServedGateway]:
    loop = uvloop.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="gateway", daemon=True)
    thread.start()
    public, internal = _listener(), _listener()
    try:
        serving = asyncio.run_coroutine_threadsafe(
            serve(gateway, [public], [internal]), loop
        ).result(timeout=10)
        try:
            yield ServedGateway(
                f"http://127.0.0.1:{public.getsockname()[1]}",
                f"http://127.0.0.1:{internal.getsockname()[1]}",
                loop,
            )
        finally:
            asyncio.run_coroutine_threadsafe(serving.stop(1.0), loop).result(timeout=10)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        public.close()
        internal.close()
