"""A tiny WSGI app for testing the services' gunicorn worker against slow clients.

- `GET /ready` answers 200;
- `POST /echo` reads the whole body and answers its length and SHA-256; when reading it
  fails (the worker's client timeout, a dropped client), it answers 408 with the error it
  saw and how much of the body had arrived;
- `GET /large/<size>` streams `size` bytes in 64 KiB chunks, with a Content-Length.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from typing import Any
from wsgiref.types import StartResponse, WSGIEnvironment

CHUNK = 64 * 1024
FILLER = b"x" * CHUNK


def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
    if method == "GET" and path == "/ready":
        return answer(start_response, "200 OK", {"ready": True})
    if method == "POST" and path == "/echo":
        return echo(environ, start_response)
    if method == "GET" and path.startswith("/large/"):
        size = int(path.removeprefix("/large/"))
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(size))])
        return filler(size)
    return answer(start_response, "404 Not Found", {"error": "not found"})


def echo(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
    stream = environ["wsgi.input"]
    digest = hashlib.sha256()
    length = 0
    try:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
            length += len(chunk)
    except OSError as exc:
        seen = {"error": type(exc).__name__, "received": length}
        return answer(start_response, "408 Request Timeout", seen)
    return answer(start_response, "200 OK", {"length": length, "sha256": digest.hexdigest()})


def filler(size: int) -> Iterator[bytes]:
    for start in range(0, size, CHUNK):
        yield FILLER[: min(CHUNK, size - start)]


def answer(start_response: StartResponse, status: str, document: dict[str, Any]) -> list[bytes]:
    body = json.dumps(document).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
