"""activity_service's domain logic: validate an upload, store it in bulk, read periods back.

Refusals are the exceptions below; each carries its HTTP answer (servicekit.errors).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import CursorResult, Row, Select, and_, delete, select
from sqlalchemy.exc import OperationalError

from activity_service.bulk_merge import MergeCounts, merge_upload
from activity_service.models import (
    MEMBER_ID_LENGTH,
    REAL_NAME_LENGTH,
    ActivityPeriod,
    Member,
    db,
)
from activity_service.settings import ActivitySettings
from activity_service.times import TimeFormatError, parse_wall_time, read_local_time, zone_named
from servicekit.errors import DomainError

MEMBER_ID_PATTERN = re.compile(rf"[A-Za-z0-9_.:@-]{{1,{MEMBER_ID_LENGTH}}}")
MEMBER_ID_RULE = f"1 to {MEMBER_ID_LENGTH} characters: letters, digits, '_', '.', ':', '@' or '-'"
TOP_LEVEL_KEYS = frozenset({"members", "ok"})  # "ok": a downloaded document uploads as is
MEMBER_KEYS = frozenset({"id", "real_name", "tz", "activity_periods"})
PERIOD_KEYS = frozenset({"start_time", "end_time"})
MAX_REPORTED = 100  # problems and warnings listed in one answer
STREAM_BATCH_ROWS = 2000
# (member id, real name, zone, period start, period end): a member without periods is
# one row with no times.
ActivityRow = Row[str, str, str, datetime | None, datetime | None]
STORE_ATTEMPTS = 3
TRANSIENT_SQLSTATES = frozenset({"40001", "40P01"})  # serialization failure, deadlock


class DatabaseBusy(DomainError):
    """The upload's transaction kept losing to concurrent ones; nothing was stored."""

    status, code = 503, "service_unavailable"
    message = "the database is busy with other uploads; nothing was stored, try again"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "1"}


class InvalidUpload(DomainError):
    """The upload breaks the rules; nothing of it was stored."""

    status, code, message = 400, "validation_error", "invalid upload; nothing was stored"

    def __init__(self, errors: dict[str, str], truncated: bool = False) -> None:
        extra: dict[str, Any] = {"errors": errors}
        if truncated:
            extra["errors_truncated"] = True
        super().__init__(None, **extra)
        self.errors = errors
        self.truncated = truncated


class InvalidQuery(DomainError):
    status, code, message = 400, "validation_error", "invalid input"


@dataclass
class MemberUpload:
    """One member of a valid upload: periods as UTC instants."""

    external_id: str
    real_name: str
    tz: str
    periods: list[tuple[datetime, datetime]] = field(default_factory=list)


@dataclass
class UploadResult:
    members_created: int = 0
    members_updated: int = 0
    periods_added: int = 0
    periods_duplicate: int = 0
    warnings: list[str] = field(default_factory=list)
    warnings_total: int = 0


# Validation: plain loops over the parsed JSON (a schema library costs too much per period).


