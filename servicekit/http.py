"""The internal HTTP client for service-to-service calls.

Base URL from config, timeouts always set, the request id propagated, and a service
token attached. Service tokens come from auth_service's internal token route, which
trusts callers that present the shared `SERVICE_SECRET`; they are cached until shortly
before they expire.
"""

from __future__ import annotations

import io
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any, BinaryIO, Protocol

import requests

from servicekit.config import service_url
from servicekit.observability import REQUEST_ID_HEADER, current_request_id

DEFAULT_TIMEOUT = (1.0, 10.0)  # (connect, read) seconds
MULTIPART_CHUNK = 64 * 1024
SERVICE_TOKEN_PATH = "/internal/service-token"


class TokenSource(Protocol):
    def token(self) -> str:
        """A valid service token (cached, renewed before it expires)."""
        ...


class ServiceTokenSource:
    """Fetches and caches this service's token from auth_service."""

    def __init__(self, service: str, secret: str, auth_url: str | None = None) -> None:
        self.service = service
        self.secret = secret
        self.auth_url = (auth_url or service_url("auth")).rstrip("/")
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()

    def token(self) -> str:
        with self._lock:
            if self._token is None or time.time() > self._expires_at - 30:
                self._fetch()
            assert self._token is not None
            return self._token

    def _fetch(self) -> None:
        response = requests.post(
            self.auth_url + SERVICE_TOKEN_PATH,
            json={"service": self.service},
            headers={"X-Service-Secret": self.secret},
            timeout=DEFAULT_TIMEOUT,
        )
        response.raise_for_status()
        body = response.json()
        self._token = body["access"]
        self._expires_at = time.time() + float(body.get("expires_in", 60))


class ServiceClient:
    """Calls one service: `ServiceClient("media").post("/internal/files", files=...)`."""

    def __init__(
        self,
        service: str,
        *,
        base_url: str | None = None,
        tokens: TokenSource | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    ) -> None:
        self.base_url = (base_url or service_url(service)).rstrip("/")
        self.tokens = tokens
        self.timeout = timeout
        self.session = requests.Session()

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        request_id = current_request_id()
        if request_id:
            headers.setdefault(REQUEST_ID_HEADER, request_id)
        if self.tokens is not None:
            headers.setdefault("Authorization", f"Bearer {self.tokens.token()}")
        kwargs.setdefault("timeout", self.timeout)
        return self.session.request(method, self.base_url + path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)


class MultipartBody:
    """A multipart/form-data body of text fields and one file, read from the file's own
    stream while it is sent: requests sends an object with `read` and `__len__` in
    blocks, with its Content-Length, never holding the file in memory."""

    def __init__(
        self,
        fields: dict[str, str],
        file_field: str,
        stream: BinaryIO,
        size: int,
        *,
        filename: str = "file",
        content_type: str = "application/octet-stream",
    ) -> None:
        self.boundary = secrets.token_hex(16)  # 128 random bits: no upload can guess it
        head = b"".join(self._field(name, value) for name, value in fields.items())
        head += self._part_head(
            f'name="{_quoted(file_field)}"; filename="{_quoted(filename)}"',
            f"Content-Type: {_quoted(content_type)}\r\n",
        )
        tail = f"\r\n--{self.boundary}--\r\n".encode()
        self._parts: list[BinaryIO] = [io.BytesIO(head), stream, io.BytesIO(tail)]
        self._length = len(head) + size + len(tail)

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return self._length

    def read(self, size: int = -1) -> bytes:
        """Up to `size` bytes (all that is left when negative); b"" at the end."""
        if size < 0:
            return b"".join(self)
        while self._parts and size:
            data = self._parts[0].read(size)
            if data:
                return data
            self._parts.pop(0)
        return b""

    def __iter__(self) -> Iterator[bytes]:
        while data := self.read(MULTIPART_CHUNK):
            yield data

    def _field(self, name: str, value: str) -> bytes:
        return self._part_head(f'name="{_quoted(name)}"', "") + value.encode() + b"\r\n"

    def _part_head(self, disposition: str, headers: str) -> bytes:
        return (
            f"--{self.boundary}\r\nContent-Disposition: form-data; {disposition}\r\n{headers}\r\n"
        ).encode()


def _quoted(text: str) -> str:
    """A name for a part's header: quotes and line breaks escaped as browsers do, so no
    value can end the header or start another."""
    return text.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
