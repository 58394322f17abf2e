"""scheduler_service's domain logic: scheduling, listing, cancelling and rescheduling calls.

Refusals are the exceptions below; each carries its HTTP answer (servicekit.errors). The
settings and the Redis connection (RQ's, and the clock) are given by the caller. Every
write is one transaction; the RQ hand-over comes after the commit and may fail without
losing anything (the worker's reconciler hands over every Pending call RQ does not know).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import ColumnElement, false, func, insert, select, update
from sqlalchemy.orm import selectinload

from scheduler_service.clock import redis_now
from scheduler_service.models import (
    CANCELLED,
    PENDING,
    RUNNING,
    ScheduledCall,
    changed_rows,
    db,
)
from scheduler_service.outbound import UnsafeTarget, check_url
from scheduler_service.queueing import forget, hand_over
from scheduler_service.settings import SchedulerSettings
from scheduler_service.timestamps import InvalidTimestamp, parse_instant, render
from servicekit.errors import DomainError
from servicekit.identity import Identity
from servicekit.pagination import Page, Window, paginate

log = logging.getLogger("flotilla.scheduler")

MAX_REPORTED_PROBLEMS = 20
INSERT_CHUNK = 1000
MAX_ID = 2**31 - 1  # the id column is a 32-bit integer
calls_table = ScheduledCall.__table__
UNFINISHED = (PENDING, RUNNING)
OWNER_LOCKS = 0x5C4E  # the advisory-lock namespace of "one owner's new calls"


class NoTimestamps(DomainError):
    status, code, message = 400, "no_timestamps", "No timestamps provided"


class InvalidTimestamps(DomainError):
    """Some values are not instants, or are out of bounds: `errors` names each of them."""

    status, code = 400, "invalid_timestamps"

    def __init__(self, message: str, problems: dict[str, str]) -> None:
        super().__init__(message, errors=problems)


class TooManyPending(DomainError):
    """The new calls would take the caller past their cap on unfinished calls."""

    status, code = 422, "pending_limit"

    def __init__(self, cap: int, pending: int, asked: int) -> None:
        super().__init__(
            f"at most {cap} pending calls per user: {pending} are pending and this request"
            f" asks for {asked} more; wait for some to run, or cancel some",
            limit=cap,
            pending=pending,
        )


class InvalidTarget(DomainError):
    """A `url` the scheduler will not call: malformed, or an internal address."""

    status, code = 400, "invalid_target"

    def __init__(self, reason: str) -> None:
        super().__init__(f"url: {reason}", errors={"url": reason})


class CallNotFound(DomainError):
    """No such call, or another user's: the two are not told apart."""

    status, code, message = 404, "not_found", "no such call"


class CallNotPending(DomainError):
    """The call ran or was cancelled; the body says which status it has."""

    status, code = 409, "conflict"

    def __init__(self, call_status: str) -> None:
        message = f"the call is {call_status}: only a Pending call can be changed"
        super().__init__(message, status=call_status)


@dataclass(frozen=True)
class CallTarget:
    """The request a user schedules; without a URL, the call goes to the default one."""

    url: str | None = None
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None


@dataclass(frozen=True)
class CallFilters:
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    owner: str | None = None
    ordering: str = "timestamp"


# Scheduling


def split_timestamps(raw: Any) -> list[Any]:
    """The document's comma-separated string, or a JSON list, as a list of raw values."""
    if raw is None:
        return []
    if isinstance(raw, str):
        if not raw.strip():
            return []
        return [piece.strip() for piece in raw.split(",")]
    if isinstance(raw, list | tuple):
        return list(raw)
    return [raw]  # a number, an object: reported as a bad value


def parse_timestamps(values: Sequence[Any], settings: SchedulerSettings) -> list[datetime]:
    if not values:
        raise NoTimestamps()
    if len(values) > settings.max_timestamps:
        raise InvalidTimestamps(
            f"at most {settings.max_timestamps} timestamps per request, got {len(values)}",
            {"timestamps": f"at most {settings.max_timestamps} values"},
        )
    parsed: list[datetime] = []
    problems: dict[str, str] = {}
    for index, value in enumerate(values):
        try:
            parsed.append(parse_instant(value))
        except InvalidTimestamp as exc:
            problems[f"timestamps[{index}]"] = f"{_shown(value)} {exc}"
    if problems:
        raise InvalidTimestamps(_summary("invalid timestamps", problems), _bounded(problems))
    return parsed


