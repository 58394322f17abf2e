"""A client's failures while the service reads its request body are the client's.

gunicorn (servicekit.gunicorn_worker) sets a timeout on every client socket; a client that
stalls mid-body makes the read raise TimeoutError, and one that drops its connection an
OSError. Unwrapped, either would surface as a 500 from whatever was parsing the body.
`ClientBodyErrors` wraps `wsgi.input` so they become 408 and 400 answers instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from werkzeug.exceptions import BadRequest, RequestTimeout

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class GuardedInput:
    """`wsgi.input` whose socket failures are HTTP errors of the client."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def read(self, *args: Any) -> bytes:
        data: bytes = self._call(self.stream.read, *args)
        return data

    def readline(self, *args: Any) -> bytes:
        line: bytes = self._call(self.stream.readline, *args)
        return line

    def readlines(self, *args: Any) -> list[bytes]:
        lines: list[bytes] = self._call(self.stream.readlines, *args)
        return lines

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line

    @staticmethod
    def _call(method: Callable[..., Any], *args: Any) -> Any:
        try:
            return method(*args)
        except TimeoutError as exc:
            raise RequestTimeout("request body not received in time") from exc
        except OSError as exc:
            raise BadRequest("request body cut off") from exc


class ClientBodyErrors:
    def __init__(self, app: WsgiApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        stream = environ.get("wsgi.input")
        if stream is not None:
            environ["wsgi.input"] = GuardedInput(stream)
        return self.app(environ, start_response)
