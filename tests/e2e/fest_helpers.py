"""What the fest's end-to-end tests do as clients of the gateway: a user with a token
sending JSON, unique names, a small real picture, and bounded waiting for what other
processes do."""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

import requests
from PIL import Image

from tests.e2e.e2e_helpers import TIMEOUT, bearer, login, new_user

T = TypeVar("T")
POLL_INTERVAL = 0.1


class Client:
    """Requests to the gateway as one caller (anonymous without a token)."""

    def __init__(self, gateway_url: str, token: str | None = None, username: str = "") -> None:
        self.gateway_url = gateway_url
        self.token = token
        self.username = username

    def request(self, method: str, path: str, **options: Any) -> requests.Response:
        headers = {**(bearer(self.token) if self.token else {}), **options.pop("headers", {})}
        return requests.request(
            method, f"{self.gateway_url}{path}", headers=headers, timeout=TIMEOUT, **options
        )

    def get(self, path: str, **options: Any) -> requests.Response:
        return self.request("GET", path, **options)

    def post(self, path: str, **options: Any) -> requests.Response:
        return self.request("POST", path, **options)

    def put(self, path: str, **options: Any) -> requests.Response:
        return self.request("PUT", path, **options)

    def delete(self, path: str, **options: Any) -> requests.Response:
        return self.request("DELETE", path, **options)


def participant(gateway_url: str, prefix: str = "fest") -> Client:
    """A newly registered user of the college "Test College 123", signed in."""
    username = new_user(gateway_url, prefix)
    return Client(gateway_url, login(gateway_url, username)["access"], username)


def unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:10]}"


def unique_word() -> str:
    """A word of letters only, found in no other text (a search term)."""
    return "".join(chr(ord("a") + int(digit, 16)) for digit in uuid.uuid4().hex[:14])


def in_path(name: str) -> str:
    """A name as one URL path segment (names may hold spaces)."""
    return quote(name, safe="")


def png(size: tuple[int, int] = (48, 32), color: str = "purple") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


def wait_for(what: Callable[[], T | None], timeout: float, description: str) -> T:
    """The first value `what` gives that is not None, asked until `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if value is not None:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{description}: not within {timeout} s")
        time.sleep(POLL_INTERVAL)
