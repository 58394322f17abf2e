"""Handing calls to RQ, and telling which calls RQ (or a worker) still knows about.

The RQ job id is the call id, so a call has at most one job: handing it over again
replaces the job instead of adding one. A job reaches the queue `handoff_lead` seconds
before the call is due (RQ's scheduler keeps whole seconds and polls once a second); the
worker then holds it and fires at the exact instant. While a worker holds a call, the key
`scheduler:hold:<id>` names that worker (with a TTL that runs out shortly after the call's
instant), and the worker renews `scheduler:alive:<worker>` every few seconds. A hold
counts only while its worker is alive: when a worker dies, the reconciler sees no job and
no living holder, and hands the call over again.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import TypeVar

from redis import Redis
from rq import Queue
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from scheduler_service.timestamps import to_micros

QUEUE_NAME = "scheduler"
JOB_FUNCTION = "scheduler_service.jobs.dispatch_call"
HOLD_PREFIX = "scheduler:hold:"
ALIVE_PREFIX = "scheduler:alive:"
RECONCILE_LOCK = "scheduler:reconcile-lock"
PIPELINE_CHUNK = 1000
# A job that raised is kept a day for inspection; a finished one is deleted at once.
FAILURE_TTL = 24 * 3600
LIVE_JOB_STATUSES = frozenset(
    status.value.encode()
    for status in (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.STARTED, JobStatus.DEFERRED)
)

T = TypeVar("T")


def job_id(call_id: int) -> str:
    return str(call_id)


def rq_queue(connection: Redis) -> Queue:
    return Queue(QUEUE_NAME, connection=connection, serializer=JSONSerializer)


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def hand_over(
    connection: Redis,
    calls: Iterable[tuple[int, datetime]],
    *,
    now: datetime,
    lead: float,
    job_timeout: int,
    fresh: bool = False,
) -> None:
    """Give each `(call id, due instant)` to RQ: scheduled at `due - lead`, or queued now.

    `fresh` calls were just created: no earlier job of theirs can exist, so the cleanup of
    a previous job (its hash, its queue or registry entry) is skipped.
    """
    queue = rq_queue(connection)
    registry = queue.scheduled_job_registry
    for chunk in chunked(calls, PIPELINE_CHUNK):
        with connection.pipeline() as pipe:
            pipe.multi()
            for call_id, due in chunk:
                job = queue.create_job(
                    JOB_FUNCTION,
                    args=(call_id, to_micros(due)),
                    job_id=job_id(call_id),
                    result_ttl=0,
                    failure_ttl=FAILURE_TTL,
                    timeout=job_timeout,
                    description=f"call {call_id}",
                )
                handoff = due - timedelta(seconds=lead)
                if not fresh:
                    pipe.delete(job.key)
                if handoff <= now:
                    if not fresh:
                        pipe.zrem(registry.key, job.id)
                    queue.enqueue_job(job, pipeline=pipe)
                else:
                    if not fresh:
                        pipe.lrem(queue.key, 0, job.id)
                    queue.schedule_job(job, handoff, pipeline=pipe)
            pipe.execute()


def forget(connection: Redis, call_ids: Sequence[int]) -> None:
    """Drop the jobs of calls that will not run (cancelled): tidiness, not correctness."""
    queue = rq_queue(connection)
    with connection.pipeline() as pipe:
        for call_id in call_ids:
            pipe.delete(Job.key_for(job_id(call_id)))
            pipe.zrem(queue.scheduled_job_registry.key, job_id(call_id))
            pipe.lrem(queue.key, 0, job_id(call_id))
            pipe.delete(HOLD_PREFIX + job_id(call_id))
        pipe.execute()


def mark_held(connection: Redis, call_id: int, worker: str, ttl_seconds: float) -> None:
    connection.set(HOLD_PREFIX + job_id(call_id), worker, px=max(1000, int(ttl_seconds * 1000)))


def release_holds(connection: Redis, call_ids: Sequence[int]) -> None:
    if call_ids:
        connection.delete(*(HOLD_PREFIX + job_id(call_id) for call_id in call_ids))


def mark_alive(connection: Redis, worker: str, ttl_seconds: float) -> None:
    connection.set(ALIVE_PREFIX + worker, "1", px=max(1000, int(ttl_seconds * 1000)))


def mark_gone(connection: Redis, worker: str) -> None:
    connection.delete(ALIVE_PREFIX + worker)


def known_calls(connection: Redis, call_ids: Sequence[int]) -> set[int]:
    """The calls that have a live job in RQ or are held by a living worker."""
    with connection.pipeline(transaction=False) as pipe:
        for call_id in call_ids:
            pipe.hget(Job.key_for(job_id(call_id)), "status")
            pipe.get(HOLD_PREFIX + job_id(call_id))
        answers = pipe.execute()
    statuses, holders = answers[0::2], answers[1::2]
    alive = _living(connection, {holder for holder in holders if holder})
    return {
        call_id
        for call_id, status, holder in zip(call_ids, statuses, holders, strict=True)
        if status in LIVE_JOB_STATUSES or (holder and holder in alive)
    }


def _living(connection: Redis, workers: set[bytes]) -> set[bytes]:
    if not workers:
        return set()
    names = sorted(workers)
    marks = connection.mget([ALIVE_PREFIX.encode() + name for name in names])
    return {name for name, mark in zip(names, marks, strict=True) if mark}


def take_reconcile_turn(connection: Redis, worker: str, seconds: float) -> bool:
    """One worker reconciles per interval; the others skip their turn."""
    return bool(connection.set(RECONCILE_LOCK, worker, nx=True, px=max(1000, int(seconds * 1000))))
