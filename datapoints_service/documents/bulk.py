"""Bulk inserts of many rows: PostgreSQL's COPY, elsewhere one executemany.

COPY sends the rows as one stream (no statement, no parameter round per row), several
times faster than an executemany of INSERTs through psycopg. The statement is composed
with psycopg's `sql` module (quoted identifiers), never from strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import sql
from sqlalchemy import Table, insert
from sqlalchemy.orm import Session


def insert_rows(
    session: Session, table: Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """Insert `rows` (tuples in the order of `columns`) in the session's transaction."""
    if session.get_bind().dialect.name == "postgresql":
        _copy(session, table, columns, rows)
        return
    session.execute(insert(table), [dict(zip(columns, row, strict=True)) for row in rows])


def _copy(
    session: Session, table: Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    connection = session.connection().connection.driver_connection
    with connection.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[union-attr]
        for row in rows:
            copy.write_row(row)
