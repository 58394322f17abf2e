"""Consuming a Redis Stream in a consumer group: at-least-once, reclaimed, parked.

A service reads a stream (the user lifecycle stream of `servicekit.users`) in a consumer
group of its own, named after the service; its replicas are the group's consumers and
share the entries.

- The group is created at the start of the stream (`0`, with MKSTREAM): a service that
  joins late handles every entry the stream still holds.
- Entries are read in batches (XREADGROUP, blocking at most `block` seconds) and each is
  acknowledged (XACK) once its handler has returned.
- An entry left unacknowledged for `claim_idle` seconds (its consumer died, or its
  handler raised) is claimed by a live consumer (XAUTOCLAIM) and handled again.
- After `max_deliveries` deliveries without success an entry is parked: copied, with
  the error, to the dead-letter stream `<stream>:dead:<group>`, and acknowledged.
- On SIGTERM or SIGINT a consumer finishes the batch in hand (acknowledging it) and stops.

The handler contract: `handler(entry)` returns when the entry is handled and raises when
it is not (it is retried, then parked). An entry may come more than once: redelivered
after a consumer died before its XACK, or published twice (the user stream publishes at
least once, with a stable `eventId`). So handlers are idempotent: an upsert, a delete of
what may be gone already, a check of the state they would set. A side effect that must
not repeat records the event id in the same database transaction as the effect (a
unique column), or is wrapped with `once_per_event`. Retries break the order of entries.

Run a consumer as a process: `python -m servicekit.streams MODULE:HANDLER --group NAME
[--app PACKAGE]` (see `main`); `--app` runs the handler in that service's app context.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import wraps
from typing import Any

from redis import Redis
from redis.exceptions import RedisError, ResponseError
from redis.typing import EncodableT, FieldT

from servicekit.config import ConfigError, env, load_environment
from servicekit.config import redis_url as checked_redis_url
from servicekit.observability import configure_logging
from servicekit.redis_connection import redis_from_url
from servicekit.users import user_stream

log = logging.getLogger(__name__)

DEAD_LETTER_MAXLEN = 10_000  # parked entries kept per group (approximately)
DEDUPE_TTL = 8 * 24 * 3600  # longer than the user stream keeps an entry (7 days by default)
FORGET_CONSUMERS_AFTER = 24 * 3600  # seconds a consumer without pending entries is kept
RETRY_PAUSE = 1.0  # seconds between attempts while Redis is unavailable


@dataclass(frozen=True)
class StreamEntry:
    stream: str
    id: str
    fields: dict[str, str]
    deliveries: int  # 1 the first time


Handler = Callable[[StreamEntry], None]


@dataclass(frozen=True)
class ConsumerOptions:
    batch_size: int = 50
    block: float = 2.0  # seconds an empty read waits: also how long a stop may take
    claim_idle: float = 60.0  # seconds before an unacknowledged entry is taken over
    max_deliveries: int = 5

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.max_deliveries < 1:
            raise ValueError("batch_size and max_deliveries must be at least 1")
        if self.block <= 0 or self.claim_idle <= 0:
            raise ValueError("block and claim_idle must be positive")


def default_consumer_name() -> str:
    """Unique per process: a restarted process is a new consumer, and the entries its
    predecessor held are reclaimed like those of any dead consumer."""
    return f"{socket.gethostname()}-{os.getpid()}"


class StreamConsumer:
    """One consumer of `group` on `stream`, calling `handler` for each entry."""

    def __init__(
        self,
        redis: Redis,
        stream: str,
        group: str,
        handler: Handler,
        *,
        consumer: str | None = None,
        options: ConsumerOptions | None = None,
    ) -> None:
        self.redis = redis
        self.stream = stream
        self.group = group
        self.handler = handler
        self.consumer = consumer or default_consumer_name()
        self.options = options or ConsumerOptions()
        self.dead_letters = f"{stream}:dead:{group}"
        self._claim_cursor = "0-0"
        socket_timeout = redis.connection_pool.connection_kwargs.get("socket_timeout")
        if socket_timeout is not None and socket_timeout <= self.options.block:
            raise ValueError("the Redis socket timeout must be longer than the blocking read")

    def ensure_group(self) -> None:
        """Create the group at the start of the stream (and the stream) unless it exists."""
        try:
            self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def run(self, stop: threading.Event) -> None:
        """Handle entries until `stop` is set; rides out Redis outages."""
        self._start(stop)
        while not stop.is_set():
            try:
                self.poll()
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                log.warning("consumer group missing: created again", extra=self.log_fields())
                self.ensure_group()
            except RedisError as exc:
                log.warning("Redis unavailable: %s", exc, extra=self.log_fields())
                stop.wait(RETRY_PAUSE)
        log.info("consumer stopped", extra=self.log_fields())

    def _start(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.ensure_group()
                self.forget_idle_consumers()
                return
            except RedisError as exc:
                log.warning("Redis unavailable at start: %s", exc, extra=self.log_fields())
                stop.wait(RETRY_PAUSE)

    def poll(self) -> int:
        """One round: handle the entries to reclaim, then new ones (waiting at most
        `block` seconds for them). Returns how many entries were acknowledged."""
        handled = self.handle(self.reclaim())
        return handled + self.handle(self.read_new())

    def read_new(self) -> list[StreamEntry]:
        response = self.redis.xreadgroup(
            self.group,
            self.consumer,
            {self.stream: ">"},
            count=self.options.batch_size,
            block=max(1, int(self.options.block * 1000)),
        )
        entries: list[StreamEntry] = []
        for _stream, stream_entries in _stream_results(response):
            for entry_id, fields in stream_entries:
                entries.append(StreamEntry(self.stream, _text(entry_id), _fields(fields), 1))
        return entries

    def reclaim(self) -> list[StreamEntry]:
        """Take over up to a batch of entries unacknowledged for `claim_idle` seconds."""
        cursor, claimed, *_deleted = self.redis.xautoclaim(
            self.stream,
            self.group,
            self.consumer,
            min_idle_time=int(self.options.claim_idle * 1000),
            start_id=self._claim_cursor,
            count=self.options.batch_size,
        )
        self._claim_cursor = _text(cursor)
        present = [(_text(i), f) for i, f in claimed if i is not None and f is not None]
        if len(present) < len(claimed):
            self._ack_trimmed()
        counts = self._delivery_counts([entry_id for entry_id, _ in present])
        return [
            StreamEntry(self.stream, entry_id, _fields(fields), counts.get(entry_id, 1))
            for entry_id, fields in present
        ]

    def _ack_trimmed(self) -> None:
        """Acknowledge this consumer's pending entries that the stream no longer holds
        (trimmed before they were handled: nothing is left to handle). Redis 7 drops
        them from the pending list itself; Redis 6.2 hands them out without their id."""
        pending = self.redis.xpending_range(
            self.stream, self.group, "-", "+", self.options.batch_size, consumername=self.consumer
        )
        ids = [_text(row["message_id"]) for row in pending]
        with self.redis.pipeline(transaction=False) as pipeline:
            for entry_id in ids:
                pipeline.xrange(self.stream, entry_id, entry_id)
            found = pipeline.execute()
        gone = [entry_id for entry_id, entries in zip(ids, found, strict=True) if not entries]
        if gone:
            log.warning("entries trimmed before handling", extra={**self.log_fields(), "ids": gone})
            self.redis.xack(self.stream, self.group, *gone)

    def _delivery_counts(self, ids: Sequence[str]) -> dict[str, int]:
        if not ids:
            return {}
        with self.redis.pipeline(transaction=False) as pipeline:
            for entry_id in ids:
                pipeline.xpending_range(self.stream, self.group, entry_id, entry_id, 1)
            results = pipeline.execute()
        return {
            _text(row["message_id"]): int(row["times_delivered"])
            for rows in results
            for row in rows
        }

    def handle(self, entries: Iterable[StreamEntry]) -> int:
        handled = 0
        for entry in entries:
            handled += self._handle_one(entry)
        return handled

    def _handle_one(self, entry: StreamEntry) -> int:
        limit = self.options.max_deliveries
        if entry.deliveries > limit:  # its consumers died while handling it, each time
            self._park(entry, f"not acknowledged after {entry.deliveries - 1} deliveries")
            return 0
        try:
            self.handler(entry)
        except Exception as exc:
            if entry.deliveries >= limit:
                self._park(entry, f"{type(exc).__name__}: {exc}")
            else:
                log.warning(
                    "handler failed: the entry will be retried",
                    exc_info=True,
                    extra={**self.log_fields(), "entry": entry.id, "deliveries": entry.deliveries},
                )
            return 0
        self.redis.xack(self.stream, self.group, entry.id)
        return 1

    def _park(self, entry: StreamEntry, reason: str) -> None:
        parked = entry_fields(
            {
                **entry.fields,
                "_entryId": entry.id,
                "_group": self.group,
                "_deliveries": str(entry.deliveries),
                "_error": reason[:1000],
            }
        )
        with self.redis.pipeline(transaction=True) as pipeline:
            pipeline.xadd(self.dead_letters, parked, maxlen=DEAD_LETTER_MAXLEN, approximate=True)
            pipeline.xack(self.stream, self.group, entry.id)
            pipeline.execute()
        log.error(
            "entry parked",
            extra={
                **self.log_fields(),
                "entry": entry.id,
                "reason": reason,
                "to": self.dead_letters,
            },
        )

    def forget_idle_consumers(self, idle: float = FORGET_CONSUMERS_AFTER) -> list[str]:
        """Remove the group's consumers that hold nothing and were idle `idle` seconds
        (the processes of earlier deployments); returns their names."""
        forgotten = []
        for info in self.redis.xinfo_consumers(self.stream, self.group):
            name = _text(info["name"])
            if name != self.consumer and info["pending"] == 0 and info["idle"] >= idle * 1000:
                self.redis.xgroup_delconsumer(self.stream, self.group, name)
                forgotten.append(name)
        return forgotten

    def log_fields(self) -> dict[str, str]:
        return {"stream": self.stream, "group": self.group, "consumer": self.consumer}


def once_per_event(
    redis: Redis, namespace: str, *, ttl: int = DEDUPE_TTL, id_field: str = "eventId"
) -> Callable[[Handler], Handler]:
    """Wrap a handler so an event it has handled is skipped when it comes again.

    The event id (the `id_field` of the entry) is remembered in Redis under
    `<namespace>:handled:<id>` for `ttl` seconds once the handler returned; entries
    without it are always handled. Two deliveries of one event handled at the same
    moment may both run the handler: this spares repeats, idempotence stays the
    handler's part. Use a namespace per consumer group.
    """

    def decorate(handler: Handler) -> Handler:
        @wraps(handler)
        def handle(entry: StreamEntry) -> None:
            event_id = entry.fields.get(id_field)
            key = f"{namespace}:handled:{event_id}"
            if event_id is not None and redis.exists(key):
                log.info("event handled already: skipped", extra={"event": event_id})
                return
            handler(entry)
            if event_id is not None:
                redis.set(key, "1", ex=ttl)

        return handle

    return decorate


def stop_on_signals(stop: threading.Event) -> None:
    """Set `stop` on SIGTERM and SIGINT (call from the main thread)."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda _signum, _frame: stop.set())


