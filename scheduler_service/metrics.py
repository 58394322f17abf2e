"""The scheduler worker's Prometheus metrics, served on a listener of its own.

The worker serves no HTTP, so with `SCHEDULER_WORKER_METRICS_BIND=host:port` it answers
`GET /metrics` there (prometheus_client's `start_http_server`); unset or empty, nothing
listens. In a pod the bind is `0.0.0.0:9108`; on a shared host `127.0.0.1:9108`.

What it exports:

- the calls' outcomes, counted when the worker records them: attempts fired, calls that
  succeeded, attempts retried, calls that failed for good, attempts lost with their
  worker, and answers that came after the call had been recovered (stale);
- lateness: from the instant an attempt was due to the moment the worker sent it;
- the Redis backlog, read on each scrape (no polling thread): the length of each RQ queue
  of the suite and the size of its scheduled and failed registries; for each consumer
  group of the user lifecycle stream, its lag, its unacknowledged entries and the entries
  it parked. Every worker replica reports the same backlog: aggregate it with `max`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue

from scheduler_service.execution import Recorded
from scheduler_service.models import FAILED, PENDING, SUCCEEDED
from scheduler_service.settings import parse_bind
from servicekit.users import user_stream

log = logging.getLogger("flotilla.scheduler.metrics")


# The suite's RQ queues: scheduler_service.queueing, tickets_service.notifications (mail),
# datapoints_service.documents.jobs (document imports). Named here, not imported: the
# scheduler does not load the other services' packages.
RQ_QUEUES = ("scheduler", "tickets", "datapoints")
# Redis 6.2 reports no consumer group lag: it is counted, this far at most.
LAG_COUNT_LIMIT = 1000

FIRED = Counter("scheduler_calls_fired_total", "Attempts the worker sent to their target")
SUCCEEDED_CALLS = Counter(
    "scheduler_calls_succeeded_total", "Calls that ended with a 2xx answer from their target"
)
RETRIED = Counter(
    "scheduler_calls_retried_total",
    "Failed attempts (an error, a timeout, a 5xx or 429, or lost with their worker) "
    "that will be tried again after a backoff",
)
FAILED_CALLS = Counter(
    "scheduler_calls_failed_total",
    "Calls that failed for good: the last attempt failed, or the failure cannot pass",
)
LOST = Counter(
    "scheduler_calls_lost_total",
    "Attempts whose worker stopped during the call, found by the reconciler",
)
STALE = Counter(
    "scheduler_stale_answers_total",
    "Answers that came after their call had been recovered: they changed nothing",
)
LATENESS = Histogram(
    "scheduler_call_lateness_seconds",
    "From the instant an attempt was due to the moment the worker sent it",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800),
)

_OUTCOME_COUNTERS = {SUCCEEDED: SUCCEEDED_CALLS, PENDING: RETRIED, FAILED: FAILED_CALLS}


def count_recorded(recorded: Sequence[Recorded]) -> None:
    """Outcomes of attempts the worker fired and recorded (`CallRunner.record`)."""
    for item in recorded:
        FIRED.inc()
        if item.stale:
            STALE.inc()
        else:
            _OUTCOME_COUNTERS[item.status].inc()


def count_recovered(recovered: Sequence[Recorded]) -> None:
    """Attempts lost with their worker (`CallRunner.recover_lost`): retried or failed."""
    for item in recovered:
        LOST.inc()
        _OUTCOME_COUNTERS[item.status].inc()


def observe_lateness(due: datetime, sent_at: float) -> None:
    """An attempt due at `due` was sent at `sent_at` (seconds since the epoch, Redis's clock);
    a negative difference (clocks a hair apart) counts as on time."""
    LATENESS.observe(max(0.0, sent_at - due.timestamp()))


class BacklogCollector(Collector):
    """The Redis backlog, read on each scrape in three or four round trips (pipelined)."""

    def __init__(
        self, connection: Redis, queues: Sequence[str] = RQ_QUEUES, stream: str | None = None
    ) -> None:
        self.connection = connection
        self.queues = tuple(queues)
        self.stream = stream or user_stream()

    def collect(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily(
            "rq_queue_jobs",
            "Jobs of an RQ queue: waiting in it (queued), waiting for their time "
            "(scheduled), or kept after they raised (failed)",
            labels=["queue", "state"],
        )
        lag = GaugeMetricFamily(
            "redis_stream_group_lag",
            "Entries of a stream its consumer group has not read yet",
            labels=["stream", "group"],
        )
        pending = GaugeMetricFamily(
            "redis_stream_group_pending",
            "Entries a consumer group has read but not acknowledged",
            labels=["stream", "group"],
        )
        dead = GaugeMetricFamily(
            "redis_stream_dead_letters",
            "Entries a consumer group parked after repeated failures (its dead-letter stream)",
            labels=["stream", "group"],
        )
        try:
            for queue, state, count in self._queue_sizes():
                jobs.add_metric([queue, state], count)
            for name, group, parked in self._groups():
                pending.add_metric([self.stream, name], int(group["pending"]))
                dead.add_metric([self.stream, name], parked)
                unread = self._lag(group)
                if unread is not None:
                    lag.add_metric([self.stream, name], unread)
            read = 1.0
        except RedisError:
            log.warning("could not read the backlog from Redis", exc_info=True)
            read = 0.0
        yield from (jobs, lag, pending, dead)
        yield GaugeMetricFamily(
            "scheduler_worker_backlog_read",
            "1 when this scrape read the backlog from Redis, 0 when Redis did not answer",
            value=read,
        )

    def _queue_sizes(self) -> list[tuple[str, str, int]]:
        keys: list[tuple[str, str]] = []
        with self.connection.pipeline(transaction=False) as pipe:
            for name in self.queues:
                queue = Queue(name, connection=self.connection)
                pipe.llen(queue.key)
                pipe.zcard(queue.scheduled_job_registry.key)
                pipe.zcard(queue.failed_job_registry.key)
                keys += [(name, "queued"), (name, "scheduled"), (name, "failed")]
            counts = pipe.execute()
        return [
            (name, state, int(count)) for (name, state), count in zip(keys, counts, strict=True)
        ]

    def _lag(self, group: dict[str, Any]) -> int | None:
        """Redis 7 tells a group's lag (None when it cannot: after some deletions and
        trims); Redis 6.2 does not, so the entries after the last delivered are counted,
        up to LAG_COUNT_LIMIT."""
        if "lag" in group:
            return None if group["lag"] is None else int(group["lag"])
        after = "(" + _text(group["last-delivered-id"])
        return len(self.connection.xrange(self.stream, after, "+", count=LAG_COUNT_LIMIT) or [])

    def _groups(self) -> list[tuple[str, dict[str, Any], int]]:
        """Each consumer group of the stream: (name, XINFO GROUPS fields, parked entries)."""
        if not self.connection.exists(self.stream):
            return []
        groups = list(self.connection.xinfo_groups(self.stream))
        names = [_text(group["name"]) for group in groups]
        with self.connection.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.xlen(dead_letter_stream(self.stream, name))
            parked = pipe.execute()
        return [
            (name, group, int(count))
            for name, group, count in zip(names, groups, parked, strict=True)
        ]


def dead_letter_stream(stream: str, group: str) -> str:
    """Where servicekit.streams parks a group's failing entries."""
    return f"{stream}:dead:{group}"


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


_backlog_lock = threading.Lock()
_backlog: BacklogCollector | None = None


def serve_metrics(connection: Redis, bind: str) -> WSGIServer | None:
    """Start the metrics listener on `bind` (`SCHEDULER_WORKER_METRICS_BIND`), with the
    backlog read through `connection`; the listening server, or None when it is off."""
    if not bind.strip():
        return None
    host, port = parse_bind(bind)
    _register_backlog(connection)
    server, _thread = start_http_server(port, addr=host)
    log.info("metrics listener started", extra={"bind": f"{host}:{server.server_address[1]}"})
    return server


def _register_backlog(connection: Redis) -> None:
    """One backlog collector per process; a later listener's connection replaces the first."""
    global _backlog
    with _backlog_lock:
        if _backlog is None:
            _backlog = BacklogCollector(connection)
            REGISTRY.register(_backlog)
        else:
            _backlog.connection = connection
