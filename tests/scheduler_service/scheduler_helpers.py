"""Helpers for the scheduler's tests: a recording target server, the real RQ worker as a
process, and headless Chromium driven over the DevTools protocol."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
import requests
import websocket
from flask.testing import FlaskClient
from rq import Worker

from devstack.stack import Stack
from scheduler_service.timestamps import render
from servicekit.config import REPO_ROOT
from servicekit.testing import CHROMIUM_FLAGS as HEADLESS_CHROMIUM

Answer = tuple[int, list[tuple[str, str]], bytes]
WSGIEnviron = dict[str, Any]


@dataclass
class Received:
    at: float
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class TargetServer:
    """A WSGI target that records every request and answers from a script.

    `answers` are used in order, then `default` for every later request; `delay` seconds
    are waited before answering; `stream` sends that many bytes in 64 KiB chunks.
    """

    answers: list[Answer] = field(default_factory=list)
    default: Answer = (200, [("Content-Type", "text/plain")], b"ok")
    delay: float = 0.0
    stream: int = 0
    received: list[Received] = field(default_factory=list)
    streamed: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: WSGIEnviron, start_response: Callable[..., Any]) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {
            key[5:].replace("_", "-").title(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = environ["CONTENT_TYPE"]
        query = environ.get("QUERY_STRING")
        path = environ.get("PATH_INFO", "/") + (f"?{query}" if query else "")
        with self._lock:
            self.received.append(
                Received(time.time(), environ["REQUEST_METHOD"], path, headers, body)
            )
            status, answer_headers, answer = self.answers.pop(0) if self.answers else self.default
        if self.delay:
            time.sleep(self.delay)
        start_response(f"{status} X", answer_headers)
        if self.stream:
            return self._stream()
        return [answer]

    def _stream(self) -> Iterator[bytes]:
        chunk = b"x" * 65536
        while self.streamed < self.stream:
            self.streamed += len(chunk)
            yield chunk

    def keys(self) -> Counter[str]:
        """How many requests carried each Idempotency-Key."""
        with self._lock:
            return Counter(item.headers.get("Idempotency-Key", "") for item in self.received)

    def wait_for(self, count: int, timeout: float) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.02)
        with self._lock:
            return list(self.received)


def wait_until(condition: Callable[[], Any], timeout: float, interval: float = 0.05) -> Any:
    """Poll until `condition()` is truthy; return its last value (falsy on timeout)."""
    deadline = time.monotonic() + timeout
    value = condition()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = condition()
    return value


class WorkerProcess:
    """The real worker (the dev stack's command) in its own process group."""

    def __init__(self, redis_url: str, environment: Mapping[str, str], log_path: Path) -> None:
        stack = Stack(var=log_path.parent, environment={"REDIS_URL": redis_url})
        self.command = stack.commands()["worker"]
        self.redis_url = redis_url
        self.environment = {**stack.env(), **environment}
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> WorkerProcess:
        with open(self.log_path, "ab") as log_file:
            self.process = subprocess.Popen(
                self.command,
                cwd=REPO_ROOT,
                env=self.environment,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if not wait_until(self._registered, timeout, 0.1):
            self.stop()
            raise RuntimeError(f"the worker did not start: see {self.log_path}")
        return self

    def _registered(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"the worker exited: see {self.log_path}")
        connection = redis.Redis.from_url(self.redis_url)
        try:
            return any(worker.pid == self.process.pid for worker in Worker.all(connection))
        finally:
            connection.close()

    def kill(self) -> None:
        """kill -9 of the worker and its scheduler process: a crash, no cleanup at all."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self, timeout: float = 30.0) -> None:
        """A warm shutdown (SIGTERM), as a deployment does; killed if it hangs."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):  # its scheduler, if it outlived it
            os.killpg(self.process.pid, signal.SIGKILL)


OTHER = "other-0002"
STAFF = "staff-0003"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = (*HEADLESS_CHROMIUM, "--remote-debugging-port=0")


class Browser:
    """Headless Chromium, one page, driven over the DevTools protocol."""

    def __init__(self, profile: Path, binary: str = CHROMIUM) -> None:
        self.profile = profile
        self.process = subprocess.Popen(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._ids = iter(range(1, 1_000_000))
        try:
            self.socket = websocket.create_connection(
                self._page_socket_url(), timeout=30, suppress_origin=True
            )
        except Exception:
            self.close()
            raise

    def _page_socket_url(self) -> str:
        port_file = self.profile / "DevToolsActivePort"

        def written_port() -> str | None:
            """The port, once Chromium has written the file (it exists empty first)."""
            lines = port_file.read_text().split() if port_file.exists() else []
            return lines[0] if len(lines) == 2 else None

        port = wait_until(written_port, 30, 0.1)
        if not port:
            raise RuntimeError("Chromium did not open its DevTools port")
        pages = wait_until(lambda: self._pages(port), 10, 0.1)
        if not pages:
            raise RuntimeError("Chromium has no page to drive")
        return str(pages[0]["webSocketDebuggerUrl"])

    @staticmethod
    def _pages(port: str) -> list[dict[str, Any]]:
        targets = requests.get(f"http://127.0.0.1:{port}/json/list", timeout=5).json()
        return [target for target in targets if target.get("type") == "page"]

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        message_id = next(self._ids)
        self.socket.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:  # events arrive in between; the answer carries our id
            message = json.loads(self.socket.recv())
            if message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))

    def evaluate(self, expression: str) -> Any:
        result = self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, url: str, timeout: float = 20) -> None:
        self.send("Page.navigate", url=url)
        loaded = wait_until(
            lambda: self.evaluate(
                f"location.href === {json.dumps(url)} && document.readyState === 'complete'"
            ),
            timeout,
            0.1,
        )
        if not loaded:
            raise RuntimeError(f"{url} did not load within {timeout} s")

    def wait_for(self, expression: str, timeout: float = 30) -> None:
        """Wait until the expression is truthy in the page (elements are not sent back)."""
        if not wait_until(lambda: self.evaluate(f"!!({expression})"), timeout, 0.1):
            raise AssertionError(f"still false after {timeout} s: {expression}")

    def type_into(self, selector: str, text: str) -> None:
        self.evaluate(
            f"(() => {{ const field = document.querySelector({json.dumps(selector)});"
            f" field.focus(); field.value = {json.dumps(text)};"
            " field.dispatchEvent(new Event('input', {bubbles: true})); })()"
        )

    def click(self, selector: str) -> None:
        self.evaluate(f"document.querySelector({json.dumps(selector)}).click()")

    def close(self) -> None:
        socket = getattr(self, "socket", None)
        if socket is not None:
            socket.close()
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


