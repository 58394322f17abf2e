"""Writing stored values: the one way data entry and documents change `datapoints`.

Each write, in the caller's transaction: a history row for every value that changes
(who, when, from what to what), the upsert (one row per region, campaign and indicator:
a new value replaces the old), and the refresh of the computed values above the regions
written (rollup.py). Set-based, so a document's hundred thousand values are a few
statements, not a statement per value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Integer,
    Select,
    and_,
    insert,
    literal,
    or_,
    select,
    true,
    tuple_,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from datapoints_service import rollup
from datapoints_service.models import DataPoint, DataPointHistory
from servicekit.db import utcnow

CELL = ("region_id", "campaign_id", "indicator_id")
# Cells looked up per statement: 3 parameters each, well under every database's limit.
KEYS_CHUNK = 300


@dataclass(frozen=True)
class Cell:
    """A value for one region, campaign and indicator (None: remove the stored value)."""

    region_id: int
    campaign_id: int
    indicator_id: int
    value: float | None


def write_cells(session: Session, cells: Sequence[Cell], *, changed_by_id: int | None) -> None:
    """Store or remove each cell (the last of several for one region, campaign and
    indicator wins), with history and computed values kept current. Row by row: what a
    person enters is a few cells, and each needs its old value for the history."""
    latest = {(c.region_id, c.campaign_id, c.indicator_id): c for c in cells}
    rollup.lock(session)
    existing = _stored(session, list(latest))
    now = utcnow()
    for key, cell in latest.items():
        row = existing.get(key)
        old = None if row is None else row.value
        if old == cell.value:
            continue
        session.add(
            DataPointHistory(
                region_id=cell.region_id,
                campaign_id=cell.campaign_id,
                indicator_id=cell.indicator_id,
                old_value=old,
                new_value=cell.value,
                changed_by_id=changed_by_id,
                changed_at=now,
            )
        )
        _write_row(session, row, cell, changed_by_id, now)
    session.flush()
    rollup.refresh(
        session,
        regions={c.region_id for c in latest.values()},
        campaign_ids={c.campaign_id for c in latest.values()},
        indicator_ids={c.indicator_id for c in latest.values()},
    )


def _stored(
    session: Session, keys: Sequence[tuple[int, int, int]]
) -> dict[tuple[int, int, int], DataPoint]:
    found: dict[tuple[int, int, int], DataPoint] = {}
    key = tuple_(DataPoint.region_id, DataPoint.campaign_id, DataPoint.indicator_id)
    for start in range(0, len(keys), KEYS_CHUNK):
        chunk = keys[start : start + KEYS_CHUNK]
        for row in session.scalars(select(DataPoint).where(key.in_(chunk))):
            found[(row.region_id, row.campaign_id, row.indicator_id)] = row
    return found


def _write_row(
    session: Session, row: DataPoint | None, cell: Cell, changed_by_id: int | None, now: Any
) -> None:
    if cell.value is None:
        if row is not None:
            session.delete(row)
    elif row is None:
        session.add(
            DataPoint(
                region_id=cell.region_id,
                campaign_id=cell.campaign_id,
                indicator_id=cell.indicator_id,
                value=cell.value,
                changed_by_id=changed_by_id,
                created_at=now,
                updated_at=now,
            )
        )
    else:
        row.value = cell.value
        row.changed_by_id = changed_by_id
        row.document_id = None
        row.updated_at = now


def merge(
    session: Session,
    cells: Select[Any],
    *,
    changed_by_id: int | None,
    document_id: int | None,
) -> None:
    """Store the values `cells` selects, as (region_id, campaign_id, indicator_id,
    value) with each cell at most once, and refresh what they change."""
    rollup.lock(session)
    _merge(session, cells, changed_by_id, document_id)
    selected = cells.subquery("cells")
    # Campaigns and indicators as lists (a document has a few): the refresh's statements
    # then carry them as values instead of re-reading the cells in each of them. Regions
    # stay a query (read once; a list could pass a database's limit on parameters).
    rollup.refresh(
        session,
        regions=select(selected.c.region_id).distinct(),
        campaign_ids=_distinct(session, selected.c.campaign_id),
        indicator_ids=_distinct(session, selected.c.indicator_id),
    )


def _distinct(session: Session, column: Any) -> list[int]:
    return list(session.scalars(select(column).distinct()))


def _merge(
    session: Session, cells: Select[Any], changed_by_id: int | None, document_id: int | None
) -> None:
    now = utcnow()
    incoming = cells.subquery("incoming")
    changed = (
        select(
            incoming.c.region_id,
            incoming.c.campaign_id,
            incoming.c.indicator_id,
            DataPoint.value,
            incoming.c.value,
            literal(changed_by_id, Integer),
            literal(document_id, Integer),
            literal(now, DataPoint.updated_at.type),
        )
        .select_from(incoming)
        .outerjoin(DataPoint, _same_cell(DataPoint, incoming.c))
        .where(or_(DataPoint.id.is_(None), DataPoint.value != incoming.c.value))
    )
    history_columns = (
        *CELL,
        "old_value",
        "new_value",
        "changed_by_id",
        "document_id",
        "changed_at",
    )
    session.execute(insert(DataPointHistory).from_select(history_columns, changed))
    session.execute(_upsert(session, incoming, changed_by_id, document_id, now))


def _upsert(
    session: Session, incoming: Any, changed_by_id: int | None, document_id: int | None, now: Any
) -> Any:
    """INSERT ... SELECT ... ON CONFLICT (cell) DO UPDATE, in the session's dialect."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    rows = select(
        incoming.c.region_id,
        incoming.c.campaign_id,
        incoming.c.indicator_id,
        incoming.c.value,
        literal(changed_by_id, Integer),
        literal(document_id, Integer),
        literal(now, DataPoint.created_at.type),
        literal(now, DataPoint.updated_at.type),
    ).where(true())  # SQLite reads "SELECT ... ON CONFLICT" as a join without a WHERE
    columns = (*CELL, "value", "changed_by_id", "document_id", "created_at", "updated_at")
    statement = dialect.insert(DataPoint).from_select(columns, rows)
    excluded = statement.excluded
    changes = excluded.value != DataPoint.value
    return statement.on_conflict_do_update(
        index_elements=list(CELL),
        set_={
            "value": excluded.value,
            "changed_by_id": excluded.changed_by_id,
            "document_id": excluded.document_id,
            "updated_at": excluded.updated_at,
        },
        where=changes,
    )


def _same_cell(table: Any, other: Any) -> Any:
    return and_(*(getattr(table, name) == getattr(other, name) for name in CELL))
