"""Bodies read whole before they go on: a request's before the service sees it, an answer's
before the client gets it, so neither side's pace holds the other.

A body stays in memory up to a threshold and is spooled to an unnamed temporary file
beyond it (as nginx buffers requests), so a 50 MB upload costs the gateway a file, not
50 MB of memory.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from typing import IO

from aiohttp import StreamReader

from gateway.errors import GatewayError

READ_SIZE = 256 * 1024


class Body:
    """Bytes collected in order: a list of chunks, moved to a temporary file once they
    pass `in_memory` bytes."""

    def __init__(self, in_memory: int) -> None:
        self.in_memory = in_memory
        self.size = 0
        self._chunks: list[bytes] = []
        self._file: IO[bytes] | None = None

    def append(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self._file is not None:
            self._file.write(chunk)
            return
        self._chunks.append(chunk)
        if self.size > self.in_memory:
            self._file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
            self._file.writelines(self._chunks)
            self._chunks = []

    @property
    def spooled(self) -> bool:
        return self._file is not None

    def content(self) -> bytes:
        """The whole body in memory (a small one: a spooled body is read with chunks())."""
        if self._file is not None:
            self._file.seek(0)
            return self._file.read()
        return b"".join(self._chunks)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body from its start, as often as asked (a retried request sends it again)."""
        if self._file is None:
            for chunk in self._chunks:
                yield chunk
            return
        self._file.seek(0)
        while chunk := self._file.read(READ_SIZE):
            yield chunk

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._chunks = []


class Pace:
    """How long a client may take over a body: `grace` seconds, plus its size at
    `min_rate` bytes a second. A trickle falls behind and is cut off; an upload at any
    honest speed finishes."""

    def __init__(self, grace: float, min_rate: int) -> None:
        self.grace = grace
        self.min_rate = max(1, min_rate)

    def deadline(self, started: float, size: int) -> float:
        return started + self.grace + size / self.min_rate


async def read_request_body(
    stream: StreamReader, declared: int | None, limit: int, pace: Pace, in_memory: int
) -> Body:
    """The whole request body. A declared length over the limit is refused before anything
    is read; a chunked body is counted as it arrives. A chunked body's deadline grows with
    what has arrived, a declared one's is set by its length."""
    if declared is not None and declared > limit:
        raise too_large(limit)
    loop = asyncio.get_running_loop()
    started = loop.time()
    body = Body(in_memory)
    try:
        while True:
            expected = declared if declared is not None else body.size + READ_SIZE
            async with asyncio.timeout_at(pace.deadline(started, expected)):
                chunk = await stream.readany()
            if not chunk:
                break
            body.append(chunk)
            if body.size > limit:
                raise too_large(limit)
    except TimeoutError as exc:
        body.close()
        raise GatewayError(408, "request_timeout", "request body not received in time") from exc
    except GatewayError:
        body.close()
        raise
    except Exception as exc:  # the parser refused a chunk, or the client went away
        body.close()
        raise GatewayError(400, "bad_request", "malformed or incomplete request body") from exc
    if declared is not None and body.size != declared:
        body.close()
        raise GatewayError(400, "bad_request", "request body shorter than Content-Length")
    return body


def too_large(limit: int) -> GatewayError:
    return GatewayError(413, "payload_too_large", f"request body over {limit} bytes")
