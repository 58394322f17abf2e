"""A document's review rows and its master datapoints: which of its source strings are
mapped, and the values whose three strings all are, merged into the stored values.

A source datapoint is *fully mapped* when its region, campaign and indicator strings
each have a map. Its cell is then (the maps' master region, campaign, indicator); where
several of a document's source datapoints give one cell, the last in the file wins (the
highest id: rows are inserted in file order, a wide row's columns left to right).

Counts:
- `document_review.source_dp_count`: the document's source datapoints using the string;
- `document_review.master_dp_count`: those of them that are fully mapped;
- `document.master_datapoint_count`: the distinct cells its fully mapped source
  datapoints give, i.e. the master datapoints the document writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    Integer,
    MetaData,
    Select,
    Table,
    and_,
    bindparam,
    case,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.orm import Session, aliased
from sqlalchemy.schema import CreateTable, DropTable

from datapoints_service import values
from datapoints_service.models import (
    CAMPAIGN,
    INDICATOR,
    PROCESSED,
    REGION,
    CampaignMap,
    Document,
    DocumentReview,
    IndicatorMap,
    RegionMap,
    SourceCampaign,
    SourceDataPoint,
    SourceIndicator,
    SourceRegion,
)

CELL_COLUMNS = ("region_id", "campaign_id", "indicator_id", "value")
# One document's cells while they are merged (per connection; dropped at the end, and on
# PostgreSQL at the commit or rollback anyway).
STAGED_CELLS = Table(
    "staged_document_cells",
    MetaData(),
    Column("region_id", Integer, nullable=False),
    Column("campaign_id", Integer, nullable=False),
    Column("indicator_id", Integer, nullable=False),
    Column("value", Float, nullable=False),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)


@dataclass(frozen=True)
class Kind:
    """One kind of source object: its table, its maps, its column in source datapoints."""

    name: str
    source: Any
    map: Any
    column: str


KINDS = {
    REGION: Kind(REGION, SourceRegion, RegionMap, "source_region_id"),
    CAMPAIGN: Kind(CAMPAIGN, SourceCampaign, CampaignMap, "source_campaign_id"),
    INDICATOR: Kind(INDICATOR, SourceIndicator, IndicatorMap, "source_indicator_id"),
}


@dataclass(frozen=True)
class Without:
    """A map left out of every join: the one being deleted, still in the table."""

    kind: str
    map_id: int


def _maps() -> dict[str, Any]:
    """An alias of each map table, and its join condition to a source datapoint."""
    return {name: aliased(kind.map, name=f"{name}_map") for name, kind in KINDS.items()}


def _join_condition(name: str, alias: Any, without: Without | None) -> Any:
    condition = alias.source_object_id == getattr(SourceDataPoint, KINDS[name].column)
    if without is not None and without.kind == name:
        condition = and_(condition, alias.id != without.map_id)
    return condition


def mapped_cells(
    document_id: int, *, without: Without | None = None, only: tuple[str, int] | None = None
) -> Select[Any]:
    """The document's fully mapped source datapoints, one per cell (the last wins):
    (region_id, campaign_id, indicator_id, value). `only` = (kind, source object id)
    keeps those using that source object."""
    maps = _maps()
    mapped = select(
        SourceDataPoint.id,
        maps[REGION].master_object_id.label("region_id"),
        maps[CAMPAIGN].master_object_id.label("campaign_id"),
        maps[INDICATOR].master_object_id.label("indicator_id"),
        SourceDataPoint.value,
    ).select_from(SourceDataPoint)
    for name, alias in maps.items():
        mapped = mapped.join(alias, _join_condition(name, alias, without))
    mapped = mapped.where(SourceDataPoint.document_id == document_id)
    if only is not None:
        kind, source_object_id = only
        mapped = mapped.where(getattr(SourceDataPoint, KINDS[kind].column) == source_object_id)
    rows = mapped.subquery("mapped")
    latest = select(func.max(rows.c.id)).group_by(
        rows.c.region_id, rows.c.campaign_id, rows.c.indicator_id
    )
    return select(rows.c.region_id, rows.c.campaign_id, rows.c.indicator_id, rows.c.value).where(
        rows.c.id.in_(latest)
    )


def merge_mapped(
    session: Session, document_id: int, changed_by_id: int | None, only: tuple[str, int] | None
) -> int:
    """Store the document's fully mapped values (`only`: those using one source object);
    how many cells that is.

    The cells are staged in a temporary table first: `values.merge` and the roll-up
    refresh read them several times (history, upsert, the scope of every level), and
    each would otherwise run the grouping over the document's source datapoints again.
    """
    connection = session.connection()
    connection.execute(DropTable(STAGED_CELLS, if_exists=True))  # left by a failed run
    connection.execute(CreateTable(STAGED_CELLS))
    connection.execute(
        insert(STAGED_CELLS).from_select(CELL_COLUMNS, mapped_cells(document_id, only=only))
    )
    staged = int(session.scalar(select(func.count()).select_from(STAGED_CELLS)) or 0)
    if staged:
        values.merge(
            session,
            select(*STAGED_CELLS.c),
            changed_by_id=changed_by_id,
            document_id=document_id,
        )
    connection.execute(DropTable(STAGED_CELLS))
    return staged


def _review_rows(document_id: int, kind: Kind, without: Without | None) -> Select[Any]:
    """Per source object of `kind` the document uses: its string, counts and map."""
    maps = _maps()
    own = maps[kind.name]
    fully_mapped = and_(*(alias.id.is_not(None) for alias in maps.values()))
    statement = (
        select(
            literal(document_id).label("document_id"),
            literal(kind.name).label("db_model"),
            kind.source.id.label("source_object_id"),
            kind.source.source_string,
            func.count(SourceDataPoint.id).label("source_dp_count"),
            func.max(own.id).label("map_id"),
            func.max(own.master_object_id).label("master_object_id"),
            func.count(case((fully_mapped, SourceDataPoint.id))).label("master_dp_count"),
        )
        .select_from(SourceDataPoint)
        .join(kind.source, kind.source.id == getattr(SourceDataPoint, kind.column))
        .where(SourceDataPoint.document_id == document_id)
        .group_by(kind.source.id, kind.source.source_string)
    )
    for name, alias in maps.items():
        statement = statement.outerjoin(alias, _join_condition(name, alias, without))
    return statement


REVIEW_COLUMNS = (
    "document_id",
    "db_model",
    "source_object_id",
    "source_string",
    "source_dp_count",
    "map_id",
    "master_object_id",
    "master_dp_count",
)


def write_reviews(session: Session, document_id: int) -> None:
    """The document's review rows, from its source datapoints (none may exist yet)."""
    for kind in KINDS.values():
        session.execute(
            insert(DocumentReview).from_select(
                REVIEW_COLUMNS, _review_rows(document_id, kind, None)
            )
        )


