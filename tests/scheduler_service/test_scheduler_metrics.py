"""The scheduler worker's metrics: the real worker counts the calls it fires and serves
them, with the Redis backlog, on SCHEDULER_WORKER_METRICS_BIND; the module's listener,
counters and backlog collector against a real Redis; the setting's checks."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from rq import Queue
from rq.serializers import JSONSerializer

from devstack.redis_server import free_port
from scheduler_service import metrics
from scheduler_service.execution import Recorded
from scheduler_service.models import FAILED, PENDING, SUCCEEDED
from scheduler_service.outbound import Outcome
from scheduler_service.queueing import hand_over
from scheduler_service.settings import METRICS_BIND, parse_bind
from servicekit.settings import SettingsError
from servicekit.users import user_stream
from tests.scheduler_service.scheduler_helpers import (
    TargetServer,
    WorkerProcess,
    instant,
    schedule,
    wait_for_status,
    wait_until,
)

Auth = Callable[..., dict[str, str]]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
STREAM = "flotilla:users-metrics-test"


def scrape(url: str) -> Samples:
    """The listener's page as Prometheus reads it: (series, labels) -> value."""
    with urllib.request.urlopen(url, timeout=5) as answer:
        assert answer.status == 200
        text = answer.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def outcome_counts(samples: Samples) -> dict[str, float | None]:
    names = ("fired", "succeeded", "retried", "failed", "lost")
    counts = {name: value(samples, f"scheduler_calls_{name}_total") for name in names}
    counts["late"] = value(samples, "scheduler_call_lateness_seconds_count")
    return counts


def differences(after: Samples, before: Samples) -> dict[str, float]:
    """How much each outcome count grew between two scrapes of one process."""
    now, then = outcome_counts(after), outcome_counts(before)
    return {name: (now[name] or 0.0) - (then[name] or 0.0) for name in now}


# -- the real worker ------------------------------------------------------------------------


@pytest.mark.parametrize("app_config", [{"SCHEDULER_MAX_ATTEMPTS": 3}], indirect=True)
def test_the_worker_serves_its_call_counts_lateness_and_the_backlog(
    client: FlaskClient,
    auth: Auth,
    target: tuple[TargetServer, str],
    start_worker: Callable[..., WorkerProcess],
    redis_client: redis.Redis,
) -> None:
    server, url = target
    port = free_port()
    start_worker(SCHEDULER_WORKER_METRICS_BIND=f"127.0.0.1:{port}", USER_EVENTS_STREAM=STREAM)
    page = f"http://127.0.0.1:{port}/metrics"
    assert outcome_counts(scrape(page)) == dict.fromkeys(outcome_counts({}), 0.0)

    server.answers = [(500, [], b"boom")] * 3  # every attempt of the first call fails
    (failing,) = schedule(client, auth, [instant(1)], url=f"{url}/fail")
    wait_for_status(client, auth, failing["id"], {"Failed"}, timeout=30)
    (succeeding,) = schedule(client, auth, [instant(0.5)], url=f"{url}/ok")
    wait_for_status(client, auth, succeeding["id"], {"Succeeded"})
    schedule(client, auth, [instant(3600)], url=f"{url}/later")  # waits in RQ's registry
    Queue("tickets", connection=redis_client, serializer=JSONSerializer).enqueue(
        "tickets_service.notifications.no_worker_runs_this"
    )
    redis_client.xadd(STREAM, {"type": "user.created"})
    redis_client.xgroup_create(STREAM, "events", id="0")

    expected = {"fired": 4, "succeeded": 1, "retried": 2, "failed": 1, "lost": 0, "late": 4}
    # Counted just after the outcome is stored: the status can be seen a moment before.
    samples = wait_until(
        lambda: (lambda s: s if outcome_counts(s) == expected else None)(scrape(page)), 10, 0.1
    ) or scrape(page)
    assert outcome_counts(samples) == expected
    assert value(samples, "rq_queue_jobs", queue="scheduler", state="scheduled") == 1
    assert value(samples, "rq_queue_jobs", queue="scheduler", state="queued") == 0
    assert value(samples, "rq_queue_jobs", queue="tickets", state="queued") == 1
    assert value(samples, "redis_stream_group_lag", stream=STREAM, group="events") == 1
    assert value(samples, "scheduler_worker_backlog_read") == 1


def test_the_worker_opens_no_listener_without_the_setting(
    start_worker: Callable[..., WorkerProcess],
) -> None:
    port = free_port()
    start_worker()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


# -- the module against a real Redis --------------------------------------------------------


@pytest.fixture
def listener(redis_client: redis.Redis) -> Iterator[str]:
    """The module's listener in this process, on a free port: its /metrics URL."""
    server = metrics.serve_metrics(redis_client, "127.0.0.1:0")
    assert server is not None
    yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    server.shutdown()
    server.server_close()


