"""scheduler_service's domain logic: scheduling, listing, cancelling and rescheduling calls.

Errors are the exceptions below; api.py turns them into HTTP answers. Every write is one
transaction; the RQ hand-over comes after the commit and may fail without losing anything
(the worker's reconciler hands over every Pending call RQ does not know).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from redis.exceptions import RedisError
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import selectinload

from scheduler_service.clock import redis_now
from scheduler_service.models import CANCELLED, PENDING, ScheduledCall, db
from scheduler_service.options import Options, current_options
from scheduler_service.outbound import UnsafeTarget, check_url
from scheduler_service.queueing import forget, hand_over
from scheduler_service.timestamps import InvalidTimestamp, parse_instant, render
from servicekit.app import redis_client
from servicekit.identity import Identity

log = logging.getLogger("flotilla.scheduler")

MAX_REPORTED_PROBLEMS = 20
INSERT_CHUNK = 1000
MAX_ID = 2**31 - 1  # the id column is a 32-bit integer
calls_table = ScheduledCall.__table__


class SchedulerError(Exception):
    """A request scheduler_service refuses; the subclass says why."""


class NoTimestamps(SchedulerError):
    pass


class InvalidTimestamps(SchedulerError):
    """Some values are not instants, or are out of bounds: `problems` names each of them."""

    def __init__(self, message: str, problems: dict[str, str]) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems


class InvalidTarget(SchedulerError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CallNotFound(SchedulerError):
    pass


class CallNotPending(SchedulerError):
    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


@dataclass(frozen=True)
class Target:
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


@dataclass(frozen=True)
class CallPage:
    count: int
    calls: list[ScheduledCall]


# Scheduling


def now() -> datetime:
    """Redis's clock: the one the workers fire by."""
    return redis_now(redis_client())


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


def parse_timestamps(values: Sequence[Any], options: Options) -> list[datetime]:
    if not values:
        raise NoTimestamps()
    if len(values) > options.max_timestamps:
        raise InvalidTimestamps(
            f"at most {options.max_timestamps} timestamps per request, got {len(values)}",
            {"timestamps": f"at most {options.max_timestamps} values"},
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
    instants: Sequence[datetime], current: datetime, options: Options, name: str = "timestamps"
) -> list[int]:
    """Indexes of the instants still to come (the past is ignored); horizon enforced."""
    horizon = current + timedelta(seconds=options.max_horizon)
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


def checked_target(target: Target, options: Options) -> Target:
    """The default URL when none is given; a given one must be callable (SSRF guard)."""
    if target.url is None:
        return Target(options.default_url, target.method, target.headers, target.body)
    try:
        check_url(target.url, options.allowed_hosts)
    except UnsafeTarget as exc:
        raise InvalidTarget(str(exc)) from exc
    return target


def schedule_calls(owner: str, raw_timestamps: Any, target: Target) -> list[dict[str, Any]]:
    """Create one Pending call per upcoming timestamp; the document's 201 body."""
    options = current_options()
    instants = parse_timestamps(split_timestamps(raw_timestamps), options)
    target = checked_target(target, options)
    current = now()
    kept = [instants[index] for index in upcoming(instants, current, options)]
    ids = _insert_calls(owner, kept, target, options, current)
    db.session.commit()
    created = list(zip(ids, kept, strict=True))
    _hand_over(created, current, fresh=True)
    return [{"id": i, "timestamp": render(t), "status": PENDING} for i, t in created]