def upcoming(
    instants: Sequence[datetime],
    current: datetime,
    settings: SchedulerSettings,
    name: str = "timestamps",
) -> list[int]:
    """Indexes of the instants still to come (the past is ignored); horizon enforced."""
    horizon = current + timedelta(seconds=settings.max_horizon)
    beyond = {
        _field(name, index): f"{render(instant)} is beyond the horizon ({render(horizon)})"
        for index, instant in enumerate(instants)
        if instant > horizon
    }
    if beyond:
        raise InvalidTimestamps(_summary("timestamps beyond the horizon", beyond), _bounded(beyond))
    return [index for index, instant in enumerate(instants) if instant > current]


def _field(name: str, index: int) -> str:
    return f"{name}[{index}]" if name == "timestamps" else name


def _shown(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else f"'{value[:80]}'"
    return text if len(text) <= 90 else text[:87] + "..."


def _summary(title: str, problems: dict[str, str]) -> str:
    shown = "; ".join(list(problems.values())[:3])
    more = len(problems) - 3
    return f"{title}: {shown}" + (f" (and {more} more)" if more > 0 else "")


def _bounded(problems: dict[str, str]) -> dict[str, str]:
    return dict(list(problems.items())[:MAX_REPORTED_PROBLEMS])


def checked_target(target: CallTarget, settings: SchedulerSettings) -> CallTarget:
    """The default URL when none is given; a given one must be callable (SSRF guard)."""
    if target.url is None:
        return dataclasses.replace(target, url=settings.default_url)
    try:
        check_url(target.url, settings.allowed_targets)
    except UnsafeTarget as exc:
        raise InvalidTarget(str(exc)) from exc
    return target


def schedule_calls(
    settings: SchedulerSettings,
    connection: Redis,
    caller: Identity,
    raw_timestamps: Any,
    target: CallTarget,
) -> list[dict[str, Any]]:
    """Create one Pending call per upcoming timestamp; the document's 201 body."""
    instants = parse_timestamps(split_timestamps(raw_timestamps), settings)
    target = checked_target(target, settings)
    current = redis_now(connection)
    kept = [instants[index] for index in upcoming(instants, current, settings)]
    check_pending_cap(caller.subject, len(kept), settings.pending_cap(caller.is_staff))
    ids = _insert_calls(caller.subject, kept, target, settings.max_attempts, current)
    db.session.commit()
    created = list(zip(ids, kept, strict=True))
    _hand_over(connection, settings, created, current, fresh=True)
    return [{"id": i, "timestamp": render(t), "status": PENDING} for i, t in created]


def check_pending_cap(owner: str, asked: int, cap: int | None) -> None:
    """TooManyPending when `asked` more calls would take `owner` past `cap`. The owner's
    writes are serialised first, so concurrent requests cannot both pass the count."""
    if cap is None or asked == 0:
        return
    _serialise_owner(owner)
    pending = db.session.scalar(
        select(func.count())
        .select_from(calls_table)
        .where(calls_table.c.owner == owner, calls_table.c.status.in_(UNFINISHED))
    )
    if (pending or 0) + asked > cap:
        raise TooManyPending(cap, pending or 0, asked)


def _serialise_owner(owner: str) -> None:
    """PostgreSQL: a transaction-scoped advisory lock per owner. SQLite: the database's
    write lock, taken now by a no-op UPDATE rather than at the first insert (until then
    another writer could commit between this count and these inserts)."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(select(func.pg_advisory_xact_lock(OWNER_LOCKS, func.hashtext(owner))))
        return
    db.session.execute(update(calls_table).where(false()).values(id=calls_table.c.id))


def _insert_calls(
    owner: str,
    instants: Sequence[datetime],
    target: CallTarget,
    max_attempts: int,
    created: datetime,
) -> list[int]:
    """One multi-row insert (per chunk) returning the ids in the order given."""
    ids: list[int] = []
    for start in range(0, len(instants), INSERT_CHUNK):
        rows = [
            {
                "owner": owner,
                "timestamp": instant,
                "next_attempt_at": instant,
                "status": PENDING,
                "url": target.url,
                "method": target.method,
                "headers": target.headers,
                "body": target.body,
                "attempts": 0,
                "max_attempts": max_attempts,
                "created_at": created,
                "updated_at": created,
            }
            for instant in instants[start : start + INSERT_CHUNK]
        ]
        result = db.session.execute(
            insert(calls_table).returning(calls_table.c.id, sort_by_parameter_order=True), rows
        )
        ids.extend(row.id for row in result)
    return ids


def _hand_over(
    connection: Redis,
    settings: SchedulerSettings,
    calls: list[tuple[int, datetime]],
    current: datetime,
    *,
    fresh: bool,
) -> None:
    if not calls:
        return
    try:
        hand_over(
            connection,
            calls,
            now=current,
            lead=settings.handoff_lead,
            job_timeout=settings.job_timeout,
            fresh=fresh,
        )
    except RedisError:
        log.exception("could not hand calls to RQ (the reconciler will)", extra={"n": len(calls)})


# Reading


def visible_call(caller: Identity, call_id: int, *, with_history: bool = False) -> ScheduledCall:
    """The call if the caller owns it or is staff; otherwise, as if it did not exist."""
    if not 0 < call_id <= MAX_ID:
        raise CallNotFound()
    query = select(ScheduledCall).where(ScheduledCall.id == call_id)
    if with_history:
        query = query.options(selectinload(ScheduledCall.history))
    call: ScheduledCall | None = db.session.scalar(query)
    if call is None or not (caller.is_staff or call.owner == caller.subject):
        raise CallNotFound()
    return call


def list_calls(caller: Identity, filters: CallFilters, window: Window) -> Page[ScheduledCall]:
    """One page of the calls the caller may see (all of them for staff), filtered."""
    statement = (
        select(ScheduledCall)
        .where(*_conditions(caller, filters))
        .order_by(*_order(filters.ordering))
    )
    return paginate(db.session, statement, window)


def _conditions(caller: Identity, filters: CallFilters) -> list[ColumnElement[bool]]:
    conditions = []
    if not caller.is_staff:
        conditions.append(ScheduledCall.owner == caller.subject)
    if filters.owner is not None:
        conditions.append(ScheduledCall.owner == filters.owner)
    if filters.status is not None:
        conditions.append(ScheduledCall.status == filters.status)
    if filters.since is not None:
        conditions.append(ScheduledCall.timestamp >= filters.since)
    if filters.until is not None:
        conditions.append(ScheduledCall.timestamp < filters.until)
    return conditions


def _order(ordering: str) -> list[ColumnElement[Any]]:
    """`timestamp`, `id`, or either descending (`-id`); the id breaks ties."""
    column = ScheduledCall.id if ordering.lstrip("-") == "id" else ScheduledCall.timestamp
    if ordering.startswith("-"):
        return [column.desc(), ScheduledCall.id.desc()]
    return [column.asc(), ScheduledCall.id.asc()]


# Changing


def cancel_call(connection: Redis, caller: Identity, call_id: int) -> ScheduledCall:
    """Pending -> Cancelled (compare-and-set); cancelling twice is harmless; 409 once it ran."""
    call = visible_call(caller, call_id)
    current = redis_now(connection)
    changed = changed_rows(
        update(calls_table)
        .where(calls_table.c.id == call_id, calls_table.c.status == PENDING)
        .values(status=CANCELLED, finished_at=current, updated_at=current)
    )
    db.session.commit()
    db.session.refresh(call)
    if changed != 1 and call.status != CANCELLED:
        raise CallNotPending(call.status)
    if changed == 1:
        try:
            forget(connection, [call_id])
        except RedisError:
            log.warning("could not drop the job of a cancelled call", extra={"call_id": call_id})
    return call


def reschedule_call(
    settings: SchedulerSettings,
    connection: Redis,
    caller: Identity,
    call_id: int,
    raw_timestamp: Any,
) -> ScheduledCall:
    """A Pending call's new instant (compare-and-set); 409 once it ran or was cancelled."""
    call = visible_call(caller, call_id)
    instant = _parse_one(raw_timestamp)
    current = redis_now(connection)
    if instant <= current:
        raise InvalidTimestamps(
            "timestamp is in the past", {"timestamp": f"{render(instant)} is in the past"}
        )
    upcoming([instant], current, settings, name="timestamp")
    changed = changed_rows(
        update(calls_table)
        .where(calls_table.c.id == call_id, calls_table.c.status == PENDING)
        .values(timestamp=instant, next_attempt_at=instant, updated_at=current)
    )
    db.session.commit()
    db.session.refresh(call)
    if changed != 1:
        raise CallNotPending(call.status)
    _hand_over(connection, settings, [(call_id, instant)], current, fresh=False)
    return call


def _parse_one(value: Any) -> datetime:
    try:
        return parse_instant(value)
    except InvalidTimestamp as exc:
        raise InvalidTimestamps(
            f"invalid timestamp: {_shown(value)} {exc}", {"timestamp": f"{_shown(value)} {exc}"}
        ) from exc