def test_outcomes_are_counted_by_what_became_of_each_attempt(listener: str) -> None:
    before = scrape(listener)
    answered = Outcome(started_at=0.0, duration_ms=1.0, status_code=200)
    metrics.count_recorded(
        [
            Recorded(1, 1, answered, SUCCEEDED, None),
            Recorded(2, 1, answered, PENDING, datetime.now(UTC)),
            Recorded(3, 3, answered, FAILED, None),
            Recorded(4, 1, answered, SUCCEEDED, None, stale=True),
        ]
    )
    metrics.count_recovered(
        [
            Recorded(5, 1, answered, PENDING, datetime.now(UTC)),
            Recorded(6, 2, answered, FAILED, None),
        ]
    )
    due = datetime.now(UTC)
    metrics.observe_lateness(due, (due + timedelta(seconds=0.3)).timestamp())
    metrics.observe_lateness(due, (due - timedelta(seconds=0.01)).timestamp())  # early: 0
    after = scrape(listener)

    expected = {"fired": 4, "succeeded": 1, "retried": 2, "failed": 2, "lost": 2, "late": 2}
    assert differences(after, before) == expected
    stale = (value(after, "scheduler_stale_answers_total") or 0) - (
        value(before, "scheduler_stale_answers_total") or 0
    )
    assert stale == 1
    lateness = (value(after, "scheduler_call_lateness_seconds_sum") or 0) - (
        value(before, "scheduler_call_lateness_seconds_sum") or 0
    )
    assert lateness == pytest.approx(0.3, abs=0.01)


def test_the_backlog_is_read_from_redis_on_each_scrape(
    listener: str, redis_client: redis.Redis
) -> None:
    stream = user_stream()
    assert value(scrape(listener), "rq_queue_jobs", queue="datapoints", state="queued") == 0

    documents = Queue("datapoints", connection=redis_client, serializer=JSONSerializer)
    documents.enqueue("datapoints_service.documents.jobs.no_worker_runs_this")
    documents.enqueue("datapoints_service.documents.jobs.no_worker_runs_this")
    hand_over(
        redis_client,
        [(41, datetime.now(UTC) + timedelta(hours=1))],
        now=datetime.now(UTC),
        lead=2,
        job_timeout=60,
    )
    for number in range(3):
        redis_client.xadd(stream, {"type": "user.created", "n": str(number)})
    redis_client.xgroup_create(stream, "tickets", id="0")
    redis_client.xreadgroup("tickets", "consumer-1", {stream: ">"}, count=2)
    redis_client.xadd(metrics.dead_letter_stream(stream, "tickets"), {"error": "boom"})

    samples = scrape(listener)
    assert value(samples, "rq_queue_jobs", queue="datapoints", state="queued") == 2
    assert value(samples, "rq_queue_jobs", queue="scheduler", state="scheduled") == 1
    assert value(samples, "rq_queue_jobs", queue="tickets", state="queued") == 0
    group = {"stream": stream, "group": "tickets"}
    assert value(samples, "redis_stream_group_lag", **group) == 1
    assert value(samples, "redis_stream_group_pending", **group) == 2
    assert value(samples, "redis_stream_dead_letters", **group) == 1
    assert value(samples, "scheduler_worker_backlog_read") == 1


def test_a_scrape_while_redis_is_down_says_so_instead_of_failing() -> None:
    port = free_port()  # nothing listens there: connections are refused
    unreachable = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1)
    registry = CollectorRegistry()
    registry.register(metrics.BacklogCollector(unreachable))
    samples = {
        sample.name: sample.value for family in registry.collect() for sample in family.samples
    }
    assert samples == {"scheduler_worker_backlog_read": 0.0}


@pytest.mark.parametrize(
    ("bind", "expected"),
    [
        ("127.0.0.1:9108", ("127.0.0.1", 9108)),
        (":9108", ("0.0.0.0", 9108)),
        ("[::1]:9108", ("::1", 9108)),
        (" 0.0.0.0:9108 ", ("0.0.0.0", 9108)),
    ],
)
def test_the_bind_setting_reads_host_and_port(bind: str, expected: tuple[str, int]) -> None:
    assert parse_bind(bind) == expected


@pytest.mark.parametrize("bind", ["9108", "localhost", "localhost:", "host:http", "host:70000"])
def test_a_malformed_bind_is_refused_naming_the_setting(bind: str) -> None:
    with pytest.raises(ValueError, match=METRICS_BIND):
        parse_bind(bind)


def test_no_listener_when_the_setting_is_empty(redis_client: redis.Redis) -> None:
    assert metrics.serve_metrics(redis_client, "") is None
    assert metrics.serve_metrics(redis_client, "  ") is None


def test_a_malformed_metrics_address_stops_the_start(make_app: Callable[..., Flask]) -> None:
    with pytest.raises(SettingsError, match="SCHEDULER_WORKER_METRICS_BIND: must be host:port"):
        make_app(SCHEDULER_WORKER_METRICS_BIND="9108")
