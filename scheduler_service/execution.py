"""Running calls against the database: claim, record, recover. Every status change is a
compare-and-set (`UPDATE ... WHERE status = ...`, checking the rows it touched), so a
call is claimed by one worker at most, and a late answer cannot overwrite a newer state.

- claim: `Pending` and due -> `Running`, with a lease (owner, until) and the attempt
  counted; many calls due at one instant are claimed in one statement.
- record: `Running` (still ours, same attempt) -> `Succeeded` | `Failed` | `Pending`
  again for a retry after a backoff; the attempt goes into the history.
- recover: `Running` whose lease ran out (its worker died) -> `Pending` (or `Failed`
  after the last attempt), the lost attempt recorded.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert, select, update

from scheduler_service.models import (
    FAILED,
    PENDING,
    RUNNING,
    SUCCEEDED,
    CallAttempt,
    ScheduledCall,
    changed_rows,
    db,
)
from scheduler_service.outbound import (
    OutboundRequest,
    Outcome,
    UnsafeTarget,
    parse_destination,
)
from scheduler_service.queueing import chunked
from scheduler_service.settings import SchedulerSettings

CLAIM_CHUNK = 500
RECOVER_BATCH = 500
LOST_ERROR = "the worker stopped during the call"

calls = ScheduledCall.__table__
attempts = CallAttempt.__table__


@dataclass(frozen=True)
class ClaimedCall:
    id: int
    attempt: int
    max_attempts: int
    started_at: datetime
    request: OutboundRequest
    due_at: datetime | None = None  # the instant this attempt was due (for its lateness)


@dataclass(frozen=True)
class Recorded:
    """What became of one attempt: the call's new status, and when it runs again if it does."""

    call_id: int
    attempt: int
    outcome: Outcome
    status: str
    retry_at: datetime | None
    stale: bool = False  # the call was recovered meanwhile: this answer changed nothing


def claim_due(
    call_ids: Sequence[int], now: datetime, worker: str, lease_seconds: float
) -> list[ClaimedCall]:
    """Claim the calls among `call_ids` that are Pending and due at `now`."""
    lease_until = now + timedelta(seconds=lease_seconds)
    claimed: list[ClaimedCall] = []
    for chunk in chunked(call_ids, CLAIM_CHUNK):
        statement = (
            update(calls)
            .where(
                calls.c.id.in_(chunk),
                calls.c.status == PENDING,
                calls.c.next_attempt_at <= now,
            )
            .values(
                status=RUNNING,
                lease_owner=worker,
                started_at=now,
                lease_until=lease_until,
                attempts=calls.c.attempts + 1,
                updated_at=now,
            )
            .returning(
                calls.c.id,
                calls.c.attempts,
                calls.c.max_attempts,
                calls.c.url,
                calls.c.method,
                calls.c.headers,
                calls.c.body,
                calls.c.next_attempt_at,
            )
        )
        for row in db.session.execute(statement):
            request = OutboundRequest(
                row.id, row.url, row.method, dict(row.headers or {}), row.body
            )
            claimed.append(
                ClaimedCall(
                    row.id, row.attempts, row.max_attempts, now, request, row.next_attempt_at
                )
            )
    db.session.commit()
    return claimed


def retry_delay(attempt: int, outcome: Outcome, settings: SchedulerSettings) -> float:
    """Exponential backoff with jitter, and never sooner than the target's `Retry-After`."""
    backoff = min(settings.retry_max, settings.retry_base * 2 ** (attempt - 1))
    delay = random.uniform(backoff / 2, backoff)
    if outcome.retry_after is not None:
        delay = max(delay, min(outcome.retry_after, settings.retry_after_max))
    return delay


def decide(
    claimed: ClaimedCall, outcome: Outcome, now: datetime, settings: SchedulerSettings
) -> Recorded:
    if outcome.succeeded:
        return Recorded(claimed.id, claimed.attempt, outcome, SUCCEEDED, None)
    if outcome.retryable and claimed.attempt < claimed.max_attempts:
        retry_at = now + timedelta(seconds=retry_delay(claimed.attempt, outcome, settings))
        return Recorded(claimed.id, claimed.attempt, outcome, PENDING, retry_at)
    return Recorded(claimed.id, claimed.attempt, outcome, FAILED, None)


