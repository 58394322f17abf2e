"""Computed values: a region without a stored value for an indicator and campaign gets the
aggregate of its children's values (stored or computed), recursively down the tree.

They are kept in `datapoint_rollups`, one row per (region, campaign, indicator) that has
a computed value, and recomputed in the transaction of every change that can alter them
(a value stored or removed, a region moved, an indicator's aggregation changed). Reading
is then a lookup of stored and computed rows by (region, campaign, indicator), whatever
the size of the subtree (docs/datapoints_service.md has the measurements behind this).

A refresh works bottom-up, one level of the tree at a time: the deepest regions of the
scope first, each level's `INSERT ... SELECT` aggregating its children's effective values
(stored, or computed at the level below). So a region's value never counts a leaf twice
when a region between them has a figure of its own, and `avg` is the mean of the
children's values, as the definition says. Indicators with aggregation `none` get no
computed values.

Every region readable by a caller has its whole subtree readable too (a region
permission grants a region and everything under it), so a computed value only ever
aggregates regions the caller who may read it may also read.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    true,
    union_all,
)
from sqlalchemy.orm import Session, aliased

from datapoints_service.indexing import not_indexed
from datapoints_service.models import (
    AVG,
    NONE,
    DataPoint,
    DataPointRollup,
    Indicator,
    Region,
    RegionTree,
)

# Region ids per statement: far below every database's limit on bound parameters.
CHUNK = 500
ROLLUP_LOCK = 0x64617461_726F6C6C  # any constant of this service: "dataroll"

Ids = Collection[int] | Select[Any] | None


def lock(session: Session) -> None:
    """Writes of values one at a time (PostgreSQL: a transaction-scoped advisory lock;
    SQLite's write lock already serialises every write: locking.py). Two concurrent
    refreshes of overlapping ancestors would otherwise each aggregate what the other had
    not yet committed."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(ROLLUP_LOCK)))


def effective_values() -> Select[Any]:
    """Every known value, stored or computed: (region_id, campaign_id, indicator_id,
    value, is_agg). Stored and computed rows never share a (region, campaign,
    indicator)."""
    stored = select(
        DataPoint.region_id,
        DataPoint.campaign_id,
        DataPoint.indicator_id,
        DataPoint.value,
        literal(False).label("is_agg"),
    )
    computed = select(
        DataPointRollup.region_id,
        DataPointRollup.campaign_id,
        DataPointRollup.indicator_id,
        DataPointRollup.value,
        literal(True).label("is_agg"),
    )
    return select(union_all(stored, computed).subquery("effective"))


def refresh(
    session: Session,
    *,
    regions: Ids = None,
    campaign_ids: Ids = None,
    indicator_ids: Ids = None,
) -> None:
    """Recompute the computed values of `regions` and every region above them (None:
    all regions) for the given campaigns and indicators (None: all). Call in the
    transaction that changed the stored values or the tree, after the change, holding
    `lock`."""
    scope = _scope(session, regions)
    filters = _pair_filters(DataPointRollup, campaign_ids, indicator_ids, by_region=True)
    for chunk in _chunks(scope.regions):
        session.execute(
            delete(DataPointRollup)
            .where(DataPointRollup.region_id.in_(chunk), *filters)
            .execution_options(synchronize_session=False)
        )
    for level in sorted(scope.parents_by_level, reverse=True):
        for chunk in _chunks(scope.parents_by_level[level]):
            _aggregate_children(session, chunk, campaign_ids, indicator_ids)


@dataclass(frozen=True)
class Scope:
    regions: list[int]  # every region whose computed values are recomputed
    parents_by_level: dict[int, list[int]]  # those with children, by depth (0: a root)


def _scope(session: Session, regions: Ids) -> Scope:
    """The regions to recompute: those given and every region above them."""
    has_children = (
        select(Region.id).where(Region.parent_region_id == RegionTree.descendant_id).exists()
    )
    statement = select(RegionTree.descendant_id, func.max(RegionTree.depth), has_children).group_by(
        RegionTree.descendant_id
    )
    if regions is not None:
        above = select(RegionTree.ancestor_id).where(RegionTree.descendant_id.in_(regions))
        statement = statement.where(RegionTree.descendant_id.in_(above))
    everything: list[int] = []
    parents: dict[int, list[int]] = defaultdict(list)
    for region_id, depth, is_parent in session.execute(statement):
        everything.append(int(region_id))
        if is_parent:
            parents[int(depth)].append(int(region_id))
    return Scope(everything, parents)


def _aggregate_children(
    session: Session, parents: Sequence[int], campaign_ids: Ids, indicator_ids: Ids
) -> None:
    """The computed values of `parents` (all at one level, the level below already
    current): each one's children's effective values, aggregated, where the parent has
    no stored value. Each of the two tables is joined to the children on its own, so
    both lookups are index searches by region (a condition on a UNION ALL as a whole is
    not pushed into it by SQLite)."""
    children = union_all(
        _children_values(DataPoint, parents, campaign_ids, indicator_ids),
        _children_values(DataPointRollup, parents, campaign_ids, indicator_ids),
    ).subquery("children")
    aggregate = case(
        (Indicator.aggregation == AVG, func.avg(children.c.value)),
        else_=func.sum(children.c.value),
    )
    grouped = (
        select(children.c.parent_id, children.c.campaign_id, children.c.indicator_id, aggregate)
        .join(Indicator, Indicator.id == children.c.indicator_id)
        .where(Indicator.aggregation != NONE)
        .group_by(
            children.c.parent_id,
            children.c.campaign_id,
            children.c.indicator_id,
            Indicator.aggregation,
        )
        .subquery("grouped")
    )
    own = exists().where(
        DataPoint.region_id == grouped.c.parent_id,
        DataPoint.campaign_id == grouped.c.campaign_id,
        DataPoint.indicator_id == grouped.c.indicator_id,
    )
    rows = select(grouped).where(~own)
    columns = ("region_id", "campaign_id", "indicator_id", "value")
    session.execute(insert(DataPointRollup).from_select(columns, rows))


def _children_values(
    table: Any, parents: Sequence[int], campaign_ids: Ids, indicator_ids: Ids
) -> Select[Any]:
    """(parent_id, campaign_id, indicator_id, value) of `table`'s rows for the children
    of `parents`."""
    child = aliased(Region)
    return (
        select(
            child.parent_region_id.label("parent_id"),
            table.campaign_id,
            table.indicator_id,
            table.value,
        )
        .select_from(child)
        .join(table, table.region_id == child.id)
        .where(
            child.parent_region_id.in_(parents),
            *_pair_filters(table, campaign_ids, indicator_ids, by_region=True),
        )
    )


def _pair_filters(
    table: Any, campaign_ids: Ids, indicator_ids: Ids, by_region: bool = False
) -> list[ColumnElement[bool]]:
    """Conditions on campaign and indicator; `by_region`: the regions drive the search
    (indexing.py), as for the children of a few parents."""
    campaign = not_indexed(table.campaign_id) if by_region else table.campaign_id
    indicator = not_indexed(table.indicator_id) if by_region else table.indicator_id
    conditions: list[ColumnElement[bool]] = []
    if campaign_ids is not None:
        conditions.append(campaign.in_(campaign_ids))
    if indicator_ids is not None:
        conditions.append(indicator.in_(indicator_ids))
    return conditions or [true()]


def _chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield list(ids[start : start + CHUNK])