def _insert_calls(
    owner: str,
    instants: Sequence[datetime],
    target: Target,
    options: Options,
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
                "max_attempts": options.max_attempts,
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


def _hand_over(calls: list[tuple[int, datetime]], current: datetime, *, fresh: bool) -> None:
    if not calls:
        return
    options = current_options()
    try:
        hand_over(
            redis_client(),
            calls,
            now=current,
            lead=options.handoff_lead,
            job_timeout=int(options.handoff_lead + options.total_timeout + 60),
            fresh=fresh,
        )
    except RedisError:
        log.exception("could not hand calls to RQ (the reconciler will)", extra={"n": len(calls)})


# Reading


def visible_call(caller: Identity, call_id: int, *, with_history: bool = False) -> ScheduledCall:
    """The call if the caller owns it or is staff; otherwise, as if it did not exist."""
    if not 0 < call_id <= MAX_ID:
        raise CallNotFound(call_id)
    query = select(ScheduledCall).where(ScheduledCall.id == call_id)
    if with_history:
        query = query.options(selectinload(ScheduledCall.history))
    call = db.session.scalar(query)
    if call is None or not (caller.is_staff or call.owner == caller.subject):
        raise CallNotFound(call_id)
    return call


def list_calls(caller: Identity, filters: CallFilters, page: int, page_size: int) -> CallPage:
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
    count = db.session.scalar(select(func.count()).select_from(ScheduledCall).where(*conditions))
    column = ScheduledCall.id if filters.ordering.lstrip("-") == "id" else ScheduledCall.timestamp
    order = [column.desc(), ScheduledCall.id.desc()]
    if not filters.ordering.startswith("-"):
        order = [column.asc(), ScheduledCall.id.asc()]
    query = (
        select(ScheduledCall)
        .where(*conditions)
        .order_by(*order)
        .limit(page_size)
        .offset((page - 1) * page_size)
    )
    return CallPage(int(count or 0), list(db.session.scalars(query)))


# Changing


def cancel_call(caller: Identity, call_id: int) -> ScheduledCall:
    """Pending -> Cancelled (compare-and-set); cancelling twice is harmless; 409 once it ran."""
    call = visible_call(caller, call_id)
    current = now()
    changed = db.session.execute(
        update(calls_table)
        .where(calls_table.c.id == call_id, calls_table.c.status == PENDING)
        .values(status=CANCELLED, finished_at=current, updated_at=current)
    ).rowcount
    db.session.commit()
    db.session.refresh(call)
    if changed != 1 and call.status != CANCELLED:
        raise CallNotPending(call.status)
    if changed == 1:
        try:
            forget(redis_client(), [call_id])
        except RedisError:
            log.warning("could not drop the job of a cancelled call", extra={"call_id": call_id})
    return call


def reschedule_call(caller: Identity, call_id: int, raw_timestamp: Any) -> ScheduledCall:
    """A Pending call's new instant (compare-and-set); 409 once it ran or was cancelled."""
    options = current_options()
    call = visible_call(caller, call_id)
    instant = _parse_one(raw_timestamp)
    current = now()
    if instant <= current:
        raise InvalidTimestamps(
            "timestamp is in the past", {"timestamp": f"{render(instant)} is in the past"}
        )
    upcoming([instant], current, options, name="timestamp")
    changed = db.session.execute(
        update(calls_table)
        .where(calls_table.c.id == call_id, calls_table.c.status == PENDING)
        .values(timestamp=instant, next_attempt_at=instant, updated_at=current)
    ).rowcount
    db.session.commit()
    db.session.refresh(call)
    if changed != 1:
        raise CallNotPending(call.status)
    _hand_over([(call_id, instant)], current, fresh=False)
    return call


def _parse_one(value: Any) -> datetime:
    try:
        return parse_instant(value)
    except InvalidTimestamp as exc:
        raise InvalidTimestamps(
            f"invalid timestamp: {_shown(value)} {exc}", {"timestamp": f"{_shown(value)} {exc}"}
        ) from exc


def page_links(
    path: str, query: dict[str, Any], page: int, page_size: int, count: int
) -> tuple[str | None, str | None]:
    """Relative `next` and `previous` links of a page, keeping the filters."""

    def link(number: int) -> str:
        return f"{path}?{urlencode({**query, 'page': number, 'page_size': page_size})}"

    last = max(1, -(-count // page_size))
    return (link(page + 1) if page < last else None, link(page - 1) if page > 1 else None)