@contextmanager
def browser(profile: Path) -> Iterator[Browser]:
    driven = Browser(profile)
    try:
        yield driven
    finally:
        driven.close()


def loopback_on_port_of(url: str) -> str:
    """The allow-list of the tests: both loopback names, on the target server's port only."""
    port = url.rsplit(":", 1)[1]
    return f"127.0.0.1:{port},localhost:{port}"


# Scheduling and reading calls through the API under test (its Flask test client).

Auth = Callable[..., dict[str, str]]


def instant(seconds_ahead: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds_ahead)


def schedule(
    client: FlaskClient, auth: Auth, instants: list[datetime], **target: Any
) -> list[dict[str, Any]]:
    body = {"timestamps": ", ".join(render(moment) or "" for moment in instants), **target}
    response = client.post("/api/schedule-api/", json=body, headers=auth())
    assert response.status_code == 201, response.get_json()
    return list(response.get_json())


def detail(client: FlaskClient, auth: Auth, call_id: int) -> dict[str, Any]:
    response = client.get(f"/api/schedule-api/{call_id}/", headers=auth())
    assert response.status_code == 200, response.get_json()
    return dict(response.get_json())


def wait_for_status(
    client: FlaskClient, auth: Auth, call_id: int, statuses: set[str], timeout: float = 20
) -> dict[str, Any]:
    found = wait_until(
        lambda: (lambda call: call if call["status"] in statuses else None)(
            detail(client, auth, call_id)
        ),
        timeout,
        0.1,
    )
    assert found, f"call {call_id} is {detail(client, auth, call_id)['status']}, not {statuses}"
    return dict(found)
