"""Reads: one page of objects with the count, one object, or every object as a stream."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.orm import Session

from datapoints_service.engine.errors import NotFound
from datapoints_service.engine.fields import EXACT
from datapoints_service.engine.listing import (
    Filter,
    ListQuery,
    count_statement,
    paged,
    rows_statement,
)
from datapoints_service.engine.rendering import Row, Rows, render_rows
from datapoints_service.engine.resource import Caller, Registry, Resource
from servicekit.pagination import Window


@dataclass(frozen=True)
class Listing:
    total: int
    objects: list[dict[str, Any]]


def page(
    session: Session, registry: Registry, resource: Resource, caller: Caller, query: ListQuery
) -> Listing:
    total = int(session.scalar(count_statement(resource, caller, query)) or 0)
    statement = paged(rows_statement(registry, resource, caller, query), query.window)
    rows = session.execute(statement)
    return Listing(total, render_rows(registry, resource, rows, query.options.uri_format))


def one(
    session: Session,
    registry: Registry,
    resource: Resource,
    caller: Caller,
    query: ListQuery,
    row_id: int,
) -> Listing:
    """The object `row_id`; 404 when it does not exist or the caller may not see it."""
    found = page(session, registry, resource, caller, only(resource, query, row_id))
    if not found.objects:
        raise NotFound(f"no {resource.name} {row_id}")
    return found


def only(resource: Resource, query: ListQuery, row_id: int) -> ListQuery:
    """`query` narrowed to the object `row_id`."""
    id_field = resource.field("id")
    if id_field is None:
        raise NotFound(f"no {resource.name} {row_id}")
    filters = (*query.filters, Filter(id_field, EXACT, row_id))
    return replace(query, filters=filters, window=Window(0, 1), limit_given=True)


def stream(
    session: Session,
    registry: Registry,
    resource: Resource,
    caller: Caller,
    query: ListQuery,
    batch_rows: int,
) -> Rows:
    """Every matching row (the page only when `limit` or `offset` was given), fetched
    from the database `batch_rows` at a time. The statement is built (and refused) at
    once; rows are read as the batches are consumed, and the session is closed at its
    end."""
    statement = rows_statement(registry, resource, caller, query)
    if query.limit_given or query.window.offset:
        statement = paged(statement, query.window)

    def batches() -> Iterator[Sequence[Row]]:
        try:
            result = session.execute(statement.execution_options(yield_per=batch_rows))
            yield from result.partitions()
        finally:
            # The read transaction (a server-side cursor on PostgreSQL) ends with the
            # stream, even when the client goes away half-way.
            session.close()

    return Rows(registry, resource, query.options.uri_format, batches())
