"""servicekit.streams: consumer groups on a real Redis, consumers as real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from devstack.redis_server import start_redis, stop_redis
from servicekit.config import REPO_ROOT
from servicekit.streams import (
    ConsumerOptions,
    StreamConsumer,
    StreamEntry,
    load_handler,
    main,
    once_per_event,
)
from tests.auth_service.auth_helpers import wait_for
from tests.servicekit.stream_handlers import HANDLED, STARTED

STREAM = "test:stream"
GROUP = "events"
QUICK = ConsumerOptions(batch_size=10, block=0.05, claim_idle=0.05, max_deliveries=3)


def add_entries(client: redis.Redis, count: int) -> list[str]:
    return [client.xadd(STREAM, {"n": str(n)}).decode() for n in range(count)]


def pending_count(client: redis.Redis, group: str = GROUP) -> int:
    return int(client.xpending(STREAM, group)["pending"])


def listed(client: redis.Redis, key: str) -> list[str]:
    return [value.decode() for value in client.lrange(key, 0, -1)]


class Recorder:
    """A handler that remembers what it was given (and can be told to fail)."""

    def __init__(self, failures: int = 0) -> None:
        self.entries: list[StreamEntry] = []
        self.failures = failures

    def __call__(self, entry: StreamEntry) -> None:
        self.entries.append(entry)
        if self.failures:
            self.failures -= 1
            raise RuntimeError("handler failed on purpose")

    @property
    def ids(self) -> list[str]:
        return [entry.id for entry in self.entries]


def poll_until(running: StreamConsumer, condition: Callable[[], Any], timeout: float = 10) -> Any:
    """Poll `running` until `condition()` holds; its last value."""

    def step() -> Any:
        running.poll()
        return condition()

    return wait_for(step, timeout)


def consumer(
    client: redis.Redis,
    handler: Callable[[StreamEntry], None],
    name: str,
    group: str = GROUP,
    options: ConsumerOptions = QUICK,
) -> StreamConsumer:
    made = StreamConsumer(client, STREAM, group, handler, consumer=name, options=options)
    made.ensure_group()
    return made


# In one process


def test_a_group_handles_each_entry_once_and_acknowledges_it(redis_client: redis.Redis) -> None:
    ids = add_entries(redis_client, 5)
    handler = Recorder()
    first = consumer(redis_client, handler, "c1")

    handled = first.poll() + first.poll()

    assert handled == 5
    assert handler.ids == ids
    assert [entry.fields for entry in handler.entries] == [{"n": str(n)} for n in range(5)]
    assert all(entry.deliveries == 1 for entry in handler.entries)
    assert pending_count(redis_client) == 0


def test_a_group_joining_late_replays_from_the_start(redis_client: redis.Redis) -> None:
    early = Recorder()
    consumer(redis_client, early, "c1", group="early").poll()
    ids = add_entries(redis_client, 3)
    consumer(redis_client, early, "c1", group="early").poll()

    late = Recorder()
    consumer(redis_client, late, "c1", group="late").poll()

    assert early.ids == ids
    assert late.ids == ids


def test_entries_an_abandoned_consumer_held_are_reclaimed(redis_client: redis.Redis) -> None:
    ids = add_entries(redis_client, 4)
    abandoned = consumer(redis_client, Recorder(), "gone")
    assert len(abandoned.read_new()) == 4  # read, never handled nor acknowledged
    handler = Recorder()
    survivor = consumer(redis_client, handler, "alive")

    assert poll_until(survivor, lambda: handler.ids)

    assert handler.ids == ids
    assert all(entry.deliveries == 2 for entry in handler.entries)
    assert pending_count(redis_client) == 0


def test_a_failing_handler_is_retried_then_succeeds(redis_client: redis.Redis) -> None:
    (entry_id,) = add_entries(redis_client, 1)
    handler = Recorder(failures=1)
    only = consumer(redis_client, handler, "c1")

    assert only.poll() == 0
    assert pending_count(redis_client) == 1
    assert poll_until(only, lambda: pending_count(redis_client) == 0)

    assert handler.ids == [entry_id, entry_id]
    assert [entry.deliveries for entry in handler.entries] == [1, 2]
    assert pending_count(redis_client) == 0
    assert redis_client.xlen(f"{STREAM}:dead:{GROUP}") == 0


def test_an_entry_failing_every_time_is_parked(redis_client: redis.Redis) -> None:
    (entry_id,) = add_entries(redis_client, 1)
    handler = Recorder(failures=100)
    only = consumer(redis_client, handler, "c1")

    assert poll_until(only, lambda: redis_client.xlen(f"{STREAM}:dead:{GROUP}"))

    assert [entry.deliveries for entry in handler.entries] == [1, 2, 3]
    ((_id, parked),) = redis_client.xrange(f"{STREAM}:dead:{GROUP}")
    fields = {key.decode(): value.decode() for key, value in parked.items()}
    assert fields == {
        "n": "0",
        "_entryId": entry_id,
        "_group": GROUP,
        "_deliveries": "3",
        "_error": "RuntimeError: handler failed on purpose",
    }
    assert pending_count(redis_client) == 0


def test_an_entry_whose_consumers_keep_dying_is_parked_unhandled(
    redis_client: redis.Redis,
) -> None:
    add_entries(redis_client, 1)
    options = ConsumerOptions(block=0.05, claim_idle=0.05, max_deliveries=1)
    assert len(consumer(redis_client, Recorder(), "dead", options=options).read_new()) == 1
    handler = Recorder()
    survivor = consumer(redis_client, handler, "alive", options=options)

    assert poll_until(survivor, lambda: redis_client.xlen(f"{STREAM}:dead:{GROUP}"))

    assert handler.entries == []
    ((_id, parked),) = redis_client.xrange(f"{STREAM}:dead:{GROUP}")
    assert parked[b"_error"] == b"not acknowledged after 1 deliveries"
    assert pending_count(redis_client) == 0


def test_entries_trimmed_before_handling_are_acknowledged(redis_client: redis.Redis) -> None:
    add_entries(redis_client, 3)
    assert len(consumer(redis_client, Recorder(), "gone").read_new()) == 3
    redis_client.xtrim(STREAM, maxlen=0, approximate=False)
    handler = Recorder()
    survivor = consumer(redis_client, handler, "alive")

    assert poll_until(survivor, lambda: pending_count(redis_client) == 0)

    assert handler.entries == []
    assert pending_count(redis_client) == 0


def test_a_repeated_event_is_handled_once(redis_client: redis.Redis) -> None:
    """The outbox may publish an event twice (same eventId): the helper skips the repeat,
    and a handler that is idempotent would not care either way."""
    applied: list[str] = []

    @once_per_event(redis_client, "test:events")
    def handler(entry: StreamEntry) -> None:
        applied.append(entry.fields["eventId"])

    for event_id in ("e1", "e2", "e1"):
        redis_client.xadd(STREAM, {"eventId": event_id})
    only = consumer(redis_client, handler, "c1")

    assert only.poll() == 3  # all acknowledged
    assert applied == ["e1", "e2"]
    assert redis_client.ttl("test:events:handled:e1") > 7 * 24 * 3600


def test_the_dedupe_helper_forgets_nothing_when_the_handler_fails(
    redis_client: redis.Redis,
) -> None:
    calls: list[str] = []

    @once_per_event(redis_client, "test:events")
    def handler(entry: StreamEntry) -> None:
        calls.append(entry.id)
        if len(calls) == 1:
            raise RuntimeError("first attempt fails")

    redis_client.xadd(STREAM, {"eventId": "e1"})
    only = consumer(redis_client, handler, "c1")

    assert only.poll() == 0
    assert poll_until(only, lambda: len(calls) == 2)
    assert pending_count(redis_client) == 0


def test_idle_consumers_without_pending_entries_are_forgotten(redis_client: redis.Redis) -> None:
    add_entries(redis_client, 1)
    assert consumer(redis_client, Recorder(), "finished").poll() == 1  # holds nothing now
    add_entries(redis_client, 1)
    assert len(consumer(redis_client, Recorder(), "holder").read_new()) == 1  # holds one
    current = consumer(redis_client, Recorder(), "current")

    forgotten = current.forget_idle_consumers(idle=0)

    assert forgotten == ["finished"]
    names = {info["name"].decode() for info in redis_client.xinfo_consumers(STREAM, GROUP)}
    assert names == {"holder"}


def test_the_consumer_rides_out_a_redis_restart(tmp_path: Path) -> None:
    process, url = start_redis(tmp_path / "redis")
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    client = redis.Redis.from_url(url, socket_timeout=5)
    handler = Recorder()
    options = ConsumerOptions(block=0.1, claim_idle=1)
    running = StreamConsumer(client, STREAM, GROUP, handler, consumer="c1", options=options)
    stop = threading.Event()
    thread = threading.Thread(target=running.run, args=(stop,))
    thread.start()
    try:
        client.xadd(STREAM, {"n": "before"})
        assert wait_for(lambda: handler.entries, timeout=10)
        stop_redis(process)
        process, _ = start_redis(tmp_path / "redis", port=port)  # empty: the group is gone
        client.xadd(STREAM, {"n": "after"})

        assert wait_for(lambda: len(handler.entries) == 2, timeout=15)
        assert [entry.fields["n"] for entry in handler.entries] == ["before", "after"]
    finally:
        stop.set()
        thread.join(timeout=10)
        stop_redis(process)
    assert not thread.is_alive()


def test_options_are_checked() -> None:
    for bad in ({"batch_size": 0}, {"block": 0}, {"claim_idle": -1}, {"max_deliveries": 0}):
        with pytest.raises(ValueError):
            ConsumerOptions(**bad)


def test_the_redis_timeout_must_outlast_the_blocking_read(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, socket_timeout=1)

    with pytest.raises(ValueError, match="socket timeout"):
        StreamConsumer(client, STREAM, GROUP, Recorder(), options=ConsumerOptions(block=2))


def test_a_handler_is_named_module_colon_function() -> None:
    assert load_handler("tests.servicekit.stream_handlers:record").__name__ == "record"
    module = "tests.servicekit.stream_handlers"
    for bad in (module, ":record", f"{module}:HANDLED"):
        with pytest.raises(ValueError):
            load_handler(bad)


def test_the_runner_needs_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    with pytest.raises(SystemExit, match="REDIS_URL"):
        main(["tests.servicekit.stream_handlers:record", "--group", GROUP])


# Consumers as processes


@pytest.fixture
def consumers(redis_url: str, tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start `python -m servicekit.streams` consumers; each is ended after the test."""
    started: list[subprocess.Popen[bytes]] = []

    def start(name: str, *arguments: str, **env: str) -> subprocess.Popen[bytes]:
        command = [
            sys.executable, "-m", "servicekit.streams",
            "tests.servicekit.stream_handlers:record",
            "--group", GROUP, "--stream", STREAM, "--consumer", name, "--block", "0.2",
            *arguments,
        ]  # fmt: skip
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env={**os.environ, "REDIS_URL": redis_url, **env},
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / f"{name}.log").open("wb"),
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_consumer_killed_mid_batch_loses_nothing(
    redis_client: redis.Redis, consumers: Callable[..., subprocess.Popen[bytes]]
) -> None:
    ids = add_entries(redis_client, 6)
    first = consumers("first", "--batch-size", "10", STALL_ON="2")
    assert wait_for(lambda: len(listed(redis_client, STARTED)) == 3, timeout=30)

    first.kill()  # SIGKILL while it handles entry 2 of its batch of 6
    first.wait()
    assert listed(redis_client, HANDLED) == ids[:2]
    assert pending_count(redis_client) == 4

    consumers("second", "--claim-idle", "0.5")

    assert wait_for(lambda: sorted(listed(redis_client, HANDLED)) == sorted(ids), timeout=30)
    assert wait_for(lambda: pending_count(redis_client) == 0, timeout=10)
    assert listed(redis_client, STARTED).count(ids[2]) == 2  # handled again, by the second


def test_sigterm_finishes_the_batch_in_hand_then_stops(
    redis_client: redis.Redis, consumers: Callable[..., subprocess.Popen[bytes]]
) -> None:
    ids = add_entries(redis_client, 4)
    process = consumers("graceful", "--batch-size", "10", HANDLER_PAUSE="0.3")
    assert wait_for(lambda: listed(redis_client, STARTED), timeout=30)

    process.send_signal(signal.SIGTERM)

    assert process.wait(timeout=20) == 0
    assert listed(redis_client, HANDLED) == ids
    assert pending_count(redis_client) == 0
