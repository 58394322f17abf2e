"""Row permissions: which rows of each resource a caller sees, as SQL conditions.

Each is a condition of the one statement that filters, counts, orders and pages a
listing (datapoints_service/engine/listing.py). Staff (and superusers) see every row,
except where a rule below says otherwise.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select

from datapoints_service import tree
from datapoints_service.engine.errors import Forbidden
from datapoints_service.engine.resource import Caller, Options
from datapoints_service.models import (
    WRITE,
    CustomDashboard,
    Document,
    DocumentReview,
    GroupPermission,
    Indicator,
    RegionPermission,
    UserGroup,
)


def regions(caller: Caller, options: Options) -> ColumnElement[bool] | None:
    """The regions of the caller's `region_permission` rows and every region under them
    (`depth_level` levels at most; `read_write=w`: only the rows granting writes)."""
    if caller.staff:
        return None
    granted = select(RegionPermission.region_id).where(RegionPermission.user_id == caller.user_id)
    if options.read_write == WRITE:
        granted = granted.where(RegionPermission.read_write == WRITE)
    return tree.under(granted, options.depth_level)


def indicators(caller: Caller, options: Options) -> ColumnElement[bool] | None:
    """The indicators the caller's groups hold a `group_permission` for (`read_write=w`:
    one granting writes)."""
    if caller.staff:
        return None
    granted = (
        select(GroupPermission.indicator_id)
        .join(UserGroup, UserGroup.group_id == GroupPermission.group_id)
        .where(UserGroup.user_id == caller.user_id)
    )
    if options.read_write == WRITE:
        granted = granted.where(GroupPermission.read_write == WRITE)
    return Indicator.id.in_(granted)


def documents(caller: Caller, options: Options) -> ColumnElement[bool] | None:
    """The caller's own documents; every document with `show_all=1` (staff only)."""
    if options.show_all:
        if not caller.staff:
            raise Forbidden("show_all is for staff")
        return None
    return Document.created_by_id == caller.user_id


def document_reviews(caller: Caller, options: Options) -> ColumnElement[bool] | None:
    """The review rows of the documents the caller sees (`show_all=1`: staff only)."""
    visible = documents(caller, options)
    if visible is None:
        return None
    return DocumentReview.document_id.in_(select(Document.id).where(visible))


def staff_only(caller: Caller, _options: Options) -> ColumnElement[bool] | None:
    """Every row for staff; for anyone else, a refusal (not an empty list)."""
    if not caller.staff:
        raise Forbidden("staff only")
    return None


def own_rows(model: Any) -> Any:
    """The caller's own rows of a table with a `user_id` (staff: all); for permission
    tables, `read_write=w` keeps the rows granting writes."""

    def visible(caller: Caller, options: Options) -> ColumnElement[bool] | None:
        conditions = []
        if not caller.staff:
            conditions.append(model.user_id == caller.user_id)
        if options.read_write == WRITE and hasattr(model, "read_write"):
            conditions.append(model.read_write == WRITE)
        return and_(*conditions) if conditions else None

    return visible


def group_permissions(caller: Caller, options: Options) -> ColumnElement[bool] | None:
    return GroupPermission.read_write == WRITE if options.read_write == WRITE else None


def dashboards(caller: Caller, _options: Options) -> ColumnElement[bool] | None:
    """Shared dashboards and the caller's own (a superuser: all)."""
    if caller.identity.is_superuser:
        return None
    return or_(CustomDashboard.shared.is_(True), CustomDashboard.owner_id == caller.user_id)