def record_outcomes(
    results: Sequence[tuple[ClaimedCall, Outcome]],
    *,
    now: datetime,
    worker: str,
    settings: SchedulerSettings,
) -> list[Recorded]:
    """Store a batch of attempts in one transaction; each status change is a CAS."""
    recorded: list[Recorded] = []
    history: list[dict[str, object]] = []
    for claimed, outcome in results:
        decision = decide(claimed, outcome, now, settings)
        changed = changed_rows(
            update(calls)
            .where(
                calls.c.id == claimed.id,
                calls.c.status == RUNNING,
                calls.c.lease_owner == worker,
                calls.c.attempts == claimed.attempt,
            )
            .values(_status_values(decision, now))
        )
        if changed != 1:
            recorded.append(_stale(decision))
            continue
        recorded.append(decision)
        history.append(_attempt_values(claimed.id, claimed.attempt, claimed.started_at, outcome))
    if history:
        db.session.execute(insert(attempts), history)
    db.session.commit()
    return recorded


def _stale(decision: Recorded) -> Recorded:
    return Recorded(
        decision.call_id, decision.attempt, decision.outcome, decision.status, None, stale=True
    )


def _status_values(decision: Recorded, now: datetime) -> dict[str, object]:
    outcome = decision.outcome
    values: dict[str, object] = {
        "status": decision.status,
        "lease_owner": None,
        "lease_until": None,
        "last_status_code": outcome.status_code,
        "last_error": outcome.error,
        "updated_at": now,
    }
    if decision.retry_at is not None:
        values["next_attempt_at"] = decision.retry_at
    else:
        values["finished_at"] = now
    return values


def _attempt_values(
    call_id: int, number: int, started_at: datetime, outcome: Outcome
) -> dict[str, object]:
    if outcome.succeeded:
        result = "succeeded"
    elif outcome.status_code is not None:
        result = "failed"
    else:
        result = "error"
    return {
        "call_id": call_id,
        "number": number,
        "started_at": started_at,
        "duration_ms": outcome.duration_ms,
        "status_code": outcome.status_code,
        "error": outcome.error,
        "outcome": result,
    }


def recover_lost(now: datetime) -> list[Recorded]:
    """Running calls whose lease ran out: their worker died. Pending again, or Failed."""
    rows = db.session.execute(
        select(calls.c.id, calls.c.attempts, calls.c.max_attempts, calls.c.started_at, calls.c.url)
        .where(calls.c.status == RUNNING, calls.c.lease_until < now)
        .order_by(calls.c.id)
        .limit(RECOVER_BATCH)
    ).all()
    recovered: list[Recorded] = []
    for row in rows:
        started_at = row.started_at or now
        outcome = Outcome(
            started_at=started_at.timestamp(),
            duration_ms=round((now - started_at).total_seconds() * 1000, 2),
            error=LOST_ERROR,
            host=_host_of(row.url),
        )
        final = row.attempts >= row.max_attempts
        decision = Recorded(
            row.id, row.attempts, outcome, FAILED if final else PENDING, None if final else now
        )
        changed = changed_rows(
            update(calls)
            .where(
                calls.c.id == row.id,
                calls.c.status == RUNNING,
                calls.c.attempts == row.attempts,
                calls.c.lease_until < now,
            )
            .values(_status_values(decision, now))
        )
        if changed == 1:
            db.session.execute(
                insert(attempts), [_attempt_values(row.id, row.attempts, started_at, outcome)]
            )
            recovered.append(decision)
    db.session.commit()
    return recovered


def _host_of(url: str) -> str:
    try:
        return parse_destination(url).host_header
    except UnsafeTarget:
        return url[:100]


def pending_page(
    after_id: int, limit: int, due_before: datetime | None
) -> list[tuple[int, datetime]]:
    """Pending calls by id (keyset pages), optionally only those due before an instant."""
    query = (
        select(calls.c.id, calls.c.next_attempt_at)
        .where(calls.c.status == PENDING, calls.c.id > after_id)
        .order_by(calls.c.id)
        .limit(limit)
    )
    if due_before is not None:
        query = query.where(calls.c.next_attempt_at <= due_before)
    return [(row.id, row.next_attempt_at) for row in db.session.execute(query)]
