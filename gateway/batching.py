"""Redis round trips shared by the requests of one turn of the event loop.

Every admitted request asks Redis once (its revocation marks and rate counters). Under
load many requests reach that step in the same turn of the loop; their commands then go
out as one pipeline, so the client's per-call work (a pooled connection, a write, a
read) is paid once per turn rather than once per request. A request alone in its turn
pays one pipeline, as it would by itself. Each request gets its own slice of the
replies, or the error that stopped the round trip.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import redis.asyncio
from redis.asyncio.client import Pipeline

Queue = Callable[[Pipeline], None]


class SharedRoundTrips:
    def __init__(self, client: redis.asyncio.Redis) -> None:
        self.client = client
        self._waiting: list[tuple[Queue, int, asyncio.Future[list[Any]]]] = []
        self._flushes: set[asyncio.Task[None]] = set()

    async def execute(self, queue: Queue, replies: int) -> list[Any]:
        """The replies to the `replies` commands that `queue` puts on a pipeline."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[list[Any]] = loop.create_future()
        if not self._waiting:
            loop.call_soon(self._flush)
        self._waiting.append((queue, replies, waiter))
        return await waiter

    def _flush(self) -> None:
        batch, self._waiting = self._waiting, []
        task = asyncio.get_running_loop().create_task(self._round_trip(batch))
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _round_trip(self, batch: list[tuple[Queue, int, asyncio.Future[list[Any]]]]) -> None:
        pipeline = self.client.pipeline(transaction=False)
        for queue, _, _ in batch:
            queue(pipeline)
        try:
            results = await pipeline.execute(raise_on_error=False)
        except BaseException as exc:
            for _, _, waiter in batch:
                if not waiter.done():
                    waiter.set_exception(exc if isinstance(exc, Exception) else RuntimeError())
            if not isinstance(exc, Exception):
                raise
            return
        start = 0
        for _, replies, waiter in batch:
            mine = results[start : start + replies]
            start += replies
            if waiter.done():  # its request was cancelled meanwhile
                continue
            failed = next((r for r in mine if isinstance(r, Exception)), None)
            if failed is not None:
                waiter.set_exception(failed)
            else:
                waiter.set_result(mine)
