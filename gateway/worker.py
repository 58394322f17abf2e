"""gunicorn's worker for the gateway: one asyncio event loop (uvloop) per process serving
the gateway's listeners, under gunicorn's master (process count, restarts, signals).

gunicorn is run with `-c gateway/gunicorn_conf.py gateway.app:create_app`: the worker
builds the gateway inside its own loop. A listener whose address is
`GATEWAY_METRICS_BIND` is the internal one (/metrics); every other is public.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import socket
from collections.abc import Callable
from typing import Any

import uvloop
from gunicorn.workers.base import Worker

from gateway.app import Gateway
from gateway.server import serve

HEARTBEAT = 1.0


class GatewayWorker(Worker):
    def init_process(self) -> None:
        self.loop = uvloop.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self._stopping = asyncio.Event()
        super().init_process()

    def init_signals(self) -> None:
        for number in self.SIGNALS:
            signal.signal(number, signal.SIG_DFL)
        for number in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            self.loop.add_signal_handler(number, self._stopping.set)
        self.loop.add_signal_handler(signal.SIGUSR1, self.log.reopen_files)
        signal.signal(signal.SIGWINCH, signal.SIG_IGN)

    def run(self) -> None:
        try:
            self.loop.run_until_complete(self._serve())
        finally:
            self.loop.close()

    async def _serve(self) -> None:
        create_gateway: Callable[[], Gateway] = self.wsgi  # type: ignore[assignment]
        gateway = create_gateway()
        # What exists now lives as long as the process: the collector need not walk it.
        gc.freeze()
        public, internal = _split(self.sockets, gateway.config.metrics_bind)
        serving = await serve(gateway, public, internal)
        parent = os.getppid()
        while self.alive and not self._stopping.is_set() and os.getppid() == parent:
            self.notify()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), HEARTBEAT)
        await serving.stop(self.cfg.graceful_timeout * 0.9)


def _split(
    listeners: list[Any], metrics_bind: str | None
) -> tuple[list[socket.socket], list[socket.socket]]:
    """The public listeners and the internal one (at `metrics_bind`, when it is set)."""
    internal_port = int(metrics_bind.rsplit(":", 1)[1]) if metrics_bind else None
    public: list[socket.socket] = []
    internal: list[socket.socket] = []
    for listener in listeners:
        sock: socket.socket = listener.sock
        port = sock.getsockname()[1] if sock.family in (socket.AF_INET, socket.AF_INET6) else None
        (internal if port == internal_port else public).append(sock)
    return public, internal
