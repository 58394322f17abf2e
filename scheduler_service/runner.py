"""One worker process's means to run calls: the clock, connections, the outcome log.

`CallRunner` glues execution.py (the database), outbound.py (the HTTP call) and
queueing.py (RQ) together; the dispatcher in worker.py decides when to use it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from flask import Flask
from redis import Redis
from redis.exceptions import RedisError

from scheduler_service import metrics
from scheduler_service.calllog import CallLog
from scheduler_service.clock import RedisClock
from scheduler_service.execution import (
    ClaimedCall,
    Recorded,
    claim_due,
    pending_page,
    record_outcomes,
    recover_lost,
)
from scheduler_service.outbound import ConnectionPools, Outcome, perform
from scheduler_service.queueing import hand_over, known_calls
from scheduler_service.settings import SchedulerSettings
from scheduler_service.timestamps import from_seconds

log = logging.getLogger("flotilla.scheduler.worker")

RECONCILE_PAGE = 500


class CallRunner:
    """Claims, fires and records calls, and reconciles the database with Redis."""

    def __init__(
        self, app: Flask, settings: SchedulerSettings, connection: Redis, worker: str
    ) -> None:
        self.app = app  # for its database session
        self.settings = settings
        self.connection = connection
        self.worker = worker
        self.clock = RedisClock(connection)
        self.pools = ConnectionPools(settings.worker_threads)
        self.call_log = CallLog(settings.call_log)

    def now(self) -> datetime:
        return from_seconds(self.clock.now())

    def claim(self, call_ids: Sequence[int]) -> list[ClaimedCall]:
        with self.app.app_context():
            return claim_due(call_ids, self.now(), self.worker, self.settings.lease_seconds)

    def fire(self, claimed: ClaimedCall) -> Outcome:
        outcome = perform(
            claimed.request, self.settings.target_policy, self.pools, self.clock.now()
        )
        if claimed.due_at is not None:
            metrics.observe_lateness(claimed.due_at, outcome.started_at)
        return outcome

    def record(self, results: Sequence[tuple[ClaimedCall, Outcome]]) -> list[Recorded]:
        with self.app.app_context():
            recorded = record_outcomes(
                results, now=self.now(), worker=self.worker, settings=self.settings
            )
        metrics.count_recorded(recorded)
        self._announce(recorded)
        return recorded

    def recover_lost(self) -> list[Recorded]:
        with self.app.app_context():
            recovered = recover_lost(self.now())
        metrics.count_recovered(recovered)
        self._announce(recovered)
        return recovered

    def hand_over(self, calls: Sequence[tuple[int, datetime]]) -> None:
        hand_over(
            self.connection,
            calls,
            now=self.now(),
            lead=self.settings.handoff_lead,
            job_timeout=self.settings.job_timeout,
        )

    def enqueue_missing(self, due_before: datetime | None) -> int:
        """Hand over every Pending call (due before an instant, or all) RQ does not know."""
        after_id, handed = 0, 0
        while True:
            with self.app.app_context():
                page = pending_page(after_id, RECONCILE_PAGE, due_before)
            if not page:
                return handed
            after_id = page[-1][0]
            known = known_calls(self.connection, [call_id for call_id, _due in page])
            missing = [(call_id, due) for call_id, due in page if call_id not in known]
            if missing:
                self.hand_over(missing)
                handed += len(missing)

    def _announce(self, recorded: Sequence[Recorded]) -> None:
        """The outcome lines, then the retries handed back to RQ."""
        for item in recorded:
            try:
                self.call_log.write(item.call_id, item.attempt, item.outcome, item.status)
            except OSError:
                log.exception("could not append to the call log", extra={"call_id": item.call_id})
            if item.stale:
                log.warning(
                    "answer arrived after the call was recovered",
                    extra={"call_id": item.call_id, "attempt": item.attempt},
                )
        retries = [(item.call_id, item.retry_at) for item in recorded if item.retry_at]
        if not retries:
            return
        try:
            self.hand_over(retries)
        except RedisError:  # the reconciler hands them over once Redis answers again
            log.exception("could not hand retries to RQ", extra={"calls": len(retries)})

    def close(self) -> None:
        self.pools.close()
        self.call_log.close()