class _Problems:
    """Problems and warnings by location, the first MAX_REPORTED of each kept."""

    def __init__(self) -> None:
        self.errors: dict[str, str] = {}
        self.error_count = 0
        self.warnings: list[str] = []
        self.warning_count = 0

    def error(self, location: str, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED:
            self.errors.setdefault(location, message)

    def warn(self, location: str, message: str) -> None:
        self.warning_count += 1
        if len(self.warnings) < MAX_REPORTED:
            self.warnings.append(f"{location}: {message}")

    @property
    def full(self) -> bool:
        return self.error_count >= MAX_REPORTED


def validate_upload(
    document: Any, limits: ActivitySettings
) -> tuple[list[MemberUpload], list[str], int, int]:
    """The upload as members with UTC periods, its warnings, their total, and the period
    count; raises InvalidUpload listing every problem (up to MAX_REPORTED)."""
    problems = _Problems()
    members = _members_list(document, limits)
    merged: dict[str, MemberUpload] = {}
    period_count = 0
    for index, entry in enumerate(members):
        member = _validate_member(entry, f"members[{index}]", limits, problems)
        if member is not None:
            period_count += len(member.periods)
            known = merged.get(member.external_id)
            if known is None:
                merged[member.external_id] = member
            else:  # the same member twice: later details win, periods add up
                known.real_name, known.tz = member.real_name, member.tz
                known.periods.extend(member.periods)
        if problems.full:
            break
    if problems.error_count:
        # Validation stops at the MAX_REPORTED-th problem: there may be more.
        raise InvalidUpload(problems.errors, truncated=problems.full)
    return list(merged.values()), problems.warnings, problems.warning_count, period_count


def _members_list(document: Any, limits: ActivitySettings) -> list[Any]:
    if not isinstance(document, dict):
        raise InvalidUpload({"_schema": "expected a JSON object with a 'members' list"})
    unknown = sorted(set(document) - TOP_LEVEL_KEYS)
    if unknown:
        raise InvalidUpload({key: "unknown field" for key in unknown[:MAX_REPORTED]})
    members = document.get("members")
    if members is None:
        raise InvalidUpload({"members": "missing required field"})
    if not isinstance(members, list):
        raise InvalidUpload({"members": "expected a list"})
    if len(members) > limits.max_members:
        raise InvalidUpload(
            {"members": f"at most {limits.max_members} members per upload, got {len(members)}"}
        )
    periods = sum(
        len(m["activity_periods"])
        for m in members
        if isinstance(m, dict) and isinstance(m.get("activity_periods"), list)
    )
    if periods > limits.max_periods:
        raise InvalidUpload(
            {"members": f"at most {limits.max_periods} activity periods per upload, got {periods}"}
        )
    return members


def _validate_member(
    entry: Any, location: str, limits: ActivitySettings, problems: _Problems
) -> MemberUpload | None:
    if not isinstance(entry, dict):
        problems.error(location, "expected an object")
        return None
    error_count = problems.error_count
    for key in sorted(set(entry) - MEMBER_KEYS):
        problems.error(f"{location}.{key}", "unknown field")
    external_id = _required_string(entry, "id", location, problems)
    if external_id is not None and not MEMBER_ID_PATTERN.fullmatch(external_id):
        problems.error(f"{location}.id", f"must be {MEMBER_ID_RULE}")
    real_name = _required_string(entry, "real_name", location, problems)
    if real_name is not None and len(real_name) > REAL_NAME_LENGTH:
        problems.error(f"{location}.real_name", f"at most {REAL_NAME_LENGTH} characters")
    tz = _required_string(entry, "tz", location, problems)
    zone = zone_named(tz) if tz is not None else None
    if tz is not None and zone is None:
        problems.error(f"{location}.tz", f"unknown time zone {tz[:64]!r} (an IANA name)")
    periods = entry.get("activity_periods", [])
    if not isinstance(periods, list):
        problems.error(f"{location}.activity_periods", "expected a list")
        periods = []
    resolved = _validate_periods(periods, f"{location}.activity_periods", zone, limits, problems)
    if problems.error_count > error_count:
        return None
    assert external_id is not None and real_name is not None and tz is not None
    return MemberUpload(external_id, real_name, tz, resolved)


def _required_string(
    entry: dict[str, Any], key: str, location: str, problems: _Problems
) -> str | None:
    value = entry.get(key)
    if value is None:
        problems.error(f"{location}.{key}", "missing required field")
        return None
    if not isinstance(value, str):
        problems.error(f"{location}.{key}", "expected a string")
        return None
    return value


def _validate_periods(
    periods: list[Any],
    location: str,
    zone: ZoneInfo | None,
    limits: ActivitySettings,
    problems: _Problems,
) -> list[tuple[datetime, datetime]]:
    """The periods as UTC instants; with an unknown zone only their format is checked."""
    resolved: list[tuple[datetime, datetime]] = []
    for index, period in enumerate(periods):
        plain = _plain_period(period, zone, limits.max_period)
        if plain is not None:
            resolved.append(plain)
            continue
        here = f"{location}[{index}]"
        if not isinstance(period, dict):
            problems.error(here, "expected an object")
            continue
        if period.keys() != PERIOD_KEYS:
            for key in sorted(set(period) - PERIOD_KEYS):
                problems.error(f"{here}.{key}", "unknown field")
        start = _period_time(period, "start_time", here, zone, problems)
        end = _period_time(period, "end_time", here, zone, problems)
        if start is None or end is None:
            continue
        if abs(end - start) > limits.max_period:
            problems.error(here, f"a period may last at most {_describe(limits.max_period)}")
        elif end < start:
            problems.warn(here, "end_time is before start_time; stored as sent")
        resolved.append((start, end))
        if problems.full:
            break
    return resolved


def _plain_period(
    period: Any, zone: ZoneInfo | None, max_period: timedelta
) -> tuple[datetime, datetime] | None:
    """The period's instants when nothing about it needs a word (the common case, checked
    fast); None sends it through the careful checks that locate problems and warnings."""
    if zone is None or type(period) is not dict or period.keys() != PERIOD_KEYS:
        return None
    start_text, end_text = period["start_time"], period["end_time"]
    if type(start_text) is not str or type(end_text) is not str:
        return None
    try:
        start, start_note = read_local_time(start_text, zone)
        end, end_note = read_local_time(end_text, zone)
    except TimeFormatError:
        return None
    if start_note or end_note or not start <= end <= start + max_period:
        return None
    return start, end


def _period_time(
    period: dict[str, Any], key: str, location: str, zone: ZoneInfo | None, problems: _Problems
) -> datetime | None:
    text = period.get(key)
    if text is None:
        problems.error(f"{location}.{key}", "missing required field")
        return None
    if not isinstance(text, str):
        problems.error(f"{location}.{key}", "expected a string")
        return None
    try:
        if zone is None:  # only the format can be checked
            parse_wall_time(text)
            return None
        instant, note = read_local_time(text, zone)
    except TimeFormatError as exc:
        problems.error(f"{location}.{key}", str(exc))
        return None
    if note:
        problems.warn(f"{location}.{key}", note)
    return instant


def _describe(span: timedelta) -> str:
    """timedelta(days=7) -> "7 days", timedelta(hours=1) -> "1 hour"."""
    seconds = int(span.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}" + ("" if count == 1 else "s")
    raise AssertionError("unreachable")


# Storing: one transaction, set-based statements (bulk_merge.py), never a query per member.


def upload(document: Any, limits: ActivitySettings) -> UploadResult:
    """Validate and store an upload, all or nothing."""
    members, warnings, warnings_total, period_count = validate_upload(document, limits)
    del document
    counts = _store_with_retries(members)
    return UploadResult(
        members_created=counts.members_created,
        members_updated=len(members) - counts.members_created,
        periods_added=counts.periods_added,
        periods_duplicate=period_count - counts.periods_added,
        warnings=warnings,
        warnings_total=warnings_total,
    )


def _store_with_retries(members: list[MemberUpload]) -> MergeCounts:
    """One transaction, tried again when the database gave up on it (a deadlock victim on
    PostgreSQL, a lock wait beyond the busy timeout on SQLite)."""
    for attempt in range(1, STORE_ATTEMPTS + 1):
        try:
            counts = merge_upload(db.session.connection(), members)
            db.session.commit()
            return counts
        except OperationalError as exc:
            db.session.rollback()
            if not _transient(exc):
                raise
            if attempt == STORE_ATTEMPTS:
                raise DatabaseBusy() from exc
        except BaseException:
            db.session.rollback()
            raise
    raise AssertionError("unreachable")


def _transient(error: OperationalError) -> bool:
    sqlstate = getattr(error.orig, "sqlstate", None)
    return sqlstate in TRANSIENT_SQLSTATES or "database is locked" in str(error.orig)


# Reading: keyset pages of members, their periods streamed in order.


@dataclass(frozen=True)
class ActivityQuery:
    members: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    limit: int | None = None
    after: str | None = None  # the last member id of the previous page


def activity_query(
    settings: ActivitySettings,
    *,
    members: tuple[str, ...] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int | None = None,
    after: str | None = None,
) -> ActivityQuery:
    """A read's filters, within the configured limits (InvalidQuery naming each problem)."""
    problems: dict[str, str] = {}
    if limit is not None and limit > settings.max_page_size:
        problems["limit"] = f"at most {settings.max_page_size}"
    members = tuple(dict.fromkeys(members))
    if len(members) > settings.max_member_filters:
        problems["member"] = f"at most {settings.max_member_filters} members"
    if since is not None and until is not None and until < since:
        problems["until"] = "must not be before since"
    if problems:
        raise InvalidQuery(errors=problems)
    return ActivityQuery(members=members, since=since, until=until, limit=limit, after=after)


@dataclass(frozen=True)
class ActivityPage:
    """Which members a read covers: ids after `after` up to `through` (None: no bound)."""

    query: ActivityQuery
    through: str | None
    empty: bool = False
    next_after: str | None = None


def plan_page(query: ActivityQuery) -> ActivityPage:
    """Find the page's last member id (and whether more follow) before streaming starts."""
    if query.limit is None:
        return ActivityPage(query, through=None)
    members = Member.__table__
    statement = (
        _member_filter(select(members.c.external_id), query)
        .order_by(members.c.external_id)
        .limit(query.limit + 1)
    )
    with db.engine.connect() as connection:
        ids = connection.scalars(statement).all()
    if not ids:
        return ActivityPage(query, through=None, empty=True)
    page = ids[: query.limit]
    more = len(ids) > query.limit
    return ActivityPage(query, through=page[-1], next_after=page[-1] if more else None)


def _member_filter(statement: Select[Any], query: ActivityQuery) -> Select[Any]:
    members = Member.__table__
    if query.members:
        statement = statement.where(members.c.external_id.in_(query.members))
    if query.after is not None:
        statement = statement.where(members.c.external_id > query.after)
    return statement


def activity_rows(page: ActivityPage) -> Iterator[ActivityRow]:
    """(id, real_name, tz, start_time, end_time) by member id then time, fetched in batches
    over one connection; a member without periods is one row with None times."""
    if page.empty:
        return
    members, periods = Member.__table__, ActivityPeriod.__table__
    join_on = [periods.c.member_id == members.c.id]
    if page.query.since is not None:
        join_on.append(periods.c.start_time >= page.query.since)
    if page.query.until is not None:
        join_on.append(periods.c.start_time < page.query.until)
    statement = _member_filter(
        select(
            members.c.external_id,
            members.c.real_name,
            members.c.tz,
            periods.c.start_time,
            periods.c.end_time,
        ).select_from(members.outerjoin(periods, and_(*join_on))),
        page.query,
    )
    if page.through is not None:
        statement = statement.where(members.c.external_id <= page.through)
    statement = statement.order_by(members.c.external_id, periods.c.start_time, periods.c.end_time)
    with db.engine.connect() as connection:
        streaming = connection.execution_options(stream_results=True, yield_per=STREAM_BATCH_ROWS)
        yield from streaming.execute(statement)


class MemberNotFound(DomainError):
    status, code, message = 404, "not_found", "no such member"


def _member_row_id(external_id: str) -> int:
    if not MEMBER_ID_PATTERN.fullmatch(external_id):
        raise MemberNotFound()
    row_id = db.session.scalar(select(Member.id).where(Member.external_id == external_id))
    if row_id is None:
        raise MemberNotFound()
    return int(row_id)


def delete_member(external_id: str) -> None:
    """The member and every period of theirs, in one transaction."""
    row_id = _member_row_id(external_id)
    db.session.execute(delete(ActivityPeriod).where(ActivityPeriod.member_id == row_id))
    db.session.execute(delete(Member).where(Member.id == row_id))
    db.session.commit()


def delete_periods(external_id: str, start: datetime | None, end: datetime | None) -> int:
    """A member's periods starting in [start, end) (either bound open when absent), in one
    transaction; how many there were."""
    if start is not None and end is not None and start >= end:
        raise InvalidQuery(errors={"end": "must be after start"})
    row_id = _member_row_id(external_id)
    statement = delete(ActivityPeriod).where(ActivityPeriod.member_id == row_id)
    if start is not None:
        statement = statement.where(ActivityPeriod.start_time >= start)
    if end is not None:
        statement = statement.where(ActivityPeriod.start_time < end)
    deleted = cast(CursorResult[Any], db.session.execute(statement)).rowcount
    db.session.commit()
    return int(deleted)
