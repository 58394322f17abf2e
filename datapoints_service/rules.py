"""The resources' own rules beyond columns and references (engine hooks)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from datapoints_service import rollup, tree
from datapoints_service.engine.resource import Errors
from datapoints_service.models import Campaign, Indicator, IndicatorTag, Region

NOT_SLUG = re.compile(r"[^a-z0-9_]+")
MAX_TAGS = 1000
BOUND_KEYS = frozenset({"bound_name", "mn_val", "mx_val"})
MAX_SHAPE_POSITIONS = 100_000
# A GeoJSON geometry's nesting of positions: Polygon [ring][position], MultiPolygon
# [polygon][ring][position].
SHAPE_DEPTHS = {"Polygon": 2, "MultiPolygon": 3}


def slugify(text: str) -> str:
    """`"Fake Place 2"` -> `"fake-place-2"` (the default slug of a row written without one)."""
    return NOT_SLUG.sub("-", text.lower()).strip("-") or "x"


def region(session: Session, row: Region) -> Errors:
    """A region's parent (no cycles) and its shape (a GeoJSON Polygon or MultiPolygon)."""
    errors = tree.check_parent(session, row)
    if row.shape is not None:
        problem = shape_problem(row.shape)
        if problem:
            errors["shape"] = problem
    return errors


def region_written(session: Session, row: Region, previous: dict[str, Any] | None) -> None:
    """The tree, and after a move the computed values of the old and the new ancestors."""
    tree.after_write(session, row, previous)
    if previous is not None and previous.get("parent_region_id", row.parent_region_id) != (
        row.parent_region_id
    ):
        rollup.lock(session)
        moved_from = previous["parent_region_id"]
        rollup.refresh(session, regions=[row.id] + ([moved_from] if moved_from else []))


def indicator_written(session: Session, row: Indicator, previous: dict[str, Any] | None) -> None:
    """A new aggregation recomputes the indicator's computed values."""
    if previous is not None and previous.get("aggregation", row.aggregation) != row.aggregation:
        rollup.lock(session)
        rollup.refresh(session, indicator_ids=[row.id])


def shape_problem(shape: Any) -> str | None:
    """Why `shape` is not a GeoJSON Polygon or MultiPolygon of [longitude, latitude]
    positions (None when it is one)."""
    if not isinstance(shape, dict) or shape.get("type") not in SHAPE_DEPTHS:
        return 'a GeoJSON geometry: {"type": "Polygon" or "MultiPolygon", "coordinates": [...]}'
    positions = _positions(shape.get("coordinates"), SHAPE_DEPTHS[shape["type"]])
    if positions is None:
        return f"coordinates are not a {shape['type']} of [longitude, latitude] positions"
    if positions > MAX_SHAPE_POSITIONS:
        return f"at most {MAX_SHAPE_POSITIONS} positions"
    return None


def _positions(nested: Any, depth: int) -> int | None:
    """How many valid positions `nested` holds at `depth` list levels (None: malformed)."""
    if not isinstance(nested, list) or not nested:
        return None
    if depth == 0:
        return 1 if _position(nested) else None
    total = 0
    for item in nested:
        count = _positions(item, depth - 1)
        if count is None:
            return None
        total += count
        if total > MAX_SHAPE_POSITIONS:
            break
    return total


def _position(item: list[Any]) -> bool:
    if len(item) not in (2, 3) or not all(
        isinstance(n, int | float) and not isinstance(n, bool) for n in item
    ):
        return False
    return bool(-180 <= item[0] <= 180 and -90 <= item[1] <= 90)


def campaign_dates(_session: Session, campaign: Campaign) -> Errors:
    if campaign.end_date < campaign.start_date:
        return {"end_date": "is before start_date"}
    return {}


def indicator_json(session: Session, indicator: Indicator) -> Errors:
    """`tag_json`: a list of existing tag ids; `bound_json`: a list of bounds
    ({"bound_name": text, "mn_val": number or null, "mx_val": number or null})."""
    errors = {}
    tags = indicator.tag_json
    if not _tag_ids(tags):
        errors["tag_json"] = f"a list of at most {MAX_TAGS} indicator_tag ids"
    else:
        known = set(session.scalars(select(IndicatorTag.id).where(IndicatorTag.id.in_(tags))))
        missing = sorted(set(tags) - known)
        if missing:
            errors["tag_json"] = f"no indicator_tag {', '.join(map(str, missing))}"
    if not isinstance(indicator.bound_json, list) or not all(
        _bound(item) for item in indicator.bound_json
    ):
        errors["bound_json"] = 'a list of {"bound_name", "mn_val", "mx_val"} objects'
    return errors


def _tag_ids(tags: Any) -> bool:
    return (
        isinstance(tags, list)
        and len(tags) <= MAX_TAGS
        and all(isinstance(tag, int) and not isinstance(tag, bool) for tag in tags)
    )


def _bound(item: Any) -> bool:
    if not isinstance(item, dict) or set(item) != BOUND_KEYS:
        return False
    limits = (item["mn_val"], item["mx_val"])
    numbers = all(
        value is None or (isinstance(value, int | float) and not isinstance(value, bool))
        for value in limits
    )
    return isinstance(item["bound_name"], str) and numbers


def tag_parent(session: Session, tag: IndicatorTag) -> Errors:
    """A tag may not be put under itself or under a tag below it (tags are few: the
    walk up is short; under the tree lock, as region moves are)."""
    tree.lock(session)
    parent_id = tag.parent_tag_id
    seen: set[int] = set()
    while parent_id is not None and parent_id not in seen:
        if tag.id is not None and parent_id == tag.id:
            return {"parent_tag_id": "would make the tag its own ancestor"}
        seen.add(parent_id)
        parent_id = session.scalar(
            select(IndicatorTag.parent_tag_id).where(IndicatorTag.id == parent_id)
        )
    return {}


def tag_in_use(session: Session, tag: IndicatorTag) -> Errors:
    """A tag an indicator's `tag_json` lists is not deleted."""
    rows = session.execute(select(Indicator.id, Indicator.tag_json)).all()
    users = [str(row.id) for row in rows if tag.id in (row.tag_json or [])]
    if users:
        return {"id": f"referred to by indicator.tag_json (indicator {', '.join(users)})"}
    return {}
