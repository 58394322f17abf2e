"""The region tree's closure table (`RegionTree`), kept current on every region write.

Each region has a row (region, region, 0) and one (ancestor, region, depth) per region
above it. Inserting a region copies its parent's ancestor rows one level deeper; moving
one (a new `parent_region_id`) detaches its subtree from its old ancestors and attaches
it under the new parent's: a few set-based statements, whatever the subtree's size.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, delete, exists, func, insert, literal, select, true
from sqlalchemy.orm import Session, aliased

from datapoints_service.engine.resource import Errors
from datapoints_service.models import Region, RegionTree

COLUMNS = ("ancestor_id", "descendant_id", "depth")
TREE_LOCK = 0x64617461_74726565  # any constant of this service: "datatree"


def under(region_ids: Any, depth_level: int = 0) -> ColumnElement[bool]:
    """`Region.id` is one of `region_ids` (a SQL set) or under one of them, at most
    `depth_level` levels down (0: any depth)."""
    below = select(RegionTree.descendant_id).where(RegionTree.ancestor_id.in_(region_ids))
    if depth_level > 0:
        below = below.where(RegionTree.depth <= depth_level)
    return Region.id.in_(below)


def lock(session: Session) -> None:
    """Region writes one at a time (PostgreSQL: a transaction-scoped advisory lock; on
    SQLite every write holds the write lock from its start: see locking.py). Without it,
    two concurrent moves (a under b, b under a) would each pass the cycle check, and an
    insert under a region being moved would copy its old ancestors."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(TREE_LOCK)))


def check_parent(session: Session, region: Region) -> Errors:
    """A region may not be put under itself or under a region below it (checked, like
    every tree write, under the tree's lock)."""
    lock(session)
    parent_id = region.parent_region_id
    if region.id is None or parent_id is None:
        return {}
    loop = exists().where(
        RegionTree.ancestor_id == region.id, RegionTree.descendant_id == parent_id
    )
    if parent_id == region.id or session.scalar(select(loop)):
        return {"parent_region_id": "would make the region its own ancestor"}
    return {}


def after_write(session: Session, region: Region, previous: dict[str, Any] | None) -> None:
    if previous is None:
        add(session, region.id, region.parent_region_id)
    elif "parent_region_id" in previous and previous["parent_region_id"] != region.parent_region_id:
        move(session, region.id, region.parent_region_id)


def add(session: Session, region_id: int, parent_id: int | None) -> None:
    session.execute(
        insert(RegionTree).values(ancestor_id=region_id, descendant_id=region_id, depth=0)
    )
    if parent_id is not None:
        above = select(RegionTree.ancestor_id, literal(region_id), RegionTree.depth + 1).where(
            RegionTree.descendant_id == parent_id
        )
        session.execute(insert(RegionTree).from_select(COLUMNS, above))


def move(session: Session, region_id: int, parent_id: int | None) -> None:
    subtree = select(RegionTree.descendant_id).where(RegionTree.ancestor_id == region_id)
    session.execute(
        delete(RegionTree).where(
            RegionTree.descendant_id.in_(subtree), RegionTree.ancestor_id.not_in(subtree)
        )
    )
    if parent_id is None:
        return
    above, below = aliased(RegionTree), aliased(RegionTree)
    # Every ancestor of the new parent above every region of the moved subtree.
    paths = (
        select(above.ancestor_id, below.descendant_id, above.depth + below.depth + 1)
        .select_from(above)
        .join(below, true())
        .where(above.descendant_id == parent_id, below.ancestor_id == region_id)
    )
    session.execute(insert(RegionTree).from_select(COLUMNS, paths))


def before_delete(session: Session, region: Region) -> Errors:
    """A region without children (the generic check refused the others) leaves the tree."""
    lock(session)
    session.execute(delete(RegionTree).where(RegionTree.descendant_id == region.id))
    return {}
