"""The outcome log: one line per attempt in the document's wording, and a structured twin.

Several worker processes (and hosts sharing a volume) append to the same file: each line
is one `write()` of the whole line on a descriptor opened with O_APPEND, which the kernel
places at the end atomically, so lines never interleave.
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

from scheduler_service.outbound import Outcome

log = logging.getLogger("flotilla.scheduler.calls")


def outcome_message(call_id: int, outcome: Outcome) -> str:
    """The document's three sentences: success, a failing status code, or an error."""
    if outcome.succeeded:
        return f"Successfully called API at {outcome.host} for timestamp {call_id}"
    if outcome.status_code is not None:
        return (
            f"Failed to call API at {outcome.host} for timestamp {call_id}, "
            f"status code: {outcome.status_code}"
        )
    return f"Error calling API at {outcome.host} for timestamp {call_id}: {outcome.error}"


class CallLog:
    """Appends outcome lines to one file, safely from many threads and processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._descriptor: int | None = None
        self._lock = threading.Lock()

    def _open(self) -> int:
        if self._descriptor is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
            self._descriptor = os.open(self.path, flags, 0o640)
        return self._descriptor

    def write(self, call_id: int, attempt: int, outcome: Outcome, status: str) -> None:
        message = outcome_message(call_id, outcome)
        level = "INFO" if outcome.succeeded else "ERROR"
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        line = f"{stamp} {level} {message}\n".encode()
        with self._lock:
            os.write(self._open(), line)
        log.log(
            logging.INFO if outcome.succeeded else logging.WARNING,
            message,
            extra={
                "call_id": call_id,
                "attempt": attempt,
                "host": outcome.host,
                "status_code": outcome.status_code,
                "error": outcome.error,
                "duration_ms": outcome.duration_ms,
                "call_status": status,
            },
        )

    def close(self) -> None:
        with self._lock:
            if self._descriptor is not None:
                os.close(self._descriptor)
                self._descriptor = None