def refresh_reviews(
    session: Session, document_ids: Iterable[int], without: Without | None = None
) -> None:
    """Bring the maps and counts of these documents' review rows, and their
    `master_datapoint_count`, up to date with the maps."""
    table = DocumentReview.__table__
    statement = (
        update(table)
        .where(
            table.c.document_id == bindparam("b_document_id"),
            table.c.db_model == bindparam("b_db_model"),
            table.c.source_object_id == bindparam("b_source_object_id"),
        )
        .values(
            map_id=bindparam("b_map_id"),
            master_object_id=bindparam("b_master_object_id"),
            master_dp_count=bindparam("b_master_dp_count"),
        )
    )
    for document_id in document_ids:
        changes = [
            {f"b_{key}": value for key, value in row._mapping.items()}
            for kind in KINDS.values()
            for row in session.execute(_review_rows(document_id, kind, without))
        ]
        if changes:
            session.connection().execute(statement, changes)
        count_master_datapoints(session, document_id, without)


def count_master_datapoints(
    session: Session, document_id: int, without: Without | None = None
) -> int:
    cells = mapped_cells(document_id, without=without).subquery("cells")
    count = int(session.scalar(select(func.count()).select_from(cells)) or 0)
    session.execute(
        update(Document).where(Document.id == document_id).values(master_datapoint_count=count)
    )
    return count


def processed_documents_using(
    session: Session, kind: str, source_object_ids: set[int]
) -> list[int]:
    """The processed documents with source datapoints using these source objects."""
    column = getattr(SourceDataPoint, KINDS[kind].column)
    found = session.scalars(
        select(SourceDataPoint.document_id)
        .join(Document, Document.id == SourceDataPoint.document_id)
        .where(column.in_(source_object_ids), Document.status == PROCESSED)
        .distinct()
    )
    return sorted(int(document_id) for document_id in found)
