"""Asking for Redis replicas in a test: `REDIS_WAIT_REPLICAS` and its timeout set for the
test, with the process's cached reading of them cleared before and after."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from servicekit.replication import replication


@contextmanager
def asking_for_replicas(monkeypatch: pytest.MonkeyPatch, timeout_ms: int) -> Iterator[None]:
    monkeypatch.setenv("REDIS_WAIT_REPLICAS", "1")
    monkeypatch.setenv("REDIS_WAIT_TIMEOUT_MS", str(timeout_ms))
    replication.cache_clear()
    try:
        yield
    finally:
        replication.cache_clear()
