"""Bulk storage of a validated upload: stage it in temporary tables, then merge it into the
real ones with three set-based statements, whatever the upload's size.

Staging is the fast path of each database: binary COPY on PostgreSQL, the driver's
executemany on SQLite. The merge is the same SQL on both: new members inserted (`ON
CONFLICT DO NOTHING`, its row count is the number created), the sent members locked in key
order (PostgreSQL), known ones updated from the staged rows, periods inserted with `ON
CONFLICT DO NOTHING` on the (member, start, end) key, its row count being the number
added. The caller's transaction covers all of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from psycopg import sql
from sqlalchemy import (
    Column,
    Connection,
    MetaData,
    String,
    Table,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

from activity_service.models import (
    REAL_NAME_LENGTH,
    ZONE_NAME_LENGTH,
    ActivityPeriod,
    Member,
    MemberIdType,
)
from servicekit.db import UtcDateTime, utcnow

# Not part of the service's schema (migrations never see it): per-transaction scratch tables.
_staging = MetaData()
STAGED_MEMBERS = Table(
    "staged_members",
    _staging,
    Column("external_id", MemberIdType),
    Column("real_name", String(REAL_NAME_LENGTH)),
    Column("tz", String(ZONE_NAME_LENGTH)),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)
STAGED_PERIODS = Table(
    "staged_periods",
    _staging,
    Column("external_id", MemberIdType),
    Column("start_time", UtcDateTime()),
    Column("end_time", UtcDateTime()),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)

# PostgreSQL type names of the staged columns, for binary COPY.
COPY_TYPES = {
    STAGED_MEMBERS.name: ["varchar", "varchar", "varchar"],
    STAGED_PERIODS.name: ["varchar", "timestamptz", "timestamptz"],
}


class StagedMember(Protocol):
    """What the store needs of a member (service.MemberUpload)."""

    external_id: str
    real_name: str
    tz: str
    periods: list[tuple[datetime, datetime]]


@dataclass(frozen=True)
class MergeCounts:
    members_created: int
    periods_added: int


def merge_upload(connection: Connection, members: Sequence[StagedMember]) -> MergeCounts:
    """Stage `members` and merge them, in the connection's open transaction."""
    _create_staging(connection)
    member_rows = ((m.external_id, m.real_name, m.tz) for m in members)
    period_rows = ((m.external_id, start, end) for m in members for start, end in m.periods)
    if connection.dialect.name == "postgresql":
        _copy_rows(connection, STAGED_MEMBERS, member_rows)
        _copy_rows(connection, STAGED_PERIODS, period_rows)
    else:
        _insert_rows(connection, STAGED_MEMBERS, member_rows)
        _insert_rows(connection, STAGED_PERIODS, period_rows)
    counts = _merge(connection)
    if connection.dialect.name != "postgresql":  # PostgreSQL drops them at commit
        _staging.drop_all(connection)
    return counts


def _create_staging(connection: Connection) -> None:
    if connection.dialect.name != "postgresql":
        # A pooled SQLite connection keeps its temporary tables across transactions.
        _staging.drop_all(connection, checkfirst=True)
    _staging.create_all(connection, checkfirst=False)


def _copy_rows(connection: Connection, table: Table, rows: Iterable[tuple[Any, ...]]) -> None:
    """COPY rows into a staged table: PostgreSQL's bulk load, in its binary format (the
    driver encodes the values in C), through the connection's transaction."""
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(table.name), sql.SQL(", ").join(sql.Identifier(c.name) for c in table.c)
    )
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        with cursor.copy(statement) as copy:
            copy.set_types(COPY_TYPES[table.name])
            for row in rows:
                copy.write_row(row)
    finally:
        cursor.close()


def _insert_rows(connection: Connection, table: Table, rows: Iterable[tuple[Any, ...]]) -> None:
    """executemany straight to the driver, values converted as the column types would."""
    dialect = connection.dialect
    processors = [
        column.type.dialect_impl(dialect).bind_processor(dialect) for column in table.columns
    ]
    statement = str(table.insert().compile(dialect=dialect))  # positional "?" parameters
    values = list(_processed(rows, processors))
    if values:  # an empty list would be one execution without parameters
        connection.exec_driver_sql(statement, values)


def _processed(rows: Iterable[tuple[Any, ...]], processors: list[Any]) -> Iterator[tuple[Any, ...]]:
    if not any(processors):
        yield from rows
        return
    for row in rows:
        yield tuple(p(v) if p else v for p, v in zip(processors, row, strict=True))


def _insert(connection: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _inserted(connection: Connection, statement: Insert) -> int:
    """Run an INSERT … ON CONFLICT DO NOTHING; the rows it inserted (the skipped ones are
    not counted by either database)."""
    result = connection.execute(statement.execution_options(preserve_rowcount=True))
    return int(result.rowcount)


def _merge(connection: Connection) -> MergeCounts:
    """Rows are inserted and locked in key order, so that concurrent uploads touching the
    same members wait for each other instead of deadlocking."""
    members, periods = Member.__table__, ActivityPeriod.__table__
    staged, staged_periods = STAGED_MEMBERS.c, STAGED_PERIODS.c
    now = literal(utcnow(), UtcDateTime())
    # `WHERE true`: SQLite needs it to tell an upsert's ON from a join's.
    new_members = _insert(connection, members).from_select(
        ["external_id", "real_name", "tz", "created_at", "updated_at"],
        select(staged.external_id, staged.real_name, staged.tz, now, now)
        .where(true())
        .order_by(staged.external_id),
    )
    created = _inserted(connection, new_members.on_conflict_do_nothing())
    sent = members.c.external_id.in_(select(staged.external_id))
    # FOR UPDATE on PostgreSQL; SQLite has one writer at a time anyway.
    connection.execute(
        select(members.c.id).where(sent).order_by(members.c.external_id).with_for_update()
    )
    connection.execute(
        update(members)
        .values(real_name=staged.real_name, tz=staged.tz, updated_at=now)
        .where(
            members.c.external_id == staged.external_id,
            or_(members.c.real_name != staged.real_name, members.c.tz != staged.tz),
        )
    )
    new_periods = _insert(connection, periods).from_select(
        ["member_id", "start_time", "end_time"],
        select(members.c.id, staged_periods.start_time, staged_periods.end_time)
        .join_from(STAGED_PERIODS, members, members.c.external_id == staged_periods.external_id)
        .where(true())
        .order_by(members.c.id, staged_periods.start_time, staged_periods.end_time),
    )
    added = _inserted(connection, new_periods.on_conflict_do_nothing())
    return MergeCounts(members_created=created, periods_added=added)
