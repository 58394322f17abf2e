"""Real server processes and raw client connections, for tests of how servers treat
slow or stalled clients."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def served_process(
    argv: list[str], env: Mapping[str, str], log: Path, ready_url: str
) -> Iterator[subprocess.Popen[bytes]]:
    """`argv` run from the repository root, its output in `log`, once `ready_url`
    answers 200; terminated (killed if it must be) when the block ends."""
    with log.open("wb") as output:
        process = subprocess.Popen(argv, cwd=ROOT, env=dict(env), stdout=output, stderr=output)
        try:
            wait_until_ready(ready_url, process, log)
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def wait_until_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: exited with {process.returncode}:\n{log.read_text()}")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:  # not listening yet, or slow to start
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within 20 s:\n{log.read_text()}")


def still_open(sock: socket.socket) -> bool:
    """The server has neither closed nor answered this connection (checked at once)."""
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.settimeout(timeout)
    return False


def rest_until_closed(sock: socket.socket) -> bytes:
    """Everything the server still sends on this connection, up to its close (within the
    socket's timeout, or the test fails)."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        pytest.fail(f"the server kept a stalled connection open for {sock.gettimeout()} s")
    return received
