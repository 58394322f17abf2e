"""Handlers that the stream tests run in real consumer processes (`python -m
servicekit.streams tests.servicekit.stream_handlers:record ...`).

They report to the Redis of `REDIS_URL`: `handled` lists the ids of entries handled,
`started` those whose handling began. With `STALL_ON=<value>` in the environment, an
entry whose `n` field has that value never finishes (the test kills the process there).
`HANDLER_PAUSE` seconds are spent on every entry.
"""

from __future__ import annotations

import os
import time

import redis

from servicekit.streams import StreamEntry

HANDLED = "test:handled"
STARTED = "test:started"


def record(entry: StreamEntry) -> None:
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    client.rpush(STARTED, entry.id)
    if entry.fields.get("n") == os.environ.get("STALL_ON"):
        time.sleep(3600)
    time.sleep(float(os.environ.get("HANDLER_PAUSE", "0")))
    client.rpush(HANDLED, entry.id)
