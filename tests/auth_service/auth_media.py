"""A real media_service for auth_service's picture tests (a module name no package shadows).

The media app runs unchanged behind `MediaRecorder`, a WSGI wrapper that notes each
request it receives (to prove a refused upload never reached media_service) and can run
a step of the test after a file is stored, while auth_service waits for the answer.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from flask import Flask
from sqlalchemy import select

from media_service.models import StoredFile, db

TIMEOUT = 10.0


@dataclass(frozen=True)
class MediaRequest:
    method: str
    path: str
    authorization: str
    request_id: str
    content_length: str  # "" when the body was sent without one (chunked)


@dataclass
class MediaRecorder:
    """media_service's WSGI app, recording the requests that reach it."""

    app: Flask
    requests: list[MediaRequest] = field(default_factory=list)
    after_store: Callable[[], None] | None = None

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        self.requests.append(
            MediaRequest(
                method,
                path,
                environ.get("HTTP_AUTHORIZATION", ""),
                environ.get("HTTP_X_REQUEST_ID", ""),
                environ.get("CONTENT_LENGTH", ""),
            )
        )
        # Flask has run the view (stored the file, committed) when this call returns.
        body = self.app(environ, start_response)
        if self.after_store is not None and (method, path) == ("POST", "/internal/files"):
            self.after_store()
        return body  # type: ignore[no-any-return]


@dataclass(frozen=True)
class MediaServer:
    url: str
    app: Flask
    storage_dir: Path
    recorder: MediaRecorder

    @property
    def requests(self) -> list[MediaRequest]:
        return self.recorder.requests

    def fetch(self, picture_url: str) -> requests.Response:
        """GET a site-relative picture URL from media_service, as a client would (no token)."""
        return requests.get(self.url + picture_url, timeout=TIMEOUT)

    def files_on_disk(self) -> list[str]:
        """The keys of the other services' files in media_service's storage."""
        directory = self.storage_dir / "files"
        return sorted(f"files/{p.name}" for p in directory.iterdir()) if directory.is_dir() else []

    def everything_on_disk(self) -> list[str]:
        """Every file under media_service's storage folder, temporaries included."""
        if not self.storage_dir.is_dir():
            return []
        found = self.storage_dir.rglob("*")
        return sorted(str(p.relative_to(self.storage_dir)) for p in found if p.is_file())

    def file_records(self) -> list[StoredFile]:
        with self.app.app_context():
            records = list(db.session.scalars(select(StoredFile).order_by(StoredFile.id)))
            db.session.expunge_all()
            return records


def key_of(picture_url: str) -> str:
    """media_service's key of a `/media/files/...` URL."""
    assert picture_url.startswith("/media/files/"), picture_url
    return picture_url.removeprefix("/media/")


def closed_port_url() -> str:
    """A loopback URL nothing listens on (the port was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@contextmanager
def silent_server() -> Iterator[str]:
    """A loopback URL whose server accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # the kernel completes the handshakes; nobody reads
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
