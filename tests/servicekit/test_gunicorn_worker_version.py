"""servicekit.gunicorn_worker runs on the gunicorn release it was written for.

BoundedThreadWorker overrides about fifteen of gthread's internals (TConn.init, accept,
handle, finish_request, enqueue_req, murder_keepalived, ...), which gunicorn changes
between releases without notice (27.0.1's handle defers connections that send nothing and
branches to HTTP/2). So the release the worker was read and tested against is a constant beside it,
WRITTEN_FOR_GUNICORN, rather than whatever requirements.txt pins: an upgrade rewrites the
lock and the installed package together, so a test comparing those two would pass
through it, while changing the constant is an edit of the worker's own file.
"""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

from servicekit.gunicorn_worker import WRITTEN_FOR_GUNICORN

LOCK = Path(__file__).resolve().parents[2] / "requirements.txt"


def review_needed(release: str) -> str:
    return (
        f"gunicorn {release}, but servicekit/gunicorn_worker.py overrides the gthread "
        f"internals of {WRITTEN_FOR_GUNICORN}: compare gunicorn/workers/gthread.py of both "
        "releases against every method the worker overrides or calls, check a service's "
        "slow clients (half a request head, half a small body, a silent connection) are "
        "still disconnected after GUNICORN_CLIENT_TIMEOUT while other requests are served, "
        "then set WRITTEN_FOR_GUNICORN"
    )


def locked_gunicorn() -> str:
    pin = re.search(r"^gunicorn==([^\s\\]+)", LOCK.read_text(encoding="utf-8"), re.MULTILINE)
    assert pin, f"{LOCK.name} pins no gunicorn release"
    return pin.group(1)


def test_installed_gunicorn_is_the_release_the_worker_was_written_for() -> None:
    installed = version("gunicorn")
    assert installed == WRITTEN_FOR_GUNICORN, review_needed(installed)


def test_locked_gunicorn_is_the_release_the_worker_was_written_for() -> None:
    locked = locked_gunicorn()
    assert locked == WRITTEN_FOR_GUNICORN, review_needed(locked)