def _stream_results(response: Any) -> list[tuple[Any, list[Any]]]:
    """XREADGROUP's answer as (stream, entries) pairs, from RESP2 lists or RESP3 maps."""
    if not response:
        return []
    if isinstance(response, dict):
        return [(name, entries[0] if entries else []) for name, entries in response.items()]
    return [(name, entries) for name, entries in response]


def entry_fields(fields: Mapping[str, str]) -> dict[FieldT, EncodableT]:
    """Text fields as redis-py's XADD takes them."""
    return {key: value for key, value in fields.items()}


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _fields(fields: dict[Any, Any]) -> dict[str, str]:
    return {_text(key): _text(value) for key, value in fields.items()}


# The runner: python -m servicekit.streams


def load_handler(spec: str) -> Handler:
    """`package.module:function` -> that function."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"{spec!r}: expected MODULE:FUNCTION")
    handler = getattr(importlib.import_module(module_name), attribute)
    if not callable(handler):
        raise ValueError(f"{spec!r} is not callable")
    return handler  # type: ignore[no-any-return]


def in_app_context(package: str, handler: Handler) -> Handler:
    """Run `handler` in the app context of service `package` (its `create_app()`)."""
    app = importlib.import_module(package).create_app()

    @wraps(handler)
    def handle(entry: StreamEntry) -> None:
        with app.app_context():
            handler(entry)

    return handle


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m servicekit.streams",
        description="Consume a Redis Stream in a consumer group until SIGTERM or SIGINT.",
    )
    parser.add_argument("handler", help="MODULE:FUNCTION called with each StreamEntry")
    parser.add_argument("--group", required=True, help="the consumer group: the service's name")
    parser.add_argument("--stream", help="default: USER_EVENTS_STREAM (flotilla:users)")
    parser.add_argument("--app", help="a service package: handlers run in its app context")
    parser.add_argument("--consumer", help="this consumer's name (default: host-pid)")
    defaults = ConsumerOptions()
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--block", type=float, default=defaults.block, metavar="SECONDS")
    parser.add_argument("--claim-idle", type=float, default=defaults.claim_idle, metavar="SECONDS")
    parser.add_argument("--max-deliveries", type=int, default=defaults.max_deliveries)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one consumer (REDIS_URL) until SIGTERM or SIGINT."""
    arguments = parse_arguments(argv)
    load_environment()
    configure_logging(env("LOG_LEVEL", "INFO") or "INFO")
    try:
        url = checked_redis_url()
    except ConfigError as exc:
        raise SystemExit(str(exc)) from exc
    if not url:
        raise SystemExit("REDIS_URL is not set")
    redis_url = url
    try:
        options = ConsumerOptions(
            arguments.batch_size, arguments.block, arguments.claim_idle, arguments.max_deliveries
        )
        handler = load_handler(arguments.handler)
    except ValueError as exc:
        raise SystemExit(str(exc)) from exc
    if arguments.app:
        handler = in_app_context(arguments.app, handler)
    redis = redis_from_url(redis_url, socket_connect_timeout=2, socket_timeout=arguments.block + 5)
    consumer = StreamConsumer(
        redis,
        arguments.stream or user_stream(),
        arguments.group,
        handler,
        consumer=arguments.consumer,
        options=options,
    )
    stop = threading.Event()
    stop_on_signals(stop)
    log.info("consumer started", extra=consumer.log_fields())
    consumer.run(stop)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
